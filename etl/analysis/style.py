"""The house style of cgdw's figures, shared by every figure module: palette, rcParams, file formats.

Matplotlib is driven through `Figure` + `FigureCanvasAgg` rather than pyplot, so importing a figure module
neither selects a backend nor touches global state for other users of matplotlib in the process; every
rcParam the figures depend on is set inside `figure_rc()` only while a figure is built and saved. The
output format comes from the file suffix (.png or .svg). SVG output is byte-for-byte deterministic (fixed
`svg.hashsalt`, no date metadata) and keeps text as text (`svg.fonttype = 'none'`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
from matplotlib.figure import Figure

from etl.errors import CgdwError

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

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

SUFFIX_FORMATS = {".png": "png", ".svg": "svg"}
BASE_RC: dict[RcKeyType, Any] = {
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
PNG_DPI = 200


class FigureFileError(CgdwError, ValueError):
    """A figure file name cgdw cannot write to (its suffix, its directory)."""


def format_for(out: Path) -> str:
    """Output format from the file suffix, checked before any drawing work."""
    fmt = SUFFIX_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise FigureFileError(
            f"cannot tell the figure format of {str(out)!r}: use a .png or .svg file name "
            f"(got suffix {Path(out).suffix!r})"
        )
    return fmt


@dataclass(frozen=True)
class FigureStyle:
    """What an investigator may change of a figure (`--no-censor-marks`, `--figure-size`, `--font-size`)."""

    censor_marks: bool = True
    size: tuple[float, float] | None = None  # width, height in inches; None: the figure's own
    font_size: float | None = None  # body text in points (titles and ticks scale with it); None: 9

    def __post_init__(self) -> None:
        # Checked here, before any work: a report must not be built with every figure failing.
        if self.font_size is not None and not 4 <= self.font_size <= 30:
            raise CgdwError(f"--font-size {self.font_size:g}: give a size in points from 4 to 30")

    @classmethod
    def parse_size(cls, text: str | None) -> tuple[float, float] | None:
        """`7x5` (inches) -> (7.0, 5.0)."""
        if text is None:
            return None
        width, sep, height = text.lower().partition("x")
        try:
            size = (float(width), float(height))
        except ValueError:
            size = (0.0, 0.0)
        if not sep or not all(2 <= side <= 40 for side in size):
            raise CgdwError(f"--figure-size {text!r}: give WIDTHxHEIGHT in inches, each 2 to 40 (e.g. 7x5)")
        return size


@contextmanager
def figure_rc(style: FigureStyle | None = None) -> Iterator[None]:
    """Our style and determinism settings, for this figure only (restored on exit); a `style` font size
    scales every text size of the house style."""
    rc = dict(BASE_RC)
    if style is not None and style.font_size is not None:
        factor = style.font_size / BASE_RC["font.size"]
        for key in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "ytick.labelsize",
                    "legend.fontsize"):  # fmt: skip
            rc[key] = BASE_RC[key] * factor
    with mpl.rc_context(rc):
        yield


def save_figure(fig: Figure, out: Path, fmt: str) -> None:
    # No date (SVG) nor software version (PNG) in the metadata: the same data gives the same bytes.
    metadata: dict[str, str | None] = {"Date": None} if fmt == "svg" else {"Software": None}
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format=fmt, dpi=PNG_DPI, metadata=metadata, facecolor="white")
    except OSError as exc:
        raise FigureFileError(f"cannot write the figure {out}: {exc.strerror}") from exc
