"""The view registry: released versions of the SQL views under queries/views/, with their checksums.

Rendered from schema/models.py (`python -m schema.render view_version`). Downgrading drops the views the
registry knows (NAME_vN and the stable NAME), since they would otherwise outlive their registry.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('view_version',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('sql_sha256', sa.String(length=64), nullable=False),
    sa.Column('etl_run_id', sa.Integer(), nullable=False),
    sa.Column('applied_at', sa.DateTime(), nullable=False),
    sa.Column('retired_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('version >= 1', name=op.f('ck_view_version_version_positive')),
    sa.ForeignKeyConstraint(['etl_run_id'], ['etl_run.etl_run_id'], name=op.f('fk_view_version_etl_run_id')),
    sa.PrimaryKeyConstraint('name', 'version', name=op.f('pk_view_version'))
    )  # fmt: skip


def downgrade() -> None:
    registered = op.get_bind().execute(sa.text("SELECT name, version FROM view_version")).fetchall()
    for name in sorted({name for name, _ in registered}):
        op.execute(f'DROP VIEW IF EXISTS "{name}"')
    for name, version in registered:
        op.execute(f'DROP VIEW IF EXISTS "{name}_v{version}"')
    op.drop_table("view_version")
