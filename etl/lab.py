"""Reference-laboratory ETL: TCR status, ETP and oncogenetic markers (layout lab) into immunophenotype
and oncogenetic_result. Patients must already exist (load the trial exports first)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl import patients
from etl.errors import CgdwError
from etl.framework import Batch, LoadContext, SourceLoader
from etl.layouts import Layout
from etl.readers import LINE, read_source
from etl.schemas import LabRecordV1
from etl.snapshot import merge_snapshot
from etl.transform import issues_where, to_canonical
from etl.validation import schema_issues

STAGE = "cgdw_lab_stage"
MARKER_STAGE = "cgdw_lab_markers"


class LabLoader(SourceLoader):
    kind = "lab"

    def __init__(self, layout: Layout, secret: bytes) -> None:
        if layout.kind != "lab":
            raise CgdwError(f"layout {layout.name!r} is not a laboratory layout")
        self.layout = layout
        self.layout_name = layout.name
        self.secret = secret

    def source_column(self, field: str) -> str:
        return self.layout.source_column(field) or field

    def batches(self, path: Path) -> Iterator[Batch]:
        raw = read_source(path, self.layout)
        records, issues = to_canonical(raw, self.layout)
        issues = pl.concat([issues, schema_issues(records, raw, LabRecordV1, self.source_column)])
        yield Batch(raw=raw, records=records, issues=issues)

    def _keyed(self, records: pl.DataFrame) -> pl.DataFrame:
        return patients.with_patient_key(records, self.secret, pl.col("trial_group"))

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        keyed = self._keyed(batch.records.filter(pl.col("trial_group").is_not_null()))
        unknown = patients.unknown_patient_lines(con, keyed)
        column = self.source_column("source_patient_id")
        return issues_where(
            batch.records.join(unknown, on=LINE, how="semi"),
            pl.lit(True),
            column,
            pl.col("source_patient_id"),
            "known_patient",
            pl.format(
                "no {} patient {} in the warehouse: load the trial export first",
                pl.col("trial_group"),
                pl.col("source_patient_id"),
            ),
        )

    def write(
        self, con: duckdb.DuckDBPyConnection, records: pl.DataFrame, ctx: LoadContext
    ) -> dict[str, Any]:
        keyed = self._keyed(records).rename({LINE: "source_line"})
        source = patients.stage(con, STAGE, keyed)
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
            index=["patient_key", "oncogenetics_method", "source_line"],
            on=list(self.layout.markers),
            variable_name="marker_code",
            value_name="result",
        ).filter(pl.col("result").is_not_null())
        marker_source = patients.stage(con, MARKER_STAGE, markers)
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
        return counts
