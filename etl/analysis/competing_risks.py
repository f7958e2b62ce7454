"""Competing-risks estimators that reproduce R's cmprsk (Gray): cumulative incidence, Gray's test, Fine-Gray.

- `CumulativeIncidenceFitter`: Aalen-Johansen estimate of the cumulative incidence function (CIF) of one
  cause, per group, with the variance of `cmprsk::cuminc` and a log(-log) pointwise confidence interval.
- `gray_test`: Gray's (1988) K-sample test for equality of the CIFs of one cause (`cmprsk::cuminc()$Tests`).
- `FineGrayFitter`: Fine & Gray (1999) proportional subdistribution hazards regression with the robust
  variance of `cmprsk::crr`.

Inputs, the same for every estimator: `time` and `event` are 1-D array-likes of equal length (numpy arrays,
lists, pandas or polars Series). `time` is finite and >= 0. `event` holds integer codes: 0 = censored, any
other code is a failure type; `cause` (default 1, relapse) picks the failure type of interest and every
other non-zero code is a competing event (2 = death without relapse). Missing values are refused rather
than dropped, so a caller always knows which patients were analysed. Tables come back as pandas
DataFrames, as in lifelines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

__all__ = [
    "CumulativeIncidenceCurve",
    "CumulativeIncidenceFitter",
    "CumulativeIncidencePoint",
    "FineGrayFitter",
    "GrayTestResult",
    "gray_test",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CENSORED = 0


# --------------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------------


class NotEstimable(ValueError):
    """The data hold no estimate (no event of the cause, a singular information matrix): not a bad call."""


def _as_1d(values: Any, name: str) -> npt.NDArray[Any]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _time_event(time: Any, event: Any, cause: int) -> tuple[FloatArray, IntArray]:
    t = _as_1d(time, "time").astype(np.float64)
    e_raw = _as_1d(event, "event")
    if t.shape != e_raw.shape:
        raise ValueError(f"time and event differ in length: {t.size} and {e_raw.size}")
    if t.size == 0:
        raise ValueError("no observations")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("time must be finite and >= 0 (missing times are not dropped silently)")
    e_float = e_raw.astype(np.float64)
    if not np.all(np.isfinite(e_float)) or np.any(e_float != np.round(e_float)):
        raise ValueError("event must hold integer codes: 0 = censored, other codes = failure types")
    e = e_float.astype(np.int64)
    if cause == CENSORED:
        raise ValueError(f"cause {CENSORED} is the censoring code, not a failure type")
    return t, e


def _normal_quantile(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(stats.norm.ppf(1 - alpha / 2))


def _distinct(sorted_times: FloatArray) -> tuple[FloatArray, IntArray]:
    """Distinct values of sorted times and the index of the first observation at each."""
    values, first = np.unique(sorted_times, return_index=True)
    return values, first.astype(np.int64)


def _loglog_ci(estimate: FloatArray, variance: FloatArray, z: float) -> tuple[FloatArray, FloatArray]:
    """est ** exp(±z·se / (est·log est)): the log(-log) transform of the estimate, kept inside (0, 1).

    Where the estimate is 0 (before the first event) or 1 the interval is degenerate and is set to the
    estimate; NaN estimates (beyond follow-up) give NaN bounds.
    """
    est = np.asarray(estimate, dtype=np.float64)
    se = np.sqrt(np.asarray(variance, dtype=np.float64))
    inside = (est > 0) & (est < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = z * se / (est * np.abs(np.log(est)))
        lower = np.where(inside, est ** np.exp(a), est)
        upper = np.where(inside, est ** np.exp(-a), est)
    return lower, upper


# --------------------------------------------------------------------------------------------------------
# Cumulative incidence (Aalen-Johansen), variance as cmprsk::cuminc
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CumulativeIncidencePoint:
    """The CIF of one group at one time; NaN beyond the group's last follow-up time."""

    time: float
    estimate: float
    variance: float
    lower: float
    upper: float


