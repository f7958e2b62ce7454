"""Named cohort definitions are released like views: `cohort_release` records name, version and the
checksum of the rules of every definition `cgdw views apply` released (rendered from schema/models.py with
`python -m schema.render cohort_release`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cohort_release',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('rules_sha256', sa.String(length=64), nullable=False),
    sa.Column('etl_run_id', sa.Integer(), nullable=False),
    sa.Column('released_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('version >= 1', name=op.f('ck_cohort_release_version_positive')),
    sa.PrimaryKeyConstraint('name', 'version', name=op.f('pk_cohort_release'))
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("cohort_release")
