"""Readers never wait for a writer, nor a writer for a reader (docs/concurrency.md): every write publishes a
copy of the warehouse that readers open, replaced atomically when the write commits."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from etl.consent import PatientRef, withdraw_consent
from etl.synth import SynthResult
from etl.warehouse import publish, published_path
from tests.helpers import (
    ALIVE,
    DEAD,
    TEST_KEY,
    cgdw,
    command,
    drop,
    environment,
    held_load,
    scalar,
    wait_for,
    write_config,
    write_graall,
)

EXIT_NOT_PUBLISHED = 12  # the write is kept, readers do not see it yet


@pytest.fixture
def published(warehouse: Path, tmp_path: Path) -> Path:
    """A copy of the loaded warehouse, published."""
    db = tmp_path / "site" / "warehouse.duckdb"
    db.parent.mkdir()
    shutil.copy(warehouse, db)
    publish(db)
    return db


def _count(db: Path, sql: str) -> object:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()[0][0]


def _publications(db: Path) -> int:
    return int(str(scalar(db, "SELECT count(*) FROM publication")))


# --- readers during a write -------------------------------------------------------------------------------


def test_readers_during_a_load_read_the_last_published_state_and_exit_0(
    published: Path, tmp_path: Path
) -> None:
    """The held load owns the warehouse file (DuckDB lets no one else open it): query, export, Table 1,
    outcomes and the run list read the published copy."""
    patients = ["query", "SELECT count(*) AS n FROM patient", "--format", "csv", "--db", str(published)]
    before = cgdw(*patients)
    readers = {
        "query": patients,
        "export": ["export", "cohort_patient", "--out", str(tmp_path / "extract"), "--db", str(published)],
        "table1": ["table1", "--by", "ikzf1_status", "--format", "json", "--db", str(published)],
        "outcomes": [
            "outcomes",
            "--endpoint",
            "os",
            "--by",
            "ikzf1_status",
            "--format",
            "json",
            "--db",
            str(published),
        ],
        "runs": ["runs", "--format", "csv", "--db", str(published)],
        "views list": ["views", "list", "--db", str(published)],
    }
    with held_load(published, tmp_path):
        during = {name: cgdw(*args) for name, args in readers.items()}
    for name, result in during.items():
        assert result.returncode == 0, (name, result.stderr)
    assert during["query"].stdout == before.stdout == "n\n476\n"
    assert json.loads(during["table1"].stdout) and json.loads(during["outcomes"].stdout)
    assert (tmp_path / "extract").is_dir()


def test_a_reader_held_open_does_not_stop_the_pipeline_and_keeps_its_state(
    tmp_path: Path, cohort: SynthResult
) -> None:
    """An analyst's open connection to the published copy (R, a notebook) during the nightly run: the run
    loads and publishes; the open connection goes on reading what it opened, the next one reads the new."""
    site = tmp_path / "site"
    db = site / "warehouse.duckdb"
    write_config(site)
    assert cgdw("db", "upgrade", "--db", str(db)).returncode == 0  # creates and publishes
    drop(site, cohort, "graall")
    analyst = duckdb.connect(str(published_path(db)), read_only=True)
    try:
        result = subprocess.run(command(site), capture_output=True, text=True, env=environment())
        assert result.returncode == 0, result.stderr
        assert analyst.execute("SELECT count(*) FROM patient").fetchall() == [(0,)]
    finally:
        analyst.close()
    assert "published warehouse.published.duckdb (after run 2" in result.stdout
    assert _count(published_path(db), "SELECT count(*) FROM patient") == _count(
        db, "SELECT count(*) FROM patient"
    )
    assert _count(db, "SELECT count(*) FROM patient") == 215  # the GRAALL export
    summary = [json.loads(line) for line in (site / "logs" / "pipeline.jsonl").read_text().splitlines()][-1]
    assert summary["published_after_run"] == 2 and summary["publish_seconds"] >= 0


def test_readers_see_the_state_before_a_pipeline_run_until_it_ends(
    tmp_path: Path, cohort: SynthResult
) -> None:
    """The run publishes once, at its end: a reader never sees half a run's files. A run killed after its
    first file committed leaves readers on the state before it; the next run publishes what it kept."""
    site = tmp_path / "site"
    db = site / "warehouse.duckdb"
    write_config(site)
    assert cgdw("db", "upgrade", "--db", str(db)).returncode == 0
    drop(site, cohort, "graall", "fralle")
    marker = tmp_path / "committed"
    env = environment({"CGDW_FAULT_POINT": "after_commit", "CGDW_FAULT_MARKER": str(marker)})
    held = subprocess.Popen(command(site), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        wait_for(marker, held)
        during = cgdw("runs", "--format", "csv", "--db", str(db))
    finally:
        held.send_signal(signal.SIGKILL)
        held.wait(timeout=30)
    assert during.returncode == 0 and during.stdout.count("\n") == 1, during  # a header, no run
    assert _count(db, "SELECT count(*) FROM etl_run") == 1  # the first file was committed

    again = subprocess.run(command(site), capture_output=True, text=True, env=environment())

    assert again.returncode == 0, again.stderr
    runs = cgdw("runs", "--format", "csv", "--db", str(db)).stdout
    assert runs.count("\n") == 4, runs  # both exports and the views, for the next reader
    assert _count(published_path(db), "SELECT count(*) FROM patient") == 476


# --- what a publication does and does not do -------------------------------------------------------------


def test_a_write_that_changes_nothing_publishes_nothing(published: Path, cohort: SynthResult) -> None:
    before = _publications(published)
    for args in (["validate", "clinical"], ["load", "clinical", "-q"]):  # a dry run; a file loaded before
        result = cgdw(*args, str(cohort.files["graall"]), "-p", "graall", "--db", str(published))
        assert result.returncode == 0, result.stderr
    assert _publications(published) == before


def test_db_status_says_which_run_readers_see(published: Path) -> None:
    result = cgdw("db", "status", "--db", str(published))
    newest = scalar(published, "SELECT max(etl_run_id) FROM etl_run")
    assert result.returncode == 0, result.stderr
    assert f"newest run {newest})" in result.stdout
    assert f"published copy: {published_path(published)} (run {newest}, published " in result.stdout
    assert "behind" not in result.stdout


def test_a_published_copy_is_never_written_to(published: Path, cohort: SynthResult) -> None:
    copy = published_path(published)
    result = cgdw("load", "clinical", str(cohort.files["graall"]), "-p", "graall", "--db", str(copy))
    assert result.returncode == 1
    assert (
        f"{copy} is a published copy, replaced at every write: write to the warehouse itself" in result.stderr
    )


def test_a_failed_publication_keeps_the_write_says_so_and_cgdw_publish_recovers(
    published: Path, tmp_path: Path
) -> None:
    copy = published_path(published)
    copy.unlink()
    copy.mkdir()  # the rename over it fails, as a full disk or a permission would
    export = write_graall(tmp_path / "graall_2026-12-01.csv", ALIVE, DEAD)

    result = cgdw("load", "clinical", str(export), "-p", "graall", "--force", "--db", str(published))

    assert result.returncode == EXIT_NOT_PUBLISHED, result.stderr
    assert f"{published}: the write is kept, but publishing it to {copy.name} failed" in result.stderr
    assert f"run `cgdw publish --db {published}`" in result.stderr and "Traceback" not in result.stderr
    loaded = "SELECT count(*) FROM source_file WHERE file_name = 'graall_2026-12-01.csv'"
    assert scalar(published, loaded) == 1
    assert not list(copy.parent.glob(".*.partial"))  # the half-written copy is removed
    copy.rmdir()
    again = cgdw("publish", "--db", str(published))
    assert again.returncode == 0, again.stderr
    assert _count(copy, loaded) == 1


# --- DuckDB 1.x readers ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def duckdb_1x() -> Path:
    """DuckDB 1.4 from PyPI, installed beside (not into) the test environment, once per machine."""
    target = Path(os.environ.get("CGDW_DUCKDB1_DIR", Path.home() / ".cache" / "cgdw-tests" / "duckdb-1.4"))
    if not (target / "duckdb").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
             "duckdb>=1.4,<1.5"],
            check=True,
        )  # fmt: skip
    return target


def _read_with_duckdb_1x(duckdb_1x: Path, db: Path, sql: str) -> tuple[str, list[list[object]]]:
    script = (
        "import duckdb, json, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(json.dumps([duckdb.__version__, [list(r) for r in con.execute(sys.argv[2]).fetchall()]]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(db), sql],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(duckdb_1x)},
    )
    assert result.returncode == 0, result.stderr
    version, rows = json.loads(result.stdout)
    return version, rows


def test_duckdb_1x_opens_a_copy_published_with_an_older_storage_version_and_it_stays_so(
    published: Path, duckdb_1x: Path
) -> None:
    copy = published_path(published)
    refused = subprocess.run(
        [sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True)", str(copy)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(duckdb_1x)},
    )
    assert refused.returncode != 0 and "version" in refused.stderr  # DuckDB 2's own storage

    result = cgdw("publish", "--storage-version", "v1.4.0", "--db", str(published))

    assert result.returncode == 0, result.stderr
    assert "DuckDB storage v1.4.0" in result.stdout
    version, rows = _read_with_duckdb_1x(
        duckdb_1x, copy, "SELECT count(*) FROM analyst.cohort_patient WHERE ikzf1_status IS NOT NULL"
    )
    assert version.startswith("1.4.") and rows[0][0] > 0
    # Every later write republishes in that version: here a consent withdrawal, which reaches it at once.
    patient = _count(copy, "SELECT min(patient_id) FROM analyst.cohort_patient")
    key = _count(copy, f"SELECT patient_key FROM patient WHERE patient_id = {patient}")
    withdraw_consent(published, PatientRef(patient_key=str(key)), secret=TEST_KEY.encode())
    _, rows = _read_with_duckdb_1x(
        duckdb_1x, copy, f"SELECT count(*) FROM analyst.cohort_patient WHERE patient_id = {patient}"
    )
    assert rows == [[0]]
    assert cgdw("publish", "--storage-version", "default", "--db", str(published)).returncode == 0
    assert "storage this DuckDB's own" in cgdw("db", "status", "--db", str(published)).stdout


def test_an_unknown_storage_version_is_refused_in_one_line(published: Path) -> None:
    for wrong, fragment in (
        ("1.4", "give a DuckDB version such as v1.4.0"),
        ("v9.9.9", "storage version v9.9.9"),
    ):
        result = cgdw("publish", "--storage-version", wrong, "--db", str(published))
        assert result.returncode != 0 and fragment in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


# --- found by a hostile review --------------------------------------------------------------------------


def test_the_copy_is_read_only_and_a_stale_wal_beside_it_is_removed(published: Path) -> None:
    """DuckDB in R or Python opens read-write by default: a write to the copy left a WAL that broke every
    reader of the next copy."""
    copy = published_path(published)
    assert copy.stat().st_mode & 0o777 == 0o444
    wal = copy.with_name(copy.name + ".wal")
    wal.write_bytes(b"not a WAL of this copy")
    assert cgdw("publish", "--db", str(published)).returncode == 0
    assert not wal.exists() and _count(copy, "SELECT count(*) FROM patient") == 476


def test_a_foreign_copy_is_replaced_by_the_next_write_even_one_that_changes_nothing(
    published: Path, cohort: SynthResult, tmp_path: Path
) -> None:
    """The log of publications is not trusted alone: the copy's own newest run and revision are read."""
    copy = published_path(published)
    empty = tmp_path / "other.duckdb"
    assert cgdw("db", "upgrade", "--db", str(empty)).returncode == 0
    copy.chmod(0o644)
    shutil.copy(published_path(empty), copy)  # someone put another warehouse's copy there
    assert _count(copy, "SELECT count(*) FROM patient") == 0
    again = cgdw(
        "load", "clinical", str(cohort.files["graall"]), "-p", "graall", "--db", str(published), "-q"
    )
    assert again.returncode == 0, again.stderr  # already loaded: no new run, yet the copy is put right
    assert _count(copy, "SELECT count(*) FROM patient") == 476


