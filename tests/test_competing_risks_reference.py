"""`etl.analysis.competing_risks` against R's cmprsk (the reference), plus properties checked in Python.

One synthetic cohort of 300 patients (fixed seed): two arms, age (continuous) and sex (binary); relapse
(1), death without relapse (2) or censoring (0); times rounded up to a quarter year, so failures of both
causes and censorings share times, as in registry data. R runs once per module (`tests/r_reference.py`).

Tolerances: 1e-6 relative for estimates, variances, coefficients and test statistics; 1e-4 relative for
CIs, standard errors and P values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter

from etl.analysis.competing_risks import CumulativeIncidenceFitter, FineGrayFitter, gray_test
from tests.r_reference import RNotAvailableError, run_r

EXACT = 1e-6  # estimates, variances, coefficients, statistics
LOOSE = 1e-4  # CIs, standard errors, P values
TIMEPOINTS = [
    0.25,
    0.6,
    1.0,
    2.0,
    3.5,
    5.0,
    7.75,
    9.9,
    12.0,
]  # on and between grid times; 12 is past follow-up
COVARIATES = ["arm", "age", "male"]
Z975 = 1.959963984540054  # R qnorm(0.975)


def _cohort() -> pl.DataFrame:
    rng = np.random.default_rng(20240611)
    n = 300
    arm = rng.integers(0, 2, n)
    age = rng.normal(40, 12, n).round(1)
    male = rng.integers(0, 2, n)
    relapse = rng.exponential(4 / np.exp(0.6 * arm + 0.03 * (age - 40) - 0.3 * male))
    death = rng.exponential(8 / np.exp(-0.5 * arm + 0.02 * (age - 40)))
    censor = rng.uniform(1, 10, n)
    t = np.minimum(np.minimum(relapse, death), censor)
    status = np.where(t == censor, 0, np.where(t == relapse, 1, 2))
    return pl.DataFrame(
        {
            "time": np.ceil(t * 4) / 4,  # quarter-year grid: tied failures, and failures tied with censorings
            "status": status,
            "group": np.where(arm == 1, "B", "A"),
            "arm": arm,
            "age": age,
            "male": male,
            # For the K-sample and stratified tests.
            "risk": rng.choice(["high", "low", "standard"], n),
            "centre": rng.integers(1, 3, n),
        }
    )


@pytest.fixture(scope="module")
def cohort() -> pl.DataFrame:
    return _cohort()


@pytest.fixture(scope="module")
def r_ref(cohort: pl.DataFrame) -> Any:
    """Everything R computes on the cohort, in one Rscript run."""
    return run_r(
        f"""
        tp_times <- c({", ".join(map(str, TIMEPOINTS))})
        ci <- cuminc(d$time, d$status, d$group)
        tp <- timepoints(ci, tp_times)
        loglog <- function(est, var, sign) est^exp(sign * qnorm(0.975) * sqrt(var) / (est * log(est)))
        x <- as.matrix(d[, c({", ".join(f'"{c}"' for c in COVARIATES)})])
        crr_out <- function(fit) list(coef = unname(fit$coef), se = unname(sqrt(diag(fit$var))))
        emit(list(
          curves = rownames(tp$est),
          est = tp$est, var = tp$var,
          lower = loglog(tp$est, tp$var, -1), upper = loglog(tp$est, tp$var, 1),
          gray = ci$Tests,
          gray_k3_strata = cuminc(d$time, d$status, d$risk, strata = d$centre)$Tests,
          gray_rho1 = cuminc(d$time, d$status, d$group, rho = 1)$Tests,
          univariable = lapply(colnames(x), function(v) crr_out(crr(d$time, d$status, x[, v, drop = FALSE]))),
          multivariable = crr_out(crr(d$time, d$status, x)),
          multivariable_death = crr_out(crr(d$time, d$status, x, failcode = 2))
        ))
        """,
        {"d": cohort},
        packages=["cmprsk"],
    )


def _close(actual: Any, expected: Any, rtol: float, what: str) -> None:
    a, e = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=0, equal_nan=True, err_msg=what)


def _r_matrix(values: Any) -> npt.NDArray[np.float64]:
    """A JSON matrix from R (rows of numbers, null for NA) as floats with NaN."""
    return np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)


# --------------------------------------------------------------------------------------------------------
# Cumulative incidence: cmprsk::cuminc + timepoints
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cause", [1, 2])
def test_cumulative_incidence_matches_cuminc(cohort: pl.DataFrame, r_ref: Any, cause: int) -> None:
    """Per arm, the CIF and its variance at the time points equal `timepoints(cuminc(...))` (1e-6), NaN past
    the arm's last follow-up time as in R; the log(-log) CI equals the one computed in R from them (1e-4)."""
    fitter = CumulativeIncidenceFitter().fit(cohort["time"], cohort["status"], cohort["group"], cause=cause)
    table = fitter.predict(TIMEPOINTS)
    for group in ("A", "B"):
        row = r_ref["curves"].index(f"{group} {cause}")
        mine = table[table["group"] == group]
        _close(mine["estimate"], _r_matrix(r_ref["est"])[row], EXACT, f"estimate {group} cause {cause}")
        _close(mine["variance"], _r_matrix(r_ref["var"])[row], EXACT, f"variance {group} cause {cause}")
        # R's loglog() is NaN where the estimate is 0; ours is the degenerate interval [0, 0] there.
        r_lower, r_upper = _r_matrix(r_ref["lower"])[row], _r_matrix(r_ref["upper"])[row]
        defined = ~np.isnan(r_lower)
        _close(mine["lower"].to_numpy()[defined], r_lower[defined], LOOSE, f"lower {group} cause {cause}")
        _close(mine["upper"].to_numpy()[defined], r_upper[defined], LOOSE, f"upper {group} cause {cause}")
        assert np.isnan(mine["estimate"].to_numpy()[-1])  # 12 years is past every follow-up time


