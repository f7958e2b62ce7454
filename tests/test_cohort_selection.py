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
    assert [(g.group, g.n, g.events, g.estimate) for g in result.groups] == [
        (g.group, g.n, g.events, g.estimate) for g in expected.groups
    ]
    assert [h.hr for h in result.hazard_ratios] == [h.hr for h in expected.hazard_ratios]
    assert result.test.statistic == expected.test.statistic


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
