"""Published targets of the seed letter (IKZF1 in T-ALL, Table 1) and their scaling to any cohort size.

Everything the generator must reproduce lives here as plain data, so that a test can compare it with
shared/reference/table1_published.tsv and hazard_ratios_published.tsv. Generation never uses the
published numbers directly: it uses a `CohortPlan`, which equals them at 476 patients and scales them
with largest-remainder rounding otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Group = Literal["alt", "gl"]
GROUPS: tuple[Group, Group] = ("alt", "gl")
PUBLISHED_PATIENTS = 476


@dataclass(frozen=True)
class Count:
    """n patients out of denom evaluable ones."""

    n: int
    denom: int


@dataclass(frozen=True)
class Median:
    """Median and range, as printed in Table 1."""

    median: float
    low: float
    high: float


@dataclass(frozen=True)
class Estimate:
    """A 5-year estimate in percent with its 95% CI."""

    percent: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class HazardRatio:
    endpoint: Literal["cir", "os"]
    covariate: str
    uni_hr: float
    multi_hr: float | None


# Table 1, keyed by the `row` column of table1_published.tsv.
TABLE1_COUNTS: dict[str, dict[Group, Count]] = {
    "total": {"alt": Count(26, 476), "gl": Count(450, 476)},
    "adult": {"alt": Count(15, 26), "gl": Count(200, 450)},
    "male": {"alt": Count(21, 26), "gl": Count(339, 450)},
    "cns": {"alt": Count(4, 26), "gl": Count(47, 448)},
    "etp": {"alt": Count(4, 16), "gl": Count(51, 291)},
    "tcr_immature": {"alt": Count(8, 17), "gl": Count(60, 295)},
    "tcr_cortical": {"alt": Count(5, 17), "gl": Count(154, 295)},
    "tcr_mature_ab": {"alt": Count(3, 17), "gl": Count(42, 295)},
    "tcr_mature_gd": {"alt": Count(1, 17), "gl": Count(39, 295)},
    "onc_tlx1": {"alt": Count(1, 24), "gl": Count(53, 390)},
    "onc_tlx3": {"alt": Count(4, 24), "gl": Count(68, 390)},
    "onc_sil_tal1": {"alt": Count(2, 24), "gl": Count(55, 390)},
    "onc_calm_af10": {"alt": Count(1, 24), "gl": Count(12, 390)},
    "onc_none": {"alt": Count(16, 24), "gl": Count(202, 390)},
    "hoxa": {"alt": Count(4, 21), "gl": Count(74, 315)},
    "classifier_high": {"alt": Count(15, 26), "gl": Count(198, 450)},
    "notch1_fbxw7": {"alt": Count(19, 26), "gl": Count(302, 450)},
    "ras": {"alt": Count(8, 26), "gl": Count(41, 450)},
    "pten": {"alt": Count(2, 26), "gl": Count(80, 450)},
    "cr": {"alt": Count(24, 26), "gl": Count(416, 450)},
    "pred_good": {"alt": Count(14, 26), "gl": Count(245, 441)},
    "mrd1_pos": {"alt": Count(12, 18), "gl": Count(111, 322)},
    "hsct": {"alt": Count(3, 24), "gl": Count(93, 416)},
}

MEDIANS: dict[str, dict[Group | Literal["total"], Median]] = {
    "age": {"alt": Median(23.5, 1.1, 59.1), "gl": Median(15.2, 1.2, 59.0), "total": Median(15.4, 1.1, 59.1)},
    "wbc": {
        "alt": Median(74.1, 2.8, 641.0),
        "gl": Median(63.4, 0.3, 980.0),
        "total": Median(63.8, 0.3, 980.0),
    },
}

ESTIMATES: dict[str, dict[Group | Literal["total"], Estimate]] = {
    "cir5": {"alt": Estimate(50, 32, 71), "gl": Estimate(28, 24, 32), "total": Estimate(29, 25, 33)},
    "os5": {"alt": Estimate(37, 19, 55), "gl": Estimate(73, 69, 77), "total": Estimate(71, 67, 75)},
}

HAZARD_RATIOS: tuple[HazardRatio, ...] = (
    HazardRatio("cir", "age*", 1.01, None),
    HazardRatio("cir", "log_wbc*", 1.62, 1.60),
    HazardRatio("cir", "prednisone_good", 0.67, 0.92),
    HazardRatio("cir", "classifier_high", 2.78, 2.69),
    HazardRatio("cir", "ikzf1_alt", 2.12, 2.15),
    HazardRatio("os", "age*", 1.03, 1.04),
    HazardRatio("os", "log_wbc*", 1.99, 2.04),
    HazardRatio("os", "prednisone_good", 0.54, 0.79),
    HazardRatio("os", "classifier_high", 2.93, 2.88),
    HazardRatio("os", "ikzf1_alt", 2.94, 2.80),
)

# Named in the text of the letter, not in Table 1.
EPIGENETIC_MUTATIONS: dict[str, dict[Group, Count]] = {
    "ezh2": {"alt": Count(5, 26), "gl": Count(27, 450)},
    "asxl1": {"alt": Count(4, 26), "gl": Count(15, 450)},
    "etv6": {"alt": Count(4, 26), "gl": Count(13, 450)},
    "dnmt3a": {"alt": Count(5, 26), "gl": Count(17, 450)},
}

# 16 deletions and 10 mutations; the split inside each kind follows the proportions of the letter's
# larger series (75% pan-genic, 10% exons 4-7; 60% N159S/T hotspot, the rest truncating).
IKZF1_CLASSES: dict[str, int] = {
    "pan_genic": 12,
    "intragenic_4_7": 3,
    "other_partial": 1,
    "hotspot_missense": 6,
    "frameshift": 3,
    "nonsense": 1,
}
IKZF1_DELETION_CLASSES = ("pan_genic", "intragenic_4_7", "other_partial")

# Joint NOTCH1/FBXW7 (nf), K/N-RAS (ras), PTEN (pten) table consistent with the four classifier rows.
CLASSIFIER_CELLS: dict[str, tuple[bool, bool, bool]] = {
    "nf_ras": (True, True, False),
    "nf_pten": (True, False, True),
    "nf_ras_pten": (True, True, True),
    "nf_only": (True, False, False),
    "ras_only": (False, True, False),
    "pten_only": (False, False, True),
    "none": (False, False, False),
}
CLASSIFIER_COUNTS: dict[Group, dict[str, int]] = {
    "alt": {
        "nf_ras": 6,
        "nf_pten": 1,
        "nf_ras_pten": 1,
        "nf_only": 11,
        "ras_only": 1,
        "pten_only": 0,
        "none": 6,
    },
    "gl": {
        "nf_ras": 20,
        "nf_pten": 28,
        "nf_ras_pten": 2,
        "nf_only": 252,
        "ras_only": 19,
        "pten_only": 50,
        "none": 79,
    },
}

# Trials: GRAALL adults split between its two protocols (about 45/55), FRALLE children.
GRAALL_PROTOCOL_SPLIT: dict[str, int] = {"GRAALL-2003": 45, "GRAALL-2005": 55}
DIAGNOSIS_PERIODS: dict[str, tuple[dt.date, dt.date]] = {
    "GRAALL-2003": (dt.date(2003, 1, 1), dt.date(2005, 12, 31)),
    "GRAALL-2005": (dt.date(2006, 1, 1), dt.date(2011, 12, 31)),
    "FRALLE-2000": (dt.date(2000, 1, 1), dt.date(2008, 12, 31)),
}
DATA_CUTOFF = dt.date(2016, 12, 31)
ADULT_AGE_RANGE = (15.0, 59.9)
CHILD_AGE_RANGE = (1.0, 19.0)

TCR_GROUPS: dict[str, tuple[str, ...]] = {
    "immature": ("IM0", "IMD", "IMG"),
    "cortical": ("IMB", "PREAB"),
    "mature_ab": ("TCRAB",),
    "mature_gd": ("TCRGD",),
}
ONC_MARKERS = ("TLX1", "TLX3", "SIL-TAL1", "CALM-AF10")


@dataclass(frozen=True)
class PartitionSpec:
    """A partition of a group (parent "group") or of its CR patients (parent "cr") into labelled parts."""

    name: str
    parent: Literal["group", "cr"]
    labels: tuple[str, ...]
    weights: Mapping[Group, tuple[int, ...]]


def _evaluable(row: str, group: Group) -> tuple[int, int, int]:
    """(positive, negative, not evaluable) of a yes/no row of Table 1."""
    c = TABLE1_COUNTS[row][group]
    return c.n, c.denom - c.n, TABLE1_COUNTS["total"][group].n - c.denom


def _by_group(build: Callable[[Group], Sequence[int]]) -> dict[Group, tuple[int, ...]]:
    return {g: tuple(build(g)) for g in GROUPS}


def _tcr(g: Group) -> tuple[int, ...]:
    rows = ("tcr_immature", "tcr_cortical", "tcr_mature_ab", "tcr_mature_gd")
    parts = [TABLE1_COUNTS[r][g].n for r in rows]
    return (*parts, TABLE1_COUNTS["total"][g].n - TABLE1_COUNTS["tcr_immature"][g].denom)


def _onc(g: Group) -> tuple[int, ...]:
    rows = ("onc_tlx1", "onc_tlx3", "onc_sil_tal1", "onc_calm_af10", "onc_none")
    parts = [TABLE1_COUNTS[r][g].n for r in rows]
    return (*parts, TABLE1_COUNTS["total"][g].n - TABLE1_COUNTS["onc_tlx1"][g].denom)


def _mrd1(g: Group) -> tuple[int, ...]:
    c = TABLE1_COUNTS["mrd1_pos"][g]
    return c.n, c.denom - c.n, TABLE1_COUNTS["cr"][g].n - c.denom


def _ikzf1(g: Group) -> tuple[int, ...]:
    if g == "alt":
        return (*IKZF1_CLASSES.values(), 0)
    return (*(0 for _ in IKZF1_CLASSES), TABLE1_COUNTS["total"][g].n)


def _partitions() -> tuple[PartitionSpec, ...]:
    specs = [
        PartitionSpec("adult", "group", ("adult", "child"), _by_group(lambda g: _evaluable("adult", g)[:2])),
        PartitionSpec("sex", "group", ("M", "F"), _by_group(lambda g: _evaluable("male", g)[:2])),
        PartitionSpec("cns", "group", ("yes", "no", "missing"), _by_group(lambda g: _evaluable("cns", g))),
        PartitionSpec("etp", "group", ("yes", "no", "missing"), _by_group(lambda g: _evaluable("etp", g))),
        PartitionSpec("tcr", "group", (*TCR_GROUPS, "missing"), _by_group(_tcr)),
        PartitionSpec("onc", "group", (*ONC_MARKERS, "none", "not_evaluable"), _by_group(_onc)),
        PartitionSpec(
            "hoxa", "group", ("positive", "negative", "missing"), _by_group(lambda g: _evaluable("hoxa", g))
        ),
        PartitionSpec(
            "classifier",
            "group",
            tuple(CLASSIFIER_CELLS),
            {g: tuple(CLASSIFIER_COUNTS[g][c] for c in CLASSIFIER_CELLS) for g in GROUPS},
        ),
        PartitionSpec(
            "prednisone",
            "group",
            ("good", "poor", "missing"),
            _by_group(lambda g: _evaluable("pred_good", g)),
        ),
        PartitionSpec("cr", "group", ("cr", "no_cr"), _by_group(lambda g: _evaluable("cr", g)[:2])),
        PartitionSpec("ikzf1", "group", (*IKZF1_CLASSES, "none"), _by_group(_ikzf1)),
        PartitionSpec("hsct", "cr", ("yes", "no"), _by_group(lambda g: _evaluable("hsct", g)[:2])),
        PartitionSpec("mrd1", "cr", ("positive", "negative", "missing"), _by_group(_mrd1)),
    ]
    for gene, counts in EPIGENETIC_MUTATIONS.items():
        weights = {g: (counts[g].n, counts[g].denom - counts[g].n) for g in GROUPS}
        specs.append(PartitionSpec(gene, "group", ("mut", "wt"), weights))
    return tuple(specs)


PARTITIONS: tuple[PartitionSpec, ...] = _partitions()


def largest_remainder(weights: Sequence[int], total: int) -> list[int]:
    """Integers proportional to weights that sum to total (Hamilton's method, ties to the first part)."""
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [0] * len(weights)
    quotas = [w * total / weight_sum for w in weights]
    parts = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


@dataclass(frozen=True)
class CohortPlan:
    """Exact counts for one generated cohort: the published ones at 476 patients, scaled otherwise."""

    n_patients: int
    group_size: dict[Group, int]
    parts: dict[str, dict[Group, dict[str, int]]]
    protocol_adults: dict[str, int]

    def count(self, partition: str, group: Group, label: str) -> int:
        return self.parts[partition][group][label]

    def table1(self) -> dict[str, dict[Group, Count]]:
        """The Table 1 counts this plan implies, keyed like TABLE1_COUNTS."""
        out: dict[str, dict[Group, Count]] = {}

        def put(row: str, group: Group, n: int, denom: int) -> None:
            out.setdefault(row, {})[group] = Count(n, denom)

        for g in GROUPS:
            size = self.group_size[g]
            p = self.parts
            put("total", g, size, self.n_patients)
            put("adult", g, p["adult"][g]["adult"], size)
            put("male", g, p["sex"][g]["M"], size)
            for row, name, label in (
                ("cns", "cns", "yes"),
                ("etp", "etp", "yes"),
                ("hoxa", "hoxa", "positive"),
                ("pred_good", "prednisone", "good"),
            ):
                put(row, g, p[name][g][label], size - p[name][g]["missing"])
            tcr_denom = size - p["tcr"][g]["missing"]
            for label in TCR_GROUPS:
                put(f"tcr_{label}", g, p["tcr"][g][label], tcr_denom)
            onc_denom = size - p["onc"][g]["not_evaluable"]
            for label, row in zip(
                (*ONC_MARKERS, "none"), ("tlx1", "tlx3", "sil_tal1", "calm_af10", "none"), strict=True
            ):
                put(f"onc_{row}", g, p["onc"][g][label], onc_denom)
            cells = p["classifier"][g]
            for row, axis in (("notch1_fbxw7", 0), ("ras", 1), ("pten", 2)):
                put(row, g, sum(k for c, k in cells.items() if CLASSIFIER_CELLS[c][axis]), size)
            put("classifier_high", g, size - cells["nf_only"], size)
            n_cr = p["cr"][g]["cr"]
            put("cr", g, n_cr, size)
            put("mrd1_pos", g, p["mrd1"][g]["positive"], n_cr - p["mrd1"][g]["missing"])
            put("hsct", g, p["hsct"][g]["yes"], n_cr)
        return out


def plan_cohort(patients: int = PUBLISHED_PATIENTS) -> CohortPlan:
    """Scale every published partition to `patients`, keeping each partition summing to its parent."""
    if patients < 2:
        raise ValueError("a synthetic cohort needs at least 2 patients (one per IKZF1 group)")
    sizes = largest_remainder([TABLE1_COUNTS["total"][g].n for g in GROUPS], patients)
    group_size: dict[Group, int] = dict(zip(GROUPS, sizes, strict=True))
    parts: dict[str, dict[Group, dict[str, int]]] = {}
    # CR partitions are scaled from the scaled CR count, so they are planned after it.
    for spec in sorted(PARTITIONS, key=lambda s: s.parent == "cr"):
        per_group: dict[Group, dict[str, int]] = {}
        for g in GROUPS:
            parent = group_size[g] if spec.parent == "group" else parts["cr"][g]["cr"]
            per_group[g] = dict(zip(spec.labels, largest_remainder(spec.weights[g], parent), strict=True))
        parts[spec.name] = per_group
    n_adults = sum(parts["adult"][g]["adult"] for g in GROUPS)
    split = largest_remainder(list(GRAALL_PROTOCOL_SPLIT.values()), n_adults)
    return CohortPlan(patients, group_size, parts, dict(zip(GRAALL_PROTOCOL_SPLIT, split, strict=True)))
