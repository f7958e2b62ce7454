"""The Spark engine (etl/spark.py): the released views and the analyses on Apache Spark give what DuckDB
gives. Marked `spark` (a Java runtime and pyspark: .ci/install-spark); `.ci/run` runs them after the main
suite, `python -m pytest -m spark` here. Each comparison is row for row, floats to 1e-12 relative."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from etl.analysis.outcomes import analyse_outcomes
from etl.analysis.table1 import build_table1
from etl.consent import PatientRef, purge_withdrawn, withdraw_consent
from etl.demo import SEED_COVARIATES, aml_letter, run_demo
from etl.errors import CgdwError
from etl.lake import export_lake
from etl.output import OutputFormat, render_outcomes, render_table1
from etl.spark import Lake, LakeSession, apply_views_on_spark, lake_session
from etl.views import apply_views
from schema import database
from tests.helpers import TEST_KEY, assert_close, cgdw, load_cohort, query

pytestmark = pytest.mark.spark
SECRET = TEST_KEY.encode()
# Versions whose own SQL breaks ties arbitrarily: the column they may disagree on, on any two engines or
# runs (ikzf1_alteration v3 orders every tie; v2 selects from v1).
ARBITRARY = {"ikzf1_alteration_v1": "protein_change", "ikzf1_alteration_v2": "protein_change"}


def _lake(db: Path, folder: Path) -> Lake:
    export_lake(db, folder / "lake")
    return Lake(folder / "lake")


@pytest.fixture(scope="module")
def tall(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Lake]:
    """The seed letter's cohort, two patients of it withdrawn (out of the lake, not of the warehouse)."""
    folder = tmp_path_factory.mktemp("spark_tall")
    db = Path(shutil.copy(warehouse, folder / "tall.duckdb"))
    for (key,) in query(db, "SELECT patient_key FROM patient ORDER BY patient_id LIMIT 2"):
        withdraw_consent(db, PatientRef(patient_key=str(key)), secret=SECRET)
    apply_views(db)
    return db, _lake(db, folder)


@pytest.fixture(scope="module")
def aml(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Lake]:
    """The second letter's cohort (HOVON-SAKK 102, 800 patients, MRD after two cycles)."""
    folder = tmp_path_factory.mktemp("spark_aml")
    db = folder / "aml.duckdb"
    run_demo(db, folder / "data", study="aml")
    return db, _lake(db, folder)


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Lake]:
    """A synthetic T-ALL cohort of 10,000 patients."""
    from etl.synth import write_synthetic_cohort

    folder = tmp_path_factory.mktemp("spark_10k")
    db = folder / "10k.duckdb"
    database.upgrade(db)
    load_cohort(db, write_synthetic_cohort(folder / "data", seed=7, patients=10_000))
    apply_views(db)
    return db, _lake(db, folder)


@pytest.fixture
def cohorts(request: pytest.FixtureRequest) -> Iterator[tuple[Path, Lake]]:
    yield request.getfixturevalue(request.param)


def _duckdb_frame(db: Path, relation: str) -> pl.DataFrame:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(f'SELECT * FROM analyst."{relation}"').pl()


@pytest.mark.parametrize("cohorts", ["tall", "aml", "ten_thousand"], indirect=True)
def test_every_view_gives_on_spark_the_rows_duckdb_gives(cohorts: tuple[Path, Lake]) -> None:
    db, lake = cohorts
    session = lake_session(lake)
    created = session.create_all()
    assert len(created) >= 25  # every live version, the generated ones and the stable names
    for relation in created:
        expected = _duckdb_frame(db, relation)  # the analysts' surface: consented patients only
        actual = LakeSession.collect(session.table(relation))
        assert actual.schema == expected.schema, relation
        compared = [c for c in expected.columns if c != ARBITRARY.get(relation)]
        assert_frame_equal(
            actual.select(compared).sort(compared, nulls_last=True),
            expected.select(compared).sort(compared, nulls_last=True),
            rel_tol=1e-12,
            abs_tol=0,
        )


