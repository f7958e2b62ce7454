"""Trial-record ETL: a cooperative group's patient export (layouts graall, fralle, ...) into enrolment,
baseline, treatment_response and outcome_event, as day offsets from diagnosis (no dates are stored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.errors import CgdwError
from etl.load import linking
from etl.load.framework import Batch, LoadContext
from etl.load.layout import Layout
from etl.load.readers import LINE
from etl.load.records import ClinicalRecordV1
from etl.load.snapshot import merge_snapshot
from etl.load.tabular import TabularLoader
from etl.load.transform import days_between, issues_where
from etl.warehouse import fetch_value, query_frame

# Derived canonical fields and the layout field they are computed from (for messages in source terms).
DERIVED_FROM = {
    "diagnosis_year": "diagnosis_date",
    "cr_day": "cr_date",
    "hsct_day": "hsct_date",
    "relapse_day": "relapse_date",
    "second_relapse_day": "second_relapse_date",
    "death_day": "death_date",
    "last_contact_day": "last_contact_date",
}

STAGE = "cgdw_clinical_stage"
WITHDRAWN = "cgdw_withdrawn_patients"

# The canonical fields a clinical layout may map, with their type after parsing; the first ten are required.
CANONICAL_FIELDS: dict[str, pl.DataType] = {
    "source_patient_id": pl.String(),
    "protocol_code": pl.String(),
    "sex": pl.String(),
    "age_years": pl.Float64(),
    "diagnosis_date": pl.Date(),
    "diagnosis": pl.String(),
    "complete_remission": pl.Boolean(),
    "vital_status": pl.String(),
    "last_contact_date": pl.Date(),
    "consent_status": pl.String(),
    "wbc_g_per_l": pl.Float64(),
    "cns_involvement": pl.Boolean(),
    "mediastinal_mass": pl.Boolean(),
    "prednisone_response": pl.String(),
    "cr_date": pl.Date(),
    "hsct_in_cr1": pl.Boolean(),
    "hsct_date": pl.Date(),
    "relapse_date": pl.Date(),
    "second_relapse_date": pl.Date(),
    "death_date": pl.Date(),
    "death_cause": pl.String(),
}
REQUIRED_FIELDS = tuple(CANONICAL_FIELDS)[:10]


def harmonise(fields: pl.DataFrame) -> pl.DataFrame:
    """Canonical clinical records: absolute dates become days from diagnosis, the diagnosis date a year."""
    days = {
        name: days_between(DERIVED_FROM[name], "diagnosis_date")
        for name in DERIVED_FROM
        if name != "diagnosis_year"
    }
    return fields.select(
        pl.col(LINE),
        "source_patient_id",
        "protocol_code",
        "sex",
        "age_years",
        "diagnosis",
        pl.col("diagnosis_date").dt.year().cast(pl.Int64).alias("diagnosis_year"),
        "wbc_g_per_l",
        "cns_involvement",
        "mediastinal_mass",
        "prednisone_response",
        "complete_remission",
        days["cr_day"].alias("cr_day"),
        "hsct_in_cr1",
        days["hsct_day"].alias("hsct_day"),
        days["relapse_day"].alias("relapse_day"),
        days["second_relapse_day"].alias("second_relapse_day"),
        "vital_status",
        days["death_day"].alias("death_day"),
        "death_cause",
        days["last_contact_day"].alias("last_contact_day"),
        "consent_status",
    )


class ClinicalLoader(TabularLoader):
    kind = "clinical"
    schema = ClinicalRecordV1

    def __init__(self, layout: Layout, secret: bytes) -> None:
        super().__init__(layout, secret)
        if not layout.trial_group:
            raise CgdwError(f"clinical layout {layout.name!r} must name its trial_group")
        problems = []
        unknown = sorted(set(layout.fields) - set(CANONICAL_FIELDS))
        if unknown:
            problems.append(f"unknown fields {', '.join(unknown)}")
        missing = [name for name in REQUIRED_FIELDS if name not in layout.fields]
        if missing:
            problems.append(f"required fields not mapped: {', '.join(missing)}")
        if problems:
            raise CgdwError(f"layout {layout.name!r} does not fit clinical records: {'; '.join(problems)}")

    def source_column(self, field: str) -> str:
        return self.layout.source_column(DERIVED_FROM.get(field, field)) or field

    def harmonise(self, fields: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
        # A layout may leave optional fields out (its source does not collect them): they are NULL.
        fields = fields.with_columns(
            pl.lit(None, dtype).alias(name)
            for name, dtype in CANONICAL_FIELDS.items()
            if name not in fields.columns
        )
        return harmonise(fields)

    def batches(self, path: Path) -> Iterator[Batch]:
        for batch in super().batches(path):
            # Without a diagnosis date no day offset exists: report the date, not every offset after it.
            origin = self.source_column("diagnosis_date")
            undated = batch.issues.filter(pl.col("column") == origin).get_column(LINE)
            offsets = [self.source_column(name) for name in DERIVED_FROM if name != "diagnosis_year"]
            cascade = pl.col(LINE).is_in(undated.implode()) & pl.col("column").is_in(offsets)
            batch.issues = batch.issues.filter(~cascade)
            yield batch

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        known = [code for (code,) in con.execute("SELECT protocol_code FROM protocol").fetchall()]
        column = self.source_column("protocol_code")
        unknown = pl.col("protocol_code").is_not_null() & ~pl.col("protocol_code").is_in(known)
        return issues_where(
            batch.records,
            unknown,
            column,
            pl.col("protocol_code"),
            "known_protocol",
            pl.format("protocol {} is not in the protocol reference table", pl.col("protocol_code")),
        )

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        records = batch.records
        assert self.trial_group is not None
        keyed = linking.with_patient_key(records, self.secret, pl.lit(self.trial_group))
        source = linking.stage(con, STAGE, keyed.rename({LINE: "source_line"}))
        new_patients = linking.create_missing_patients(con, STAGE, self.trial_group, ctx)
        in_file = f"SELECT patient_id FROM ({source})"

        def merge(table: str, columns: dict[str, str]) -> dict[str, int]:
            """Merge into `table` its columns (name -> expression over the stage)."""
            select = ", ".join(f"{expr} AS {name}" for name, expr in columns.items())
            sql = f"SELECT patient_id, {select}, source_line FROM ({source})"
            return merge_snapshot(
                con, table, list(columns), sql, in_file, ctx.run_id, ctx.source_file_id
            ).as_dict()

        def same_names(*names: str) -> dict[str, str]:
            return {name: name for name in names}

        counts: dict[str, Any] = {"patient": {"inserted": new_patients}}
        # A withdrawal recorded in the warehouse stands until `cgdw consent restore`: an export that still
        # says 'given' must not bring the patient back. The set is read once, before the merge supersedes
        # rows, and kept as a frame so that both merge statements see the same patients.
        withdrawn = query_frame(
            con,
            "SELECT patient_id FROM enrolment "
            "WHERE superseded_by_run_id IS NULL AND consent_status = 'withdrawn'",
        )
        con.register(WITHDRAWN, withdrawn.to_arrow())
        kept = fetch_value(
            con,
            f"SELECT count(*) FROM ({source}) WHERE consent_status IS DISTINCT FROM 'withdrawn' "
            f"AND patient_id IN (SELECT patient_id FROM {WITHDRAWN})",
        )
        if kept:
            self.warnings.append(
                f"{kept} patients whose consent was withdrawn in cgdw are not 'withdrawn' in this export: "
                "the withdrawal stands (if they consent again, record it with `cgdw consent restore`)"
            )
        counts["enrolment"] = merge(
            "enrolment",
            {
                **same_names("protocol_code", "diagnosis", "diagnosis_year", "sex"),
                "age_at_diagnosis_years": "age_years",
                "consent_status": f"CASE WHEN patient_id IN (SELECT patient_id FROM {WITHDRAWN}) "
                "THEN 'withdrawn' ELSE consent_status END",
            },
        )
        con.unregister(WITHDRAWN)
        counts["baseline"] = merge(
            "baseline", same_names("wbc_g_per_l", "cns_involvement", "mediastinal_mass")
        )
        counts["treatment_response"] = merge(
            "treatment_response",
            same_names("complete_remission", "cr_day", "prednisone_response", "hsct_in_cr1", "hsct_day"),
        )
        events = f"""
            SELECT patient_id, 'relapse' AS event_type, 1 AS event_seq, relapse_day AS day,
                   NULL AS cause, NULL::BOOLEAN AS in_cr, source_line
            FROM ({source}) WHERE relapse_day IS NOT NULL
            UNION ALL
            SELECT patient_id, 'relapse', 2, second_relapse_day, NULL, NULL, source_line
            FROM ({source}) WHERE second_relapse_day IS NOT NULL
            UNION ALL
            SELECT patient_id, 'death', 1, death_day, death_cause,
                   complete_remission AND relapse_day IS NULL, source_line
            FROM ({source}) WHERE death_day IS NOT NULL
            UNION ALL
            SELECT patient_id, 'last_follow_up', 1, last_contact_day, NULL, NULL, source_line
            FROM ({source})
        """
        counts["outcome_event"] = merge_snapshot(
            con,
            "outcome_event",
            ["event_type", "event_seq", "day", "cause", "in_cr"],
            events,
            in_file,
            ctx.run_id,
            ctx.source_file_id,
        ).as_dict()
        return counts

    def finish(self, con: duckdb.DuckDBPyConnection, ctx: LoadContext) -> dict[str, Any]:
        in_file = f"SELECT patient_id FROM ({linking.stage_sql(STAGE)})"
        absent = [
            key
            for (key,) in con.execute(
                f"""
                SELECT p.patient_key FROM patient AS p
                WHERE p.trial_group = $group AND p.patient_id NOT IN ({in_file}) ORDER BY p.patient_key
                """,
                {"group": self.trial_group},
            ).fetchall()
        ]
        if absent:
            # Which ones, for the data manager to ask the trial office: their keys, never their numbers.
            self.audit["absent_patients"] = absent
            self.warnings.append(
                f"{len(absent)} {self.trial_group} patients already in the warehouse are not in this "
                "snapshot (absent or rejected): their rows are kept unchanged (their patient keys: "
                "absent_patients in the run's counts_json)"
            )
        return {}
