"""Reading source files into polars, every value as text, with the source line of each row.

File-level problems raise FileRejected (the load aborts, nothing is written): unreadable file, wrong
encoding, empty file, ragged rows, missing / unexpected / duplicated columns, identifier columns.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from etl.errors import FileRejected, one_line
from etl.load.layout import Layout
from etl.privacy import identifier_columns

# csv (line numbers, ragged lines) must read what polars reads: a huge field is a value, not an error.
csv.field_size_limit(2**31 - 1)

LINE = "_line"  # source line (sheet row for xlsx) of each record; the header is line 1


@dataclass(frozen=True)
class FileInfo:
    path: Path
    sha256: str
    size_bytes: int


def file_info(path: Path) -> FileInfo:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError:
        raise FileRejected(path, "no such file") from None
    except OSError as exc:
        raise FileRejected(path, f"cannot read: {exc.strerror}") from exc
    return FileInfo(path=path, sha256=digest.hexdigest(), size_bytes=path.stat().st_size)


def reject_cr_only_line_ends(path: Path) -> None:
    """MAF, SEG and VCF parsers split lines on LF: a file whose lines end in a bare CR (classic Mac OS)
    would reach them as one long line and fail with a message about something else. Say what it is.
    (Layout-driven exports are normalised instead, in `_read_delimited`.)"""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path) as unzipped:
                head = unzipped.read(1 << 16)
    except (OSError, EOFError, zlib.error):
        return  # unreadable or damaged: the format's reader says so
    if b"\r" in head and b"\n" not in head:
        raise FileRejected(
            path,
            "line ends are CR only (classic Mac OS), so the lines cannot be told apart: save it with LF "
            "line ends, e.g. `tr '\\r' '\\n' < FILE > FIXED`",
        )


def read_source(path: Path, layout: Layout) -> pl.DataFrame:
    """All columns as String (NULL for empty cells) plus `_line`; header checked against the layout."""
    frame = _read_xlsx(path, layout) if layout.file_format == "xlsx" else _read_delimited(path, layout)
    check_columns(path, list(frame.columns[:-1]), layout)
    if frame.height == 0:
        raise FileRejected(path, "the file has a header but no data rows")
    return frame


def check_columns(path: Path, columns: list[str], layout: Layout) -> None:
    leaked = identifier_columns(columns)
    if leaked:
        raise FileRejected(
            path,
            f"columns {', '.join(leaked)} look like direct identifiers (names, birth dates, hospital "
            "numbers...); identifiers never enter the warehouse: remove them from the export",
        )
    # polars renames a repeated header name to NAME_duplicated_N (fastexcel to NAME_N, which is not told
    # apart from a real column here: it is refused as an unexpected column).
    repeated = {c.rpartition("_duplicated_")[0] for c in columns if re.search(r".+_duplicated_\d+$", c)}
    duplicated = sorted({c for c in columns if columns.count(c) > 1} | repeated)
    if duplicated:
        raise FileRejected(path, f"duplicated columns: {', '.join(duplicated)}")
    expected = layout.source_columns
    missing = [c for c in expected if c not in columns]
    if missing:
        raise FileRejected(
            path,
            f"missing columns for layout {layout.name!r}: {', '.join(missing)} "
            f"(the header has: {', '.join(columns)})",
        )
    unexpected = [c for c in columns if c not in expected and c not in layout.ignored_columns]
    if unexpected:
        raise FileRejected(
            path,
            f"unexpected columns for layout {layout.name!r}: {', '.join(unexpected)}; nothing is dropped "
            "silently: map them or list them under ignored_columns in the layout",
        )


def _decode(path: Path, layout: Layout) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise FileRejected(path, "the file is empty")
    encoding = layout.encoding.lower().replace("_", "-")
    if data.startswith(b"\xef\xbb\xbf"):
        if encoding not in ("utf-8", "utf8"):
            raise FileRejected(
                path,
                f"the file starts with a UTF-8 byte-order mark but layout {layout.name!r} "
                f"declares {layout.encoding}",
            )
        data = data[3:]
    # Latin-1 decodes any bytes, so a UTF-8 export would load as mojibake: detect it instead.
    if encoding in ("latin-1", "latin1", "iso-8859-1", "cp1252") and not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise FileRejected(
                path,
                f"the file is UTF-8 encoded but layout {layout.name!r} declares "
                f"{layout.encoding}: re-export it in {layout.encoding}",
            )
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileRejected(
            path, f"line {line}: byte 0x{data[exc.start]:02x} is not valid {layout.encoding}"
        ) from exc
    except LookupError as exc:
        raise FileRejected(path, f"unknown encoding {layout.encoding!r} in layout {layout.name!r}") from exc


def _read_delimited(path: Path, layout: Layout) -> pl.DataFrame:
    try:
        text = _decode(path, layout)
    except OSError as exc:
        raise FileRejected(path, f"cannot read: {exc.strerror}") from exc
    # Normalise CR-only and CRLF line ends so that line numbers mean what an editor shows.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        frame = pl.read_csv(
            io.StringIO(text),
            separator=layout.delimiter,
            infer_schema=False,
            raise_if_empty=True,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as exc:
        raise FileRejected(
            path, _ragged_line(text, layout.delimiter) or f"not a valid delimited file: {one_line(exc)}"
        ) from exc
    # polars pads a line with fewer fields than the header with NULLs: a cut line would load as empty
    # values. Count the fields of every line (more fields make polars fail above and land here too).
    ragged = _ragged_line(text, layout.delimiter)
    if ragged:
        raise FileRejected(path, ragged)
    frame = frame.with_columns(pl.all().str.strip_chars().replace("", None))
    if text.count("\n") - text.endswith("\n") != frame.height or '"' in text:
        lines = _record_lines(text, layout.delimiter)
    else:
        lines = list(range(2, frame.height + 2))
    if len(lines) != frame.height:
        raise FileRejected(path, "could not align records with lines (blank lines or stray quotes?)")
    return frame.with_columns(pl.Series(LINE, lines, dtype=pl.Int64))


def _record_lines(text: str, delimiter: str) -> list[int]:
    """The starting line of each record when quoted fields span lines (slow path)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    starts: list[int] = []
    next(reader, None)
    start = reader.line_num + 1
    for row in reader:
        if row:
            starts.append(start)
        start = reader.line_num + 1
    return starts


