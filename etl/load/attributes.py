"""Declared attributes: a trial's own variables, beyond the canonical fields, stored typed with lineage.

A source declares each attribute (`AttributeSpec`: name, entity, type, label, unit, levels...): a layout in
its [attributes] table (`attribute_specs`, read the layout's way by `attribute_values`), the cBioPortal
importer from a clinical file's 4-line header. Loading one:

1. `register_attributes` puts new names in the dictionary (`attribute`) and checks that a name already
   there means the same thing (entity, type, unit); a conflict rejects the file, naming both sources.
2. `typed_values` turns the source's text into one typed row per present value (`attribute_value`
   columns), and a problem row for each value it cannot read. A bad value withholds that value only
   (a fact-level problem, `Batch.fact_issues`): the patient and their other facts still load.
3. `merge_attribute_values` snapshot-merges the rows, scoped to the attributes the file declares, so two
   sources giving different attributes of one patient never supersede each other.

The wide views over them are generated (queries/attributes.py); the model is documented in
docs/attributes.md.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from etl.errors import FileRejected
from etl.load.layout import DeclaredAttribute, Layout
from etl.load.readers import LINE
from etl.load.snapshot import MergeCounts, merge_snapshot
from etl.load.transform import ISSUE_SCHEMA, empty_issues, issues_where, parse_number, quoted
from schema.vocabulary import ATTRIBUTE_ENTITIES, ATTRIBUTE_TYPES

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")
# Stored value columns, by data type (one of them is set per row).
VALUE_COLUMNS = ("value_text", "value_number", "value_boolean")
BOOLEAN_WORDS = {"TRUE": True, "FALSE": False, "YES": True, "NO": False, "1": True, "0": False}
STAGE = "cgdw_attribute_stage"


def snake_case(column: str) -> str:
    """A source column as an attribute name: TREATMENT_ARM -> treatment_arm, MRD29 -> mrd29,
    'WBC (G/L)' -> wbc_g_l; a leading digit gets an `a_` prefix (a column name cannot start with one)."""
    ascii_name = (
        unicodedata.normalize("NFKD", column.strip()).encode("ascii", "ignore").decode()
    )  # ÉTAT: etat
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", ascii_name)
    name = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    if not name:
        raise ValueError(f"column {column!r} gives no attribute name")
    return name if name[0].isalpha() else f"a_{name}"


@dataclass(frozen=True)
class AttributeSpec:
    """One declared attribute and where it is read from."""

    name: str
    source_column: str
    data_type: str
    label: str
    entity: str = "patient"
    description: str | None = None
    unit: str | None = None
    # Categorical: (code, label) in display order. `closed` levels refuse any other code; open ones
    # (a study import, whose levels are the values it has) grow with new codes.
    levels: tuple[tuple[str, str], ...] = ()
    closed: bool = False
    time_point: str | None = None
    # Source code (upper-cased) -> stored code: a layout's code list for a categorical or boolean attribute.
    mapping: dict[str, str | bool] | None = None
    missing: tuple[str, ...] = ()  # source codes meaning "not evaluated" (stored as no value)

    def __post_init__(self) -> None:
        if not SNAKE_CASE.match(self.name):
            raise ValueError(f"attribute {self.name!r}: a name is snake_case (a-z, 0-9, _; a letter first)")
        if self.data_type not in ATTRIBUTE_TYPES:
            known = ", ".join(ATTRIBUTE_TYPES)
            raise ValueError(f"attribute {self.name}: type {self.data_type!r} is not one of {known}")
        if self.entity not in ATTRIBUTE_ENTITIES:
            raise ValueError(f"attribute {self.name}: entity {self.entity!r} is not patient or sample")

    @property
    def levels_json(self) -> str | None:
        if self.data_type != "categorical":
            return None
        return json.dumps([{"code": code, "label": label} for code, label in self.levels])


def register_attributes(
    con: duckdb.DuckDBPyConnection, specs: Sequence[AttributeSpec], source: str, run_id: int, path: Path
) -> list[str]:
    """Add the new attributes to the dictionary (returns their names); an attribute already declared must
    agree on entity, type and unit, else the whole file is rejected. Open levels seen for the first time
    are appended to the dictionary's levels, in the order met."""
    declared = {
        row[0]: row
        for row in con.execute(
            "SELECT attribute_name, entity, data_type, unit, levels, source FROM attribute"
        ).fetchall()
    }
    new = []
    for spec in specs:
        known = declared.get(spec.name)
        if known is None:
            con.execute(
                """
                INSERT INTO attribute (attribute_name, entity, label, description, data_type, unit, levels,
                                       time_point, source, source_column, etl_run_id)
                VALUES ($name, $entity, $label, $description, $type, $unit, $levels, $time_point, $source,
                        $column, $run)
                """,
                {"name": spec.name, "entity": spec.entity, "label": spec.label,
                 "description": spec.description, "type": spec.data_type, "unit": spec.unit,
                 "levels": spec.levels_json, "time_point": spec.time_point, "source": source,
                 "column": spec.source_column, "run": run_id},
            )  # fmt: skip
            new.append(spec.name)
            continue
        _, entity, data_type, unit, levels, first_source = known
        if not spec.closed and {data_type, spec.data_type} == {"categorical", "text"}:
            # An import types a STRING column by its distinct values (categorical up to MAX_LEVELS, else
            # text): one export may cross the line. Both are text values; the attribute becomes text.
            if data_type == "categorical":
                con.execute(
                    "UPDATE attribute SET data_type = 'text', levels = NULL WHERE attribute_name = $name",
                    {"name": spec.name},
                )
            continue
        if (entity, data_type, unit) != (spec.entity, spec.data_type, spec.unit):
            raise FileRejected(
                path,
                f"attribute {spec.name} (column {spec.source_column}) is declared as {spec.entity} "
                f"{spec.data_type}{f' in {spec.unit}' if spec.unit else ''}, but {first_source} declared it "
                f"as {entity} {data_type}{f' in {unit}' if unit else ''}: one name means one thing in the "
                "warehouse (give one of them another name in its layout)",
            )
        if spec.data_type == "categorical" and not spec.closed:
            present = json.loads(levels or "[]")
            codes = {level["code"] for level in present}
            added = [{"code": c, "label": lab} for c, lab in spec.levels if c not in codes]
            if added:
                con.execute(
                    "UPDATE attribute SET levels = $levels WHERE attribute_name = $name",
                    {"levels": json.dumps(present + added), "name": spec.name},
                )
    return new


