"""Real exports: a patient's age, diagnosis year and sex at enrolment may be unknown (a published cohort
that gives none of them); the patient is in the cohort views with NULLs instead of left out.

`enrolment` is rebuilt with those three columns nullable (schema/rebuild.py); their CHECK constraints
stay (a NULL passes them). Downgrading is refused while a row has one of them unknown.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from schema.rebuild import rebuild_table

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("diagnosis_year INTEGER", "sex VARCHAR", "age_at_diagnosis_years DOUBLE")


def upgrade() -> None:
    def nullable(ddl: str) -> str:
        for column in COLUMNS:
            assert f"{column} NOT NULL" in ddl, ddl
            ddl = ddl.replace(f"{column} NOT NULL", column)
        return ddl

    rebuild_table("enrolment", nullable)


def downgrade() -> None:
    unknown = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT count(*) FROM enrolment "
                "WHERE diagnosis_year IS NULL OR sex IS NULL OR age_at_diagnosis_years IS NULL"
            )
        )
        .scalar_one()
    )
    if unknown:
        raise RuntimeError(
            f"{unknown} enrolment rows have no age, sex or diagnosis year: revision 0008 cannot hold them"
        )

    def required(ddl: str) -> str:
        for column in COLUMNS:
            ddl = ddl.replace(f"{column},", f"{column} NOT NULL,", 1)
        return ddl

    rebuild_table("enrolment", required)
