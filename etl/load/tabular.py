"""The common shape of loaders whose source is a table described by a layout (trial exports, lab,
sample manifest, MRD, copy-number calls): read -> layout transform -> pandera schema -> the kind's own
checks -> the layout's declared attributes, in one batch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pandera.polars as pa
import polars as pl

from etl.errors import CgdwError
from etl.load.attributes import attribute_specs, attribute_values, merge_attribute_values, register_attributes
from etl.load.framework import Batch, LoadContext, SourceLoader
from etl.load.layout import Layout
from etl.load.linking import without_purged_patients
from etl.load.readers import LINE, read_source
from etl.load.snapshot import export_date_in_name
from etl.load.transform import RELATIVE_TYPES, to_canonical
from etl.load.validation import schema_issues
from etl.privacy import patient_keys

ATTRIBUTES = "attributes"  # the batch part holding the declared attributes' values (Batch.parts)


class TabularLoader(SourceLoader):
    """A layout-driven loader: subclasses set `kind` and `schema`, and write their tables."""

    schema: ClassVar[type[pa.DataFrameModel]]
    dated = True  # full snapshots of a source system, one export after another
    secret: bytes

    def __init__(self, layout: Layout, secret: bytes) -> None:
        if layout.kind != self.kind:
            raise CgdwError(f"layout {layout.name!r} is a {layout.kind} layout, not a {self.kind} one")
        self.layout = layout
        self.layout_name = layout.name
        self.trial_group = layout.trial_group
        self.secret = secret
        self.purged: set[str] = set()
        self.attribute_specs = attribute_specs(layout)  # the layout's [attributes.NAME], if any

    def source_column(self, field: str) -> str:
        """The source column a canonical field comes from (for messages in the user's terms)."""
        return self.layout.source_column(field) or field

    def export_date(self, path: Path) -> dt.date | None:
        return export_date_in_name(path, self.layout)

    def harmonise(self, fields: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
        """Canonical fields (and the row-aligned raw text) -> the records the schema validates."""
        return fields

    def prepare(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.purged = {t for (t,) in con.execute("SELECT tombstone FROM purged_patient").fetchall()}

    def batches(self, path: Path) -> Iterator[Batch]:
        # The columns the layout ignores are read no further: not into a quarantined row either.
        raw = read_source(path, self.layout).drop(self.layout.ignored_columns, strict=False)
        fields, issues = to_canonical(raw, self.layout)
        records = self.harmonise(fields, raw)
        if "source_patient_id" in records.columns:
            # The patient key, once per batch: the purge filter, the reference checks and the writes read
            # this column (HMAC was the largest cost of a load when each of them computed it).
            keys = patient_keys(self.secret, self._trial_group(records), pl.col("source_patient_id"))
            records = records.with_columns(keys.alias("patient_key"))
        relative = [name for name, spec in self.layout.fields.items() if spec.type in RELATIVE_TYPES]
        checked = schema_issues(records, raw, self.schema, self.source_column, relative)
        batch = Batch(raw=raw, records=records, issues=pl.concat([issues, checked]))
        if self.purged:
            batch = self._without_purged_patients(batch)
        yield self._with_attributes(self.checked(batch))

    def checked(self, batch: Batch) -> Batch:
        """The kind's own checks of a batch (its purged patients' lines already out), before the declared
        attributes are read: more issues, facts withheld, warnings."""
        return batch

    def attribute_origin(self) -> pl.Expr | None:
        """The diagnosis date that a `date` attribute counts days from (an expression over the raw frame);
        None where the kind has none (such a layout is refused when the loader is made)."""
        return None

    def _with_attributes(self, batch: Batch) -> Batch:
        """The declared attributes' values as a part of the batch; a value that cannot be read is left out
        and quarantined (a fact-level problem, Batch.fact_issues): the line loads."""
        if not self.attribute_specs:
            return batch
        values, problems = attribute_values(batch.raw, self.layout, self.attribute_origin())
        batch.parts[ATTRIBUTES] = values
        batch.fact_issues = pl.concat([batch.fact_issues, problems])
        return batch

    def merge_attributes(
        self, con: duckdb.DuckDBPyConnection, batch: Batch, source: str, in_file: str, ctx: LoadContext
    ) -> dict[str, Any]:
        """Declare the layout's attributes (source = the layout) and merge their values (counts under
        `attribute_value`; none without attributes). `source` is the SQL of the written stage (patient_id,
        source_line) and `in_file` selects its patients: the merge is scoped to them and to these
        attributes, so another source's attributes of a patient stay."""
        if not self.attribute_specs:
            return {}
        register_attributes(con, self.attribute_specs, self.layout.name, ctx.run_id, ctx.path)
        stage = f"cgdw_{self.kind}_attributes"
        con.register(stage, batch.parts[ATTRIBUTES].to_arrow())
        values = f"""
            SELECT s.patient_id, NULL::INTEGER AS sample_id, v.attribute_name, v.value_text, v.value_number,
                   v.value_boolean, v.{LINE} AS source_line
            FROM {stage} AS v JOIN ({source}) AS s ON s.source_line = v.{LINE}
        """
        names = [spec.name for spec in self.attribute_specs]
        counts = merge_attribute_values(con, values, in_file, names, ctx.run_id, ctx.source_file_id)
        con.unregister(stage)
        return {"attribute_value": counts.as_dict()}

    def _trial_group(self, records: pl.DataFrame) -> pl.Expr:
        """A row's trial group: its own column (lab, MRD, samples), else the layout's (a trial export)."""
        return pl.col("trial_group") if "trial_group" in records.columns else pl.lit(self.trial_group)

    def _without_purged_patients(self, batch: Batch) -> Batch:
        if "patient_key" not in batch.records.columns:
            return batch  # rows that name samples, not patients (copy-number calls)
        return without_purged_patients(batch, batch.records, self.purged, self.warnings)
