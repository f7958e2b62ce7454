"""The common shape of loaders whose source is a table described by a layout (trial exports, lab,
sample manifest, MRD, copy-number calls): read -> layout transform -> pandera schema, in one batch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import duckdb
import pandera.polars as pa
import polars as pl

from etl.errors import CgdwError
from etl.load.framework import Batch, SourceLoader
from etl.load.layout import Layout
from etl.load.readers import LINE, read_source
from etl.load.snapshot import export_date_in_name
from etl.load.transform import to_canonical
from etl.load.validation import schema_issues
from etl.privacy import patient_keys, tombstone


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
        checked = schema_issues(records, raw, self.schema, self.source_column)
        batch = Batch(raw=raw, records=records, issues=pl.concat([issues, checked]))
        yield self._without_purged_patients(batch) if self.purged else batch

    def _without_purged_patients(self, batch: Batch) -> Batch:
        """Drop the rows of purged patients: neither loaded nor quarantined (a quarantined row keeps the
        source values), only counted in a warning."""
        records = batch.records
        if "source_patient_id" not in records.columns:
            return batch  # rows that name samples, not patients (copy-number calls)
        group = pl.col("trial_group") if "trial_group" in records.columns else pl.lit(self.trial_group)
        keys = records.select(
            LINE, patient_keys(self.secret, group, pl.col("source_patient_id")).alias("key")
        )
        purged = keys.filter(
            pl.col("key").map_elements(tombstone, return_dtype=pl.String).is_in(list(self.purged))
        )
        if purged.is_empty():
            return batch
        self.warnings.append(
            f"{purged.height} rows of {purged['key'].n_unique()} purged patients were not loaded: their "
            "consent was withdrawn and their data purged (cgdw purge)"
        )
        return batch.without_lines(purged[LINE])
