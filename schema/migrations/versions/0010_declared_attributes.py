"""Any cohort: declared attributes, reported endpoints, fractional days, an open diagnosis list.

- `attribute` (the data dictionary) and `attribute_value` (typed values with lineage): a layout or a study
  import keeps any variable beyond the canonical fields (rendered from schema/models.py with
  `python -m schema.render TABLE`).
- `reported_endpoint`: EFS, DFS, PFS as a source reports them (cBioPortal EFS_*, DFS_*, PFS_*).
- `view_version.generated_sql`: versions generated from the dictionary keep their SELECT here.
- `outcome_event.day`, `treatment_response.cr_day` and `hsct_day` become DOUBLE: months from a published
  study are kept as months x 30.4375 days, not rounded (rounding merged distinct times and moved Gray's
  statistic). Integers convert exactly.
- `enrolment.diagnosis` loses its CHECK: the list of diagnoses is open (a source's own code is kept and
  flagged by the load).

Downgrading is refused while a day holds a fraction or a diagnosis is outside the old list; the new
tables are dropped with their rows.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from schema.rebuild import rebuild_table

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DAY_COLUMNS = {"outcome_event": ('"day"',), "treatment_response": ("cr_day", "hsct_day")}
OLD_DIAGNOSES = "'T-ALL', 'T-LBL', 'B-ALL', 'AML', 'MPAL', 'other'"
DIAGNOSIS_CHECK = f"CHECK((diagnosis IN ({OLD_DIAGNOSES}))), "


def _retype(table: str, old: str, new: str) -> None:
    def change(ddl: str) -> str:
        for column in DAY_COLUMNS[table]:
            ddl, count = re.subn(rf"(?<=[(, ]){re.escape(column)} {old}\b", f"{column} {new}", ddl)
            assert count == 1, (column, ddl)
        return ddl

    rebuild_table(table, change)


def upgrade() -> None:
    op.create_table('attribute',
    sa.Column('attribute_name', sa.Text(), nullable=False),
    sa.Column('entity', sa.Text(), nullable=False),
    sa.Column('label', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('data_type', sa.Text(), nullable=False),
    sa.Column('unit', sa.Text(), nullable=True),
    sa.Column('levels', sa.Text(), nullable=True),
    sa.Column('time_point', sa.Text(), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_column', sa.Text(), nullable=False),
    sa.Column('etl_run_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("data_type IN ('categorical', 'boolean', 'number', 'integer', 'day', 'text')", name=op.f('ck_attribute_data_type_code')),
    sa.CheckConstraint("entity IN ('patient', 'sample')", name=op.f('ck_attribute_entity_code')),
    sa.CheckConstraint("regexp_full_match(attribute_name, '[a-z][a-z0-9_]*')", name=op.f('ck_attribute_snake_case')),
    sa.PrimaryKeyConstraint('attribute_name', name=op.f('pk_attribute'))
    )  # fmt: skip
    op.execute("CREATE SEQUENCE seq_attribute_value")
    op.create_table('attribute_value',
    sa.Column('attribute_value_id', sa.Integer(), server_default=sa.text("nextval('seq_attribute_value')"), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('sample_id', sa.Integer(), nullable=True),
    sa.Column('attribute_name', sa.Text(), nullable=False),
    sa.Column('value_text', sa.Text(), nullable=True),
    sa.Column('value_number', sa.Double(), nullable=True),
    sa.Column('value_boolean', sa.Boolean(), nullable=True),
    sa.Column('etl_run_id', sa.Integer(), nullable=False),
    sa.Column('source_file_id', sa.Integer(), nullable=False),
    sa.Column('source_line', sa.Integer(), nullable=False),
    sa.Column('superseded_by_run_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(value_text IS NOT NULL)::INTEGER + (value_number IS NOT NULL)::INTEGER + (value_boolean IS NOT NULL)::INTEGER = 1', name=op.f('ck_attribute_value_one_value')),
    sa.PrimaryKeyConstraint('attribute_value_id', name=op.f('pk_attribute_value'))
    )  # fmt: skip
    op.execute("CREATE SEQUENCE seq_reported_endpoint")
    op.create_table('reported_endpoint',
    sa.Column('reported_endpoint_id', sa.Integer(), server_default=sa.text("nextval('seq_reported_endpoint')"), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.Text(), nullable=False),
    sa.Column('day', sa.Double(), nullable=False),
    sa.Column('event', sa.Boolean(), nullable=False),
    sa.Column('etl_run_id', sa.Integer(), nullable=False),
    sa.Column('source_file_id', sa.Integer(), nullable=False),
    sa.Column('source_line', sa.Integer(), nullable=False),
    sa.Column('superseded_by_run_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("endpoint IN ('efs', 'dfs', 'pfs')", name=op.f('ck_reported_endpoint_endpoint_code')),
    sa.CheckConstraint('day >= 0', name=op.f('ck_reported_endpoint_day_not_negative')),
    sa.PrimaryKeyConstraint('reported_endpoint_id', name=op.f('pk_reported_endpoint'))
    )  # fmt: skip
    op.execute("ALTER TABLE view_version ADD COLUMN generated_sql VARCHAR")
    for table in DAY_COLUMNS:
        _retype(table, "INTEGER", "DOUBLE")

    def open_diagnosis(ddl: str) -> str:
        assert DIAGNOSIS_CHECK in ddl, ddl
        return ddl.replace(DIAGNOSIS_CHECK, "")

    rebuild_table("enrolment", open_diagnosis)


def _refuse(sql: str, what: str) -> None:
    count = op.get_bind().execute(sa.text(sql)).scalar_one()
    if count:
        raise RuntimeError(f"{count} {what}: revision 0009 cannot hold them")


def downgrade() -> None:
    _refuse(
        "SELECT count(*) FROM outcome_event WHERE day <> trunc(day)", "outcome events have fractional days"
    )
    _refuse(
        "SELECT count(*) FROM treatment_response WHERE cr_day <> trunc(cr_day) OR hsct_day <> trunc(hsct_day)",
        "treatment responses have fractional days",
    )
    _refuse(
        f"SELECT count(*) FROM enrolment WHERE diagnosis NOT IN ({OLD_DIAGNOSES})",
        "enrolments have a diagnosis outside the old list",
    )
    rebuild_table(
        "enrolment",
        lambda ddl: ddl.replace(
            "PRIMARY KEY(enrolment_id), ", f"PRIMARY KEY(enrolment_id), {DIAGNOSIS_CHECK}"
        ),
    )
    for table in DAY_COLUMNS:
        _retype(table, "DOUBLE", "INTEGER")
    ddl = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT sql FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'view_version'"
            )
        )
        .scalar_one()
    )
    without, count = re.subn(r", generated_sql VARCHAR", "", str(ddl))
    assert count == 1, ddl
    rebuild_table(
        "view_version", lambda _: without, "name, version, sql_sha256, etl_run_id, applied_at, retired_at"
    )
    op.drop_table("reported_endpoint")
    op.execute("DROP SEQUENCE seq_reported_endpoint")
    op.drop_table("attribute_value")
    op.execute("DROP SEQUENCE seq_attribute_value")
    op.drop_table("attribute")
