"""The analysts' surface: the schema `analyst`, where every relation holds consented patients only.

`cgdw views apply` (re)builds it in its transaction, and `cgdw views retire` with it:

- every live view version (NAME_vN) and stable view name (NAME), as it is, restricted to the patients
  whose current enrolment says consent 'given';
- the clinical and genomic tables, restricted the same way (through `sample` for the tables keyed by
  sample);
- the reference tables (protocols, genes, transcripts, exons, panels, codes, assays, variants and their
  annotations), which hold no patient.

The audit tables (schema.models.AUDIT_TABLES: runs, files, the quarantine, tombstones...) and the stored
copies of materialised views are not on it. The filter is evaluated when a relation is read, so a consent
withdrawal takes a patient off the surface at its commit, without re-applying anything; a purge deletes
them. `cgdw query`, `--cohort` of the analyses and `cgdw export` read this surface only; analysts who
connect to a copy of the warehouse themselves run `SET search_path = 'analyst'` (docs/privacy.md).
"""

from __future__ import annotations

import duckdb

from etl.warehouse import relation_columns
from schema.vocabulary import AUDIT_TABLES

SCHEMA = "analyst"
CONSENTED = (
    "SELECT e.patient_id FROM main.enrolment AS e "
    "WHERE e.superseded_by_run_id IS NULL AND e.consent_status = 'given'"
)


def _restricted(relation: str, columns: set[str]) -> str:
    """The SELECT that offers `relation` on the surface: its rows of consented patients."""
    source = f'SELECT * FROM main."{relation}"'
    if "patient_id" in columns:
        return f"{source} WHERE patient_id IN ({CONSENTED})"
    if "sample_id" in columns:
        samples = f"SELECT sample_id FROM main.sample WHERE patient_id IN ({CONSENTED})"
        return f"{source} WHERE sample_id IN ({samples})"
    return source  # a reference table: no patient in it


def build_surface(con: duckdb.DuckDBPyConnection, views: list[str]) -> list[str]:
    """(Re)create the analyst schema over the given views (NAME_vN and NAME) and the tables; returns the
    relations it offers. Runs inside the caller's transaction."""
    con.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    con.execute(f"CREATE SCHEMA {SCHEMA}")
    from schema.models import Base  # SQLAlchemy, only here: a load's views hint reads no model

    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in AUDIT_TABLES]
    offered = []
    for relation in sorted([*tables, *views]):
        columns = set(relation_columns(con, relation))
        if not columns:
            continue  # a view retired meanwhile
        con.execute(f'CREATE VIEW {SCHEMA}."{relation}" AS {_restricted(relation, columns)}')
        offered.append(relation)
    return offered


def surface_relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The relations an analyst may read (empty before the first `cgdw views apply`)."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $schema", {"schema": SCHEMA}
    ).fetchall()
    return {name for (name,) in rows}
