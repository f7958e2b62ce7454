"""Property-based tests: every loader, fed randomly corrupted versions of small valid files, either
refuses the file with one line naming it, or accounts for every row (rows read = rows loaded + rows
quarantined) and every value withheld from a loaded row (a fact-level problem: a relapse without a
remission). Never a traceback, never half a file in the warehouse.

The corruption classes (docs/bad-input.md lists them with what the user sees): truncation, bit flips,
dropped or duplicated columns, a wrong delimiter, Latin-1 / UTF-8 / UTF-8 with BOM, CRLF and CR-only line
ends, huge fields, numbers as text, NaN / Inf, empty files, gzip that lies (a .gz name on plain text, a
truncated or damaged gzip, a gzip of garbage), and for the xlsx trial export the same at the cell level.
The trial exports also get contradictions that withhold one fact of a line (a relapse on the diagnosis
date, a transplant in first CR without CR), alone or on a line that is quarantined whole besides.

CI runs a fixed, derandomized set of examples per loader. To explore longer locally:

    CGDW_HYPOTHESIS_EXAMPLES=2000 CGDW_HYPOTHESIS_RANDOM=1 python -m pytest tests/test_bad_input_properties.py

(`CGDW_HYPOTHESIS_RANDOM=1` draws new examples on each run and keeps failures in .hypothesis/).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.errors import CgdwError
from etl.load.framework import LoadReport
from etl.load.readers import LINE
from etl.sources.registry import load_source
from schema import database
from tests.helpers import fingerprint, load_cohort, query

if TYPE_CHECKING:
    from etl.synth import SynthResult

EXAMPLES = int(os.environ.get("CGDW_HYPOTHESIS_EXAMPLES", "25"))
RANDOM = bool(os.environ.get("CGDW_HYPOTHESIS_RANDOM"))
PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,  # CI: the same examples on every run
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    print_blob=True,
)
if not RANDOM:
    PROFILE = settings(PROFILE, database=None)  # nothing to replay: derandomized runs are reproducible
BASE_ROWS = 20  # data rows kept from each synthetic file

# Values that are not what a column means: numbers as text, NaN / Inf, odd spacing, quotes, delimiters.
NOT_NUMBERS = ["abc", "1,5e", "1 000", "twelve", "--1", "0x1F", "1e", "½", "١٢", " 12 ", "12%", "+", "."]
NOT_FINITE = ["NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "1e400", "-1e400", "NA", "null"]
ODD_TEXT = ['"', '"quoted', "a;b", "a\tb", "é", "\x00", "#", "  ", "-", "*", "<DEL>", "chr", "0", "-1"]

# Cell edits of a trial export (column, value; '@COLUMN' copies that column of the same line) that break a
# rule about one fact, which is then withheld and the line loads (records.clinical_fact_rules): a CR
# date, a transplant or a relapse without CR, a remission without its date, and events on the diagnosis
# date, before the CR or the first relapse (a transplant whose flag says none).
GRAALL_FACTS = (
    ("RC_INDUCTION", "NON"),
    ("DATE_RC", ""),
    ("ALLOGREFFE_RC1", "OUI"),
    ("DATE_ALLOGREFFE", "@DATE_DIAG"),
    ("DATE_RECHUTE", "@DATE_DIAG"),
    ("DATE_RECHUTE_2", "@DATE_DIAG"),
)
FRALLE_FACTS = (
    ("complete_remission", "no"),
    ("cr_date", ""),
    ("hsct_first_cr", "yes"),
    ("hsct_date", "@diagnosis_date"),
    ("relapse_date", "@diagnosis_date"),
    ("second_relapse_date", "@diagnosis_date"),
)
FACT_RULES = {"cr_date_iff_cr", "hsct_in_first_cr", "relapse_after_cr", "second_relapse_after_first"}


@dataclass(frozen=True)
class Base:
    """A small valid source file of one loader kind and how to load it."""

    name: str
    kind: str
    data: bytes
    suffix: str
    delimiter: str = "\t"
    encoding: str = "utf-8"
    header_lines: int = 1  # lines before the first data record (VCF meta lines and #CHROM; MAF comments)
    options: dict[str, Any] = field(default_factory=dict)
    prerequisites: tuple[str, ...] = ()  # cohort kinds loaded first (patients, samples)
    facts: tuple[tuple[str, str], ...] = ()  # cell edits that withhold one fact of a line (GRAALL_FACTS)


class Corrupted:
    """A corrupted file: what was done, the bytes, the file name's suffix (a plain class: hypothesis prints
    its repr in a failing example, not every byte of a dataclass)."""

    def __init__(self, label: str, data: bytes, suffix: str) -> None:
        self.label, self.data, self.suffix = label, data, suffix

    def __repr__(self) -> str:
        shown = f", {self.data!r}" if len(self.data) < 300 else ""
        return f"Corrupted({self.label!r}, {len(self.data)} bytes{shown})"


# --- small valid files from the synthetic cohort ----------------------------------------------------------


def _head(path: Path, header_lines: int, rows: int = BASE_ROWS) -> bytes:
    lines = path.read_bytes().split(b"\n")
    return b"\n".join(lines[: header_lines + rows]) + b"\n"


def _meta_lines(path: Path) -> int:
    """How many lines start with '#' before the first that does not."""
    lines = path.read_bytes().split(b"\n")
    return next(i for i, line in enumerate(lines) if not line.startswith(b"#"))


XlsxValue = str | float | dt.date | None


def write_xlsx(path: Path, header: list[str], rows: list[list[XlsxValue]]) -> Path:
    """A one-sheet workbook as a trial group would send it: dates as date cells, numbers as numbers."""
    with xlsxwriter.Workbook(str(path)) as book:
        sheet = book.add_worksheet("patients")
        date_format = book.add_format({"num_format": "yyyy-mm-dd"})
        sheet.write_row(0, 0, header)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                if isinstance(value, dt.date):
                    sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date_format)
                elif value is not None:
                    sheet.write(r, c, value)
    return path


def _fralle_table(path: Path) -> tuple[list[str], list[list[XlsxValue]]]:
    frame = pl.read_excel(path, engine="calamine").head(BASE_ROWS)
    frame = frame.with_columns(pl.col(pl.Datetime).dt.date())
    return frame.columns, [list(row) for row in frame.iter_rows()]


def _bases(cohort: SynthResult, fralle: bytes) -> dict[str, Base]:
    files = cohort.files
    vcf = sorted(files["vcf"].glob("*.vcf"))[0]
    vcf_meta = _meta_lines(vcf) - 1  # the #CHROM line is the header of the records
    maf_meta = _meta_lines(files["maf"])
    patients, samples = ("graall", "fralle"), ("graall", "fralle", "samples")
    return {
        "graall": Base(
            "graall", "clinical", _head(files["graall"], 1), ".csv", ";", "latin-1",
            options={"layout": "graall"}, facts=GRAALL_FACTS,
        ),
        "fralle": Base(
            "fralle", "clinical", fralle, ".xlsx", options={"layout": "fralle"}, facts=FRALLE_FACTS
        ),
        "lab": Base("lab", "lab", _head(files["lab"], 1), ".tsv", prerequisites=patients),
        "samples": Base("samples", "samples", _head(files["samples"], 1), ".tsv", prerequisites=patients),
        "mrd": Base("mrd", "mrd", _head(files["mrd"], 1), ".tsv", prerequisites=samples),
        "cnv": Base("cnv", "cnv", _head(files["cnv"], 1), ".tsv", prerequisites=samples),
        "vcf": Base(
            "vcf", "vcf", _head(vcf, vcf_meta + 1, 5), ".vcf", header_lines=vcf_meta + 1,
            prerequisites=samples,
        ),
        "maf": Base(
            "maf", "maf", _head(files["maf"], maf_meta + 1), ".maf", header_lines=maf_meta + 1,
            prerequisites=samples,
        ),
        "seg": Base("seg", "seg", _head(files["seg"], 1), ".seg", prerequisites=samples),
    }  # fmt: skip


class Fixtures:
    """The base files, the fralle table, one warehouse per set of prerequisite kinds."""

    def __init__(
        self,
        bases: dict[str, Base],
        fralle: tuple[list[str], list[list[XlsxValue]]],
        warehouses: dict[tuple[str, ...], Path],
    ) -> None:
        self.bases, self.fralle, self.warehouses = bases, fralle, warehouses

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return "prepared"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, cohort: SynthResult) -> Fixtures:
    """The base files and one warehouse per set of prerequisites, each prepared once for the module."""
    fralle = _fralle_table(cohort.files["fralle"])
    small = write_xlsx(tmp_path_factory.mktemp("fralle") / "fralle.xlsx", *fralle)
    bases = _bases(cohort, small.read_bytes())
    warehouses: dict[tuple[str, ...], Path] = {}
    for prerequisites in {base.prerequisites for base in bases.values()}:
        db = tmp_path_factory.mktemp("bad-input") / "warehouse.duckdb"
        database.upgrade(db)
        if "graall" in prerequisites:  # both trial exports create the patients
            load_cohort(db, cohort, ("clinical",))
        if "samples" in prerequisites:
            load_cohort(db, cohort, ("samples",))
        warehouses[prerequisites] = db
    return Fixtures(bases, fralle, warehouses)


# --- corruption strategies ------------------------------------------------------------------------------


def _lines(base: Base) -> list[str]:
    return base.data.decode(base.encoding).split("\n")


def _join(base: Base, lines: list[str], encoding: str | None = None) -> bytes:
    return "\n".join(lines).encode(encoding or base.encoding, errors="replace")


def _cell_edit(base: Base, lines: list[str], line: int, column: int, value: str) -> list[str]:
    fields = lines[line].split(base.delimiter)
    fields[column % len(fields)] = value
    return [*lines[:line], base.delimiter.join(fields), *lines[line + 1 :]]


def _column_edit(base: Base, lines: list[str], column: int, duplicate: bool) -> list[str]:
    edited = []
    for number, line in enumerate(lines):
        fields = line.split(base.delimiter)
        if number < base.header_lines - 1 or not line:
            edited.append(line)
            continue
        index = column % len(fields)
        fields = (
            [*fields[: index + 1], *fields[index:]] if duplicate else fields[:index] + fields[index + 1 :]
        )
        edited.append(base.delimiter.join(fields))
    return edited


FactEdits = list[tuple[int, tuple[str, str]]]  # (data row, 0-based; edit), several on one row allowed


def _fact_edit(header: list[str], row: list[Any], edit: tuple[str, str]) -> list[Any]:
    """A row (its cells, by the header) with one fact edit applied: a value, or '@COLUMN' that column's."""
    column, value = edit
    edited = list(row)
    edited[header.index(column)] = row[header.index(value[1:])] if value.startswith("@") else value
    return edited


