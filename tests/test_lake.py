"""`cgdw lake export|status` (etl/lake.py): the warehouse as Parquet for Spark. What an analyst may read,
nothing else, in one folder per table; a purge reaches it by the next export. Spark itself is in
tests/test_spark.py; here DuckDB reads the Parquet back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from etl import lake as lake_module
from etl.consent import PatientRef, purge_withdrawn, withdraw_consent
from etl.errors import CgdwError
from etl.lake import export_lake, lake_status
from etl.spark import read_manifest
from schema.vocabulary import AUDIT_TABLES
from tests.helpers import TEST_KEY, cgdw, query, scalar

SECRET = TEST_KEY.encode()


def _copy(warehouse: Path, folder: Path) -> Path:
    return Path(shutil.copy(warehouse, folder / "copy.duckdb"))


def _lake_rows(lake: Path, table: str) -> list[tuple[object, ...]]:
    """A lake table read back by DuckDB, its columns as the manifest lists them (a derived partition key,
    a folder name, is not one of them)."""
    meta = read_manifest(lake)["tables"][table]
    columns = ", ".join(f'"{name}"' for name, _ in meta["columns"])
    # Folder keys as text, as the manifest types them (DuckDB would read chrom=1 as a number).
    files = (
        f"read_parquet('{lake / table}/**/*.parquet', hive_partitioning = true, hive_types_autocast = false)"
    )
    with duckdb.connect() as con:
        return con.execute(f"SELECT {columns} FROM {files} ORDER BY ALL").fetchall()


@pytest.fixture(scope="module")
def withdrawn(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A copy of the warehouse where one patient with variant calls and MRD withdrew consent."""
    db = _copy(warehouse, tmp_path_factory.mktemp("lake_withdrawn"))
    patient_id, key = query(
        db,
        "SELECT patient_id, patient_key FROM patient WHERE patient_id IN (SELECT s.patient_id FROM sample "
        "AS s JOIN variant_call USING (sample_id)) "
        "AND patient_id IN (SELECT patient_id FROM mrd_measurement) ORDER BY patient_id LIMIT 1",
    )[0]
    withdraw_consent(db, PatientRef(patient_key=str(key)), secret=SECRET)
    return db, int(patient_id)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def lake(withdrawn: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lakes") / "lake"
    export_lake(withdrawn[0], out)
    return out


def test_every_table_analysts_read_is_in_the_lake_row_for_row(
    withdrawn: tuple[Path, int], lake: Path
) -> None:
    db, _ = withdrawn
    manifest = read_manifest(lake)
    offered = {
        name
        for (name,) in query(
            db, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'analyst' "
            "AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE')",
        )
    }  # fmt: skip
    assert set(manifest["tables"]) == offered - {name for name in offered if name.endswith("_materialized")}
    assert not set(manifest["tables"]) & set(AUDIT_TABLES)  # no runs, files, quarantined raw rows
    for table, meta in manifest["tables"].items():
        expected = query(db, f'SELECT * FROM analyst."{table}" ORDER BY ALL')
        assert _lake_rows(lake, table) == expected, table
        assert meta["rows"] == len(expected)


def test_a_withdrawn_patient_is_in_no_table_of_the_lake(withdrawn: tuple[Path, int], lake: Path) -> None:
    db, patient_id = withdrawn
    assert scalar(db, f"SELECT count(*) FROM main.mrd_measurement WHERE patient_id = {patient_id}")
    for table, meta in read_manifest(lake)["tables"].items():
        names = [name for name, _ in meta["columns"]]
        if "patient_id" in names:
            assert all(row[names.index("patient_id")] != patient_id for row in _lake_rows(lake, table)), table
    samples = {
        sample for (sample,) in query(db, f"SELECT sample_id FROM sample WHERE patient_id = {patient_id}")
    }
    calls = read_manifest(lake)["tables"]["variant_call"]
    position = [name for name, _ in calls["columns"]].index("sample_id")
    assert samples and not samples & {row[position] for row in _lake_rows(lake, "variant_call")}


def test_partitions_a_reader_can_skip(lake: Path) -> None:
    tables = read_manifest(lake)["tables"]
    assert tables["variant"]["partition_by"] == "chrom" and not tables["variant"]["partition_derived"]
    # Calls and annotations by their variant's chromosome: a folder key, not a column they gain.
    assert tables["variant_call"]["partition_by"] == "chrom" and tables["variant_call"]["partition_derived"]
    assert "chrom" not in [name for name, _ in tables["variant_call"]["columns"]]
    assert {p.name for p in (lake / "variant_call").iterdir()} >= {"chrom=7"}  # IKZF1
    assert tables["mrd_measurement"]["partition_by"] == "protocol_code"
    assert {p.name.split("=")[1] for p in (lake / "outcome_event").iterdir()} == {
        str(code) for (code,) in _distinct_protocols(lake)
    }


def _distinct_protocols(lake: Path) -> list[tuple[object, ...]]:
    return sorted({(row[2],) for row in _lake_rows(lake, "enrolment")})  # type: ignore[type-var]


def test_the_manifest_says_what_the_lake_reflects(withdrawn: tuple[Path, int], lake: Path) -> None:
    db, _ = withdrawn
    manifest = json.loads((lake / "manifest.json").read_text())
    assert manifest["warehouse_run"] == scalar(
        db, "SELECT max(etl_run_id) FROM etl_run WHERE status = 'succeeded'"
    )
    assert manifest["schema_revision"] == scalar(db, "SELECT version_num FROM alembic_version")
    live = {(v["name"], v["version"]) for v in manifest["views"]["versions"]}
    assert ("cohort_patient", 3) in live and ("patient_attribute", 1) in live
    assert manifest["views"]["stable"]["cohort_patient"].startswith("SELECT")
    assert lake_status(db, lake).current


def test_a_purge_reaches_the_lake_by_the_next_export(withdrawn: tuple[Path, int], tmp_path: Path) -> None:
    db = _copy(withdrawn[0], tmp_path)
    out = tmp_path / "lake"
    export_lake(db, out)
    purge_withdrawn(db, secret=SECRET)
    status = lake_status(db, out)
    assert not status.current and [kind for _, kind, _ in status.missed] == ["purge"]
    assert "a consent change or purge is not in it until then" in status.summary()
    result = cgdw("lake", "status", "--lake", str(out), "--db", str(db))
    assert result.returncode == 1 and "export it again" in result.stdout
    export_lake(db, out)  # replaces the lake whole
    assert lake_status(db, out).current


def test_a_damaged_file_is_named(withdrawn: tuple[Path, int], tmp_path: Path) -> None:
    out = tmp_path / "lake"
    export_lake(withdrawn[0], out)
    victim = next((out / "patient").glob("*.parquet"))
    victim.write_bytes(victim.read_bytes()[:-9] + b"123456789")
    status = lake_status(withdrawn[0], out)
    assert status.damaged == [str(victim.relative_to(out))]


def test_a_failed_export_leaves_the_lake_it_replaces(
    withdrawn: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "lake"
    export_lake(withdrawn[0], out)
    before = (out / "manifest.json").read_text()
    real = lake_module._export_table
    calls = []

    def fails_on_the_third(con, table, folder):  # type: ignore[no-untyped-def]
        calls.append(table)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(con, table, folder)

    monkeypatch.setattr(lake_module, "_export_table", fails_on_the_third)
    with pytest.raises(OSError, match="disk full"):
        export_lake(withdrawn[0], out)
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake"]  # no half-written lake left beside it


@pytest.mark.parametrize("manifest", [None, '{"name": "my-npm-package"}', "not json"])
def test_a_directory_that_is_not_a_lake_is_not_replaced(
    withdrawn: tuple[Path, int], tmp_path: Path, manifest: str | None
) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "thesis.docx").write_text("months of work")
    if manifest is not None:  # a manifest.json of something else is no licence to delete the folder
        (tmp_path / "results" / "manifest.json").write_text(manifest)
    with pytest.raises(CgdwError, match="holds files and is not a cgdw lake"):
        export_lake(withdrawn[0], tmp_path / "results")
    assert (tmp_path / "results" / "thesis.docx").exists()


def test_what_a_killed_export_left_is_named_then_removed(withdrawn: tuple[Path, int], tmp_path: Path) -> None:
    out = tmp_path / "lake"
    export_lake(withdrawn[0], out)
    killed = (
        tmp_path / ".lake.partial-999999999"
    )  # no such process: an export killed with its rows half-written
    shutil.copytree(out / "patient", killed / "patient")
    status = lake_status(withdrawn[0], out)
    assert status.leftovers == [killed] and not status.current
    assert "left by a killed export" in status.summary()
    export_lake(withdrawn[0], out)
    assert not killed.exists() and lake_status(withdrawn[0], out).current


def test_a_file_the_manifest_does_not_list_is_named(withdrawn: tuple[Path, int], tmp_path: Path) -> None:
    out = tmp_path / "lake"
    export_lake(withdrawn[0], out)
    part = next((out / "baseline").rglob("*.parquet"))
    shutil.copy(part, part.with_name("data_1.parquet"))  # Spark would read it: every patient twice
    assert lake_status(withdrawn[0], out).damaged == [str(part.with_name("data_1.parquet").relative_to(out))]


def test_a_lake_is_checked_against_its_own_warehouse_only(
    withdrawn: tuple[Path, int], db_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    export_lake(withdrawn[0], out)
    assert lake_status(withdrawn[0], out).current
    with pytest.raises(CgdwError, match="exported from another warehouse"):
        lake_status(db_path, out)  # an empty warehouse: its run numbers say nothing about this lake


def test_a_warehouse_without_views_applied_has_no_lake(db_path: Path, tmp_path: Path) -> None:
    with pytest.raises(CgdwError, match="run `cgdw views apply` first"):
        export_lake(db_path, tmp_path / "lake")


def test_the_spark_options_say_what_is_wrong_before_a_jvm_starts(
    withdrawn: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl.spark import spark_session

    with pytest.raises(CgdwError, match=r"--master 'bogus://x': local, local\[N\], spark://"):
        spark_session("bogus://x")  # Spark itself said only that its Java gateway exited
    out = tmp_path / "lake"
    export_lake(withdrawn[0], out)
    refused = cgdw("outcomes", "--engine", "spark", "--lake", str(out), "--mrd-threshold", "MFC=0.001")
    assert refused.returncode == 2 and "not on --engine spark yet" in refused.stderr
    monkeypatch.chdir(out)  # an export into the directory one stands in would rename it away
    with pytest.raises(CgdwError, match="is the current directory or holds it"):
        export_lake(withdrawn[0], Path("."))
    help_text = cgdw("table1", "--help", env={"COLUMNS": "300"}).stdout
    assert 'pip install -e ".[spark]"' in help_text  # rich once swallowed [spark] as markup
