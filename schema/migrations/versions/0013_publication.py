"""Publications: readers open a copy of the warehouse (`<name>.published.duckdb`) that every write replaces
when it commits, so that a load never waits for a reader and a reader never waits for a load.
`publication` records each copy put in place (docs/concurrency.md). Rendered from schema/models.py with
`python -m schema.render publication`.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE seq_publication")
    op.create_table('publication',
    sa.Column('publication_id', sa.Integer(), server_default=sa.text("nextval('seq_publication')"), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=False),
    sa.Column('etl_run_id', sa.Integer(), nullable=True),
    sa.Column('schema_revision', sa.Text(), nullable=False),
    sa.Column('storage_version', sa.Text(), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('seconds', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('publication_id', name=op.f('pk_publication'))
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("publication")
    op.execute("DROP SEQUENCE seq_publication")
