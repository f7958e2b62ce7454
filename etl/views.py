"""The view registry: `cgdw views apply|list|show|diff|retire`.

`apply` creates every shipped version as NAME_vN, in dependency order, plus a stable NAME that selects
from the latest version that is not retired, all in one transaction recorded as one ETL run. A version is
released the first time it is applied: its SQL checksum goes into `view_version`, and from then on a
different SQL under the same version is refused (a change is a new version). Older versions stay
queryable until `cgdw views retire NAME@vN`.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from etl import ledger
from etl.errors import CgdwError
from etl.faults import fault_point
from etl.materialized import fresh_table, generated_joins
from etl.surface import build_surface, surface_relations
from etl.warehouse import fetch_value, open_for_read, open_for_write, query_frame, relation_columns
from queries import VIEWS_DIR, ViewDefinition, find_definition, load_definitions, sql_checksum
from queries.attributes import ENTITIES, AttributeColumn, attribute_view_sql, stable_join_sql, view_name
from queries.cohorts import COHORTS_DIR, CohortDefinition, load_cohorts
from queries.mrd import SOURCE as MRD_SOURCE
from queries.mrd import VIEW_NAME as MRD_VIEW
from queries.mrd import MrdNamingError, mrd_pairs, pairs_in_sql, patient_mrd_sql


class ViewChanged(CgdwError):
    """The SQL of a released view version differs from what the warehouse released."""


@dataclass
class ViewsReport:
    run_id: int
    released: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stable: dict[str, str] = field(default_factory=dict)  # NAME -> NAME_vN it points at
    materialized: dict[str, int] = field(default_factory=dict)  # tables (re)built -> rows
    surface: list[str] = field(default_factory=list)  # relations offered to analysts (etl/surface.py)
    left_out: list[str] = field(default_factory=list)  # attributes a stable name could not add (name taken)
    dropped: list[str] = field(default_factory=list)  # stored copies of versions no longer materialised
    cohorts: list[str] = field(default_factory=list)  # cohort definitions released (NAME@vN)
    seconds: float = 0.0

    def summary(self) -> str:
        released = ", ".join(self.released) or "none"
        built = ", ".join(f"{table} ({rows:,} rows)" for table, rows in self.materialized.items())
        return (
            f"run {self.run_id}: {len(self.stable)} views applied in {self.seconds:.2f} s; "
            f"newly released: {released}; {len(self.unchanged)} versions unchanged"
            + (f"; materialised: {built}" if built else "")
            + (f"; not joined (name taken): {', '.join(self.left_out)}" if self.left_out else "")
            + (f"; cohort definitions released: {', '.join(self.cohorts)}" if self.cohorts else "")
        )


def _registered(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, int], tuple[str, bool]]:
    rows = con.execute(
        "SELECT name, version, sql_sha256, retired_at IS NOT NULL FROM view_version"
    ).fetchall()
    return {(name, version): (sha, retired) for name, version, sha, retired in rows}


def check_released(
    definitions: list[ViewDefinition], registered: dict[tuple[str, int], tuple[str, bool]]
) -> None:
    """Refuse to apply a released version whose SQL changed: name every such file at once."""
    changed = [
        d
        for d in definitions
        if (d.name, d.version) in registered and registered[d.name, d.version][0] != d.sql_sha256
    ]
    if changed:
        lines = [
            f"{d.path}: {d.ref} was released with SQL checksum {registered[d.name, d.version][0][:12]}, "
            f"the file now gives {d.sql_sha256[:12]}"
            for d in changed
        ]
        raise ViewChanged(
            "released views are immutable, nothing applied: "
            + "; ".join(lines)
            + ". Put the change in a new version (the next vN.sql) and apply again."
        )


def apply_views(
    db_path: Path,
    command: str = "cgdw views apply",
    views_dir: Path = VIEWS_DIR,
    cohorts_dir: Path = COHORTS_DIR,
) -> ViewsReport:
    started = time.monotonic()
    definitions = load_definitions(views_dir)
    cohorts = load_cohorts(cohorts_dir)
    with open_for_write(db_path) as con:
        registered = _registered(con)
        check_released(definitions, registered)
        check_released_cohorts(con, cohorts)
        with ledger.transaction(con):
            report = ViewsReport(run_id=ledger.start_run(con, ledger.VIEWS_APPLY, command))
            fault_point("views_after_register")
            for d in definitions:
                if registered.get((d.name, d.version), ("", False))[1]:
                    continue  # retired on purpose: stays dropped
                con.execute(f'CREATE OR REPLACE VIEW "{d.relation}" AS {d.sql}')
                if (d.name, d.version) in registered:
                    report.unchanged.append(d.ref)
                    continue
                con.execute(
                    "INSERT INTO view_version (name, version, sql_sha256, etl_run_id, applied_at) "
                    "VALUES ($name, $version, $sha, $run, $now)",
                    {"name": d.name, "version": d.version, "sha": d.sql_sha256, "run": report.run_id,
                     "now": ledger.utc_now()},
                )  # fmt: skip
                report.released.append(d.ref)
            report.released.extend(release_generated_views(con, report.run_id))
            report.cohorts = release_cohorts(con, cohorts, report.run_id)
            for name, latest in _latest_live(con).items():
                stable = _stable_sql(con, definitions, name, latest, report)
                con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {stable}')
                report.stable[name] = f"{name}_v{latest}"
            report.surface = build_surface(con, _live_relations(con))
            for d in definitions:
                if d.materialize and not registered.get((d.name, d.version), ("", False))[1]:
                    rows = _materialize(con, d, report.run_id)
                    if rows is not None:
                        report.materialized[d.materialized_table] = rows
            report.dropped = _drop_unwanted_copies(con, definitions)
            fault_point("views_before_commit")
            counts = {
                "cohorts": report.cohorts,
                "dropped": report.dropped,
                "released": report.released,
                "unchanged": report.unchanged,
                "stable": report.stable,
                "materialized": report.materialized,
            }
            ledger.finish_run(con, report.run_id, counts)
    report.seconds = time.monotonic() - started
    return report


def check_released_cohorts(con: duckdb.DuckDBPyConnection, cohorts: list[CohortDefinition]) -> None:
    """A released cohort definition is immutable, as a released view version is: name every changed file."""
    released = {
        (name, version): sha
        for name, version, sha in con.execute(
            "SELECT name, version, rules_sha256 FROM cohort_release"
        ).fetchall()
    }
    changed = [c for c in cohorts if released.get((c.name, c.version), c.sha256) != c.sha256]
    if changed:
        raise ViewChanged(
            "released cohort definitions are immutable, nothing applied: "
            + "; ".join(f"{c.path}: {c.ref} was released with other rules" for c in changed)
            + ". Put the change in a new version (the next vN.toml) and apply again."
        )


def release_cohorts(
    con: duckdb.DuckDBPyConnection, cohorts: list[CohortDefinition], run_id: int
) -> list[str]:
    """Record the cohort definitions not released yet; returns NAME@vN of each."""
    released = {(n, v) for n, v in con.execute("SELECT name, version FROM cohort_release").fetchall()}
    new = [c for c in cohorts if (c.name, c.version) not in released]
    for cohort in new:
        con.execute(
            "INSERT INTO cohort_release (name, version, rules_sha256, etl_run_id, released_at) "
            "VALUES ($name, $version, $sha, $run, $now)",
            {"name": cohort.name, "version": cohort.version, "sha": cohort.sha256, "run": run_id,
             "now": ledger.utc_now()},
        )  # fmt: skip
    return [c.ref for c in new]


def _dictionary(con: duckdb.DuckDBPyConnection, entity: str) -> list[AttributeColumn]:
    rows = con.execute(
        "SELECT attribute_name, data_type, label FROM attribute WHERE entity = $entity "
        "ORDER BY attribute_name",
        {"entity": entity},
    ).fetchall()
    return [AttributeColumn(name, data_type, label) for name, data_type, label in rows]


def _generated_sql(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The SELECT each generated view would have now: patient_attribute and sample_attribute from the data
    dictionary, patient_mrd from the MRD pairs present (once mrd_result v3 is there to read)."""
    sqls = {view_name(entity): attribute_view_sql(entity, _dictionary(con, entity)) for entity in ENTITIES}
    if relation_columns(con, MRD_SOURCE):  # mrd_result v3 applied
        try:
            sqls[MRD_VIEW] = patient_mrd_sql(mrd_pairs(con))
        except MrdNamingError as exc:
            raise CgdwError(f"cannot name the MRD columns, nothing applied: {exc}") from None
    return sqls


