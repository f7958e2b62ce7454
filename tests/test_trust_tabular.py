"""Trusting a tabular export: what cgdw does with values it cannot read for certain (ambiguous numbers,
spreadsheet errors and formulas), with a field too large to hold, with an export older than the one
already loaded, and what a run records about the patients an export no longer holds."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from etl.errors import CgdwError, FileRejected
from etl.load.framework import LoadReport
from etl.load.layout import load_layout
from etl.privacy import patient_key
from etl.sources.registry import load_source
from tests.helpers import (
    ALIVE,
    DEAD,
    FRALLE_ROW,
    MANIFEST_HEADER,
    REFRACTORY,
    REPO,
    TEST_KEY,
    cgdw,
    fingerprint,
    query,
    scalar,
    write_fralle,
    write_graall,
)

GRAALL_TOML = (REPO / "etl" / "sources" / "layouts" / "graall.toml").read_text(encoding="utf-8")


def load(db: Path, path: Path, layout: str | Path = "graall", **options: object) -> LoadReport:
    return load_source(db, "clinical", path, layout=layout, **options)  # type: ignore[arg-type]


def graall_layout(tmp_path: Path, *head_lines: str) -> Path:
    """The GRAALL layout with more keys under [layout] (a site's own copy of it)."""
    path = tmp_path / "graall_site.toml"
    extra = "\n".join(head_lines)
    path.write_text(GRAALL_TOML.replace('date_format = "%d/%m/%Y"', f'date_format = "%d/%m/%Y"\n{extra}'))
    return path


def rejects(db: Path) -> list[tuple[object, ...]]:
    return query(db, "SELECT line, column_name, value, rule FROM rejected_record ORDER BY line, column_name")


# --- 1. numbers that could be read two ways are quarantined, never guessed ------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [("GB_MM3", "123.400"), ("GB_MM3", "1.234.567"), ("AGE_DIAG", "12.5")],
    ids=["thousands-group", "two-groups", "decimal-point"],
)
def test_a_point_in_a_decimal_comma_export_is_ambiguous_and_quarantined(
    db_path: Path, tmp_path: Path, column: str, value: str
) -> None:
    """GRAALL writes decimals with a comma: '123.400' white cells per mm3 could be 123,400 (a thousands
    point) or 123.4; read as 123.4 it became 0.12 x10^9/L, inside the range check, 1000 times too low."""
    field = {"GB_MM3": ";74100;", "AGE_DIAG": ";23,5;"}[column]
    odd = ALIVE.replace(field, f";{value};")
    report = load(db_path, write_graall(tmp_path / "g.csv", odd, DEAD, REFRACTORY), max_reject_fraction=0.5)
    assert (report.rows_loaded, report.rows_rejected) == (2, 1)
    assert rejects(db_path) == [(2, column, value, "number:ambiguous")]
    [message] = query(db_path, "SELECT message FROM rejected_record")
    assert "ambiguous" in str(message[0]) and "thousands_separator" in str(message[0])


def test_a_comma_in_a_decimal_point_export_is_ambiguous_and_quarantined(
    db_path: Path, tmp_path: Path
) -> None:
    odd = {**FRALLE_ROW, "patient_id": "FR2000-0002", "wbc_g_l": "1,234"}
    load(db_path, write_fralle(tmp_path / "f.xlsx", FRALLE_ROW, odd), "fralle", max_reject_fraction=0.5)
    assert rejects(db_path) == [(3, "wbc_g_l", "1,234", "number:ambiguous")]


def test_a_layout_that_declares_its_thousands_separator_reads_grouped_numbers(
    db_path: Path, tmp_path: Path
) -> None:
    layout = graall_layout(tmp_path, 'thousands_separator = "."')
    grouped = ALIVE.replace(";74100;", ";123.400;")
    misgrouped = DEAD.replace(";2800;", ";12.5;")  # not groups of three: a decimal point after all?
    load(
        db_path,
        write_graall(tmp_path / "g.csv", grouped, misgrouped, REFRACTORY),
        layout,
        max_reject_fraction=0.5,
    )
    assert query(db_path, "SELECT wbc_g_per_l FROM baseline ORDER BY 1") == [(123.4,), (150.0,)]
    assert rejects(db_path) == [(3, "GB_MM3", "12.5", "number:ambiguous")]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            'thousands_separator = ","',
            "thousands_separator ',' must be one character, not a digit, the decimal",
        ),
        ('export_date_pattern = "_(unclosed"', "invalid layout: missing \\), unterminated subpattern"),
    ],
    ids=["separator-is-the-decimal-mark", "pattern-not-a-regex"],
)
def test_a_layout_whose_number_or_date_keys_cannot_work_is_refused(
    tmp_path: Path, key: str, message: str
) -> None:
    with pytest.raises(CgdwError, match=message):
        load_layout(graall_layout(tmp_path, key))


