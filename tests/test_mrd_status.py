"""MRD at any time point and by any method: thresholds are reference data (table mrd_threshold, each with its
published source), the cohort view has a positivity, a day and a level for every (time point, method)
present (mrd_c2_mfc_positive, ...), and an analysis may decide positivity at another threshold
(`--mrd-threshold METHOD=VALUE`) through the same rule. Real DuckDB files, real migrations, real loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.analysis.cohort import read_cohort
from etl.analysis.outcomes import analyse_outcomes
from etl.analysis.table1 import build_table1
from etl.analysis.table1_spec import load_spec
from etl.errors import CgdwError
from etl.load.layout import load_layout
from etl.privacy import patient_key
from etl.sources.registry import load_source
from etl.views import apply_views
from queries.mrd import (
    METHOD_NAMES,
    MrdNamingError,
    MrdPair,
    column_prefix,
    parse_threshold_override,
    patient_mrd_sql,
)
from schema.models import MRD_METHODS
from tests.helpers import REPO, TEST_KEY, cgdw, query

MRD_HEADER = (
    "trial_group", "patient_id", "sample_id", "time_point", "days_from_diagnosis", "method", "target",
    "value", "unit", "limit_of_detection", "quantitative_range_low", "qualitative_result",
)  # fmt: skip
# Five patients of the packaged AML layout (etl/sources/layouts/hovon_aml.toml) in CR; two died.
AML_PATIENT = {
    "STUDY": "HO132", "SEX": "F", "AGE": "54.5", "YEAR_DX": "2015", "DIAGNOSIS": "AML", "WBC": "12.5",
    "CR1": "Y", "DAYS_TO_CR": "31", "ALLO_CR1": "N", "DAYS_TO_ALLO": "", "MONTHS_TO_RELAPSE": "",
    "STATUS": "ALIVE", "MONTHS_TO_DEATH": "", "MONTHS_FOLLOW_UP": "36", "CONSENT": "Y", "ELN2017": "INT",
    "FLT3_ITD": "NEG", "NPM1": "NEG", "ARM": "A", "BM_BLASTS": "40",
}  # fmt: skip
PATNOS = [f"H-00{i}" for i in range(1, 6)]


def write_aml(path: Path) -> Path:
    columns = load_layout("hovon_aml").source_columns
    dead = {"STATUS": "DEAD", "MONTHS_TO_DEATH": "20", "MONTHS_FOLLOW_UP": "20"}
    patients = [{**AML_PATIENT, "PATNO": p, **(dead if p in ("H-001", "H-003") else {})} for p in PATNOS]
    rows = [",".join(columns), *(",".join(p[c] for c in columns) for p in patients)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def mrd_row(
    patient: str, time_point: str, day: str, method: str, value: str, qualitative: str, low: str = "0.01"
) -> list[str]:
    """One MRD result in percent of white cells (limit of detection 0.001% by MFC, 0.0001% for LSC)."""
    lod = "0.0001" if method == "LSC-MFC" else "0.001"
    return ["HOVON-SAKK", patient, "", time_point, day, method, "", value, "%", lod, low, qualitative]


# What each patient shows after cycle 2 (C2) by flow cytometry (MFC, positive at >= 0.1%) and by LSC flow
# (LSC-MFC, any detectable CD34+CD38- leukemic stem cell is positive), and one result after cycle 1.
RESULTS = [
    mrd_row("H-001", "C2", "82", "MFC", "0.15", "positive"),  # above 0.1%: positive
    mrd_row("H-001", "C2", "82", "LSC-MFC", "0.0004", "positive"),  # any LSC: positive
    mrd_row("H-002", "C2", "79", "MFC", "0.05", "positive"),  # detected, below 0.1%: negative
    mrd_row("H-002", "C2", "79", "LSC-MFC", "", "negative"),
    mrd_row("H-003", "C2", "90", "MFC", "", "positive not quantifiable"),  # below a range starting at 0.01%
    mrd_row("H-003", "C2", "90", "LSC-MFC", "", "positive not quantifiable"),  # detected: positive
    mrd_row("H-004", "C2", "101", "MFC", "", "not done"),  # unknown, never negative
    mrd_row("H-004", "C2", "101", "LSC-MFC", "0", "negative"),  # a quantified 0 is not above 0
    mrd_row("H-005", "C2", "84", "MFC", "0.1", "positive"),  # at the threshold: positive
    mrd_row("H-005", "C1", "35", "MFC", "2.5", "positive"),
]


def write_mrd(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join("\t".join(r) for r in [list(MRD_HEADER), *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def aml_warehouse(db_path: Path, tmp_path: Path) -> Path:
    load_source(db_path, "clinical", write_aml(tmp_path / "hovon.csv"), layout="hovon_aml")
    report = load_source(db_path, "mrd", write_mrd(tmp_path / "mrd.tsv", RESULTS))
    assert (report.rows_loaded, report.rows_rejected) == (len(RESULTS), 0)
    apply_views(db_path)
    return db_path


def statuses(
    db: Path, columns: str, mrd_thresholds: tuple[tuple[str, float], ...] = ()
) -> dict[str, tuple[object, ...]]:
    """The given cohort columns of each patient, by source patient number (through its pseudonymous key)."""
    names = [c.strip() for c in columns.split(",")]
    frame = read_cohort(db, "cohort_patient", ["patient_key", *names], mrd_thresholds=mrd_thresholds)
    by_key = {row[0]: row[1:] for row in frame.iter_rows()}
    return {patno: by_key[patient_key(TEST_KEY.encode(), "HOVON-SAKK", patno)] for patno in PATNOS}


# --- the thresholds are reference data -------------------------------------------------------------------


def test_each_method_has_its_threshold_with_its_published_source(db_path: Path) -> None:
    rows = {
        m: (t, at, src) for m, tp, t, at, src in query(db_path, "SELECT * FROM mrd_threshold") if tp == "*"
    }
    assert set(rows) == set(MRD_METHODS) == set(METHOD_NAMES)
    assert rows["ASO-PCR"][:2] == (1e-4, ">=")
    assert rows["MFC"][:2] == (1e-3, ">=") and "Schuurhuis" in rows["MFC"][2]
    # LSC flow has its own rule (no longer the MFC 0.1% of mrd_result v1): any detectable LSC.
    assert rows["LSC-MFC"][:2] == (0.0, ">") and "Zeijlemaker" in rows["LSC-MFC"][2]


# --- every (time point, method) is a column of the cohort view -------------------------------------------


def test_the_cohort_view_has_the_status_day_and_level_of_every_time_point_and_method(
    aml_warehouse: Path,
) -> None:
    columns = [c for (c,) in query(aml_warehouse, "SELECT column_name FROM (DESCRIBE cohort_patient)")]
    assert [c for c in columns if c.startswith("mrd_")] == [
        "mrd_c1_mfc_positive", "mrd_c1_mfc_day", "mrd_c1_mfc_value",
        "mrd_c2_lsc_positive", "mrd_c2_lsc_day", "mrd_c2_lsc_value",
        "mrd_c2_mfc_positive", "mrd_c2_mfc_day", "mrd_c2_mfc_value",
    ]  # fmt: skip
    got = statuses(
        aml_warehouse, "mrd_c2_mfc_positive, mrd_c2_lsc_positive, mrd_c2_mfc_day, mrd_c1_mfc_positive"
    )
    assert got == {
        "H-001": (True, True, 82, None),
        "H-002": (False, False, 79, None),
        "H-003": (False, True, 90, None),
        "H-004": (None, False, None, None),  # the day of an assessment not done is no day
        "H-005": (True, None, 84, True),
    }
    levels = statuses(aml_warehouse, "mrd_c2_mfc_value")
    assert levels["H-001"][0] == pytest.approx(0.0015) and levels["H-004"] == (None,)


def test_a_new_time_point_releases_a_new_version_of_the_generated_view(
    aml_warehouse: Path, tmp_path: Path
) -> None:
    assert apply_views(aml_warehouse).released == []  # nothing new: nothing released
    later = [mrd_row("H-001", "C3", "170", "MFC", "0.02", "positive")]
    load_source(aml_warehouse, "mrd", write_mrd(tmp_path / "mrd_c3.tsv", RESULTS + later))
    assert apply_views(aml_warehouse).released == ["patient_mrd@v2"]
    assert statuses(aml_warehouse, "mrd_c3_mfc_positive, mrd_c3_mfc_day")["H-001"] == (False, 170)
    shown = cgdw("views", "show", "patient_mrd", "--db", str(aml_warehouse))
    assert shown.returncode == 0, shown.stderr
    assert "--   mrd_c3_mfc_positive: MRD at C3 by MFC: positive at the threshold" in shown.stdout
    # An older version lists its own columns, not those the data has now.
    older = cgdw("views", "show", "patient_mrd@v1", "--db", str(aml_warehouse))
    assert "mrd_c2_lsc_positive" in older.stdout and "mrd_c3_mfc_positive" not in older.stdout


def test_column_names_come_from_the_time_point_and_the_method() -> None:
    assert column_prefix("C2", "MFC") == "mrd_c2_mfc"
    assert column_prefix("C2", "LSC-MFC") == "mrd_c2_lsc"
    assert column_prefix("MRD1", "ASO-PCR") == "mrd1_pcr"  # not mrd_mrd1_pcr
    assert column_prefix("Day 33", "NGS-IGTCR") == "mrd_day_33_ngs"
    with pytest.raises(
        MrdNamingError, match=r"'C2' \(MFC\) and 'c2' \(MFC\) both give the columns mrd_c2_mfc_"
    ):
        patient_mrd_sql([MrdPair("C2", "MFC"), MrdPair("c2", "MFC")])
    with pytest.raises(MrdNamingError, match="not one of"):
        column_prefix("C2", "FISH")


# --- another threshold for one analysis -------------------------------------------------------------------


def test_an_analysis_can_decide_positivity_at_another_threshold(aml_warehouse: Path) -> None:
    columns = "mrd_c2_mfc_positive, mrd_c2_lsc_positive"
    at_0_01_percent = statuses(aml_warehouse, columns, mrd_thresholds=(("MFC", 1e-4),))
    assert at_0_01_percent == {
        "H-001": (True, True),
        "H-002": (True, False),  # 0.05% is positive at 0.01%
        "H-003": (False, True),  # below a range that starts at 0.01%: still negative
        "H-004": (None, False),
        "H-005": (True, None),
    }
    # LSC at 0.001%: the detected-but-unquantified result can no longer be told, the 0.0004% is negative.
    lsc = statuses(aml_warehouse, columns, mrd_thresholds=(("LSC-MFC", 1e-5),))
    assert [v[1] for v in lsc.values()] == [False, False, None, False, None]


def test_the_default_thresholds_given_again_change_nothing(aml_warehouse: Path) -> None:
    """The override runs mrd_result v3's own SELECT: one rule, whatever the threshold."""
    columns = "mrd_c2_mfc_positive, mrd_c2_lsc_positive, mrd_c1_mfc_positive"
    same = (("LSC-MFC", 0.0), ("MFC", 1e-3))
    assert statuses(aml_warehouse, columns, mrd_thresholds=same) == statuses(aml_warehouse, columns)


