"""Kaplan-Meier and cumulative-incidence curves with numbers at risk (Figure 1D-E of the seed letter).

Step curves per group with an optional 95% CI band, '+' censor ticks, a test annotation (log-rank or
Gray's test) and a numbers-at-risk table aligned with the x-axis ticks. `plot_outcomes` draws a fitted
`OutcomeAnalysis` (etl/analysis/outcomes.py) without reading or fitting anything again.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

from etl.analysis.cohort import p_statement
from etl.analysis.labels import Labels
from etl.analysis.style import PALETTE, PNG_DPI, FigureStyle, figure_rc, format_for, save_figure

if TYPE_CHECKING:
    from etl.analysis.outcomes import OutcomeAnalysis


# eq=False: the fields are numpy arrays, whose == is element-wise, so a generated __eq__/__hash__ would
# raise instead of comparing; identity semantics are the useful ones here.
@dataclass(frozen=True, eq=False)
class StepCurve:
    """One group's right-continuous step function (Kaplan-Meier survival or cumulative incidence).

    `estimate[i]` holds from `time[i]` until `time[i + 1]`; times are in years, start at 0 and ascend.
    `lower`/`upper` are an optional pointwise 95% CI band (both or neither, NaN allowed where undefined);
    `censor_times` are drawn as '+' ticks on the curve.
    """

    label: str
    time: np.ndarray
    estimate: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    censor_times: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.label:
            raise ValueError("StepCurve.label must be a non-empty string")
        time = _as_1d(self.time, f"StepCurve {self.label!r}: time")
        if time.size == 0:
            raise ValueError(f"StepCurve {self.label!r}: time is empty")
        if not np.all(np.isfinite(time)):
            raise ValueError(f"StepCurve {self.label!r}: time contains NaN or infinite values")
        if time[0] != 0:
            raise ValueError(f"StepCurve {self.label!r}: time must start at 0, got {time[0]:g}")
        if np.any(np.diff(time) < 0):
            raise ValueError(f"StepCurve {self.label!r}: time must be ascending")
        for name in ("estimate", "lower", "upper"):
            values = getattr(self, name)
            if values is None:
                continue
            array = _as_1d(values, f"StepCurve {self.label!r}: {name}")
            if array.shape != time.shape:
                raise ValueError(
                    f"StepCurve {self.label!r}: {name} has {array.size} values but time has {time.size}"
                )
        if (self.lower is None) != (self.upper is None):
            raise ValueError(f"StepCurve {self.label!r}: give both lower and upper CI bounds, or neither")
        if not np.all(np.isfinite(_as_1d(self.estimate, "estimate"))):
            raise ValueError(f"StepCurve {self.label!r}: estimate contains NaN or infinite values")
        if self.censor_times is not None:
            censor = _as_1d(self.censor_times, f"StepCurve {self.label!r}: censor_times")
            if censor.size and (not np.all(np.isfinite(censor)) or censor.min() < 0):
                raise ValueError(f"StepCurve {self.label!r}: censor_times must be finite and >= 0")


@dataclass(frozen=True)
class AtRiskTable:
    """Numbers at risk shown under the curves: `counts[label][j]` patients at risk at `times[j]` years."""

    times: list[float]
    counts: dict[str, list[int]]
    min_cell: int | None = None  # counts from 1 to min_cell - 1 print as "<min_cell"

    def text(self, label: str, j: int) -> str:
        count = int(self.counts[label][j])
        return f"<{self.min_cell}" if self.min_cell and 0 < count < self.min_cell else f"{count:,}"

    def __post_init__(self) -> None:
        if not self.times:
            raise ValueError("AtRiskTable.times is empty")
        times = np.asarray(self.times, dtype=float)
        if not np.all(np.isfinite(times)) or times.min() < 0 or np.any(np.diff(times) <= 0):
            raise ValueError("AtRiskTable.times must be finite, >= 0 and strictly ascending")
        if not self.counts:
            raise ValueError("AtRiskTable.counts is empty")
        for label, row in self.counts.items():
            if len(row) != len(self.times):
                raise ValueError(f"AtRiskTable: {label!r} has {len(row)} counts for {len(self.times)} times")
            if any(int(count) != count or count < 0 for count in row):
                raise ValueError(f"AtRiskTable: counts of {label!r} must be non-negative integers")


def plot_curves(
    curves: list[StepCurve],
    at_risk: AtRiskTable,
    out: Path,
    *,
    title: str,
    ylabel: str,
    xlabel: str = "Years",
    horizon: float | None = None,
    annotation: str | None = None,
    percent: bool = True,
    style: FigureStyle | None = None,
) -> Path:
    """`draw_curves`, written as PNG or SVG according to the suffix of `out`; returns `out`."""
    fmt = format_for(out)
    figure = draw_curves(
        curves, at_risk, title=title, ylabel=ylabel, xlabel=xlabel, horizon=horizon, annotation=annotation,
        percent=percent, style=style,
    )  # fmt: skip
    with figure_rc(style):  # svg.fonttype and svg.hashsalt act when the file is written
        save_figure(figure, out, fmt)
    return out


def draw_curves(
    curves: list[StepCurve],
    at_risk: AtRiskTable,
    *,
    title: str,
    ylabel: str,
    xlabel: str = "Years",
    horizon: float | None = None,
    annotation: str | None = None,
    percent: bool = True,
    style: FigureStyle | None = None,
) -> Figure:
    """Draw step curves with a numbers-at-risk table underneath, as in the Kaplan-Meier figures of papers.

    One colour per curve (Okabe-Ito), translucent CI bands, '+' censor ticks, a legend that also carries
    `annotation` (e.g. "Log-rank P = .001") in the emptiest corner of the axes, and a table whose columns
    sit exactly under the x-axis ticks (the ticks *are* `at_risk.times`). With `percent` the estimates,
    which must be proportions in [0, 1], are shown as 0-100% (the axis says %). `style` turns the censor
    ticks off and sets the figure size and font size. The x-axis runs from 0 to `horizon`,
    by default the largest time of the curves, censorings and at-risk table; at-risk columns beyond the
    horizon are not shown. Returns the figure (a notebook shows it; `plot_curves` writes it).
    """
    if not curves:
        raise ValueError("plot_curves needs at least one curve")
    labels = [curve.label for curve in curves]
    if len(set(labels)) != len(labels):
        raise ValueError(f"curve labels must be unique, got {labels}")
    missing = [label for label in labels if label not in at_risk.counts]
    extra = [label for label in at_risk.counts if label not in labels]
    if missing or extra:
        raise ValueError(f"at-risk rows must match the curve labels: missing {missing}, unknown {extra}")
    if percent:
        for curve in curves:
            values = [curve.estimate] + [a for a in (curve.lower, curve.upper) if a is not None]
            stacked = np.concatenate([np.asarray(v, dtype=float) for v in values])
            finite = stacked[np.isfinite(stacked)]
            if finite.size and (finite.min() < -1e-9 or finite.max() > 1 + 1e-9):
                raise ValueError(
                    f"curve {curve.label!r}: percent=True expects proportions in [0, 1]; "
                    "pass percent=False for values already in another scale"
                )

    last = max(_curve_end(curve) for curve in curves)
    if horizon is None:
        horizon = max(last, max(at_risk.times))
    if not np.isfinite(horizon) or horizon <= 0:
        raise ValueError(f"horizon must be a positive number of years, got {horizon}")
    scale = 100.0 if percent else 1.0
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(curves))]
    shown = [j for j, t in enumerate(at_risk.times) if t <= horizon * (1 + 1e-9)]
    tick_times = [at_risk.times[j] for j in shown]

    style = style or FigureStyle()
    with figure_rc(style):
        text_size = mpl.rcParams["legend.fontsize"]
        main_h, row_h = 3.3, 0.19 * text_size / 8.5
        table_h = row_h * len(curves) + 0.3
        # Room for the at-risk row labels (bold 8.5 pt is ~0.08 in per character) without squeezing the plot.
        label_inches = max(1.2, 0.08 * text_size / 8.5 * max(len(label) for label in labels))
        size = style.size or (4.4 + label_inches, main_h + table_h + 0.75)
        if style.size:  # the at-risk table keeps its height; the curves take the rest
            main_h = max(size[1] - table_h - 0.75, 1.0)
        fig = Figure(figsize=size, dpi=PNG_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(2, 1, height_ratios=[main_h, table_h], hspace=0.02)
        ax = fig.add_subplot(grid[0])
        table = fig.add_subplot(grid[1], sharex=ax)

        for curve, color in zip(curves, colors, strict=True):
            _draw_curve(ax, curve, color, scale, horizon, style.censor_marks)

        ax.set_xlim(0, horizon)
        ax.set_xticks(tick_times, [f"{t:g}" for t in tick_times])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left", fontweight="bold")
        if percent:
            # A little headroom so a curve at 100% is not half-clipped by the axes edge.
            ax.set_ylim(0, 101.5)
            ax.set_yticks(np.arange(0, 101, 20))
            ax.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
        else:
            ax.set_ylim(bottom=0)
        ax.tick_params(direction="out", length=3)

        legend = ax.legend(
            handles=[Line2D([], [], color=c, lw=1.8) for c in colors],
            labels=labels,
            title=annotation,
            alignment="left",
            frameon=True,
            facecolor="white",
            edgecolor="none",
            framealpha=0.85,
            handlelength=1.6,
            borderaxespad=0,
        )
        if annotation:
            legend.get_title().set_fontsize(mpl.rcParams["legend.fontsize"])
        _draw_at_risk(table, at_risk, labels, colors, shown)
        # Last: the placement measures the legend against the final layout, at-risk labels included.
        _place_legend(fig, ax, legend, curves, scale, horizon, fixed_size=style.size is not None)
    return fig


def _curve_end(curve: StepCurve) -> float:
    """Last time the curve is known: its last step or its last censoring, whichever is later."""
    end = float(np.asarray(curve.time, dtype=float)[-1])
    if curve.censor_times is not None and np.size(curve.censor_times):
        end = max(end, float(np.max(curve.censor_times)))
    return end


def _extended(curve: StepCurve, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step vertices extended flat to the last censoring, so the curve runs to the end of follow-up."""
    time = np.asarray(curve.time, dtype=float)
    values = np.asarray(values, dtype=float)
    end = _curve_end(curve)
    if end > time[-1]:
        return np.append(time, end), np.append(values, values[-1])
    return time, values


