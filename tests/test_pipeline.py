"""`cgdw pipeline run`: scheduled loads from drop folders, as cron runs them (docs/scheduling.md).

Real warehouses, the real synthetic cohort copied into drop folders, and `python -m etl pipeline run`
in a subprocess wherever the exit code, the lock or a kill matters.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from typer.testing import CliRunner

from etl import pipeline
from etl.cli import app
from etl.views import GENERATED_VIEWS  # one generated view each: patient and sample attributes, MRD
from queries import load_definitions
from tests.helpers import (
    REPO,
    SOURCES,
    TEST_KEY,
    command,
    drop,
    environment,
    fingerprint,
    scalar,
    wait_for,
    write_config,
)

if TYPE_CHECKING:
    from etl.synth import SynthResult

COHORT_FILES = 12  # two trial exports, lab, samples, four VCF batches, MAF, CNV, SEG, MRD
PATIENTS = 476


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A data manager's site: an empty warehouse at head, empty drop folders and their configuration."""
    from schema import database

    database.upgrade(tmp_path / "warehouse.duckdb")
    write_config(tmp_path)
    return tmp_path


def run(site: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(site, *args), capture_output=True, text=True, env=environment(env))


def log_records(site: Path) -> list[dict[str, Any]]:
    path = site / "logs" / "pipeline.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def last_run(site: Path) -> list[dict[str, Any]]:
    records = log_records(site)
    return [r for r in records if r["pipeline_run"] == records[-1]["pipeline_run"]]


def count(site: Path, table: str) -> int:
    return int(scalar(site / "warehouse.duckdb", f"SELECT count(*) FROM {table}"))  # type: ignore[call-overload]


# --- a scheduled run ---------------------------------------------------------------------------------------


def test_a_run_loads_the_new_files_in_dependency_order_and_applies_the_views(
    site: Path, cohort: SynthResult
) -> None:
    drop(site, cohort, *(key for key in SOURCES if key != "mrd"))  # no MRD results this month

    result = run(site)

    assert result.returncode == 0, result.stderr
    assert f"{COHORT_FILES - 1} loaded" in result.stdout
    assert f"no file matches mrd {site / 'drop' / 'mrd' / '*.tsv'}" in result.stdout  # not an error
    assert count(site, "patient") == PATIENTS and count(site, "cohort_patient") == PATIENTS
    # released by the run's views apply
    assert count(site, "view_version") == len(load_definitions()) + len(GENERATED_VIEWS)
    records = last_run(site)
    files = [r for r in records if r["event"] == "file"]
    assert [r["kind"] for r in files] == [
        "clinical", "clinical", "lab", "samples", "vcf", "vcf", "vcf", "vcf", "maf", "cnv", "seg",
    ]  # fmt: skip
    assert {(r["status"], r["change"]) for r in files} == {("loaded", "new")}
    assert all(len(r["sha256"]) == 64 and r["run_id"] and r["rows_loaded"] == r["rows_read"] for r in files)
    summary = records[-1]
    assert summary["event"] == "summary" and summary["exit_code"] == 0
    assert summary["files"] == {"loaded": COHORT_FILES - 1} and summary["views"].startswith("run ")
    commands = scalar(site / "warehouse.duckdb", "SELECT string_agg(command, '|') FROM etl_run")
    assert "cgdw pipeline run --config" in str(commands) and "(load clinical graall_export.csv)" in str(
        commands
    )


def test_a_second_run_loads_nothing_and_a_file_dropped_later_is_loaded(
    site: Path, cohort: SynthResult
) -> None:
    drop(site, cohort, *(key for key in SOURCES if key != "mrd"))
    assert run(site).returncode == 0
    runs_before = count(site, "etl_run")

    again = run(site)

    assert again.returncode == 0, again.stderr
    assert f"{COHORT_FILES - 1} already loaded" in again.stdout
    assert count(site, "etl_run") == runs_before  # not even the views were applied again
    assert {r["status"] for r in last_run(site) if r["event"] == "file"} == {"already_loaded"}

    drop(site, cohort, "mrd")
    later = run(site)

    assert later.returncode == 0, later.stderr
    loaded = [r for r in last_run(site) if r.get("status") == "loaded"]
    assert [(r["kind"], Path(r["path"]).name) for r in loaded] == [("mrd", "mrd_results.tsv")]
    assert count(site, "mrd_measurement") > 0


