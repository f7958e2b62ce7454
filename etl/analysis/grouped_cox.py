"""Cox proportional hazards with Efron ties, fitted on data grouped by (time, covariate pattern).

Why not lifelines here: `cgdw outcomes` must answer in seconds for a million patients, and lifelines'
CoxPHFitter takes about 10 s on a million rows at the precision we fit to. When every covariate takes few
values (the group indicators of an unadjusted model), the partial likelihood depends on the data only
through, per distinct event time, the number of events and of patients at risk in each covariate pattern,
so the fit can run on those counts. Efron's correction makes this exact only if every tied event keeps its
own term, which lifelines' `weights_col` does not do (its Efron terms are per row, not per weighted event:
0.88095 vs 0.88106 on the same data), hence this small estimator. The model, the tie handling and the
Wald statistics are those of lifelines and R's `coxph(ties = "efron")`; tests hold it to both.

    fit = GroupedEfronCox().fit(time, event, covariates)   # covariates: n x k array with few patterns
    fit.params_, fit.standard_errors_, fit.summary          # as in lifelines
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl
from scipy import stats

FloatArray = npt.NDArray[np.float64]

MAX_PATTERNS = 64  # beyond this, grouping stops paying: use lifelines on the rows


def covariate_patterns(covariates: FloatArray) -> int:
    """Distinct covariate rows, by hashing (numpy's unique along an axis sorts: 0.7 s for a million)."""
    return pl.from_numpy(covariates).n_unique()


@dataclass
class _EventTimes:
    """Per distinct event time t (rows) and covariate pattern p (columns)."""

    patterns: FloatArray  # p x k covariate values
    at_risk: FloatArray  # t x p patients with time >= t
    events: FloatArray  # t x p events at t


def _group(time: FloatArray, event: FloatArray, covariates: FloatArray) -> _EventTimes:
    """Counts per (time, pattern), by hash grouping in polars: sorting a million rows costs more than the
    whole fit."""
    names = [f"x{i}" for i in range(covariates.shape[1])]
    rows = pl.DataFrame({"time": time, "event": event}).with_columns(
        pl.Series(name, covariates[:, i]) for i, name in enumerate(names)
    )
    patterns = rows.select(names).unique().sort(names).with_row_index("pattern")
    counts = (
        rows.join(patterns, on=names, how="left")
        .group_by("time", "pattern")
        .agg(pl.len().alias("n"), pl.col("event").sum().alias("d"))
        .sort("time")
    )
    all_times = counts["time"].unique().sort().to_numpy()
    n_patterns = patterns.height
    time_index = np.searchsorted(all_times, counts["time"].to_numpy())
    pattern_index = counts["pattern"].to_numpy().astype(np.int64)
    n = np.zeros((all_times.size, n_patterns))
    d = np.zeros((all_times.size, n_patterns))
    n[time_index, pattern_index] = counts["n"].to_numpy()
    d[time_index, pattern_index] = counts["d"].to_numpy()
    # At risk at t: rows with time >= t, a reverse cumulative sum over the distinct times.
    at_risk = np.cumsum(n[::-1], axis=0)[::-1]
    has_event = d.sum(axis=1) > 0
    return _EventTimes(
        patterns=patterns.select(names).to_numpy().astype(np.float64),
        at_risk=at_risk[has_event],
        events=d[has_event],
    )


def _efron(beta: FloatArray, data: _EventTimes) -> tuple[float, FloatArray, FloatArray]:
    """Log partial likelihood, gradient and Hessian (Efron's approximation for ties)."""
    x = data.patterns
    risk = np.exp(x @ beta)  # per pattern
    r0 = data.at_risk @ risk  # t
    r1 = (data.at_risk * risk) @ x  # t x k
    r2 = np.einsum("tp,p,pi,pj->tij", data.at_risk, risk, x, x)
    e0 = data.events @ risk
    e1 = (data.events * risk) @ x
    e2 = np.einsum("tp,p,pi,pj->tij", data.events, risk, x, x)
    d = data.events.sum(axis=1).astype(np.int64)  # tied events per time
    # One term per tied event l = 0..d-1, with the fraction l/d of the tied events' risk removed.
    owner = np.repeat(np.arange(d.size), d)
    fraction = (np.arange(owner.size) - np.repeat(np.cumsum(d) - d, d)) / d[owner]
    denom = r0[owner] - fraction * e0[owner]
    numer1 = r1[owner] - fraction[:, None] * e1[owner]
    numer2 = r2[owner] - fraction[:, None, None] * e2[owner]
    event_x_sum = data.events.sum(axis=0) @ x
    loglik = float(event_x_sum @ beta - np.log(denom).sum())
    mean = numer1 / denom[:, None]
    gradient = event_x_sum - mean.sum(axis=0)
    hessian = -(numer2 / denom[:, None, None] - np.einsum("li,lj->lij", mean, mean)).sum(axis=0)
    return loglik, gradient, hessian


class GroupedEfronCox:
    """One estimator, lifelines-style: `fit`, then `params_`, `standard_errors_`, `summary`."""

    def __init__(self, precision: float = 1e-12, max_steps: int = 100) -> None:
        self.precision, self.max_steps = precision, max_steps

    def fit(
        self,
        time: npt.ArrayLike,
        event: npt.ArrayLike,
        covariates: npt.ArrayLike,
        names: list[str] | None = None,
    ) -> GroupedEfronCox:
        t = np.asarray(time, dtype=np.float64)
        e = np.asarray(event, dtype=np.float64)
        x = np.asarray(covariates, dtype=np.float64).reshape(t.size, -1)
        if np.isnan(t).any() or np.isnan(e).any() or np.isnan(x).any():
            raise ValueError("time, event and covariates must have no missing value")
        data = _group(t, e, x)
        beta = np.zeros(x.shape[1])
        loglik, gradient, hessian = _efron(beta, data)
        for _ in range(self.max_steps):
            step = np.linalg.solve(hessian, gradient)
            # Newton step, halved while it lowers the likelihood (as coxph and lifelines do).
            for _ in range(30):
                candidate = beta - step
                new_loglik, new_gradient, new_hessian = _efron(candidate, data)
                if new_loglik >= loglik - 1e-12 * abs(loglik):
                    break
                step = step / 2
            converged = np.abs(candidate - beta).max() < self.precision
            beta, loglik, gradient, hessian = candidate, new_loglik, new_gradient, new_hessian
            if converged:
                break
        else:
            raise ArithmeticError(f"the Cox fit did not converge in {self.max_steps} Newton steps")
        self.names = names or [f"x{i}" for i in range(x.shape[1])]
        self.params_ = pd.Series(beta, index=self.names)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(np.linalg.inv(-hessian))), index=self.names)
        self.log_likelihood_ = loglik
        return self

    @property
    def summary(self) -> pd.DataFrame:
        """The columns of lifelines' summary that cgdw reports."""
        z_crit = stats.norm.ppf(0.975)
        coef, se = self.params_, self.standard_errors_
        z = coef / se
        return pd.DataFrame(
            {
                "coef": coef,
                "exp(coef)": np.exp(coef),
                "se(coef)": se,
                "exp(coef) lower 95%": np.exp(coef - z_crit * se),
                "exp(coef) upper 95%": np.exp(coef + z_crit * se),
                "z": z,
                "p": stats.chi2.sf(z**2, 1),
            }
        )
