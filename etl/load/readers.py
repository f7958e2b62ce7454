"""Reading source files into polars, every value as text, with the source line of each row.

File-level problems raise FileRejected (the load aborts, nothing is written): unreadable file, wrong
encoding, empty file, ragged rows, a field of more than MAX_FIELD_BYTES, a stray quote, missing /
unexpected / duplicated columns, identifier columns.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import polars as pl

from etl.errors import FileRejected, one_line
from etl.load.layout import Layout
from etl.privacy import identifier_columns

# csv (line numbers, ragged lines) must read what polars reads: a huge field is a value, not an error.
csv.field_size_limit(2**31 - 1)

LINE = "_line"  # source line (sheet row for xlsx) of each record; the header is line 1

# The most one field of a delimited export may hold. polars, the csv module and io.StringIO each hold a
# field several times over (one 128 MB field made a load peak at 1.8 GB), so a longer one is refused
# before the file is read whole; free text of 300,000 characters still loads.
MAX_FIELD_BYTES = 1 << 20
_CHUNK = MAX_FIELD_BYTES  # so a field inside a chunk fits: only one begun in earlier chunks may not


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
        stray_quote = _scan_fields(path, layout)
        text = _decode(path, layout)
    except OSError as exc:
        raise FileRejected(path, f"cannot read: {exc.strerror}") from exc
    # Normalise CR-only and CRLF line ends so that line numbers mean what an editor shows.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        frame = pl.read_csv(
            text.encode(),  # UTF-8 bytes: from a StringIO polars read twice as slowly
            separator=layout.delimiter,
            infer_schema=False,
            raise_if_empty=True,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as exc:
        # polars cannot read a quote inside a field that is not quoted whole: say where, in those terms.
        problem = _ragged_line(text, layout.delimiter) or (
            f"{_where(path, layout, *stray_quote)}: a quote inside a field that is not quoted whole: quote "
            'the whole field and double its quotes ("a ""b"" c"), or remove the quote'
            if stray_quote
            else f"not a valid delimited file: {one_line(exc)}"
        )
        raise FileRejected(path, problem) from exc
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


def _scan_fields(path: Path, layout: Layout) -> tuple[int, int] | None:
    """Refuse a field of more than MAX_FIELD_BYTES, reading the file a mebibyte at a time; return where
    the first stray quote is (byte offset, column index), if any. As for the csv module, a quote opens a
    quoted field only at the field's start, and a doubled quote inside it is a quote."""
    delimiter = layout.delimiter.encode()
    marks = (delimiter, b"\n", b"\r")
    specials = re.compile(b'["\n\r' + re.escape(delimiter) + b"]")
    start = column = base = 0  # byte offset and index of the current field, offset of the chunk
    quoted = closing = False  # inside a quoted field; its last quote (at last_quote) may close it
    last_quote = -2
    stray: tuple[int, int] | None = None
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            end = base + len(chunk)
            if not quoted and b'"' not in chunk:  # the common case: a few finds per chunk
                first = min((i for i in map(chunk.find, marks) if i >= 0), default=None)
                if first is not None:
                    if base + first - start > MAX_FIELD_BYTES:
                        raise _too_long(path, layout, start, column)
                    line_end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
                    after = chunk.count(delimiter, line_end + 1)
                    column = after if line_end >= 0 else column + after
                    start = base + max(map(chunk.rfind, marks)) + 1
            else:
                for match in specials.finditer(chunk):
                    at, byte = base + match.start(), match.group()
                    if closing:
                        if byte == b'"' and at == last_quote + 1:
                            closing = False  # a doubled quote, still inside
                            continue
                        quoted = closing = False  # the last quote closed the field's quotes
                        if at != last_quote + 1 and stray is None:
                            stray = (last_quote + 1, column)  # text after the closing quote
                        if byte == b'"':
                            continue
                    elif quoted:
                        if byte == b'"':
                            closing, last_quote = True, at
                        continue
                    elif byte == b'"':
                        if at == start:
                            quoted = True
                        elif stray is None:
                            stray = (at, column)
                        continue
                    if at - start > MAX_FIELD_BYTES:
                        raise _too_long(path, layout, start, column)
                    column = column + 1 if byte == delimiter else 0
                    start = at + 1
            if end - start > MAX_FIELD_BYTES:
                raise _too_long(path, layout, start, column)
            base = end
    return stray