# --- 2. spreadsheet errors and uncomputed formulas are quarantined with their cell ----------------------

EXCEL_ERRORS = {
    "=NA()": "#N/A",
    '=1+"a"': "#VALUE!",
    "=1/0": "#DIV/0!",
    "=#REF!": "#REF!",
    "=NOSUCHFUNCTION()": "#NAME?",
    "=SQRT(-1)": "#NUM!",
    "=A1 B1": "#NULL!",
}


def test_excel_error_cells_are_quarantined_with_the_error_they_show(db_path: Path, tmp_path: Path) -> None:
    """An error cell used to read as an empty cell: an optional WBC of #N/A loaded as 'not measured'."""
    rows = [
        {**FRALLE_ROW, "patient_id": f"FR2000-{n:04d}", "wbc_g_l": (formula, error)}
        for n, (formula, error) in enumerate(EXCEL_ERRORS.items(), start=1)
    ]
    valid = {**FRALLE_ROW, "patient_id": "FR2000-0099"}
    report = load(
        db_path,
        write_fralle(tmp_path / "f.xlsx", *rows, valid, computed=True),
        "fralle",
        max_reject_fraction=1.0,
    )
    assert (report.rows_loaded, report.rows_rejected) == (1, 7)
    assert rejects(db_path) == [
        (line, "wbc_g_l", error, "excel_error") for line, error in enumerate(EXCEL_ERRORS.values(), start=2)
    ]


def test_an_excel_error_written_as_text_in_a_csv_is_quarantined(db_path: Path, tmp_path: Path) -> None:
    """A spreadsheet saved as CSV writes its error cells as text: '#N/A' is not a patient number."""
    load(
        db_path,
        write_graall(tmp_path / "g.csv", ALIVE.replace("G03-00001", "#N/A"), DEAD, REFRACTORY),
        max_reject_fraction=0.5,
    )
    assert rejects(db_path) == [(2, "NUM_PATIENT", "#N/A", "excel_error")]


def test_a_formula_the_workbook_never_computed_is_quarantined(db_path: Path, tmp_path: Path) -> None:
    """xlsxwriter (and any writer that asks for recalculation on load) stores 0 as every formula's value:
    the age below loaded as 0 years."""
    uncomputed = {**FRALLE_ROW, "patient_id": "FR2000-0002", "age_at_diagnosis": ("=12+0.5", None)}
    load(
        db_path, write_fralle(tmp_path / "f.xlsx", FRALLE_ROW, uncomputed), "fralle", max_reject_fraction=0.5
    )
    assert rejects(db_path) == [(3, "age_at_diagnosis", "=12+0.5", "excel_formula")]


def test_a_formula_without_a_cached_value_is_quarantined_and_a_computed_one_loads(
    db_path: Path, tmp_path: Path
) -> None:
    computed = {**FRALLE_ROW, "age_at_diagnosis": ("=12+0.5", 12.5)}
    empty = {**FRALLE_ROW, "patient_id": "FR2000-0002", "wbc_g_l": ("=B2*1000", "")}
    path = write_fralle(tmp_path / "f.xlsx", computed, empty, computed=True)
    load(db_path, path, "fralle", max_reject_fraction=0.5)
    assert rejects(db_path) == [(3, "wbc_g_l", "=B2*1000", "excel_formula")]
    assert query(db_path, "SELECT age_at_diagnosis_years FROM enrolment") == [(12.5,)]


# --- 3. a field too large to hold refuses the file before it is read whole ------------------------------

LIMIT = 1 << 20  # 1 MiB, docs/bad-input.md


