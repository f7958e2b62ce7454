"""Polars transforms from a raw source frame (all text) to canonical typed fields, driven by a layout.

A value that cannot be parsed (a bad date, "abc" as a number, an unknown code) becomes NULL in the
canonical frame and an `Issue` row naming the line, source column, raw value and rule, so that nothing
is silently lost: the row goes to quarantine. So does a value that could be read two ways (a number
whose '.' may be a decimal point or a thousands separator) and a spreadsheet's error or formula.

An open code list keeps a code outside its map as written (`unlisted_codes` words the warning). The
layout's declared attributes are read by etl/load/attributes.py, with the number parsing of this module.
"""

from __future__ import annotations

import re

import polars as pl

from etl.load.layout import DAYS_PER_MONTH, FieldSpec, Layout
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
    return lazy_issues_where(frame.lazy(), failed, column, value, rule, message).collect()


def lazy_issues_where(
    frame: pl.LazyFrame, failed: pl.Expr, column: str, value: pl.Expr, rule: str, message: pl.Expr
) -> pl.LazyFrame:
    """`issues_where` as a query: many of them concatenated run in one collect, side by side."""
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


def parse_number(raw: pl.Expr, layout: Layout, scale: float | None = None) -> pl.Expr:
    """A number written the layout's way (see _number), times `scale` (a unit conversion) when given."""
    number = _number(raw, layout)
    if scale is not None:
        number = (number * scale).round(9)  # unit conversion without float noise (74100 -> 74.1)
    return number


def _number(raw: pl.Expr, layout: Layout) -> pl.Expr:
    """The value as a finite float, NULL unless written the layout's way: digits grouped by three with
    its declared thousands separator are joined; any other mark than its decimal mark is unreadable."""
    text = raw
    separator = layout.thousands_separator
    if separator is not None:
        groups = (
            rf"^[+-]?\d{{1,3}}(?:{re.escape(separator)}\d{{3}})+(?:{re.escape(layout.decimal_mark)}\d+)?$"
        )
        text = (
            pl.when(raw.str.contains(groups))
            .then(raw.str.replace_all(separator, "", literal=True))
            .otherwise(raw)
        )
    if layout.decimal_comma:  # polars reads '.', so a '.' left in the text must not reach it
        text = pl.when(~text.str.contains(".", literal=True)).then(
            text.str.replace_all(",", ".", literal=True)
        )
    return finite(text.cast(pl.Float64, strict=False))


def _ambiguous(raw: pl.Expr, layout: Layout) -> pl.Expr:
    """Digits and marks holding the mark that is not the layout's decimal mark: '123.400' in a decimal-comma
    export is 123400 or 123.4 (both occur), so it is quarantined rather than read either way."""
    other = "." if layout.decimal_comma else ","
    return raw.str.contains(r"^[+-]?[\d.,]*\d[\d.,]*$") & raw.str.contains(other, literal=True)


def _ambiguous_message(layout: Layout) -> str:
    other, name = ("." if layout.decimal_comma else ","), layout.name
    if layout.thousands_separator == other:
        why = f"'{other}' is the thousands separator of layout {name!r} but the digits are not in groups of 3"
    else:
        why = f"'{other}' is neither the decimal mark nor a thousands separator of layout {name!r}"
    return (
        f"'{{}}' is ambiguous: {why}; nothing is guessed (correct the export, or declare "
        "thousands_separator in the layout)"
    )


NUMBER_TYPES = ("decimal", "integer", "days", "months")
RELATIVE_TYPES = ("days", "months")  # a time since diagnosis as the source gives it, not counted from a date


def parse_field(spec: FieldSpec, layout: Layout) -> pl.Expr:
    """The typed value of one field of the layout, over the raw frame; NULL where it cannot be read."""
    raw = pl.col(spec.column)
    if spec.type == "string":
        return raw
    if spec.type in NUMBER_TYPES:
        number = parse_number(raw, layout, spec.scale)
        if spec.type == "integer":  # a whole number beyond Int64 is not a number the warehouse can hold
            return pl.when(number == number.round(0)).then(number).cast(pl.Int64, strict=False)
        if spec.type == "months":  # kept fractional: rounding would merge distinct times
            return number * DAYS_PER_MONTH
        return number
    if spec.type == "date":
        return raw.str.strptime(pl.Date, layout.date_format, strict=False, exact=True)
    assert spec.codes is not None
    lookup = spec.codes.lookup
    dtype = pl.Boolean if spec.type == "flag" else pl.String
    if spec.codes.open:  # a code outside the map is kept as written (trimmed): unlisted_codes() flags it
        lookup = {**{code.upper(): None for code in spec.codes.missing}, **lookup}
        return raw.str.to_uppercase().replace_strict(
            list(lookup), list(lookup.values()), default=raw.str.strip_chars(), return_dtype=dtype
        )
    return raw.str.to_uppercase().replace_strict(
        list(lookup), list(lookup.values()), default=None, return_dtype=dtype
    )


SHOWN_CHARS = 80  # a message quotes at most this much of a value; the issue's `value` keeps all of it


def quoted(raw: pl.Expr) -> pl.Expr:
    """A value as a message shows it: a huge field (a pasted document, a runaway quote) is cut short."""
    return pl.when(raw.str.len_chars() > SHOWN_CHARS).then(raw.str.slice(0, SHOWN_CHARS) + "…").otherwise(raw)


