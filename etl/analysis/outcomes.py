"""`cgdw outcomes`: survival and competing-risks analyses of one endpoint of the `cohort_patient` view.

- OS and EFS: Kaplan-Meier (lifelines) with 95% CIs by the log(-log) transform of the survival
  ("exponential Greenwood", R `survfit(conf.type = "log-log")`); log-rank test (R `survdiff`); Cox
  proportional hazards with Efron ties (R `coxph` default), univariable and multivariable.
- CIR: Aalen-Johansen cumulative incidence of relapse with death without relapse as the competing
  event (R `cmprsk::cuminc`), 95% CIs by the log(-log) transform of the estimate; Gray's test; Fine-Gray
  subdistribution hazard ratios with crr's robust standard errors (`etl.analysis.competing_risks`).

Times are in years (days / 365.25). Models use the complete cases of their own covariates; the group
variable (`--by`) enters the models as indicators of each group against the reference group (the
largest one unless `reference` is given: GL for IKZF1 status).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import polars as pl
from lifelines import CoxPHFitter, CoxTimeVaryingFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceError
from lifelines.statistics import multivariate_logrank_test

from etl.analysis.cohort import (
    ENDPOINTS,
    Source,
    format_p,
    group_label,
    group_order,
    p_statement,
    read_cohort,
    read_lake_cohort,
    select_cohort,
)
from etl.analysis.competing_risks import CumulativeIncidenceFitter, FineGrayFitter, NotEstimable, gray_test
from etl.analysis.grouped_cox import MAX_PATTERNS, GroupedEfronCox, covariate_patterns
from etl.analysis.html import frame_html
from etl.errors import CgdwError
from etl.spark import Lake
from queries.mrd import is_status_column

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DAYS_PER_YEAR = 365.25  # the cohort views' years are days / 365.25
Endpoint = Literal["os", "efs", "cir", "dfs", "pfs"]
MAX_GROUPS = 20  # a grouping column with more values is not a grouping (a key, a measurement)
KM_CI_METHOD = "log(-log) transform of the Kaplan-Meier estimate, Greenwood variance"
CIF_CI_METHOD = "log(-log) transform of the Aalen-Johansen estimate, cmprsk::cuminc variance"


@dataclass
class GroupEstimate:
    group: str
    n: int
    events: int | None  # None when suppressed (see `suppress_small_counts`)
    estimate: float | None
    lower: float | None
    upper: float | None
    suppressed: str | None = None  # what is shown instead of the events: "<5", ">21" or "x"


@dataclass
class TestResult:
    name: str
    statistic: float
    df: int
    p_value: float


@dataclass
class HazardRatio:
    model: str  # univariable | multivariable
    covariate: str
    hr: float
    lower: float
    upper: float
    p_value: float
    n: int
    events: int | None
    suppressed: str | None = None


@dataclass
class OutcomeResult:
    endpoint: str
    description: str
    by: str
    reference: str
    horizon_years: float
    groups: list[GroupEstimate]
    overall: GroupEstimate
    test: TestResult
    hazard_ratios: list[HazardRatio]
    ci_method: str
    model: str
    patients: int
    excluded: dict[str, int]
    notes: list[str] = field(default_factory=list)
    cohort: str = "cohort_patient"
    where: str | None = None  # the patients the analysis is restricted to (--where)
    landmark_days: float | None = None  # times counted from this day; patients at risk after it only
    landmark_column: str | None = None  # or from each patient's own day in this column (an assessment)
    mrd_thresholds: dict[str, float] = field(default_factory=dict)  # --mrd-threshold: method -> fraction

    def to_json(self) -> dict[str, Any]:
        """The documented JSON (docs/analysis.md); `suppressed` only where --min-cell hid a count."""
        document = asdict(self)
        for cell in [*document["groups"], document["overall"], *document["hazard_ratios"]]:
            if cell["suppressed"] is None:
                del cell["suppressed"]
        return document

    def estimates_frame(self) -> pl.DataFrame:
        rows = [*self.groups, self.overall]
        return pl.DataFrame(
            {
                "group": [g.group for g in rows],
                "n": [g.n for g in rows],
                "events": _counts([(g.events, g.suppressed) for g in rows]),
                f"{self.horizon_years:g}-y estimate (95% CI)": [_percent_ci(g) for g in rows],
            }
        )

    def hazard_ratio_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "model": [h.model for h in self.hazard_ratios],
                "covariate": [h.covariate for h in self.hazard_ratios],
                "HR (95% CI)": [f"{h.hr:.2f} ({h.lower:.2f}-{h.upper:.2f})" for h in self.hazard_ratios],
                "P": [format_p(h.p_value) for h in self.hazard_ratios],
                "n": [h.n for h in self.hazard_ratios],
                "events": _counts([(h.events, h.suppressed) for h in self.hazard_ratios]),
            },
            schema={"model": pl.String, "covariate": pl.String, "HR (95% CI)": pl.String, "P": pl.String,
                    "n": pl.Int64, "events": pl.String if self.suppressed else pl.Int64},
        )  # fmt: skip

    @property
    def suppressed(self) -> bool:
        return any(g.suppressed for g in [*self.groups, self.overall])

    def _repr_html_(self) -> str:
        """Jupyter shows the estimates, the test and the hazard ratios, as `cgdw outcomes` prints them."""
        test = f"{self.test.name}: statistic {self.test.statistic:.3f}, df {self.test.df}, "
        test += p_statement(self.test.p_value)
        title = f"{self.description.capitalize()} ({self.endpoint}) by {self.by}, {self.patients} patients"
        ratios = "Subdistribution hazard ratios" if self.endpoint == "cir" else "Hazard ratios"
        return frame_html(self.estimates_frame(), title, [test]) + frame_html(
            self.hazard_ratio_frame(),
            ratios,
            [f"CI: {self.ci_method}.", f"Model: {self.model}.", *self.notes],
        )


def _counts(values: list[tuple[int | None, str | None]]) -> list[int | None] | list[str]:
    """Counts as numbers, or all as text when one is suppressed (a column has one type)."""
    if any(mark for _, mark in values):
        return [mark or str(count) for count, mark in values]
    return [count for count, _ in values]


def suppress_small_counts(result: OutcomeResult, min_cell: int) -> OutcomeResult:
    """Small-cell suppression of an outcome analysis for tables that leave the building: a group's events
    below `min_cell`, or its patients without the event below it, are hidden ("<k", ">n-k"); the total's
    events are the groups' sum, so one hidden group hides the total too ("x"), and the models' events
    (the total's, or a subset of it) are hidden with them, and so are the estimates of the cells hidden (a
    fraction of n when nobody is censored before the horizon). Groups smaller than `min_cell` are refused.
    Patients per group and P values stay."""
    if min_cell < 2:
        raise CgdwError(f"--min-cell must be at least 2, got {min_cell}")
    small = [g.group for g in result.groups if g.n < min_cell]
    if small:
        raise CgdwError(
            f"--min-cell {min_cell}: {', '.join(small)} of {result.by} have fewer than {min_cell} patients: "
            "group by a variable with larger groups"
        )
    cells = [*result.groups, result.overall]
    for cell in cells:
        events = cell.events or 0
        if 0 < events < min_cell:
            cell.suppressed = f"<{min_cell}"
        elif 0 < cell.n - events < min_cell:
            cell.suppressed = f">{cell.n - min_cell}"
    hidden = [cell for cell in cells if cell.suppressed]
    if len(hidden) == 1:  # then the total (or, when the total is the one, a group) gives it back
        others = [c for c in (result.groups if hidden[0] is result.overall else [result.overall]) if c.events]
        if others:
            min(others, key=lambda c: c.events or 0).suppressed = "x"
    # A count of late assessments below min_cell is withheld like any small cell.
    for i, note in enumerate(result.notes):
        late = re.match(r"^(\d+) of (\d+) patients had .* assessed after the landmark", note)
        if late and 0 < int(late[1]) < min_cell:
            result.notes[i] = note.replace(f"{late[1]} of ", f"fewer than {min_cell} of ", 1)
    # An exclusion count below min_cell is withheld too (the patients of a landmark or a filter step).
    small_exclusions = [reason for reason, count in result.excluded.items() if 0 < count < min_cell]
    for reason in small_exclusions:
        del result.excluded[reason]
    if small_exclusions:
        result.notes.append(
            f"Exclusion counts below {min_cell} withheld ({'; '.join(small_exclusions)}): the patients "
            "analysed are still counted."
        )
    if any(cell.suppressed for cell in cells):
        for cell in cells:
            if cell.suppressed:
                # Without censoring before the horizon, the estimate is a fraction of n: it goes too.
                cell.events = cell.estimate = cell.lower = cell.upper = None
        for ratio in result.hazard_ratios:
            ratio.events, ratio.suppressed = None, "x"
        result.notes.append(
            f"Small cells suppressed: events below {min_cell} (or patients without the event below "
            f"{min_cell}) are shown as <{min_cell} (>n-{min_cell}); x hides a count from which one could be "
            f"derived; numbers at risk below {min_cell} print as <{min_cell}."
        )
    return result


def _percent_ci(g: GroupEstimate) -> str:
    if g.suppressed:
        return "x"
    if g.estimate is None:
        return "n/a"
    return f"{100 * g.estimate:.1f}% ({100 * (g.lower or 0):.1f}-{100 * (g.upper or 0):.1f})"


def _none_if_nan(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


@dataclass(frozen=True, eq=False)
class GroupCurve:
    """One group's fitted curve, for figures: a step function (survival, or cumulative incidence) with
    its 95% CI, and the times of the group's censored patients."""

    level: object
    label: str
    n: int
    time: np.ndarray
    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    censor_times: np.ndarray