def _text_with_facts(base: Base, edits: FactEdits) -> list[str]:
    """The lines of a delimited base file with the fact edits applied."""
    lines = _lines(base)
    header = lines[0].split(base.delimiter)
    for row, edit in edits:
        line = base.header_lines + row
        lines[line] = base.delimiter.join(_fact_edit(header, lines[line].split(base.delimiter), edit))
    return lines


def _xlsx_with_facts(table: tuple[list[str], list[list[XlsxValue]]], edits: FactEdits) -> bytes:
    """The workbook of a table with the fact edits applied (an empty value is an empty cell)."""
    header, rows = table[0], [list(row) for row in table[1]]
    for row, edit in edits:
        rows[row] = [None if cell == "" else cell for cell in _fact_edit(header, rows[row], edit)]
    with tempfile.TemporaryDirectory() as scratch:
        return write_xlsx(Path(scratch) / "f.xlsx", header, rows).read_bytes()


@st.composite
def fact_edits(draw: st.DrawFn, base: Base, rows: int) -> FactEdits:
    """1 to 4 fact edits, each on one of the `rows` data rows."""
    edit = st.tuples(st.integers(0, rows - 1), st.sampled_from(base.facts))
    return draw(st.lists(edit, min_size=1, max_size=4))


def _facts_label(edits: FactEdits) -> str:
    return f"facts withheld {[(row + 2, edit) for row, edit in edits]}"