def _parse_issue(frame: pl.LazyFrame, spec: FieldSpec, layout: Layout, parsed: str) -> pl.LazyFrame:
    raw = pl.col(spec.column)
    issues = []
    if spec.required:
        issues.append(
            lazy_issues_where(
                frame,
                raw.is_null(),
                spec.column,
                raw,
                "required",
                pl.lit(f"{spec.column} is empty but required"),
            )
        )
    failed = raw.is_not_null() & pl.col(parsed).is_null()
    if spec.codes is not None and spec.codes.open:  # an open list rejects no code
        return pl.concat(issues) if issues else empty_issues().lazy()
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
    elif spec.type in NUMBER_TYPES:
        ambiguous = failed & _ambiguous(raw, layout)
        issues.append(
            lazy_issues_where(
                frame,
                ambiguous,
                spec.column,
                raw,
                "number:ambiguous",
                pl.format(_ambiguous_message(layout), quoted(raw)),
            )
        )
        failed = failed & ~ambiguous
        rule = "number"
        message = pl.format(
            f"'{{}}' is not a {'whole ' if spec.type == 'integer' else ''}number", quoted(raw)
        )
    else:
        return pl.concat(issues) if issues else empty_issues().lazy()
    issues.append(lazy_issues_where(frame, failed, spec.column, raw, rule, message))
    return pl.concat(issues)


# What a spreadsheet shows in a cell whose formula failed; a CSV saved from it holds them as text.
EXCEL_ERRORS = (
    "#N/A", "#VALUE!", "#DIV/0!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#SPILL!", "#CALC!", "#GETTING_DATA",
)  # fmt: skip


def _spreadsheet_issues(frame: pl.LazyFrame, spec: FieldSpec) -> pl.LazyFrame:
    """An error value or a formula (the xlsx reader leaves '=FORMULA' where the workbook holds no value it
    computed) is a problem, not an empty cell nor a value; a code list may still name an error value."""
    raw = pl.col(spec.column)
    listed = {code.upper() for code in (*spec.codes.lookup, *spec.codes.missing)} if spec.codes else set()
    errors = [error for error in EXCEL_ERRORS if error not in listed]
    return pl.concat(
        [
            lazy_issues_where(
                frame,
                raw.str.to_uppercase().is_in(errors),
                spec.column,
                raw,
                "excel_error",
                pl.format("the cell holds the spreadsheet error {}: its formula failed", raw),
            ),
            lazy_issues_where(
                frame,
                raw.str.starts_with("="),
                spec.column,
                raw,
                "excel_formula",
                pl.format(
                    "the formula {} has no value computed by a spreadsheet: export values, or open and save "
                    "the file in a spreadsheet first",
                    quoted(raw),
                ),
            ),
        ]
    )


def to_canonical(raw: pl.DataFrame, layout: Layout) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Canonical fields (typed, NULL where missing or unparseable) and the parse issues (a spreadsheet's
    error or formula first: one issue per cell is kept, and it says more than 'not a number')."""
    specs = {**layout.fields, **layout.markers}
    parsed = raw.with_columns(parse_field(spec, layout).alias(f"__{name}") for name, spec in specs.items())
    checked = parsed.lazy()
    issues = pl.concat(
        [
            *(_spreadsheet_issues(checked, spec) for spec in specs.values()),
            *(_parse_issue(checked, spec, layout, f"__{name}") for name, spec in specs.items()),
        ]
    ).collect()  # one query for every check of every field (a collect each cost 0.4 s a million rows)
    canonical = parsed.select(pl.col(LINE), *(pl.col(f"__{name}").alias(name) for name in specs))
    return canonical, issues


def days_between(later: str, earlier: str) -> pl.Expr:
    """Days from one date to another, as a float: the unit of every time in the warehouse (a time sent in
    months is fractional)."""
    return (pl.col(later) - pl.col(earlier)).dt.total_days().cast(pl.Float64)


SHOWN_CODES = 10  # a warning lists this many unlisted codes, the most frequent first


def unlisted_codes(raw: pl.DataFrame, layout: Layout) -> list[str]:
    """Warnings for the codes that the layout's open code lists do not map: kept as written, they are
    flagged here, with how many lines hold each, so that a data manager can map them or accept them."""
    warnings = []
    for name, spec in layout.fields.items():
        if spec.codes is None or not spec.codes.open:
            continue
        listed = [code.upper() for code in (*spec.codes.mapping, *spec.codes.missing)]
        values = raw.get_column(spec.column).str.strip_chars()
        counts = (
            values.filter(values.is_not_null() & ~values.str.to_uppercase().is_in(listed))
            .value_counts(sort=True, name="lines")
            .rows()
        )
        if not counts:
            continue
        shown = ", ".join(f"'{code}' ({_lines(n)})" for code, n in counts[:SHOWN_CODES])
        more = f" and {len(counts) - SHOWN_CODES} more" if len(counts) > SHOWN_CODES else ""
        warnings.append(
            f"{spec.column} ({name}): codes outside the open code list {spec.codes.name} are kept as "
            f"written: {shown}{more}"
        )
    return warnings


def _lines(count: int) -> str:
    return f"{count} line{'' if count == 1 else 's'}"
