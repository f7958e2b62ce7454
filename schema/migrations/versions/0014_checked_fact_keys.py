"""The keys of the bulk fact tables are checked, not enforced by indexes.

Every table a load writes rows into by the hundred thousand (the versioned facts, variant_annotation and
the quarantine) loses its PRIMARY KEY index, and variant_annotation its UNIQUE(variant_id,
transcript_accession, annotation_source) index. Why: the indexes cost more than the loads they guarded
(benchmarks/RESULTS.md, issue 16). A 1M-record VCF's COMMIT took 1.6 s with the UNIQUE index and 0.8 s
without; a lab export at a million patients (4.5M marker results) 7.1 s with the primary keys and 6.3 s
without. The surrogate keys come from sequences, so they are unique by construction; the one writer of
variant_annotation, the variant merge, inserts only keys that are not there yet. `cgdw db check` counts
repeated keys (schema/integrity.py), as it counts orphan rows since 0003. Identity tables (patient, sample,
variant, the ledger, the references) keep their indexes: they are looked up by key.

Each table is rebuilt from its own DDL in DuckDB's catalog, its id column NOT NULL, minus (downgrading,
plus) the key clauses, in the migration's transaction: all or nothing. A downgrade fails, changing
nothing, if a key repeats.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As at revision 0013 (schema.models.CHECKED_KEY_TABLES names them from now on).
TABLES = (
    "attribute_value", "baseline", "copy_number_call", "copy_number_segment", "enrolment", "immunophenotype",
    "mrd_measurement", "oncogenetic_result", "outcome_event", "rejected_record", "reported_endpoint",
    "treatment_response", "variant_annotation", "variant_call",
)  # fmt: skip
ANNOTATION_UNIQUE = ", UNIQUE(variant_id, transcript_accession, annotation_source)"


def upgrade() -> None:
    for table, ddl in _definitions().items():
        key = f", PRIMARY KEY({table}_id)"
        assert key in ddl, ddl
        new = ddl.replace(key, "").replace(ANNOTATION_UNIQUE, "")
        new, made = re.subn(rf"\b{table}_id INTEGER DEFAULT", f"{table}_id INTEGER NOT NULL DEFAULT", new)
        assert made == 1, ddl
        _rebuild(table, new)


def downgrade() -> None:
    definitions = _definitions()
    for table in definitions:  # before any change: the indexes would refuse a repeated key half-way
        unique = [f"{table}_id"] + (
            ["variant_id, transcript_accession, annotation_source"] if table == "variant_annotation" else []
        )
        for key in unique:
            repeated = op.get_bind().execute(
                sa.text(
                    f'SELECT count(*) FROM (SELECT {key} FROM "{table}" GROUP BY ALL HAVING count(*) > 1)'
                )
            )
            if count := repeated.scalar_one():
                raise RuntimeError(
                    f"cannot downgrade below 0014: {table} has {count} repeated values of ({key}), which the "
                    "older schema's index refuses (nothing was changed; `cgdw db check` lists them)"
                )
    for table, ddl in definitions.items():
        keys = f", PRIMARY KEY({table}_id)" + (ANNOTATION_UNIQUE if table == "variant_annotation" else "")
        body = ddl.replace(f"{table}_id INTEGER NOT NULL DEFAULT", f"{table}_id INTEGER DEFAULT")
        body = body[: body.rindex(")")]
        # Where DuckDB wrote them at 0013, after the columns and before the CHECKs: the DDL is then the same
        # text, which the downgrades of older migrations edit.
        at = body.find(", CHECK(")
        at = len(body) if at < 0 else at
        _rebuild(table, body[:at] + keys + body[at:] + ")")


def _definitions() -> dict[str, str]:
    rows = op.get_bind().execute(
        sa.text("SELECT table_name, sql FROM duckdb_tables() WHERE schema_name = 'main'")
    )
    found = {name: sql.rstrip().removesuffix(";") for name, sql in rows}
    return {table: found[table] for table in TABLES}


def _rebuild(table: str, ddl: str) -> None:
    op.execute(f'ALTER TABLE "{table}" RENAME TO "{table}__old"')
    op.execute(ddl)
    op.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}__old"')
    op.execute(f'DROP TABLE "{table}__old"')