@pytest.mark.parametrize(
    ("row", "line", "column"),
    [
        (DEAD.replace("G03-00002", "G" * (LIMIT + 1)), 3, "NUM_PATIENT"),
        (DEAD.replace(";LEUCÉMIE;", ';"' + "long\ncause " * (LIMIT // 10) + '";'), 3, "CAUSE_DECES"),
        (
            DEAD.replace(";LEUCÉMIE;", ';"never closed;' + ("x;" * 20 + "\n") * (LIMIT // 40)),
            3,
            "CAUSE_DECES",
        ),
    ],
    ids=["plain", "quoted-across-lines", "runaway-quote"],
)
def test_a_field_over_one_mebibyte_refuses_the_file_naming_line_and_column(
    db_path: Path, tmp_path: Path, row: str, line: int, column: str
) -> None:
    load(db_path, write_graall(tmp_path / "ok.csv", ALIVE))
    before = fingerprint(db_path)
    with pytest.raises(FileRejected, match=rf"line {line}, column {column}: a field of more than 1 MiB"):
        load(db_path, write_graall(tmp_path / "g.csv", ALIVE, row))
    assert fingerprint(db_path) == before


def test_a_field_of_exactly_one_mebibyte_loads(db_path: Path, tmp_path: Path) -> None:
    report = load(db_path, write_graall(tmp_path / "g.csv", DEAD.replace("G03-00002", "G" * LIMIT)))
    assert report.rows_loaded == 1  # any patient number will do


PEAK_RSS = """
import re, sys
from pathlib import Path
from etl.errors import FileRejected
from etl.load.layout import load_layout
from etl.load.readers import read_source
try:
    read_source(Path(sys.argv[1]), load_layout("graall"))
except FileRejected:
    pass
print(re.search(r"VmHWM:\\s*(\\d+) kB", Path("/proc/self/status").read_text())[1])
"""


def peak_rss_kib(path: Path) -> int:
    """The peak memory of a process that reads `path` as a GRAALL export (its own high-water mark: a
    child's ru_maxrss starts at its parent's size when it was forked)."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(path)], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_memory_is_bounded_by_the_rows_not_by_one_huge_field(tmp_path: Path) -> None:
    """A 128 MB patient number made `cgdw validate` peak at 1.8 GB (15 times the field): polars, the csv
    module and io.StringIO each held it several times. It is refused after its first mebibyte now."""
    field_bytes = 64 << 20
    small = peak_rss_kib(write_graall(tmp_path / "small.csv", ALIVE, DEAD))
    huge = peak_rss_kib(
        write_graall(tmp_path / "huge.csv", ALIVE, DEAD.replace("G03-00002", "G" * field_bytes))
    )
    assert (huge - small) * 1024 < field_bytes // 8, (small, huge)


# --- 4. an export older than the one loaded is refused (it would undo the newer corrections) ----------


def test_an_older_export_is_refused_naming_both_dates_unless_forced(db_path: Path, tmp_path: Path) -> None:
    newer = load(
        db_path,
        write_graall(tmp_path / "march.csv", ALIVE.replace(";74100;", ";64100;")),
        export_date="2024-03-01",
    )
    before = fingerprint(db_path)
    older = write_graall(tmp_path / "january.csv", ALIVE)
    with pytest.raises(
        FileRejected, match=r"exported 2024-01-15, before march.csv \(exported 2024-03-01, run 1\)"
    ) as refused:
        load(db_path, older, export_date="2024-01-15")
    assert refused.value.exit_code == 3 and "--force" in str(refused.value)
    assert fingerprint(db_path) == before

    forced = load(db_path, older, export_date="2024-01-15", force=True)
    assert forced.rows_loaded == 1 and newer.run_id == 1
    dates = query(db_path, "SELECT file_name, snapshot_date FROM source_file ORDER BY source_file_id")
    assert dates == [("march.csv", dt.date(2024, 3, 1)), ("january.csv", dt.date(2024, 1, 15))]


def test_the_export_date_can_come_from_the_file_name(db_path: Path, tmp_path: Path) -> None:
    layout = graall_layout(
        tmp_path, r'export_date_pattern = "_(\\d{8})\\.csv$"', 'export_date_format = "%Y%m%d"'
    )
    load(db_path, write_graall(tmp_path / "graall_20240301.csv", ALIVE), layout)
    with pytest.raises(FileRejected, match=r"exported 2024-01-15, before graall_20240301.csv"):
        load(db_path, write_graall(tmp_path / "graall_20240115.csv", ALIVE, DEAD), layout)
    same_day = load(db_path, write_graall(tmp_path / "graall_20240301b.csv", DEAD), layout)  # no match
    assert "export date unknown" in same_day.summary()
    again = load(db_path, write_graall(tmp_path / "x_20240301.csv", ALIVE, DEAD), layout)
    assert again.rows_loaded == 2 and "exported 2024-03-01" in again.summary()  # equal dates are allowed
    with pytest.raises(FileRejected, match=r"file name gives export date '20240231'.*not a valid date"):
        load(db_path, write_graall(tmp_path / "graall_20240231.csv", ALIVE), layout)


def test_an_unknown_export_date_is_stored_null_said_and_never_compared(db_path: Path, tmp_path: Path) -> None:
    load(db_path, write_graall(tmp_path / "march.csv", ALIVE), export_date="2024-03-01")
    undated = load(db_path, write_graall(tmp_path / "undated.csv", ALIVE, DEAD))
    assert "export date unknown" in undated.summary()
    assert scalar(db_path, "SELECT snapshot_date FROM source_file WHERE file_name = 'undated.csv'") is None
    # Another layout (or trial group) is another series of snapshots.
    fralle = load(db_path, write_fralle(tmp_path / "f.xlsx", FRALLE_ROW), "fralle", export_date="2023-01-01")
    assert fralle.rows_loaded == 1


def test_validate_says_an_older_export_would_be_refused(db_path: Path, tmp_path: Path) -> None:
    load(db_path, write_graall(tmp_path / "march.csv", ALIVE), export_date="2024-03-01")
    report = load(
        db_path, write_graall(tmp_path / "jan.csv", ALIVE, DEAD), export_date="2024-01-15", dry_run=True
    )
    assert report.file_problem is not None and "before march.csv" in report.file_problem


def test_export_date_and_force_from_the_command_line(tmp_path: Path) -> None:
    db = str(tmp_path / "w.duckdb")
    cgdw("db", "upgrade", "--db", db)
    march, january = write_graall(tmp_path / "march.csv", ALIVE), write_graall(tmp_path / "jan.csv", DEAD)

    def run(command: str, path: Path, *options: str) -> subprocess.CompletedProcess[str]:
        return cgdw(command, "clinical", str(path), "-p", "graall", "--db", db, *options)

    assert run("load", march, "--export-date", "2024-03-01").returncode == 0
    checked = run("validate", january, "--export-date", "2024-01-15")
    assert checked.returncode == 3 and "before march.csv" in checked.stdout
    refused = run("load", january, "--export-date", "2024-01-15")
    assert refused.returncode == 3 and "before march.csv (exported 2024-03-01" in refused.stderr
    forced = run("load", january, "--export-date", "2024-01-15", "--force")
    assert forced.returncode == 0, forced.stderr
    typo = run("load", march, "--export-date", "01/03/2024")
    assert typo.returncode == 1 and "--export-date must be a date in YYYY-MM-DD form" in typo.stderr


def test_an_export_date_in_the_future_is_refused(db_path: Path, tmp_path: Path) -> None:
    """A typo (2042) would otherwise refuse every later export until forced."""
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    with pytest.raises(FileRejected, match=f"export date {later} is in the future"):
        load(db_path, write_graall(tmp_path / "g.csv", ALIVE), export_date=later)


# --- 5. the run records which patients an export no longer holds ----------------------------------------


def test_the_run_records_the_keys_of_the_patients_absent_from_the_export(
    db_path: Path, tmp_path: Path
) -> None:
    load(db_path, write_graall(tmp_path / "v1.csv", ALIVE, DEAD, REFRACTORY))
    report = load(db_path, write_graall(tmp_path / "v2.csv", ALIVE))
    assert any(w.startswith("2 GRAALL patients already in the warehouse") for w in report.warnings)
    counts = json.loads(str(scalar(db_path, "SELECT counts_json FROM etl_run WHERE etl_run_id = 2")))
    keys = sorted(patient_key(TEST_KEY.encode(), "GRAALL", p) for p in ("G03-00002", "G05-00003"))
    assert counts["absent_patients"] == keys
    assert "G03-00002" not in json.dumps(counts)  # pseudonymous keys, never the trial's numbers


# --- 6. what a reader's library says is not what the user reads -----------------------------------------


def test_a_whole_number_too_large_for_the_warehouse_is_quarantined_not_a_polars_error(
    db_path: Path, tmp_path: Path
) -> None:
    """'1e30' days from diagnosis raised polars' InvalidOperationError (conversion from f64 to i64)."""
    row = "S-1\tGRAALL\tG03-00001\tdiagnosis\tBM\t1e30\tTALL80\t1\tGRCh37\ttall-pipe 2.3.1"
    path = tmp_path / "samples.tsv"
    path.write_text(f"{MANIFEST_HEADER}\n{row}\n")
    report = load_source(db_path, "samples", path, max_reject_fraction=1.0)
    assert ("days_from_diagnosis", "1e30", "number") in report.issues.select("column", "value", "rule").rows()


def test_a_stray_quote_is_refused_naming_line_and_column_not_in_polars_terms(
    db_path: Path, tmp_path: Path
) -> None:
    """polars said 'CSV malformed: expected 0 rows, actual 1 rows, in chunk starting at row_offset 0'."""
    path = write_graall(tmp_path / "g.csv", ALIVE, DEAD.replace("G03-00002", 'G03-"00002'))
    with pytest.raises(FileRejected, match=r"line 3, column NUM_PATIENT: a quote inside a field") as refused:
        load(db_path, path)
    assert "row_offset" not in str(refused.value) and len(str(refused.value).splitlines()) == 1
