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


def run_query(db_path: Path, sql: str, limit: int | None = None) -> pl.DataFrame:
    with read_only_connection(db_path, external_access=False) as con:
        checked = safe_select(sql, surface_relations(con))
        con.execute(f"SET search_path = '{SCHEMA}'")  # unqualified names are the surface's
        try:
            relation = con.sql(checked)
            if limit is not None:
                relation = relation.limit(limit)
            return relation.pl()
        except duckdb.Error as exc:
            # DuckDB's own message (unknown column, type error...) is what the analyst needs.
            raise CgdwError(f"query failed: {str(exc).splitlines()[0]}") from None
