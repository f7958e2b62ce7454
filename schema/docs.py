"""Generate docs/schema.md from the models: `python -m schema.docs > docs/schema.md` (a test checks it)."""

from __future__ import annotations

import sqlalchemy as sa

from schema.models import AUDIT_TABLES, CHECKED_KEY_TABLES, Base

GROUPS = {
    "ETL audit": AUDIT_TABLES,
    "Reference": (
        "protocol", "gene", "transcript", "exon", "gene_panel", "gene_panel_gene", "tcr_status",
        "oncogenetic_marker", "mrd_threshold",
    ),
    "Clinical": (
        "patient", "enrolment", "baseline", "immunophenotype", "oncogenetic_result", "treatment_response",
        "outcome_event", "reported_endpoint",
    ),
    "Declared attributes": ("attribute", "attribute_value"),
    "Genomic and MRD": (
        "sequencing_assay", "sample", "variant", "variant_annotation", "variant_call", "copy_number_segment",
        "copy_number_call", "mrd_measurement",
    ),
}  # fmt: skip

LINEAGE = {"etl_run_id", "source_file_id", "source_line", "superseded_by_run_id"}


def _doc(table: sa.Table) -> str:
    mapper = next(m for m in Base.registry.mappers if m.local_table is table)
    return " ".join((mapper.class_.__doc__ or "").split())


def _mermaid() -> list[str]:
    lines = ["```mermaid", "erDiagram"]
    for table in Base.metadata.sorted_tables:
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            parent = fk.column.table.name
            if (
                fk.parent.name in LINEAGE
                and parent in ("etl_run", "source_file")
                and table.name not in GROUPS["ETL audit"]
            ):
                continue  # every fact row has lineage; drawing it all hides the model
            lines.append(f"    {parent} ||--o{{ {table.name} : {fk.parent.name}")
    lines.append("```")
    return lines


def _column_row(column: sa.Column[object]) -> str:
    flags = []
    if column.primary_key:
        flags.append("PK (checked, no index)" if column.table.name in CHECKED_KEY_TABLES else "PK")
    flags.extend(f"FK {fk.column.table.name}.{fk.column.name}" for fk in column.foreign_keys)
    if column.unique:
        flags.append("unique")
    flags.append("NULL" if column.nullable else "NOT NULL")
    doc = (column.doc or "").replace("|", "\\|")
    return f"| `{column.name}` | {column.type} | {', '.join(flags)} | {doc} |"


def render() -> str:
    out = [
        "# The cgdw schema",
        "",
        "Generated from `schema/models.py` by `python -m schema.docs`; do not edit by hand.",
        "",
        "Versioned fact tables carry `etl_run_id`, `source_file_id`, `source_line` (lineage) and",
        "`superseded_by_run_id`: a newer snapshot of a source marks the row it replaces instead of",
        "overwriting it, so `superseded_by_run_id IS NULL` is the current state and older values stay",
        "queryable with the run that replaced them. Keys come from sequences (`seq_<table>`).",
        "",
        "FK marks a relation: the loaders resolve it by join and `cgdw db check` counts rows that break it.",
        "DuckDB does not enforce it (migration 0003: foreign keys made a DuckDB 2.0 file slower to open",
        "after every load).",
        "",
        "## Diagram (lineage links to etl_run / source_file omitted)",
        "",
        *_mermaid(),
    ]
    tables = Base.metadata.tables
    for group, names in GROUPS.items():
        out += ["", f"## {group}"]
        for name in names:
            table = tables[name]
            out += [
                "",
                f"### `{name}`",
                "",
                _doc(table),
                "",
                "| column | type | key / null | description |",
                "|---|---|---|---|",
            ]
            out += [_column_row(column) for column in table.columns]
            checks = sorted(str(c.sqltext) for c in table.constraints if isinstance(c, sa.CheckConstraint))
            uniques = sorted(
                ", ".join(col.name for col in c.columns)
                for c in table.constraints
                if isinstance(c, sa.UniqueConstraint) and len(c.columns) > 1
            )
            if uniques:
                out += ["", "Unique: " + "; ".join(f"({u})" for u in uniques)]
            checked = [", ".join(columns) for columns in table.info.get("checked_unique", [])]
            if checked:
                out += [
                    "",
                    "Unique, checked by `cgdw db check` (no index): " + "; ".join(f"({u})" for u in checked),
                ]
            if checks:
                out += ["", "Checks: " + "; ".join(f"`{c}`" for c in checks)]
    missing = set(tables) - {n for names in GROUPS.values() for n in names}
    if missing:
        raise SystemExit(f"tables missing from schema/docs.py GROUPS: {', '.join(sorted(missing))}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
