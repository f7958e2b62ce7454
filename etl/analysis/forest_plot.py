"""A forest plot of hazard ratios: one row per model term, the ratio and its 95% CI on a log axis, a line
at 1, and the ratio, CI and P written beside each row (the report's summary of the outcome models)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from etl.analysis.cohort import p_statement
from etl.analysis.style import PALETTE, PNG_DPI, FigureStyle, figure_rc, format_for, save_figure


@dataclass(frozen=True)
class ForestRow:
    group: str  # the rows are grouped under this heading (e.g. "Overall survival, adjusted")
    label: str  # the model term (e.g. "IKZF1 status: altered")
    hr: float
    lower: float
    upper: float
    p_value: float | None


def forest_figure(rows: Sequence[ForestRow], *, title: str, style: FigureStyle | None = None) -> Figure:
    """Rows under their group headings, top to bottom; rows whose ratio is not finite (a model that could
    not be estimated) are listed with "not estimable" and no marker."""
    if not rows:
        raise ValueError("forest_figure needs at least one row")
    lines: list[tuple[str, ForestRow | None]] = []  # a heading (None) before each group's rows
    for row in rows:
        if not lines or lines[-1][0] != row.group:
            lines.append((row.group, None))
        lines.append((row.group, row))
    finite = [r for _, r in lines if r is not None and _finite(r)]
    low = min([r.lower for r in finite] + [1.0]) if finite else 0.5
    high = max([r.upper for r in finite] + [1.0]) if finite else 2.0
    low, high = 2 ** math.floor(math.log2(low)), 2 ** math.ceil(math.log2(high))
    with figure_rc(style):
        size = (style.size if style and style.size else None) or (8.0, 0.28 * len(lines) + 1.0)
        fig = Figure(figsize=size, dpi=PNG_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.set_xscale("log")
        ax.set_xlim(low / 1.5, high * 1.5)
        ax.set_ylim(len(lines) - 0.5, -0.5)
        ax.axvline(1.0, color="#59636e", linewidth=0.8)
        text_size = mpl.rcParams["legend.fontsize"]
        for y, (heading, entry) in enumerate(lines):
            if entry is None:
                ax.text(-0.02, y, heading, transform=ax.get_yaxis_transform(), ha="right", va="center",
                        fontweight="bold", fontsize=text_size)  # fmt: skip
                continue
            row = entry
            ax.text(-0.04, y, row.label, transform=ax.get_yaxis_transform(), ha="right", va="center",
                    fontsize=text_size)  # fmt: skip
            if _finite(row):
                ax.plot([row.lower, row.upper], [y, y], color=PALETTE[0], linewidth=1.4)
                ax.plot([row.hr], [y], marker="s", color=PALETTE[0], markersize=5)
                summary = f"{row.hr:.2f} ({row.lower:.2f}-{row.upper:.2f}), {p_statement(row.p_value)}"
            else:
                summary = "not estimable"
            ax.text(1.02, y, summary, transform=ax.get_yaxis_transform(), ha="left", va="center",
                    fontsize=text_size)  # fmt: skip
        ticks = [2.0**k for k in range(int(math.log2(low)), int(math.log2(high)) + 1)]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(NullLocator())
        ax.spines["left"].set_visible(False)
        ax.set_xlabel("Hazard ratio (95% CI), log scale")
        ax.set_title(title, loc="left", fontweight="bold")
    return fig


def plot_forest(
    rows: Sequence[ForestRow], out: Path, *, title: str, style: FigureStyle | None = None
) -> Path:
    """`forest_figure`, written as PNG or SVG according to the suffix of `out`; returns `out`."""
    fmt = format_for(out)
    figure = forest_figure(rows, title=title, style=style)
    with figure_rc(style):
        save_figure(figure, out, fmt)
    return out


def _finite(row: ForestRow) -> bool:
    return bool(np.all(np.isfinite([row.hr, row.lower, row.upper])) and row.lower > 0)
