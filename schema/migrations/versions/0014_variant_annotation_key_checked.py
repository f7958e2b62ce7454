"""variant_annotation's key (variant, transcript, annotation source) is checked, not enforced by an index.

Why: the UNIQUE index cost more than the load it guarded. On a 1M-record VCF the COMMIT took 1.6 s with
it and 0.8 s without, and the merge 0.8 s more (benchmarks/RESULTS.md, issue 16). The one writer of the
table, the variant merge (etl/sources/variants.py), inserts only keys that are not there yet, as it did
before; `cgdw db check` counts repeated keys (schema/integrity.py), as it counts orphan rows since 0003.

The table is rebuilt from its own DDL in DuckDB's catalog, minus (downgrading, plus) the UNIQUE clause, in
the migration's transaction: all or nothing. A downgrade fails, changing nothing, if a key repeats.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIQUE_CLAUSE = ", UNIQUE(variant_id, transcript_accession, annotation_source)"


def upgrade() -> None:
    _rebuild(lambda ddl: ddl.replace(UNIQUE_CLAUSE, ""))


def downgrade() -> None:
    _rebuild(lambda ddl: ddl[: ddl.rindex(")")] + UNIQUE_CLAUSE + ")")


def _rebuild(change: Callable[[str], str]) -> None:
    bind = op.get_bind()
    ddl = bind.execute(
        sa.text("SELECT sql FROM duckdb_tables() WHERE table_name = 'variant_annotation'")
    ).scalar_one()
    new = change(ddl.rstrip().removesuffix(";"))
    assert new != ddl.rstrip().removesuffix(";"), ddl
    op.execute("ALTER TABLE variant_annotation RENAME TO variant_annotation__old")
    op.execute(new)
    op.execute("INSERT INTO variant_annotation SELECT * FROM variant_annotation__old")
    op.execute("DROP TABLE variant_annotation__old")
