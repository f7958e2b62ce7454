"""The grouped Efron Cox fit (etl/analysis/grouped_cox.py) is lifelines' Efron Cox on the rows, faster.

R's coxph is compared with `cgdw outcomes` itself in test_outcomes.py; these tests pin the estimator to
lifelines on data with the heavy ties of day-resolution follow-up, where Efron's correction matters."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from etl.analysis.grouped_cox import GroupedEfronCox, covariate_patterns


def tied_cohort(n: int, groups: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Survival in whole days (many ties), administrative censoring, `groups` levels as indicators."""
    rng = np.random.default_rng(seed)
    level = rng.integers(0, groups, n)
    covariates = np.stack([(level == g).astype(float) for g in range(1, groups)], axis=1)
    effects = np.linspace(0.8, -0.4, groups - 1)
    days = np.minimum(rng.exponential(900 / np.exp(covariates @ effects)), 1500).round() + 1
    event = ((days < 1500) & (rng.random(n) < 0.8)).astype(float)
    return days, event, covariates


def lifelines_fit(days: np.ndarray, event: np.ndarray, covariates: np.ndarray) -> CoxPHFitter:
    frame = pd.DataFrame(covariates, columns=[f"x{i}" for i in range(covariates.shape[1])])
    frame["days"], frame["event"] = days, event
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CoxPHFitter().fit(
            frame, "days", "event", batch_mode=True, fit_options={"precision": 1e-12, "r_precision": 0}
        )


@pytest.mark.parametrize(("n", "groups", "seed"), [(3000, 2, 1), (5000, 3, 2), (2000, 4, 3)])
def test_the_grouped_fit_is_lifelines_efron_fit(n: int, groups: int, seed: int) -> None:
    days, event, covariates = tied_cohort(n, groups, seed)
    assert len(np.unique(days)) < n / 2  # ties, so that Efron's correction is exercised
    reference = lifelines_fit(days, event, covariates)
    grouped = GroupedEfronCox().fit(days, event, covariates)
    np.testing.assert_allclose(grouped.params_.values, reference.params_.values, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(grouped.standard_errors_.values, reference.standard_errors_.values, rtol=1e-7)
    assert grouped.log_likelihood_ == pytest.approx(reference.log_likelihood_, rel=1e-10)
    ours, theirs = grouped.summary, reference.summary
    for column in ("exp(coef)", "exp(coef) lower 95%", "exp(coef) upper 95%", "z"):
        np.testing.assert_allclose(ours[column].values, theirs[column].values, rtol=1e-7)
    # P values far in the tail (1e-69 here) magnify the last digits of z: compared on a log scale.
    np.testing.assert_allclose(np.log(ours["p"].values), np.log(theirs["p"].values), rtol=1e-6)


def test_it_counts_covariate_patterns_and_refuses_missing_values() -> None:
    days, event, covariates = tied_cohort(200, 3, 4)
    assert covariate_patterns(covariates) == 3
    covariates[0, 0] = np.nan
    with pytest.raises(ValueError, match="no missing value"):
        GroupedEfronCox().fit(days, event, covariates)
