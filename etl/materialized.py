"""Materialised view versions: which relation a reader should scan, and when a stored copy is stale.

A view version marked `-- materialize: table` is also stored by `cgdw views apply` as a table,
NAME_vN_materialized, recorded in `view_materialization` with the apply run that built it. The copy is
fresh while no run that changes data (a load, a consent change, a purge: any succeeded run whose kind is
not views_apply, etl/ledger.py) has committed after that run. A stale copy is never read: readers fall
back to the view, which is always current, until the next `cgdw views apply` (a pipeline run ends with
one) rebuilds it.
"""

from __future__ import annotations

import duckdb

from queries import parse_ref

_FRESH = """
    SELECT m.table_name FROM view_materialization AS m
    WHERE m.name = $name AND m.version = $version
      AND NOT EXISTS (
          SELECT 1 FROM etl_run AS r
          WHERE r.etl_run_id > m.etl_run_id AND r.status = 'succeeded' AND r.kind <> 'views_apply'
      )
"""


def fresh_table(con: duckdb.DuckDBPyConnection, name: str, version: int) -> str | None:
    """The materialised table of NAME_vN if it is fresh, else None."""
    rows = con.execute(_FRESH, {"name": name, "version": version}).fetchall()
    return rows[0][0] if rows else None


def relation_to_read(con: duckdb.DuckDBPyConnection, view: str) -> str:
    """What to scan for `view` (a stable NAME or a pinned NAME_vN): its fresh materialised table, else the
    view itself. A stable name is resolved through the registry to its latest live version."""
    name, version = parse_ref(view)
    if version is None:
        latest = con.execute(
            "SELECT max(version) FROM view_version WHERE name = $name AND retired_at IS NULL", {"name": name}
        ).fetchall()
        if not latest or latest[0][0] is None:
            return view
        version = int(latest[0][0])
    return fresh_table(con, name, version) or view