def _step_values(curve: StepCurve, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Right-continuous step function evaluated at `at` (NaN past the end of follow-up)."""
    time = np.asarray(curve.time, dtype=float)
    index = np.searchsorted(time, at, side="right") - 1
    result = np.asarray(values, dtype=float)[np.clip(index, 0, None)]
    return np.where(at <= _curve_end(curve), result, np.nan)


def _draw_curve(
    ax: Axes, curve: StepCurve, color: str, scale: float, horizon: float, censor_marks: bool = True
) -> None:
    if curve.lower is not None and curve.upper is not None:
        x, low = _extended(curve, curve.lower)
        _, high = _extended(curve, curve.upper)
        keep = _visible_steps(x, horizon)
        ax.fill_between(
            x[keep], low[keep] * scale, high[keep] * scale, step="post", color=color, alpha=0.15, linewidth=0
        )
    x, y = _extended(curve, curve.estimate)
    keep = _visible_steps(x, horizon)
    ax.step(x[keep], y[keep] * scale, where="post", color=color, linewidth=1.8, solid_joinstyle="miter")
    if censor_marks and curve.censor_times is not None and np.size(curve.censor_times):
        censor = np.asarray(curve.censor_times, dtype=float)
        # Ticks past the horizon would be drawn half outside the axes.
        censor = censor[censor <= horizon]
        heights = _step_values(curve, curve.estimate, censor) * scale
        ax.plot(
            censor, heights, linestyle="none", marker="+", markersize=5.5, markeredgewidth=1.0, color=color,
            rasterized=censor.size > MAX_VECTOR_TICKS,  # one image, not 100,000 marks, in an SVG
        )  # fmt: skip


# A curve of a million patients has ~10^5 steps; drawn 4 inches wide, 2,000 columns show all of them.
DRAWN_COLUMNS = 2000
MAX_VECTOR_TICKS = 1000


def _visible_steps(x: np.ndarray, horizon: float) -> np.ndarray:
    """Indices of the step points worth drawing: all of them for a short curve; else, in each of
    DRAWN_COLUMNS columns of the x axis, the first and the last point (the path within a column is narrower
    than a pixel, and the step shape, entering and leaving each column, is kept exactly)."""
    if x.size <= 2 * DRAWN_COLUMNS:
        return np.arange(x.size)
    columns = np.minimum(
        (np.asarray(x, dtype=float) / horizon * DRAWN_COLUMNS).astype(np.int64), DRAWN_COLUMNS
    )
    first = np.flatnonzero(np.r_[True, columns[1:] != columns[:-1]])
    last = np.flatnonzero(np.r_[columns[1:] != columns[:-1], True])
    return np.union1d(first, last)


# Cost of hiding one grid cell of a curve line vs of a CI band, when placing the legend.
_LINE_WEIGHT, _BAND_WEIGHT = 50.0, 1.0


def _place_legend(
    fig: Figure,
    ax: Axes,
    legend: Any,
    curves: Sequence[StepCurve],
    scale: float,
    horizon: float,
    fixed_size: bool = False,
) -> None:
    """Move the legend (and its annotation title) to where it hides the least of the curves.

    Matplotlib's loc='best' ignores fill_between bands and only tries nine fixed spots. Here the axes are
    rasterised into a grid where curve lines weigh much more than CI bands, every legend position on that
    grid is scored with a summed-area table, and ties go to the position nearest a corner, so an empty
    corner wins whenever there is one. The legend keeps a translucent white background in case it must
    overlap a band; if every position inside would hide part of a curve, the legend goes to the right of
    the axes and the figure is widened by its width, unless the figure's size was asked for
    (`fixed_size`): then matplotlib's 'best' spot inside.
    """
    fig.draw_without_rendering()
    box = legend.get_window_extent().transformed(ax.transAxes.inverted())
    cells = 100
    width = min(int(np.ceil(box.width * cells)), cells)
    height = min(int(np.ceil(box.height * cells)), cells)
    occupancy = _occupancy(ax, curves, scale, horizon, cells)
    # Summed-area table: the cost of any width x height window in O(1).
    table = np.zeros((cells + 1, cells + 1))
    table[1:, 1:] = occupancy.cumsum(axis=0).cumsum(axis=1)
    margin = 1
    rows = np.arange(margin, cells - height + 1)
    cols = np.arange(margin, cells - width + 1)
    if rows.size == 0 or cols.size == 0:
        return  # legend larger than the axes: leave matplotlib's placement
    r0, c0 = np.meshgrid(rows, cols, indexing="ij")
    cost = table[r0 + height, c0 + width] - table[r0, c0 + width] - table[r0 + height, c0] + table[r0, c0]
    # Distance (in cells) of the window's nearest corner to the matching axes corner: a tie-breaker only.
    to_corner = np.minimum(r0 - margin, cells - height - r0) + np.minimum(c0 - margin, cells - width - c0)
    score = cost + 1e-3 * to_corner
    best = np.unravel_index(int(np.argmin(score)), score.shape)
    if cost[best] >= _LINE_WEIGHT and fixed_size:
        legend.set_loc("best")  # the size was asked for: the legend stays inside, where it hides least
        return
    if cost[best] >= _LINE_WEIGHT:
        legend.set_loc("upper left")
        legend.set_bbox_to_anchor((1.02, 1.0), transform=ax.transAxes)
        width_inches, height_inches = fig.get_size_inches()
        extra = legend.get_window_extent().width / fig.dpi + 0.15
        fig.set_size_inches(width_inches + extra, height_inches)
        return
    legend.set_loc("lower left")
    legend.set_bbox_to_anchor((c0[best] / cells, r0[best] / cells), transform=ax.transAxes)


def _occupancy(ax: Axes, curves: Sequence[StepCurve], scale: float, horizon: float, cells: int) -> np.ndarray:
    """Grid over the axes (rows from the bottom) weighting cells covered by curve lines and CI bands."""
    occupancy = np.zeros((cells, cells))
    y_low, y_high = ax.get_ylim()
    per_cell = 8
    # Sample each column at several x so vertical steps inside a column are seen.
    x = (np.arange(cells * per_cell) + 0.5) / (cells * per_cell) * horizon

    def to_row(values: np.ndarray) -> np.ndarray:
        return (values * scale - y_low) / (y_high - y_low) * cells

    def cover(low: np.ndarray, high: np.ndarray, weight: float) -> None:
        low_col = np.nanmin(low.reshape(cells, per_cell), axis=1)
        high_col = np.nanmax(high.reshape(cells, per_cell), axis=1)
        for col in np.flatnonzero(np.isfinite(low_col) & np.isfinite(high_col)):
            first = int(np.clip(np.floor(low_col[col]) - 1, 0, cells))
            last = int(np.clip(np.ceil(high_col[col]) + 1, 0, cells))
            occupancy[first:last, col] += weight

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns past the end of follow-up
        for curve in curves:
            estimate = to_row(_step_values(curve, curve.estimate, x))
            cover(estimate, estimate, _LINE_WEIGHT)
            if curve.lower is not None and curve.upper is not None:
                low = to_row(_step_values(curve, curve.lower, x))
                high = to_row(_step_values(curve, curve.upper, x))
                cover(np.fmin(low, high), np.fmax(low, high), _BAND_WEIGHT)
    return occupancy


def _draw_at_risk(
    table: Axes, at_risk: AtRiskTable, labels: list[str], colors: list[str], shown: list[int]
) -> None:
    """Numbers at risk, one row per curve, in the axes under the plot (shared x, so columns align)."""
    rows = len(labels)
    widest = max(len(at_risk.text(label, j)) for label in labels for j in shown)
    for row, label in enumerate(labels):
        y = rows - 1 - row
        for j in shown:
            table.text(
                at_risk.times[j],
                y,
                at_risk.text(label, j),
                ha="center",
                va="center",
                fontsize=mpl.rcParams["legend.fontsize"],
                color=colors[row],
            )
    table.set_ylim(-0.5, rows - 0.5)
    table.set_yticks(range(rows - 1, -1, -1), labels)
    for tick_label, color in zip(table.get_yticklabels(), colors, strict=True):
        tick_label.set_color(color)
        tick_label.set_fontweight("bold")
    # The count at t=0 is centred on the left edge: pad the row labels by half its width so they never touch.
    pad = 0.32 * mpl.rcParams["legend.fontsize"] * widest + 6
    table.tick_params(axis="y", length=0, pad=pad)
    table.tick_params(axis="x", bottom=False, labelbottom=False)
    for spine in table.spines.values():
        spine.set_visible(False)
    table.patch.set_visible(False)
    table.annotate(
        "No. at risk",
        xy=(0, 1),
        xycoords="axes fraction",
        xytext=(-pad, 2),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=mpl.rcParams["legend.fontsize"],
        fontweight="bold",
    )


def _as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def plot_outcomes(
    analysis: OutcomeAnalysis,
    out: Path,
    *,
    min_cell: int | None = None,
    labels: Labels | None = None,
    style: FigureStyle | None = None,
) -> Path:
    """`outcome_figure`, written as PNG or SVG according to the suffix of `out`; returns `out`."""
    fmt = format_for(out)
    figure = outcome_figure(analysis, min_cell=min_cell, labels=labels, style=style)
    with figure_rc(style):
        save_figure(figure, out, fmt)
    return out


def outcome_figure(
    analysis: OutcomeAnalysis,
    *,
    min_cell: int | None = None,
    labels: Labels | None = None,
    style: FigureStyle | None = None,
) -> Figure:
    """Figure 1D-E style curves of a fitted outcome analysis: Kaplan-Meier survival (OS, EFS) or
    cumulative incidence of relapse (CIR), with 95% CI bands, censoring ticks, the test P and numbers at
    risk per year (below `min_cell`, shown as "<min_cell"), columns and groups named by `labels`."""
    labels = labels or Labels()
    result = analysis.result
    ticks = [float(t) for t in range(math.floor(analysis.horizon) + 1)]
    curves, counts = [], {}
    named = labels.groups(analysis.by, [fitted.level for fitted in analysis.curves])
    for fitted in analysis.curves:
        shown = named[fitted.level]
        group = shown if shown != fitted.label else f"{labels.name(analysis.by)} {fitted.label}"
        label = f"{group} (n={fitted.n:,})"
        curves.append(
            StepCurve(label, fitted.time, fitted.estimate, fitted.lower, fitted.upper, fitted.censor_times)
        )
        time = analysis.data.filter(pl.col(analysis.by) == fitted.level)["time"].to_numpy()
        counts[label] = [int((time >= t).sum()) for t in ticks]
    hr = next(
        (
            h
            for h in result.hazard_ratios
            if h.model == "univariable" and h.covariate.startswith(f"{analysis.by}=")
        ),
        None,
    )
    annotation = f"{result.test.name} {p_statement(result.test.p_value)}"
    if hr is not None:
        kind = "SHR" if analysis.competing else "HR"
        annotation += (
            f"\n{kind} {labels.covariate(hr.covariate)}: {hr.hr:.2f} ({hr.lower:.2f}-{hr.upper:.2f})"
        )
    # A landmark analysis counts time from the landmark: the axis says so (not years from diagnosis).
    if result.landmark_column is not None:
        xlabel = f"Years from each patient's {labels.name(result.landmark_column)}"
    elif result.landmark_days is not None:
        xlabel = f"Years from the landmark (day {result.landmark_days:g})"
    else:
        xlabel = "Years from diagnosis"
    return draw_curves(
        curves,
        AtRiskTable(times=ticks, counts=counts, min_cell=min_cell),
        title=f"{analysis.description.capitalize()} by {labels.name(analysis.by)}",
        ylabel=analysis.description.capitalize(),
        xlabel=xlabel,
        horizon=analysis.horizon,
        annotation=annotation,
        style=style,
    )