def test_quiet_prints_nothing_when_all_is_well(site: Path, cohort: SynthResult) -> None:
    drop(site, cohort)
    result = run(site, "--quiet")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_a_dry_run_lists_what_would_load_and_writes_nothing(site: Path, cohort: SynthResult) -> None:
    drop(site, cohort)
    before = fingerprint(site / "warehouse.duckdb")

    dry = run(site, "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert f"{COHORT_FILES} files would load, nothing written" in dry.stdout
    assert dry.stdout.count("would_load") == COHORT_FILES
    assert fingerprint(site / "warehouse.duckdb") == before
    assert not (site / "logs").exists() and not pipeline.lock_path(site / "warehouse.duckdb").exists()

    assert run(site).returncode == 0
    (site / "drop" / "lab" / "lab_oncogenetics.tsv").write_text("a newer export\n")  # other bytes, same path
    loaded = fingerprint(site / "warehouse.duckdb")
    lines = len(log_records(site))

    dry = run(site, "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert "1 files would load" in dry.stdout
    assert re.search(r"would_load +lab .*lab_oncogenetics\.tsv: changed since its last load", dry.stdout)
    assert dry.stdout.count("already_loaded") == COHORT_FILES - 1
    assert fingerprint(site / "warehouse.duckdb") == loaded and len(log_records(site)) == lines


def test_files_still_being_written_wait_for_a_later_run(tmp_path: Path, cohort: SynthResult) -> None:
    from schema import database

    database.upgrade(tmp_path / "warehouse.duckdb")
    write_config(tmp_path, extra="settle_seconds: 3600")
    drop(tmp_path, cohort, "graall")  # just copied: modified less than an hour ago
    (tmp_path / "drop" / "graall" / ".graall_2024-06.csv.tmp").write_text("half a file")  # rsync's copy

    result = run(tmp_path)

    assert result.returncode == 0, result.stderr
    assert re.search(r"settling +clinical .*graall_export\.csv: modified less than 3600 s ago", result.stdout)
    assert ".tmp" not in result.stdout and count(tmp_path, "source_file") == 0


# --- exit codes -------------------------------------------------------------------------------------------


def test_a_rejected_file_exits_11_and_the_other_files_still_load(site: Path, cohort: SynthResult) -> None:
    drop(site, cohort)
    bad = site / "drop" / "graall" / "graall_2024-06.csv"
    bad.write_text("NOM;PRENOM\nDupont;Jean\n", encoding="latin-1")  # identifiers: refused whole

    result = run(site)

    assert result.returncode == pipeline.EXIT_REJECTED == 11, result.stderr
    assert re.search(r"rejected +clinical .*graall_2024-06\.csv: .*identif", result.stdout)
    assert count(site, "patient") == PATIENTS and count(site, "source_file") == COHORT_FILES
    rejected = [r for r in last_run(site) if r.get("status") == "rejected"]
    assert len(rejected) == 1 and rejected[0]["path"] == str(bad) and rejected[0]["run_id"] is None
    assert last_run(site)[-1]["exit_code"] == 11

    # With --quiet (cron), the rejection is one line on stderr: cron mails exactly that.
    quiet = run(site, "--quiet")
    assert quiet.returncode == 11 and quiet.stdout == ""
    assert (
        quiet.stderr.count("\n") == 1 and "graall_2024-06.csv: file rejected, nothing loaded" in quiet.stderr
    )


def test_quarantined_rows_exit_10(site: Path, cohort: SynthResult, dirty_cohort: SynthResult) -> None:
    # 6 bad rows appended, 7 rejected (a duplicated patient loses both rows): under the 5% limit. Only the
    # trial exports: the files that refer to the quarantined duplicate would quarantine its rows too.
    drop(site, dirty_cohort, "graall")
    drop(site, cohort, "fralle")

    result = run(site)

    assert result.returncode == pipeline.EXIT_QUARANTINED == 10, result.stderr
    quarantined = [r for r in last_run(site) if r.get("status") == "quarantined"]
    assert [(r["kind"], r["rows_rejected"]) for r in quarantined] == [("clinical", 7)]
    run_id = quarantined[0]["run_id"]
    assert f"7 rows quarantined: `cgdw rejects {run_id}`" in result.stdout
    assert count(site, "rejected_record") >= 7


def test_a_config_typo_exits_78_naming_the_key_its_line_and_the_fix(site: Path) -> None:
    config = site / "pipeline.yaml"
    config.write_text(config.read_text().replace("pattern:", "patern:", 1), encoding="utf-8")

    result = run(site)

    assert result.returncode == pipeline.EXIT_CONFIG == 78
    line = next(i for i, text in enumerate(config.read_text().splitlines(), start=1) if "patern" in text)
    assert result.stderr.startswith(f"error: {config}: line {line}: unknown key 'patern' in sources entry 1")
    assert "(did you mean 'pattern'?)" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (site / "logs").exists()


CONFIG_MISTAKES = [
    ("sources:\n  - {kind: clinicl, folder: drop, pattern: '*'}\n",
     "line 2: unknown kind 'clinicl' (did you mean 'clinical'?)"),
    ("sources:\n  - {kind: vcf, folder: drop, pattern: '*', layout: x}\n",
     "line 2: 'layout' does not apply to vcf sources"),
    ("sources:\n  - {kind: lab, folder: nowhere, pattern: '*'}\n", "line 2: folder"),
    ("sources:\n  - {kind: clinical, folder: drop, pattern: '*'}\n", "clinical sources need a layout"),
    ("sources:\n  - {kind: clinical, folder: drop, pattern: '*', layout: lab}\n",
     "layout 'lab' is for lab files"),
    ("sources:\n  - {kind: lab, folder: drop, pattern: '*'}\nmax_reject_fraction: 2\n",
     "line 3: max_reject_fraction must be between 0 and 1"),
    ("warehous: w.duckdb\nsources: []\n",
     "line 1: unknown key 'warehous' in the configuration (did you mean 'warehouse'?)"),
    ("sources: []\n", "sources must be a non-empty list"),
    ("sources:\n  - {kind: vcf, folder: drop, pattern: '*', pass_only: 1}\n", "pass_only must be bool"),
    ("sources:\n  - {kind: lab, folder: drop, kind: mrd, pattern: '*'}\n", "'kind' is given twice"),
    ("sources: [\n", "not valid YAML"),
    ("", "the configuration is empty"),
]  # fmt: skip


@pytest.mark.parametrize(("yaml_text", "message"), CONFIG_MISTAKES)
def test_every_config_mistake_is_named(tmp_path: Path, yaml_text: str, message: str) -> None:
    (tmp_path / "drop").mkdir()
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(pipeline.PipelineConfigError, match=re.escape(message)) as error:
        pipeline.load_config(config)
    assert error.value.exit_code == 78 and str(error.value).startswith(str(config))


def test_a_missing_pseudonym_key_is_a_config_error(site: Path) -> None:
    result = subprocess.run(command(site), capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 78 and "no pseudonymisation key" in result.stderr


def test_the_help_lists_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["pipeline", "run", "--help"], prog_name="cgdw")
    assert result.exit_code == 0
    for code in (pipeline.EXIT_OK, pipeline.EXIT_QUARANTINED, pipeline.EXIT_REJECTED, pipeline.EXIT_LOCKED):
        assert re.search(rf"\b{code} ", result.output)
    assert f"{pipeline.EXIT_CONFIG} configuration error" in result.output


# --- one pipeline at a time -------------------------------------------------------------------------------


def test_of_two_pipelines_started_together_one_loads_and_the_other_exits_75_at_once(
    site: Path, cohort: SynthResult
) -> None:
    drop(site, cohort)
    started = time.monotonic()
    first, second = (
        subprocess.Popen(
            command(site), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment()
        )
        for _ in range(2)
    )
    ended: dict[int, float] = {}
    while len(ended) < 2:
        for process in (first, second):
            if process.pid not in ended and process.poll() is not None:
                ended[process.pid] = time.monotonic() - started
        time.sleep(0.02)
    outcomes = {p.returncode: (p, p.communicate()) for p in (first, second)}

    assert sorted(outcomes) == [0, pipeline.EXIT_LOCKED]
    loser, (_, stderr) = outcomes[75]
    winner, _ = outcomes[0]
    assert ended[loser.pid] < ended[winner.pid]  # at once, not after waiting
    assert re.fullmatch(
        rf"error: a pipeline is already running on .*warehouse\.duckdb since \S+Z, pid {winner.pid} on \S+ "
        r"\(lock .*warehouse\.duckdb\.pipeline\.lock\); this run did nothing, try again when it ends\n",
        stderr,
    )
    # One loaded set: every file once, one views apply, the whole cohort.
    assert count(site, "source_file") == COHORT_FILES and count(site, "etl_run") == COHORT_FILES + 1
    assert count(site, "patient") == PATIENTS
    assert len([r for r in log_records(site) if r["event"] == "summary"]) == 1


def test_a_killed_pipeline_does_not_block_the_next_run_which_reports_it(
    site: Path, cohort: SynthResult
) -> None:
    drop(site, cohort)
    marker = site / "reached"
    # Hold the run inside its first file load (the framework's fault point), then kill it without mercy.
    env = environment({"CGDW_FAULT_POINT": "after_register", "CGDW_FAULT_MARKER": str(marker)})
    killed = subprocess.Popen(command(site), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wait_for(marker, killed)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert f'"pid": {killed.pid}' in pipeline.lock_path(site / "warehouse.duckdb").read_text()

    result = run(site)

    assert result.returncode == 0, result.stderr
    assert re.search(
        rf"warning: the previous pipeline run \(pid {killed.pid}, started \S+Z\) did not finish "
        r"\(its process is gone",
        result.stdout,
    )
    summary = last_run(site)[-1]
    assert any(f"pid {killed.pid}" in w for w in summary["warnings"])
    assert count(site, "source_file") == COHORT_FILES and count(site, "patient") == PATIENTS
    assert pipeline.lock_path(site / "warehouse.duckdb").read_text() == ""  # a run that ends leaves it empty
    assert "did not finish" not in run(site).stdout  # reported once


def test_an_etl_run_left_running_is_reported(site: Path) -> None:
    with duckdb.connect(str(site / "warehouse.duckdb")) as con:
        con.execute(
            "INSERT INTO etl_run (kind, command, run_by, code_version, started_at, status) VALUES "
            "('load', 'cgdw load lab x.tsv', 'someone', 'cgdw 0', TIMESTAMP '2026-01-02 03:04:05', 'running')"
        )
    result = run(site)
    assert result.returncode == 0, result.stderr
    assert "(cgdw load lab x.tsv, started 2026-01-02 03:04:05 UTC) is still marked running" in result.stdout


# --- docs/scheduling.md, run for real ----------------------------------------------------------------------


DOC = REPO / "docs" / "scheduling.md"
DOC_PATHS = ("/etc/cgdw", "/var/lib/cgdw", "/var/log/cgdw", "/srv/cgdw")


def doc_commands(text: str) -> list[str]:
    """The command lines of the blocks tagged `test`, in page order (see the end of the page)."""
    commands = []
    for tag, body in re.findall(r"^```(\w+) test\n(.*?)^```", text, flags=re.M | re.S):
        for line in body.splitlines():
            if tag == "bash" and line.strip() and not line.startswith("#"):
                commands.append(line)
            elif tag == "crontab" and re.match(r"^[\d*/,-]+( [\d*/,-]+){4} ", line):
                commands.append(line.split(" ", 5)[5])
            elif tag == "ini" and line.startswith("ExecStart="):
                commands.append(line.removeprefix("ExecStart="))
    return commands


def test_the_scheduling_page_runs(tmp_path: Path, cohort: SynthResult) -> None:
    text = DOC.read_text(encoding="utf-8")
    for path in DOC_PATHS:
        text = text.replace(path, str(tmp_path / path.strip("/").replace("/", "_")))
    text = text.replace("/opt/cgdw/venv/bin/", f"{Path(sys.executable).parent}/")
    config = re.search(r"^```yaml\n# \S+\n(.*?)^```", text, flags=re.M | re.S)
    assert config is not None
    etc = tmp_path / "etc_cgdw"
    etc.mkdir()
    (etc / "pipeline.yaml").write_text(config.group(1), encoding="utf-8")
    (etc / "pseudonym.key").write_text(TEST_KEY + "\n", encoding="utf-8")  # key_file: no key in the env
    drop_root = tmp_path / "srv_cgdw"
    drop(drop_root, cohort)
    commands = doc_commands(text)
    assert len(commands) == 6 and sum("pipeline run" in c for c in commands) == 3

    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "COLUMNS": "200"}
    for line in commands:
        done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        if "--dry-run" in line:
            assert f"{COHORT_FILES} files would load" in done.stdout
        if "--quiet" in line:
            assert done.stdout == "" and done.stderr == ""

    db = tmp_path / "var_lib_cgdw" / "warehouse.duckdb"
    assert int(scalar(db, "SELECT count(*) FROM cohort_patient")) == PATIENTS  # type: ignore[call-overload]
    summaries = [
        json.loads(line)
        for line in (tmp_path / "var_log_cgdw" / "pipeline.jsonl").read_text().splitlines()
        if '"summary"' in line
    ]
    assert [s["files"] for s in summaries] == [{"loaded": COHORT_FILES}, {"already_loaded": COHORT_FILES}]


@pytest.mark.parametrize("held", ["write lock", "warehouse file"])
def test_a_warehouse_busy_with_a_manual_load_skips_every_file_for_the_next_run(
    site: Path, cohort: SynthResult, held: str
) -> None:
    """docs/scheduling.md: a `cgdw load` by hand holds the warehouse (its lock file, or DuckDB's own lock on
    the file while it writes): the pipeline loads nothing, logs every file `skipped` and exits 75; the
    files are new for the next run. (Holding the file used to end the run before the files were logged.)"""
    drop(site, cohort)
    db = site / "warehouse.duckdb"
    holder = (
        "from pathlib import Path; from etl.warehouse import write_lock; import time\n"
        f"with write_lock(Path({str(db)!r})):\n    print('held', flush=True); time.sleep(120)"
        if held == "write lock"
        else f"import duckdb, time\ncon = duckdb.connect({str(db)!r})\nprint('held', flush=True)\n"
        "time.sleep(120)"
    )
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        run = subprocess.run(command(site), capture_output=True, text=True, env=environment())
    finally:
        process.kill()
        process.wait()
    assert run.returncode == pipeline.EXIT_LOCKED, run.stderr
    busy = "is in use by another process" if held == "warehouse file" else "being written by another cgdw"
    assert "the warehouse is busy" in run.stderr and busy in run.stderr
    files = [r for r in last_run(site) if r.get("event") == "file"]
    assert len(files) == COHORT_FILES
    assert {r["status"] for r in files} == {"skipped"}
    assert count(site, "etl_run") == 0
    assert subprocess.run(command(site), env=environment(), capture_output=True).returncode == 0
    assert count(site, "patient") == PATIENTS


def test_a_pipeline_interrupted_after_a_commit_logs_its_exit_and_what_it_published(
    site: Path, cohort: SynthResult
) -> None:
    """Ctrl-C after the first file committed: the run publishes that file (readers must see a withdrawal
    it may carry), and its log's summary says so, with the exit code the process ends with."""
    drop(site, cohort)
    marker = site / "reached"
    env = environment({"CGDW_FAULT_POINT": "after_commit", "CGDW_FAULT_MARKER": str(marker)})
    interrupted = subprocess.Popen(command(site), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wait_for(marker, interrupted)
    os.kill(interrupted.pid, signal.SIGINT)
    interrupted.wait(timeout=60)

    summary = last_run(site)[-1]
    assert summary["event"] == "summary"
    assert summary["exit_code"] == 130 and interrupted.returncode in (130, -signal.SIGINT)
    assert summary["published_after_run"] == 1
    assert count(site, "source_file") == 1
