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

from etl.warehouse import relation_columns
from queries import ViewDefinitionError, find_definition, parse_ref
from queries.attributes import stable_join_sql

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


def latest_live_version(con: duckdb.DuckDBPyConnection, name: str) -> int | None:
    """The newest version of NAME not retired (what the stable NAME selects), None if none."""
    latest = con.execute(
        "SELECT max(version) FROM view_version WHERE name = $name AND retired_at IS NULL", {"name": name}
    ).fetchall()
    return None if not latest or latest[0][0] is None else int(latest[0][0])


def relation_to_read(con: duckdb.DuckDBPyConnection, view: str) -> str:
    """What to scan for `view` (a stable NAME or a pinned NAME_vN): its fresh materialised table, else the
    view itself. A stable name is resolved through the registry to its latest live version."""
    name, version = parse_ref(view)
    version = latest_live_version(con, name) if version is None else version
    if version is None:
        return view
    return fresh_table(con, name, version) or view


def stored_with_joins(con: duckdb.DuckDBPyConnection, view: str) -> str | None:
    """For a stable NAME whose latest version is stored (fresh) and whose file joins generated views
    (`-- attributes: patient, mrd`): the SELECT of the stored copy joined with their latest live versions,
    the rows the stable view gives, without recomputing the version. None otherwise."""
    name, version = parse_ref(view)
    latest = latest_live_version(con, name) if version is None else None
    table = fresh_table(con, name, latest) if latest is not None else None
    if latest is None or table is None:
        return None
    try:
        joins = generated_joins(con, find_definition(name, latest).joins)
    except ViewDefinitionError:
        return None
    return stable_join_sql(table, relation_columns(con, table), joins) if joins else None


def generated_joins(con: duckdb.DuckDBPyConnection, views: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """(NAME_vN, its columns) of the latest live version of each generated view a stable name joins."""
    joins = []
    for view in views:
        version = latest_live_version(con, view)
        if version is not None:
            relation = f"{view}_v{version}"
            joins.append((relation, relation_columns(con, relation)))
    return joins
