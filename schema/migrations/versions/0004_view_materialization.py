"""Materialised views: `view_materialization` records which view versions are stored as tables.

Rendered from schema/models.py (`python -m schema.render view_materialization`). Downgrading drops the
tables it lists, since they would otherwise outlive their registry.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('view_materialization',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('table_name', sa.Text(), nullable=False),
    sa.Column('etl_run_id', sa.Integer(), nullable=False),
    sa.Column('built_at', sa.DateTime(), nullable=False),
    sa.Column('row_count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', 'version', name=op.f('pk_view_materialization'))
    )  # fmt: skip


def downgrade() -> None:
    tables = op.get_bind().execute(sa.text("SELECT table_name FROM view_materialization")).fetchall()
    for (table,) in tables:
        op.execute(f'DROP TABLE IF EXISTS "{table}"')
    op.drop_table("view_materialization")