def _json(text: str) -> object:
    return json.loads(text)


def test_table1_and_outcomes_of_the_seed_letter_are_the_same(tall: tuple[Path, Lake]) -> None:
    db, lake = tall
    duck, spark = (
        build_table1(s, by="ikzf1_status", where="age >= 16", with_attrition=True) for s in (db, lake)
    )
    assert_close(
        _json(render_table1(duck, OutputFormat.json)), _json(render_table1(spark, OutputFormat.json))
    )
    for endpoint in ("os", "efs", "cir"):
        duck_fit, spark_fit = (
            analyse_outcomes(s, endpoint, "ikzf1_status", adjust=SEED_COVARIATES) for s in (db, lake)
        )
        assert_close(
            _json(render_outcomes(duck_fit.result, OutputFormat.json)),
            _json(render_outcomes(spark_fit.result, OutputFormat.json)),
        )


def test_the_aml_letter_is_the_same(aml: tuple[Path, Lake]) -> None:
    # Landmarks at each patient's MRD assessment, a filter, declared attributes (treatment arm, ELN risk).
    db, lake = aml
    (duck_table, duck_outcomes), (spark_table, spark_outcomes) = aml_letter(db), aml_letter(lake)  # type: ignore[arg-type]
    assert_close(
        _json(render_table1(duck_table, OutputFormat.json)),
        _json(render_table1(spark_table, OutputFormat.json)),
    )
    assert len(duck_outcomes) == len(spark_outcomes) == 8
    for duck, spark in zip(duck_outcomes, spark_outcomes, strict=True):
        assert_close(
            _json(render_outcomes(duck, OutputFormat.json)), _json(render_outcomes(spark, OutputFormat.json))
        )


def test_outcomes_of_ten_thousand_patients_are_the_same(ten_thousand: tuple[Path, Lake]) -> None:
    db, lake = ten_thousand
    for endpoint, by, adjust in [("os", "ikzf1_status", ("age", "log_wbc")), ("cir", "sex", ())]:
        duck, spark = (analyse_outcomes(s, endpoint, by, adjust=adjust) for s in (db, lake))
        assert_close(
            _json(render_outcomes(duck.result, OutputFormat.json)),
            _json(render_outcomes(spark.result, OutputFormat.json)),
        )
    duck_table, spark_table = (build_table1(s, by="ikzf1_status") for s in (db, lake))
    assert_close(
        _json(render_table1(duck_table, OutputFormat.json)),
        _json(render_table1(spark_table, OutputFormat.json)),
    )


def test_views_apply_on_spark_stores_cohort_patient_in_the_lake(tall: tuple[Path, Lake]) -> None:
    db, lake = tall
    report = apply_views_on_spark(lake)
    consented = query(db, "SELECT count(*) FROM analyst.cohort_patient")[0][0]
    assert report.stored == {"cohort_patient_v3": consented}
    assert (lake.path / "_views" / "cohort_patient_v3").is_dir()
    session = lake_session(lake)
    assert session.stored["cohort_patient_v3"]["rows"] == consented
    # Read from the stored copy now: a scan of Parquet, no join left in the plan.
    plan = session.table("cohort_patient_v3")._jdf.queryExecution().optimizedPlan().toString()
    assert "Join" not in plan
    assert_frame_equal(
        LakeSession.collect(session.table("cohort_patient")).sort("patient_id"),
        _duckdb_frame(db, "cohort_patient").sort("patient_id"),
        rel_tol=1e-12,
        abs_tol=0,
    )


