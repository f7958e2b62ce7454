"""Reference-laboratory ETL: TCR status, ETP and oncogenetic markers (layout lab) into immunophenotype
and oncogenetic_result, plus the layout's declared attributes (attribute, attribute_value). Patients must
already exist (load the trial exports first)."""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from etl.errors import CgdwError
from etl.load import linking
from etl.load.framework import Batch, LoadContext
from etl.load.layout import Layout
from etl.load.readers import LINE
from etl.load.records import LabRecordV1
from etl.load.snapshot import merge_snapshot
from etl.load.tabular import TabularLoader
from etl.load.transform import unlisted_codes

STAGE = "cgdw_lab_stage"
MARKER_STAGE = "cgdw_lab_markers"


class LabLoader(TabularLoader):
    kind = "lab"
    schema = LabRecordV1

    def __init__(self, layout: Layout, secret: bytes) -> None:
        super().__init__(layout, secret)
        dated = [a.name for a in layout.attributes.values() if a.type == "date"]
        if dated:
            raise CgdwError(
                f"layout {layout.name!r}: attributes {', '.join(dated)} are dates, but a laboratory export "
                "has no diagnosis date to count days from: send them as days (type day)"
            )

    def checked(self, batch: Batch) -> Batch:
        self.warnings.extend(unlisted_codes(batch.raw, self.layout))
        return batch

    def _keyed(self, records: pl.DataFrame) -> pl.DataFrame:
        return linking.with_patient_key(records, self.secret, pl.col("trial_group"))

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        return linking.unknown_patient_issues(
            con, batch, self.secret, self.source_column("source_patient_id")
        )

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        records = batch.records
        keyed = linking.with_patient_id(con, self._keyed(records)).rename({LINE: "source_line"})
        source = linking.stage(con, STAGE, keyed)
        in_file = f"SELECT patient_id FROM ({source})"
        counts: dict[str, Any] = {}
        counts["immunophenotype"] = merge_snapshot(
            con,
            "immunophenotype",
            ["etp_status", "tcr_status_code"],
            f"SELECT patient_id, etp_status, tcr_status AS tcr_status_code, source_line FROM ({source})",
            in_file,
            ctx.run_id,
            ctx.source_file_id,
        ).as_dict()
        # Wide marker columns -> one row per tested marker; an empty cell states nothing and gives no row.
        markers = keyed.unpivot(
            index=["patient_id", "oncogenetics_method", "source_line"],
            on=list(self.layout.markers),
            variable_name="marker_code",
            value_name="result",
        ).filter(pl.col("result").is_not_null())
        marker_source = linking.stage(con, MARKER_STAGE, markers)
        counts["oncogenetic_result"] = merge_snapshot(
            con,
            "oncogenetic_result",
            ["marker_code", "result", "method"],
            f"SELECT patient_id, marker_code, result, oncogenetics_method AS method, source_line "
            f"FROM ({marker_source})",
            in_file,
            ctx.run_id,
            ctx.source_file_id,
        ).as_dict()
        counts |= self.merge_attributes(con, batch, source, in_file, ctx)
        return counts
