"""Faults (docs/faults.md): killed loads of every write path, two writers at once, readers during a write,
read-only and missing storage, a full disk, and why encryption at rest is not offered."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from etl.synth import SynthResult
from tests.helpers import (
    ALIVE,
    TEST_KEY,
    fingerprint,
    held_load,
    load_cohort,
    scalar,
    wait_for,
    write_graall,
)

IS_ROOT = os.geteuid() == 0
EX_IOERR, EX_TEMPFAIL = 74, 75


def cgdw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etl", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CGDW_PSEUDONYM_KEY": TEST_KEY, **(env or {})},
    )


def assert_clear_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    """The documented exit code and one readable line naming the problem: never a traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Exception:" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def kill_at(command: list[str], fault_point: str, marker: Path) -> None:
    """Run `command` until it reaches the fault point, then SIGKILL it."""
    env = {
        **os.environ,
        "CGDW_PSEUDONYM_KEY": TEST_KEY,
        "CGDW_FAULT_POINT": fault_point,
        "CGDW_FAULT_MARKER": str(marker),
    }
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(marker, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture
def with_samples(db_path: Path, cohort: SynthResult) -> Path:
    """A warehouse holding the patients and the sample manifest: what variant calls refer to."""
    load_cohort(db_path, cohort, kinds=("clinical", "samples"))
    return db_path


# --- 1. killed loads of the genomic write paths -------------------------------------------------------------

# A VCF load run as its own process with small batches (the CLI reads 100,000 records per batch), so that
# `during_insert` falls between batch 1 and batch 2 of the 149-record file.
VCF_SCRIPT = (
    "import sys; from pathlib import Path; from etl.load.framework import run_load; "
    "from etl.sources.vcf import VcfLoader; "
    "run_load(Path(sys.argv[1]), VcfLoader(batch_records=50), Path(sys.argv[2]), command='cgdw load vcf')"
)
POINTS = ["after_register", "during_insert", "after_insert", "before_commit", "after_commit"]


def _killed_load_outcome(db: Path, command: list[str], fault_point: str, tmp_path: Path) -> None:
    before = fingerprint(db)
    runs_before = scalar(db, "SELECT count(*) FROM etl_run")
    kill_at(command, fault_point, tmp_path / "reached")

    # The database opens, and no run is left 'running' (the run row is written inside the load's transaction).
    assert scalar(db, "SELECT count(*) FROM etl_run WHERE status <> 'succeeded'") == 0
    if fault_point == "after_commit":
        # COMMIT returned: the load is durable (WAL replay), whole, and running it again is a no-op.
        assert scalar(db, "SELECT count(*) FROM etl_run") == runs_before + 1  # type: ignore[operator]
        assert fingerprint(db) != before
    else:
        # Killed before COMMIT returned: exactly the last committed state, byte for byte in every table.
        assert fingerprint(db) == before
    after_kill = fingerprint(db)
    again = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "CGDW_PSEUDONYM_KEY": TEST_KEY}
    )
    assert again.returncode == 0, again.stderr
    if fault_point == "after_commit":
        assert fingerprint(db) == after_kill  # already loaded (same sha256): nothing to do
    assert scalar(db, "SELECT count(*) FROM etl_run") == runs_before + 1  # type: ignore[operator]


@pytest.mark.parametrize("fault_point", POINTS)
def test_a_killed_vcf_load_is_all_or_nothing(
    with_samples: Path, cohort: SynthResult, tmp_path: Path, fault_point: str
) -> None:
    vcf = sorted(cohort.files["vcf"].glob("*.vcf"))[0]
    command = [sys.executable, "-c", VCF_SCRIPT, str(with_samples), str(vcf)]
    _killed_load_outcome(with_samples, command, fault_point, tmp_path)
    assert scalar(with_samples, "SELECT count(*) FROM variant_call") > 0  # type: ignore[operator]


@pytest.mark.parametrize("fault_point", ["after_register", "after_insert", "before_commit", "after_commit"])
def test_a_killed_maf_load_is_all_or_nothing(
    with_samples: Path, cohort: SynthResult, tmp_path: Path, fault_point: str
) -> None:
    command = [
        sys.executable,
        "-m",
        "etl",
        "load",
        "maf",
        str(cohort.files["maf"]),
        "--db",
        str(with_samples),
    ]
    _killed_load_outcome(with_samples, [*command, "-q"], fault_point, tmp_path)


# --- 2. two writers, readers during a write -----------------------------------------------------------------


SECOND_COMMANDS = {
    "load": (["load", "clinical", "{file}", "-p", "graall"], "is being written by another cgdw process"),
    "views apply": (["views", "apply"], "is being written by another cgdw process"),
    "query": (["query", "SELECT count(*) FROM patient"], "is in use by another process"),
    "export": (["export", "cohort_patient", "--out", "{out}"], "is in use by another process"),
}


