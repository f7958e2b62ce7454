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
