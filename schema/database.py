"""Where the warehouse lives and how to migrate it (wraps Alembic so `cgdw db ...` needs no alembic.ini).

Alembic and SQLAlchemy are imported only by the functions that migrate: every `cgdw` command checks the
schema revision, and importing Alembic for that alone would cost a quarter of a second each time.
"""

from __future__ import annotations

import io
import os
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_DB = "cgdw.duckdb"
# The newest migration, what `require_head` compares a warehouse with. A new migration changes it;
# tests/test_migrations.py checks it against Alembic's own head.
HEAD_REVISION = "0014"


def resolve_db_path(db: str | os.PathLike[str] | None = None) -> Path:
    """--db PATH, else $CGDW_DB, else ./cgdw.duckdb."""
    chosen = db or os.environ.get("CGDW_DB") or DEFAULT_DB
    return Path(chosen)


def database_url(path: Path) -> str:
    return f"duckdb:///{path}"


def alembic_config(db_path: Path) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url(db_path))
    return config


def upgrade(db_path: Path, revision: str = "head") -> None:
    from alembic import command

    db_path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(db_path), revision)


def downgrade(db_path: Path, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(db_path), revision)


def current_revision(db_path: Path) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, pool

    import schema.alembic_duckdb  # noqa: F401 - registers Alembic's DuckDB implementation

    if not db_path.exists():
        return None
    engine = create_engine(database_url(db_path), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    return HEAD_REVISION


def alembic_head_revision() -> str | None:
    """The head as Alembic finds it in the migration scripts (HEAD_REVISION must equal it)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(Path(DEFAULT_DB))).get_current_head()


def history() -> str:
    from alembic import command

    out = io.StringIO()
    with redirect_stdout(out):
        command.history(alembic_config(Path(DEFAULT_DB)), verbose=False)
    return out.getvalue()