@pytest.mark.parametrize("second", list(SECOND_COMMANDS))
def test_a_second_command_during_a_load_exits_75_with_a_message(
    db_path: Path, tmp_path: Path, second: str
) -> None:
    args, message = SECOND_COMMANDS[second]
    other = write_graall(tmp_path / "other.csv", ALIVE)
    args = [a.format(file=other, out=tmp_path / "extract") for a in args] + ["--db", str(db_path)]
    with held_load(db_path, tmp_path):
        result = cgdw(*args)
    assert_clear_error(result, EX_TEMPFAIL, str(db_path), message)
    assert not (tmp_path / "extract").exists()
    # The held load was killed: nothing of it is left, and the refused command now goes through.
    assert scalar(db_path, "SELECT count(*) FROM etl_run") == 0
    if second not in ("export", "query"):  # they read the analysts' views, not applied here yet
        assert cgdw(*args).returncode == 0


def test_a_pipeline_during_a_load_exits_75_and_the_next_run_loads(
    tmp_path: Path, cohort: SynthResult
) -> None:
    from schema import database
    from tests.helpers import command, drop, environment, write_config

    site = tmp_path / "site"
    db = site / "warehouse.duckdb"
    database.upgrade(db)
    write_config(site)
    drop(site, cohort, "graall")
    with held_load(db, tmp_path):
        result = subprocess.run(command(site), capture_output=True, text=True, env=environment())
    assert_clear_error(result, EX_TEMPFAIL, "is in use by another process")
    assert scalar(db, "SELECT count(*) FROM etl_run") == 0
    again = subprocess.run(command(site), capture_output=True, text=True, env=environment())
    assert again.returncode == 0, again.stderr
    assert scalar(db, "SELECT count(*) FROM source_file") == 1


