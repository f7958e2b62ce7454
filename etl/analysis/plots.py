"""Publication-style figures: Kaplan-Meier / cumulative-incidence curves with numbers at risk, and oncoplots.

The figures follow Figure 1C-E of the seed letter (IKZF1 alterations in T-ALL): step curves per group with
an optional 95% CI band, '+' censor ticks, a test annotation (log-rank or Gray's test) and a numbers-at-risk
table aligned with the x-axis ticks; and an oncoplot of co-occurring alterations split by IKZF1 status.

Matplotlib is driven through `Figure` + `FigureCanvasAgg` rather than pyplot, so importing this module
neither selects a backend nor touches global state for other users of matplotlib in the process; every
rcParam the figures depend on is set inside `matplotlib.rc_context` only while a figure is built and saved.
The output format comes from the file suffix (.png or .svg). SVG output is byte-for-byte deterministic
(fixed `svg.hashsalt`, no date metadata) and keeps text as text (`svg.fonttype = 'none'`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import matplotlib as mpl
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

__all__ = [
    "PALETTE",
    "STATUS_CODES",
    "STATUS_COLORS",
    "AtRiskTable",
    "OncoplotMatrix",
    "StepCurve",
    "oncoplot_matrix",
    "plot_curves",
    "plot_oncoplot",
]

# Okabe-Ito: distinguishable under the common colour-vision deficiencies and in greyscale print.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow (last: too light on white for thin lines)
)

# Integer codes of the oncoplot matrix. Everything >= MUTATED counts as altered.
NOT_SEQUENCED = 0
WILD_TYPE = 1
MUTATED = 2
DELETED = 3
MUTATED_AND_DELETED = 4
STATUS_CODES: dict[str, int] = {
    "not_sequenced": NOT_SEQUENCED,
    "wild_type": WILD_TYPE,
    "mutated": MUTATED,
    "deleted": DELETED,
    "mutated_and_deleted": MUTATED_AND_DELETED,
}
STATUS_COLORS: dict[str, str] = {
    "not_sequenced": "#BDBDBD",  # mid grey: visibly "no data", unlike the near-white wild type
    "wild_type": "#EFEFEF",
    "mutated": "#D55E00",
    "deleted": "#0072B2",
    "mutated_and_deleted": "#000000",  # both hits: the strongest mark, distinct from either single one
}
_STATUS_LABELS: dict[str, str] = {
    "mutated": "Mutation",
    "deleted": "Deletion",
    "mutated_and_deleted": "Mutation + deletion",
    "wild_type": "Wild type",
    "not_sequenced": "Not sequenced",
}

_SUFFIX_FORMATS = {".png": "png", ".svg": "svg"}
_BASE_RC: dict[RcKeyType, Any] = {
    "svg.hashsalt": "cgdw-plots",  # fixed salt: SVG element ids (and so the bytes) do not vary per run
    "svg.fonttype": "none",  # text stays <text>, searchable and editable in Illustrator/Inkscape
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_PNG_DPI = 200


# --------------------------------------------------------------------------------------------------------
# Survival / cumulative-incidence curves
# --------------------------------------------------------------------------------------------------------


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
) -> Path:
    """Draw step curves with a numbers-at-risk table underneath, as in the Kaplan-Meier figures of papers.

    One colour per curve (Okabe-Ito), translucent CI bands, '+' censor ticks, a legend that also carries
    `annotation` (e.g. "Log-rank P = .001") in the emptiest corner of the axes, and a table whose columns
    sit exactly under the x-axis ticks (the ticks *are* `at_risk.times`). With `percent` the estimates,
    which must be proportions in [0, 1], are shown as 0-100%. The x-axis runs from 0 to `horizon`,
    by default the largest time of the curves, censorings and at-risk table; at-risk columns beyond the
    horizon are not shown. Writes PNG or SVG according to the suffix of `out` and returns `out`.
    """
    fmt = _format_for(out)
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

    with _figure_rc():
        main_h, row_h = 3.3, 0.19
        table_h = row_h * len(curves) + 0.3
        # Room for the at-risk row labels (bold 8.5 pt is ~0.08 in per character) without squeezing the plot.
        label_inches = max(1.2, 0.08 * max(len(label) for label in labels))
        fig = Figure(
            figsize=(4.4 + label_inches, main_h + table_h + 0.75), dpi=_PNG_DPI, layout="constrained"
        )
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(2, 1, height_ratios=[main_h, table_h], hspace=0.02)
        ax = fig.add_subplot(grid[0])
        table = fig.add_subplot(grid[1], sharex=ax)

        for curve, color in zip(curves, colors, strict=True):
            _draw_curve(ax, curve, color, scale, horizon)

        ax.set_xlim(0, horizon)
        ax.set_xticks(tick_times, [f"{t:g}" for t in tick_times])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left", fontweight="bold")
        if percent:
            # A little headroom so a curve at 100% is not half-clipped by the axes edge.
            ax.set_ylim(0, 101.5)
            ax.set_yticks(np.arange(0, 101, 20))
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
        _place_legend(fig, ax, legend, curves, scale, horizon)
        _save(fig, out, fmt)
    return out


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


def _draw_curve(ax: Axes, curve: StepCurve, color: str, scale: float, horizon: float) -> None:
    if curve.lower is not None and curve.upper is not None:
        x, low = _extended(curve, curve.lower)
        _, high = _extended(curve, curve.upper)
        ax.fill_between(x, low * scale, high * scale, step="post", color=color, alpha=0.15, linewidth=0)
    x, y = _extended(curve, curve.estimate)
    ax.step(x, y * scale, where="post", color=color, linewidth=1.8, solid_joinstyle="miter")
    if curve.censor_times is not None and np.size(curve.censor_times):
        censor = np.asarray(curve.censor_times, dtype=float)
        # Ticks past the horizon would be drawn half outside the axes.
        censor = censor[censor <= horizon]
        heights = _step_values(curve, curve.estimate, censor) * scale
        ax.plot(
            censor, heights, linestyle="none", marker="+", markersize=5.5, markeredgewidth=1.0, color=color
        )


# Cost of hiding one grid cell of a curve line vs of a CI band, when placing the legend.
_LINE_WEIGHT, _BAND_WEIGHT = 50.0, 1.0


def _place_legend(
    fig: Figure, ax: Axes, legend: Any, curves: Sequence[StepCurve], scale: float, horizon: float
) -> None:
    """Move the legend (and its annotation title) to where it hides the least of the curves.

    Matplotlib's loc='best' ignores fill_between bands and only tries nine fixed spots. Here the axes are
    rasterised into a grid where curve lines weigh much more than CI bands, every legend position on that
    grid is scored with a summed-area table, and ties go to the position nearest a corner, so an empty
    corner wins whenever there is one. The legend keeps a translucent white background in case it must
    overlap a band; if every position inside would hide part of a curve, the legend goes to the right of
    the axes and the figure is widened by its width.
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
    widest = max(len(str(int(at_risk.counts[label][j]))) for label in labels for j in shown)
    for row, label in enumerate(labels):
        y = rows - 1 - row
        for j in shown:
            table.text(
                at_risk.times[j],
                y,
                str(int(at_risk.counts[label][j])),
                ha="center",
                va="center",
                fontsize=8.5,
                color=colors[row],
            )
    table.set_ylim(-0.5, rows - 0.5)
    table.set_yticks(range(rows - 1, -1, -1), labels)
    for tick_label, color in zip(table.get_yticklabels(), colors, strict=True):
        tick_label.set_color(color)
        tick_label.set_fontweight("bold")
    # The count at t=0 is centred on the left edge: pad the row labels by half its width so they never touch.
    pad = 0.32 * 8.5 * widest + 6
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
        fontsize=8.5,
        fontweight="bold",
    )


