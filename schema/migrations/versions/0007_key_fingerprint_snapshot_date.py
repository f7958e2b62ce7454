"""Trust: `key_fingerprint` (which pseudonymisation secret built the warehouse) and
`source_file.snapshot_date` (the day a source system exported a file, so an older snapshot is refused).

`key_fingerprint` is rendered from schema/models.py (`python -m schema.render key_fingerprint`). DuckDB adds
a nullable column in place, but cannot drop one from a table with a primary key: the downgrade rebuilds
`source_file` from its own DDL (as 0003 and 0006 do), every row kept.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('key_fingerprint',
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('fingerprint', name=op.f('pk_key_fingerprint'))
    )  # fmt: skip
    op.execute("ALTER TABLE source_file ADD COLUMN snapshot_date DATE")


def downgrade() -> None:
    op.drop_table("key_fingerprint")
    ddl = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT sql FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'source_file'"
            )
        )
        .scalar_one()
    )
    without, count = re.subn(r", snapshot_date DATE", "", str(ddl))
    assert count == 1, ddl
    renamed = re.sub(r'^CREATE TABLE "?source_file"?\(', 'CREATE TABLE "source_file__rebuild"(', without)
    columns = "source_file_id, etl_run_id, path, file_name, sha256, size_bytes, kind, layout, trial_group"
    op.execute(renamed)
    op.execute(f'INSERT INTO "source_file__rebuild" SELECT {columns} FROM "source_file"')
    op.execute('DROP TABLE "source_file"')
    op.execute('ALTER TABLE "source_file__rebuild" RENAME TO "source_file"')
