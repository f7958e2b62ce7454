"""Rebuilding a table in a migration, the way DuckDB allows a column change (shared/stack-notes.md: a table
with a primary key cannot ALTER, DROP or RENAME a column): its own DDL, changed, under a temporary name;
every row copied; the old table dropped; the new one renamed. In the migration's transaction: all or
nothing. Migrations 0009 and later use it (0003, 0006 and 0007 keep their own, as released)."""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op


def table_ddl(table: str) -> str:
    rows = op.get_bind().execute(
        sa.text("SELECT sql FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = :table"),
        {"table": table},
    )
    return str(rows.scalar_one())


def rebuild_table(table: str, change: Callable[[str], str], select: str = "*") -> None:
    """Recreate `table` from `change(its DDL)`, with the rows of `SELECT select FROM table`."""
    ddl = change(table_ddl(table))
    renamed, count = re.subn(rf'^CREATE TABLE "?{table}"?\(', f'CREATE TABLE "{table}__rebuild"(', ddl)
    assert count == 1, ddl[:80]
    op.execute(renamed)
    op.execute(f'INSERT INTO "{table}__rebuild" SELECT {select} FROM "{table}"')
    op.execute(f'DROP TABLE "{table}"')
    op.execute(f'ALTER TABLE "{table}__rebuild" RENAME TO "{table}"')