def test_the_override_is_said_in_the_output_and_refused_when_it_cannot_apply(aml_warehouse: Path) -> None:
    fitted = analyse_outcomes(aml_warehouse, "os", "mrd_c2_mfc_positive", mrd_thresholds=["MFC=0.01%"])
    assert {g.group: g.n for g in fitted.result.groups} == {"yes": 3, "no": 1}
    assert "(--mrd-threshold: MFC MRD positive at >= 0.0001)" in fitted.result.notes[0]
    assert fitted.result.to_json()["mrd_thresholds"] == {"MFC": 1e-4}  # in the JSON, not only in prose
    with pytest.raises(CgdwError, match="no MRD result by that method"):
        analyse_outcomes(aml_warehouse, "os", "mrd_c2_mfc_positive", mrd_thresholds=["ASO-PCR=1e-4"])
    shown = cgdw(
        "table1", "--by", "mrd_c2_mfc_positive", "--mrd-threshold", "MFC=two", "--db", str(aml_warehouse)
    )
    assert shown.returncode != 0 and "--mrd-threshold 'MFC=two': 'two' is not a number" in shown.stderr


# --- what the loader does with MRD results (hostile review, issue 14) ---------------------------------------


def positives(db: Path, time_point: str) -> list[tuple[object, ...]]:
    return query(
        db,
        "SELECT m.unit_original, r.value_fraction, r.is_positive FROM mrd_result AS r "
        "JOIN mrd_measurement AS m USING (patient_id, time_point, method, target) "
        "WHERE r.time_point = $tp AND m.superseded_by_run_id IS NULL ORDER BY ALL",
        {"tp": time_point},
    )