def test_cumulative_incidence_at_and_curve_agree_with_predict(cohort: pl.DataFrame) -> None:
    """`at(t)` is `predict` at one time; the plotting curve starts at (0, 0) and is right-continuous."""
    fitter = CumulativeIncidenceFitter().fit(cohort["time"], cohort["status"], cohort["group"])
    table = fitter.predict([2.0])
    point = fitter.at(2.0, group="B")
    assert point.estimate == table.loc[table["group"] == "B", "estimate"].item()
    curve = fitter.curve("B")
    assert curve.time[0] == 0 and curve.estimate[0] == 0
    assert curve.estimate[np.searchsorted(curve.time, 2.0, side="right") - 1] == point.estimate
    assert fitter.ci_method.startswith("log(-log)")


# --------------------------------------------------------------------------------------------------------
# Gray's test: cmprsk::cuminc()$Tests
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "group_column", "strata_column", "rho"),
    [
        ("gray", "group", None, 0.0),
        ("gray_k3_strata", "risk", "centre", 0.0),
        ("gray_rho1", "group", None, 1.0),
    ],
    ids=["two-arms", "three-groups-stratified", "rho=1"],
)
def test_gray_test_matches_cuminc(
    cohort: pl.DataFrame, r_ref: Any, reference: str, group_column: str, strata_column: str | None, rho: float
) -> None:
    """Statistic (1e-6), P (1e-4) and df of Gray's test for relapse and for death, as `cuminc()$Tests`."""
    strata = cohort[strata_column] if strata_column else None
    for row, cause in enumerate((1, 2)):  # Tests has one row per cause, in code order
        result = gray_test(
            cohort["time"], cohort["status"], cohort[group_column], cause, strata=strata, rho=rho
        )
        stat, p_value, df = r_ref[reference][row]
        _close(result.statistic, stat, EXACT, f"{reference} statistic, cause {cause}")
        # R reports 1 - pchisq(), which loses relative precision for small P; we use the survival function.
        _close(result.p_value, p_value, LOOSE, f"{reference} P, cause {cause}")
        assert result.df == df


