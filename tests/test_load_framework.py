"""The load framework, shown on small GRAALL exports written by the test: what gets stored, what gets
quarantined, what aborts a load, and how a newer snapshot is merged."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.errors import FileRejected, WarehouseLocked
from etl.privacy import patient_key
from etl.sources.registry import load_source
from etl.warehouse import write_lock
from tests.helpers import (
    ALIVE,
    DEAD,
    GRAALL_HEADER,
    REFRACTORY,
    TEST_KEY,
    fingerprint,
    query,
    scalar,
    write_graall,
)


def load(db: Path, path: Path, **options: object) -> object:
    return load_source(db, "clinical", path, layout="graall", **options)  # type: ignore[arg-type]


def test_valid_rows_are_stored_harmonised_with_days_from_diagnosis(db_path: Path, tmp_path: Path) -> None:
    report = load(db_path, write_graall(tmp_path / "g.csv", ALIVE, DEAD, REFRACTORY))
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 3, 0)

    key = patient_key(TEST_KEY.encode(), "GRAALL", "G03-00002")
    row = query(
        db_path,
        """
        SELECT e.sex, e.age_at_diagnosis_years, e.diagnosis_year, b.wbc_g_per_l, b.cns_involvement,
               t.prednisone_response, t.cr_day, t.hsct_day
        FROM patient p JOIN enrolment e USING (patient_id) JOIN baseline b USING (patient_id)
        JOIN treatment_response t USING (patient_id) WHERE p.patient_key = $key
        """,
        {"key": key},
    )
    # 2800 /mm3 = 2.8 x10^9/L; "NE" = not evaluated; 01/02/2004 -> 01/03/2004 is 29 days (leap year).
    assert row == [("F", 45.1, 2004, 2.8, None, "poor", 29, 151)]
    events = query(
        db_path,
        "SELECT event_type, event_seq, day, cause, in_cr FROM outcome_event JOIN patient USING (patient_id) "
        "WHERE patient_key = $key ORDER BY day, event_type",
        {"key": key},
    )
    assert events == [
        ("relapse", 1, 335, None, None),
        ("death", 1, 486, "leukemia", False),
        ("last_follow_up", 1, 486, None, None),
    ]


def test_no_source_identifier_or_date_is_stored(db_path: Path, tmp_path: Path) -> None:
    load(db_path, write_graall(tmp_path / "g.csv", ALIVE, DEAD))
    text = " ".join(
        str(v)
        for table in ("patient", "enrolment", "outcome_event")
        for row in query(db_path, f"SELECT * FROM {table}")
        for v in row
    )
    assert "G03-00001" not in text and "12/03/2004" not in text and "2004-03-12" not in text


def test_row_problems_are_quarantined_with_line_column_value_and_rule(db_path: Path, tmp_path: Path) -> None:
    bad_sex = ALIVE.replace("G03-00001;GRAALL-2003;M", "G03-00009;GRAALL-2003;X")
    bad_date = DEAD.replace("G03-00002", "G03-00010").replace("01/02/2004", "31/02/2004")
    rows = [ALIVE, DEAD, REFRACTORY, bad_sex, bad_date]
    report = load(db_path, write_graall(tmp_path / "g.csv", *rows), max_reject_fraction=0.5)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (5, 3, 2)

    rejects = query(db_path, "SELECT line, column_name, value, rule FROM rejected_record ORDER BY line")
    assert rejects == [(5, "SEXE", "X", "code:sexe"), (6, "DATE_DIAG", "31/02/2004", "date")]
    raw = scalar(db_path, "SELECT raw_record FROM rejected_record WHERE line = 5")
    assert '"SEXE":"X"' in str(raw)  # the whole raw record is kept: nothing is lost
    assert scalar(db_path, "SELECT count(*) FROM patient") == 3


def test_reloading_the_same_file_is_a_noop(db_path: Path, tmp_path: Path) -> None:
    path = write_graall(tmp_path / "g.csv", ALIVE, DEAD)
    load(db_path, path)
    before = fingerprint(db_path)
    again = load(db_path, path)
    assert again.noop and "already loaded" in again.summary()
    assert fingerprint(db_path) == before


def test_a_newer_snapshot_supersedes_changed_values_and_keeps_the_old_ones(
    db_path: Path, tmp_path: Path
) -> None:
    first = load(db_path, write_graall(tmp_path / "v1.csv", ALIVE, DEAD))
    # The next export corrects patient 1's WBC and adds patient 3; patient 2 is unchanged.
    corrected = ALIVE.replace(";74100;", ";64100;")
    second = load(db_path, write_graall(tmp_path / "v2.csv", corrected, DEAD, REFRACTORY))

    assert second.tables["baseline"] == {"inserted": 2, "superseded": 1, "unchanged": 1}
    key = patient_key(TEST_KEY.encode(), "GRAALL", "G03-00001")
    history = query(
        db_path,
        "SELECT wbc_g_per_l, etl_run_id, superseded_by_run_id FROM baseline JOIN patient USING (patient_id) "
        "WHERE patient_key = $key ORDER BY baseline_id",
        {"key": key},
    )
    assert history == [(74.1, first.run_id, second.run_id), (64.1, second.run_id, None)]
    assert scalar(db_path, "SELECT count(*) FROM baseline WHERE superseded_by_run_id IS NULL") == 3


def test_a_snapshot_that_drops_an_event_supersedes_it(db_path: Path, tmp_path: Path) -> None:
    load(db_path, write_graall(tmp_path / "v1.csv", DEAD))
    # The relapse was a data-entry error: the next export has no relapse date.
    without_relapse = DEAD.replace("01/07/2004;01/01/2005;", "01/07/2004;;")
    second = load(db_path, write_graall(tmp_path / "v2.csv", without_relapse))
    current = query(
        db_path, "SELECT event_type FROM outcome_event WHERE superseded_by_run_id IS NULL ORDER BY 1"
    )
    assert current == [("death",), ("last_follow_up",)]
    assert second.tables["outcome_event"]["superseded"] == 2  # the relapse, and the death (now in CR)


def test_patients_absent_from_a_snapshot_are_kept_and_reported(db_path: Path, tmp_path: Path) -> None:
    load(db_path, write_graall(tmp_path / "v1.csv", ALIVE, DEAD))
    report = load(db_path, write_graall(tmp_path / "v2.csv", ALIVE))
    assert any(
        "1 GRAALL patients already in the warehouse are not in this snapshot" in w for w in report.warnings
    )
    assert scalar(db_path, "SELECT count(*) FROM enrolment WHERE superseded_by_run_id IS NULL") == 2


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (GRAALL_HEADER + ";NOM;PRENOM\n" + ALIVE + ";DUPONT;Jean\n", "look like direct identifiers"),
        (
            GRAALL_HEADER.replace(";CONSENTEMENT", "") + "\n" + ALIVE.rsplit(";", 1)[0] + "\n",
            "missing columns",
        ),
        (GRAALL_HEADER + ";COMMENTAIRE\n" + ALIVE + ";rien\n", "unexpected columns"),
        ("", "the file is empty"),
        (GRAALL_HEADER + "\n", "no data rows"),
        (GRAALL_HEADER + "\n" + ALIVE + ";extra;fields\n", "line 2 has 23 fields, the header has 21"),
    ],
    ids=["identifier-columns", "missing-column", "unexpected-column", "empty", "header-only", "ragged-line"],
)
def test_file_level_problems_abort_the_load_and_leave_the_database_unchanged(
    db_path: Path, tmp_path: Path, content: str, reason: str
) -> None:
    load(db_path, write_graall(tmp_path / "ok.csv", ALIVE))
    before = fingerprint(db_path)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content.encode("latin-1"))
    with pytest.raises(FileRejected, match=reason) as excinfo:
        load(db_path, bad)
    assert str(bad) in str(excinfo.value)
    assert fingerprint(db_path) == before


def test_a_utf8_file_declared_latin1_is_refused_not_loaded_as_mojibake(db_path: Path, tmp_path: Path) -> None:
    path = write_graall(tmp_path / "utf8.csv", ALIVE, DEAD, encoding="utf-8")
    with pytest.raises(FileRejected, match="UTF-8 encoded but layout 'graall' declares latin-1"):
        load(db_path, path)


def test_too_many_rejected_rows_reject_the_whole_file(db_path: Path, tmp_path: Path) -> None:
    before = fingerprint(db_path)
    bad = ALIVE.replace(";M;", ";X;")
    with pytest.raises(FileRejected, match=r"1 of 2 rows \(50.0%\) fail validation"):
        load(db_path, write_graall(tmp_path / "g.csv", bad, DEAD))
    assert fingerprint(db_path) == before


def test_validate_reports_everything_and_writes_nothing(db_path: Path, tmp_path: Path) -> None:
    before = fingerprint(db_path)
    bad = ALIVE.replace(";23,5;", ";187,0;")
    report = load(db_path, write_graall(tmp_path / "g.csv", bad, DEAD), dry_run=True)
    assert report.dry_run and report.rows_rejected == 1
    assert report.file_problem is not None and "fail validation" in report.file_problem
    assert report.issues.row(0, named=True)["column"] == "AGE_DIAG"
    assert fingerprint(db_path) == before


def test_a_second_writer_is_refused_at_once(db_path: Path, tmp_path: Path) -> None:
    path = write_graall(tmp_path / "g.csv", ALIVE)
    with write_lock(db_path), pytest.raises(WarehouseLocked, match="being written by another cgdw process"):
        load(db_path, path)


def test_a_missing_diagnosis_date_is_reported_once_and_the_row_quarantined(
    db_path: Path, tmp_path: Path
) -> None:
    undated = ALIVE.replace("12/03/2004", "")
    report = load(
        db_path, write_graall(tmp_path / "g.csv", undated, DEAD, REFRACTORY), max_reject_fraction=0.5
    )
    assert report.rows_rejected == 1
    assert query(db_path, "SELECT column_name, rule FROM rejected_record") == [("DATE_DIAG", "required")]


def test_a_file_already_loaded_can_still_be_validated(db_path: Path, tmp_path: Path) -> None:
    path = write_graall(tmp_path / "g.csv", ALIVE, DEAD)
    load(db_path, path)
    before = fingerprint(db_path)
    report = load(db_path, path, dry_run=True)
    assert report.dry_run and not report.noop and report.rows_loaded == 2
    assert fingerprint(db_path) == before


def test_no_duckdb_progress_bar_can_reach_stdout(db_path: Path) -> None:
    """DuckDB draws a progress bar on stdout when a statement runs for seconds (a million-record VCF's
    merge did, in the middle of `cgdw load`'s output): every cgdw connection turns it off."""
    from etl.warehouse import open_for_read, open_for_write

    with open_for_write(db_path) as con:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
    with open_for_read(db_path) as con:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]


