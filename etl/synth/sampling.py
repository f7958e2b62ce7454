"""Vectorised helpers that turn exact planned counts into per-patient assignments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from etl.synth.calibration import Median

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def deal(rng: np.random.Generator, idx: IntArray, counts: Sequence[int]) -> list[IntArray]:
    """Split idx at random into consecutive parts of exactly the given sizes."""
    if sum(counts) != len(idx):
        raise ValueError(f"counts {list(counts)} do not sum to {len(idx)}")
    bounds = np.cumsum(counts)[:-1]
    return list(np.split(rng.permutation(idx), bounds))


def top_k(idx: IntArray, key: FloatArray, k: int) -> IntArray:
    """The k members of idx with the largest key (key is aligned with idx)."""
    if k > len(idx):
        raise ValueError(f"cannot pick {k} of {len(idx)}")
    return idx[np.argsort(-key, kind="stable")[:k]]


def soft_key(rng: np.random.Generator, weight: FloatArray) -> FloatArray:
    """Efraimidis-Spirakis keys: taking the top k is weighted sampling without replacement."""
    return rng.random(len(weight)) ** (1.0 / weight)


def relative_weight(v: FloatArray, scale: float = 1.0) -> FloatArray:
    """Positive weights exp(scale * (v - mean(v))) for soft_key; centring keeps them finite."""
    return np.exp(scale * (v - v.mean())) if len(v) else v


def tiered_key(rng: np.random.Generator, tier: npt.NDArray[np.integer] | BoolArray) -> FloatArray:
    """Keys that take every member of a higher tier before any of a lower one, at random within a tier."""
    return tier.astype(np.float64) + rng.random(len(tier))


def fit_order_statistics(
    x: FloatArray, target: Median, fixed: Sequence[float] = (), middle: tuple[float, float] | None = None
) -> FloatArray:
    """Map x monotonically so that its min, median and max are exactly the target's.

    The map is piecewise linear through (min -> low), (middle order statistic(s) -> median) and
    (max -> high); `middle` overrides the targets of the two middle order statistics of an even-sized
    sample (their mean is the median). A value in `fixed` is kept as a fixed point whenever that keeps
    the map monotone, so that values on one side of it stay on that side (the child/adult age limits).
    """
    n = len(x)
    lower_target, upper_target = middle or (target.median, target.median)
    if n == 0:
        return x.astype(np.float64)
    if n <= 2:
        # Too few values for a distinct min, median and max: the median wins, then the closer limit.
        spread = min(target.median - target.low, target.high - target.median) if n == 2 else 0.0
        return np.where(x == x.max(), target.median + spread, target.median - spread)
    s = np.sort(x)
    lower_mid, upper_mid = s[(n - 1) // 2], s[n // 2]
    knots = {s[0]: target.low, lower_mid: lower_target, upper_mid: upper_target, s[-1]: target.high}
    for b in fixed:
        trial = dict(knots)
        trial.setdefault(b, b)
        xs = sorted(trial)
        if b in knots or not np.all(np.diff([trial[k] for k in xs]) >= 0):
            continue
        knots = trial
    xs = sorted(knots)
    return np.interp(x, np.asarray(xs), np.asarray([knots[k] for k in xs]))
