"""Snapshot merge into a versioned fact table (schema.models.VersionedFact).

Trial exports are full snapshots. For every patient present in the new snapshot, current rows that the
snapshot no longer states identically are marked `superseded_by_run_id = this run` (kept, queryable), and
rows not yet current are inserted. Unchanged rows are left alone and keep their original lineage.
Patients (or samples) absent from the snapshot are not touched (the caller reports them): nothing is
deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from etl.warehouse import fetch_value


@dataclass(frozen=True)
class MergeCounts:
    inserted: int
    superseded: int
    unchanged: int

    def as_dict(self) -> dict[str, int]:
        return {"inserted": self.inserted, "superseded": self.superseded, "unchanged": self.unchanged}


def merge_snapshot(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[str],
    source_sql: str,
    scope_sql: str,
    run_id: int,
    source_file_id: int,
    scope: str = "patient_id",
    scope_filter: str = "true",
) -> MergeCounts:
    """Merge `source_sql` (a SELECT giving `scope`, `columns` and source_line) into `table`.

    The snapshot covers the patients (or, with scope="sample_id", the samples) that `scope_sql` selects,
    including those with no row for this table (a relapse removed by a correction is superseded too), and
    within them the rows `scope_filter` (SQL over `t`) selects: copy-number calls from SEG segments and
    from call files are separate snapshots of the same table.
    """
    quoted = [f'"{c}"' for c in [scope, *columns]]  # "end", "start": quote every column name
    # Both statements look only at the current rows of the scope (the source's own patients or samples):
    # without `t.scope IN (...)` in the insert, DuckDB hashes the whole table for the anti-join, and a
    # VCF batch of 120 samples cost 0.2 s more at a million patients than at a hundred thousand.
    same = " AND ".join(f"s.{c} IS NOT DISTINCT FROM t.{c}" for c in quoted)
    # The scope's key range as constants: DuckDB prunes row groups by their min/max on a constant range,
    # not on `IN (subquery)`, so the statements below read the rows near the scope, not the whole table
    # (a VCF batch's UPDATE scanned 8.5 million calls at a million patients: 0.15 s of its 0.5 s).
    low, high = con.execute(f"SELECT min({scope}), max({scope}) FROM ({scope_sql})").fetchall()[0]
    in_range = "false" if low is None else f"t.{scope} BETWEEN {int(low)} AND {int(high)}"
    superseded = fetch_value(
        con,
        f"""
        UPDATE {table} AS t SET superseded_by_run_id = $run
        WHERE t.superseded_by_run_id IS NULL AND {in_range}
          AND t.{scope} IN ({scope_sql}) AND ({scope_filter})
          AND NOT EXISTS (SELECT 1 FROM ({source_sql}) AS s WHERE {same})
        """,
        {"run": run_id},
    )
    col_list = ", ".join(quoted)
    inserted = fetch_value(
        con,
        f"""
        INSERT INTO {table} ({col_list}, etl_run_id, source_file_id, source_line)
        SELECT {", ".join(f"s.{c}" for c in quoted)}, $run, $file, s.source_line
        FROM ({source_sql}) AS s
        WHERE NOT EXISTS (
            SELECT 1 FROM {table} AS t
            WHERE t.superseded_by_run_id IS NULL AND {in_range} AND t.{scope} IN ({scope_sql}) AND {same}
        )
        """,
        {"run": run_id, "file": source_file_id},
    )
    total = fetch_value(con, f"SELECT count(*) FROM ({source_sql})")
    return MergeCounts(inserted=inserted, superseded=superseded, unchanged=total - inserted)