def test_a_level_at_the_threshold_is_positive_whatever_its_unit(aml_warehouse: Path, tmp_path: Path) -> None:
    """100 per million, 0.01%, -4 log10 and 1e-4 are one level: 1e-4 exactly, positive at 1e-4 (before,
    100 / 1e6 gave 9.999999999999999e-05: negative)."""
    row = ["HOVON-SAKK", "H-001", "", "M1", "60", "ASO-PCR"]
    rows = [
        [*row, "TRG1", "100", "per_million", "1", "10", "positive"],
        [*row, "TRG2", "0.01", "%", "0.0001", "0.001", "positive"],
        [*row, "TRG3", "-4", "log10", "-6", "-5", "positive"],
        [*row, "TRG4", "1e-4", "fraction", "1e-6", "1e-5", "positive"],
    ]
    load_source(aml_warehouse, "mrd", write_mrd(tmp_path / "units.tsv", RESULTS + rows))
    apply_views(aml_warehouse)
    found = {(fraction, positive) for _, fraction, positive in positives(aml_warehouse, "M1")}
    assert found == {(1e-4, True)}
    assert parse_threshold_override("MFC=0.07%") == ("MFC", 0.0007)  # the threshold is read the same way


def test_a_file_of_one_time_point_leaves_the_others_as_they_are(aml_warehouse: Path, tmp_path: Path) -> None:
    """Labs send MRD one assessment at a time: the snapshot is per patient, time point and method."""
    before = statuses(aml_warehouse, "mrd_c2_mfc_positive, mrd_c2_lsc_positive")
    c3 = [mrd_row("H-001", "C3", "170", "MFC", "0.2", "positive")]
    report = load_source(aml_warehouse, "mrd", write_mrd(tmp_path / "c3.tsv", c3))
    assert report.tables["mrd_measurement"]["superseded"] == 0
    apply_views(aml_warehouse)
    assert statuses(aml_warehouse, "mrd_c2_mfc_positive, mrd_c2_lsc_positive") == before
    # A corrected C2 MFC file supersedes the C2 MFC results it changes, and only those.
    corrected = [r for r in RESULTS if r[3] == "C2" and r[5] == "MFC" and r[1] != "H-002"]
    corrected.append(mrd_row("H-002", "C2", "79", "MFC", "0.3", "positive"))
    report = load_source(aml_warehouse, "mrd", write_mrd(tmp_path / "c2.tsv", corrected))
    assert report.tables["mrd_measurement"]["superseded"] == 1
    apply_views(aml_warehouse)
    assert statuses(aml_warehouse, "mrd_c2_mfc_positive, mrd_c2_lsc_positive")["H-002"] == (True, False)