def _generated_pending(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """For each generated view whose columns changed since its latest version: (next version, its
    SELECT)."""
    pending = {}
    for name, sql in _generated_sql(con).items():
        versions = con.execute(
            "SELECT version, sql_sha256, retired_at IS NOT NULL FROM view_version WHERE name = $name "
            "ORDER BY version DESC",
            {"name": name},
        ).fetchall()
        live = [sha for _, sha, retired in versions if not retired]
        if live and live[0] == sql_checksum(sql):
            continue
        # A new number, after retired ones too: a version number is never reused.
        pending[name] = ((versions[0][0] + 1) if versions else 1, sql)
    return pending


def release_generated_views(con: duckdb.DuckDBPyConnection, run_id: int) -> list[str]:
    """Release a new version of patient_attribute / sample_attribute when the dictionary's columns changed
    (queries/attributes.py), of patient_mrd when the MRD pairs did (queries/mrd.py); its SELECT is kept in
    view_version.generated_sql. Returns NAME@vN released."""
    released = []
    for name, (version, sql) in _generated_pending(con).items():
        con.execute(f'CREATE OR REPLACE VIEW "{name}_v{version}" AS {sql}')
        con.execute(
            "INSERT INTO view_version (name, version, sql_sha256, etl_run_id, applied_at, generated_sql) "
            "VALUES ($name, $version, $sha, $run, $now, $sql)",
            {"name": name, "version": version, "sha": sql_checksum(sql), "run": run_id,
             "now": ledger.utc_now(), "sql": sql},
        )  # fmt: skip
        released.append(f"{name}@v{version}")
    return released


def _stable_sql(
    con: duckdb.DuckDBPyConnection,
    definitions: list[ViewDefinition],
    name: str,
    latest: int,
    report: ViewsReport,
) -> str:
    """What the stable NAME selects: its latest live version, joined with the latest version of each
    generated view its file names (`-- attributes: patient, mrd`)."""
    relation = f"{name}_v{latest}"
    shipped = next((d for d in definitions if (d.name, d.version) == (name, latest)), None)
    joins = generated_joins(con, shipped.joins if shipped else ())
    if not joins:
        return f'SELECT * FROM "{relation}"'
    base_columns = relation_columns(con, relation)
    taken = dict.fromkeys(base_columns, relation)
    for view, columns in joins:
        kept_out = [c for c in columns if c in taken and c != "patient_id"]
        report.left_out.extend(f"{c} of {view} (a column of {taken[c]})" for c in kept_out)
        taken.update((c, view) for c in columns if c not in taken)
    return stable_join_sql(relation, base_columns, joins)


def _drop_unwanted_copies(con: duckdb.DuckDBPyConnection, definitions: list[ViewDefinition]) -> list[str]:
    """Drop the stored copy of a version whose file no longer asks for one (cohort_patient v1 once v2 is
    the one analyses read): a copy nobody reads still costs every apply a rebuild."""
    wanted = {(d.name, d.version) for d in definitions if d.materialize}
    dropped = []
    for name, version, table in con.execute(
        "SELECT name, version, table_name FROM view_materialization ORDER BY name, version"
    ).fetchall():
        if (name, version) not in wanted:
            con.execute(f'DROP TABLE IF EXISTS "{table}"')
            con.execute(
                "DELETE FROM view_materialization WHERE name = $name AND version = $version",
                {"name": name, "version": version},
            )
            dropped.append(table)
    return dropped


def _materialize(con: duckdb.DuckDBPyConnection, d: ViewDefinition, run_id: int) -> int | None:
    """(Re)build NAME_vN_materialized unless it is fresh; the number of rows stored, None if kept."""
    if fresh_table(con, d.name, d.version):
        return None
    con.execute(f'DROP TABLE IF EXISTS "{d.materialized_table}"')
    # A plain CREATE TABLE AS of the whole result (the DuckDB 2.0 staging bug needs an empty CTAS first).
    con.execute(f'CREATE TABLE "{d.materialized_table}" AS SELECT * FROM "{d.relation}"')
    rows = int(fetch_value(con, f'SELECT count(*) FROM "{d.materialized_table}"'))
    key = {"name": d.name, "version": d.version}
    con.execute("DELETE FROM view_materialization WHERE name = $name AND version = $version", key)
    con.execute(
        "INSERT INTO view_materialization (name, version, table_name, etl_run_id, built_at, row_count) "
        "VALUES ($name, $version, $table, $run, $now, $rows)",
        {**key, "table": d.materialized_table, "run": run_id, "now": ledger.utc_now(), "rows": rows},
    )
    return rows


def views_outdated(db_path: Path, views_dir: Path = VIEWS_DIR) -> bool:
    """Whether `cgdw views apply` has work to do: a shipped version not applied yet, a stored copy that is
    stale, or no analysts' surface."""
    if (list_views(db_path, views_dir, latest=True).get_column("state") == "pending").any():
        return True
    with open_for_read(db_path, latest=True) as con:
        if not surface_relations(con) or _generated_pending(con):
            return True
        registered = _registered(con)
        return any(
            not fresh_table(con, d.name, d.version)
            for d in load_definitions(views_dir)
            if d.materialize and not registered.get((d.name, d.version), ("", False))[1]
        )


def _live_relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """NAME_vN of every live version and NAME of every view with one."""
    rows = con.execute("SELECT name, version FROM view_version WHERE retired_at IS NULL").fetchall()
    return [*(f"{name}_v{version}" for name, version in rows), *_latest_live(con)]


def _latest_live(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = con.execute(
        "SELECT name, max(version) FROM view_version WHERE retired_at IS NULL GROUP BY name ORDER BY name"
    ).fetchall()
    return {name: version for name, version in rows}


def retire_view(db_path: Path, name: str, version: int, views_dir: Path = VIEWS_DIR) -> str:
    """Drop NAME_vN on purpose; NAME moves to the latest version still live (or is dropped). Refused while
    a live version of another view reads it."""
    with open_for_write(db_path, force_publish=True) as con:  # records no run: publish whatever it did
        live = {key for key, (_, retired) in _registered(con).items() if not retired}
        readers = [
            d.ref
            for d in load_definitions(views_dir)
            if (d.name, d.version) in live and (name, version) in d.view_dependencies
        ]
        if readers:
            raise CgdwError(
                f"cannot retire {name}@v{version}: {', '.join(readers)} read it; retire those first"
            )
        row = con.execute(
            "SELECT retired_at FROM view_version WHERE name = $name AND version = $version",
            {"name": name, "version": version},
        ).fetchall()
        if not row:
            raise CgdwError(f"{name}@v{version} was never released in {db_path}: nothing to retire")
        if row[0][0] is not None:
            raise CgdwError(f"{name}@v{version} was already retired on {row[0][0]:%Y-%m-%d %H:%M} UTC")
        with ledger.transaction(con):
            con.execute(
                "UPDATE view_version SET retired_at = $now WHERE name = $name AND version = $version",
                {"now": ledger.utc_now(), "name": name, "version": version},
            )
            latest = _latest_live(con).get(name)
            if latest is None:
                con.execute(f'DROP VIEW IF EXISTS "{name}"')
            con.execute(f'DROP VIEW IF EXISTS "{name}_v{version}"')
            # Every stable name again: retiring a patient_attribute version moves what cohort_patient joins.
            definitions = load_definitions(views_dir)
            for stable_name, newest in _latest_live(con).items():
                stable = _stable_sql(con, definitions, stable_name, newest, ViewsReport(run_id=0))
                con.execute(f'CREATE OR REPLACE VIEW "{stable_name}" AS {stable}')
            stored = con.execute(
                "DELETE FROM view_materialization WHERE name = $name AND version = $version "
                "RETURNING table_name",
                {"name": name, "version": version},
            ).fetchall()
            for (table,) in stored:
                con.execute(f'DROP TABLE IF EXISTS "{table}"')
            build_surface(con, _live_relations(con))
    where = f"{name} now points at {name}_v{latest}" if latest else f"{name} has no live version left"
    return f"retired {name}@v{version}; {where}"


def list_views(
    db_path: Path | None = None, views_dir: Path = VIEWS_DIR, *, latest: bool = False
) -> pl.DataFrame:
    """Every shipped version, with its state in the warehouse when one is given (as published, or the
    warehouse itself with `latest`): released (checksum matches), changed (file differs from the release:
    apply will refuse), pending (not applied yet), retired."""
    shipped = pl.DataFrame(
        [
            {
                "name": d.name,
                "version": d.version,
                "depends": ", ".join(f"{n}_v{v}" for n, v in d.view_dependencies),
                "columns": len(d.columns),
                "sql_sha256": d.sql_sha256[:12],
            }
            for d in load_definitions(views_dir)
        ],
        schema={"name": pl.String, "version": pl.Int64, "depends": pl.String, "columns": pl.Int64,
                "sql_sha256": pl.String},
    )  # fmt: skip
    if db_path is None:
        return shipped.sort("name", "version")
    with open_for_read(db_path, latest=latest) as con:
        registry = query_frame(
            con,
            "SELECT name, version::BIGINT AS version, left(sql_sha256, 12) AS released_sha256, etl_run_id, "
            "applied_at, retired_at, generated_sql IS NOT NULL AS generated FROM view_version",
        )
    joined = shipped.join(registry, on=["name", "version"], how="full", coalesce=True)
    return (
        joined.with_columns(
            pl.when(pl.col("retired_at").is_not_null())
            .then(pl.lit("retired"))
            .when(pl.col("generated").fill_null(False))
            .then(pl.lit("generated (data dictionary)"))
            .when(pl.col("released_sha256").is_null())
            .then(pl.lit("pending"))
            .when(pl.col("sql_sha256").is_null())
            .then(pl.lit("released (file gone)"))
            .when(pl.col("sql_sha256") != pl.col("released_sha256"))
            .then(pl.lit("changed: refused"))
            .otherwise(pl.lit("released"))
            .alias("state")
        )
        .select("name", "version", "state", "depends", "columns", "sql_sha256", "etl_run_id", "applied_at")
        .sort("name", "version")
    )


GENERATED_VIEWS = (*(view_name(entity) for entity in ENTITIES), MRD_VIEW)


def show_view(
    name: str, version: int | None = None, views_dir: Path = VIEWS_DIR, db_path: Path | None = None
) -> str:
    """The view file as shipped: header (description, dependencies, columns) and SQL; for a view generated
    from the data dictionary, the version the warehouse released, its columns described by the dictionary."""
    if name not in GENERATED_VIEWS or db_path is None:
        return find_definition(name, version, views_dir).path.read_text(encoding="utf-8")
    with open_for_read(db_path) as con:
        rows = con.execute(
            "SELECT version, generated_sql FROM view_version WHERE name = $name "
            "AND ($version IS NULL OR version = $version) ORDER BY version DESC LIMIT 1",
            {"name": name, "version": version},
        ).fetchall()
        if not rows:
            raise CgdwError(
                f"{db_path} has released no {name}{f'@v{version}' if version else ''}: run `cgdw views apply`"
            )
        released, sql = rows[0]
        if name == MRD_VIEW:
            pairs = pairs_in_sql(sql)  # the released version's columns, whatever the data holds now
            described = {c: text for pair in pairs for c, text in pair.column_descriptions().items()}
            source = "generated from the MRD results (queries/mrd.py, docs/mrd.md)"
        else:
            described = {
                attribute: f"{label}{f' ({unit})' if unit else ''}, {data_type}, from {origin}"
                for attribute, data_type, label, unit, origin in con.execute(
                    "SELECT attribute_name, data_type, label, unit, source FROM attribute "
                    "WHERE entity = $entity ORDER BY attribute_name",
                    {"entity": name.removesuffix("_attribute")},
                ).fetchall()
            }
            source = "generated from the data dictionary (queries/attributes.py, docs/attributes.md)"
    columns = [f"--   {c}: {text}" for c, text in sorted(described.items()) if f'AS "{c}"' in sql]
    header = [f"-- name: {name}", f"-- version: {released}", f"-- {source}", "-- columns:", *columns]
    return "\n".join(header) + "\n" + sql + "\n"


def diff_views(name: str, old: int, new: int, views_dir: Path = VIEWS_DIR) -> str:
    a, b = find_definition(name, old, views_dir), find_definition(name, new, views_dir)
    return "".join(
        difflib.unified_diff(
            a.path.read_text(encoding="utf-8").splitlines(keepends=True),
            b.path.read_text(encoding="utf-8").splitlines(keepends=True),
            fromfile=f"{name}@v{old}",
            tofile=f"{name}@v{new}",
        )
    )
