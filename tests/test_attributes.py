"""Declared attributes from a cBioPortal study: every clinical column is kept, typed, traced to its line, and
reaches SQL (`cohort_patient`, `patient_attribute`, `sample_attribute`), extracts and analyses by name.
Reported endpoints (EFS, DFS) load beside OS; a bad value withholds that value only."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from etl.analysis.outcomes import analyse_outcomes
from etl.cbioportal.importer import load_cbioportal_study
from etl.errors import FileRejected
from etl.export import export_view
from etl.query import run_query
from etl.views import apply_views, views_outdated
from tests.helpers import TEST_KEY, query, scalar

PATIENT_HEADER = [
    ("PATIENT_ID", "Patient Identifier", "Patient identifier", "STRING"),
    ("TREATMENT_ARM", "Treatment Arm", "Randomised arm", "STRING"),
    ("MRD29", "MRD Day 29", "MRD at day 29, percent", "NUMBER"),
    ("FLT3_ITD", "FLT3-ITD", "FLT3 internal tandem duplication", "BOOLEAN"),
    ("DIAGNOSIS", "Diagnosis", "Diagnosis", "STRING"),
    ("OS_MONTHS", "Overall Survival (Months)", "OS", "NUMBER"),
    ("OS_STATUS", "Overall Survival Status", "OS status", "STRING"),
    ("EFS_MONTHS", "Event Free Survival (Months)", "EFS", "NUMBER"),
    ("EFS_STATUS", "Event Free Survival Status", "EFS status", "STRING"),
    ("DFS_MONTHS", "Disease Free (Months)", "DFS", "NUMBER"),
    ("DFS_STATUS", "Disease Free Status", "DFS status", "STRING"),
]
# P4: DFS after its last news (withheld, OS kept); P5: MRD29 is not a number (withheld, the rest kept).
PATIENTS = [
    ["P1", "A", "0.01", "TRUE", "ALL", "12.5", "1:DECEASED", "6.25", "1:Relapse", "6.25", "1:Recurred"],
    ["P2", "A", "", "FALSE", "ALL", "30", "0:LIVING", "30", "0:No event", "30", "0:DiseaseFree"],
    ["P3", "B", "1.5", "FALSE", "AML", "20.75", "1:DECEASED", "20.75", "1:Died", "", ""],
    ["P4", "B", "0", "TRUE", "ALL", "40", "0:LIVING", "40", "0:No event", "41", "0:DiseaseFree"],
    ["P5", "B", "pending", "FALSE", "ALL", "8", "1:DECEASED", "8", "1:Died", "", ""],
]
SAMPLES = [["P1", "S1", "Primary", "22"], ["P2", "S2", "Primary", "48"], ["P3", "S3", "Recurrence", ""]]


def clinical_text(header: list[tuple[str, str, str, str]], rows: list[list[str]]) -> str:
    meta = [
        "#" + "\t".join(h[1] for h in header),
        "#" + "\t".join(h[2] for h in header),
        "#" + "\t".join(h[3] for h in header),
        "#" + "\t".join("1" for _ in header),
        "\t".join(h[0] for h in header),
    ]
    return "\n".join(meta + ["\t".join(row) for row in rows]) + "\n"


def write_study(directory: Path, header=PATIENT_HEADER, patients=PATIENTS) -> Path:  # type: ignore[no-untyped-def]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meta_study.txt").write_text(
        "type_of_cancer: aml\ncancer_study_identifier: trial_x\nname: Trial X\nreference_genome: hg19\n"
    )
    (directory / "meta_clinical_patient.txt").write_text(
        "cancer_study_identifier: trial_x\ngenetic_alteration_type: CLINICAL\n"
        "datatype: PATIENT_ATTRIBUTES\ndata_filename: data_clinical_patient.txt\n"
    )
    (directory / "data_clinical_patient.txt").write_text(clinical_text(header, patients))
    (directory / "meta_clinical_sample.txt").write_text(
        "cancer_study_identifier: trial_x\ngenetic_alteration_type: CLINICAL\n"
        "datatype: SAMPLE_ATTRIBUTES\ndata_filename: data_clinical_sample.txt\n"
    )
    sample_header = [
        ("PATIENT_ID", "Patient Identifier", "Patient", "STRING"),
        ("SAMPLE_ID", "Sample Identifier", "Sample", "STRING"),
        ("SAMPLE_TYPE", "Sample Type", "Type", "STRING"),
        ("BLAST_PERCENT", "Blasts (%)", "Marrow blasts at sampling", "NUMBER"),
    ]
    (directory / "data_clinical_sample.txt").write_text(clinical_text(sample_header, SAMPLES))
    return directory


@pytest.fixture
def imported(db_path: Path, tmp_path: Path) -> Path:
    reports = load_cbioportal_study(db_path, write_study(tmp_path / "study"), secret=TEST_KEY.encode())
    assert [r.rows_rejected for r in reports] == [0, 0]
    apply_views(db_path)
    return db_path


def test_every_clinical_column_is_declared_with_the_header_metadata(imported: Path) -> None:
    rows = query(
        imported,
        "SELECT attribute_name, entity, label, description, data_type, levels, source_column FROM attribute "
        "ORDER BY attribute_name",
    )
    # fmt: off
    assert rows == [
        ("blast_percent", "sample", "Blasts (%)", "Marrow blasts at sampling", "number", None,
         "BLAST_PERCENT"),
        ("flt3_itd", "patient", "FLT3-ITD", "FLT3 internal tandem duplication", "boolean", None, "FLT3_ITD"),
        ("mrd29", "patient", "MRD Day 29", "MRD at day 29, percent", "number", None, "MRD29"),
        ("treatment_arm", "patient", "Treatment Arm", "Randomised arm", "categorical",
         json.dumps([{"code": "A", "label": "A"}, {"code": "B", "label": "B"}]), "TREATMENT_ARM"),
    ]
    # fmt: on


def test_attributes_are_columns_of_the_cohort_typed_and_traced_to_their_line(imported: Path) -> None:
    cohort = run_query(
        imported,
        "SELECT treatment_arm, mrd29, flt3_itd, diagnosis, os_status, efs_status, dfs_status "
        "FROM cohort_patient ORDER BY treatment_arm, mrd29 NULLS LAST",
    )
    assert cohort.rows() == [
        ("A", 0.01, True, "ALL", 1, 1, 1),
        ("A", None, False, "ALL", 0, 0, 0),
        ("B", 0.0, True, "ALL", 0, 0, None),  # P4: DFS withheld (after the last news), OS kept
        ("B", 1.5, False, "AML", 1, 1, None),
        ("B", None, False, "ALL", 1, 1, None),  # P5: MRD29 'pending' withheld, the rest kept
    ]
    lines = query(
        imported,
        "SELECT v.source_line, v.value_number FROM attribute_value AS v "
        "WHERE v.attribute_name = 'mrd29' ORDER BY v.source_line",
    )
    assert lines == [(6, 0.01), (8, 1.5), (9, 0.0)]  # header lines 1-5: data starts at line 6
    # Months become days x 30.4375 exactly as sent: 12.5 months is 380.46875 days, 1.0416... years.
    assert (
        scalar(imported, "SELECT os_years FROM cohort_patient WHERE mrd29 = 0.01") == 12.5 * 30.4375 / 365.25
    )


def test_a_bad_value_withholds_that_value_only_and_is_quarantined(imported: Path) -> None:
    quarantined = query(
        imported,
        "SELECT line, column_name, value, rule FROM rejected_record ORDER BY line, column_name",
    )
    assert quarantined == [
        (9, "DFS_MONTHS", "41", "dfs_within_os"),
        (10, "MRD29", "pending", "attribute:number"),
    ]
    assert scalar(imported, "SELECT count(*) FROM cohort_patient") == len(PATIENTS)


def test_reported_and_open_coded_facts(imported: Path) -> None:
    # DIAGNOSIS = ALL is outside cgdw's list: kept as given, not rejected.
    assert scalar(imported, "SELECT count(*) FROM enrolment WHERE diagnosis = 'ALL'") == 4
    # EFS as the study reports it, its source said; P1's DFS recurrence is also the first relapse.
    assert query(imported, "SELECT DISTINCT efs_source FROM endpoint") == [("reported",)]
    assert scalar(imported, "SELECT count(*) FROM outcome_event WHERE event_type = 'relapse'") == 1


def test_sample_attributes_have_their_own_view(imported: Path) -> None:
    rows = run_query(imported, "SELECT blast_percent FROM sample_attribute ORDER BY blast_percent NULLS LAST")
    assert rows["blast_percent"].to_list() == [22.0, 48.0, None]


def test_analyses_and_extracts_use_attributes_by_name(imported: Path, tmp_path: Path) -> None:
    fitted = analyse_outcomes(imported, "os", by="treatment_arm", horizon=2.0)
    assert [(g.group, g.n) for g in fitted.result.groups] == [("A", 2), ("B", 3)]
    extract = export_view(imported, "cohort_patient", tmp_path / "extract", columns=None)
    assert {"treatment_arm", "mrd29", "flt3_itd"} <= set(extract.manifest["columns"])
    assert extract.manifest["attributes"] == "patient_attribute@v1"
    dictionary = (tmp_path / "extract" / "data_dictionary.csv").read_text()
    assert "MRD Day 29: MRD at day 29, percent [declared attribute" in dictionary


def test_a_new_column_releases_a_new_attribute_version_and_keeps_the_old_one(
    imported: Path, tmp_path: Path
) -> None:
    header = [*PATIENT_HEADER, ("NPM1", "NPM1", "NPM1 mutated", "BOOLEAN")]
    patients = [[*row, "TRUE"] for row in PATIENTS]
    write_study(tmp_path / "study2", header, patients)
    load_cbioportal_study(imported, tmp_path / "study2", secret=TEST_KEY.encode())
    assert views_outdated(imported)
    report = apply_views(imported)
    assert "patient_attribute@v2" in report.released
    assert scalar(imported, "SELECT count(*) FROM cohort_patient WHERE npm1") == len(PATIENTS)
    # A released version is immutable: v1 keeps its columns.
    columns = [c for (c,) in query(imported, "SELECT column_name FROM (DESCRIBE patient_attribute_v1)")]
    assert "npm1" not in columns and "mrd29" in columns


def test_one_name_means_one_thing(imported: Path, tmp_path: Path) -> None:
    header = [(h[0], h[1], h[2], "NUMBER" if h[0] == "TREATMENT_ARM" else h[3]) for h in PATIENT_HEADER]
    patients = [[row[0], "1", *row[2:]] for row in PATIENTS]
    write_study(tmp_path / "study3", header, patients)
    before = query(imported, "SELECT count(*), max(etl_run_id) FROM attribute_value")
    with pytest.raises(FileRejected, match=r"attribute treatment_arm .* declared it as patient categorical"):
        load_cbioportal_study(imported, tmp_path / "study3", secret=TEST_KEY.encode())
    assert query(imported, "SELECT count(*), max(etl_run_id) FROM attribute_value") == before
    with duckdb.connect(str(imported), read_only=True) as con:
        assert con.execute(
            "SELECT data_type FROM attribute WHERE attribute_name = 'treatment_arm'"
        ).fetchone() == ("categorical",)


# --- what a hostile tester found (each failed before its fix) -------------------------------------------


def _changed(patients: list[list[str]]) -> list[list[str]]:
    """A corrected export: the same patients, one value changed (a new sha256, so a new run)."""
    return [[row[0], row[1], "2.5" if row[0] == "P3" else row[2], *row[3:]] for row in patients]


def test_a_re_import_never_undoes_a_withdrawal_nor_brings_a_purged_patient_back(
    imported: Path, tmp_path: Path
) -> None:
    from etl.consent import PatientRef, purge_withdrawn, withdraw_consent

    secret = TEST_KEY.encode()
    withdraw_consent(
        imported, PatientRef(trial_group="cBioPortal:trial_x", source_patient_id="P1"), secret=secret
    )
    load_cbioportal_study(
        imported, write_study(tmp_path / "again", patients=_changed(PATIENTS)), secret=secret
    )
    apply_views(imported)
    assert scalar(imported, "SELECT count(*) FROM cohort_patient") == len(PATIENTS) - 1
    purge_withdrawn(imported, secret=secret)
    patients = [[row[0], row[1], "3.5" if row[0] == "P3" else row[2], *row[3:]] for row in PATIENTS]
    reports = load_cbioportal_study(
        imported, write_study(tmp_path / "third", patients=patients), secret=secret
    )
    assert any("purged patients were not loaded" in w for w in reports[0].warnings)
    assert scalar(imported, "SELECT count(*) FROM patient") == len(PATIENTS) - 1


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("DATEOFBIRTH", "1961-04-02", "look like direct identifiers"),
        ("NHS_NO", "943 476 5919", "look like direct identifiers"),
        ("DATE_OF_DIAGNOSIS", "2015-03-10", "holds calendar dates"),
        ("LAST_SEEN", "10/03/2015", "holds calendar dates"),
        ("___", "x", "gives no attribute name"),
        ("PATIENT-ID", "x", "a key of the warehouse"),
    ],
)
def test_identifiers_dates_and_unnamable_columns_refuse_the_file(
    db_path: Path, tmp_path: Path, column: str, value: str, message: str
) -> None:
    header = [*PATIENT_HEADER, (column, column, column, "STRING")]
    write_study(tmp_path / "s", header, [[*row, value] for row in PATIENTS])
    with pytest.raises(FileRejected, match=message):
        load_cbioportal_study(db_path, tmp_path / "s", secret=TEST_KEY.encode())
    assert scalar(db_path, "SELECT count(*) FROM patient") == 0


def _study_without_cr(tmp_path: Path, db_path: Path) -> None:
    """A published study as most are: OS, a subtype, no CR, no EFS; a BOM before its meta file; `aml`."""
    header = [h for h in PATIENT_HEADER if h[0] in ("PATIENT_ID", "TREATMENT_ARM", "DIAGNOSIS", "OS_MONTHS",
                                                     "OS_STATUS")]  # fmt: skip
    keep = [0, 1, 4, 5, 6]
    rows = [[row[i] for i in keep] for row in PATIENTS]
    rows[0][2] = "aml"
    rows.append(["P6", "B", "AML", "14", ""])  # months without a status: no OS, and the run says so
    study = write_study(tmp_path / "nocr", header, rows)
    meta = study / "meta_study.txt"
    meta.write_bytes(b"\xef\xbb\xbf" + meta.read_bytes())
    reports = load_cbioportal_study(db_path, study, secret=TEST_KEY.encode())
    assert any("1 patients have OS_MONTHS without OS_STATUS" in w for w in reports[0].warnings)
    apply_views(db_path)


def test_without_cr_efs_and_cir_are_unknown_and_table1_says_n_a(db_path: Path, tmp_path: Path) -> None:
    from etl.analysis.table1 import build_table1
    from etl.errors import CgdwError

    _study_without_cr(tmp_path, db_path)
    rows = query(
        db_path, "SELECT efs_status, cir_status, os_status IS NOT NULL, is_adult FROM cohort_patient"
    )
    assert {r[:2] for r in rows} == {(None, None)} and sum(r[2] for r in rows) == len(PATIENTS)
    assert {r[3] for r in rows} == {None}  # a study of all ages: not "not adult"
    table = build_table1(db_path, by="treatment_arm")
    cir = next(r for r in table.rows if r.kind == "estimate" and r.id.startswith("cir"))
    assert cir.total.estimate is None and cir.p_value is None
    with pytest.raises(CgdwError, match="patients of cohort_patient: none has a value of ikzf1_status"):
        build_table1(db_path)
    # The BOM did not hide type_of_cancer; `aml` is the canonical AML, not a diagnosis of its own.
    assert query(db_path, "SELECT DISTINCT diagnosis FROM enrolment ORDER BY 1") == [("ALL",), ("AML",)]
    assert query(db_path, "SELECT disease FROM protocol WHERE protocol_code LIKE 'cBioPortal:%'") == [
        ("aml",)
    ]


def test_a_relapse_of_a_patient_never_in_cr_is_withheld(db_path: Path, tmp_path: Path) -> None:
    header = [*PATIENT_HEADER, ("COMPLETE_REMISSION", "CR", "CR after induction", "BOOLEAN")]
    patients = [[*row, "FALSE" if row[0] == "P1" else "TRUE"] for row in PATIENTS]
    write_study(tmp_path / "s", header, patients)
    reports = load_cbioportal_study(db_path, tmp_path / "s", secret=TEST_KEY.encode())
    assert "relapse_after_cr" in reports[0].fact_issues["rule"].to_list()
    assert scalar(db_path, "SELECT count(*) FROM outcome_event WHERE event_type = 'relapse'") == 0
    assert scalar(db_path, "SELECT count(*) FROM outcome_event WHERE event_type = 'death'") == 3  # OS kept


def test_a_corrected_sample_file_clears_a_value_blanked_since(imported: Path, tmp_path: Path) -> None:
    study = write_study(tmp_path / "again")
    samples = study / "data_clinical_sample.txt"
    samples.write_text(samples.read_text().replace("S1\tPrimary\t22", "S1\tPrimary\t"))
    load_cbioportal_study(imported, study, secret=TEST_KEY.encode())
    apply_views(imported)
    assert run_query(imported, "SELECT count(blast_percent) AS n FROM sample_attribute")["n"][0] == 1


def test_a_generated_version_can_be_retired_and_cohort_patient_follows(
    imported: Path, tmp_path: Path
) -> None:
    from etl.views import retire_view

    header = [*PATIENT_HEADER, ("NPM1", "NPM1", "NPM1 mutated", "BOOLEAN")]
    write_study(tmp_path / "study2", header, [[*row, "TRUE"] for row in PATIENTS])
    load_cbioportal_study(imported, tmp_path / "study2", secret=TEST_KEY.encode())
    apply_views(imported)
    retire_view(imported, "patient_attribute", 2)
    columns = [c for (c,) in query(imported, "SELECT column_name FROM (DESCRIBE cohort_patient)")]
    assert "mrd29" in columns and "npm1" not in columns  # back on v1
    # The dictionary still has npm1: the next apply releases it again, under a new number.
    assert "patient_attribute@v3" in apply_views(imported).released
    assert scalar(imported, "SELECT count(*) FROM cohort_patient WHERE npm1") == len(PATIENTS)


def test_an_exported_study_carries_the_attributes_and_reported_endpoints_back(
    imported: Path, tmp_path: Path
) -> None:
    from etl.cbioportal.exporter import export_cbioportal
    from schema.database import upgrade

    summary = export_cbioportal(imported, tmp_path / "out", study_id="trial_x_again")
    assert summary.problems == []
    again = tmp_path / "again.duckdb"
    upgrade(again)
    load_cbioportal_study(again, tmp_path / "out", secret=TEST_KEY.encode())
    apply_views(again)
    columns = "treatment_arm, mrd29, flt3_itd, efs_years, efs_status, dfs_status, os_years"
    order = "ORDER BY treatment_arm, mrd29 NULLS LAST, os_years"
    before = query(imported, f"SELECT {columns} FROM cohort_patient {order}")
    after = query(again, f"SELECT {columns} FROM cohort_patient {order}")
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert old[:3] == new[:3] and old[4:6] == new[4:6]
        assert all(abs(a - b) < 1e-6 for a, b in ((old[3], new[3]), (old[6], new[6])) if a is not None)
    assert query(again, "SELECT label FROM attribute WHERE attribute_name = 'mrd29'") == [("MRD Day 29",)]
    assert run_query(again, "SELECT count(blast_percent) AS n FROM sample_attribute")["n"][0] == 2


def test_a_column_crossing_the_categorical_line_becomes_text_not_a_refused_file(
    imported: Path, tmp_path: Path
) -> None:
    """A STRING column is categorical up to 50 distinct values, text beyond: a corrected export that
    crosses the line was refused whole (found by a hostile tester)."""
    header = [*PATIENT_HEADER, ("COMMENT", "Comment", "Free text", "STRING")]
    patients = [[*row, f"note {i}"] for i, row in enumerate(PATIENTS)]
    extra = [[f"Q{i}", "A", "", "FALSE", "AML", "5", "0:LIVING", "5", "0:No event", "", "", f"other {i}"]
             for i in range(60)]  # fmt: skip
    load_cbioportal_study(imported, write_study(tmp_path / "b", header, patients), secret=TEST_KEY.encode())
    assert query(imported, "SELECT data_type FROM attribute WHERE attribute_name = 'comment'") == [
        ("categorical",)
    ]
    load_cbioportal_study(
        imported, write_study(tmp_path / "c", header, patients + extra), secret=TEST_KEY.encode()
    )
    assert query(imported, "SELECT data_type, levels FROM attribute WHERE attribute_name = 'comment'") == [
        ("text", None)
    ]


def test_a_column_a_newer_export_no_longer_has_is_superseded(imported: Path, tmp_path: Path) -> None:
    header = [h for h in PATIENT_HEADER if h[0] != "MRD29"]
    patients = [[v for i, v in enumerate(row) if i != 2] for row in PATIENTS]
    load_cbioportal_study(imported, write_study(tmp_path / "b", header, patients), secret=TEST_KEY.encode())
    assert scalar(imported, "SELECT count(*) FROM attribute_value WHERE attribute_name = 'mrd29' "
                            "AND superseded_by_run_id IS NULL") == 0  # fmt: skip
    assert scalar(imported, "SELECT count(*) FROM attribute_value WHERE attribute_name = 'mrd29'") == 3


def test_accented_column_names_keep_their_letters() -> None:
    from etl.load.attributes import snake_case

    assert [snake_case(c) for c in ("ÉTAT", "TREATMENT_ARM", "MRD29", "TreatmentArm", "1ST_LINE")] == [
        "etat", "treatment_arm", "mrd29", "treatment_arm", "a_1_st_line",
    ]  # fmt: skip


def test_a_sample_named_like_its_patient_is_said(db_path: Path, tmp_path: Path) -> None:
    study = write_study(tmp_path / "s")
    samples = study / "data_clinical_sample.txt"
    samples.write_text(samples.read_text().replace("P1\tS1\t", "P1\tP1\t"))
    reports = load_cbioportal_study(db_path, study, secret=TEST_KEY.encode())
    assert any("1 samples have a SAMPLE_ID equal to their PATIENT_ID" in w for w in reports[1].warnings)