def test_an_assessment_with_a_target_not_evaluable_is_not_called_negative(
    aml_warehouse: Path, tmp_path: Path
) -> None:
    def pcr(patient: str, target: str, value: str, low: str, result: str) -> list[str]:
        levels = [value, "fraction", "1e-5", low]
        return ["HOVON-SAKK", patient, "", "MRD1", "35", "ASO-PCR", target, *levels, result]

    rows = [
        pcr("H-003", "TRG1", "", "1e-4", "negative"), pcr("H-003", "TRG2", "", "1e-4", "not done"),
        pcr("H-004", "TRG1", "", "1e-4", "negative"), pcr("H-004", "TRG2", "", "5e-4", "PNQ"),
        pcr("H-005", "TRG1", "2e-4", "1e-4", ""), pcr("H-005", "TRG2", "", "1e-4", "not done"),
    ]  # fmt: skip
    load_source(aml_warehouse, "mrd", write_mrd(tmp_path / "targets.tsv", RESULTS + rows))
    apply_views(aml_warehouse)
    got = statuses(aml_warehouse, "mrd1_pcr_positive, mrd1_positive")
    assert got["H-003"] == (None, None)  # one target negative, one not done
    assert got["H-004"] == (None, None)  # a target detected below a range that starts above 1e-4
    assert got["H-005"] == (True, True)  # a positive target is enough


