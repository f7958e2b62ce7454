"""Printing results for people (rich tables, Markdown) and for programs (CSV, JSON).

Every renderer returns text, so the CLI can print it or write it to `--out FILE` alike.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from rich.console import Console, RenderableType
from rich.table import Table

from etl.errors import CgdwError

if TYPE_CHECKING:
    from etl.analysis.labels import Labels
    from etl.analysis.outcomes import OutcomeResult
    from etl.analysis.table1 import Table1


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    md = "md"


def frame_to_table(frame: pl.DataFrame, title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for column in frame.columns:
        numeric = frame.schema[column].is_numeric()
        table.add_column(column, justify="right" if numeric else "left")
    for row in frame.iter_rows():
        table.add_row(*(_cell(value) for value in row))
    return table


def frame_to_markdown(frame: pl.DataFrame, title: str | None = None) -> str:
    def cell(value: object) -> str:
        return "" if value is None else str(value).replace("|", "\\|")

    lines = [f"**{title}**", ""] if title else []
    lines.append("| " + " | ".join(cell(c) for c in frame.columns) + " |")
    lines.append(
        "|" + "|".join("---:" if frame.schema[c].is_numeric() else "---" for c in frame.columns) + "|"
    )
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows())
    return "\n".join(lines) + "\n"


def render_rich(renderables: Iterable[RenderableType | str], width: int = 160) -> str:
    """Rich output as plain text (no colour codes), for files and tests."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    for renderable in renderables:
        console.print(renderable)
    return buffer.getvalue()


def render_frame(
    frame: pl.DataFrame, fmt: OutputFormat = OutputFormat.table, title: str | None = None
) -> str:
    if fmt is OutputFormat.csv:
        return _flat(frame).write_csv()
    if fmt is OutputFormat.json:
        return frame.write_json() + "\n"
    if fmt is OutputFormat.md:
        return frame_to_markdown(frame, title)
    return render_rich([frame_to_table(frame, title)])