def test_files_loaded_together_share_one_connection_and_each_is_its_own_run(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cgdw load KIND FILE...` (issue 16): one connection for the batch, one run and one transaction per
    file; a rejected file among them is refused whole and the files around it load."""
    import duckdb

    import etl.warehouse
    from etl.sources.registry import load_sources

    first = write_graall(tmp_path / "graall_1.csv", ALIVE)
    third = write_graall(tmp_path / "graall_3.csv", ALIVE, DEAD)
    bad = tmp_path / "graall_2.csv"
    bad.write_text("not;a;graall;export\n1;2;3;4\n", encoding="latin-1")
    opened: list[Path] = []
    connect = etl.warehouse._connect

    def counting(path: Path, read_only: bool, external_access: bool = True) -> duckdb.DuckDBPyConnection:
        opened.append(path)
        return connect(path, read_only, external_access)

    monkeypatch.setattr(etl.warehouse, "_connect", counting)
    results = load_sources(db_path, "clinical", [first, bad, third], layout="graall")
    assert [type(r).__name__ for r in results] == ["LoadReport", "FileRejected", "LoadReport"]
    assert opened.count(db_path) == 2  # once for the three files (it was once each), once to publish
    with duckdb.connect(str(db_path), read_only=True) as con:
        files = con.execute(
            "SELECT f.file_name, r.status FROM source_file AS f JOIN etl_run AS r USING (etl_run_id) "
            "ORDER BY f.source_file_id"
        ).fetchall()
    assert files == [("graall_1.csv", "succeeded"), ("graall_3.csv", "succeeded")]