def _too_long(path: Path, layout: Layout, offset: int, column: int) -> FileRejected:
    return FileRejected(
        path,
        f"{_where(path, layout, offset, column)}: a field of more than 1 MiB ({MAX_FIELD_BYTES:,} bytes), "
        "the most a field may hold: an unclosed quote, or a document pasted into a cell?",
    )


def _where(path: Path, layout: Layout, offset: int, column: int) -> str:
    """'line N, column NAME' of a byte offset: lines as an editor counts them (LF, CRLF or CR)."""
    line, previous = 1, b""
    with open(path, "rb") as handle:
        while offset > 0 and (chunk := handle.read(min(_CHUNK, offset))):
            offset -= len(chunk)
            line += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
            line -= previous.endswith(b"\r") and chunk.startswith(b"\n")
            previous = chunk
        handle.seek(0)
        first = handle.read(MAX_FIELD_BYTES).removeprefix(b"\xef\xbb\xbf").splitlines()[:1]
    header = (
        next(csv.reader([first[0].decode(layout.encoding, "replace")], delimiter=layout.delimiter))
        if first
        else []
    )
    name = header[column] if column < len(header) else f"field {column + 1}"
    return f"line {line}, column {name}"


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
    """Where a line has another number of fields than the header (None: nowhere), as the csv module counts
    them: blank lines are no rows. Without quotes a field holds no delimiter nor line end, so counting the
    delimiters of each line, in polars, tells the same (the csv module took 0.8 s per million lines)."""
    if '"' in text:
        return _ragged_line_quoted(text, delimiter)
    if not text:
        return "the file is empty"
    lines = pl.Series(text.split("\n"))
    fields = lines.str.count_matches(delimiter, literal=True) + 1
    header = int(fields[0]) if lines[0] else 0
    ragged = (fields != header) & (lines.str.len_bytes() > 0)
    ragged[0] = False
    if not ragged.any():
        return None
    index = int(ragged.arg_true()[0])
    return f"line {index + 1} has {fields[index]} fields, the header has {header}"


def _ragged_line_quoted(text: str, delimiter: str) -> str | None:
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
    columns = {info.absolute_index: info.name for info in sheet.available_columns()}
    if not sheet.height:
        return pl.DataFrame(schema={**dict.fromkeys(columns.values(), pl.String), LINE: pl.Int64})
    try:
        batch, errors = sheet.to_arrow_with_errors()
        uncomputed = _uncomputed_formulas(path, sheet_name)
    except Exception as exc:  # fastexcel's and zipfile's errors, ElementTree's ParseError
        raise FileRejected(path, f"sheet {sheet_name!r} is not readable: {one_line(exc)}") from exc
    # Date cells arrive as "YYYY-MM-DD 00:00:00": keep the date, which is what the layout describes.
    frame = pl.DataFrame(batch).with_columns(
        pl.all()
        .cast(pl.String)
        .str.strip_chars()
        .replace("", None)
        .str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", "$1")
    )
    # fastexcel reads an error cell (#N/A) and a formula no spreadsheet computed as an empty cell (or
    # as the writer's placeholder): put back what the sheet holds, for the transform to quarantine.
    # fastexcel keeps empty rows inside the data range, so row i of the frame is sheet row i + 2.
    cells = {(row - 2, columns[col]): formula for row, col, formula in uncomputed if col in columns}
    for error in errors.errors if errors else []:
        row, col = error.offset_position
        kind = re.search(r"Error\((\w+)\)", error.detail)
        cells[(row, frame.columns[col])] = EXCEL_ERROR_TEXT.get(kind[1], kind[1]) if kind else error.detail
    frame = _with_cells(frame, cells)
    frame = frame.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))
    frame = frame.filter(~pl.all_horizontal(pl.exclude(LINE).is_null()))
    return frame.select([*(c for c in frame.columns if c != LINE), LINE])