def test_a_purge_reaches_spark_through_the_next_export(warehouse: Path, tmp_path: Path) -> None:
    db = Path(shutil.copy(warehouse, tmp_path / "purged.duckdb"))
    lake = _lake(db, tmp_path)  # exported while everyone consented
    patient_id, key = query(
        db, "SELECT patient_id, patient_key FROM patient ORDER BY patient_id DESC LIMIT 1"
    )[0]
    seen = lake_session(lake).frame(
        f"SELECT count(*) AS n FROM cohort_patient WHERE patient_id = {patient_id}"
    )
    assert seen["n"].to_list() == [1]
    withdraw_consent(db, PatientRef(patient_key=str(key)), secret=SECRET)
    purge_withdrawn(db, secret=SECRET)
    export_lake(db, lake.path)
    session = lake_session(lake)
    for table in ("patient", "enrolment", "cohort_patient", "mrd_result", "variant_call_annotation"):
        column = "sample_id" if table == "variant_call_annotation" else "patient_id"
        ids = (
            query(db, f"SELECT sample_id FROM sample WHERE patient_id = {patient_id}")
            if column == "sample_id"
            else [(patient_id,)]
        )
        for (value,) in ids:
            left = session.frame(f"SELECT count(*) AS n FROM {table} WHERE {column} = {value}")
            assert left["n"].to_list() == [0], table