@st.composite
def fact_corruptions(draw: st.DrawFn, base: Base) -> Corrupted:
    """Contradictions that withhold a fact of a line, which loads; perhaps with a cell of one of those lines
    made unreadable besides, so that the line is quarantined whole (its withheld facts with it)."""
    edits = draw(fact_edits(base, len(_lines(base)) - 1 - base.header_lines))
    lines, label = _text_with_facts(base, edits), _facts_label(edits)
    if draw(st.booleans()):
        row = draw(st.sampled_from([row for row, _ in edits]))
        column = draw(st.integers(0, 40))
        lines = _cell_edit(base, lines, base.header_lines + row, column, "abc")
        label += f", line {row + 2} column {column} = 'abc'"
    return Corrupted(label, _join(base, lines), base.suffix)


@st.composite
def byte_corruptions(draw: st.DrawFn, base: Base) -> Corrupted:
    """Truncation and bit flips anywhere in the file (header included)."""
    data = base.data
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        return Corrupted(f"truncated at byte {cut}", data[:cut], base.suffix)
    flipped = bytearray(data)
    flips = draw(
        st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 7)), min_size=1, max_size=4)
    )
    for position, bit in flips:
        flipped[position] ^= 1 << bit
    return Corrupted(f"bits flipped {flips}", bytes(flipped), base.suffix)


@st.composite
def text_corruptions(draw: st.DrawFn, base: Base) -> Corrupted:
    """Structure, encoding, line ends and values of a delimited text file."""
    lines = _lines(base)
    data_lines = range(base.header_lines, len(lines) - 1)
    what = draw(
        st.sampled_from(
            ["drop-column", "duplicate-column", "delimiter", "encoding", "line-ends", "huge-field",
             "not-a-number", "not-finite", "odd-text", "any-text", "empty", "header-only", "duplicate-row"]
        )
    )  # fmt: skip
    if what in ("drop-column", "duplicate-column"):
        column = draw(st.integers(0, 40))
        edited = _column_edit(base, lines, column, duplicate=what == "duplicate-column")
        return Corrupted(f"{what} {column}", _join(base, edited), base.suffix)
    if what == "delimiter":
        other = draw(st.sampled_from([d for d in [",", ";", "\t", " ", "|"] if d != base.delimiter]))
        return Corrupted(
            f"delimiter {other!r}", base.data.replace(base.delimiter.encode(), other.encode()), base.suffix
        )
    if what == "encoding":
        encoding = draw(st.sampled_from(["latin-1", "utf-8", "utf-8-sig", "utf-16", "cp1252"]))
        line = draw(st.sampled_from(data_lines))
        accented = _cell_edit(
            base, lines, line, draw(st.integers(0, 40)), draw(st.sampled_from(["é", "ü", "€", "Ø"]))
        )
        return Corrupted(f"encoded {encoding}", _join(base, accented, encoding), base.suffix)
    if what == "line-ends":
        end = draw(st.sampled_from(["\r\n", "\r", "\n\n", "\r\r\n"]))
        return Corrupted(
            f"line ends {end!r}", "\n".join(lines).replace("\n", end).encode(base.encoding), base.suffix
        )
    if what == "empty":
        return Corrupted(
            "empty", draw(st.sampled_from([b"", b"\n", b"   \n\n", b"\xef\xbb\xbf"])), base.suffix
        )
    if what == "header-only":
        return Corrupted("header only", _join(base, [*lines[: base.header_lines], ""]), base.suffix)
    line = draw(st.sampled_from(data_lines))
    if what == "duplicate-row":
        return Corrupted(
            f"line {line + 1} twice", _join(base, [*lines[: line + 1], *lines[line:]]), base.suffix
        )
    values: dict[str, st.SearchStrategy[str]] = {
        "huge-field": st.sampled_from(["x", "9", "A", "é"]).flatmap(
            lambda c: st.integers(10_000, 300_000).map(lambda n: c * n)
        ),
        "not-a-number": st.sampled_from(NOT_NUMBERS),
        "not-finite": st.sampled_from(NOT_FINITE),
        "odd-text": st.sampled_from(ODD_TEXT),
        "any-text": st.text(max_size=20),
    }
    value = draw(values[what])
    column = draw(st.integers(0, 40))
    edited = _cell_edit(base, lines, line, column, value)
    return Corrupted(
        f"{what} line {line + 1} column {column}: {value[:30]!r}", _join(base, edited), base.suffix
    )