def _text(frame: pl.DataFrame, column: str) -> pl.Expr:
    if column not in frame.columns:
        return pl.lit(None, pl.String)
    return pl.col(column).cast(pl.String).str.strip_chars()


def typed_values(
    frame: pl.DataFrame,
    specs: Sequence[AttributeSpec],
    keys: Sequence[str],
    number: Callable[[pl.Expr], pl.Expr] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The present values of `frame` (raw text, with `_line` and the `keys` columns) as long typed rows:
    keys, `_line`, attribute_name, value_text, value_number, value_boolean; and one problem row per value
    that cannot be read as its type (rule `attribute:<type>`), which is left out. `number` parses a
    number the source's way (a layout's decimal mark); the default reads a plain decimal."""
    parse_number = number or (lambda raw: raw.cast(pl.Float64, strict=False))
    parts, problems = [], []
    for spec in specs:
        raw = _text(frame, spec.source_column)
        present = raw.is_not_null() & (raw != "")
        if spec.missing:
            present = present & ~raw.str.to_uppercase().is_in([m.upper() for m in spec.missing])
        text, number_value, flag = raw, pl.lit(None, pl.Float64), pl.lit(None, pl.Boolean)
        bad: pl.Expr = pl.lit(False)
        expected = ""
        if spec.data_type in ("number", "integer", "day"):
            text = pl.lit(None, pl.String)
            number_value = parse_number(raw).cast(pl.Float64)
            bad = number_value.is_null() | ~number_value.is_finite()
            expected = "a number"
            if spec.data_type == "integer":
                # Beyond 2^53 a double no longer holds every whole number (nor does the view's BIGINT 1e20).
                bad = bad | (number_value != number_value.round(0)) | (number_value.abs() > 2.0**53)
                expected = "a whole number (at most 2^53 in size)"
            if spec.data_type == "day":
                bad = bad | (number_value < 0)
                expected = "days from diagnosis (0 or more)"
        elif spec.data_type == "boolean":
            text = pl.lit(None, pl.String)
            booleans = {k.upper(): bool(v) for k, v in (spec.mapping or BOOLEAN_WORDS).items()}
            flag = raw.str.to_uppercase().replace_strict(booleans, default=None, return_dtype=pl.Boolean)
            bad = flag.is_null()
            expected = "one of " + ", ".join(spec.mapping or BOOLEAN_WORDS)
        elif spec.data_type == "categorical" and spec.mapping is not None:
            codes = {k.upper(): str(v) for k, v in spec.mapping.items()}
            text = raw.str.to_uppercase().replace_strict(codes, default=None, return_dtype=pl.String)
            bad = text.is_null()
            expected = "one of " + ", ".join(spec.mapping)
        elif spec.data_type == "categorical" and spec.closed:
            levels = [code for code, _ in spec.levels]
            bad = ~raw.is_in(levels)
            expected = "one of " + ", ".join(levels)
        message = f"{spec.source_column} = '{{}}': {spec.name} is {spec.data_type}, expected {expected}"
        rule = f"attribute:{spec.data_type}"
        problems.append(
            issues_where(frame, present & bad, spec.source_column, raw, rule, pl.format(message, raw))
        )
        parts.append(
            frame.filter(present & ~bad).select(
                *keys,
                LINE,
                pl.lit(spec.name).alias("attribute_name"),
                text.alias("value_text"),
                number_value.alias("value_number"),
                flag.alias("value_boolean"),
            )
        )
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        **{k: frame.schema[k] for k in keys},
        LINE: pl.Int64,
        "attribute_name": pl.String,
        "value_text": pl.String,
        "value_number": pl.Float64,
        "value_boolean": pl.Boolean,
    }
    values = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
    issues = pl.concat(problems) if problems else pl.DataFrame(schema=ISSUE_SCHEMA)
    return values, issues.cast(ISSUE_SCHEMA)  # type: ignore[arg-type]


def merge_attribute_values(
    con: duckdb.DuckDBPyConnection,
    values_sql: str,
    scope_sql: str,
    names: Sequence[str],
    run_id: int,
    source_file_id: int,
    entity: str = "patient",
) -> MergeCounts:
    """Snapshot-merge `values_sql` (patient_id, sample_id, attribute_name, value_text, value_number,
    value_boolean, source_line) into attribute_value, for the patients `scope_sql` selects and the
    attributes `names` or earlier files of the same source gave (another source's attributes of the same
    patients are left alone)."""
    listed = ", ".join("'" + n.replace("'", "''") + "'" for n in names) or "NULL"
    level = "t.sample_id IS NULL" if entity == "patient" else "t.sample_id IS NOT NULL"
    # Also what earlier files of the same source (kind, layout, trial group) gave: a column a newer export
    # no longer has is superseded with the rest of the snapshot, not left current.
    same_source = f"""
        SELECT o.source_file_id FROM source_file AS o JOIN source_file AS n
            ON o.kind = n.kind AND o.layout IS NOT DISTINCT FROM n.layout
           AND o.trial_group IS NOT DISTINCT FROM n.trial_group
        WHERE n.source_file_id = {int(source_file_id)}
    """
    return merge_snapshot(
        con,
        "attribute_value",
        ["sample_id", "attribute_name", *VALUE_COLUMNS],
        values_sql,
        scope_sql,
        run_id,
        source_file_id,
        scope_filter=f"(t.attribute_name IN ({listed}) OR t.source_file_id IN ({same_source})) AND {level}",
    )


# --- a layout's declared attributes ([attributes.NAME], etl/load/layout.py) ---------------------------------

# A layout's values before they are keyed to patients: the line, then the attribute_value columns.
ATTRIBUTE_VALUE_SCHEMA = {
    LINE: pl.Int64,
    "attribute_name": pl.String,
    "value_text": pl.String,
    "value_number": pl.Float64,
    "value_boolean": pl.Boolean,
}


def attribute_specs(layout: Layout) -> list[AttributeSpec]:
    """The layout's declared attributes as the data dictionary describes them."""
    return [
        AttributeSpec(
            name=a.name,
            source_column=a.column,
            data_type=a.data_type,
            label=a.label,
            entity=a.entity,
            description=a.description,
            unit=a.unit,
            levels=a.levels,
            closed=a.type == "categorical",  # a layout's levels are closed
            time_point=a.time_point,
            mapping=_attribute_mapping(a),
            missing=a.codes.missing if a.codes else (),
        )
        for a in layout.attributes.values()
    ]


