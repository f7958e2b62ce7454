"""Polars transforms from a raw source frame (all text) to canonical typed fields, driven by a layout.

A value that cannot be parsed (a bad date, "abc" as a number, an unknown code) becomes NULL in the
canonical frame and an `Issue` row naming the line, source column, raw value and rule, so that nothing
is silently lost: the row goes to quarantine.
"""

from __future__ import annotations

import polars as pl

from etl.load.layout import FieldSpec, Layout
from etl.load.readers import LINE

ISSUE_SCHEMA = {
    LINE: pl.Int64,
    "column": pl.String,
    "value": pl.String,
    "rule": pl.String,
    "message": pl.String,
}


def empty_issues() -> pl.DataFrame:
    return pl.DataFrame(schema=ISSUE_SCHEMA)


def issues_where(
    frame: pl.DataFrame, failed: pl.Expr, column: str, value: pl.Expr, rule: str, message: pl.Expr
) -> pl.DataFrame:
    """Issue rows for every row of `frame` where `failed` holds. A message built with pl.format from an
    empty value is NULL: it falls back to naming the column and the rule, never to no message at all."""
    return frame.filter(failed).select(
        pl.col(LINE),
        pl.lit(column).alias("column"),
        value.cast(pl.String).alias("value"),
        pl.lit(rule).alias("rule"),
        pl.coalesce(message, pl.lit(f"{column} fails rule {rule}")).alias("message"),
    )


def finite(number: pl.Expr) -> pl.Expr:
    """The number, or NULL for NaN and infinity: they are not measurements."""
    return pl.when(number.is_finite()).then(number)


def _parse(spec: FieldSpec, layout: Layout) -> pl.Expr:
    raw = pl.col(spec.column)
    if spec.type == "string":
        return raw
    if spec.type in ("decimal", "integer"):
        text = raw.str.replace_all(",", ".", literal=True) if layout.decimal_comma else raw
        number = text.cast(pl.Float64, strict=False)
        number = finite(number)
        if spec.scale is not None:
            number = (number * spec.scale).round(9)  # unit conversion without float noise (74100 -> 74.1)
        if spec.type == "integer":
            return pl.when(number == number.round(0)).then(number).cast(pl.Int64)
        return number
    if spec.type == "date":
        return raw.str.strptime(pl.Date, layout.date_format, strict=False, exact=True)
    assert spec.codes is not None
    lookup = spec.codes.lookup
    dtype = pl.Boolean if spec.type == "flag" else pl.String
    return raw.str.to_uppercase().replace_strict(
        list(lookup), list(lookup.values()), default=None, return_dtype=dtype
    )


SHOWN_CHARS = 80  # a message quotes at most this much of a value; the issue's `value` keeps all of it


def quoted(raw: pl.Expr) -> pl.Expr:
    """A value as a message shows it: a huge field (a pasted document, a runaway quote) is cut short."""
    return pl.when(raw.str.len_chars() > SHOWN_CHARS).then(raw.str.slice(0, SHOWN_CHARS) + "…").otherwise(raw)


def _parse_issue(frame: pl.DataFrame, spec: FieldSpec, layout: Layout, parsed: str) -> pl.DataFrame:
    raw = pl.col(spec.column)
    issues = []
    if spec.required:
        issues.append(
            issues_where(
                frame,
                raw.is_null(),
                spec.column,
                raw,
                "required",
                pl.lit(f"{spec.column} is empty but required"),
            )
        )
    failed = raw.is_not_null() & pl.col(parsed).is_null()
    if spec.type in ("code", "flag"):
        assert spec.codes is not None
        failed = failed & ~raw.str.to_uppercase().is_in([code.upper() for code in spec.codes.missing])
        rule = f"code:{spec.codes.name}"
        message = pl.format(
            f"'{{}}' is not a {spec.codes.name} code (allowed: {spec.codes.allowed()})", quoted(raw)
        )
    elif spec.type == "date":
        rule = "date"
        message = pl.format(f"'{{}}' is not a valid date in {layout.date_format_label} form", quoted(raw))
    elif spec.type in ("decimal", "integer"):
        rule = "number"
        message = pl.format(
            f"'{{}}' is not a {'whole ' if spec.type == 'integer' else ''}number", quoted(raw)
        )
    else:
        return pl.concat(issues) if issues else empty_issues()
    issues.append(issues_where(frame, failed, spec.column, raw, rule, message))
    return pl.concat(issues)


def to_canonical(raw: pl.DataFrame, layout: Layout) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Canonical fields (typed, NULL where missing or unparseable) and the parse issues."""
    specs = {**layout.fields, **layout.markers}
    parsed = raw.with_columns(_parse(spec, layout).alias(f"__{name}") for name, spec in specs.items())
    issues = pl.concat([_parse_issue(parsed, spec, layout, f"__{name}") for name, spec in specs.items()])
    canonical = parsed.select(pl.col(LINE), *(pl.col(f"__{name}").alias(name) for name in specs))
    return canonical, issues


def days_between(later: str, earlier: str) -> pl.Expr:
    return (pl.col(later) - pl.col(earlier)).dt.total_days().cast(pl.Int64)
