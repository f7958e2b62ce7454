"""Linking source records to patients (through their pseudonymous key) and to samples (by sample id), and
leaving out the rows of purged patients: shared by every loader."""

from __future__ import annotations

import duckdb
import polars as pl

from etl.load.framework import Batch, LoadContext
from etl.load.readers import LINE
from etl.load.transform import issues_where
from etl.privacy import patient_keys, tombstones
from etl.warehouse import fetch_value, query_frame


def with_patient_key(records: pl.DataFrame, secret: bytes, trial_group: pl.Expr) -> pl.DataFrame:
    """`records` with the patient_key of each row's (trial group, source_patient_id); records that have it
    already (TabularLoader computes it once per batch) are returned as they are."""
    if "patient_key" in records.columns:
        return records
    return records.with_columns(
        patient_keys(secret, trial_group, pl.col("source_patient_id")).alias("patient_key")
    )


def with_patient_id(con: duckdb.DuckDBPyConnection, records: pl.DataFrame) -> pl.DataFrame:
    """`records` (with patient_key) with the patient_id of each row (NULL: no such patient), resolved once:
    one join of the file's distinct keys with `patient`, so that the merges that follow read an integer
    instead of joining 64-character keys again in every statement."""
    keys = records.select(pl.col("patient_key").unique().drop_nulls())
    con.register("cgdw_patient_keys", keys.to_arrow())
    try:
        ids = query_frame(
            con,
            "SELECT patient_key, patient_id FROM cgdw_patient_keys JOIN patient USING (patient_key)",
        )
    finally:
        con.unregister("cgdw_patient_keys")
    return records.join(
        ids.cast({"patient_id": pl.Int32}), on="patient_key", how="left", maintain_order="left"
    )


def stage(con: duckdb.DuckDBPyConnection, name: str, records: pl.DataFrame) -> str:
    """Register `records` (with patient_key, or already with patient_id) for SQL and return a SELECT of the
    rows of known patients with their patient_id.

    Arrow registration, not CREATE TABLE AS: a CTAS staging table inside the load transaction hits a
    DuckDB 2.0 wrong-result bug (shared/stack-notes.md)."""
    con.register(name, records.to_arrow())
    if "patient_id" in records.columns:
        return f"SELECT * FROM {name} WHERE patient_id IS NOT NULL"
    return stage_sql(name)


def stage_sql(name: str) -> str:
    return f"SELECT p.patient_id, s.* FROM {name} AS s JOIN patient AS p USING (patient_key)"


def create_missing_patients(
    con: duckdb.DuckDBPyConnection, name: str, trial_group: str, ctx: LoadContext
) -> int:
    return int(
        fetch_value(
            con,
            f"""
        INSERT INTO patient (patient_key, trial_group, created_run_id, source_file_id)
        SELECT s.patient_key, $group, $run, $file FROM {name} AS s
        WHERE NOT EXISTS (SELECT 1 FROM patient AS p WHERE p.patient_key = s.patient_key)
        """,
            {"group": trial_group, "run": ctx.run_id, "file": ctx.source_file_id},
        )
    )


def unknown_patient_lines(con: duckdb.DuckDBPyConnection, keyed: pl.DataFrame) -> pl.DataFrame:
    """The rows of `keyed` (with `_line` and patient_key) whose patient is not in the warehouse."""
    con.register("cgdw_patient_probe", keyed.select("_line", "patient_key").to_arrow())
    try:
        return query_frame(
            con,
            """
            SELECT s._line FROM cgdw_patient_probe AS s
            WHERE NOT EXISTS (SELECT 1 FROM patient AS p WHERE p.patient_key = s.patient_key)
            """,
        )
    finally:
        con.unregister("cgdw_patient_probe")


def missing_patient_issues(records: pl.DataFrame, failed: pl.Expr, column: str) -> pl.DataFrame:
    """Issues (rule known_patient) for rows of `records` (trial_group, source_patient_id) where `failed`."""
    return issues_where(
        records,
        failed,
        column,
        pl.col("source_patient_id"),
        "known_patient",
        pl.format(
            "no {} patient {} in the warehouse: load the trial export first",
            pl.col("trial_group"),
            pl.col("source_patient_id"),
        ),
    )


def unknown_patient_issues(
    con: duckdb.DuckDBPyConnection, batch: Batch, secret: bytes, column: str
) -> pl.DataFrame:
    """known_patient issues for rows whose patient no trial export has created."""
    records = batch.records.filter(
        pl.col("trial_group").is_not_null() & pl.col("source_patient_id").is_not_null()
    )
    unknown = unknown_patient_lines(con, with_patient_key(records, secret, pl.col("trial_group")))
    return missing_patient_issues(records.join(unknown, on="_line", how="semi"), pl.lit(True), column)


def known_samples(con: duckdb.DuckDBPyConnection, keys: list[str]) -> pl.DataFrame:
    """sample_key, sample_id and the assay assembly of the given sample ids that the warehouse knows."""
    con.register(
        "cgdw_sample_probe", pl.DataFrame({"sample_key": keys}, schema={"sample_key": pl.String}).to_arrow()
    )
    try:
        rows = con.execute(
            """
            SELECT s.sample_key, s.sample_id, a.assembly FROM cgdw_sample_probe AS p
            JOIN sample AS s USING (sample_key) LEFT JOIN sequencing_assay AS a USING (sequencing_assay_id)
            """
        ).fetchall()
    finally:
        con.unregister("cgdw_sample_probe")
    return pl.DataFrame(
        rows,
        schema={"sample_key": pl.String, "sample_id": pl.Int32, "assay_assembly": pl.String},
        orient="row",
    )


def unknown_sample_issues(records: pl.DataFrame, column: str) -> pl.DataFrame:
    """Issues (rule known_sample) for the rows of `records` whose sample_key found no sample_id."""
    return issues_where(
        records,
        pl.col("sample_id").is_null(),
        column,
        pl.col("sample_key"),
        "known_sample",
        pl.format("no sample {} in the warehouse: load the sample manifest first", pl.col("sample_key")),
    )


def without_purged_patients(batch: Batch, rows: pl.DataFrame, purged: set[str], warnings: list[str]) -> Batch:
    """The batch without the lines of purged patients (`rows`: a frame of the batch with `_line` and
    patient_key): neither loaded nor quarantined (a quarantined row keeps the source values), only counted
    in a warning. A later export or a re-import never brings a purged patient back."""
    if not purged or rows.is_empty():
        return batch
    keys = rows.select(LINE, pl.col("patient_key").alias("key"))
    gone = keys.filter(tombstones(pl.col("key")).is_in(list(purged)))
    if gone.is_empty():
        return batch
    warnings.append(
        f"{gone.height} rows of {gone['key'].n_unique()} purged patients were not loaded: their consent "
        "was withdrawn and their data purged (cgdw purge)"
    )
    return batch.without_lines(gone[LINE])