class OutcomeAnalysis:
    """One endpoint by one grouping column, optionally adjusted, in the style of lifelines' estimators:

        fitted = OutcomeAnalysis("os", by="ikzf1_status").fit(cohort_rows)
        fitted.result          # estimates at the horizon, the test, hazard ratios (OutcomeResult)
        plot_outcomes(fitted, "os.png")   # etl/analysis/survival_plot.py: reads and fits nothing again

    `fit` takes rows of a cohort view with `columns` (read them with `read_outcome_data`, or use
    `analyse_outcomes`, which does both); `hazard_ratios=False` skips the regression models (Table 1)."""

    def __init__(
        self,
        endpoint: str = "os",
        by: str = "ikzf1_status",
        *,
        horizon: float = 5.0,
        adjust: tuple[str, ...] = (),
        reference: str | None = None,
        hazard_ratios: bool = True,
        cohort: str = "cohort_patient",
        where: str | None = None,
        landmark_days: float | None = None,
        time_dependent: str | None = None,
        landmark_column: str | None = None,
        mrd_thresholds: list[str] | None = None,
    ) -> None:
        if time_dependent is not None and endpoint == "cir":
            raise CgdwError(
                "--time-dependent applies to the Cox models of os, efs, dfs and pfs, not to Fine-Gray (cir)"
            )
        if landmark_days is not None and not (math.isfinite(landmark_days) and landmark_days >= 0):
            raise CgdwError(
                f"--landmark must be a number of days from diagnosis (0 or more), got {landmark_days}"
            )
        if landmark_days is not None and landmark_column is not None:
            raise CgdwError("a landmark is a day or a column of days, not both")
        if landmark_column is not None and not landmark_column.endswith(("_day", "_days")):
            raise CgdwError(
                f"--landmark {landmark_column!r}: a landmark column holds days from diagnosis and says so in "
                "its name (..._day or ..._days, e.g. mrd_c2_mfc_day), not years or other values"
            )
        if time_dependent is not None and time_dependent.endswith("_day"):
            raise CgdwError(
                f"--time-dependent {time_dependent}: the switch time is in years from diagnosis (e.g. "
                "hsct_years), not days"
            )
        if endpoint not in ENDPOINTS:
            raise CgdwError(f"unknown endpoint {endpoint!r}: choose one of {', '.join(ENDPOINTS)}")
        if not math.isfinite(horizon) or horizon <= 0:
            raise CgdwError(f"the horizon must be a positive number of years, got {horizon}")
        time_column, status_column, _ = ENDPOINTS[endpoint]
        if by in (time_column, status_column):
            raise CgdwError(f"--by {by} is the {endpoint} endpoint itself: group by a patient characteristic")
        misplaced = [c for c in (*adjust, time_dependent) if c in (time_column, status_column)]
        if misplaced:
            raise CgdwError(
                f"{', '.join(misplaced)} is the {endpoint} endpoint itself: not a covariate of its own model"
            )
        if landmark_column in (time_column, status_column, by):
            raise CgdwError(f"--landmark {landmark_column} is the endpoint or the grouping, not a day column")
        twice = sorted({name for name in adjust if list(adjust).count(name) > 1} | ({by} & set(adjust)))
        if twice:
            raise CgdwError(f"--adjust names {', '.join(twice)} twice (or the --by column): name each once")
        self.endpoint, self.by, self.cohort, self.where = endpoint, by, cohort, where
        self.selection = select_cohort(cohort, where, mrd_thresholds)
        self.horizon, self.adjust, self.reference = horizon, tuple(adjust), reference
        self.landmark_days, self.landmark_column = landmark_days, landmark_column
        self.time_dependent = time_dependent
        self.with_hazard_ratios = hazard_ratios
        self.time_column, self.status_column, self.description = ENDPOINTS[endpoint]
        self.competing = endpoint == "cir"
        self._result: OutcomeResult | None = None
        self.data = pl.DataFrame()  # the patients used: group, time, status, covariates
        self.model_notes: list[str] = []  # models that could not be fitted, and why
        self.curves: list[GroupCurve] = []

    @property
    def columns(self) -> list[str]:
        """The cohort view's columns `fit` needs."""
        switch = [self.time_dependent] if self.time_dependent else []
        landmark = [self.landmark_column] if self.landmark_column else []
        landmark += [self._assessment_day] if self._assessment_day else []
        return list(
            dict.fromkeys([self.by, self.time_column, self.status_column, *self.adjust, *switch, *landmark])
        )

    @property
    def _assessment_day(self) -> str | None:
        """The day column of an MRD status grouped by under a fixed landmark (to tell late assessments)."""
        if self.landmark_days is None or not (is_status_column(self.by) and self.by.endswith("_positive")):
            return None
        return self.by.removesuffix("_positive") + "_day"

    @property
    def _switch(self) -> str:
        """The name of the time-dependent covariate in the models: COLUMN(t)."""
        return f"{self.time_dependent}(t)"

    @property
    def result(self) -> OutcomeResult:
        if self._result is None:
            raise CgdwError("the outcome analysis is not fitted: call fit() first")
        return self._result

    def plot(self, out: Path | str | None = None, *, min_cell: int | None = None) -> Figure:
        """The curves with numbers at risk (etl/analysis/survival_plot.py), from this fit: written to `out`
        (.png or .svg) when given; the figure is returned, and a notebook shows it."""
        from etl.analysis.style import figure_rc, format_for, save_figure
        from etl.analysis.survival_plot import outcome_figure

        fmt = format_for(Path(out)) if out is not None else None
        figure = outcome_figure(self, min_cell=min_cell)
        if out is not None and fmt is not None:
            with figure_rc():
                save_figure(figure, Path(out), fmt)
        return figure

    def _repr_html_(self) -> str:
        return self.result._repr_html_()

    # --- fit ----------------------------------------------------------------------------------------------

    def fit(self, cohort_rows: pl.DataFrame) -> OutcomeAnalysis:
        """Fit on rows of the cohort view (one per patient); returns the fitted analysis."""
        self.model_notes = []
        frame, excluded = self._usable(cohort_rows)
        levels, reference = self._groups(frame)
        estimate = self._cif_at if self.competing else self._km_at
        fitted = [estimate(frame.filter(pl.col(self.by) == v), v) for v in levels]
        overall, _ = estimate(frame, "Total")
        hazard_ratios = (
            self._hazard_ratios(self._design(frame, levels, reference)) if self.with_hazard_ratios else []
        )
        model = (
            "Fine-Gray subdistribution hazards (cause: relapse; competing: death without relapse)"
            if self.competing
            else "Cox proportional hazards, Efron ties"
        )
        self.data, self.curves = frame, [curve for _, curve in fitted]
        self._result = OutcomeResult(
            endpoint=self.endpoint,
            description=self.description,
            by=self.by,
            reference=group_label(reference),
            horizon_years=self.horizon,
            groups=[group for group, _ in fitted],
            overall=overall,
            test=self._test(frame, levels),
            hazard_ratios=hazard_ratios,
            ci_method=CIF_CI_METHOD if self.competing else KM_CI_METHOD,
            model=model,
            patients=frame.height,
            excluded=excluded,
            notes=[
                *([self.selection.sentence] if self.selection.where or self.selection.mrd_thresholds else []),
                *self._late_assessments(frame),
                *self.model_notes,
            ],
            cohort=self.cohort,
            where=self.selection.where,
            landmark_days=self.landmark_days,
            landmark_column=self.landmark_column,
            mrd_thresholds=dict(self.selection.mrd_thresholds),
        )
        return self

    def _usable(self, cohort_rows: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
        """Patients with a group, a time and a status; what was left out and why."""
        frame = cohort_rows.select(self.columns)
        missing_endpoint = (
            "never in CR, or CR unknown (not counted in CIR; endpoint view)"
            if self.competing
            else f"no {self.time_column}/{self.status_column}"
        )
        excluded = {
            f"no {self.by}": frame.filter(pl.col(self.by).is_null()).height,
            missing_endpoint: frame.filter(
                pl.col(self.by).is_not_null()
                & (pl.col(self.time_column).is_null() | pl.col(self.status_column).is_null())
            ).height,
        }
        usable = frame.filter(
            pl.col(self.by).is_not_null()
            & pl.col(self.time_column).is_not_null()
            & pl.col(self.status_column).is_not_null()
        ).rename({self.time_column: "time", self.status_column: "status"})
        if self.landmark_column is not None:
            no_landmark = usable.filter(pl.col(self.landmark_column).is_null()).height
            excluded[f"no {self.landmark_column} (no landmark)"] = no_landmark
            usable = usable.filter(pl.col(self.landmark_column).is_not_null())
        if self.landmark_days is not None or self.landmark_column is not None:
            usable, excluded[self._landmark_exclusion] = self._from_landmark(usable)
        if usable.is_empty():
            raise CgdwError(f"no patient of {self.cohort} has {self.by} and {self.endpoint} data")
        return usable, excluded

    @property
    def _landmark_exclusion(self) -> str:
        if self.landmark_column is not None:
            return f"event or end of follow-up by the landmark ({self.landmark_column})"
        return f"event or end of follow-up by the landmark (day {self.landmark_days:g})"

    def _from_landmark(self, usable: pl.DataFrame) -> tuple[pl.DataFrame, int]:
        """A landmark analysis (guarantee-time bias): the patients still event-free and under follow-up
        after the landmark day, their time counted from it (R: subset(d, time > L); time - L). An event or a
        censoring on the landmark day itself is before the landmark: that patient is not at risk after it.
        With a landmark column, L is each patient's own day (of an MRD assessment, say)."""
        if self.landmark_column is not None:
            dtype = usable.schema[self.landmark_column]
            if not dtype.is_numeric():
                raise CgdwError(
                    f"--landmark {self.landmark_column}: a landmark column holds days from diagnosis, "
                    f"{self.cohort}.{self.landmark_column} is {dtype}"
                )
            negative = usable.filter(pl.col(self.landmark_column) < 0).height
            if negative:
                raise CgdwError(
                    f"--landmark {self.landmark_column}: {negative} patients have a negative value; a "
                    "landmark is a day from diagnosis (0 or more)"
                )
            landmark_days = pl.col(self.landmark_column).cast(pl.Float64)
        else:
            landmark_days = pl.lit(self.landmark_days or 0.0)
        landmark_years = landmark_days / DAYS_PER_YEAR
        kept = usable.filter(pl.col("time") > landmark_years)
        # The shift is made in days (whole, or fractional from months: exact to 1e-6), so that two patients
        # with as many days after their own landmarks tie exactly, as they would in a table of days.
        days = (pl.col("time") * DAYS_PER_YEAR).round(6)
        shifted = [(days - landmark_days) / DAYS_PER_YEAR]
        if self.time_dependent:  # a switch before the landmark is on from the start of the new time
            switch_days = (pl.col(self.time_dependent) * DAYS_PER_YEAR).round(6)
            shifted.append(((switch_days - landmark_days) / DAYS_PER_YEAR).alias(self.time_dependent))
        return kept.with_columns(shifted), usable.height - kept.height

    def _late_assessments(self, frame: pl.DataFrame) -> list[str]:
        """Under a fixed landmark, a group known only after it uses the future: say how often."""
        day = self._assessment_day
        if day is None or day not in frame.columns:
            return []
        late = frame.filter(pl.col(day) > self.landmark_days).height
        if not late:
            return []
        return [
            f"{late} of {frame.height} patients had {self.by} assessed after the landmark (day "
            f"{self.landmark_days:g}): their group was not known at it; --landmark {day} counts time from "
            "each patient's assessment."
        ]

    def _groups(self, frame: pl.DataFrame) -> tuple[list[object], object]:
        levels = group_order(frame[self.by])
        if len(levels) > MAX_GROUPS:
            raise CgdwError(
                f"--by {self.by} makes {len(levels)} groups of {frame.height} patients: group by a variable "
                f"with at most {MAX_GROUPS} values (a category, not an identifier or a measurement)"
            )
        if self.reference is not None:
            matching = [v for v in levels if group_label(v) == self.reference]
            if not matching:
                raise CgdwError(
                    f"reference group {self.reference!r} is not a value of {self.by}: "
                    f"{', '.join(group_label(v) for v in levels)}"
                )
            return levels, matching[0]
        sizes = {v: frame.filter(pl.col(self.by) == v).height for v in levels}
        return levels, max(levels, key=lambda v: (sizes[v], str(v)))

    def _test(self, frame: pl.DataFrame, levels: list[object]) -> TestResult:
        if len(levels) < 2:
            return TestResult("none (one group)", math.nan, 0, math.nan)
        # Groups as integer codes: sorting a million strings cost more than the tests themselves.
        codes = frame[self.by].replace_strict(levels, list(range(len(levels))), return_dtype=pl.Int64)
        if self.competing:
            time = frame["time"].to_numpy().astype(float)
            status = frame["status"].to_numpy().astype(int)
            gray = gray_test(time, status, codes.to_numpy(), cause=1)
            return TestResult("Gray's test", float(gray.statistic), int(gray.df), float(gray.p_value))
        # The log-rank test depends on the data only through counts per (day, status, group): fitted on
        # those counts as case weights, it is the same test on a few thousand rows.
        counts = (
            frame.select("time", "status", codes.alias("group")).group_by("time", "status", "group").len()
        )
        logrank = multivariate_logrank_test(
            counts["time"].to_numpy().astype(float),
            counts["group"].to_numpy(),
            counts["status"].to_numpy().astype(int),
            weights=counts["len"].to_numpy().astype(float),
        )
        return TestResult(
            "log-rank test", float(logrank.test_statistic), len(levels) - 1, float(logrank.p_value)
        )

    def _km_at(self, frame: pl.DataFrame, level: object) -> tuple[GroupEstimate, GroupCurve]:
        # Kaplan-Meier and Greenwood's variance depend on counts per (day, status) only: fitted on those
        # counts as case weights, the same estimate on a few thousand rows instead of a million.
        counts = frame.group_by("time", "status").len()
        kmf = KaplanMeierFitter().fit(
            counts["time"].to_numpy().astype(float),
            counts["status"].to_numpy().astype(int),
            weights=counts["len"].to_numpy().astype(float),
        )
        label = group_label(level)
        estimate = float(kmf.survival_function_at_times(self.horizon).iloc[0])
        band = kmf.confidence_interval_survival_function_
        at = band[band.index <= self.horizon].iloc[-1]
        events = int(frame["status"].sum())
        point = GroupEstimate(
            label, frame.height, events, estimate, _none_if_nan(at.iloc[0]), _none_if_nan(at.iloc[1])
        )
        curve = GroupCurve(
            level, label, frame.height,
            kmf.survival_function_.index.to_numpy(dtype=float),
            kmf.survival_function_.iloc[:, 0].to_numpy(dtype=float),
            band.iloc[:, 0].to_numpy(dtype=float), band.iloc[:, 1].to_numpy(dtype=float),
            _censor_times(frame),
        )  # fmt: skip
        return point, curve

    def _cif_at(self, frame: pl.DataFrame, level: object) -> tuple[GroupEstimate, GroupCurve]:
        time, status = frame["time"].to_numpy().astype(float), frame["status"].to_numpy().astype(int)
        fitter = CumulativeIncidenceFitter().fit(time, status, cause=1)
        point = fitter.at(self.horizon)
        label = group_label(level)
        estimate = GroupEstimate(
            label,
            len(time),
            int((status == 1).sum()),
            _none_if_nan(point.estimate),
            _none_if_nan(point.lower),
            _none_if_nan(point.upper),
        )
        steps = fitter.curve()
        curve = GroupCurve(
            level,
            label,
            len(time),
            steps.time,
            steps.estimate,
            steps.lower,
            steps.upper,
            _censor_times(frame),
        )
        return estimate, curve

    def _design(self, frame: pl.DataFrame, levels: list[object], reference: object) -> pl.DataFrame:
        """time, status, one indicator per non-reference group, then the adjustment covariates as floats."""
        indicators = [
            pl.col(self.by).eq(v).cast(pl.Float64).alias(f"{self.by}={group_label(v)}")
            for v in levels
            if v != reference
        ]
        covariates = []
        for name in self.adjust:
            dtype = frame.schema[name]
            if not (dtype.is_numeric() or dtype == pl.Boolean):
                raise CgdwError(
                    f"--adjust {name}: a covariate must be numeric or true/false, "
                    f"{self.cohort}.{name} is {dtype}"
                )
            covariates.append(pl.col(name).cast(pl.Float64))
        if self.time_dependent:
            dtype = frame.schema[self.time_dependent]
            if not dtype.is_numeric():
                raise CgdwError(
                    f"--time-dependent {self.time_dependent}: a time from diagnosis in years, "
                    f"{self.cohort}.{self.time_dependent} is {dtype}"
                )
            # The switch time; never (NULL) is +inf, so that the complete-case rule keeps the patient.
            switch = pl.col(self.time_dependent).cast(pl.Float64).fill_null(math.inf)
            covariates.append(switch.alias(self._switch))
        return frame.select("time", "status", *indicators, *covariates)

    def _hazard_ratios(self, design: pl.DataFrame) -> list[HazardRatio]:
        covariates = [c for c in design.columns if c not in ("time", "status")]
        # The groups of --by are one variable: all their indicators in one model, each group against
        # the reference (as R's coxph(~ factor(by)) and crr give), never one group against the others
        # pooled. Each --adjust covariate alone is the other univariable model.
        groups = [c for c in covariates if c.startswith(f"{self.by}=")]
        models: list[tuple[str, list[str]]] = [("univariable", groups)] if groups else []
        models += [("univariable", [c]) for c in covariates if c not in groups]
        if self.adjust or self.time_dependent:
            models.append(("multivariable", covariates))
        out: list[HazardRatio] = []
        for model, names in models:
            data = design.select("time", "status", *names).drop_nulls()
            constant = [name for name in names if data[name].n_unique() < 2]
            if data.height == 0 or constant:
                # A covariate with one value has no hazard ratio: said, not dropped silently.
                reason = f"{', '.join(constant)} has one value" if constant else "no patient with every value"
                self.model_notes.append(f"{model} model of {', '.join(names)}: not estimable ({reason}).")
                continue
            fit: Callable[[pl.DataFrame, list[str]], list[tuple[str, float, float, float, float]]]
            fit = _fine_gray if self.competing else _cox
            if self.time_dependent and self._switch in names:
                fit = partial(_time_dependent_cox, switch=self._switch)
            try:
                fitted = fit(data, names)
            except (ArithmeticError, np.linalg.LinAlgError, ConvergenceError, NotEstimable) as exc:
                # Few patients or events (a small landmark subset, a group with no event): the estimates
                # stand, the model does not.
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.model_notes.append(f"{model} model of {', '.join(names)}: not estimable ({reason}).")
                continue
            for covariate, hr, lower, upper, p in fitted:
                events = int((data["status"] == 1).sum())
                out.append(HazardRatio(model, covariate, hr, lower, upper, p, data.height, events))
        return out


def landmark_arguments(text: str | None) -> dict[str, Any]:
    """`--landmark 82` (a day from diagnosis) or `--landmark mrd_c2_mfc_day` (a column of days: each
    patient's own landmark) as the keyword arguments of `analyse_outcomes`."""
    if text is None:
        return {}
    try:
        return {"landmark_days": float(text)}
    except ValueError:
        return {"landmark_column": text.strip()}


def read_outcome_data(db_path: Source, analysis: OutcomeAnalysis) -> pl.DataFrame:
    """The rows of the analysis's cohort view, with the columns it needs. On Spark, the patients counted
    per distinct row (time, status, group, covariates) and expanded again: the same rows, collected once
    per pattern; the estimators sort their input, so the fit is the same."""
    chosen = analysis.selection
    if isinstance(db_path, Lake):
        return read_lake_cohort(
            db_path, chosen.view, analysis.columns, chosen.where, chosen.mrd_thresholds, grouped=True
        )
    return read_cohort(
        db_path, chosen.view, analysis.columns, where=chosen.where, mrd_thresholds=chosen.mrd_thresholds
    )


def analyse_outcomes(
    db_path: Source,
    endpoint: str = "os",
    by: str = "ikzf1_status",
    *,
    cohort: str = "cohort_patient",
    horizon: float = 5.0,
    adjust: tuple[str, ...] = (),
    reference: str | None = None,
    where: str | None = None,
    landmark_days: float | None = None,
    time_dependent: str | None = None,
    landmark_column: str | None = None,
    mrd_thresholds: list[str] | None = None,
) -> OutcomeAnalysis:
    """Read the cohort view (the patients `where` selects) and fit: what `cgdw outcomes` runs. The fitted
    analysis's `result` holds the figures; `plot_outcomes` draws its curves."""
    analysis = OutcomeAnalysis(
        endpoint, by, horizon=horizon, adjust=adjust, reference=reference, cohort=cohort, where=where,
        landmark_days=landmark_days, time_dependent=time_dependent, landmark_column=landmark_column,
        mrd_thresholds=mrd_thresholds,
    )  # fmt: skip
    return analysis.fit(read_outcome_data(db_path, analysis))


def _censor_times(frame: pl.DataFrame) -> np.ndarray:
    return frame.filter(pl.col("status") == 0)["time"].to_numpy().astype(float)


def _cox(data: pl.DataFrame, names: list[str]) -> list[tuple[str, float, float, float, float]]:
    covariates = data.select(names).to_numpy().astype(np.float64)
    if covariate_patterns(covariates) <= MAX_PATTERNS:
        # Group indicators (and other few-valued covariates): the same Efron fit on counts per time
        # and pattern, exact and fast on a million patients (etl/analysis/grouped_cox.py).
        grouped = GroupedEfronCox().fit(data["time"].to_numpy(), data["status"].to_numpy(), covariates, names)
        return _summary_rows(grouped.summary, names)
    frame = data.to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' convergence chatter; failures still raise
        # Converge to the maximum itself (lifelines stops at a step of 1e-7 by default), so the
        # estimates do not depend on where an iteration happened to stop.
        fitter = CoxPHFitter().fit(
            frame,
            duration_col="time",
            event_col="status",
            fit_options={"precision": 1e-12, "r_precision": 0},
            # lifelines' own choice misses large cohorts with many tied days (3x slower at 100,000)
            batch_mode=True if frame["time"].nunique() < len(frame) / 2 else None,
        )
    return _summary_rows(fitter.summary, names)


def counting_process(data: pl.DataFrame, switch: str) -> pl.DataFrame:
    """One row per patient and interval, (start, stop]: before and after the time the covariate `switch`
    turns on (as R survival's tmerge(..., tdc(switch)) splits them). A switch at or after the end of
    follow-up never happens; one at or before time 0 is on from the start. The event is on the last row."""
    on = pl.col(switch)
    before = data.filter(on > 0).select(
        pl.lit(0.0).alias("start"), pl.min_horizontal(on, pl.col("time")).alias("stop"),
        pl.when(on < pl.col("time")).then(0).otherwise(pl.col("status")).alias("status"),
        pl.exclude("time", "status", switch), pl.lit(0.0).alias(switch),
    )  # fmt: skip
    after = data.filter(on < pl.col("time")).select(
        pl.max_horizontal(on, pl.lit(0.0)).alias("start"), pl.col("time").alias("stop"), pl.col("status"),
        pl.exclude("time", "status", switch), pl.lit(1.0).alias(switch),
    )  # fmt: skip
    return pl.concat([before, after])


def _time_dependent_cox(
    data: pl.DataFrame, names: list[str], switch: str
) -> list[tuple[str, float, float, float, float]]:
    """Cox with a covariate that switches on at a time (Efron ties, as R coxph on tmerge's intervals)."""
    intervals = counting_process(data, switch).to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' convergence chatter; failures still raise
        fitter = CoxTimeVaryingFitter().fit(
            intervals,
            event_col="status",
            start_col="start",
            stop_col="stop",
            fit_options={"precision": 1e-12, "r_precision": 0},
        )
    return _summary_rows(fitter.summary, names)


def _fine_gray(data: pl.DataFrame, names: list[str]) -> list[tuple[str, float, float, float, float]]:
    covariates = pd.DataFrame(data.select(names).to_numpy(), columns=names)
    fitter = FineGrayFitter().fit(
        data["time"].to_numpy().astype(float), data["status"].to_numpy().astype(int), covariates, cause=1
    )
    return [
        (
            str(row["covariate"]),
            float(row["hr"]),
            float(row["hr_lower"]),
            float(row["hr_upper"]),
            float(row["p"]),
        )
        for row in fitter.summary.to_dict("records")
    ]


def _summary_rows(summary: pd.DataFrame, names: list[str]) -> list[tuple[str, float, float, float, float]]:
    """(covariate, HR, lower, upper, P) from a lifelines-style summary."""
    return [
        (
            name,
            float(summary.loc[name, "exp(coef)"]),
            float(summary.loc[name, "exp(coef) lower 95%"]),
            float(summary.loc[name, "exp(coef) upper 95%"]),
            float(summary.loc[name, "p"]),
        )
        for name in names
    ]
