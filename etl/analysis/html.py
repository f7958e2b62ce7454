"""Results as HTML for Jupyter (`_repr_html_` of Table 1 and outcome results): a titled table and its notes.

Plain HTML, escaped, no script and no style sheet: a notebook shows it as it shows a pandas frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

import polars as pl


def frame_html(frame: pl.DataFrame, title: str | None = None, notes: Iterable[str] = ()) -> str:
    """A <table> of every row of `frame` (numbers right-aligned), under an optional caption, notes after."""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    numeric = [frame.schema[c].is_numeric() for c in frame.columns]

    def cell(value: object, right: bool) -> str:
        text = "" if value is None else escape(str(value))
        return f'<td style="text-align:{"right" if right else "left"}">{text}</td>'

    body = "".join(
        "<tr>" + "".join(cell(v, right) for v, right in zip(row, numeric, strict=True)) + "</tr>"
        for row in frame.iter_rows()
    )
    caption = f"<caption><b>{escape(title)}</b></caption>" if title else ""
    listed = "".join(f"<li>{escape(note)}</li>" for note in notes)
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" + (
        f"<ul>{listed}</ul>" if listed else ""
    )