def test_retiring_a_view_reaches_readers(published: Path) -> None:
    """A retirement records no ETL run: it publishes anyway (it used to leave readers on the old copy)."""
    assert cgdw("views", "retire", "gene_copy_number@v1", "--db", str(published)).returncode == 0, "retire"
    shown = cgdw("views", "list", "--format", "csv", "--db", str(published)).stdout
    assert any(line.startswith("gene_copy_number,1,") and "retired" in line for line in shown.splitlines())


def test_a_warehouse_path_without_suffix_cannot_have_its_copy_written(
    published: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    shutil.copy(published, plain)
    assert cgdw("publish", "--db", str(plain)).returncode == 0
    copy = tmp_path / "plain.published"
    assert copy.exists()
    refused = cgdw("views", "apply", "--db", str(copy))
    assert (
        refused.returncode == 1
        and "is a published copy" in refused.stderr
        and f"--db {plain})" in refused.stderr
    )


def test_an_interrupted_multi_file_load_publishes_what_it_committed(published: Path, tmp_path: Path) -> None:
    """Ctrl-C during the second file: the first file's run is committed, and readers must see it (it may
    be a consent withdrawal carried by a new export)."""
    from etl.sources.registry import load_sources

    first = write_graall(tmp_path / "graall_2030-01-01.csv", ALIVE, DEAD)
    second = write_graall(tmp_path / "graall_2030-02-01.csv", ALIVE)

    def progress(index: int, _path: Path) -> None:
        if index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_sources(published, "clinical", [first, second], layout="graall", file_progress=progress)
    loaded = "SELECT count(*) FROM source_file WHERE file_name = 'graall_2030-01-01.csv'"
    assert _count(published_path(published), loaded) == 1


def test_readers_of_the_python_api_never_open_the_warehouse_file(published: Path, tmp_path: Path) -> None:
    """During a held load, the API's status and HTML read the copy (they used to open the warehouse file,
    failing during a write and making a write's publication fail)."""
    from etl.api import Warehouse

    with held_load(published, tmp_path):
        wh = Warehouse(published)
        assert wh.status().published_run is not None and "run " in wh._repr_html_()
        status = cgdw("db", "status", "--db", str(published))
    assert status.returncode == 0 and "a write is running" in status.stdout, status


def test_a_publication_that_cannot_open_the_warehouse_says_the_write_is_kept(published: Path) -> None:
    """Another process holding the warehouse file itself for more than 5 s: exit 12, never 'try again'."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print('open', flush=True); time.sleep(30)", str(published)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = cgdw("publish", "--db", str(published))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == EXIT_NOT_PUBLISHED, result.stderr
    assert (
        "not published (any write is kept): another process held the warehouse file itself" in result.stderr
    )


def test_a_downgrade_removes_the_copy_so_readers_never_serve_a_newer_schema(published: Path) -> None:
    assert cgdw("db", "downgrade", "0012", "--db", str(published)).returncode == 0
    assert not published_path(published).exists()
    reader = cgdw("query", "SELECT 1", "--db", str(published))
    assert reader.returncode == 1 and "is at schema revision 0012" in reader.stderr
