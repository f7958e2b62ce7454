"""MRD results (layout mrd): MRD1 of every evaluable patient as truth.parquet says, and some MRD2.

Values are sent in the laboratory's unit, mixed across rows: a fraction in scientific notation
(3.2E-3), a percentage (0.32) or a log10 (-2.49), with the limit of detection and the low end of the
quantitative range in the same unit. Rounding never crosses 1e-4: positive values are rounded up and
quantified negative ones down. A negative MRD1 (< 1e-4) is written as "negative" without a value
(below 1e-5), as PNQ (positive not quantifiable, below the 1e-4 quantitative range) or, for some, as a
quantified value below 1e-4 from a more sensitive run.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from etl.load.layout import load_layout
from etl.synth.writers import SourceTable

MRD_FILE = "mrd_results.tsv"
THRESHOLD = 1e-4
LIMIT_OF_DETECTION = 1e-5
SENSITIVE_RUN = (5e-6, 1e-5)  # limit of detection and quantitative range low of a quantified negative
METHOD = "ASO-PCR"
TARGETS = ("TRG Vg9-Jg1.3", "TRG Vg2-Jg2.3", "IGH VH3-JH4", "TRD Vd2-Dd3", "TRD Vd1-Jd1", "TRB Vb6-Jb2.7")
UNITS = {"fraction": 0.5, "percent": 0.25, "%": 0.05, "log10": 0.2}
DAY_MISSING_SHARE = 0.05
PNQ_SHARE = 0.5  # of the negatives between 1e-5 and 1e-4 (the others are quantified)
MRD2_SHARE = 0.3  # of the MRD1 patients, followed long enough
MRD2_DAYS = (60, 120)  # after MRD1
MRD2_POSITIVE_SHARE = 0.15
UP, DOWN, NEAREST = 1, -1, 0


def _rounded(x: float, decimals: int, direction: int) -> float:
    scaled = x * 10**decimals
    if direction == UP:
        return math.ceil(scaled) / 10**decimals
    if direction == DOWN:
        return math.floor(scaled) / 10**decimals
    return round(scaled) / 10**decimals


def format_level(fraction: float, unit: str, direction: int) -> str:
    """A level (fraction of cells) in `unit`, two significant digits, rounded the given way."""
    if unit == "log10":
        return f"{_rounded(math.log10(fraction), 2, direction):.2f}"
    value = fraction * 100 if unit in ("percent", "%") else fraction
    exponent = math.floor(math.log10(value))
    if unit == "fraction":
        mantissa = _rounded(value / 10**exponent, 1, direction)
        if mantissa >= 10:
            mantissa, exponent = mantissa / 10, exponent + 1
        return f"{mantissa:.1f}E{exponent}"
    decimals = max(0, 1 - exponent)
    return f"{_rounded(value, decimals, direction):.{decimals}f}"


def _rows(
    rng: np.random.Generator, patients: pl.DataFrame, time_point: str, day: pl.Series, value: np.ndarray
) -> list[dict[str, str | None]]:
    n = patients.height
    units = rng.choice(list(UNITS), size=n, p=list(UNITS.values()))
    targets = rng.choice(TARGETS, size=n)
    pnq = rng.random(n) < PNQ_SHARE
    rows = []
    for i, patient in enumerate(patients.iter_rows(named=True)):
        unit, v = str(units[i]), float(value[i])
        lod, low = LIMIT_OF_DETECTION, THRESHOLD
        shown, qualitative = None, None
        if v >= THRESHOLD:
            shown, qualitative = format_level(v, unit, UP), "positive"
        elif v < LIMIT_OF_DETECTION:
            qualitative = "negative"
        elif pnq[i]:
            qualitative = "PNQ"
        else:
            shown, (lod, low) = format_level(v, unit, DOWN), SENSITIVE_RUN
        rows.append(
            {
                "trial_group": patient["trial_group"],
                "source_patient_id": patient["source_patient_id"],
                "sample_key": None,
                "time_point": time_point,
                "day": None if day[i] is None else str(day[i]),
                "method": METHOD,
                "target": str(targets[i]),
                "value": shown,
                "unit": unit,
                "limit_of_detection": format_level(lod, unit, NEAREST),
                "quantitative_range_low": format_level(low, unit, NEAREST),
                "qualitative_result": qualitative,
            }
        )
    return rows


def mrd_table(truth: pl.DataFrame, rng: np.random.Generator) -> SourceTable:
    layout = load_layout("mrd")
    mrd1 = truth.filter(pl.col("mrd1_evaluable"))
    n = mrd1.height
    day1 = mrd1.select(
        pl.when(pl.Series(rng.random(n) >= DAY_MISSING_SHARE)).then(pl.col("cr_day"))
    ).to_series()
    rows = _rows(rng, mrd1, "MRD1", day1, mrd1["mrd1_value"].to_numpy())
    # MRD2 a few months later, mostly negative, for patients still followed then.
    later = mrd1["cr_day"].to_numpy() + rng.integers(MRD2_DAYS[0], MRD2_DAYS[1] + 1, size=n)
    followed = mrd1["last_contact_day"].to_numpy() >= later
    chosen = followed & (rng.random(n) < MRD2_SHARE / max(followed.mean(), 1e-9))
    k = int(chosen.sum())
    level = np.where(
        rng.random(k) < MRD2_POSITIVE_SHARE, 10 ** rng.uniform(-4, -2, k), 10 ** rng.uniform(-6, -4, k)
    )
    rows += _rows(rng, mrd1.filter(pl.Series(chosen)), "MRD2", pl.Series(later[chosen]), level)
    frame = pl.DataFrame(rows, schema=dict.fromkeys(layout.fields, pl.String)).with_columns(
        order=pl.col("source_patient_id").replace_strict(
            dict(zip(mrd1["source_patient_id"], range(n), strict=True)), return_dtype=pl.Int64
        )
    )
    frame = frame.sort("order", "time_point").drop("order")
    return SourceTable(layout, frame.rename({name: spec.column for name, spec in layout.fields.items()}))
