"""Printing polars frames for people (rich tables) and for programs (CSV, JSON)."""

from __future__ import annotations

import sys
from enum import StrEnum

import polars as pl
from rich.console import Console
from rich.table import Table


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def frame_to_table(frame: pl.DataFrame, title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for column in frame.columns:
        numeric = frame.schema[column].is_numeric()
        table.add_column(column, justify="right" if numeric else "left")
    for row in frame.iter_rows():
        table.add_row(*("" if value is None else str(value) for value in row))
    return table


def print_frame(
    frame: pl.DataFrame, fmt: OutputFormat = OutputFormat.table, title: str | None = None
) -> None:
    if fmt is OutputFormat.csv:
        sys.stdout.write(frame.write_csv())
    elif fmt is OutputFormat.json:
        sys.stdout.write(frame.write_json() + "\n")
    else:
        Console().print(frame_to_table(frame, title))