@st.composite
def gzip_corruptions(draw: st.DrawFn, base: Base) -> Corrupted:
    """Compressed files that lie: a .gz name on plain text, a cut or damaged gzip, a gzip of garbage, gzip
    under a plain name."""
    packed = gzip.compress(base.data)
    what = draw(
        st.sampled_from(["plain-named-gz", "truncated", "damaged", "garbage", "gzip-named-plain", "valid"])
    )
    if what == "plain-named-gz":
        return Corrupted(what, base.data, base.suffix + ".gz")
    if what == "truncated":
        cut = draw(st.integers(0, len(packed) - 1))
        return Corrupted(f"gzip cut at {cut}", packed[:cut], base.suffix + ".gz")
    if what == "damaged":
        damaged = bytearray(packed)
        position = draw(st.integers(10, len(packed) - 1))  # past the gzip header: the deflate stream
        damaged[position] ^= 1 << draw(st.integers(0, 7))
        return Corrupted(f"gzip with byte {position} damaged", bytes(damaged), base.suffix + ".gz")
    if what == "garbage":
        garbage = draw(st.binary(min_size=0, max_size=200))
        return Corrupted("gzip of garbage", gzip.compress(garbage), base.suffix + ".gz")
    if what == "gzip-named-plain":
        return Corrupted(what, packed, base.suffix)
    return Corrupted(what, packed, base.suffix + ".gz")


@st.composite
def xlsx_corruptions(
    draw: st.DrawFn, base: Base, table: tuple[list[str], list[list[XlsxValue]]]
) -> Corrupted:
    """A workbook with a cell, a column or its rows changed (written by xlsxwriter), or its bytes broken."""
    header, rows = list(table[0]), [list(row) for row in table[1]]
    kinds = ["bytes", "drop-column", "duplicate-column", "cell", "empty-sheet", "header-only", "huge-cell"]
    what = draw(st.sampled_from([*kinds, "withhold-fact"] if base.facts else kinds))
    if what == "bytes":
        return draw(byte_corruptions(base))
    if what == "withhold-fact":
        edits = draw(fact_edits(base, len(rows)))
        return Corrupted(_facts_label(edits), _xlsx_with_facts(table, edits), base.suffix)
    column = draw(st.integers(0, len(header) - 1))
    if what == "drop-column":
        header = header[:column] + header[column + 1 :]
        rows = [row[:column] + row[column + 1 :] for row in rows]
    elif what == "duplicate-column":
        header.insert(column, header[column])
        rows = [[*row[:column], row[column], *row[column:]] for row in rows]
    elif what == "empty-sheet":
        header, rows = [], []
    elif what == "header-only":
        rows = []
    else:
        values: st.SearchStrategy[XlsxValue] = (
            st.sampled_from(["x" * 32_000, "9" * 32_000])
            if what == "huge-cell"
            else st.one_of(
                st.sampled_from([*NOT_NUMBERS, *NOT_FINITE, *ODD_TEXT]),
                st.text(max_size=20),
                st.floats(allow_nan=False, allow_infinity=False),
                st.dates(),
            )
        )
        row = draw(st.integers(0, len(rows) - 1))
        value = draw(values)
        rows[row][column] = value
        what = f"{what} row {row + 2} {header[column]}: {str(value)[:30]!r}"
    with tempfile.TemporaryDirectory() as scratch:
        path = write_xlsx(Path(scratch) / "f.xlsx", header, rows)
        return Corrupted(what, path.read_bytes(), base.suffix)


def corruptions(base: Base) -> st.SearchStrategy[Corrupted]:
    strategies = [byte_corruptions(base), text_corruptions(base), gzip_corruptions(base)]
    return st.one_of(*strategies, *([fact_corruptions(base)] if base.facts else []))


# --- the invariant --------------------------------------------------------------------------------------


