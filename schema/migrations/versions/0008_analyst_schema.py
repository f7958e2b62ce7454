"""The analysts' surface: schema `analyst`, filled by `cgdw views apply` (etl/surface.py) with the
consent-filtered relations analysts may read. Downgrading drops it with everything in it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS analyst")


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS analyst CASCADE")
