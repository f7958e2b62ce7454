"""Alembic environment for DuckDB. Migrations are hand-written (duckdb-engine reflection is broken)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import schema.alembic_duckdb  # noqa: F401 - registers Alembic's DuckDB implementation
from schema.database import database_url, resolve_db_path


def _url() -> str:
    configured = context.config.get_main_option("sqlalchemy.url")
    if configured:
        return configured
    return database_url(resolve_db_path(context.get_x_argument(as_dictionary=True).get("db")))


def run_migrations_online() -> None:
    # NullPool: a pooled DuckDB connection would keep the file lock after the migration.
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("cgdw migrations run online only (DuckDB); use `cgdw db upgrade`")
run_migrations_online()
