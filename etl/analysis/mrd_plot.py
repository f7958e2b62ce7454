"""MRD distribution by time point and method: one strip + box plot of the quantified levels (log scale).

Each (time point, method) pair is one column of points: every quantified measurement of `mrd_result` as a
dot coloured by its positivity at the method's threshold (drawn as a dashed line across the column), with
a box plot of the same values behind. Measurements without a level ("negative", "positive not
quantifiable", "not done") cannot be placed on the axis, so each column's label counts them instead of
hiding them. Same style and determinism as the other figures (etl/analysis/style.py: Okabe-Ito colours,
rcParams only inside the figure, byte-identical SVG for the same data).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from etl.analysis.style import PALETTE, figure_rc, format_for, save_figure
from etl.errors import CgdwError
from etl.warehouse import open_for_read, query_frame

__all__ = ["MRD_COLUMNS", "mrd_summary", "plot_mrd_distribution", "read_mrd", "write_mrd_distribution"]

MRD_COLUMNS = ("time_point", "day", "method", "value_fraction", "threshold", "is_positive")
_POSITIVE, _NEGATIVE, _UNKNOWN = PALETTE[1], PALETTE[0], "#9E9E9E"
# Fixed seed: the horizontal jitter of the dots is part of the figure, so it must not change between runs.
_JITTER_SEED = 20210401


def read_mrd(db_path: Path, patients: pl.Series | None = None) -> pl.DataFrame:
    """The current MRD measurements of the `mrd_result` view (one row per measurement), of the given
    patients only when `patients` (patient_id values) is given."""
    with open_for_read(db_path) as con:
        exists = con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'mrd_result'"
        ).fetchall()
        if not exists:
            raise CgdwError(f"{db_path} has no view mrd_result: run `cgdw views apply --db {db_path}` first")
        if patients is None:
            return query_frame(con, f"SELECT {', '.join(MRD_COLUMNS)} FROM mrd_result")
        return query_frame(
            con,
            f"SELECT {', '.join(MRD_COLUMNS)} FROM mrd_result WHERE list_contains($ids, patient_id)",
            {"ids": patients.to_list()},
        )


def _ordered_pairs(measurements: pl.DataFrame) -> list[tuple[str, str]]:
    """(time point, method) pairs in protocol order: by the earliest day of the time point, then name."""
    first_day = measurements.group_by("time_point").agg(pl.col("day").min().alias("first_day"))
    days = {row["time_point"]: row["first_day"] for row in first_day.iter_rows(named=True)}
    pairs = measurements.select("time_point", "method").unique().iter_rows()
    return sorted(
        ((str(t), str(m)) for t, m in pairs),
        key=lambda pair: (math.inf if days.get(pair[0]) is None else days[pair[0]], pair[0], pair[1]),
    )


def mrd_summary(measurements: pl.DataFrame) -> pl.DataFrame:
    """Per time point and method: measurements, quantified levels, positive / negative / unknown, the
    threshold and the % positive among the evaluable (positivity known) measurements."""
    if measurements.is_empty():
        return pl.DataFrame()
    order = {pair: k for k, pair in enumerate(_ordered_pairs(measurements))}
    summary = measurements.group_by("time_point", "method").agg(
        pl.len().alias("measurements"),
        pl.col("value_fraction").is_not_null().sum().alias("quantified"),
        (pl.col("is_positive") == True).sum().alias("positive"),  # noqa: E712 (a polars expression)
        (pl.col("is_positive") == False).sum().alias("negative"),  # noqa: E712
        pl.col("is_positive").is_null().sum().alias("unknown"),
        pl.col("threshold").first().alias("threshold"),
    )
    summary = summary.with_columns(
        pl.struct("time_point", "method")
        .map_elements(lambda key: order[key["time_point"], key["method"]], return_dtype=pl.Int64)
        .alias("_order")
    ).sort("_order")
    evaluable = summary["positive"] + summary["negative"]
    percent = [
        f"{100 * p / e:.0f}%" if e else "n/a"
        for p, e in zip(summary["positive"].to_list(), evaluable.to_list(), strict=True)
    ]
    return summary.drop("_order").with_columns(
        pl.Series("% positive (evaluable)", percent),
        pl.col("threshold").map_elements(lambda t: f"{t:g}", return_dtype=pl.String),
    )


def suppress_mrd_summary(summary: pl.DataFrame, min_cell: int) -> pl.DataFrame:
    """The summary with counts from 1 to min_cell - 1 shown as "<min_cell"; positive + negative + unknown
    = measurements, so a row never keeps exactly one hidden count of those four (another is shown as x),
    and the % positive goes when positive or negative is hidden."""
    counted = ("positive", "negative", "unknown", "measurements")
    rows = []
    for row in summary.iter_rows(named=True):
        marks = {c: f"<{min_cell}" for c in (*counted, "quantified") if 0 < row[c] < min_cell}
        if sum(c in marks for c in counted) == 1:
            others = [c for c in counted if c not in marks and row[c] > 0]
            if others:
                marks[min(others, key=lambda c: (c != "measurements", row[c]))] = "x"
        shown = {c: marks.get(c, str(row[c])) for c in (*counted, "quantified")}
        hidden_percent = "positive" in marks or "negative" in marks
        rows.append(
            {
                **row,
                **shown,
                "% positive (evaluable)": "x" if hidden_percent else row["% positive (evaluable)"],
            }
        )
    return pl.DataFrame(rows, schema={c: pl.String if c in (*counted, "quantified") else summary.schema[c]
                                      for c in summary.columns})  # fmt: skip


# Beyond this many points per strip, the points are drawn as one raster image inside the SVG.
MAX_VECTOR_POINTS = 2000


def plot_mrd_distribution(measurements: pl.DataFrame, out: Path, *, title: str | None = None) -> Path:
    """Strip + box plot of log10 MRD levels per (time point, method) with the positivity thresholds.

    `measurements` needs the columns of `MRD_COLUMNS` (those of the `mrd_result` view). Writes PNG or SVG
    according to the suffix of `out` and returns `out`; raises ValueError when there is nothing to draw.
    """
    fmt = format_for(out)
    missing = [c for c in MRD_COLUMNS if c not in measurements.columns]
    if missing:
        raise ValueError(f"MRD measurements lack the column(s) {', '.join(missing)}")
    if measurements.is_empty():
        raise ValueError("no MRD measurements to draw")
    pairs = _ordered_pairs(measurements)
    rng = np.random.default_rng(_JITTER_SEED)

    with figure_rc():
        fig = Figure(figsize=(max(6.4, 1.5 * len(pairs) + 2.2), 4.4), dpi=200, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        labels = []
        lowest, highest = math.inf, -math.inf
        for x, (time_point, method) in enumerate(pairs):
            column = measurements.filter((pl.col("time_point") == time_point) & (pl.col("method") == method))
            quantified = column.filter(
                pl.col("value_fraction").is_not_null() & (pl.col("value_fraction") > 0)
            )
            values = quantified["value_fraction"].to_numpy().astype(float)
            if values.size:
                lowest, highest = min(lowest, values.min()), max(highest, values.max())
                ax.boxplot(
                    values, positions=[x], widths=0.5, showfliers=False, patch_artist=True,
                    boxprops={"facecolor": "#F2F2F2", "edgecolor": "0.45", "linewidth": 0.8},
                    medianprops={"color": "0.15", "linewidth": 1.2},
                    whiskerprops={"color": "0.45", "linewidth": 0.8},
                    capprops={"color": "0.45", "linewidth": 0.8},
                    zorder=1,
                )  # fmt: skip
                positive = quantified["is_positive"].to_list()
                colors = [_POSITIVE if p is True else _NEGATIVE if p is False else _UNKNOWN for p in positive]
                jitter = rng.uniform(-0.17, 0.17, values.size)
                # Thousands of points as vector marks made a 76 MB report at 1M patients: a raster layer.
                ax.scatter(
                    x + jitter, values, s=9, c=colors, alpha=0.75, linewidths=0, zorder=2,
                    rasterized=values.size > MAX_VECTOR_POINTS,
                )  # fmt: skip
            threshold = column["threshold"].drop_nulls()
            if threshold.len():
                level = float(threshold[0])
                lowest, highest = min(lowest, level), max(highest, level)
                ax.hlines(level, x - 0.38, x + 0.38, colors="0.1", linestyles="--", linewidth=1.1, zorder=3)
            unquantified = column.height - values.size
            labels.append(f"{time_point}\n{method}\nn = {column.height:,}\n({unquantified:,} not quantified)")

        ax.set_yscale("log")
        if math.isfinite(lowest):
            ax.set_ylim(
                10 ** math.floor(math.log10(lowest) - 0.3), 10 ** math.ceil(math.log10(highest) + 0.3)
            )
        ax.set_xticks(range(len(pairs)), labels)
        ax.set_xlim(-0.6, len(pairs) - 0.4)
        ax.set_ylabel("MRD level (fraction of cells, log scale)")
        ax.tick_params(direction="out", length=3)
        ax.grid(axis="y", which="major", color="0.9", linewidth=0.6, zorder=0)
        ax.set_axisbelow(True)
        handles = [
            Line2D([], [], ls="", marker="o", ms=4.5, color=_POSITIVE, label="Positive"),
            Line2D([], [], ls="", marker="o", ms=4.5, color=_NEGATIVE, label="Negative"),
            Line2D([], [], ls="--", color="0.1", lw=1.1, label="Positivity threshold"),
        ]
        # Below the axes, as the oncoplot's legend: never over the dots, whatever the data.
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
        ax.set_title(title or "MRD levels by time point and method", loc="left", fontweight="bold")
        save_figure(fig, out, fmt)
    return out


def write_mrd_distribution(db_path: Path, out: Path) -> Path:
    """The MRD distribution figure of a warehouse (`mrd_result` view); CgdwError when it has no MRD."""
    measurements = read_mrd(db_path)
    if measurements.is_empty():
        raise CgdwError(f"{db_path} has no MRD measurements")
    return plot_mrd_distribution(measurements, out)
