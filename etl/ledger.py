"""The run ledger: every change to the warehouse is one ETL run (`etl_run`), in one transaction.

One place owns starting and finishing a run, the transaction around it, the clock its times are written
with, and the code version it records. A run's `kind` says what it did (RUN_KINDS); readers decide from
it, never from the command text (a materialised view is stale after any data-changing run:
etl/materialized.py).
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from etl import __version__
from etl.warehouse import fetch_value, utc_now  # the one clock: re-exported, as `ledger.utc_now`

# What a run did. `views_apply` is the only kind that changes no data (schema/models.py `RUN_KINDS`).
LOAD = "load"  # a source file (cgdw load, validate, pipeline, demo, cbioportal import)
VIEWS_APPLY = "views_apply"  # views created and released, stored copies rebuilt
CONSENT = "consent"  # a withdrawal or a restoration
PURGE = "purge"  # rows of withdrawn patients deleted


@functools.cache
def code_version() -> str:
    """The cgdw version, with the git commit when running from a checkout (recorded on every run)."""
    checkout = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"cgdw {__version__}"
    return f"cgdw {__version__} (git {commit})"


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection, *, commit: bool = True) -> Iterator[None]:
    """One explicit transaction: committed when the block ends (rolled back instead with commit=False, a
    dry run), rolled back on any error or interruption."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT" if commit else "ROLLBACK")
    except BaseException:
        # A failed COMMIT (a full disk) invalidates the database and makes ROLLBACK raise too; DuckDB has
        # discarded the transaction anyway, and the error to report is the first one.
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def start_run(con: duckdb.DuckDBPyConnection, kind: str, command: str) -> int:
    """Record a run as 'running' (inside the caller's transaction); its id."""
    return int(
        fetch_value(
            con,
            "INSERT INTO etl_run (kind, command, run_by, code_version, started_at, status) "
            "VALUES ($kind, $command, $user, $version, $now, 'running') RETURNING etl_run_id",
            {
                "kind": kind,
                "command": command,
                "user": getpass.getuser(),
                "version": code_version(),
                "now": utc_now(),
            },
        )
    )


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    counts: dict[str, Any],
    *,
    rows_read: int = 0,
    rows_loaded: int = 0,
    rows_rejected: int = 0,
) -> None:
    """Mark a run succeeded with what it did (`counts_json`); it takes effect when the transaction commits."""
    con.execute(
        "UPDATE etl_run SET status = 'succeeded', finished_at = $now, rows_read = $read, "
        "rows_loaded = $loaded, rows_rejected = $rejected, counts_json = $counts WHERE etl_run_id = $run",
        {
            "now": utc_now(),
            "read": rows_read,
            "loaded": rows_loaded,
            "rejected": rows_rejected,
            "counts": json.dumps(counts, sort_keys=True),
            "run": run_id,
        },
    )