def test_gray_test_does_not_depend_on_group_order(cohort: pl.DataFrame) -> None:
    """The statistic uses the scores of K-1 groups; which group is left out must not matter."""
    time, status = cohort["time"], cohort["status"]
    plain = gray_test(time, status, cohort["risk"])
    renamed = gray_test(time, status, cohort["risk"].replace({"high": "zz-high"}))
    assert renamed.statistic == pytest.approx(plain.statistic, rel=1e-10)


# --------------------------------------------------------------------------------------------------------
# Fine-Gray: cmprsk::crr
# --------------------------------------------------------------------------------------------------------


def _check_crr(fit: FineGrayFitter, reference: dict[str, Any], what: str) -> None:
    coef, se = np.asarray(reference["coef"], dtype=float), np.asarray(reference["se"], dtype=float)
    # crr stops Newton-Raphson once the score is below gtol = 1e-6 of the log-likelihood; we iterate to
    # convergence. Here that leaves crr ~6e-8 (relative) from the maximum; on small samples it can leave
    # 1e-5, and crr(..., gtol = 1e-14) then agrees with us to 1e-15.
    _close(fit.coef, coef, EXACT, f"{what}: coef")
    _close(fit.se, se, LOOSE, f"{what}: se")
    _close(fit.p, 2 * (1 - _normal_cdf(np.abs(coef / se))), LOOSE, f"{what}: P")
    _close(fit.ci, np.exp(np.column_stack((coef - Z975 * se, coef + Z975 * se))), LOOSE, f"{what}: CI")