# --------------------------------------------------------------------------------------------------------
# Oncoplot
# --------------------------------------------------------------------------------------------------------


class OncoplotMatrix(NamedTuple):
    """What an oncoplot shows, before drawing: also the structure tests and other code can inspect.

    `matrix[g, p]` is the `STATUS_CODES` value of gene `genes[g]` in the p-th patient, the patients being
    those of `groups` concatenated in order (each group's list already memo-sorted).
    """

    genes: list[str]
    groups: dict[str, list[int]]
    matrix: np.ndarray

    def group_slices(self) -> dict[str, slice]:
        """Column range of each group in `matrix`."""
        slices, start = {}, 0
        for group, patients in self.groups.items():
            slices[group] = slice(start, start + len(patients))
            start += len(patients)
        return slices

    def percent_altered(self) -> dict[str, np.ndarray]:
        """Per group, % of patients altered in each gene among those sequenced for it (NaN if none were)."""
        result = {}
        for group, columns in self.group_slices().items():
            block = self.matrix[:, columns]
            tested = np.count_nonzero(block != NOT_SEQUENCED, axis=1)
            altered = np.count_nonzero(block >= MUTATED, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                result[group] = np.where(tested > 0, 100.0 * altered / tested, np.nan)
        return result


def oncoplot_matrix(
    alterations: pl.DataFrame, group_column: str = "group", genes: list[str] | None = None
) -> OncoplotMatrix:
    """Order genes and patients for an oncoplot and build the integer status matrix.

    Genes are ordered by the number of altered patients (descending, ties by name) unless `genes` gives
    the order (genes of the frame not in the list are left out). Groups keep their order of first
    appearance in the frame. Within a group, patients are memo-sorted: lexicographically on alteration
    presence across the ordered genes (altered first), so that the top gene's carriers come first, then the
    second gene's, and so on; ties by status, then patient id, so the order is deterministic. A patient
    without a row for some gene counts as not sequenced for it.
    """
    frame = _checked_alterations(alterations, group_column)

    if genes is not None:
        if not genes:
            raise ValueError("genes is an empty list; pass None to use every gene of the frame")
        if len(set(genes)) != len(genes):
            raise ValueError(f"genes has duplicates: {genes}")
        present = set(frame["gene"].unique().to_list())
        absent = [gene for gene in genes if gene not in present]
        if absent:
            raise ValueError(f"genes not found in the alterations frame: {absent}")
        ordered = list(genes)
    else:
        counts = (
            frame.group_by("gene")
            .agg((pl.col("code") >= MUTATED).sum().alias("altered"))
            .sort(["altered", "gene"], descending=[True, False])
        )
        ordered = counts["gene"].to_list()

    # Patients come from the whole frame, so one with no rows for the chosen genes still shows (as no data).
    patients = frame.select("patient_id", "_group").unique(maintain_order=True).with_row_index("column")
    gene_index = pl.DataFrame({"gene": ordered}).with_row_index("row")
    cells = frame.join(gene_index, on="gene").join(patients.select("patient_id", "column"), on="patient_id")
    matrix = np.full((len(ordered), patients.height), NOT_SEQUENCED, dtype=np.int8)
    matrix[cells["row"].to_numpy(), cells["column"].to_numpy()] = cells["code"].to_numpy()

    patient_ids = patients["patient_id"].to_numpy()
    group_of = patients["_group"].to_numpy()
    altered = matrix >= MUTATED
    groups: dict[str, list[int]] = {}
    order_parts = []
    for group in patients["_group"].unique(maintain_order=True).to_list():
        columns = np.flatnonzero(group_of == group)
        # np.lexsort: the LAST key is the primary one, hence the reversed gene order.
        keys: list[np.ndarray] = [patient_ids[columns]]
        keys += [-matrix[g, columns] for g in reversed(range(len(ordered)))]
        keys += [~altered[g, columns] for g in reversed(range(len(ordered)))]
        sorted_columns = columns[np.lexsort(keys)]
        groups[group] = patient_ids[sorted_columns].tolist()
        order_parts.append(sorted_columns)
    return OncoplotMatrix(genes=ordered, groups=groups, matrix=matrix[:, np.concatenate(order_parts)])


def _checked_alterations(alterations: pl.DataFrame, group_column: str) -> pl.DataFrame:
    """Validated copy with columns patient_id, gene, status, code and _group (the group as a string)."""
    required = ["patient_id", "gene", "status", group_column]
    missing = [column for column in required if column not in alterations.columns]
    if missing:
        raise ValueError(f"alterations frame lacks column(s) {missing}; it has {alterations.columns}")
    if alterations.height == 0:
        raise ValueError("alterations frame is empty: nothing to plot")
    if not alterations.schema["patient_id"].is_integer():
        raise ValueError(f"patient_id must be an integer column, got {alterations.schema['patient_id']}")
    nulls = [column for column in required if alterations[column].null_count()]
    if nulls:
        raise ValueError(f"alterations frame has missing values in column(s) {nulls}")
    frame = alterations.select(
        pl.col("patient_id").cast(pl.Int64),
        pl.col("gene").cast(pl.String),
        pl.col("status").cast(pl.String),
        pl.col(group_column).cast(pl.String).alias("_group"),
    )
    unknown = sorted(set(frame["status"].unique().to_list()) - set(STATUS_CODES))
    if unknown:
        raise ValueError(f"unknown status value(s) {unknown}; expected one of {sorted(STATUS_CODES)}")
    duplicated = frame.filter(pl.struct("patient_id", "gene").is_duplicated())
    if duplicated.height:
        first = duplicated.row(0, named=True)
        raise ValueError(
            f"{duplicated.height} rows repeat a patient x gene pair, "
            f"e.g. patient {first['patient_id']} gene {first['gene']}"
        )
    groups_per_patient = frame.group_by("patient_id").agg(pl.col("_group").n_unique().alias("n"))
    ambiguous = groups_per_patient.filter(pl.col("n") > 1)["patient_id"].sort().to_list()
    if ambiguous:
        raise ValueError(f"patients in more than one {group_column!r} group: {ambiguous[:10]}")
    return frame.with_columns(
        pl.col("status").replace_strict(STATUS_CODES, return_dtype=pl.Int8).alias("code")
    )


def plot_oncoplot(
    alterations: pl.DataFrame,
    out: Path,
    *,
    group_column: str = "group",
    genes: list[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw an oncoplot: genes as rows, patients as columns split by group, one colour per status.

    Layout and ordering come from `oncoplot_matrix`. The cells are a single `imshow` of the integer matrix
    mapped to colours (not one rectangle per cell), averaged down along x beyond `_MAX_IMAGE_COLUMNS`
    patients, so 100,000 patients draw as fast as 500. Groups are separated by a gap and
    labelled above with their size; the % of sequenced patients altered in each gene is listed per group at
    the right. Writes PNG or SVG according to the suffix of `out` and returns `out`.
    """
    fmt = _format_for(out)
    data = oncoplot_matrix(alterations, group_column, genes)
    n_genes, n_patients = data.matrix.shape
    slices = data.group_slices()

    image, spans = _oncoplot_image(data)
    width_columns = image.shape[1]

    with _figure_rc():
        fig = Figure(figsize=(9.0, 0.28 * n_genes + 1.9), dpi=_PNG_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(1, 2, width_ratios=[9.0, 0.55 * len(slices)], wspace=0.01)
        ax = fig.add_subplot(grid[0, 0])
        side = fig.add_subplot(grid[0, 1], sharey=ax)

        # One image for all cells, never one rectangle per cell: as fast for 100,000 patients as for 50.
        ax.imshow(image, aspect="auto", interpolation="nearest")
        # White rules between genes (and between patients when few enough to tell apart) as in maftools.
        if n_genes > 1:
            ax.hlines(np.arange(n_genes - 1) + 0.5, -0.5, width_columns - 0.5, colors="white", linewidth=1.5)
        if n_patients <= 200:
            edges = [start + k + 0.5 for start, stop in spans.values() for k in range(stop - start - 1)]
            ax.vlines(edges, -0.5, n_genes - 0.5, colors="white", linewidth=0.6)

        ax.set_yticks(range(n_genes), data.genes, fontstyle="italic")
        ax.set_xticks([])
        ax.tick_params(axis="y", length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel(f"Patients (n = {n_patients:,})")

        above = blended_transform_factory(ax.transData, ax.transAxes)
        for group, columns in slices.items():
            left, right = spans[group][0] - 0.5, spans[group][1] - 0.5
            ax.plot([left, right], [1.015, 1.015], transform=above, color="0.25", lw=1.2, clip_on=False)
            ax.text(
                (left + right) / 2,
                1.035,
                # Two lines keep the label close to the width of a small group.
                f"{group}\n(n = {columns.stop - columns.start:,})",
                transform=above,
                ha="center",
                va="bottom",
                fontweight="bold",
            )

        side.set_axis_off()
        side.set_xlim(0, len(slices))
        top = blended_transform_factory(side.transData, side.transAxes)
        for k, (group, percents) in enumerate(data.percent_altered().items()):
            side.text(k + 0.5, 1.035, group, transform=top, ha="center", va="bottom", fontweight="bold")
            for row, value in enumerate(percents):
                text = "–" if np.isnan(value) else f"{value:.0f}%"
                side.text(k + 0.5, row, text, ha="center", va="center", fontsize=8.5)
        side.text(len(slices) / 2, 1.11, "% altered", transform=top, ha="center", va="bottom", fontsize=8)

        handles = [
            Patch(facecolor=STATUS_COLORS[s], edgecolor="0.55", linewidth=0.5, label=_STATUS_LABELS[s])
            for s in ("mutated", "deleted", "mutated_and_deleted", "wild_type", "not_sequenced")
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
        if title:
            fig.suptitle(title, fontweight="bold", fontsize=10)
        _save(fig, out, fmt)
    return out


# Above this many columns the image is averaged down horizontally (see `_oncoplot_image`).
_MAX_IMAGE_COLUMNS = 800


def _oncoplot_image(data: OncoplotMatrix) -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """RGBA image of the oncoplot (groups separated by transparent gaps) and each group's column span.

    With more patients than `_MAX_IMAGE_COLUMNS`, consecutive (memo-sorted, so similar) patients of a group
    are averaged into one column: a bin where 20% of patients carry a mutation shows as a pale mutation
    colour. Averaging here, along x only, is what keeps rare alterations visible without the vertical
    bleeding between gene rows that an image-resampling filter would cause.
    """
    statuses = sorted(STATUS_CODES, key=STATUS_CODES.__getitem__)
    lookup = np.array([to_rgba(STATUS_COLORS[s]) for s in statuses], dtype=np.float32)
    n_genes, n_patients = data.matrix.shape
    factor = max(1, int(np.ceil(n_patients / _MAX_IMAGE_COLUMNS)))
    blocks: list[np.ndarray] = []
    for columns in data.group_slices().values():
        rgba = lookup[data.matrix[:, columns]]
        if factor > 1:
            starts = np.arange(0, rgba.shape[1], factor)
            sizes = np.diff(np.append(starts, rgba.shape[1]))
            rgba = np.add.reduceat(rgba, starts, axis=1) / sizes[None, :, None]
        blocks.append(rgba)
    # Gap between groups: ~2% of the width whatever the cohort size.
    total = sum(block.shape[1] for block in blocks)
    gap = np.zeros((n_genes, max(1, round(0.02 * total)), 4), dtype=np.float32)
    spans: dict[str, tuple[int, int]] = {}
    pieces: list[np.ndarray] = []
    position = 0
    for index, (group, block) in enumerate(zip(data.groups, blocks, strict=True)):
        if index:
            pieces.append(gap)
            position += gap.shape[1]
        spans[group] = (position, position + block.shape[1])
        pieces.append(block)
        position += block.shape[1]
    return np.concatenate(pieces, axis=1), spans


# --------------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------------


def _as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _format_for(out: Path) -> str:
    """Output format from the file suffix, checked before any drawing work."""
    fmt = _SUFFIX_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot tell the figure format of {str(out)!r}: use a .png or .svg file name "
            f"(got suffix {Path(out).suffix!r})"
        )
    return fmt


@contextmanager
def _figure_rc() -> Iterator[None]:
    """Our style and determinism settings, for this figure only (restored on exit)."""
    with mpl.rc_context(_BASE_RC):
        yield


def _save(fig: Figure, out: Path, fmt: str) -> None:
    # No date (SVG) nor software version (PNG) in the metadata: the same data gives the same bytes.
    metadata: dict[str, str | None] = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(out, format=fmt, dpi=_PNG_DPI, metadata=metadata, facecolor="white")
