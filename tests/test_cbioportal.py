"""cBioPortal studies: import of the real cBioPortal test study (study_es_0), export of the warehouse as a
study that passes the format rules, and the round trip export -> import into a fresh warehouse.

Read as documentation: docs/cbioportal.md explains the mapping these tests pin down.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from etl.cbioportal.checker import check_cbioportal_study
from etl.cbioportal.exporter import export_cbioportal
from etl.cbioportal.format import DAYS_PER_MONTH, days_to_months, months_to_days, read_clinical
from etl.cbioportal.importer import load_cbioportal_study
from etl.cli import app
from etl.errors import FileRejected
from etl.privacy import patient_key
from etl.views import apply_views
from tests.helpers import SHARED, TEST_KEY

STUDY = SHARED / "third_party" / "cbioportal_study_es_0"
GROUP = "cBioPortal:study_es_0"
# The test study ships its wide discrete CNA without a meta file; cBioPortal (and cgdw) then ignore it.
# The copies below add the meta file cBioPortal would need, so the CNA import is tested too.
META_CNA = """cancer_study_identifier: study_es_0
genetic_alteration_type: COPY_NUMBER_ALTERATION
datatype: DISCRETE
stable_id: gistic
show_profile_in_analysis_tab: true
profile_name: Putative copy-number alterations from GISTIC
profile_description: Putative copy-number from GISTIC 2.0.
data_filename: data_CNA_wide.txt
"""


def study_copy(tmp_path: Path, with_cna: bool = True) -> Path:
    copy = tmp_path / "study_es_0"
    shutil.copytree(STUDY, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the shared files are read-only
    if with_cna:
        (copy / "meta_CNA.txt").write_text(META_CNA)
    return copy


def data_lines(path: Path) -> list[list[str]]:
    """Data rows of a tab-separated file, counted independently of the loaders: no '#' lines, no header."""
    rows = [line.split("\t") for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return rows[1:]


def rewrite(path: Path, line: int, column: str, value: str) -> None:
    """Set `column` of file line `line` (1-based) of a clinical file."""
    lines = path.read_text().split("\n")
    index = lines[4].split("\t").index(column)
    fields = lines[line - 1].split("\t")
    fields[index] = value
    lines[line - 1] = "\t".join(fields)
    path.write_text("\n".join(lines))


def scalar(db: Path, sql: str, params: list[object] | None = None) -> object:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(sql, params or []).fetchone()
    assert row is not None
    return row[0]


def test_month_factor_round_trips_every_day() -> None:
    # days -> months (6 decimals) -> days is within 0.0000005 * 30.4375 < 2e-5 day; months are kept
    # as sent (x 30.4375, never rounded to a whole day).
    assert DAYS_PER_MONTH == 30.4375
    assert all(abs(months_to_days(days_to_months(day)) - day) < 2e-5 for day in range(0, 40_000))
    assert months_to_days(31.77) == 31.77 * 30.4375


def test_real_study_imports(db_path: Path, tmp_path: Path) -> None:
    study = study_copy(tmp_path)
    reports = load_cbioportal_study(db_path, study)
    assert [r.kind for r in reports] == [
        "cbioportal_patient", "cbioportal_sample", "maf", "cbioportal_cna", "seg",
    ]  # fmt: skip
    assert all(r.rows_rejected == 0 for r in reports)
    patients = data_lines(study / "data_clinical_patients.txt")
    samples = data_lines(study / "data_clinical_samples.txt")
    mutations = data_lines(study / "data_mutations_extended.maf")
    cna = data_lines(study / "data_CNA_wide.txt")
    segments = data_lines(study / "data_cna_hg19.seg")
    assert scalar(db_path, "SELECT count(*) FROM patient WHERE trial_group = ?", [GROUP]) == len(patients)
    assert scalar(db_path, "SELECT count(*) FROM sample") == len(samples)
    assert scalar(db_path, "SELECT count(*) FROM variant_call") == len(mutations) == 36
    altered = sum(value in ("-2", "-1", "1", "2") for row in cna for value in row[2:])
    assert scalar(db_path, "SELECT count(*) FROM copy_number_call WHERE NOT from_segment") == altered == 1743
    deep = sum(value == "-2" for row in cna for value in row[2:])
    assert (
        scalar(db_path, "SELECT count(*) FROM copy_number_call WHERE call_type = 'homozygous_deletion'")
        == deep
    )
    assert scalar(db_path, "SELECT count(*) FROM copy_number_segment") == len(segments)
    # The study's patient ids are never stored: the key is the HMAC of group and id.
    assert scalar(db_path, "SELECT count(*) FROM patient WHERE patient_key LIKE 'TCGA%'") == 0
    # OS: TCGA-A1-A0SK is 1:DECEASED at 31.77 months = day 966.999375 (x 30.4375, kept as it is).
    key = patient_key(TEST_KEY.encode(), GROUP, "TCGA-A1-A0SK")
    events = sorted(
        duckdb.connect(str(db_path), read_only=True)
        .execute(
            """SELECT event_type, day FROM outcome_event JOIN patient USING (patient_id)
               WHERE patient_key = ?""",
            [key],
        )
        .fetchall()
    )
    assert events == [("death", 31.77 * 30.4375), ("last_follow_up", 31.77 * 30.4375)]
    # Living: 0:LIVING -> last follow-up only; DFS recurrences without months cannot be dated.
    assert scalar(db_path, "SELECT count(*) FROM outcome_event WHERE event_type = 'death'") == 87
    assert any("without its months" in w for w in reports[0].warnings)
    assert any("not imported" in w and "GENE_PANEL_MATRIX" in w for w in reports[0].warnings)
    assert any("SUBTYPE" in w for w in reports[1].warnings)
    assert any("added by symbol only" in w for w in reports[3].warnings)
    # A re-import is a no-op, file by file (same sha256).
    again = load_cbioportal_study(db_path, study)
    assert all(r.noop for r in again)


def test_every_patient_of_a_study_without_age_sex_or_year_is_in_the_cohort(
    db_path: Path, tmp_path: Path
) -> None:
    """cBioPortal's test study gives no AGE, SEX nor DIAGNOSIS_YEAR: its patients once had no enrolment and
    never reached cohort_patient (0 of them); now every patient is there, with those values NULL, and the
    run says how many lack each (migration 0009 made them optional)."""
    from etl.views import apply_views

    reports = load_cbioportal_study(db_path, study_copy(tmp_path))
    apply_views(db_path)
    patients = len(data_lines(STUDY / "data_clinical_patients.txt"))
    in_cohort = "SELECT count(*) FROM cohort_patient WHERE trial_group = ? AND age IS NULL AND sex IS NULL"
    assert scalar(db_path, in_cohort, [GROUP]) == patients
    assert any(f"{patients} without AGE" in w and "NULL" in w for w in reports[0].warnings)


def test_study_files_come_from_the_meta_files(db_path: Path) -> None:
    # The shared directory as is: its wide CNA has no meta file, so it is not loaded, and the run says so.
    reports = load_cbioportal_study(db_path, STUDY)
    assert "cbioportal_cna" not in [r.kind for r in reports]
    assert any("data_CNA_wide.txt has no meta file" in w for w in reports[0].warnings)


def test_bad_values_are_quarantined_with_line_column_rule(db_path: Path, tmp_path: Path) -> None:
    study = study_copy(tmp_path)
    patients = study / "data_clinical_patients.txt"
    rewrite(patients, 200, "OS_MONTHS", "soon")  # a NUMBER attribute that is not a number
    rewrite(patients, 201, "OS_STATUS", "DEAD")  # not a survival status
    reports = load_cbioportal_study(db_path, study)
    assert reports[0].rows_rejected == 2
    with duckdb.connect(str(db_path), read_only=True) as con:
        rejects = con.execute(
            """SELECT f.file_name, r.line, r.column_name, r.value, r.rule FROM rejected_record AS r
               JOIN source_file AS f USING (source_file_id)
               WHERE f.kind = 'cbioportal_patient' ORDER BY r.line"""
        ).fetchall()
    assert rejects == [
        ("data_clinical_patients.txt", 200, "OS_MONTHS", "soon", "datatype:NUMBER"),
        ("data_clinical_patients.txt", 201, "OS_STATUS", "DEAD", "code:os_status"),
    ]
    # The two patients are not created; their samples are quarantined as unknown patients.
    assert scalar(db_path, "SELECT count(*) FROM patient") == 841 - 2
    assert reports[1].rows_rejected == 2
    assert set(reports[1].issues.get_column("rule")) == {"known_patient"}
    # Their CNA columns are left out, and the run says so.
    assert any("2 sample columns are not in the warehouse" in w for w in reports[3].warnings)


def test_broken_files_are_refused_whole(db_path: Path, tmp_path: Path) -> None:
    study = study_copy(tmp_path)
    samples = study / "data_clinical_samples.txt"
    lines = samples.read_text().split("\n")
    samples.write_text("\n".join("\t".join(line.split("\t")[:1] + line.split("\t")[2:]) for line in lines))
    with pytest.raises(FileRejected, match="missing required columns: SAMPLE_ID"):
        load_cbioportal_study(db_path, study)
    # The patient file before it is committed (its own transaction); nothing of the sample file is.
    assert scalar(db_path, "SELECT count(*) FROM patient") == 841
    assert scalar(db_path, "SELECT count(*) FROM source_file WHERE kind = 'cbioportal_sample'") == 0

    patients = study / "data_clinical_patients.txt"
    patients.write_text(patients.read_text().replace("#STRING\tSTRING\tNUMBER", "#STRING\tSTRING\tNUMBR", 1))
    with pytest.raises(FileRejected, match="line 3: datatypes must be STRING, NUMBER, BOOLEAN"):
        read_clinical(patients)


def test_checker_passes_the_real_study_and_catches_a_broken_copy(tmp_path: Path) -> None:
    assert check_cbioportal_study(STUDY) == []
    broken = study_copy(tmp_path)
    rewrite(broken / "data_clinical_patients.txt", 6, "OS_MONTHS", "many")
    rewrite(broken / "data_clinical_patients.txt", 7, "OS_STATUS", "DECEASED")
    cases = broken / "case_lists" / "cases_test.txt"
    cases.write_text(cases.read_text().replace("TEST_SAMPLE_1\t", "NO_SUCH_SAMPLE\t"))
    meta = broken / "meta_mutations_extended.txt"
    meta.write_text(meta.read_text().replace("stable_id: mutations", "stable_id: snv"))
    (broken / "meta_cna_hg19_seg.txt").write_text(
        (broken / "meta_cna_hg19_seg.txt").read_text().replace("data_cna_hg19.seg", "missing.seg")
    )
    problems = check_cbioportal_study(broken)
    expected = [
        "data_clinical_patients.txt line 6: OS_MONTHS = 'many' is not a NUMBER",
        "data_clinical_patients.txt line 7: OS_STATUS = 'DECEASED' must start with 0: or 1:",
        "case_lists/cases_test.txt: samples not in the sample file: NO_SUCH_SAMPLE",
        "meta_mutations_extended.txt: the MAF stable_id must be 'mutations'",
        "meta_cna_hg19_seg.txt: data_filename missing.seg does not exist",
    ]
    for problem in expected:
        assert problem in problems


def export_and_check(warehouse: Path, out: Path, study_id: str = "cgdw_test") -> None:
    export_cbioportal(warehouse, out, study_id=study_id)
    assert check_cbioportal_study(out) == []


def test_export_passes_the_format_rules(warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    summary = export_cbioportal(warehouse, out, study_id="cgdw_test")
    assert check_cbioportal_study(out) == []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        keys = {k for (k,) in con.execute("SELECT patient_key FROM cohort_patient").fetchall()}
        deep = con.execute(
            """SELECT count(DISTINCT (c.sample_id, c.gene_id)) FROM copy_number_call AS c
               JOIN sample AS s USING (sample_id)
               WHERE c.superseded_by_run_id IS NULL AND c.confirms_copy_number_call_id IS NULL
                 AND c.call_type = 'homozygous_deletion' AND s.sample_type <> 'germline'"""
        ).fetchone()
    # PATIENT_ID is the pseudonymous key, never a source id.
    clinical = read_clinical(out / "data_clinical_patient.txt")
    assert {row[0] for row in clinical.rows} == keys and summary.patients == len(keys)
    assert clinical.datatype("OS_MONTHS") == "NUMBER" and clinical.datatype("COMPLETE_REMISSION") == "BOOLEAN"
    assert {row[clinical.columns.index("OS_STATUS")] for row in clinical.rows} <= {"0:LIVING", "1:DECEASED"}
    cna = data_lines(out / "data_cna.txt")
    assert deep is not None and sum(v == "-2" for row in cna for v in row[1:]) == deep[0]
    # Deterministic: the same warehouse gives the same bytes.
    again = tmp_path / "again"
    export_cbioportal(warehouse, again, study_id="cgdw_test")
    for path in [*sorted(out.rglob("*.txt")), out / "data_cna.seg"]:
        assert path.read_bytes() == (again / path.relative_to(out)).read_bytes(), path.name


def test_withdrawn_patients_are_never_exported(warehouse: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(warehouse, db)
    with duckdb.connect(str(db)) as con:
        withdrawn = con.execute(
            """UPDATE enrolment SET consent_status = 'withdrawn'
               WHERE patient_id = (SELECT min(patient_id) FROM enrolment) RETURNING patient_id"""
        ).fetchone()
        assert withdrawn is not None
        key = con.execute("SELECT patient_key FROM patient WHERE patient_id = ?", [withdrawn[0]]).fetchone()
    assert key is not None
    out = tmp_path / "study"
    export_and_check(db, out)
    exported = " ".join(path.read_text() for path in out.rglob("*.txt"))
    assert key[0] not in exported


def test_round_trip_keeps_patients_alterations_and_endpoints(
    warehouse: Path, db_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "study"
    summary = export_cbioportal(warehouse, out, study_id="roundtrip")
    reports = load_cbioportal_study(db_path, out)
    assert all(r.rows_rejected == 0 for r in reports)
    apply_views(db_path)
    query = """
        SELECT c.patient_key, c.os_status, round(n.os_days, 4), round(n.first_relapse_day, 4),
               coalesce(c.ikzf1_status = 'Alt', false) AS alt, c.sex, c.age, c.complete_remission
        FROM cohort_patient AS c JOIN endpoint AS n USING (patient_id)
    """
    with duckdb.connect(str(warehouse), read_only=True) as con:
        before = {row[0]: row[1:] for row in con.execute(query).fetchall()}
        pass_calls = con.execute(
            """SELECT count(*) FROM variant_call AS v JOIN sample AS s USING (sample_id)
               JOIN cohort_patient USING (patient_id)
               WHERE v.superseded_by_run_id IS NULL AND v.filter = 'PASS' AND s.sample_type <> 'germline'"""
        ).fetchone()
    with duckdb.connect(str(db_path), read_only=True) as con:
        after = {row[0]: row[1:] for row in con.execute(query).fetchall()}
        calls = con.execute("SELECT count(*) FROM variant_call").fetchone()
    # The new warehouse keys the exported PATIENT_ID (the old key) with the study's group.
    mapped = {patient_key(TEST_KEY.encode(), "cBioPortal:roundtrip", key): key for key in before}
    assert len(after) == len(before) == summary.patients
    # OS and relapse days exact to 2e-5 day (months are exported with 6 decimals)
    assert {mapped[key]: values for key, values in after.items()} == before
    assert sum(v[3] for v in after.values()) == sum(v[3] for v in before.values()) > 0  # IKZF1 altered
    assert pass_calls is not None and calls is not None and calls[0] == pass_calls[0] == summary.mutations


def test_cli_load_and_export(db_path: Path, tmp_path: Path, warehouse: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["load", "cbioportal", str(study_copy(tmp_path)), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert "data_CNA_wide.txt: run 4: loaded 7 of 7 rows" in result.output.replace("\n", "")
    out = tmp_path / "export"
    result = runner.invoke(
        app, ["export", "cbioportal", "--out", str(out), "--study-id", "cli", "--db", str(warehouse)]
    )
    assert result.exit_code == 0, result.output
    assert "476 patients" in result.output
    assert (out / "case_lists" / "cases_all.txt").read_text().startswith("cancer_study_identifier: cli\n")