def test_no_path_leaves_a_run_marked_running(db_path: Path, tmp_path: Path) -> None:
    """Every writer (load, views apply, pipeline = loads + views apply) inserts its etl_run row inside its
    transaction, so a killed writer leaves no row at all; a 'running' row can only come from outside."""
    from tests.helpers import start_load as clinical_load

    export = write_graall(tmp_path / "a.csv", ALIVE)
    for point in ("after_register", "before_commit"):
        marker = tmp_path / f"{point}.reached"
        process = clinical_load(db_path, export, point, marker)
        wait_for(marker, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    for point in ("views_after_register", "views_before_commit"):
        kill_at(
            [sys.executable, "-m", "etl", "views", "apply", "--db", str(db_path)],
            point,
            tmp_path / f"{point}.reached",
        )
    assert scalar(db_path, "SELECT count(*) FROM etl_run") == 0


# --- 3. storage trouble -------------------------------------------------------------------------------------


def _as_root_only(what: str) -> None:
    if not IS_ROOT:
        pytest.skip(f"{what} needs root (chattr / mount); as a normal user the chmod tests cover it")


def test_a_read_only_database_file_gives_a_clear_error_and_stays_unchanged(
    db_path: Path, tmp_path: Path
) -> None:
    from etl.views import apply_views

    export = write_graall(tmp_path / "a.csv", ALIVE)
    apply_views(db_path)  # what `cgdw query` reads
    before = fingerprint(db_path)
    if IS_ROOT:
        # Root ignores permission bits: make the file immutable instead (refused even to root).
        made = subprocess.run(["chattr", "+i", str(db_path)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"root ignores chmod and chattr +i is not available here: {made.stderr.strip()}")
    else:
        db_path.chmod(0o444)
    try:
        result = cgdw("load", "clinical", str(export), "-p", "graall", "--db", str(db_path), "-q")
        # Reading still works: a read-only file is a fine thing to query.
        readable = cgdw("query", "SELECT count(*) FROM patient", "--db", str(db_path))
    finally:
        if IS_ROOT:
            subprocess.run(["chattr", "-i", str(db_path)], check=True)
        db_path.chmod(0o644)
    assert_clear_error(result, EX_IOERR, f"{db_path}: cannot write the warehouse")
    assert "not permitted" in result.stderr or "permission denied" in result.stderr
    assert readable.returncode == 0, readable.stderr
    assert fingerprint(db_path) == before


def test_a_read_only_directory_gives_a_clear_error_and_stays_unchanged(db_path: Path, tmp_path: Path) -> None:
    export = write_graall(tmp_path / "a.csv", ALIVE)
    before = fingerprint(db_path)
    folder = db_path.parent
    load = f"{sys.executable} -m etl load clinical {export} -p graall --db {db_path} -q"
    if IS_ROOT:
        # A read-only bind mount in a private mount namespace: the kernel refuses even root (EROFS), and the
        # mount disappears with the process.
        shell = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} {folder} && exec {load}"
        result = subprocess.run(
            ["unshare", "-m", "sh", "-c", shell],
            capture_output=True,
            text=True,
            env={**os.environ, "CGDW_PSEUDONYM_KEY": TEST_KEY},
        )
        if "unshare:" in result.stderr or "mount:" in result.stderr:
            pytest.skip(f"cannot make a read-only mount here: {result.stderr.strip()}")
        assert_clear_error(result, EX_IOERR, "read-only")
    else:
        folder.chmod(0o555)
        try:
            result = cgdw(*load.split()[3:])
        finally:
            folder.chmod(0o755)
        assert_clear_error(result, EX_IOERR, "permission denied")
    assert fingerprint(db_path) == before
    assert cgdw(*load.split()[3:]).returncode == 0


@pytest.mark.parametrize(
    "args", [["query", "SELECT 1"], ["load", "clinical", "{file}", "-p", "graall"], ["views", "apply"]]
)
def test_a_missing_directory_is_named_and_not_created(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "no" / "such" / "warehouse.duckdb"
    export = write_graall(tmp_path / "a.csv", ALIVE)
    result = cgdw(*[a.format(file=export) for a in args], "--db", str(db))
    assert_clear_error(result, 1, f"no warehouse at {db}", "cgdw db upgrade")
    assert not (tmp_path / "no").exists()  # a mistyped --db creates nothing (not even the lock's directory)


def test_db_upgrade_creates_a_missing_directory(tmp_path: Path) -> None:
    db = tmp_path / "new" / "warehouse.duckdb"
    result = cgdw("db", "upgrade", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert db.exists()


@contextmanager
def small_file_system(where: Path, size_mb: int) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs to fill (needs root with CAP_SYS_ADMIN): {mounted.stderr.strip()}"
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(filler: Path) -> None:
    """Grow `filler` until its file system has no free byte (in ever smaller unbuffered writes)."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for step in (2**20, 2**12, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * step):
                    pass
    finally:
        os.close(fd)


@pytest.mark.parametrize("earlier_writer", [True, False], ids=["lock-file-kept", "first-write"])
def test_a_full_disk_gives_a_clear_error_and_the_warehouse_is_unchanged(
    db_path: Path, cohort: SynthResult, tmp_path: Path, earlier_writer: bool
) -> None:
    """With a lock file left by an earlier writer (the usual case) DuckDB meets the full disk; on the very
    first write the lock file's pid does."""
    _as_root_only("a full disk (a small tmpfs)")
    # A load of the trial export grows the file by ~8 MB, and the warehouse needs room for its published copy.
    size_mb = 2 * (db_path.stat().st_size // 2**20 + 16)
    with small_file_system(tmp_path / "small", size_mb) as small:
        db = small / "warehouse.duckdb"
        shutil.copy(db_path, db)
        before = fingerprint(db)
        if earlier_writer:
            (small / "warehouse.duckdb.lock").write_text("99999999")
        filler = small / "filler"
        _fill(filler)  # no byte left: the load's WAL cannot be written

        result = cgdw("load", "clinical", str(cohort.files["graall"]), "-p", "graall", "--db", str(db), "-q")

        assert_clear_error(result, EX_IOERR, f"{db}: cannot write the warehouse", "the disk is full")
        assert ("Failed to commit" in result.stderr) == earlier_writer, result.stderr
        filler.unlink()
        # Reopened from the same (now roomier) file system: exactly as before, no run left behind.
        assert fingerprint(db) == before
        again = cgdw("load", "clinical", str(cohort.files["graall"]), "-p", "graall", "--db", str(db), "-q")
        assert again.returncode == 0, again.stderr
        assert scalar(db, "SELECT count(*) FROM etl_run WHERE status = 'succeeded'") == 1


# --- 5. encryption at rest ----------------------------------------------------------------------------------


def test_the_warehouse_file_holds_plain_values(warehouse: Path) -> None:
    """Why encryption at rest matters: an unencrypted warehouse shows its values to anyone who can read the
    file (the disk, a backup). Protect it with file permissions and an encrypted volume (docs/faults.md)."""
    assert b"GRAALL-2005" in warehouse.read_bytes()


def test_duckdb_2_cannot_write_an_encrypted_database_offline(tmp_path: Path) -> None:
    """The reason cgdw offers no --encryption-key-file: with only the wheel's extensions, DuckDB 2.0.0 can
    read but not write encrypted files (writing needs httpfs's OpenSSL, which cannot be installed offline).
    When this test fails, the stack changed: revisit docs/faults.md ("Encryption at rest")."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        with pytest.raises(duckdb.Error, match="read-only crypto module"):
            con.execute(
                f"ATTACH '{tmp_path / 'secret.duckdb'}' AS secret (ENCRYPTION_KEY 'a-key-0123456789')"
            )
        with pytest.raises(duckdb.Error, match="httpfs"):
            con.execute("LOAD httpfs")
    finally:
        con.close()
