"""`cgdw demo`: the quick start's warehouse, built from synthetic files end to end, for each letter.

`--study tall` (the default) prints the seed letter's Table 1 and its OS / CIR analysis; `--study aml`
prints the second letter's (HOVON-SAKK 102): Table 1 by MFC-MRD status after cycle 2, OS / EFS / CIR from
each patient's cycle-2 assessment by MFC- and LSC-MRD, and the arms compared in ELN intermediate-I."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from etl.analysis.cohort import read_cohort
from etl.analysis.outcomes import analyse_outcomes, suppress_small_counts
from etl.analysis.table1_spec import load_spec
from etl.demo import AML_PATIENTS, DemoSummary, run_demo
from tests.helpers import cgdw
from tests.r_reference import run_r


@pytest.fixture(scope="module")
def aml_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    root = tmp_path_factory.mktemp("aml_demo")
    return run_demo(root / "aml.duckdb", study="aml")


def test_the_aml_demo_loads_the_trial_export_and_the_mrd_results_without_a_reject(
    aml_demo: DemoSummary,
) -> None:
    assert [(r.kind, r.rows_rejected) for r in aml_demo.reports] == [("clinical", 0), ("mrd", 0)]
    assert aml_demo.patients_per_protocol.rows() == [("HOVON-102", 800)]


def test_its_table_1_is_the_aml_spec_by_mfc_mrd_after_cycle_2(aml_demo: DemoSummary) -> None:
    table = aml_demo.table1
    assert table is not None and table.by == "mrd_c2_mfc_positive" and table.groups == ["yes", "no"]
    spec_ids = [r.id for r in load_spec("hovon102").rows]
    assert [r.id for r in table.rows if "=" not in r.id] == spec_ids
    # A declared categorical attribute shows its levels in the dictionary's order, with their labels.
    eln = [r.label.strip() for r in table.rows if r.id.startswith("eln=")]
    assert eln == ["Favourable", "Intermediate-I", "Intermediate-II", "Adverse"]


def test_outcomes_by_mrd_are_counted_from_each_patients_assessment(aml_demo: DemoSummary) -> None:
    landmarks = [(o.endpoint, o.by, o.landmark_column) for o in aml_demo.outcomes[:6]]
    assert landmarks == [
        (endpoint, f"mrd_c2_{method}_positive", f"mrd_c2_{method}_day")
        for method in ("mfc", "lsc")
        for endpoint in ("os", "efs", "cir")
    ]
    for result in aml_demo.outcomes[:6]:
        positive, negative = (g.estimate for g in result.groups)
        assert positive < negative if result.endpoint != "cir" else positive > negative


def test_the_cumulative_incidence_from_the_c2_landmark_equals_cmprsk(aml_demo: DemoSummary) -> None:
    cir = aml_demo.outcomes[2]
    columns = ["mrd_c2_mfc_positive", "mrd_c2_mfc_day", "cir_years", "cir_status"]
    frame = read_cohort(aml_demo.db_path, "cohort_patient", columns, where=AML_PATIENTS)
    data = frame.drop_nulls().select(
        pl.col("cir_years").alias("time"), pl.col("cir_status").alias("status"),
        pl.col("mrd_c2_mfc_positive").cast(pl.Int32).alias("positive"), pl.col("mrd_c2_mfc_day").alias("lm"),
    )  # fmt: skip
    r = run_r(
        """
        d <- subset(d, time > lm / 365.25); d$time <- (round(d$time * 365.25, 6) - d$lm) / 365.25
        ci <- cuminc(d$time, d$status, d$positive, cencode = 0)
        tp <- timepoints(ci, 4)
        f <- crr(d$time, d$status, as.matrix(d[, "positive", drop = FALSE]), failcode = 1, cencode = 0,
                 gtol = 1e-12)
        emit(list(n = nrow(d), est = as.list(tp$est[, 1]), gray = ci$Tests["1", "stat"],
                  hr = exp(f$coef[[1]])))
        """,
        {"d": data},
        packages=["cmprsk"],
    )
    assert cir.patients == r["n"]
    estimates = {g.group: g.estimate for g in cir.groups}
    assert estimates["yes"] == pytest.approx(r["est"]["1 1"], rel=1e-6)
    assert estimates["no"] == pytest.approx(r["est"]["0 1"], rel=1e-6)
    assert cir.test.statistic == pytest.approx(r["gray"], rel=1e-6)
    assert cir.hazard_ratios[0].hr == pytest.approx(r["hr"], rel=1e-6)


def test_the_arms_are_compared_in_eln_intermediate_i(aml_demo: DemoSummary) -> None:
    efs, os_ = aml_demo.outcomes[6:]
    for result in (efs, os_):
        assert result.by == "treatment_arm" and result.reference == "A"
        assert result.where == f"{AML_PATIENTS} AND eln2010_risk = 'int1'"
        control, clofarabine = (g.estimate for g in result.groups)
        assert clofarabine > control  # the letter: EFS 26% vs 40%, OS 29% vs 50% (tests/test_synth_aml.py)


def test_both_demos_run_from_the_command_line(tmp_path: Path) -> None:
    aml = cgdw("demo", "--study", "aml", "--db", str(tmp_path / "aml.duckdb"), cwd=tmp_path)
    assert aml.returncode == 0, aml.stderr
    text = " ".join(aml.stdout.split())
    assert "Table 1 by mrd_c2_mfc_positive" in text
    assert "from each patient's landmark day mrd_c2_lsc_day" in text
    assert "where protocol_code = 'HOVON-102' AND eln2010_risk = 'int1'" in text
    assert (tmp_path / "cgdw-demo-aml-data" / "README.txt").read_text().startswith("SYNTHETIC")

    tall = cgdw("demo", "--db", str(tmp_path / "tall.duckdb"), cwd=tmp_path)
    assert tall.returncode == 0, tall.stderr
    # The seed letter's groups (shared/reference/table1_published.tsv: 26 IKZF1-altered, 450 germline).
    assert "Table 1 by ikzf1_status (cohort_patient): Alt n=26, GL n=450" in " ".join(tall.stdout.split())


def test_a_fixed_landmark_says_how_many_were_assessed_after_it(aml_demo: DemoSummary) -> None:
    db = aml_demo.db_path
    fitted = analyse_outcomes(db, "os", "mrd_c2_mfc_positive", landmark_days=82, where=AML_PATIENTS)
    late = [note for note in fitted.result.notes if "assessed after the landmark (day 82)" in note]
    assert late and late[0].split(" of ")[0].isdigit() and int(late[0].split(" of ")[0]) > 0


def test_a_small_count_of_late_assessments_is_withheld_under_min_cell(aml_demo: DemoSummary) -> None:
    db = aml_demo.db_path
    fitted = analyse_outcomes(db, "os", "mrd_c2_mfc_positive", landmark_days=137, where=AML_PATIENTS)
    late = next(note for note in fitted.result.notes if "assessed after the landmark" in note)
    count = int(late.split(" of ")[0])
    assert 0 < count < 10
    suppressed = suppress_small_counts(fitted.result, 10)
    assert any(note.startswith("fewer than 10 of ") for note in suppressed.notes)
    assert not any(note.startswith(f"{count} of ") for note in suppressed.notes)