def output_file(path: Path) -> Path:
    """`--out FILE` made ready for writing: its directory created; a directory there, or a directory that
    cannot be created, is a one-line error naming the path."""
    if path.is_dir():
        raise CgdwError(f"--out {path} is a directory: give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CgdwError(f"--out {path}: cannot create its directory: {exc.strerror}") from exc
    return path


def output_directory(path: Path) -> Path:
    """`--out DIR` made ready for writing: created with its parents; an existing file there, or a parent
    that cannot be created, is a one-line error naming the path."""
    if path.exists() and not path.is_dir():
        raise CgdwError(f"--out {path} is a file: give a directory (it is created if it does not exist)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CgdwError(f"--out {path}: cannot create the directory: {exc.strerror}") from exc
    return path


def _flat(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV has no lists or records: nested values (a list column of `cgdw query`) are written as JSON."""
    nested = [c for c, dtype in frame.schema.items() if dtype.is_nested()]
    return frame.with_columns(pl.col(c).map_elements(_json_value, return_dtype=pl.String) for c in nested)


def _json_value(value: Any) -> str:
    return json.dumps(value.to_list() if isinstance(value, pl.Series) else value, default=str)


def print_frame(frame: pl.DataFrame, fmt: OutputFormat | None = None, title: str | None = None) -> None:
    """A frame on stdout. Without a format: a table on a terminal, CSV into a pipe or a file (a program
    reads it, and a table there would be cut at 80 columns)."""
    if fmt is None:
        fmt = OutputFormat.table if sys.stdout.isatty() else OutputFormat.csv
    if fmt is OutputFormat.table:
        print_table(frame, title)
    else:
        print(render_frame(frame, fmt, title), end="")


# Deciding whether a grid fits, a longer cell counts as this wide (rich wraps it within its column).
CELL_WIDTH = 60


def print_table(frame: pl.DataFrame, title: str | None = None) -> None:
    """A table that fits: as a grid when its columns fit the terminal; else one block per row, a line per
    column (psql's expanded display), so that no header or value is squeezed away. Into a pipe, the grid
    is as wide as it needs to be."""
    console = Console()
    if not console.is_terminal:
        full = [max([len(c), *(len(_cell(v)) for v in frame.get_column(c))]) for c in frame.columns]
        Console(width=max(sum(full) + 3 * len(full) + 1, 80)).print(frame_to_table(frame, title))
        return
    widths = [
        max([len(column), *(min(len(_cell(v)), CELL_WIDTH) for v in frame.get_column(column).head(200))])
        for column in frame.columns
    ]
    if sum(widths) + 3 * len(widths) + 1 <= console.width or not frame.width:
        console.print(frame_to_table(frame, title))
    else:
        console.print(expanded_table(frame, title), soft_wrap=False)


def expanded_table(frame: pl.DataFrame, title: str | None = None) -> Table:
    """One block per row: `column  value` lines under a `row N` rule."""
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for number, row in enumerate(frame.iter_rows(), start=1):
        table.add_row(f"-[ row {number} ]-", "", end_section=False)
        for column, value in zip(frame.columns, row, strict=True):
            table.add_row(column, _cell(value))
    return table


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _json(document: dict[str, Any]) -> str:
    # NaN and infinities are not JSON (Python would write NaN, Infinity): an undefined or unbounded statistic
    # (a CI of a model that did not converge) is null.
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(document), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


ATTRITION_TITLE = "Patients, rule by rule (attrition)"


def labelled_table1(result: Table1, labels: Labels) -> Table1:
    """The table as people read it: groups (and the grouping column) named by `labels`."""
    if not labels:
        return result
    named = {g: str(label) for g, label in labels.groups(result.by, list(result.groups)).items()}
    rows = [
        replace(row, groups={named.get(g, g): cell for g, cell in row.groups.items()}) for row in result.rows
    ]
    return replace(result, by=labels.name(result.by), groups=[named[g] for g in result.groups], rows=rows)


def labelled_outcomes(result: OutcomeResult, labels: Labels) -> OutcomeResult:
    """The result as people read it: groups, covariates and the grouping column named by `labels`."""
    if not labels:
        return result
    named = labels.groups(result.by, [g.group for g in result.groups])
    return replace(
        result,
        by=labels.name(result.by),
        reference=labels.value(result.by, result.reference),
        groups=[replace(g, group=named[g.group]) for g in result.groups],
        hazard_ratios=[replace(h, covariate=labels.covariate(h.covariate)) for h in result.hazard_ratios],
    )


def table1_renderables(result: Table1) -> list[RenderableType | str]:
    """Table 1 for a terminal: the table, then the notes (tests used, denominators)."""
    frame = result.to_frame()
    sizes = {group: cell.n for group, cell in result.rows[0].groups.items()} if result.rows else {}
    title = f"Table 1 by {result.by} ({result.cohort}): " + ", ".join(f"{g} n={n}" for g, n in sizes.items())
    flow = [frame_to_table(result.attrition, ATTRITION_TITLE)] if result.attrition is not None else []
    return [*flow, frame_to_table(frame, title), *_table1_notes(result)]


def _table1_notes(result: Table1) -> list[str]:
    notes = [*result.notes]
    if result.excluded_no_group:
        notes.append(f"{result.excluded_no_group} patients without {result.by} are not in the table.")
    return notes


def write_table1_docx(result: Table1, path: Path) -> Path:
    """Table 1 as a Word document for a manuscript (python-docx): its title, the table as printed (one
    column per group, then Total, P and the test) and its notes under it. Returns `path`."""
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    frame = result.to_frame().drop("row")
    sizes = {group: cell.n for group, cell in result.rows[0].groups.items()} if result.rows else {}
    sizes["Total"] = result.patients
    headers = [f"{c} (n={sizes[c]:,})" if c in sizes else c for c in frame.columns]
    headers[0] = "Characteristic"
    document = docx.Document()
    # The template's own metadata says python-docx wrote it in 2013: say who and when.
    document.core_properties.author = "cgdw"
    document.core_properties.created = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    document.core_properties.title = f"Table 1 by {result.by}"
    document.add_heading(f"Table 1. Patient characteristics by {result.by}", level=2)
    table = document.add_table(rows=1, cols=len(headers))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, headers, strict=True):
        cell.text = text
        cell.paragraphs[0].runs[0].bold = True
    for row in frame.iter_rows():
        cells = table.add_row().cells
        for index, (cell, value) in enumerate(zip(cells, row, strict=True)):
            cell.text = "" if value is None else str(value)
            if index:  # the counts centred, the characteristic left
                cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    for row in table.rows:
        for cell in row.cells:
            for run in cell.paragraphs[0].runs:
                run.font.size = Pt(9)
    for note in _table1_notes(result):
        document.add_paragraph(note).runs[0].font.size = Pt(8)
    output_file(path)
    document.save(str(path))
    return path


def render_table1(result: Table1, fmt: OutputFormat) -> str:
    if fmt is OutputFormat.json:
        return _json(result.to_json())
    frame = result.to_frame()
    if fmt is OutputFormat.csv:
        return _flat(frame).write_csv()
    if fmt is OutputFormat.md:
        title = f"Table 1 by {result.by} ({result.cohort})"
        flow = (
            frame_to_markdown(result.attrition, ATTRITION_TITLE) + "\n"
            if result.attrition is not None
            else ""
        )
        return (
            flow
            + frame_to_markdown(frame, title)
            + "\n"
            + "".join(f"- {note}\n" for note in _table1_notes(result))
        )
    return render_rich(table1_renderables(result))


def outcomes_parts(result: OutcomeResult) -> tuple[str, str, str, list[str]]:
    landmark = f", from the day-{result.landmark_days:g} landmark" if result.landmark_days is not None else ""
    if result.landmark_column is not None:
        landmark = f", from each patient's landmark day {result.landmark_column}"
    header = (
        f"{result.description.capitalize()} ({result.endpoint}) by {result.by}, {result.patients} patients"
        f"{landmark}; {result.horizon_years:g}-year estimates"
    )
    t = result.test
    from etl.analysis.cohort import p_statement  # not at import: `cgdw load` needs none of the analyses

    test = f"{t.name}: statistic {t.statistic:.3f}, df {t.df}, {p_statement(t.p_value)}"
    notes = [
        f"CI: {result.ci_method}.",
        f"Hazard ratios: {result.model}; reference group {result.by}={result.reference}.",
        *(f"Excluded, {why}: {n}." for why, n in result.excluded.items() if n),
        *result.notes,
    ]
    ratio_title = "Hazard ratios" if result.endpoint != "cir" else "Subdistribution hazard ratios"
    return header, test, ratio_title, notes


def outcomes_renderables(result: OutcomeResult) -> list[RenderableType | str]:
    header, test, ratio_title, notes = outcomes_parts(result)
    return [
        frame_to_table(result.estimates_frame(), header),
        test,
        frame_to_table(result.hazard_ratio_frame(), ratio_title),
        *notes,
    ]


def render_outcomes(result: OutcomeResult, fmt: OutputFormat) -> str:
    if fmt is OutputFormat.json:
        return _json(result.to_json())
    estimates, ratios = result.estimates_frame(), result.hazard_ratio_frame()
    if fmt is OutputFormat.csv:
        long = pl.concat(
            [
                estimates.select(
                    pl.lit("estimate").alias("section"),
                    pl.col("group").alias("name"),
                    pl.col(estimates.columns[3]).alias("value"),
                    pl.lit(None, pl.String).alias("p_value"),
                ),
                ratios.select(
                    pl.concat_str(pl.lit("hazard_ratio:"), "model").alias("section"),
                    pl.col("covariate").alias("name"),
                    pl.col("HR (95% CI)").alias("value"),
                    pl.col("P").alias("p_value"),
                ),
            ]
        )
        return long.write_csv()
    if fmt is OutputFormat.md:
        header, test, ratio_title, notes = outcomes_parts(result)
        return (
            frame_to_markdown(estimates, header)
            + f"\n{test}\n\n"
            + frame_to_markdown(ratios, ratio_title)
            + "\n"
            + "".join(f"- {note}\n" for note in notes)
        )
    return render_rich(outcomes_renderables(result))