def _attribute_mapping(attribute: DeclaredAttribute) -> dict[str, str | bool] | None:
    """Source code -> stored code: the attribute's code list, else its levels as written (matched
    case-insensitively, like every code); None reads a boolean's usual words (yes/no, true/false, 1/0)."""
    if attribute.codes is not None:
        return dict(attribute.codes.mapping)
    if attribute.levels:
        return {code: code for code, _ in attribute.levels}
    return None


def attribute_values(
    raw: pl.DataFrame, layout: Layout, origin: pl.Expr | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The layout's declared attributes read from the raw frame: one typed row per present value (`_line`,
    attribute_name, value_text, value_number, value_boolean), and one issue per value that cannot be read
    as its type (a fact-level problem: the value is left out, the line loads). Numbers are read the
    layout's way (decimal mark, thousands separator, scale); a `date` attribute becomes days from
    `origin`, the diagnosis date (an expression over the raw frame)."""
    parts, problems = [], []
    for spec, attribute in zip(attribute_specs(layout), layout.attributes.values(), strict=True):
        if attribute.type == "date":
            assert origin is not None, "a date attribute needs the diagnosis date"
            values, issues = _date_attribute(raw, attribute, layout, origin)
        else:

            def number(text: pl.Expr, scale: float | None = attribute.scale) -> pl.Expr:
                return parse_number(text, layout, scale)

            values, issues = typed_values(raw, [spec], [], number=number)
        parts.append(values)
        problems.append(issues)
    if not parts:
        return pl.DataFrame(schema=ATTRIBUTE_VALUE_SCHEMA), empty_issues()
    return pl.concat(parts), pl.concat(problems)


def _date_attribute(
    raw: pl.DataFrame, attribute: DeclaredAttribute, layout: Layout, origin: pl.Expr
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A source date as days from diagnosis (no date is stored). Without a readable diagnosis date the
    line is quarantined already: nothing is said twice."""
    text = pl.col(attribute.column)
    date = text.str.strptime(pl.Date, layout.date_format, strict=False, exact=True)
    days = (date - origin).dt.total_days()
    unreadable = text.is_not_null() & date.is_null()
    shown = f"{attribute.column} = '{{}}': {attribute.name}"
    issues = pl.concat(
        [
            issues_where(
                raw,
                unreadable,
                attribute.column,
                text,
                "attribute:date",
                pl.format(f"{shown} is a date in {layout.date_format_label} form", quoted(text)),
            ),
            issues_where(
                raw,
                (days < 0).fill_null(False),
                attribute.column,
                text,
                "attribute:day",
                pl.format(f"{shown} is before the diagnosis date", quoted(text)),
            ),
        ]
    )
    values = raw.filter(days >= 0).select(
        pl.col(LINE),
        pl.lit(attribute.name).alias("attribute_name"),
        pl.lit(None, pl.String).alias("value_text"),
        days.cast(pl.Float64).alias("value_number"),
        pl.lit(None, pl.Boolean).alias("value_boolean"),
    )
    return values, issues
