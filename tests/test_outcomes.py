"""`cgdw outcomes` on the synthetic cohort, checked against R `survival` and `cmprsk` on the same data.

Tolerances: 1e-6 relative for estimates and hazard ratios, 1e-4 for CIs and P values (the issue's bar).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from etl.analysis.cohort import read_cohort
from etl.analysis.outcomes import OutcomeResult, analyse_outcomes
from etl.analysis.survival_plot import plot_outcomes
from etl.output import OutputFormat, render_outcomes
from tests.helpers import SHARED
from tests.r_reference import run_r

ADJUST = ("age", "log_wbc", "prednisone_good", "classifier_high")
HORIZON = 5.0


def fit(warehouse: Path, endpoint: str) -> OutcomeResult:
    return analyse_outcomes(warehouse, endpoint, "ikzf1_status", adjust=ADJUST, horizon=HORIZON).result


def cohort_frame(warehouse: Path, time: str, status: str) -> pl.DataFrame:
    """What R gets: the same rows, with the group as 0/1 (Alt = 1) and booleans as 0/1."""
    frame = read_cohort(warehouse, "cohort_patient", ["ikzf1_status", time, status, *ADJUST])
    return frame.drop_nulls([time, status, "ikzf1_status"]).select(
        pl.col(time).alias("time"),
        pl.col(status).alias("status"),
        pl.col("ikzf1_status"),
        (pl.col("ikzf1_status") == "Alt").cast(pl.Int32).alias("alt"),
        pl.col("age"),
        pl.col("log_wbc"),
        pl.col("prednisone_good").cast(pl.Int32),
        pl.col("classifier_high").cast(pl.Int32),
    )


def ratios(result: OutcomeResult, model: str) -> dict[str, tuple[float, float, float, float]]:
    return {
        h.covariate: (h.hr, h.lower, h.upper, h.p_value) for h in result.hazard_ratios if h.model == model
    }


R_NAMES = {"ikzf1_status=Alt": "alt", **{name: name for name in ADJUST}}


@pytest.fixture(scope="module")
def os_result(warehouse: Path) -> OutcomeResult:
    return fit(warehouse, "os")


@pytest.fixture(scope="module")
def cir_result(warehouse: Path) -> OutcomeResult:
    return fit(warehouse, "cir")


@pytest.fixture(scope="module")
def r_survival(warehouse: Path) -> dict[str, object]:
    """survfit (log-log CI), survdiff and coxph (Efron) on the OS data."""
    return run_r(
        f"""
        d <- os
        fit <- survfit(Surv(time, status) ~ ikzf1_status, data = d, conf.type = "log-log")
        s <- summary(fit, times = {HORIZON}, extend = TRUE)
        all <- summary(survfit(Surv(time, status) ~ 1, data = d, conf.type = "log-log"), times = {HORIZON})
        lr <- survdiff(Surv(time, status) ~ ikzf1_status, data = d)
        # Both sides iterate to the maximum itself (coxph stops at a relative log-likelihood change of
        # 1e-9 by default, which leaves ~1e-6 in the estimates).
        ctl <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100)
        hr <- function(f) {{
          k <- summary(f)$conf.int; p <- summary(f)$coefficients[, "Pr(>|z|)"]
          lapply(setNames(seq_len(nrow(k)), rownames(k)), function(i)
            c(k[i, "exp(coef)"], k[i, "lower .95"], k[i, "upper .95"], p[[i]]))
        }}
        uni <- c(
          hr(coxph(Surv(time, status) ~ alt, data = d, ties = "efron", control = ctl)),
          hr(coxph(Surv(time, status) ~ age, data = d, ties = "efron", control = ctl)),
          hr(coxph(Surv(time, status) ~ log_wbc, data = d, ties = "efron", control = ctl)),
          hr(coxph(Surv(time, status) ~ prednisone_good, data = d, ties = "efron", control = ctl)),
          hr(coxph(Surv(time, status) ~ classifier_high, data = d, ties = "efron", control = ctl)))
        multi <- hr(coxph(Surv(time, status) ~ alt + age + log_wbc + prednisone_good + classifier_high,
                          data = d, ties = "efron", control = ctl))
        emit(list(strata = sub("ikzf1_status=", "", as.character(s$strata)), surv = s$surv,
                  lower = s$lower, upper = s$upper, all = c(all$surv, all$lower, all$upper),
                  chisq = lr$chisq, p = pchisq(lr$chisq, 1, lower.tail = FALSE), uni = uni, multi = multi))
        """,
        {"os": cohort_frame(warehouse, "os_years", "os_status")},
        packages=["survival"],
    )


def test_kaplan_meier_at_five_years_matches_survfit(os_result: OutcomeResult, r_survival: dict) -> None:
    for group in os_result.groups:
        i = r_survival["strata"].index(group.group)
        assert group.estimate == pytest.approx(r_survival["surv"][i], rel=1e-6)
        assert group.lower == pytest.approx(r_survival["lower"][i], rel=1e-4)
        assert group.upper == pytest.approx(r_survival["upper"][i], rel=1e-4)
    overall = os_result.overall
    assert (overall.estimate, overall.lower, overall.upper) == pytest.approx(r_survival["all"], rel=1e-4)


def test_log_rank_matches_survdiff(os_result: OutcomeResult, r_survival: dict) -> None:
    assert os_result.test.name == "log-rank test"
    assert os_result.test.statistic == pytest.approx(r_survival["chisq"], rel=1e-6)
    assert os_result.test.p_value == pytest.approx(r_survival["p"], rel=1e-4)


def assert_ratios_match(result: OutcomeResult, model: str, reference: dict) -> None:
    """HRs to 1e-6, CIs and P values to 1e-4, for every covariate of the model."""
    found = ratios(result, model)
    assert set(found) == set(R_NAMES)
    for covariate, (hr, lower, upper, p) in found.items():
        r_hr, r_lower, r_upper, r_p = reference[R_NAMES[covariate]]
        assert hr == pytest.approx(r_hr, rel=1e-6), covariate
        assert (lower, upper) == pytest.approx((r_lower, r_upper), rel=1e-4), covariate
        assert p == pytest.approx(r_p, rel=1e-4, abs=1e-12), covariate


@pytest.mark.parametrize("model", ["univariable", "multivariable"])
def test_cox_hazard_ratios_match_coxph(os_result: OutcomeResult, r_survival: dict, model: str) -> None:
    assert_ratios_match(os_result, model, r_survival["uni" if model == "univariable" else "multi"])


@pytest.fixture(scope="module")
def r_competing(warehouse: Path) -> dict[str, object]:
    """cuminc (with timepoints) and crr on the CIR data: relapse = 1, death in CR = 2."""
    return run_r(
        f"""
        d <- cir
        ci <- cuminc(d$time, d$status, d$ikzf1_status, cencode = 0)
        tp <- timepoints(ci, {HORIZON})
        all <- timepoints(cuminc(d$time, d$status, cencode = 0), {HORIZON})
        # From coef and var themselves: summary.crr rounds its P values.
        shr <- function(f) {{
          se <- sqrt(diag(f$var)); z <- qnorm(0.975)
          lapply(setNames(seq_along(f$coef), names(f$coef)), function(i)
            c(exp(f$coef[[i]]), exp(f$coef[[i]] - z * se[[i]]), exp(f$coef[[i]] + z * se[[i]]),
              2 * pnorm(-abs(f$coef[[i]] / se[[i]]))))
        }}
        # crr stops at a gradient of 1e-6 by default (~1e-6 left in the estimates): iterate to the maximum.
        covs <- c("alt", "age", "log_wbc", "prednisone_good", "classifier_high")
        uni <- list()
        for (v in covs) {{
          k <- d[!is.na(d[[v]]), ]
          x <- as.matrix(k[, v, drop = FALSE])
          uni[[v]] <- shr(crr(k$time, k$status, x, failcode = 1, cencode = 0, gtol = 1e-12))[[v]]
        }}
        k <- d[complete.cases(d[, covs]), ]
        multi <- shr(crr(k$time, k$status, as.matrix(k[, covs]), failcode = 1, cencode = 0, gtol = 1e-12))
        emit(list(est = as.list(tp$est[, 1]), var = as.list(tp$var[, 1]),
                  all_est = all$est[1, 1], all_var = all$var[1, 1],
                  gray = ci$Tests["1", "stat"], gray_p = ci$Tests["1", "pv"], uni = uni, multi = multi))
        """,
        {"cir": cohort_frame(warehouse, "cir_years", "cir_status")},
        packages=["cmprsk"],
    )


def test_cumulative_incidence_at_five_years_matches_cuminc(
    cir_result: OutcomeResult, r_competing: dict
) -> None:
    for group in cir_result.groups:
        assert group.estimate == pytest.approx(r_competing["est"][f"{group.group} 1"], rel=1e-6)
    assert cir_result.overall.estimate == pytest.approx(r_competing["all_est"], rel=1e-6)


def test_cumulative_incidence_cis_follow_cumincs_variance(
    cir_result: OutcomeResult, r_competing: dict
) -> None:
    """The CI is est^exp(+-1.96 sqrt(var) / (est log est)) with cuminc's variance."""
    import math

    for group in cir_result.groups:
        est, var = r_competing["est"][f"{group.group} 1"], r_competing["var"][f"{group.group} 1"]
        half = 1.959963984540054 * math.sqrt(var) / (est * math.log(est))
        bounds = sorted((est ** math.exp(half), est ** math.exp(-half)))
        assert (group.lower, group.upper) == pytest.approx(bounds, rel=1e-4)


