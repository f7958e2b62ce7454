"""Purge tombstones: `purged_patient` lets loaders recognise a purged patient in a later file.

Rendered from schema/models.py (`python -m schema.render purged_patient`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('purged_patient',
    sa.Column('tombstone', sa.String(length=64), nullable=False),
    sa.Column('etl_run_id', sa.Integer(), nullable=False),
    sa.Column('purged_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tombstone', name=op.f('pk_purged_patient'))
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("purged_patient")