def _ragged_line(text: str, delimiter: str) -> str | None:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return "the file is empty"
    for row in reader:
        if row and len(row) != len(header):
            return f"line {reader.line_num} has {len(row)} fields, the header has {len(header)}"
    return None


def _read_xlsx(path: Path, layout: Layout) -> pl.DataFrame:
    import fastexcel

    try:
        reader = fastexcel.read_excel(path)
    except Exception as exc:  # fastexcel raises its own error types for every kind of broken workbook
        raise FileRejected(path, f"not a readable xlsx workbook: {one_line(exc)}") from exc
    sheet_name = layout.sheet or reader.sheet_names[0]
    if sheet_name not in reader.sheet_names:
        raise FileRejected(path, f"no sheet {sheet_name!r} (sheets: {', '.join(reader.sheet_names)})")
    try:
        sheet = reader.load_sheet_by_name(sheet_name, header_row=0, dtypes="string")
    except Exception as exc:  # a damaged sheet inside a readable zip: a CalamineError, not a traceback
        raise FileRejected(path, f"sheet {sheet_name!r} is not readable: {one_line(exc)}") from exc
    columns = [info.name for info in sheet.available_columns()]
    frame = (
        pl.DataFrame(sheet.to_arrow())
        if sheet.height
        else pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    )
    # Date cells arrive as "YYYY-MM-DD 00:00:00": keep the date, which is what the layout describes.
    frame = frame.with_columns(
        pl.all()
        .cast(pl.String)
        .str.strip_chars()
        .replace("", None)
        .str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", "$1")
    )
    # fastexcel keeps empty rows inside the data range, so row i of the frame is sheet row i + 2.
    frame = frame.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))
    frame = frame.filter(~pl.all_horizontal(pl.exclude(LINE).is_null()))
    return frame.select([*(c for c in frame.columns if c != LINE), LINE])


def reject_duplicated_columns(path: Path, frame: pl.DataFrame) -> None:
    """polars renames a repeated header name to NAME_duplicated_N: refuse the file instead of guessing."""
    duplicated = sorted({c.rpartition("_duplicated_")[0] for c in frame.columns if "_duplicated_" in c})
    if duplicated:
        raise FileRejected(path, f"duplicated columns: {', '.join(duplicated)}")
