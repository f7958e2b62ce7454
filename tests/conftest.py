"""Shared fixtures: real DuckDB files migrated with the real Alembic migrations, real synthetic files."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from schema import database
from tests.helpers import TEST_KEY, load_cohort

if TYPE_CHECKING:
    from etl.synth import SynthResult


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CGDW_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.delenv("CGDW_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("CGDW_DB", raising=False)
    return TEST_KEY


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """An empty warehouse at the head revision."""
    path = tmp_path / "warehouse.duckdb"
    database.upgrade(path)
    return path


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """The synthetic cohort of the seed letter (476 patients), clean."""
    from etl.synth import write_synthetic_cohort

    return write_synthetic_cohort(tmp_path_factory.mktemp("cohort"), seed=1)


@pytest.fixture(scope="session")
def dirty_cohort(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """The same cohort plus the documented data problems (dirty_manifest.json lists them)."""
    from etl.synth import write_synthetic_cohort

    return write_synthetic_cohort(tmp_path_factory.mktemp("dirty"), seed=1, dirty=True)


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory, cohort: SynthResult) -> Path:
    """The synthetic cohort loaded from its raw files, with every view applied. Read it, never write it."""
    from etl.views import apply_views

    db = tmp_path_factory.mktemp("warehouse") / "cohort.duckdb"
    database.upgrade(db)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CGDW_PSEUDONYM_KEY", TEST_KEY)
        load_cohort(db, cohort)
    apply_views(db)
    return db


@pytest.fixture
def chdir_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


_exit_status = {"code": 0}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # Leave without interpreter finalization, as the cgdw command does (etl/cli.py `_exit`): when DuckDB,
    # oxbow and fastexcel have all been used in one process, DuckDB's binding layer prints spurious
    # "leaked instance" lines at finalization, after pytest's summary line. Everything is closed by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status["code"])