def test_grays_test_matches_cuminc(cir_result: OutcomeResult, r_competing: dict) -> None:
    assert cir_result.test.name == "Gray's test"
    assert cir_result.test.statistic == pytest.approx(r_competing["gray"], rel=1e-6)
    assert cir_result.test.p_value == pytest.approx(r_competing["gray_p"], rel=1e-4)


@pytest.mark.parametrize("model", ["univariable", "multivariable"])
def test_fine_gray_hazard_ratios_match_crr(cir_result: OutcomeResult, r_competing: dict, model: str) -> None:
    assert_ratios_match(cir_result, model, r_competing["uni" if model == "univariable" else "multi"])


def published_estimates() -> dict[str, dict[str, str]]:
    lines = (SHARED / "reference" / "table1_published.tsv").read_text().splitlines()
    header = next(line for line in lines if line.startswith("row\t")).split("\t")
    rows = [
        dict(zip(header, line.split("\t"), strict=False))
        for line in lines
        if line.startswith(("os5", "cir5"))
    ]
    return {row["row"]: row for row in rows}


@pytest.mark.parametrize(("endpoint", "row"), [("os", "os5"), ("cir", "cir5")])
def test_five_year_estimates_are_near_the_published_ones(
    os_result: OutcomeResult, cir_result: OutcomeResult, endpoint: str, row: str
) -> None:
    """The synthetic outcomes are random draws calibrated to the letter: within 3 percentage points."""
    result = os_result if endpoint == "os" else cir_result
    expected = published_estimates()[row]
    by_group = {g.group: g.estimate for g in result.groups}
    assert by_group["Alt"] == pytest.approx(float(expected["alt"]) / 100, abs=0.03)
    assert by_group["GL"] == pytest.approx(float(expected["gl"]) / 100, abs=0.03)
    assert result.overall.estimate == pytest.approx(float(expected["total"]) / 100, abs=0.03)


