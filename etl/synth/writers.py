"""Raw source exports written exactly as etl/sources/layouts/*.toml describe them, plus truth.parquet.

Column names, code lists, encodings, separators, date formats and decimal commas are read from the
layout files, so an export always matches the layout the loader reads. Canonical values are turned back
into source codes (the left side of each code map); missing values are written as an explicit missing
code or as an empty cell, at random, so that the loader sees both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import xlsxwriter

from etl.load.layout import CodeList, FieldSpec, Layout
from etl.synth.sampling import BoolArray

SOURCE_FILES = {"graall": "graall_export.csv", "fralle": "fralle_export.xlsx", "lab": "lab_oncogenetics.tsv"}
TRUTH_FILE = "truth.parquet"
README_FILE = "README.txt"

# Canonical field of a layout -> truth.parquet column ("*_day" columns are days from diagnosis).
TRUTH_COLUMNS = {
    "source_patient_id": "source_patient_id",
    "protocol_code": "protocol_code",
    "trial_group": "trial_group",
    "sex": "sex",
    "age_years": "age",
    "diagnosis_date": "diagnosis_date",
    "diagnosis": "diagnosis",
    "wbc_g_per_l": "wbc",
    "cns_involvement": "cns",
    "mediastinal_mass": "mediastinal_mass",
    "prednisone_response": "prednisone",
    "complete_remission": "cr",
    "cr_date": "cr_day",
    "hsct_in_cr1": "hsct",
    "hsct_date": "hsct_day",
    "relapse_date": "relapse_day",
    "second_relapse_date": "second_relapse_day",
    "vital_status": "vital_status",
    "death_date": "death_day",
    "death_cause": "death_cause",
    "last_contact_date": "last_contact_day",
    "consent_status": "consent_status",
    "tcr_status": "tcr_status",
    "etp_status": "etp",
    "oncogenetics_method": "oncogenetics_method",
}
# Where a value does not apply (no transplant without CR, no cause of death for the living), a missing
# value is always an empty cell, never a "not evaluated" code.
NOT_APPLICABLE = {"hsct_in_cr1": ~pl.col("cr"), "death_cause": pl.col("vital_status") == "alive"}
MISSING_CODE_SHARE = 0.5  # of missing values written as an explicit code rather than an empty cell
CODE_VARIANT_SHARE = 0.01  # of codes written in title case, and again with a trailing space
XLSX_TEXT_DATE_SHARE = 0.04  # of FRALLE date cells typed in as ISO text instead of real date cells
XLSX_CREATED = dt.datetime(2017, 1, 16)  # fixed workbook timestamp keeps the xlsx reproducible


def source_columns(layout: Layout) -> list[tuple[str, FieldSpec]]:
    """(canonical field, spec) of every source column in file order; markers as "marker:<name>"."""
    return [*layout.fields.items(), *((f"marker:{m}", spec) for m, spec in layout.markers.items())]


@dataclass
class SourceTable:
    """The rows of one export before writing: clean rows from the truth, then any appended raw rows."""

    layout: Layout
    frame: pl.DataFrame  # csv: all String columns as written; xlsx: String, Float64 and Date columns
    text_dates: dict[str, BoolArray] = field(default_factory=dict)  # xlsx date cells written as text
    extra_rows: list[dict[str, Any]] = field(default_factory=list)

    def line_of(self, row_index: int) -> int:
        """File line (csv) or sheet row (xlsx) of a row: the header is line 1."""
        return row_index + 2


def _truth_column(canonical: str) -> str:
    if canonical.startswith("marker:"):
        return canonical.removeprefix("marker:").lower().replace("-", "_")
    return TRUTH_COLUMNS[canonical]


def _coded(
    rng: np.random.Generator, codes: CodeList, value: pl.Expr, not_applicable: pl.Expr, n: int
) -> pl.Expr:
    inverse: dict[Any, str] = {}
    for source, canonical in codes.mapping.items():
        inverse.setdefault(canonical, source)
    coded = value.replace_strict(inverse, default=None, return_dtype=pl.String)
    variant = pl.Series(rng.random(n))
    coded = (
        pl.when(variant < CODE_VARIANT_SHARE)
        .then(coded.str.to_titlecase())
        .when(variant < 2 * CODE_VARIANT_SHARE)
        .then(coded + " ")
        .otherwise(coded)
    )
    if not codes.missing:
        return coded
    # Each explicit missing code is equally likely; the rest of the missing values stay empty.
    slots = rng.integers(0, round(len(codes.missing) / MISSING_CODE_SHARE), size=n)
    missing = pl.Series(slots).replace_strict(
        dict(enumerate(codes.missing)), default=None, return_dtype=pl.String
    )
    return pl.when(value.is_null() & ~not_applicable).then(pl.lit(missing)).otherwise(coded)


def _decimal_text(value: pl.Expr, scale: float | None, decimal_comma: bool, integral: bool) -> pl.Expr:
    number = value / scale if scale else value
    text = number.round(0).cast(pl.Int64).cast(pl.String) if integral else number.round(1).cast(pl.String)
    return text.str.replace(".", ",", literal=True) if decimal_comma else text


def source_table(truth: pl.DataFrame, layout: Layout, rng: np.random.Generator) -> SourceTable:
    """The clean export of one layout, built from the truth (one row per patient of that source)."""
    if layout.name == "lab":
        rows = truth.filter(pl.col("in_lab_export")).sort("trial_group", "source_patient_id")
    else:
        rows = truth.filter(pl.col("trial_group") == layout.name.upper()).sort("source_patient_id")
    n = rows.height
    xlsx = layout.file_format == "xlsx"
    exprs: list[pl.Expr] = []
    text_dates: dict[str, BoolArray] = {}
    for canonical, spec in source_columns(layout):
        src = _truth_column(canonical)
        value = pl.col(src)
        if spec.type == "date":
            date = pl.col("diagnosis_date") + pl.duration(days=value) if src.endswith("_day") else value
            expr = date if xlsx else date.dt.strftime(layout.date_format)
            if xlsx:
                text_dates[spec.column] = rng.random(n) < XLSX_TEXT_DATE_SHARE
        elif spec.type == "decimal":
            scaled = rows[src] / spec.scale if spec.scale else rows[src]
            integral = bool(((scaled.round(6) % 1) == 0).all())
            expr = (
                (value / spec.scale if spec.scale else value)
                if xlsx
                else _decimal_text(value, spec.scale, layout.decimal_comma, integral)
            )
        elif spec.codes is not None:
            expr = _coded(rng, spec.codes, value, NOT_APPLICABLE.get(canonical, pl.lit(False)), n)
        else:
            expr = value.cast(pl.String)
        exprs.append(expr.alias(spec.column))
    return SourceTable(layout, rows.select(exprs), text_dates)


def write_table(table: SourceTable, path: Path) -> None:
    if table.layout.file_format == "xlsx":
        _write_xlsx(table, path)
    else:
        _write_delimited(table, path)


def _write_delimited(table: SourceTable, path: Path) -> None:
    frame = table.frame
    if table.extra_rows:
        extra = pl.DataFrame(table.extra_rows, schema=dict.fromkeys(frame.columns, pl.String))
        frame = pl.concat([frame, extra])
    text = frame.write_csv(separator=table.layout.delimiter, line_terminator="\n", quote_style="necessary")
    path.write_bytes(text.encode(table.layout.encoding))


def _write_xlsx(table: SourceTable, path: Path) -> None:
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    workbook.set_properties({"created": XLSX_CREATED})
    sheet = workbook.add_worksheet(table.layout.sheet)
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    header = table.frame.columns
    sheet.write_row(0, 0, header)
    text_masks = [table.text_dates.get(name) for name in header]

    def write(r: int, c: int, value: Any, as_text: bool) -> None:
        if value is None:
            return
        if isinstance(value, dt.date):
            if as_text:
                sheet.write_string(r, c, value.isoformat())
            else:
                sheet.write_datetime(r, c, value, date_format)
        elif isinstance(value, int | float):
            sheet.write_number(r, c, value)
        else:
            sheet.write_string(r, c, str(value))

    for i, row in enumerate(table.frame.iter_rows()):
        for c, value in enumerate(row):
            mask = text_masks[c]
            write(i + 1, c, value, mask is not None and bool(mask[i]))
    for j, extra in enumerate(table.extra_rows, start=table.frame.height + 1):
        for c, name in enumerate(header):
            write(j, c, extra.get(name), False)
    workbook.close()


def write_readme(path: Path, seed: int, patients: int, files: dict[str, Path], dirty: bool) -> None:
    lines = [
        "SYNTHETIC DATA - not real patients. Generated by cgdw (etl.synth) to resemble the T-ALL cohort of",
        "'IKZF1 alterations predict poor prognosis in adult and pediatric T-ALL' (Table 1); no value comes",
        "from a real person.",
        f"seed={seed} patients={patients} dirty={dirty}",
        "",
        *(f"{key}: {p.name}" for key, p in files.items()),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
