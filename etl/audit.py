"""Reading the ETL audit trail: runs, their files and what was quarantined."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from etl.errors import CgdwError
from etl.warehouse import open_for_read, query_frame


def list_runs(db_path: Path, limit: int = 50) -> pl.DataFrame:
    with open_for_read(db_path) as con:
        return query_frame(
            con,
            """
            SELECT r.etl_run_id AS run, r.started_at, r.status, f.kind, f.layout, f.file_name,
                   r.rows_read, r.rows_loaded, r.rows_rejected, r.run_by
            FROM etl_run AS r LEFT JOIN source_file AS f USING (etl_run_id)
            ORDER BY r.etl_run_id DESC LIMIT $limit
            """,
            {"limit": limit},
        )


def list_rejects(db_path: Path, run_id: int) -> pl.DataFrame:
    with open_for_read(db_path) as con:
        if not con.execute("SELECT 1 FROM etl_run WHERE etl_run_id = $run", {"run": run_id}).fetchall():
            raise CgdwError(f"no ETL run {run_id} in {db_path} (see `cgdw runs`)")
        return query_frame(
            con,
            """
            SELECT f.file_name AS file, q.line, q.column_name AS "column", q.value, q.rule, q.message
            FROM rejected_record AS q JOIN source_file AS f USING (source_file_id)
            WHERE q.etl_run_id = $run ORDER BY q.line, q.column_name
            """,
            {"run": run_id},
        )
