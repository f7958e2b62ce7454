"""Views generated from the data dictionary: `patient_attribute` and `sample_attribute`.

A trial declares its own variables (a layout's [attributes], or every clinical column of a cBioPortal
study); they are stored long, one typed row per value (`attribute_value`), and described in the dictionary
(`attribute`). Analysts want them wide, one column each. A file cannot list columns it does not know, so
these two views are generated: one explicit, typed column per attribute of the dictionary, never a
`SELECT *`. `cgdw views apply` releases a new version (patient_attribute_vN) whenever the dictionary's
columns change, and records its SELECT in `view_version.generated_sql`: a released version never changes,
like a shipped one. A file view whose header says `-- attributes: patient` (cohort_patient) has its stable
name joined with the latest patient_attribute version, column by column (`stable_join_sql`); `mrd` adds
the generated MRD view the same way (queries/mrd.py).

When two current rows give the same attribute for one patient (two sources), the value of the latest run
wins (then the latest row): a deterministic rule, documented in docs/attributes.md.
"""

from __future__ import annotations

from dataclasses import dataclass

ENTITIES = ("patient", "sample")
# The column each data type is stored in, and the SQL type the wide view gives it.
VALUE_COLUMN = {
    "categorical": ("value_text", "VARCHAR"),
    "text": ("value_text", "VARCHAR"),
    "boolean": ("value_boolean", "BOOLEAN"),
    "number": ("value_number", "DOUBLE"),
    "integer": ("value_number", "BIGINT"),
    "day": ("value_number", "DOUBLE"),
}
CONSENTED = (
    "SELECT e.patient_id FROM enrolment AS e "
    "WHERE e.superseded_by_run_id IS NULL AND e.consent_status = 'given'"
)


@dataclass(frozen=True)
class AttributeColumn:
    """One dictionary entry, as far as the generated view needs it."""

    name: str
    data_type: str
    label: str = ""

    def select(self) -> str:
        column, sql_type = VALUE_COLUMN[self.data_type]
        latest = f"arg_max(v.{column}, (v.etl_run_id, v.attribute_value_id))"
        value = f"{latest} FILTER (v.attribute_name = '{self.name}')"
        return f'    CAST({value} AS {sql_type}) AS "{self.name}"'


def view_name(entity: str) -> str:
    return f"{entity}_attribute"


def attribute_view_sql(entity: str, attributes: list[AttributeColumn]) -> str:
    """The SELECT of the wide view of one entity's attributes: one row per consented patient (or sample of
    one), one column per attribute, in name order."""
    if entity not in ENTITIES:
        raise ValueError(f"entity {entity!r} is not one of {', '.join(ENTITIES)}")
    columns = sorted(attributes, key=lambda a: a.name)
    if entity == "patient":
        keys, source = ["p.patient_id"], "patient AS p"
        join = "v.patient_id = p.patient_id AND v.sample_id IS NULL"
        where = f"p.patient_id IN ({CONSENTED})"
    else:
        keys, source = ["p.sample_id", "p.patient_id"], "sample AS p"
        join = "v.sample_id = p.sample_id"
        where = f"p.patient_id IN ({CONSENTED})"
    selects = ",\n".join([*(f"    {k}" for k in keys), *(a.select() for a in columns)])
    return (
        f"SELECT\n{selects}\nFROM {source}\n"
        f"LEFT JOIN attribute_value AS v ON {join} AND v.superseded_by_run_id IS NULL\n"
        f"WHERE {where}\nGROUP BY {', '.join(keys)}"
    )


def stable_join_sql(base: str, base_columns: list[str], joins: list[tuple[str, list[str]]]) -> str:
    """The stable name of a view with `-- attributes: ...`: the pinned version's columns, then the columns
    of each generated view (relation, its columns) whose name is not taken yet (the caller reports those
    left out)."""
    taken = set(base_columns)
    selects = [f'b."{c}"' for c in base_columns]
    sources = [f'"{base}" AS b']
    for i, (relation, columns) in enumerate(joins):
        kept = [c for c in columns if c != "patient_id" and c not in taken]
        taken.update(kept)
        selects += [f'j{i}."{c}"' for c in kept]
        sources.append(f'LEFT JOIN "{relation}" AS j{i} USING (patient_id)')
    return f"SELECT {', '.join(selects)} FROM {' '.join(sources)}"
