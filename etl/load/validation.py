"""Run a pandera schema lazily and turn its failure cases into quarantine issues in source terms."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from etl.load.readers import LINE
from etl.load.records import RULE_EXPLANATIONS
from etl.load.transform import ISSUE_SCHEMA, SHOWN_CHARS, empty_issues

# Pandera's names for its built-in checks, as the rule ids users read.
_RULE_NAMES = {"field_uniqueness": "unique", "not_nullable": "required", "dtype": "type"}
_BUILT_IN = {
    "greater_than_or_equal_to": "must be >= {}",
    "greater_than": "must be > {}",
    "less_than_or_equal_to": "must be <= {}",
    "less_than": "must be < {}",
    "isin": "must be one of {}",
    "unique": "must be unique, but the same value is on another line",
    "required": "must not be empty",
}


def explain(rule: str, field: str = "", relative: bool = False) -> str:
    """A readable sentence for a rule id, e.g. less_than(110) -> 'must be < 110'. A day offset below 0 is
    a date before the diagnosis date, or, `relative` (the source gives the time itself, in days or
    months), a negative time since diagnosis."""
    if field.endswith("_day") and rule == "greater_than_or_equal_to(0)":
        if relative:
            return "the time since diagnosis is negative"
        return "the date is before the diagnosis date"
    if rule in RULE_EXPLANATIONS:
        return RULE_EXPLANATIONS[rule]
    name, _, argument = rule.partition("(")
    template = _BUILT_IN.get(name)
    return template.format(argument.rstrip(")")) if template else f"fails {rule}"


_WHOLE_FLOAT = re.compile(r"^(-?\d+)\.0$")


def as_read(failure: str | None, dtype: pl.DataType | None) -> str | None:
    """A failing canonical value as a message shows it (pandera gives it as text): a whole number of a
    float field without '.0' (days are floats: '1756.0' -> '1756'), a fraction as it is ('60.875')."""
    if failure is None or dtype is None or not dtype.is_float():
        return failure
    return _WHOLE_FLOAT.sub(r"\1", failure)


def _cut(text: str) -> str:
    """A huge field is quoted by its start in a message; the issue's `value` keeps all of it."""
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def schema_issues(
    canonical: pl.DataFrame,
    raw: pl.DataFrame,
    model: type[pa.DataFrameModel],
    source_column: Callable[[str], str],
    relative: Collection[str] = (),
) -> pl.DataFrame:
    """Issues for every failed check. `raw` holds the source text of each line (`_line`); `source_column`
    maps a canonical field to the source column it came from (so messages name what the user can fix);
    `relative` are the fields the source gives as times since diagnosis (days or months), not dates."""
    try:
        model.validate(canonical, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return empty_issues()
    if cases.get_column("index").null_count():
        # A schema-level failure (a missing or mistyped canonical column) is a bug in a transform.
        raise RuntimeError(f"{model.__name__}: schema-level validation failure:\n{cases}")
    lines = canonical.get_column(LINE)
    failing = lines.gather(cases.get_column("index")).unique()
    raw_rows = {
        row[LINE]: row for row in raw.filter(pl.col(LINE).is_in(failing.implode())).iter_rows(named=True)
    }
    rows = []
    for index, field, check, failure in cases.select("index", "column", "check", "failure_case").iter_rows():
        line, column = lines[index], source_column(field)
        read = as_read(failure, canonical.schema.get(field))
        raw_value = raw_rows[line].get(column, read) if line in raw_rows else read
        rule = _RULE_NAMES.get(check, check)
        shown = "empty" if raw_value is None else _cut(repr(raw_value))
        detail = "" if str(read) == str(raw_value) else f" (read as {field} = {_cut(str(read))})"
        why = explain(rule, field, field in relative)
        rows.append((line, column, raw_value, rule, f"{column} = {shown}{detail}: {why}"))
    return pl.DataFrame(rows, schema=ISSUE_SCHEMA, orient="row")
