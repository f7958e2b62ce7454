"""`cgdw query "SELECT ..."`: an analyst's read-only SQL over the warehouse.

Four guards: sqlglot accepts exactly one SELECT (`etl.sqlguard.safe_select`) that reads only the analysts'
surface, where every relation holds consented patients only (etl/surface.py: no audit table, no quarantine,
no pinned version showing a withdrawn patient); the connection is read-only; and DuckDB's external access
is off, so a SELECT cannot read or write files (`read_csv('/etc/...')`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from etl.errors import CgdwError
from etl.sqlguard import safe_select
from etl.surface import SCHEMA, surface_relations
from etl.warehouse import read_only_connection


def query_with_limit(db_path: Path, sql: str, limit: int) -> tuple[pl.DataFrame, bool]:
    """At most `limit` rows (0: all), and whether rows were left out (one more row is read to know)."""
    if limit < 0:
        raise CgdwError(f"--limit {limit}: give a number of rows, or 0 for all of them")
    if limit == 0:
        return run_query(db_path, sql), False
    frame = run_query(db_path, sql, limit=limit + 1)
    return frame.head(limit), frame.height > limit


def run_query(db_path: Path, sql: str, limit: int | None = None) -> pl.DataFrame:
    with read_only_connection(db_path, external_access=False) as con:
        taken = {
            name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        checked = safe_select(sql, surface_relations(con), taken)
        con.execute(f"SET search_path = '{SCHEMA}'")  # unqualified names are the surface's
        try:
            relation = con.sql(checked)
            if limit is not None:
                relation = relation.limit(limit)
            return _as_text_where_needed(relation).pl()
        except duckdb.Error as exc:
            # DuckDB's own message (unknown column, type error...) is what the analyst needs.
            raise CgdwError(f"query failed: {str(exc).splitlines()[0]}") from None


# DuckDB types that polars cannot hold or print in every format (intervals, unions; bytes in JSON; dates
# and times out of its range, e.g. 'infinity'): shown as DuckDB writes them as text.
_AS_TEXT = ("BLOB", "INTERVAL", "UNION", "MAP", "DATE", "TIMESTAMP", "TIME", "BIT")


def _as_text_where_needed(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    columns = []
    for name, dtype in zip(relation.columns, relation.types, strict=True):
        quoted = '"' + name.replace('"', '""') + '"'
        text = str(dtype).upper().startswith(_AS_TEXT)
        columns.append(f"CAST({quoted} AS VARCHAR) AS {quoted}" if text else quoted)
    return relation.project(", ".join(columns)) if columns else relation
