"""A load killed with SIGKILL leaves the warehouse exactly as it was before the load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from etl.views import GENERATED_VIEWS  # one generated view each: patient and sample attributes, MRD
from queries import load_definitions
from tests.helpers import ALIVE, DEAD, REFRACTORY, fingerprint, scalar, start_load, wait_for, write_graall


@pytest.mark.parametrize("fault_point", ["after_register", "after_insert", "before_commit"])
def test_a_killed_load_leaves_the_last_committed_state(
    db_path: Path, tmp_path: Path, fault_point: str
) -> None:
    from etl.sources.registry import load_source

    load_source(db_path, "clinical", write_graall(tmp_path / "first.csv", ALIVE), layout="graall")
    before = fingerprint(db_path)
    export = write_graall(tmp_path / "second.csv", ALIVE.replace(";74100;", ";1000;"), DEAD, REFRACTORY)

    marker = tmp_path / "reached"
    process = start_load(db_path, export, fault_point, marker)
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert fingerprint(db_path) == before
    assert scalar(db_path, "SELECT count(*) FROM etl_run WHERE status = 'running'") == 0
    # The same command then completes: no stale lock, no half-registered file.
    report = load_source(db_path, "clinical", export, layout="graall")
    assert report.rows_loaded == 3 and not report.noop
    assert scalar(db_path, "SELECT count(*) FROM patient") == 3


@pytest.mark.parametrize("fault_point", ["views_after_register", "views_before_commit"])
def test_a_killed_views_apply_leaves_no_view_and_no_release(
    db_path: Path, tmp_path: Path, fault_point: str
) -> None:
    from tests.helpers import query

    before = fingerprint(db_path)
    marker = tmp_path / "reached"
    env = {**os.environ, "CGDW_FAULT_POINT": fault_point, "CGDW_FAULT_MARKER": str(marker)}
    process = subprocess.Popen(
        [sys.executable, "-m", "etl", "views", "apply", "--db", str(db_path)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert fingerprint(db_path) == before
    assert query(db_path, "SELECT view_name FROM duckdb_views() WHERE NOT internal") == []
    again = subprocess.run(
        [sys.executable, "-m", "etl", "views", "apply", "--db", str(db_path)], capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    released = scalar(db_path, "SELECT count(*) FROM view_version")
    assert released == len(load_definitions()) + len(GENERATED_VIEWS)
