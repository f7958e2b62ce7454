"""The schema is created and removed only by the Alembic migrations, and matches the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from schema import database
from schema.models import Base
from tests.helpers import REPO


def tables(path: Path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }


def test_upgrade_creates_every_model_table_with_the_models_columns(db_path: Path) -> None:
    assert tables(db_path) == set(Base.metadata.tables) | {"alembic_version"}
    with duckdb.connect(str(db_path), read_only=True) as con:
        for name, table in Base.metadata.tables.items():
            columns = con.execute(
                "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = ?",
                [name],
            ).fetchall()
            assert {c for c, _ in columns} == set(table.columns.keys()), name
            nullable = {c for c, flag in columns if flag == "YES"}
            assert nullable == {c.name for c in table.columns if c.nullable}, name


def test_reference_codes_are_seeded(db_path: Path) -> None:
    with duckdb.connect(str(db_path), read_only=True) as con:
        protocols = {p for (p,) in con.execute("SELECT protocol_code FROM protocol").fetchall()}
        groups = dict(con.execute("SELECT tcr_status_code, tcr_group FROM tcr_status").fetchall())
    assert {"GRAALL-2003", "GRAALL-2005", "FRALLE-2000"} <= protocols
    assert groups["IMD"] == "immature" and groups["PREAB"] == "cortical" and groups["TCRGD"] == "mature_gd"


def test_downgrade_to_base_and_up_again(db_path: Path) -> None:
    database.downgrade(db_path, "base")
    assert tables(db_path) == {"alembic_version"}
    assert database.current_revision(db_path) is None
    database.upgrade(db_path)
    assert database.current_revision(db_path) == database.head_revision()
    assert tables(db_path) == set(Base.metadata.tables) | {"alembic_version"}


def test_plain_alembic_command_works_too(tmp_path: Path) -> None:
    path = tmp_path / "plain.duckdb"
    alembic = [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "-x", f"db={path}"]
    env = {**os.environ}
    subprocess.run([*alembic, "upgrade", "head"], check=True, env=env, cwd=tmp_path)
    assert database.current_revision(path) == database.head_revision()
    subprocess.run([*alembic, "downgrade", "base"], check=True, env=env, cwd=tmp_path)
    assert tables(path) == {"alembic_version"}


def test_generated_schema_docs_are_current() -> None:
    from schema.docs import render

    assert (REPO / "docs" / "schema.md").read_text() == render(), (
        "run: python -m schema.docs > docs/schema.md"
    )


def revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(database.alembic_config(Path("unused.duckdb")))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def table_columns(path: Path) -> dict[str, list[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() JOIN duckdb_tables() "
            "USING (database_name, schema_name, table_name) WHERE table_name <> 'alembic_version' "
            "ORDER BY table_name, column_index"
        ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


def table_checksums(path: Path, columns: dict[str, list[str]] | None = None) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every row of every table present (of the given columns of each table,
    e.g. those it had at an older revision; default: all of them)."""
    import hashlib

    columns = columns or table_columns(path)
    with duckdb.connect(str(path), read_only=True) as con:
        result = {}
        for name, names in columns.items():
            select = ", ".join(f'"{c}"' for c in names)
            rows = con.execute(f'SELECT {select} FROM "{name}" ORDER BY ALL').fetchall()
            # A whole-number double is the integer it was (migration 0010 made day columns DOUBLE).
            whole = [tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in r) for r in rows]
            result[name] = (len(rows), hashlib.sha256(repr(whole).encode()).hexdigest())
        return result


def test_a_loaded_warehouse_at_every_revision_upgrades_to_head_with_every_row_kept(
    warehouse: Path, tmp_path: Path
) -> None:
    """The synthetic cohort, loaded, is taken down to each older revision and migrated up again: every
    table that existed at that revision keeps every row, byte for byte."""
    import shutil

    for revision in revisions()[:-1]:
        copy = tmp_path / f"at_{revision}.duckdb"
        shutil.copy(warehouse, copy)
        database.downgrade(copy, revision)
        columns = table_columns(copy)  # those of the older revision: later ones add columns
        before = table_checksums(copy, columns)
        assert before["patient"][0] == 476 and before["variant_call"][0] > 0
        database.upgrade(copy)
        after = table_checksums(copy, columns)
        assert {name: after[name] for name in before} == before, revision
        assert database.current_revision(copy) == database.head_revision()


def test_runs_recorded_before_0006_get_their_kind_from_their_command(warehouse: Path, tmp_path: Path) -> None:
    """Migration 0006 adds etl_run.kind; older runs get it from the commands cgdw wrote for them."""
    import shutil

    from etl.consent import PatientRef, purge_withdrawn, withdraw_consent

    copy = tmp_path / "kinds.duckdb"
    shutil.copy(warehouse, copy)
    with duckdb.connect(str(copy), read_only=True) as con:
        key = con.execute("SELECT min(patient_key) FROM patient").fetchall()[0][0]
    withdraw_consent(copy, PatientRef(patient_key=key))
    purge_withdrawn(copy)
    query = "SELECT etl_run_id, kind FROM etl_run ORDER BY etl_run_id"
    with duckdb.connect(str(copy), read_only=True) as con:
        recorded = con.execute(query).fetchall()
    assert {kind for _, kind in recorded} == {"load", "views_apply", "consent", "purge"}
    database.downgrade(copy, "0005")
    database.upgrade(copy)
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute(query).fetchall() == recorded