def assert_refused_whole_or_every_row_counted(
    db: Path, base: Base, bad: Corrupted, scratch: Path, max_reject_fraction: float
) -> None:
    """Either a CgdwError naming the file (one line) and the database unchanged, or every row accounted
    for: read = loaded + quarantined, the quarantine holds exactly the rejected lines and the facts
    withheld from loaded lines (assert_quarantine_is_exact), the run finished."""
    path = scratch / f"{base.name}_bad{bad.suffix}"
    path.write_bytes(bad.data)
    before = fingerprint(db)
    try:
        report = load_source(db, base.kind, path, **base.options, max_reject_fraction=max_reject_fraction)
    except CgdwError as exc:
        message = str(exc)
        assert str(path) in message, f"{bad.label}: the message does not name the file: {message}"
        assert "\n" not in message, f"{bad.label}: the message is not one line: {message!r}"
        assert fingerprint(db) == before, f"{bad.label}: a refused file changed the database"
        return
    assert report.rows_read == report.rows_loaded + report.rows_rejected, bad.label
    if report.noop:
        return
    assert_quarantine_is_exact(db, report, bad.label)
    stored = query(
        db,
        "SELECT status, rows_read, rows_loaded, rows_rejected FROM etl_run WHERE etl_run_id = $run",
        {"run": report.run_id},
    )
    assert stored == [("succeeded", report.rows_read, report.rows_loaded, report.rows_rejected)], bad.label
    assert query(db, "SELECT count(*) FROM etl_run WHERE status = 'running'") == [(0,)], bad.label


def assert_quarantine_is_exact(db: Path, report: LoadReport, label: str) -> None:
    """rejected_record holds the problems of the lines quarantined whole (as many lines as rows_rejected)
    and every fact withheld from a loaded line (LoadReport.fact_issues), each once: none lost, none more.
    A withheld fact of a line quarantined whole is in the line's quarantine, not counted apart."""
    problem = ("column", "value", "rule", "message")
    stored = query(
        db,
        "SELECT line, column_name, value, rule, message FROM rejected_record WHERE etl_run_id = $run",
        {"run": report.run_id},
    )
    whole = report.issues.select(LINE, *problem).rows()
    withheld = report.fact_issues.select(LINE, *problem).rows()
    withheld_lines = {row[0] for row in withheld}
    rejected_lines = {row[0] for row in stored if row[0] not in withheld_lines}
    assert len(rejected_lines) == report.rows_rejected, label
    assert rejected_lines == {row[0] for row in whole}, label
    assert not rejected_lines & withheld_lines, f"{label}: a line both loaded and quarantined whole"
    assert Counter(stored) == Counter(whole) + Counter(withheld), label
    counts = query(db, "SELECT counts_json FROM etl_run WHERE etl_run_id = $run", {"run": report.run_id})
    assert json.loads(str(counts[0][0]))["values_withheld"] == len(withheld), label


def check(prepared: Fixtures, name: str, bad: Corrupted, max_reject_fraction: float = 1.0) -> None:
    base = prepared.bases[name]
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "warehouse.duckdb"
        shutil.copy(prepared.warehouses[base.prerequisites], db)
        assert_refused_whole_or_every_row_counted(db, base, bad, Path(scratch), max_reject_fraction)


def _property(name: str) -> Callable[[Fixtures], None]:
    """A hypothesis test of one loader kind over every corruption class."""

    @PROFILE
    @given(data=st.data())
    def run(prepared: Fixtures, data: st.DataObject) -> None:
        base = prepared.bases[name]
        strategy = xlsx_corruptions(base, prepared.fralle) if name == "fralle" else corruptions(base)
        bad = data.draw(strategy, label="corruption")
        # 1.0 quarantines every bad row; the default 5% refuses most corrupted files whole.
        check(prepared, name, bad, data.draw(st.sampled_from([1.0, 0.05]), label="max_reject_fraction"))

    return run


test_graall_export_never_half_loaded = _property("graall")
test_fralle_workbook_never_half_loaded = _property("fralle")
test_lab_export_never_half_loaded = _property("lab")
test_sample_manifest_never_half_loaded = _property("samples")
test_mrd_results_never_half_loaded = _property("mrd")
test_cnv_calls_never_half_loaded = _property("cnv")
test_vcf_never_half_loaded = _property("vcf")
test_maf_never_half_loaded = _property("maf")
test_seg_never_half_loaded = _property("seg")


def test_the_base_files_load_cleanly(prepared: Fixtures) -> None:
    """The corruptions start from valid files: every base file loads with nothing quarantined."""
    for name, base in prepared.bases.items():
        with tempfile.TemporaryDirectory() as scratch:
            db = Path(scratch) / "warehouse.duckdb"
            shutil.copy(prepared.warehouses[base.prerequisites], db)
            path = Path(scratch) / f"{name}{base.suffix}"
            path.write_bytes(base.data)
            report = load_source(db, base.kind, path, **base.options)
            assert report.rows_read >= 5 and report.rows_rejected == 0, (name, report.summary())


@pytest.mark.parametrize("name", ["graall", "fralle"])
def test_the_fact_edits_withhold_facts_and_the_quarantine_keeps_them(prepared: Fixtures, name: str) -> None:
    """The fact-level class of the properties does make fact-level problems: each edit, on every line,
    withholds facts of lines that load, under each per-fact rule in all, and none is lost."""
    base = prepared.bases[name]
    rows = len(prepared.fralle[1]) if name == "fralle" else len(_lines(base)) - 1 - base.header_lines
    rules: set[str] = set()
    for edit in base.facts:
        edits = [(row, edit) for row in range(rows)]
        data = (
            _xlsx_with_facts(prepared.fralle, edits)
            if name == "fralle"
            else _join(base, _text_with_facts(base, edits))
        )
        with tempfile.TemporaryDirectory() as scratch:
            db = Path(scratch) / "warehouse.duckdb"
            shutil.copy(prepared.warehouses[base.prerequisites], db)
            path = Path(scratch) / f"{name}{base.suffix}"
            path.write_bytes(data)
            report = load_source(db, base.kind, path, **base.options, max_reject_fraction=1.0)
            assert report.fact_issues.height, (edit, report.summary())
            assert_quarantine_is_exact(db, report, str(edit))
        rules |= set(report.fact_issues.get_column("rule"))
    assert rules == FACT_RULES