# calamine's names of the spreadsheet errors -> what the spreadsheet shows.
EXCEL_ERROR_TEXT = {
    "NA": "#N/A", "Value": "#VALUE!", "Div0": "#DIV/0!", "Ref": "#REF!", "Name": "#NAME?", "Num": "#NUM!",
    "Null": "#NULL!", "GettingData": "#GETTING_DATA",
}  # fmt: skip
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s/>]")


def _with_cells(frame: pl.DataFrame, cells: dict[tuple[int, str], str]) -> pl.DataFrame:
    """The frame with the given (row index, column) cells set to the given text."""
    columns: dict[str, dict[int, str]] = {}
    for (row, column), text in cells.items():
        if 0 <= row < frame.height:
            columns.setdefault(column, {})[row] = text
    return frame.with_columns(
        frame.get_column(name).clone().scatter(list(texts), list(texts.values()))
        for name, texts in columns.items()
    )


def _local(name: str) -> str:
    return name.rpartition("}")[2]  # transitional and strict OOXML name their elements alike


def _uncomputed_formulas(path: Path, sheet_name: str) -> list[tuple[int, int, str]]:
    """(sheet row, column index, '=FORMULA') of the formula cells whose value no spreadsheet computed:
    no cached value, or a workbook that asks to recalculate every formula on load (xlsxwriter then writes
    0 as each formula's value). A formula whose value a spreadsheet saved is that value."""
    with zipfile.ZipFile(path) as book:
        workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
        member = _sheet_member(book, workbook, sheet_name)
        with book.open(member) as sheet:  # most exports hold no formula: do not parse them cell by cell
            tail, found = b"", False
            for chunk in iter(lambda: sheet.read(_CHUNK), b""):
                if _FORMULA_TAG.search(tail + chunk):
                    found = True
                    break
                tail = chunk[-16:]
        if not found:
            return []
        recalculate = any(
            _local(e.tag) == "calcPr" and e.get("fullCalcOnLoad") in ("1", "true") for e in workbook.iter()
        )
        cells, row, col = [], 0, -1
        with book.open(member) as sheet:
            for event, element in ElementTree.iterparse(sheet, events=("start", "end")):
                name = _local(element.tag)
                if event == "start":
                    if name == "row":
                        row, col = int(element.get("r", row + 1)), -1
                    continue
                if name == "c":  # a cell may leave out its reference: it is then the next one
                    ref = re.fullmatch(r"([A-Z]+)(\d+)", element.get("r", ""))
                    row, col = (int(ref[2]), _column_index(ref[1])) if ref else (row, col + 1)
                    parts = {_local(child.tag): child.text for child in element}
                    if "f" in parts and (recalculate or not parts.get("v")):
                        cells.append((row, col, f"={parts['f'] or '(shared formula)'}"))
                if name in ("c", "row"):
                    element.clear()
    return cells


def _sheet_member(book: zipfile.ZipFile, workbook: ElementTree.Element, sheet_name: str) -> str:
    """The zip member holding a sheet, through the workbook's relationships."""
    ids = [
        value
        for e in workbook.iter()
        if _local(e.tag) == "sheet" and e.get("name") == sheet_name
        for key, value in e.attrib.items()
        if _local(key) == "id"
    ]
    relations = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    targets = [e.get("Target", "") for e in relations if ids and e.get("Id") == ids[0]]
    if not targets:
        raise ValueError(f"the workbook does not say where sheet {sheet_name!r} is")
    return posixpath.normpath(targets[0].lstrip("/") if targets[0].startswith("/") else f"xl/{targets[0]}")


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def reject_duplicated_columns(path: Path, frame: pl.DataFrame) -> None:
    """polars renames a repeated header name to NAME_duplicated_N: refuse the file instead of guessing."""
    duplicated = sorted({c.rpartition("_duplicated_")[0] for c in frame.columns if "_duplicated_" in c})
    if duplicated:
        raise FileRejected(path, f"duplicated columns: {', '.join(duplicated)}")