def test_patients_never_in_cr_are_left_out_of_cir_and_said_so(cir_result: OutcomeResult) -> None:
    assert cir_result.patients == 440  # the 440 patients in CR of Table 1
    assert cir_result.excluded["never in CR, or CR unknown (not counted in CIR; endpoint view)"] == 36


def test_the_json_is_the_documented_one(os_result: OutcomeResult) -> None:
    document = json.loads(render_outcomes(os_result, OutputFormat.json))
    assert {"endpoint", "by", "reference", "horizon_years", "groups", "overall", "test", "hazard_ratios",
            "ci_method", "model", "patients", "excluded"} <= set(document)  # fmt: skip
    assert set(document["groups"][0]) == {"group", "n", "events", "estimate", "lower", "upper"}
    assert set(document["test"]) == {"name", "statistic", "df", "p_value"}
    assert set(document["hazard_ratios"][0]) == {"model", "covariate", "hr", "lower", "upper", "p_value", "n",
                                                 "events"}  # fmt: skip


def test_efs_counts_induction_failure_as_an_event_at_day_zero(warehouse: Path) -> None:
    result = analyse_outcomes(warehouse, "efs", "ikzf1_status").result
    frame = read_cohort(warehouse, "cohort_patient", ["complete_remission", "efs_years", "efs_status"])
    failures = frame.filter(~pl.col("complete_remission"))
    assert failures.height == 36
    assert (failures["efs_years"] == 0).all() and (failures["efs_status"] == 1).all()
    assert result.test.name == "log-rank test" and result.patients == 476


def test_curves_are_drawn_with_numbers_at_risk(warehouse: Path, tmp_path: Path) -> None:
    out = plot_outcomes(analyse_outcomes(warehouse, "cir", "ikzf1_status"), tmp_path / "cir.svg")
    svg = out.read_text()
    assert "Gray's test P" in svg and "No. at risk" in svg and "ikzf1_status Alt (n=24)" in svg