def test_results_that_contradict_their_value_or_misname_a_time_point_are_quarantined(
    aml_warehouse: Path, tmp_path: Path
) -> None:
    rows = [
        mrd_row("H-001", "C1", "30", "MFC", "0.2", "negative"),  # negative, yet 0.2% >= its detection limit
        mrd_row("H-002", "C1", "30", "MFC", "0", "positive"),  # positive at 0
        mrd_row("H-003", "c2", "80", "MFC", "0.2", "positive"),  # C2 is written C2 in the warehouse
        mrd_row("H-004", "***", "80", "MFC", "0.2", "positive"),  # gives no column name
    ]
    bad = write_mrd(tmp_path / "bad.tsv", RESULTS + rows)
    report = load_source(aml_warehouse, "mrd", bad, max_reject_fraction=0.5)
    rejected = query(
        aml_warehouse,
        "SELECT line, column_name, value, rule, message FROM rejected_record WHERE etl_run_id = $run "
        "ORDER BY line",
        {"run": report.run_id},
    )
    assert [(line, rule) for line, _, _, rule, _ in rejected] == [
        (12, "result_agrees_with_value"), (13, "result_agrees_with_value"), (14, "time_point_name"),
        (15, "time_point_name"),
    ]  # fmt: skip
    assert rejected[2][4] == (
        "time point 'c2' is also written 'C2' in the warehouse: both would name the columns mrd_c2_*; "
        "load one spelling"
    )


def test_a_declared_attribute_may_not_take_the_name_of_an_mrd_column(tmp_path: Path) -> None:
    layout = (REPO / "etl" / "sources" / "layouts" / "hovon_aml.toml").read_text(encoding="utf-8")
    path = tmp_path / "aml_mrd.toml"
    path.write_text(layout.replace("[attributes.bm_blasts_pct]", "[attributes.mrd_c2_mfc_positive]"))
    with pytest.raises(CgdwError, match="attribute mrd_c2_mfc_positive: names of the form mrd_<time point>"):
        load_layout(path)


