"""`etl_run.kind`: what a run did (load, views_apply, consent, purge), recorded by etl/ledger.py.

Readers decide from the kind, not from the command text (a stored copy of a view is stale after any
data-changing run). Earlier runs get their kind from the commands cgdw wrote for them.

DuckDB cannot add a column with a CHECK constraint, nor drop one from a table with a primary key: the
table is rebuilt from its own DDL (as in 0003), in the migration's transaction, every row kept.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("load", "views_apply", "consent", "purge")
_CHECK = "CHECK((kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")))"
# The commands cgdw wrote before runs had a kind (etl/views.py, etl/consent.py, etl/pipeline.py, etl/demo.py).
_KIND_OF_COMMAND = """
    CASE
        WHEN command LIKE 'cgdw views apply%' OR command LIKE '%(views apply)' THEN 'views_apply'
        WHEN command LIKE 'cgdw consent %' THEN 'consent'
        WHEN command LIKE 'cgdw purge%' THEN 'purge'
        ELSE 'load'
    END
"""
_COLUMNS = (
    "etl_run_id, command, run_by, code_version, started_at, finished_at, status, rows_read, rows_loaded, "
    "rows_rejected, counts_json"
)


def upgrade() -> None:
    ddl = _ddl()
    with_kind, count = re.subn(r", PRIMARY KEY\(", ", kind VARCHAR NOT NULL, PRIMARY KEY(", ddl, count=1)
    assert count == 1, ddl
    with_kind = with_kind.rstrip().removesuffix(";")
    _rebuild(with_kind[: with_kind.rindex(")")] + f", {_CHECK})", f"{_COLUMNS}, {_KIND_OF_COMMAND}")


def downgrade() -> None:
    ddl = _ddl().replace(", kind VARCHAR NOT NULL", "").replace(f", {_CHECK}", "")
    assert "kind" not in ddl, ddl
    _rebuild(ddl, _COLUMNS)


def _ddl() -> str:
    rows = op.get_bind().execute(
        sa.text("SELECT sql FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'etl_run'")
    )
    return str(rows.scalar_one())


def _rebuild(ddl: str, select: str) -> None:
    renamed, count = re.subn(r'^CREATE TABLE "?etl_run"?\(', 'CREATE TABLE "etl_run__rebuild"(', ddl)
    assert count == 1, ddl[:80]
    op.execute(renamed)
    op.execute(f'INSERT INTO "etl_run__rebuild" SELECT {select} FROM "etl_run"')
    op.execute('DROP TABLE "etl_run"')
    op.execute('ALTER TABLE "etl_run__rebuild" RENAME TO "etl_run"')
