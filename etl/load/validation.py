"""Run a pandera schema lazily and turn its failure cases into quarantine issues in source terms."""

from __future__ import annotations

from collections.abc import Callable

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


def explain(rule: str, field: str = "") -> str:
    """A readable sentence for a rule id, e.g. less_than(110) -> 'must be < 110'."""
    if field.endswith("_day") and rule == "greater_than_or_equal_to(0)":
        return "the date is before the diagnosis date"
    if rule in RULE_EXPLANATIONS:
        return RULE_EXPLANATIONS[rule]
    name, _, argument = rule.partition("(")
    template = _BUILT_IN.get(name)
    return template.format(argument.rstrip(")")) if template else f"fails {rule}"


def _cut(text: str) -> str:
    """A huge field is quoted by its start in a message; the issue's `value` keeps all of it."""
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def schema_issues(
    canonical: pl.DataFrame,
    raw: pl.DataFrame,
    model: type[pa.DataFrameModel],
    source_column: Callable[[str], str],
) -> pl.DataFrame:
    """Issues for every failed check. `raw` holds the source text of each line (`_line`); `source_column`
    maps a canonical field to the source column it came from (so messages name what the user can fix)."""
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
        raw_value = raw_rows[line].get(column, failure) if line in raw_rows else failure
        rule = _RULE_NAMES.get(check, check)
        shown = "empty" if raw_value is None else _cut(repr(raw_value))
        detail = "" if str(failure) == str(raw_value) else f" (read as {field} = {_cut(str(failure))})"
        rows.append((line, column, raw_value, rule, f"{column} = {shown}{detail}: {explain(rule, field)}"))
    return pl.DataFrame(rows, schema=ISSUE_SCHEMA, orient="row")