# --- regressions: the minimal inputs hypothesis found, as plain tests ------------------------------------


def test_a_zip_that_is_not_a_workbook_is_refused_in_one_line(db_path: Path, tmp_path: Path) -> None:
    """Found: an empty .xlsx gave fastexcel's multi-line 'Context:' error as the message."""
    bad = tmp_path / "fralle.xlsx"
    bad.write_bytes(b"")
    before = fingerprint(db_path)
    with pytest.raises(CgdwError, match=r"not a readable xlsx workbook: .*Could not find EOCD$") as excinfo:
        load_source(db_path, "clinical", bad, layout="fralle")
    assert str(bad) in str(excinfo.value) and "\n" not in str(excinfo.value)
    assert fingerprint(db_path) == before


def test_a_workbook_with_a_damaged_sheet_is_refused_not_a_traceback(db_path: Path, tmp_path: Path) -> None:
    """Found: one flipped bit in the compressed sheet XML passed the zip directory check and raised a raw
    CalamineError ('Invalid checksum', 'corrupt deflate stream') from load_sheet_by_name."""
    workbook = write_xlsx(tmp_path / "ok.xlsx", ["patient_id"], [["FR2000-0001"]])
    data = bytearray(workbook.read_bytes())
    start = data.index(b"xl/worksheets/sheet1.xml") + len(b"xl/worksheets/sheet1.xml")
    data[start + 10] ^= 1  # inside the deflated sheet: its CRC no longer matches
    bad = tmp_path / "fralle.xlsx"
    bad.write_bytes(bytes(data))
    with pytest.raises(CgdwError, match="sheet 'patients' is not readable: calamine error"):
        load_source(db_path, "clinical", bad, layout="fralle")


def test_a_line_cut_short_is_refused_not_padded_with_empty_values(db_path: Path, tmp_path: Path) -> None:
    """Found: a manifest truncated inside its last line loaded that line with its missing fields as NULL
    (polars pads short lines), and crashed on 'NOT NULL constraint failed: rejected_record.message'
    because the quarantine message was built from those NULLs. A short line is now a ragged line."""
    from tests.helpers import ALIVE, MANIFEST_HEADER, write_graall

    load_source(db_path, "clinical", write_graall(tmp_path / "g.csv", ALIVE), layout="graall")
    manifest = tmp_path / "samples.tsv"
    row = "S1-DX\tGRAALL\tG03-00001\tdiagnosis\tBM\t0\tTALL80\t1\tGRCh37\tpipe 1"
    manifest.write_text(f"{MANIFEST_HEADER}\n{row}\nS2-DX\tGRAALL\tG03-00001\tdiagnosis\tBM\t0\tT")
    before = fingerprint(db_path)
    with pytest.raises(CgdwError, match=r"line 3 has 7 fields, the header has 10$"):
        load_source(db_path, "samples", manifest, max_reject_fraction=1.0)
    assert fingerprint(db_path) == before


def test_a_quarantine_message_built_from_empty_values_is_never_null(db_path: Path, tmp_path: Path) -> None:
    """The same crash with the fields present but empty: the message names them as (empty)."""
    from tests.helpers import ALIVE, MANIFEST_HEADER, write_graall

    load_source(db_path, "clinical", write_graall(tmp_path / "g.csv", ALIVE), layout="graall")
    manifest = tmp_path / "samples.tsv"
    row = "S1-DX\tGRAALL\tG03-00001\tdiagnosis\tBM\t0\tTALL80\t1\tGRCh37\tpipe 1"
    manifest.write_text(f"{MANIFEST_HEADER}\n{row}\nS2-DX\tGRAALL\tG03-00001\tdiagnosis\tBM\t0\tT\t\t\t\n")
    report = load_source(db_path, "samples", manifest, max_reject_fraction=1.0)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (2, 1, 1)
    messages = [m for (m,) in query(db_path, "SELECT message FROM rejected_record WHERE line = 3")]
    assert "no assay T version (empty) on (empty) in the sequencing_assay reference table" in messages


def test_a_maf_with_a_broken_header_is_refused_in_one_line(db_path: Path, tmp_path: Path) -> None:
    """Found: one flipped bit in '#version 2.4' ('"version') made the comment a header line; polars'
    error and its 'Consider setting truncate_ragged_lines' hint became a three-line message."""
    maf = tmp_path / "m.maf"
    maf.write_text('"version 2.4\nHugo_Symbol\tChromosome\nIKZF1\t7\n')
    with pytest.raises(CgdwError, match="not a tab-separated MAF: found more fields") as excinfo:
        load_source(db_path, "maf", maf)
    assert str(maf) in str(excinfo.value) and "\n" not in str(excinfo.value)


