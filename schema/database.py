"""Where the warehouse lives and how to migrate it (wraps Alembic so `cgdw db ...` needs no alembic.ini)."""

from __future__ import annotations

import functools
import io
import os
from contextlib import redirect_stdout
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool


class DuckDBImpl(DefaultImpl):
    """duckdb-engine ships no Alembic implementation (defining this registers one). DDL is transactional."""

    __dialect__ = "duckdb"
    transactional_ddl = True


MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_DB = "cgdw.duckdb"


def resolve_db_path(db: str | os.PathLike[str] | None = None) -> Path:
    """--db PATH, else $CGDW_DB, else ./cgdw.duckdb."""
    chosen = db or os.environ.get("CGDW_DB") or DEFAULT_DB
    return Path(chosen)


def database_url(path: Path) -> str:
    return f"duckdb:///{path}"


def alembic_config(db_path: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url(db_path))
    return config


def upgrade(db_path: Path, revision: str = "head") -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(db_path), revision)


def downgrade(db_path: Path, revision: str) -> None:
    command.downgrade(alembic_config(db_path), revision)


def current_revision(db_path: Path) -> str | None:
    if not db_path.exists():
        return None
    engine = create_engine(database_url(db_path), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


@functools.cache
def head_revision() -> str | None:
    """The newest migration (read once per process: parsing the migration scripts takes a while)."""
    return ScriptDirectory.from_config(alembic_config(Path(DEFAULT_DB))).get_current_head()


def history() -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        command.history(alembic_config(Path(DEFAULT_DB)), verbose=False)
    return out.getvalue()