def test_a_spec_row_of_an_mrd_time_point_without_results_shows_nobody_evaluated(
    aml_warehouse: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "c3.toml"
    spec.write_text(
        'name = "c3"\ndescription = "MRD"\n'
        '[[rows]]\nid = "c2"\nlabel = "MFC-MRD after C2"\nkind = "count"\ncolumn = "mrd_c2_mfc_positive"\n'
        '[[rows]]\nid = "c3"\nlabel = "MFC-MRD after C3"\nkind = "count"\ncolumn = "mrd_c3_mfc_positive"\n'
    )
    table = build_table1(aml_warehouse, by="treatment_arm", rows=load_spec(spec).rows)
    c3 = next(r for r in table.rows if r.id == "c3")
    assert c3.total.n == 0 and c3.total.denom == 0
    assert "No MRD result gives mrd_c3_mfc_positive: nobody evaluated." in table.notes
    spec.write_text(spec.read_text().replace("mrd_c3_mfc_positive", "mrd_c3_mfc_positve"))
    with pytest.raises(CgdwError, match="has no column mrd_c3_mfc_positve"):  # a typo is still an error
        build_table1(aml_warehouse, by="treatment_arm", rows=load_spec(spec).rows)


def test_a_model_that_cannot_be_fitted_leaves_the_estimates_and_says_why(aml_warehouse: Path) -> None:
    """Both deaths are LSC-positive: the Cox model has no finite maximum. The Kaplan-Meier estimates stand
    and the output says the model was not estimable (the command used to stop on the Cox fit)."""
    result = analyse_outcomes(aml_warehouse, "os", "mrd_c2_lsc_positive").result
    assert result.hazard_ratios == []
    assert [(g.group, g.events) for g in result.groups] == [("yes", 2), ("no", 0)]
    assert any("not estimable" in note for note in result.notes), result.notes
    assert not any(
        "not estimable" in note
        for note in analyse_outcomes(aml_warehouse, "os", "treatment_arm").result.notes
    )


def test_a_quarantined_line_holds_back_the_assessment_it_would_have_corrected(
    aml_warehouse: Path, tmp_path: Path
) -> None:
    def pcr(target: str, value: str, unit: str, result: str) -> list[str]:
        return ["HOVON-SAKK", "H-002", "", "MRD1", "35", "ASO-PCR", target, value, unit, "", "", result]

    first = [pcr("TRG1", "2e-4", "fraction", "positive"), pcr("TRD2", "", "", "negative")]
    load_source(aml_warehouse, "mrd", write_mrd(tmp_path / "m1.tsv", RESULTS + first))
    corrected = [pcr("TRG1", "2e-4", "ppm", "positive"), pcr("TRD2", "", "", "negative")]  # unknown unit
    report = load_source(
        aml_warehouse, "mrd", write_mrd(tmp_path / "m1b.tsv", RESULTS + corrected), max_reject_fraction=0.5
    )
    assert report.rows_rejected == 1
    assert report.tables["mrd_measurement"]["superseded"] == 0
    assert report.tables["mrd_measurement"]["held_back"] == 1
    apply_views(aml_warehouse)
    assert statuses(aml_warehouse, "mrd1_pcr_positive, mrd1_positive")["H-002"] == (True, True)


def test_second_review_an_override_redecides_day_and_value_and_refuses_older_views(
    aml_warehouse: Path, tmp_path: Path
) -> None:
    """A result below a quantitative range of 0.5% is unknown at 0.1% (no day: not evaluable) and negative
    at 1%: under --mrd-threshold MFC=1% it has its day, so a landmark at the assessment keeps it."""
    c5 = [mrd_row("H-001", "C5", "150", "MFC", "", "positive not quantifiable", low="0.5")]
    load_source(aml_warehouse, "mrd", write_mrd(tmp_path / "c5.tsv", c5))
    apply_views(aml_warehouse)
    columns = "mrd_c5_mfc_positive, mrd_c5_mfc_day"
    assert statuses(aml_warehouse, columns)["H-001"] == (None, None)
    assert statuses(aml_warehouse, columns, mrd_thresholds=(("MFC", 0.01),))["H-001"] == (False, 150)
    with pytest.raises(CgdwError, match="cohort_patient_v2 fixes its thresholds in its own SQL"):
        read_cohort(aml_warehouse, "cohort_patient_v2", ["mrd1_positive"], mrd_thresholds=(("MFC", 0.01),))


def test_second_review_contradictions_without_a_detection_limit_are_quarantined(
    aml_warehouse: Path, tmp_path: Path
) -> None:
    def mfc(patient: str, value: str, lod: str, result: str) -> list[str]:
        return ["HOVON-SAKK", patient, "", "C4", "120", "MFC", "", value, "%", lod, "", result]

    rows = [mfc("H-001", "0.5", "", "negative"), mfc("H-002", "0.0005", "0.001", "positive"),
            mfc("H-003", "0.5", "", "positive")]  # fmt: skip
    report = load_source(
        aml_warehouse, "mrd", write_mrd(tmp_path / "c4.tsv", RESULTS + rows), max_reject_fraction=0.5
    )
    rules = query(
        aml_warehouse, "SELECT line, rule FROM rejected_record WHERE etl_run_id = $r", {"r": report.run_id}
    )
    assert sorted(rules) == [(12, "result_agrees_with_value"), (13, "result_agrees_with_value")]


def test_second_review_a_covariate_with_one_value_is_said_not_estimable(aml_warehouse: Path) -> None:
    result = analyse_outcomes(aml_warehouse, "os", "mrd_c2_mfc_positive", adjust=("bm_blasts_pct",)).result
    assert any("bm_blasts_pct has one value" in note for note in result.notes), result.notes
