"""Foreign keys are no longer enforced by DuckDB: every table is rebuilt without FOREIGN KEY clauses.

Why: with DuckDB 2.0.0, opening a database whose tables declare foreign keys gets slower with every
checkpoint the file has seen (the catalog re-adds each key to its referenced table at load), so a
warehouse grew slower to open with every load. Measured (benchmarks/RESULTS.md): 0.07 s after 85 loads,
0.35 s after 770 (the 100,000-patient cohort), about 0.26 ms more per checkpoint with 30 keys; tables
without foreign keys open in constant time. The relations stay declared in schema/models.py, the
loaders keep resolving every reference by join, and `cgdw db check` (schema/integrity.py) counts orphans.

The rebuild is generic: each table's own DDL, from DuckDB's catalog, minus (or, downgrading, plus) the
foreign keys frozen below as they were at revision 0002. It runs in the migration's transaction, so it is
all or nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, referenced table, referenced column) at revision 0002.
FOREIGN_KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("baseline", "etl_run_id", "etl_run", "etl_run_id"),
    ("baseline", "patient_id", "patient", "patient_id"),
    ("baseline", "source_file_id", "source_file", "source_file_id"),
    ("baseline", "superseded_by_run_id", "etl_run", "etl_run_id"),
    ("copy_number_call", "confirms_copy_number_call_id", "copy_number_call", "copy_number_call_id"),
    ("copy_number_call", "etl_run_id", "etl_run", "etl_run_id"),
    ("copy_number_call", "gene_id", "gene", "gene_id"),
    ("copy_number_call", "sample_id", "sample", "sample_id"),
    ("copy_number_call", "source_file_id", "source_file", "source_file_id"),
    ("copy_number_call", "superseded_by_run_id", "etl_run", "etl_run_id"),
    ("copy_number_segment", "etl_run_id", "etl_run", "etl_run_id"),
    ("copy_number_segment", "sample_id", "sample", "sample_id"),
    ("copy_number_segment", "source_file_id", "source_file", "source_file_id"),
    ("copy_number_segment", "superseded_by_run_id", "etl_run", "etl_run_id"),
    ("enrolment", "etl_run_id", "etl_run", "etl_run_id"),
    ("enrolment", "patient_id", "patient", "patient_id"),
    ("enrolment", "protocol_code", "protocol", "protocol_code"),
    ("enrolment", "source_file_id", "source_file", "source_file_id"),
    ("enrolment", "superseded_by_run_id", "etl_run", "etl_run_id"),
    ("exon", "transcript_id", "transcript", "transcript_id"),
    ("gene_panel_gene", "gene_id", "gene", "gene_id"),
    ("gene_panel_gene", "gene_panel_id", "gene_panel", "gene_panel_id"),
    ("immunophenotype", "etl_run_id", "etl_run", "etl_run_id"),
    ("immunophenotype", "patient_id", "patient", "patient_id"),
    ("immunophenotype", "source_file_id", "source_file", "source_file_id"),
    ("immunophenotype", "superseded_by_run_id", "etl_run", "etl_run_id"),
    ("immunophenotype", "tcr_status_code", "tcr_status", "tcr_status_code"),
    ("mrd_measurement", "etl_run_id", "etl_run", "etl_run_id"),
    ("mrd_measurement", "patient_id", "patient", "patient_id"),
    ("mrd_measurement", "sample_id", "sample", "sample_id"),
    ("mrd_measurement", "source_file_id", "source_file", "source_file_id"),
    ("mrd_measurement", "superseded_by_run_id", "etl_run", "etl_run_id"),
    ("oncogenetic_result", "etl_run_id", "etl_run", "etl_run_id"),
    ("oncogenetic_result", "marker_code", "oncogenetic_marker", "marker_code"),
    ("oncogenetic_result", "patient_id", "patient", "patient_id"),
    ("oncogenetic_result", "source_file_id", "source_file", "source_file_id"),
    ("oncogenetic_result", "superseded_by_run_id", "etl_run", "etl_run_id"),
    ("outcome_event", "etl_run_id", "etl_run", "etl_run_id"),
    ("outcome_event", "patient_id", "patient", "patient_id"),
    ("outcome_event", "source_file_id", "source_file", "source_file_id"),
    ("outcome_event", "superseded_by_run_id", "etl_run", "etl_run_id"),
    ("patient", "created_run_id", "etl_run", "etl_run_id"),
    ("patient", "source_file_id", "source_file", "source_file_id"),
    ("rejected_record", "etl_run_id", "etl_run", "etl_run_id"),
    ("rejected_record", "source_file_id", "source_file", "source_file_id"),
    ("sample", "etl_run_id", "etl_run", "etl_run_id"),
    ("sample", "patient_id", "patient", "patient_id"),
    ("sample", "sequencing_assay_id", "sequencing_assay", "sequencing_assay_id"),
    ("sample", "source_file_id", "source_file", "source_file_id"),
    ("sequencing_assay", "gene_panel_id", "gene_panel", "gene_panel_id"),
    ("source_file", "etl_run_id", "etl_run", "etl_run_id"),
    ("transcript", "gene_id", "gene", "gene_id"),
    ("treatment_response", "etl_run_id", "etl_run", "etl_run_id"),
    ("treatment_response", "patient_id", "patient", "patient_id"),
    ("treatment_response", "source_file_id", "source_file", "source_file_id"),
    ("treatment_response", "superseded_by_run_id", "etl_run", "etl_run_id"),
    ("variant_annotation", "etl_run_id", "etl_run", "etl_run_id"),
    ("variant_annotation", "source_file_id", "source_file", "source_file_id"),
    ("variant_annotation", "variant_id", "variant", "variant_id"),
    ("variant_call", "etl_run_id", "etl_run", "etl_run_id"),
    ("variant_call", "sample_id", "sample", "sample_id"),
    ("variant_call", "source_file_id", "source_file", "source_file_id"),
    ("variant_call", "superseded_by_run_id", "etl_run", "etl_run_id"),
    ("variant_call", "variant_id", "variant", "variant_id"),
    ("view_version", "etl_run_id", "etl_run", "etl_run_id"),
)
_FOREIGN_KEY_CLAUSE = re.compile(r", FOREIGN KEY \([^)]*\) REFERENCES [\w\"]+\([^)]*\)")


def upgrade() -> None:
    tables = _tables()
    definitions = _definitions()
    for table in tables:
        ddl = _FOREIGN_KEY_CLAUSE.sub("", definitions[table])
        op.execute(_renamed(ddl, table, f"{table}__rebuild"))
        op.execute(f'INSERT INTO "{table}__rebuild" SELECT * FROM "{table}"')
    for table in reversed(_parents_first(tables)):
        op.execute(f'DROP TABLE "{table}"')
    for table in tables:
        op.execute(f'ALTER TABLE "{table}__rebuild" RENAME TO "{table}"')


def downgrade() -> None:
    tables = _tables()
    definitions = _definitions()
    for table in tables:
        op.execute(f'ALTER TABLE "{table}" RENAME TO "{table}__rebuild"')
    for table in _parents_first(tables):
        keys = "".join(
            f', FOREIGN KEY ({column}) REFERENCES "{parent}"({parent_column})'
            for child, column, parent, parent_column in FOREIGN_KEYS
            if child == table
        )
        ddl = definitions[table].rstrip().removesuffix(";")
        op.execute(ddl[: ddl.rindex(")")] + keys + ")")
        self_references = [c for child, c, parent, _ in FOREIGN_KEYS if child == parent == table]
        if self_references:
            # A row may reference a row of the same table: insert the referenced (NULL-reference) rows first.
            unset = " AND ".join(f"{c} IS NULL" for c in self_references)
            op.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}__rebuild" WHERE {unset}')
            op.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}__rebuild" WHERE NOT ({unset})')
        else:
            op.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}__rebuild"')
    for table in tables:
        op.execute(f'DROP TABLE "{table}__rebuild"')


def _tables() -> list[str]:
    return sorted({t for t, _, p, _ in FOREIGN_KEYS} | {p for _, _, p, _ in FOREIGN_KEYS})


def _definitions() -> dict[str, str]:
    rows = op.get_bind().execute(
        sa.text("SELECT table_name, sql FROM duckdb_tables() WHERE schema_name = 'main'")
    )
    return {name: sql for name, sql in rows}


def _renamed(ddl: str, table: str, new_name: str) -> str:
    """The DDL with another table name (DuckDB quotes names that are keywords, such as "sample")."""
    renamed, count = re.subn(rf'^CREATE TABLE "?{table}"?\(', f'CREATE TABLE "{new_name}"(', ddl)
    assert count == 1, ddl[:80]
    return renamed


def _parents_first(tables: list[str]) -> list[str]:
    """Tables ordered so that every referenced table comes before the tables that reference it."""
    ordered: list[str] = []
    pending = list(tables)
    while pending:
        ready = [t for t in pending if all(p in ordered or p == t for c, _, p, _ in FOREIGN_KEYS if c == t)]
        assert ready, f"foreign key cycle among {pending}"
        ordered.extend(ready)
        pending = [t for t in pending if t not in ready]
    return ordered