# eq=False: numpy fields compare element-wise, so a generated __eq__ would raise.
@dataclass(frozen=True, eq=False)
class CumulativeIncidenceCurve:
    """One group's CIF as a right-continuous step function: `estimate[i]` holds on [time[i], time[i+1]).

    Starts at time 0 (estimate 0) and has one step per distinct observed time of the group, up to its last
    follow-up time.
    """

    time: FloatArray
    estimate: FloatArray
    variance: FloatArray
    lower: FloatArray
    upper: FloatArray


@dataclass(frozen=True, eq=False)
class _StepTable:
    """Per distinct observed time of one group: counts and the CIF with its cuminc variance."""

    time: FloatArray
    at_risk: IntArray
    events: IntArray  # failures from the cause of interest
    competing: IntArray
    censored: IntArray
    estimate: FloatArray
    variance: FloatArray


def _tie_factor(d: npt.NDArray[Any], at_risk: npt.NDArray[Any]) -> FloatArray:
    """1 - (d-1)/(n-1): cuminc's correction of the variance increment for d tied failures out of n at risk."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 1, 1 - (d - 1) / (at_risk - 1.0), 1.0)


def _aalen_johansen(time: FloatArray, event: IntArray, cause: int) -> _StepTable:
    """CIF of `cause` with the variance computed as `cmprsk::cuminc` (Fortran `cinc`) does.

    The variance is the delta-method variance of Gray's cmprsk: with S the all-cause Kaplan-Meier, F the CIF
    and n the number at risk, every distinct time adds terms S(t-)²·c·d/n² (c the tie correction) for the
    failures from the cause and for the competing failures. Like cuminc, the variance is refreshed only at
    failure times of the cause, so between them it keeps its last value even across competing events.
    """
    order = np.argsort(time, kind="stable")
    t, e = time[order], event[order]
    n = t.size
    times, first = _distinct(t)
    at_risk = n - first
    d_cause = np.add.reduceat((e == cause).astype(np.int64), first)
    d_any = np.add.reduceat((e != CENSORED).astype(np.int64), first)
    d_other = d_any - d_cause
    censored = np.add.reduceat((e == CENSORED).astype(np.int64), first)

    surv = np.cumprod(1 - d_any / at_risk)
    surv_before = np.concatenate(([1.0], surv[:-1]))
    cif = np.cumsum(surv_before * d_cause / at_risk)

    with np.errstate(divide="ignore", invalid="ignore"):
        inv_surv = np.where(surv > 0, 1 / surv, 0.0)
        # Competing failures: enter through the drop of S (skipped once S reaches 0, as cinc does).
        w_other = np.where(
            (d_other > 0) & (surv > 0),
            surv_before**2 * _tie_factor(d_other, at_risk) * d_other / at_risk**2,
            0,
        )
        # Failures from the cause: enter through the jump of F and the drop of S.
        w_cause = np.where(
            d_cause > 0, surv_before**2 * _tie_factor(d_cause, at_risk) * d_cause / at_risk**2, 0
        )
    g_other = cif * inv_surv
    g_cause = 1 + cif * inv_surv
    v1 = np.cumsum(w_other * g_other**2 + w_cause * g_cause**2)
    v2 = np.cumsum(w_other * inv_surv * g_other + w_cause * inv_surv * g_cause)
    v3 = np.cumsum((w_other + w_cause) * inv_surv**2)
    variance_now = v1 + cif**2 * v3 - 2 * cif * v2

    # Carry the variance forward from the last failure time of the cause (0 before the first one).
    last = np.maximum.accumulate(np.where(d_cause > 0, np.arange(times.size), -1))
    variance = np.where(last >= 0, variance_now[np.maximum(last, 0)], 0.0)
    return _StepTable(times, at_risk, d_cause, d_other, censored, cif, variance)


class CumulativeIncidenceFitter:
    """Aalen-Johansen cumulative incidence of one cause, per group; matches `cmprsk::cuminc`.

    `fit(time, event, group=None, cause=1)` estimates, for each group, the CIF of `cause` treating every
    other non-zero event code as a competing event (Kalbfleisch & Prentice 1980; Aalen & Johansen 1978).
    Ties follow R: failures at a time are counted before the censorings at that time (censored subjects are
    still at risk). The variance is the one `cmprsk::cuminc` reports (Gray's delta-method estimator with its
    tie correction, updated at failure times of the cause only), so `variance` equals cuminc's `var`.

    Confidence intervals are pointwise, by the log(-log) transform of the estimate:
    est ** exp(±z·sqrt(var) / (est·log(est))) with z the normal quantile for `alpha` (1.959964 for 95%),
    the interval cmprsk users build from `timepoints()`; `ci_method` says so.

    Results: `summary` (one row per group and distinct observed time), `at(t)`, `predict(times)` (like
    `cmprsk::timepoints`: right-continuous, NaN past a group's last follow-up time) and `curve()` for plots.
    """

    ci_method = "log(-log) transform of the Aalen-Johansen estimate, cmprsk::cuminc variance"

    groups: list[Any]
    cause: int
    summary: pd.DataFrame
    _tables: dict[Any, _StepTable]
    _grouped: bool

    def __init__(self, alpha: float = 0.05) -> None:
        self.alpha = alpha
        self._z = _normal_quantile(alpha)

    def fit(self, time: Any, event: Any, group: Any = None, cause: int = 1) -> CumulativeIncidenceFitter:
        t, e = _time_event(time, event, cause)
        self.cause = cause
        self._grouped = group is not None
        if group is None:
            labels: npt.NDArray[Any] = np.zeros(t.size, dtype=np.int64)
        else:
            labels = _as_1d(group, "group")
            if labels.shape != t.shape:
                raise ValueError(f"group has {labels.size} values, time has {t.size}")
            if pd.isna(labels).any():
                raise ValueError("group has missing values")
        self.groups = list(np.unique(labels)) if group is not None else [None]
        self._tables = {}
        frames = []
        for label in self.groups:
            mask = labels == label if group is not None else np.ones(t.size, dtype=bool)
            table = _aalen_johansen(t[mask], e[mask], cause)
            self._tables[label] = table
            lower, upper = _loglog_ci(table.estimate, table.variance, self._z)
            frame = pd.DataFrame(
                {
                    "time": table.time,
                    "at_risk": table.at_risk,
                    "events": table.events,
                    "competing": table.competing,
                    "censored": table.censored,
                    "estimate": table.estimate,
                    "variance": table.variance,
                    "lower": lower,
                    "upper": upper,
                }
            )
            if group is not None:
                frame.insert(0, "group", label)
            frames.append(frame)
        self.summary = pd.concat(frames, ignore_index=True)
        return self

    def _table(self, group: Any) -> _StepTable:
        if not hasattr(self, "_tables"):
            raise RuntimeError("call fit() first")
        if not self._grouped:
            if group is not None:
                raise ValueError("fitted without groups: leave group=None")
            return self._tables[None]
        if group is None:
            if len(self.groups) == 1:
                return self._tables[self.groups[0]]
            raise ValueError(f"fitted with groups {self.groups}: say which one")
        for label in self.groups:
            if label == group:
                return self._tables[label]
        raise ValueError(f"unknown group {group!r}; groups are {self.groups}")

    def _values_at(self, times: FloatArray, group: Any) -> tuple[FloatArray, FloatArray]:
        table = self._table(group)
        # Right-continuous step function, as cmprsk::timepoints: the value at the last time <= t.
        pos = np.searchsorted(table.time, times, side="right") - 1
        safe = np.maximum(pos, 0)
        estimate = np.where(pos >= 0, table.estimate[safe], 0.0)
        variance = np.where(pos >= 0, table.variance[safe], 0.0)
        beyond = times > table.time[-1]
        return np.where(beyond, np.nan, estimate), np.where(beyond, np.nan, variance)

    def at(self, time: float, group: Any = None) -> CumulativeIncidencePoint:
        """The CIF, its variance and CI at one time (NaN past the group's last follow-up time)."""
        estimate, variance = self._values_at(np.array([float(time)]), group)
        lower, upper = _loglog_ci(estimate, variance, self._z)
        return CumulativeIncidencePoint(
            float(time), float(estimate[0]), float(variance[0]), float(lower[0]), float(upper[0])
        )

    def predict(self, times: Any) -> pd.DataFrame:
        """CIF, variance and CI of every group at `times` (long format), like `cmprsk::timepoints`."""
        grid = np.sort(np.unique(_as_1d(np.atleast_1d(times), "times").astype(np.float64)))
        frames = []
        for label in self.groups:
            estimate, variance = self._values_at(grid, label)
            lower, upper = _loglog_ci(estimate, variance, self._z)
            frame = pd.DataFrame(
                {"time": grid, "estimate": estimate, "variance": variance, "lower": lower, "upper": upper}
            )
            if self._grouped:
                frame.insert(0, "group", label)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def curve(self, group: Any = None) -> CumulativeIncidenceCurve:
        """The step function of one group, starting at (0, 0), for plotting."""
        table = self._table(group)
        start = [] if table.time[0] == 0 else [0.0]
        time = np.concatenate((start, table.time))
        estimate = np.concatenate((np.zeros(len(start)), table.estimate))
        variance = np.concatenate((np.zeros(len(start)), table.variance))
        lower, upper = _loglog_ci(estimate, variance, self._z)
        return CumulativeIncidenceCurve(time, estimate, variance, lower, upper)


# --------------------------------------------------------------------------------------------------------
# Gray's test
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GrayTestResult:
    """Gray's K-sample test of one cause: statistic ~ chi-square(df) under equal CIFs.

    `score` are the scores of the first K-1 groups (in `groups` order) and `variance` their covariance.
    """

    statistic: float
    df: int
    p_value: float
    cause: int
    rho: float
    groups: list[Any]
    score: FloatArray
    variance: FloatArray


def _gray_stratum(
    time: FloatArray, status: IntArray, group: IntArray, n_groups: int, rho: float
) -> tuple[FloatArray, FloatArray]:
    """Score and covariance of Gray's test within one stratum (cmprsk Fortran `crst`, vectorised over time).

    status: 0 censored, 1 cause of interest, 2 competing; group coded 0..K-1. Follows Gray (1988),
    "A class of K-sample tests for comparing the cumulative incidence of a competing risk", Ann. Stat. 16,
    with the weight (1 - F(t-))**rho and the same tie corrections as cmprsk.
    """
    k = n_groups
    event_times = np.unique(time[status > 0])
    m = event_times.size
    score = np.zeros(k - 1)
    cov = np.zeros((k - 1, k - 1))
    if m == 0:
        return score, cov
    # Number at risk per group at each failure time (everyone with time >= t).
    at_risk = np.zeros((m, k))
    for g in range(k):
        tg = np.sort(time[group == g])
        at_risk[:, g] = tg.size - np.searchsorted(tg, event_times, side="left")
    d1 = np.zeros((m, k))
    d2 = np.zeros((m, k))
    failed = status > 0
    row = np.searchsorted(event_times, time[failed])
    np.add.at(d1, (row[status[failed] == 1], group[failed][status[failed] == 1]), 1)
    np.add.at(d2, (row[status[failed] == 2], group[failed][status[failed] == 2]), 1)

    live = at_risk > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # Per-group all-cause Kaplan-Meier (skm) and CIF (f1), left limits skmm / f1m.
        skm = np.cumprod(np.where(live, 1 - (d1 + d2) / at_risk, 1.0), axis=0)
        skmm = np.vstack((np.ones((1, k)), skm[:-1]))
        f1 = np.cumsum(np.where(live, skmm * d1 / at_risk, 0.0), axis=0)
        f1m = np.vstack((np.zeros((1, k)), f1[:-1]))
        h = np.where(live, at_risk / skmm, 0.0)  # at-risk counts on the subdistribution scale
        tr = h.sum(axis=1)
        tq = (h * (1 - f1m)).sum(axis=1)
        nd1 = d1.sum(axis=1)
        f = np.cumsum(nd1 / tr)  # pooled CIF
        fm = np.concatenate(([0.0], f[:-1]))
        fb = (1 - fm) ** rho

        score = (fb[:, None] * np.where(live, d1 - nd1[:, None] * h * (1 - f1m) / tq[:, None], 0.0))[
            :, : k - 1
        ].sum(axis=0)

        a = fb[:, None, None] * (
            np.einsum("ti,ij->tij", h, np.eye(k)) - h[:, :, None] * h[:, None, :] / tr[:, None, None]
        )
        c = np.cumsum(a * (nd1 / (tr * (1 - fm)))[:, None, None], axis=0)
        a, c = a[:, : k - 1, :], c[:, : k - 1, :]

        # Failures from the cause of interest.
        m1 = (nd1[:, None] > 0) & live
        t4 = np.where(skm > 0, 1 - (1 - f[:, None]) / skm, 1.0)
        t5 = np.where(nd1[:, None] > 1, 1 - (nd1[:, None] - 1) / (tr[:, None] * skmm - 1), 1.0)
        t3 = np.where(m1, t5 * skmm * nd1[:, None] / (tr[:, None] * at_risk), 0.0)
        t1 = a - t4[:, None, :] * c
        v3 = (t4**2 * t3).sum(axis=0)
        v2 = np.einsum("tig,tg->ig", t1, t4 * t3)
        cov += np.einsum("tig,tjg,tg->ij", t1, t1, t3)

        # Competing failures.
        m2 = (skm > 0) & (d2 > 0)
        t4b = np.where(m2, (1 - f[:, None]) / skm, 0.0)
        t5b = np.where(d2 > 1, 1 - (d2 - 1) / (at_risk - 1), 1.0)
        t3b = np.where(m2, t5b * skmm**2 * d2 / at_risk**2, 0.0)
        v3 += (t4b**2 * t3b).sum(axis=0)
        v2 -= np.einsum("tig,tg->ig", c, t4b**2 * t3b)
        cov += np.einsum("tig,tjg,tg->ij", c, c, t4b**2 * t3b)

    c_end = c[-1]
    cov += (c_end * v3) @ c_end.T + c_end @ v2.T + v2 @ c_end.T
    return score, cov


def gray_test(
    time: Any, event: Any, group: Any, cause: int = 1, strata: Any = None, rho: float = 0.0
) -> GrayTestResult:
    """Gray's (1988) K-sample test that the CIF of `cause` is the same in every group.

    Matches `cmprsk::cuminc(time, event, group, strata, rho)$Tests` for that cause: the scores and their
    covariance are summed over strata, statistic = s' V^-1 s on the first K-1 groups, chi-square with
    K-1 degrees of freedom. rho = 0 (the default, as in cuminc) weighs all times equally.
    """
    t, e = _time_event(time, event, cause)
    labels = _as_1d(group, "group")
    if labels.shape != t.shape:
        raise ValueError(f"group has {labels.size} values, time has {t.size}")
    if pd.isna(labels).any():
        raise ValueError("group has missing values")
    levels, codes = np.unique(labels, return_inverse=True)
    k = levels.size
    if k < 2:
        raise ValueError("Gray's test needs at least two groups")
    status = np.where(e == cause, 1, np.where(e == CENSORED, 0, 2)).astype(np.int64)
    if strata is None:
        strata_codes = np.zeros(t.size, dtype=np.int64)
    else:
        strata_values = _as_1d(strata, "strata")
        if strata_values.shape != t.shape:
            raise ValueError(f"strata has {strata_values.size} values, time has {t.size}")
        strata_codes = np.unique(strata_values, return_inverse=True)[1]
    score = np.zeros(k - 1)
    cov = np.zeros((k - 1, k - 1))
    for s in np.unique(strata_codes):
        mask = strata_codes == s
        s_score, s_cov = _gray_stratum(t[mask], status[mask], codes[mask].astype(np.int64), k, rho)
        score += s_score
        cov += s_cov
    try:
        statistic = float(score @ np.linalg.solve(cov, score))
    except np.linalg.LinAlgError:
        statistic = math.nan  # cuminc reports -1 when the covariance is singular
    p_value = float(stats.chi2.sf(statistic, k - 1)) if math.isfinite(statistic) else math.nan
    return GrayTestResult(statistic, k - 1, p_value, cause, rho, list(levels), score, cov)


# --------------------------------------------------------------------------------------------------------
# Fine-Gray regression
# --------------------------------------------------------------------------------------------------------


def _covariate_matrix(covariates: Any, n: int) -> tuple[FloatArray, list[str]]:
    if hasattr(covariates, "columns") and hasattr(covariates, "to_numpy"):  # pandas or polars DataFrame
        names = [str(c) for c in covariates.columns]
        x = np.asarray(covariates.to_numpy(), dtype=np.float64)
    else:
        x = np.asarray(covariates, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        names = [f"x{j + 1}" for j in range(x.shape[1])] if x.ndim == 2 else []
    if x.ndim != 2:
        raise ValueError(f"covariates must be 2-D (subjects x covariates), got shape {x.shape}")
    if x.shape[0] != n:
        raise ValueError(f"covariates have {x.shape[0]} rows, time has {n}")
    if x.shape[1] == 0:
        raise ValueError("no covariates")
    if not np.all(np.isfinite(x)):
        raise ValueError("covariates have missing or infinite values (use complete cases)")
    return x, names


@dataclass(frozen=True, eq=False)
class _FineGrayData:
    """Subjects sorted by time, and the quantities of the censoring distribution crr uses."""

    time: FloatArray
    status: IntArray  # 0 censored, 1 cause, 2 competing
    x: FloatArray
    g_before: FloatArray  # censoring Kaplan-Meier G(T_i-) of each subject
    fail_times: FloatArray  # distinct failure times of the cause
    fail_counts: FloatArray
    fail_first: IntArray  # index of the first subject with time >= each failure time
    g_fail: FloatArray  # G(t-) at each failure time
    fail_row: IntArray  # for subjects failing from the cause: their failure time's index
    # Distinct observed times: number at risk and censorings, for the censoring part of the variance.
    times: FloatArray
    times_first: IntArray
    at_risk: FloatArray
    n_censored: FloatArray
    subject_time_row: IntArray


def _fine_gray_data(time: FloatArray, status: IntArray, x: FloatArray) -> _FineGrayData:
    order = np.argsort(time, kind="stable")
    t, s, xs = time[order], status[order], x[order]
    n = t.size
    times, first = _distinct(t)
    at_risk = (n - first).astype(np.float64)
    n_censored = np.add.reduceat((s == CENSORED).astype(np.float64), first)
    # Kaplan-Meier of the censoring distribution, as crr gets it from survfit(Surv(ftime, cens) ~ 1) and
    # evaluates it just before each time (ftime * (1 - eps)): G(t-).
    g_after = np.cumprod(1 - n_censored / at_risk)
    g_before_times = np.concatenate(([1.0], g_after[:-1]))
    subject_row = np.searchsorted(times, t)
    fail_times, fail_counts = np.unique(t[s == 1], return_counts=True)
    return _FineGrayData(
        time=t,
        status=s,
        x=xs,
        g_before=g_before_times[subject_row],
        fail_times=fail_times,
        fail_counts=fail_counts.astype(np.float64),
        fail_first=np.searchsorted(t, fail_times, side="left").astype(np.int64),
        g_fail=g_before_times[np.searchsorted(times, fail_times)],
        fail_row=np.searchsorted(fail_times, t[s == 1]).astype(np.int64),
        times=times,
        times_first=first,
        at_risk=at_risk,
        n_censored=n_censored,
        subject_time_row=subject_row.astype(np.int64),
    )


def _suffix_sums(values: FloatArray) -> FloatArray:
    """out[k] = sum of values[k:], with out[n] = 0 (sums over subjects with time >= a given time)."""
    return np.concatenate((np.cumsum(values[::-1], axis=0)[::-1], np.zeros((1, *values.shape[1:]))))


def _prefix_sums(values: FloatArray) -> FloatArray:
    """out[k] = sum of values[:k], with out[0] = 0 (sums over subjects before a given time)."""
    return np.concatenate((np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)))


@dataclass(frozen=True, eq=False)
class _RiskSets:
    log_likelihood: float
    score: FloatArray
    information: FloatArray
    s0: FloatArray  # per failure time
    xbar: FloatArray
    risk: FloatArray  # exp(x·b - shift) per subject


def _risk_sets(data: _FineGrayData, beta: FloatArray, second_order: bool = True) -> _RiskSets:
    """Partial likelihood of Fine & Gray (1999) with crr's weights, Breslow ties.

    The risk set at a failure time t holds everyone still under observation (weight 1) and the subjects who
    failed from a competing cause before t, weighted G(t-)/G(T_i-). Both parts are cumulative sums over
    the sorted subjects, so the fit is O(n·p²) rather than O(n·failures).
    """
    eta = data.x @ beta
    shift = float(eta.max())  # exp() of centred values cannot overflow; shift cancels in every ratio
    risk = np.exp(eta - shift)
    competing = np.where(data.status == 2, risk / data.g_before, 0.0)
    idx = data.fail_first
    g = data.g_fail
    x = data.x
    s0 = _suffix_sums(risk)[idx] + g * _prefix_sums(competing)[idx]
    s1 = _suffix_sums(risk[:, None] * x)[idx] + g[:, None] * _prefix_sums(competing[:, None] * x)[idx]
    xbar = s1 / s0[:, None]
    d = data.fail_counts
    log_likelihood = float(eta[data.status == 1].sum() - (d * (np.log(s0) + shift)).sum())
    score = x[data.status == 1].sum(axis=0) - (d[:, None] * xbar).sum(axis=0)
    if second_order:
        xx = x[:, :, None] * x[:, None, :]
        s2 = (
            _suffix_sums(risk[:, None, None] * xx)[idx]
            + g[:, None, None] * _prefix_sums(competing[:, None, None] * xx)[idx]
        )
        information = (d[:, None, None] * (s2 / s0[:, None, None] - xbar[:, :, None] * xbar[:, None, :])).sum(
            axis=0
        )
    else:
        information = np.empty((0, 0))
    return _RiskSets(log_likelihood, score, information, s0, xbar, risk)


def _score_residuals(data: _FineGrayData, rs: _RiskSets) -> FloatArray:
    """Per-subject terms eta_i + psi_i of Fine & Gray's (1999) sandwich variance, as crr's `crrvv`.

    eta_i is the subject's score residual (its own failure minus its weighted share of each risk set);
    psi_i accounts for estimating the censoring distribution G (the term a naive robust/clustered
    variance of a weighted Cox fit leaves out).
    """
    x, risk, status = data.x, rs.risk, data.status
    d, s0, xbar, g = data.fail_counts, rs.s0, rs.xbar, data.g_fail
    # Cumulative hazard increments per failure time, plain and times G(t-).
    h0 = d / s0
    h1 = (d / s0)[:, None] * xbar
    k0 = h0 * g
    k1 = h1 * g[:, None]
    h0c, h1c, k0c, k1c = _prefix_sums(h0), _prefix_sums(h1), _prefix_sums(k0), _prefix_sums(k1)

    # eta: dN part minus the subject's share of every risk set it belongs to.
    eta = np.zeros_like(x)
    fails = status == 1
    eta[fails] = x[fails] - xbar[data.fail_row]
    upto = np.searchsorted(data.fail_times, data.time, side="right")  # failure times <= T_i
    eta -= risk[:, None] * (x * h0c[upto][:, None] - h1c[upto])
    comp = status == 2
    after0 = k0c[-1] - k0c[upto[comp]]  # failure times > T_i
    after1 = k1c[-1] - k1c[upto[comp]]
    eta[comp] -= (risk[comp] / data.g_before[comp])[:, None] * (x[comp] * after0[:, None] - after1)

    # psi: q(u) at each distinct time u, from competing failures before u and failure times >= u.
    weights = np.where(comp, risk / data.g_before, 0.0)
    b0 = _prefix_sums(weights)[data.times_first]
    b1 = _prefix_sums(weights[:, None] * x)[data.times_first]
    from_u = np.searchsorted(data.fail_times, data.times, side="left")  # failure times >= u
    q = b1 * (k0c[-1] - k0c[from_u])[:, None] - b0[:, None] * (k1c[-1] - k1c[from_u])
    dlambda_c = (data.n_censored / data.at_risk**2)[:, None] * q
    compensator = np.cumsum(dlambda_c, axis=0)[data.subject_time_row]
    psi = -compensator
    cens = status == CENSORED
    psi[cens] += q[data.subject_time_row[cens]] / data.at_risk[data.subject_time_row[cens], None]
    return eta + psi


class FineGrayFitter:
    """Fine & Gray (1999) proportional subdistribution hazards model; matches `cmprsk::crr`.

    `fit(time, event, covariates, cause=1)` maximises the weighted partial likelihood of the
    subdistribution hazard of `cause` (Breslow ties; subjects failing from a competing cause stay in the
    risk set with inverse-probability-of-censoring weights from the Kaplan-Meier of the censoring times,
    one censoring group), by Newton-Raphson with step halving from 0 as crr, iterated to full convergence.

    The variance is crr's robust sandwich I⁻¹ (Σ (eta_i + psi_i)(eta_i + psi_i)') I⁻¹ (Fine & Gray 1999,
    section 3), which includes the term psi for the estimated censoring distribution. Wald CIs and
    two-sided P values use the normal distribution, as `summary.crr`.

    covariates: 2-D array (columns named x1, x2, ...) or a pandas / polars DataFrame (its column names).
    Results: `coef`, `se`, `hazard_ratio`, `ci` (hazard-ratio bounds, p x 2), `p`, `var`, and `summary`
    (pandas: covariate, coef, se, hr, hr_lower, hr_upper, p).
    """

    covariate_names: list[str]
    cause: int
    coef: FloatArray
    var: FloatArray
    se: FloatArray
    hazard_ratio: FloatArray
    ci: FloatArray
    p: FloatArray
    log_likelihood: float
    information: FloatArray
    n_iter: int
    n_events: int
    summary: pd.DataFrame

    def __init__(self, alpha: float = 0.05, tol: float = 1e-10, max_iter: int = 50) -> None:
        self.alpha = alpha
        self._z = _normal_quantile(alpha)
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, time: Any, event: Any, covariates: Any, cause: int = 1) -> FineGrayFitter:
        t, e = _time_event(time, event, cause)
        x, names = _covariate_matrix(covariates, t.size)
        status = np.where(e == cause, 1, np.where(e == CENSORED, 0, 2)).astype(np.int64)
        if not np.any(status == 1):
            raise NotEstimable(f"no failures from cause {cause}")
        data = _fine_gray_data(t, status, x)
        beta = np.zeros(x.shape[1])
        rs = _risk_sets(data, beta)
        n_iter = 0
        converged = False
        while not converged:
            n_iter += 1
            if n_iter > self.max_iter:
                raise NotEstimable(f"Fine-Gray fit did not converge in {self.max_iter} iterations")
            try:
                step = np.linalg.solve(rs.information, rs.score)
            except np.linalg.LinAlgError as exc:
                raise NotEstimable(f"singular information matrix (collinear covariates?): {names}") from exc
            candidate = _risk_sets(data, beta + step)
            halvings = 0
            # Step halving keeps the likelihood increasing, as crr's backtracking does.
            while not candidate.log_likelihood >= rs.log_likelihood - 1e-12 * abs(rs.log_likelihood):
                halvings += 1
                if halvings > 30:
                    raise NotEstimable("Fine-Gray fit: no step increases the likelihood")
                step = step / 2
                candidate = _risk_sets(data, beta + step)
            beta, rs = beta + step, candidate
            converged = bool(np.max(np.abs(step)) < self.tol * max(1.0, float(np.max(np.abs(beta)))))

        inv_info = np.linalg.inv(rs.information)
        residuals = _score_residuals(data, rs)
        var = inv_info @ (residuals.T @ residuals) @ inv_info
        se = np.sqrt(np.diag(var))
        self.covariate_names = names
        self.cause = cause
        self.coef = beta
        self.var = var
        self.se = se
        self.hazard_ratio = np.exp(beta)
        self.ci = np.exp(np.column_stack((beta - self._z * se, beta + self._z * se)))
        self.p = 2 * stats.norm.sf(np.abs(beta / se))
        self.log_likelihood = rs.log_likelihood
        self.information = rs.information
        self.n_iter = n_iter
        self.n_events = int((status == 1).sum())
        self.summary = pd.DataFrame(
            {
                "covariate": names,
                "coef": beta,
                "se": se,
                "hr": self.hazard_ratio,
                "hr_lower": self.ci[:, 0],
                "hr_upper": self.ci[:, 1],
                "p": self.p,
            }
        )
        return self