def _damaged_gzip(text: bytes) -> bytes:
    """A gzip whose deflate stream is damaged (zlib: 'invalid distance too far back'), its header intact."""
    data = bytearray(gzip.compress(text))
    data[15] ^= 0x10
    return bytes(data)


@pytest.mark.parametrize("kind", ["maf", "vcf"])
def test_a_damaged_gzip_is_refused_not_a_zlib_traceback(db_path: Path, tmp_path: Path, kind: str) -> None:
    """Found: a bit flipped inside the deflate stream raised zlib.error, which is not an OSError, from
    gzip.decompress (MAF) and the VCF header reader."""
    header = b"Hugo_Symbol\tChromosome\n" if kind == "maf" else b"##fileformat=VCFv4.2\n"
    bad = tmp_path / f"damaged.{kind}.gz"
    bad.write_bytes(_damaged_gzip(header * 50))
    before = fingerprint(db_path)
    with pytest.raises(CgdwError, match=r"unreadable or truncated .*file: Error -3 while decompressing"):
        load_source(db_path, kind, bad)
    assert fingerprint(db_path) == before


@pytest.mark.parametrize(("kind", "header"), [("maf", "Hugo_Symbol"), ("seg", "ID")])
def test_a_repeated_column_in_a_maf_or_seg_is_refused(
    db_path: Path, tmp_path: Path, kind: str, header: str
) -> None:
    """Found while writing docs/bad-input.md: polars renamed a repeated MAF / SEG header to
    NAME_duplicated_0, so the file loaded with every later column shifted (all rows quarantined with
    unrelated messages). Layout readers refused it already; now every tabular reader does."""
    bad = tmp_path / f"dup.{kind}"
    bad.write_text(f"{header}\t{header}\tChromosome\nA\tA\t7\n")
    with pytest.raises(CgdwError, match=f"duplicated columns: {header}$"):
        load_source(db_path, kind, bad)


# --- the catalogue (docs/bad-input.md): one plain example per class, with what the user sees -----------

