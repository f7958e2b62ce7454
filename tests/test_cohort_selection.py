"""Restricting an analysis to a subgroup without writing a view: `--where` on table1, outcomes, plot and
report, a predicate over the cohort view's columns checked as `cgdw export --where` is (etl/sqlguard.py)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from etl.analysis.cohort import read_cohort
from etl.analysis.outcomes import OutcomeAnalysis, analyse_outcomes
from etl.analysis.table1 import build_table1
from etl.errors import CgdwError
from etl.report import build_report
from etl.sqlguard import UnsafeSql
from tests.helpers import cgdw, scalar

ADULT_WOMEN = "age >= 18 AND sex = 'F'"


def test_where_reads_exactly_the_patients_it_selects(warehouse: Path) -> None:
    chosen = read_cohort(warehouse, "cohort_patient", ["patient_id"], where=ADULT_WOMEN)
    expected = scalar(warehouse, f"SELECT count(*) FROM cohort_patient WHERE {ADULT_WOMEN}")
    assert chosen.height == expected and 0 < expected < scalar(
        warehouse, "SELECT count(*) FROM cohort_patient"
    )


def test_an_outcome_analysis_of_a_subgroup_is_the_analysis_of_those_patients(warehouse: Path) -> None:
    fitted = analyse_outcomes(warehouse, "os", "ikzf1_status", where=ADULT_WOMEN, adjust=("age",))
    by_hand = OutcomeAnalysis("os", "ikzf1_status", adjust=("age",))
    rows = read_cohort(warehouse, "cohort_patient", [*by_hand.columns, "sex"])
    expected = by_hand.fit(rows.filter((pl.col("age") >= 18) & (pl.col("sex") == "F"))).result
    result = fitted.result
    assert result.patients == expected.patients and result.where == ADULT_WOMEN
    assert [(g.group, g.n, g.events) for g in result.groups] == [
        (g.group, g.n, g.events) for g in expected.groups
    ]
    assert [g.estimate for g in result.groups] == pytest.approx(
        [g.estimate for g in expected.groups], rel=1e-12
    )
    # The same patients in another row order: equal but for the last bits of floating sums.
    assert [h.hr for h in result.hazard_ratios] == pytest.approx(
        [h.hr for h in expected.hazard_ratios], rel=1e-12
    )
    assert result.test.statistic == pytest.approx(expected.test.statistic, rel=1e-12)


def test_table1_of_a_subgroup_counts_its_patients_and_says_so(warehouse: Path) -> None:
    table = build_table1(warehouse, where=ADULT_WOMEN)
    with_group = scalar(
        warehouse, f"SELECT count(*) FROM cohort_patient WHERE {ADULT_WOMEN} AND ikzf1_status IS NOT NULL"
    )
    assert table.patients == with_group
    assert table.notes[0] == f"Patients of cohort_patient where {ADULT_WOMEN}."
    assert table.to_json()["where"] == ADULT_WOMEN


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("age >= 18; DROP TABLE patient", UnsafeSql),
        ("patient_id IN (SELECT patient_id FROM main.patient)", UnsafeSql),
        ("no_such_column = 1", UnsafeSql),
        # DuckDB refuses a chained comparison and Spark reads it: refused on both engines
        ("log_wbc > 2 = true", UnsafeSql),
        ("sex = 1", CgdwError),  # a type the column cannot compare: one line, not a traceback
    ],
)
def test_a_filter_that_is_not_a_predicate_over_the_cohort_is_refused(
    warehouse: Path, where: str, error: type[Exception]
) -> None:
    with pytest.raises(error, match="--where"):
        analyse_outcomes(warehouse, "os", "ikzf1_status", where=where)


def test_the_report_of_a_subgroup_says_which(warehouse: Path) -> None:
    html = build_report(warehouse, where=ADULT_WOMEN)
    patients = scalar(warehouse, f"SELECT count(*) FROM cohort_patient WHERE {ADULT_WOMEN}")
    assert f"{patients:,} patients in cohort_patient where age &gt;= 18 AND sex = &#x27;F&#x27;" in html


def test_the_commands_take_where(warehouse: Path, tmp_path: Path) -> None:
    table = cgdw("table1", "--where", ADULT_WOMEN, "--format", "md", "--db", str(warehouse))
    assert table.returncode == 0, table.stderr
    assert f"Patients of cohort_patient where {ADULT_WOMEN}." in table.stdout
    outcomes = cgdw("outcomes", "--endpoint", "cir", "--where", "age < 18", "--db", str(warehouse))
    assert outcomes.returncode == 0 and "where age < 18" in outcomes.stdout
    refused = cgdw("outcomes", "--where", "age >= 18 OR 1=1; DELETE FROM patient", "--db", str(warehouse))
    assert refused.returncode == 2 and "--where" in refused.stderr
    plot = cgdw(
        "plot", "oncoplot", "--out", str(tmp_path / "o.png"), "--where", "age < 18", "--db", str(warehouse)
    )
    assert plot.returncode == 0, plot.stderr


# --- named cohort definitions (queries/cohorts/NAME/vN.toml) ----------------------------------------------


def test_a_named_cohort_is_its_view_restricted_by_every_rule(warehouse: Path) -> None:
    from queries.cohorts import find_cohort

    definition = find_cohort("adults_in_cr")
    assert definition is not None and definition.ref == "adults_in_cr@v1"
    fitted = analyse_outcomes(warehouse, "cir", "ikzf1_status", cohort="adults_in_cr")
    expected = scalar(
        warehouse, "SELECT count(*) FROM cohort_patient WHERE age >= 18 AND complete_remission "
        "AND ikzf1_status IS NOT NULL AND cir_status IS NOT NULL",
    )  # fmt: skip
    assert fitted.result.patients == expected
    assert fitted.result.notes[0].startswith(
        f"Cohort adults_in_cr@v1 (rules sha256 {definition.sha256[:12]}): patients of cohort_patient where"
    )
    both = build_table1(warehouse, cohort="adults_in_cr@v1", where="sex = 'M'")
    assert both.where == "((age >= 18) AND (complete_remission)) AND (sex = 'M')"


def test_attrition_counts_patients_left_and_dropped_rule_by_rule(warehouse: Path) -> None:
    table = build_table1(warehouse, cohort="adults_in_cr", where="sex = 'M'", with_attrition=True)
    assert table.attrition is not None
    flow = table.attrition.rows()
    total = scalar(warehouse, "SELECT count(*) FROM cohort_patient")
    adults = scalar(warehouse, "SELECT count(*) FROM cohort_patient WHERE age >= 18")
    in_cr = scalar(warehouse, "SELECT count(*) FROM cohort_patient WHERE age >= 18 AND complete_remission")
    men = scalar(
        warehouse, "SELECT count(*) FROM cohort_patient WHERE age >= 18 AND complete_remission AND sex = 'M'"
    )
    assert [(step, patients, dropped) for step, _, patients, dropped in flow] == [
        ("All patients (consent given)", total, None),
        ("18 years or more at diagnosis", adults, total - adults),
        ("Complete remission after induction", in_cr, adults - in_cr),
        ("--where", men, in_cr - men),
    ]
    command = cgdw(
        "table1", "--cohort", "adults_in_cr", "--attrition", "--format", "md", "--db", str(warehouse)
    )
    assert command.returncode == 0, command.stderr
    assert "attrition" in command.stdout and "18 years or more at diagnosis" in command.stdout


def test_with_min_cell_a_flow_with_a_small_step_is_withheld(warehouse: Path) -> None:
    table = build_table1(
        warehouse, where="patient_id <> 1 AND patient_id <> 2", with_attrition=True, min_cell=10
    )
    assert table.attrition is None
    assert any("Attrition withheld" in note for note in table.notes)


def test_shipped_cohort_definitions_parse_and_take_no_name_of_a_view() -> None:
    from queries import load_definitions
    from queries.cohorts import load_cohorts

    cohorts = load_cohorts()
    assert cohorts and {c.name for c in cohorts}.isdisjoint({d.name for d in load_definitions()})
    for definition in cohorts:
        assert definition.rules and len(definition.sha256) == 64


def test_a_wrong_cohort_definition_names_its_file(tmp_path: Path) -> None:
    from queries.cohorts import CohortDefinitionError, parse_cohort_file

    path = tmp_path / "mine" / "v1.toml"
    path.parent.mkdir()
    path.write_text('name = "mine"\nversion = 1\n[[rules]]\nlabel = "x"\n')
    with pytest.raises(CohortDefinitionError, match=r"mine/v1.toml: rule 1 needs a label and a where"):
        parse_cohort_file(path)


def test_an_extract_of_a_named_cohort_records_it_in_the_manifest(warehouse: Path, tmp_path: Path) -> None:
    import json

    from etl.export import ExportFormat, export_view
    from queries.cohorts import find_cohort

    result = export_view(warehouse, "adults_in_cr", tmp_path / "x", ExportFormat.csv, where="sex = 'F'")
    definition = find_cohort("adults_in_cr")
    assert definition is not None
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert (manifest["cohort"], manifest["cohort_sha256"]) == ("adults_in_cr@v1", definition.sha256)
    assert manifest["where"] == "((age >= 18) AND (complete_remission)) AND (sex = 'F')"
    assert result.rows == scalar(
        warehouse, "SELECT count(*) FROM cohort_patient WHERE age >= 18 AND complete_remission AND sex = 'F'"
    )


def test_the_report_of_a_named_cohort_shows_its_attrition(warehouse: Path) -> None:
    html = build_report(warehouse, cohort="adults_in_cr")
    in_cr = scalar(warehouse, "SELECT count(*) FROM cohort_patient WHERE age >= 18 AND complete_remission")
    assert f"{in_cr:,} patients in adults_in_cr" in html
    assert 'id="attrition"' in html and "Complete remission after induction" in html
    assert 'id="attrition"' not in build_report(warehouse)  # the whole cohort: no flow to show