def test_the_command_line_gives_the_same_json(tall: tuple[Path, Lake]) -> None:
    db, lake = tall
    args = ["outcomes", "--endpoint", "cir", "--by", "ikzf1_status", "--adjust", "age,log_wbc", "-f", "json"]
    duck = cgdw(*args, "--db", str(db))
    spark = cgdw(*args, "--engine", "spark", "--lake", str(lake.path))
    assert duck.returncode == spark.returncode == 0, spark.stderr
    assert_close(json.loads(duck.stdout), json.loads(spark.stdout))
    missing = cgdw(*args, "--engine", "spark")
    assert missing.returncode == 2 and "--engine spark reads a lake: give --lake DIR" in missing.stderr


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_an_extract_from_spark_is_the_extract_from_duckdb(
    tall: tuple[Path, Lake], tmp_path: Path, fmt: str
) -> None:
    from etl.export import ExportFormat, export_view

    db, lake = tall
    args = ("cohort_patient", ExportFormat(fmt))
    duck = export_view(db, args[0], tmp_path / "duckdb", args[1], where="age >= 18", columns=None)
    spark = export_view(lake, args[0], tmp_path / "spark", args[1], where="age >= 18", columns=None)
    # The dictionary and the SQL byte for byte; the manifest but its time and the data file's checksum.
    for name in ("data_dictionary.csv", "cohort_patient.sql"):
        assert (tmp_path / "spark" / name).read_bytes() == (tmp_path / "duckdb" / name).read_bytes()
    moment = {"exported_at", "files"}
    same = [
        json.dumps({k: v for k, v in m.items() if k not in moment}) for m in (spark.manifest, duck.manifest)
    ]
    assert same[0] == same[1]  # as the file is written: keys in the same order too
    # The rows: log_wbc is ln(wbc), and Java's log may differ from C's in the last bit.
    read = pl.read_parquet if fmt == "parquet" else pl.read_csv
    assert_frame_equal(read(spark.data_file), read(duck.data_file), rel_tol=1e-12, abs_tol=0)


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server on this machine (the one pyspark ships), as a cluster would offer one."""
    import pyspark

    home = Path(pyspark.__file__).resolve().parent
    folder = tmp_path_factory.mktemp("connect")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(folder), "SPARK_PID_DIR": str(folder)}
    start = [
        str(home / "sbin" / "start-connect-server.sh"),
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
    ]
    subprocess.run(["bash", *start], env=env, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(1)
        else:
            logs = "".join(p.read_text() for p in folder.glob("*.out"))
            pytest.fail(f"the Spark Connect server did not listen on {port}: {logs[-2000:]}")
        yield f"sc://localhost:{port}"
    finally:
        subprocess.run(["bash", str(home / "sbin" / "stop-connect-server.sh")], env=env, capture_output=True)


def test_a_cluster_through_spark_connect_gives_the_same(tall: tuple[Path, Lake], connect_server: str) -> None:
    # --master sc://... : the command is a Spark Connect client; views and reads run in the server.
    db, lake = tall
    args = ["table1", "--spec", "seed_tall", "--by", "ikzf1_status", "-f", "json"]
    duck = cgdw(*args, "--db", str(db))
    remote = cgdw(*args, "--engine", "spark", "--lake", str(lake.path), "--master", connect_server)
    assert duck.returncode == remote.returncode == 0, remote.stderr
    assert_close(json.loads(duck.stdout), json.loads(remote.stdout))
    # $SPARK_REMOTE names the server when --master does not.
    args = ["outcomes", "--endpoint", "efs", "--by", "ikzf1_status", "-f", "json"]
    duck = cgdw(*args, "--db", str(db))
    remote = cgdw(*args, "--engine", "spark", "--lake", str(lake.path), env={"SPARK_REMOTE": connect_server})
    assert duck.returncode == remote.returncode == 0, remote.stderr
    assert_close(json.loads(duck.stdout), json.loads(remote.stdout))


def _copy_lake(lake: Lake, folder: Path) -> Lake:
    shutil.copytree(lake.path, folder / "lake")
    return Lake(folder / "lake")


def test_spark_reads_the_files_the_manifest_lists_and_nothing_else(
    tall: tuple[Path, Lake], tmp_path: Path
) -> None:
    db, lake = tall
    events = "SELECT count(*) AS n FROM outcome_event"
    expected = query(db, "SELECT count(*) FROM analyst.outcome_event")[0][0]
    stray = _copy_lake(lake, tmp_path / "stray")
    part = next((stray.path / "outcome_event").rglob("*.parquet"))
    shutil.copy(part, part.with_name("data_1.parquet"))  # a stray copy: it would count events twice
    assert lake_session(stray).frame(events)["n"].to_list() == [expected]
    gone = _copy_lake(lake, tmp_path / "gone")
    next((gone.path / "outcome_event").rglob("*.parquet")).unlink()  # refused, not an analysis of the rest
    with pytest.raises(CgdwError, match=r"outcome_event.*missing or changed since the export"):
        lake_session(gone).frame(events)


def test_the_manifest_cannot_change_what_a_view_selects(tall: tuple[Path, Lake], tmp_path: Path) -> None:
    db, lake = tall
    copy = _copy_lake(lake, tmp_path)
    manifest = json.loads((copy.path / "manifest.json").read_text())
    # The stable names are made from the registry, as `views apply` makes them: an edited one is not read.
    manifest["views"]["stable"]["cohort_patient"] = "SELECT * FROM cohort_patient_v3 WHERE patient_id % 2 = 0"
    (copy.path / "manifest.json").write_text(json.dumps(manifest))
    rows = lake_session(copy).frame("SELECT count(*) AS n FROM cohort_patient")["n"].to_list()
    assert rows == [query(db, "SELECT count(*) FROM analyst.cohort_patient")[0][0]]
    # A generated view's SELECT is checked against the checksum the warehouse released.
    generated = next(v for v in manifest["views"]["versions"] if v["name"] == "patient_attribute")
    generated["generated_sql"] += " WHERE false"
    (copy.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CgdwError, match=r"patient_attribute_v1 .* is not the one the warehouse released"):
        lake_session(copy)


def test_a_division_by_zero_is_ieee_on_both_engines(tall: tuple[Path, Lake], tmp_path: Path) -> None:
    from etl.export import ExportFormat, export_view

    db, lake = tall
    # DuckDB: age/0 is Infinity (0/0 NaN); Spark's ANSI mode would raise DIVIDE_BY_ZERO.
    where = "age / (age - age) > 1e308 AND sex = 'F'"
    duck = export_view(db, "cohort_patient", tmp_path / "d", ExportFormat.csv, where=where, columns=["age"])
    spark = export_view(
        lake, "cohort_patient", tmp_path / "s", ExportFormat.csv, where=where, columns=["age"]
    )
    assert duck.rows == spark.rows > 0
    assert spark.data_file.read_bytes() == duck.data_file.read_bytes()