Mangle = Callable[[bytes], bytes]
CATALOGUE: list[tuple[str, str, Mangle, str, str]] = [
    # (id, base, mangle, file suffix, expected: "refused: <regex>" | "loaded" | "quarantined: <rule>")
    ("empty", "lab", lambda d: b"", ".tsv", "refused: the file is empty"),
    ("only-a-bom", "lab", lambda d: b"\xef\xbb\xbf", ".tsv", "refused: the file is empty"),
    ("bom-on-latin1", "graall", lambda d: b"\xef\xbb\xbf" + d, ".csv", "refused: byte-order mark but layout"),
    ("bom-on-utf8", "lab", lambda d: b"\xef\xbb\xbf" + d, ".tsv", "loaded"),
    ("utf8-as-latin1", "graall", lambda d: d.decode("latin-1").encode(), ".csv", "refused: UTF-8 encoded"),
    (
        "latin1-as-utf8",
        "lab",
        lambda d: d.replace(b"NEG", b"N\xc9G", 1),
        ".tsv",
        r"refused: line 2: byte 0xc9",
    ),
    ("utf16", "lab", lambda d: d.decode().encode("utf-16"), ".tsv", "refused: byte 0xff is not valid utf-8"),
    ("crlf", "graall", lambda d: d.replace(b"\n", b"\r\n"), ".csv", "loaded"),
    ("cr-only", "graall", lambda d: d.replace(b"\n", b"\r"), ".csv", "loaded"),
    ("crlf-vcf", "vcf", lambda d: d.replace(b"\n", b"\r\n"), ".vcf", "loaded"),
    ("cr-only-maf", "maf", lambda d: d.replace(b"\n", b"\r"), ".maf", "refused: line ends are CR only"),
    ("cr-only-seg", "seg", lambda d: d.replace(b"\n", b"\r"), ".seg", "refused: line ends are CR only"),
    (
        "cr-only-vcf-gz",
        "vcf",
        lambda d: gzip.compress(d.replace(b"\n", b"\r")),
        ".vcf.gz",
        "refused: line ends are CR only",
    ),
    ("wrong-delimiter", "graall", lambda d: d.replace(b";", b","), ".csv", "refused: missing columns"),
    (
        "cut-mid-line",
        "lab",
        lambda d: d[: d.index(b"\t", len(d) // 2)],
        ".tsv",
        r"refused: line \d+ has \d+ fields",
    ),
    ("cut-mid-record", "vcf", lambda d: d[:-40], ".vcf", r"refused: line \d+: \d+ fields, the header has"),
    ("gz-name-plain", "vcf", lambda d: d, ".vcf.gz", "loaded"),
    ("gzip-cut", "maf", lambda d: gzip.compress(d)[:200], ".maf.gz", "refused: unreadable or truncated"),
    ("gzip-damaged", "vcf", lambda d: _damaged_gzip(d), ".vcf.gz", "refused: unreadable or truncated"),
    ("gzip-of-garbage", "vcf", lambda d: gzip.compress(b"\x00garbage"), ".vcf.gz", "refused: not a VCF"),
    ("gzip-to-a-layout", "lab", gzip.compress, ".tsv.gz", "refused: byte 0x8b is not valid utf-8"),
    (
        "huge-field",
        "lab",
        lambda d: d.replace(b"RQ-PCR", b"x" * 100_000, 1),
        ".tsv",
        "quarantined: code:method",
    ),
    (
        "number-as-text",
        "graall",
        lambda d: d.replace(b";36,7;", b";trente;", 1),
        ".csv",
        "quarantined: number",
    ),
    ("nan", "graall", lambda d: d.replace(b";36,7;", b";NaN;", 1), ".csv", "quarantined: number"),
    ("infinity", "mrd", lambda d: d.replace(b"3.5E-2", b"inf", 1), ".tsv", "quarantined: number"),
    ("seg-nan", "seg", lambda d: d.replace(b"-0.0254", b"NaN", 1), ".seg", "quarantined: number"),
]


@pytest.mark.parametrize(
    ("base_name", "mangle", "suffix", "expected"),
    [case[1:] for case in CATALOGUE],
    ids=[case[0] for case in CATALOGUE],
)
def test_each_class_of_bad_input_gets_its_answer(
    prepared: Fixtures, base_name: str, mangle: Mangle, suffix: str, expected: str
) -> None:
    """What docs/bad-input.md promises: refused whole with a message, loaded, or one row quarantined."""
    base = prepared.bases[base_name]
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "warehouse.duckdb"
        shutil.copy(prepared.warehouses[base.prerequisites], db)
        path = Path(scratch) / f"{base_name}{suffix}"
        path.write_bytes(mangle(base.data))
        before = fingerprint(db)
        if expected.startswith("refused: "):
            with pytest.raises(CgdwError, match=expected.removeprefix("refused: ")) as excinfo:
                load_source(db, base.kind, path, **base.options)
            assert str(path) in str(excinfo.value) and excinfo.value.exit_code == 3
            assert fingerprint(db) == before
            return
        report = load_source(db, base.kind, path, **base.options, max_reject_fraction=1.0)
        rules = set(report.issues.get_column("rule"))
        if expected == "loaded":
            assert report.rows_rejected == 0 and report.rows_loaded >= 5, report.summary()
        else:
            assert report.rows_rejected == 1 and rules == {expected.removeprefix("quarantined: ")}, rules


def test_a_missing_file_is_refused(db_path: Path, tmp_path: Path) -> None:
    with pytest.raises(CgdwError, match=r"no such file$"):
        load_source(db_path, "lab", tmp_path / "absent.tsv")


def test_a_huge_field_is_quoted_short_in_the_message_and_kept_whole_in_the_value(prepared: Fixtures) -> None:
    """Found while writing docs/bad-input.md: a 100,000-character value was copied whole into the
    quarantine message that `cgdw rejects` prints."""
    base = prepared.bases["lab"]
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "warehouse.duckdb"
        shutil.copy(prepared.warehouses[base.prerequisites], db)
        path = Path(scratch) / "lab.tsv"
        path.write_bytes(base.data.replace(b"RQ-PCR", b"x" * 100_000, 1))
        load_source(db, "lab", path, max_reject_fraction=1.0)
        [(value, message)] = query(db, "SELECT value, message FROM rejected_record")
    assert len(str(value)) == 100_000
    assert str(message).startswith("'" + "x" * 80 + "…' is not a method code") and len(str(message)) < 200


def test_a_field_longer_than_the_csv_modules_limit_is_a_value_not_a_traceback(
    db_path: Path, tmp_path: Path
) -> None:
    """Found by a longer random run: a 132,000-character field raised '_csv.Error: field larger than
    field limit (131072)' from the line counting that follows polars' read."""
    from tests.helpers import ALIVE, write_graall

    huge = "x" * 132_000
    bad = write_graall(tmp_path / "g.csv", ALIVE.replace("G03-00001", huge))
    report = load_source(db_path, "clinical", bad, layout="graall", max_reject_fraction=1.0)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (1, 1, 0)  # any patient number


def test_a_vcf_header_line_without_id_is_refused(db_path: Path, tmp_path: Path) -> None:
    """Found by a longer random run: one flipped bit turned '##contig=<ID=7,...>' into '<HD=7,...>' and
    the header reader raised KeyError: 'ID'."""
    bad = tmp_path / "noid.vcf"
    bad.write_text("##fileformat=VCFv4.2\n##contig=<HD=7,length=159138663>\n#CHROM\tPOS\n")
    before = fingerprint(db_path)
    with pytest.raises(CgdwError, match=r"line 2: the ##contig header line has no ID$"):
        load_source(db_path, "vcf", bad)
    assert fingerprint(db_path) == before


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    lines=st.lists(st.lists(st.text(alphabet="ab \t;", max_size=3), max_size=4), max_size=6),
    end=st.sampled_from(["", "\n", "\n\n"]),
    delimiter=st.sampled_from(["\t", ";"]),
)
def test_the_fast_ragged_line_check_says_what_the_csv_module_says(
    lines: list[list[str]], end: str, delimiter: str
) -> None:
    """Issue 16: files without quotes are checked by counting delimiters in polars; quoted files by the
    csv module. On any text without quotes both must name the same first ragged line (or none)."""
    from etl.load.readers import _ragged_line, _ragged_line_quoted

    text = "\n".join(delimiter.join(fields) for fields in lines) + end
    assert _ragged_line(text, delimiter) == _ragged_line_quoted(text, delimiter)