def test_the_head_cgdw_checks_is_alembics_head() -> None:
    """`require_head` compares warehouses with schema.database.HEAD_REVISION: a new migration updates it."""
    assert database.head_revision() == database.alembic_head_revision()


def test_the_database_enforces_no_foreign_key_so_opening_stays_fast(db_path: Path) -> None:
    """Migration 0003: DuckDB 2.0 opens a file with foreign keys slower after every checkpoint."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        keys = con.execute("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'")
        assert keys.fetchall() == [(0,)]


def _migration(revision: str) -> Any:
    import importlib.util

    path = next((database.MIGRATIONS_DIR / "versions").glob(f"{revision}_*.py"))
    spec = importlib.util.spec_from_file_location(f"migration_{revision}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_loaded_synthetic_cohort_has_no_orphan_row(warehouse: Path) -> None:
    from schema.integrity import find_orphans, relations

    # Every foreign key the database enforced before migration 0003 is still a relation that is checked.
    enforced_before = {(table, column) for table, column, _, _ in _migration("0003").FOREIGN_KEYS}
    assert enforced_before <= {(r.table, r.column) for r in relations()}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert find_orphans(con) == []


def test_db_check_names_the_relation_an_orphan_row_breaks(warehouse: Path, tmp_path: Path) -> None:
    import shutil

    from tests.helpers import cgdw

    db = tmp_path / "orphan.duckdb"
    shutil.copy(warehouse, db)
    assert cgdw("db", "check", "--db", str(db)).returncode == 0
    with duckdb.connect(str(db)) as con:
        con.execute(
            "UPDATE baseline SET patient_id = -1 WHERE baseline_id = (SELECT min(baseline_id) FROM baseline)"
        )
    result = cgdw("db", "check", "--db", str(db))
    assert result.returncode == 1
    assert "baseline.patient_id: 1 rows point at no patient.patient_id" in result.stderr + result.stdout


def test_bulk_fact_keys_are_checked_not_indexed_and_db_check_finds_a_repeat(
    warehouse: Path, tmp_path: Path
) -> None:
    """Migration 0014: the primary keys of the bulk fact tables and variant_annotation's UNIQUE key cost
    more than the loads; sequences and the merges keep them unique, and `cgdw db check` counts repeats."""
    import shutil

    from schema.models import CHECKED_KEY_TABLES
    from tests.helpers import cgdw

    db = tmp_path / "repeat.duckdb"
    shutil.copy(warehouse, db)
    with duckdb.connect(str(db)) as con:
        indexed = con.execute(
            "SELECT DISTINCT table_name FROM duckdb_constraints() "
            "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
        ).fetchall()
    assert not {t for (t,) in indexed} & set(CHECKED_KEY_TABLES)
    assert {"patient", "sample", "variant", "etl_run"} <= {t for (t,) in indexed}
    assert cgdw("db", "check", "--db", str(db)).returncode == 0
    with duckdb.connect(str(db)) as con:
        con.execute(
            "INSERT INTO variant_annotation SELECT * REPLACE (variant_annotation_id + 1000000 AS "
            "variant_annotation_id) FROM variant_annotation LIMIT 1"
        )
        con.execute("INSERT INTO baseline SELECT * FROM baseline LIMIT 1")
    result = cgdw("db", "check", "--db", str(db))
    assert result.returncode == 1
    said = result.stderr + result.stdout
    assert "variant_annotation (variant_id, transcript_accession, annotation_source): 1 key value is" in said
    assert "baseline (baseline_id): 1 key value is on more than one row" in said
    # The older schema's index would refuse the repeat: a downgrade says so and changes nothing.
    with pytest.raises(Exception, match="cannot downgrade below 0014: baseline has 1 repeated values"):
        database.downgrade(db, "0013")
    assert database.current_revision(db) == database.head_revision()


def test_migration_0014_keeps_every_row_and_its_downgrade_restores_the_indexes(
    warehouse: Path, tmp_path: Path
) -> None:
    import shutil

    from schema.models import CHECKED_KEY_TABLES

    db = tmp_path / "down.duckdb"
    shutil.copy(warehouse, db)

    def contents() -> dict[str, list[tuple[object, ...]]]:
        with duckdb.connect(str(db), read_only=True) as con:
            return {
                t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in CHECKED_KEY_TABLES
            }

    def keys() -> int:
        with duckdb.connect(str(db), read_only=True) as con:
            return int(
                con.execute(
                    "SELECT count(*) FROM duckdb_constraints() "
                    "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
                ).fetchall()[0][0]
            )

    def definitions(path: Path) -> dict[str, str]:
        with duckdb.connect(str(path), read_only=True) as con:
            rows = con.execute("SELECT table_name, sql FROM duckdb_tables()").fetchall()
        return {t: sql for t, sql in rows if t in CHECKED_KEY_TABLES}

    fresh = tmp_path / "at_0013.duckdb"
    database.upgrade(fresh, "0013")
    before, indexed = contents(), keys()
    assert before["variant_annotation"] and before["baseline"]
    database.downgrade(db, "0013")
    assert definitions(db) == definitions(fresh)  # the very DDL the older migrations' downgrades edit
    assert contents() == before
    assert keys() == indexed + len(CHECKED_KEY_TABLES) + 1  # every primary key, and the annotation's UNIQUE
    database.upgrade(db)
    assert contents() == before and keys() == indexed