def _normal_cdf(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    from scipy.stats import norm

    return np.asarray(norm.cdf(z), dtype=float)


def test_fine_gray_univariable_matches_crr(cohort: pl.DataFrame, r_ref: Any) -> None:
    """One crr fit per covariate: coefficients (1e-6), robust SE, Wald P and 95% CI (1e-4)."""
    for name, reference in zip(COVARIATES, r_ref["univariable"], strict=True):
        fit = FineGrayFitter().fit(cohort["time"], cohort["status"], cohort.select(name))
        _check_crr(fit, reference, name)


def test_fine_gray_multivariable_matches_crr(cohort: pl.DataFrame, r_ref: Any) -> None:
    """arm + age + sex for relapse (cause 1) and for death (cause 2, relapse then competing), as crr."""
    covariates = cohort.select(COVARIATES)
    fit = FineGrayFitter().fit(cohort["time"], cohort["status"], covariates)
    _check_crr(fit, r_ref["multivariable"], "multivariable, relapse")
    death = FineGrayFitter().fit(cohort["time"], cohort["status"], covariates, cause=2)
    _check_crr(death, r_ref["multivariable_death"], "multivariable, death")
    assert list(fit.summary.columns) == ["covariate", "coef", "se", "hr", "hr_lower", "hr_upper", "p"]
    assert list(fit.summary["covariate"]) == COVARIATES


def test_fine_gray_accepts_arrays_and_frames_alike(cohort: pl.DataFrame) -> None:
    """A numpy matrix, a pandas and a polars frame give the same fit; arrays get names x1, x2, ..."""
    time, status = cohort["time"].to_numpy(), cohort["status"].to_numpy()
    polars_fit = FineGrayFitter().fit(time, status, cohort.select(COVARIATES))
    pandas_fit = FineGrayFitter().fit(time, status, cohort.select(COVARIATES).to_pandas())
    array_fit = FineGrayFitter().fit(time, status, cohort.select(COVARIATES).to_numpy())
    np.testing.assert_array_equal(polars_fit.coef, pandas_fit.coef)
    np.testing.assert_array_equal(polars_fit.coef, array_fit.coef)
    assert list(array_fit.summary["covariate"]) == ["x1", "x2", "x3"]


# --------------------------------------------------------------------------------------------------------
# Properties, in Python only
# --------------------------------------------------------------------------------------------------------


def test_cifs_of_all_causes_and_survival_sum_to_one(cohort: pl.DataFrame) -> None:
    """At every time, CIF(relapse) + CIF(death) + all-cause Kaplan-Meier survival (lifelines) = 1."""
    time, status = cohort["time"].to_numpy(), cohort["status"].to_numpy()
    grid = np.unique(time)
    relapse = CumulativeIncidenceFitter().fit(time, status, cause=1).predict(grid)["estimate"].to_numpy()
    death = CumulativeIncidenceFitter().fit(time, status, cause=2).predict(grid)["estimate"].to_numpy()
    km = KaplanMeierFitter().fit(time, status > 0).survival_function_at_times(grid).to_numpy()
    np.testing.assert_allclose(relapse + death + km, 1.0, rtol=0, atol=1e-12)


def test_without_competing_events_cif_is_one_minus_kaplan_meier(cohort: pl.DataFrame) -> None:
    """With death recoded as censoring, the CIF of relapse is 1 - Kaplan-Meier (lifelines) at every time."""
    time = cohort["time"].to_numpy()
    relapse = (cohort["status"] == 1).cast(pl.Int64).to_numpy()
    grid = np.unique(time)
    cif = CumulativeIncidenceFitter().fit(time, relapse).predict(grid)["estimate"].to_numpy()
    km = KaplanMeierFitter().fit(time, relapse).survival_function_at_times(grid).to_numpy()
    np.testing.assert_allclose(cif, 1 - km, rtol=0, atol=1e-12)


def test_censorings_tied_with_failures_stay_in_the_risk_set() -> None:
    """At a tied time, failures are counted before censorings (as R): the censored subject is at risk.

    Five subjects; at t=1 one relapse, one death, one censoring, all 5 at risk: F(1) = 1/5, S(1) = 3/5.
    At t=2 two remain at risk and one relapses: F(2) = 1/5 + 3/5 · 1/2 = 1/2.
    """
    fitter = CumulativeIncidenceFitter().fit([1, 1, 1, 2, 3], [1, 2, 0, 1, 0])
    assert fitter.at(1).estimate == pytest.approx(0.2, abs=1e-15)
    assert fitter.at(2).estimate == pytest.approx(0.5, abs=1e-15)
    assert fitter.summary["at_risk"].tolist() == [5, 2, 1]


def test_fine_gray_without_competing_events_is_cox() -> None:
    """No competing events and untied times: Fine-Gray is Cox regression, and crr's sandwich is the
    Lin-Wei robust variance (lifelines `robust=True`). lifelines stops its Newton iterations at a looser
    tolerance, hence 1e-5 on the coefficients."""
    rng = np.random.default_rng(3)
    n = 200
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)])
    failure = rng.exponential(1 / np.exp(0.5 * x[:, 0] - 0.4 * x[:, 1]))
    censor = rng.uniform(0, 2, n)
    frame = pd.DataFrame(
        {
            "time": np.minimum(failure, censor),
            "event": (failure <= censor).astype(int),
            "a": x[:, 0],
            "b": x[:, 1],
        }
    )
    cox = CoxPHFitter().fit(frame, "time", "event", robust=True)
    fit = FineGrayFitter().fit(frame["time"], frame["event"], frame[["a", "b"]])
    np.testing.assert_allclose(fit.coef, cox.params_.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(fit.se, cox.standard_errors_.to_numpy(), rtol=1e-5)


def test_r_harness_fails_clearly_without_rscript(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Rscript the reference tests fail (never skip) and say what to install."""
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RNotAvailableError, match="r-cran-cmprsk"):
        run_r("emit(1)")