def published_hazard_ratios() -> list[dict[str, str]]:
    lines = (SHARED / "reference" / "hazard_ratios_published.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in lines if not line.startswith("#")]
    return [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]


def test_hazard_ratios_fall_within_the_published_confidence_intervals(
    os_result: OutcomeResult, cir_result: OutcomeResult
) -> None:
    """How near the random synthetic outcomes come: every HR the letter prints, univariable and
    multivariable, lies inside the letter's 95% CI; rows whose printed CI excludes their own HR (CIR age:
    1.01, 0.98-1.0, a rounding misprint) are left out."""
    names = {"ikzf1_alt": "ikzf1_status=Alt", "age*": "age", "log_wbc*": "log_wbc"}
    checked = 0
    for row in published_hazard_ratios():
        result = os_result if row["endpoint"] == "os" else cir_result
        for model, prefix in (("univariable", "uni"), ("multivariable", "multi")):
            if not row[f"{prefix}_hr"]:
                continue
            low, high = (float(v) for v in row[f"{prefix}_ci"].split("-"))
            if not low <= float(row[f"{prefix}_hr"]) <= high:
                continue
            hr = ratios(result, model)[names.get(row["covariate"], row["covariate"])][0]
            assert low <= round(hr, 2) <= high, (row["endpoint"], row["covariate"], model, hr)
            checked += 1
    assert checked == 18


def test_min_cell_hides_small_event_counts_and_what_gives_them_back(warehouse: Path, tmp_path: Path) -> None:
    """With --min-cell, a group's small event count is hidden, the total's with it (the total is the sum
    of the groups), and the events of the models (the total's): nothing below the threshold can be
    derived; numbers at risk below it print as <N under the curves."""
    from etl.analysis.outcomes import suppress_small_counts

    fitted = analyse_outcomes(warehouse, "os", "ikzf1_status", adjust=ADJUST, horizon=HORIZON)
    exact = {g.group: g.events for g in [*fitted.result.groups, fitted.result.overall]}
    result = suppress_small_counts(analyse_outcomes(warehouse, "os", "ikzf1_status").result, 20)
    cells = {g.group: g for g in [*result.groups, result.overall]}
    assert exact["Alt"] < 20 and cells["Alt"].events is None and cells["Alt"].suppressed == "<20"
    assert cells["Total"].events is None and cells["Total"].suppressed == "x"
    assert cells["GL"].events == exact["GL"]  # the other group is still shown: alone it gives nothing
    assert all(h.events is None for h in result.hazard_ratios)
    text = render_outcomes(result, OutputFormat.csv) + json.dumps(result.to_json())
    assert f'"events": {exact["Total"]}' not in text
    svg = plot_outcomes(fitted, tmp_path / "os.svg", min_cell=20).read_text()
    assert "&lt;20" in svg


@pytest.mark.parametrize("endpoint", ["os", "cir"])
def test_a_grouping_of_several_groups_is_one_model_as_r_factor(warehouse: Path, endpoint: str) -> None:
    """--by tcr_group (four groups): each group against the reference in ONE model, as R's
    coxph(~ factor) and crr(model.matrix) give; each group against the others pooled was a defect."""
    fitted = analyse_outcomes(warehouse, endpoint, "tcr_group", horizon=HORIZON).result
    time, status = ("os_years", "os_status") if endpoint == "os" else ("cir_years", "cir_status")
    frame = read_cohort(warehouse, "cohort_patient", ["tcr_group", time, status]).drop_nulls()
    reference = fitted.reference
    result = run_r(
        f"""
        d$g <- relevel(factor(d$tcr_group), ref = {json.dumps(reference)})
        x <- model.matrix(~ g, d)[, -1, drop = FALSE]
        colnames(x) <- sub("^g", "tcr_group=", colnames(x))
        if ({json.dumps(endpoint)} == "os") {{
          ctl <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100)
          f <- coxph(Surv(d${time}, d${status}) ~ x, ties = "efron", control = ctl)
          coef <- coef(f); se <- sqrt(diag(vcov(f)))
        }} else {{
          f <- crr(d${time}, d${status}, x, failcode = 1, cencode = 0, gtol = 1e-12)
          coef <- f$coef; se <- sqrt(diag(f$var))
        }}
        z <- qnorm(0.975)
        emit(lapply(setNames(seq_along(coef), colnames(x)), function(i)
          c(exp(coef[[i]]), exp(coef[[i]] - z * se[[i]]), exp(coef[[i]] + z * se[[i]]),
            2 * pnorm(-abs(coef[[i]] / se[[i]])))))
        """,
        {"d": frame},
        packages=["survival", "cmprsk"],
    )
    ours = ratios(fitted, "univariable")
    assert set(ours) == set(result) and len(ours) == 3
    for covariate, (r_hr, r_lower, r_upper, r_p) in result.items():
        hr, lower, upper, p = ours[covariate]
        assert hr == pytest.approx(r_hr, rel=1e-6), covariate
        assert (lower, upper) == pytest.approx((r_lower, r_upper), rel=1e-4), covariate
        assert p == pytest.approx(r_p, rel=1e-4, abs=1e-12), covariate
