"""Latent per-patient values known at diagnosis: demographics, immunophenotype, oncogenetics, genomics.

Every Table 1 count comes from the plan and is dealt exactly within each IKZF1 group; soft preferences
(weighted sampling without replacement) add the usual biological associations without changing counts.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from etl.synth import ikzf1
from etl.synth.calibration import (
    ADULT_AGE_RANGE,
    CHILD_AGE_RANGE,
    CLASSIFIER_CELLS,
    DIAGNOSIS_PERIODS,
    EPIGENETIC_MUTATIONS,
    GROUPS,
    IKZF1_CLASSES,
    IKZF1_DELETION_CLASSES,
    MEDIANS,
    ONC_MARKERS,
    TCR_GROUPS,
    CohortPlan,
    Group,
    Median,
)
from etl.synth.sampling import (
    BoolArray,
    FloatArray,
    IntArray,
    deal,
    fit_order_statistics,
    relative_weight,
    soft_key,
    tiered_key,
    top_k,
)

TCR_CODES: tuple[str, ...] = tuple(code for codes in TCR_GROUPS.values() for code in codes)
# Share of each TCR code inside its group (IM0/IMD/IMG; IMB/PREAB).
TCR_CODE_SHARES: dict[str, tuple[float, ...]] = {
    "immature": (0.4, 0.35, 0.25),
    "cortical": (0.55, 0.45),
    "mature_ab": (1.0,),
    "mature_gd": (1.0,),
}
MARKERS: tuple[str, ...] = (*ONC_MARKERS, "HOXA")
MARKER_RESULTS: tuple[str, ...] = ("negative", "positive", "not_done")
NEG, POS, ND, NULL = 0, 1, 2, -1
ONC_METHODS = ("RQ-PCR", "FISH", "RQ-PCR+FISH")
PROTOCOLS = ("GRAALL-2003", "GRAALL-2005", "FRALLE-2000")
ID_PREFIX = {"GRAALL-2003": "G03-", "GRAALL-2005": "G05-", "FRALLE-2000": "FR2000-"}
ID_DIGITS = {"GRAALL": 5, "FRALLE": 4}
# Numbers at or above 10**digits - reserve are kept free for the fake patients of dirty exports.
ID_RESERVE = {"GRAALL": 1000, "FRALLE": 100}
EPOCH = dt.date(1970, 1, 1)


class _Latent:
    """Cohort-wide arrays filled group by group; -1 means missing in the int8 tri-states."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.group = np.zeros(n, dtype=np.int8)
        self.adult = np.zeros(n, dtype=np.bool_)
        self.male = np.zeros(n, dtype=np.bool_)
        self.age10 = np.zeros(n, dtype=np.int64)
        self.wbc10 = np.zeros(n, dtype=np.int64)
        self.cns = np.full(n, -1, dtype=np.int8)
        self.mediastinal = np.full(n, -1, dtype=np.int8)
        self.prednisone_good = np.full(n, -1, dtype=np.int8)
        self.flags = {
            name: np.zeros(n, dtype=np.bool_)
            for name in ("notch1", "fbxw7", "kras", "nras", "pten_mut", "pten_del", *EPIGENETIC_MUTATIONS)
        }
        self.nf = np.zeros(n, dtype=np.bool_)
        self.ras = np.zeros(n, dtype=np.bool_)
        self.pten = np.zeros(n, dtype=np.bool_)
        self.ikzf1_class = np.full(n, -1, dtype=np.int8)
        self.del_first = np.full(n, -1, dtype=np.int64)
        self.del_last = np.full(n, -1, dtype=np.int64)
        self.mut_exon = np.full(n, -1, dtype=np.int64)
        self.protein_change = np.full(n, None, dtype=object)
        self.tcr = np.full(n, -1, dtype=np.int8)
        self.tcr_group = np.full(n, -1, dtype=np.int8)
        self.etp = np.full(n, -1, dtype=np.int8)
        self.markers = {m: np.full(n, NULL, dtype=np.int8) for m in MARKERS}
        self.onc_method = np.full(n, -1, dtype=np.int8)
        self.in_lab_export = np.ones(n, dtype=np.bool_)
        self.protocol = np.zeros(n, dtype=np.int8)
        self.diagnosis_day = np.zeros(n, dtype=np.int64)
        self.patient_number = np.zeros(n, dtype=np.int64)


def _middle_ages(n: int, n_adult: int, median: float) -> tuple[float, float] | None:
    """Targets of the middle order statistics when the group is too small for both middles at the median.

    With few patients a child (or an adult) can be forced into a middle position whose published median
    lies outside its age range: it then takes its limit and the other middle value balances the mean.
    """
    n_child = n - n_adult
    lower, upper = (n - 1) // 2, n // 2  # 0-based middle positions
    child_max, adult_min = CHILD_AGE_RANGE[1], ADULT_AGE_RANGE[0]
    if median > child_max and n_child > lower:
        return child_max, (2 * median - child_max if n_child == upper else child_max)
    if median < adult_min and n_adult > n - 1 - upper:
        return (2 * median - adult_min if n_adult == n - lower - 1 else adult_min), adult_min
    return None


def _draw_ages(rng: np.random.Generator, adult: BoolArray, group: Group) -> IntArray:
    """Ages in tenths of a year: children 1-19 (FRALLE), adults 15-59.9 (GRAALL), exact group order stats."""
    target = MEDIANS["age"][group]
    n = len(adult)
    middle = _middle_ages(n, int(adult.sum()), target.median)
    lo = np.where(adult, 10 * ADULT_AGE_RANGE[0], 10 * CHILD_AGE_RANGE[0])
    hi = np.where(adult, 10 * ADULT_AGE_RANGE[1], 10 * CHILD_AGE_RANGE[1])
    for _ in range(1000):
        draws = np.where(
            adult,
            ADULT_AGE_RANGE[0] + (ADULT_AGE_RANGE[1] - ADULT_AGE_RANGE[0]) * rng.beta(1.6, 2.6, n),
            CHILD_AGE_RANGE[0] + (CHILD_AGE_RANGE[1] - CHILD_AGE_RANGE[0]) * rng.beta(2.0, 2.2, n),
        )
        # Fixing 15 and 19 keeps children <= 19 and adults >= 15 whenever the draw allows it.
        fitted = fit_order_statistics(draws, target, (ADULT_AGE_RANGE[0], CHILD_AGE_RANGE[1]), middle)
        tenths = np.rint(10 * fitted)
        if np.all((tenths >= lo) & (tenths <= hi)):
            return tenths.astype(np.int64)
    raise ValueError(f"cannot draw ages for the {group} group within the adult/child age limits")


def _draw_wbc(rng: np.random.Generator, n: int, group: Group) -> IntArray:
    """WBC in tenths of x10^9/L: lognormal, then exact group min, median and max (fitted on the log scale)."""
    target = MEDIANS["wbc"][group]
    log_target = Median(float(np.log(target.median)), float(np.log(target.low)), float(np.log(target.high)))
    fitted = np.exp(fit_order_statistics(rng.normal(np.log(60.0), 1.3, n), log_target))
    return np.rint(10 * fitted).astype(np.int64)


def _immunophenotype(rng: np.random.Generator, plan: CohortPlan, g: Group, idx: IntArray, c: _Latent) -> None:
    """TCR status, ETP and the lab-sample quality that makes their missingness go together."""
    parts = plan.parts
    # A poor or absent diagnostic sample leaves several lab results missing at once.
    sample_poor = rng.random(len(idx))
    tcr_missing = top_k(idx, sample_poor + 0.3 * rng.random(len(idx)), parts["tcr"][g]["missing"])
    tested = np.setdiff1d(idx, tcr_missing)
    counts = [parts["tcr"][g][label] for label in TCR_GROUPS]
    for gi, (label, members) in enumerate(zip(TCR_GROUPS, deal(rng, tested, counts), strict=True)):
        c.tcr_group[members] = gi
        offset = TCR_CODES.index(TCR_GROUPS[label][0])
        c.tcr[members] = offset + rng.choice(
            len(TCR_CODE_SHARES[label]), size=len(members), p=TCR_CODE_SHARES[label]
        )
    immature = c.tcr_group[idx] == 0
    # ETP-ALL is an immature phenotype: positives come from TCR-immature patients first.
    etp_pos = top_k(idx, tiered_key(rng, immature), parts["etp"][g]["yes"])
    c.etp[etp_pos] = 1
    rest = np.setdiff1d(idx, etp_pos)
    rest_tested = c.tcr_group[rest] >= 0
    etp_neg = top_k(rest, tiered_key(rng, rest_tested), parts["etp"][g]["no"])
    c.etp[etp_neg] = 0
    _oncogenetics(rng, plan, g, idx, sample_poor, c)


def _oncogenetics(
    rng: np.random.Generator, plan: CohortPlan, g: Group, idx: IntArray, sample_poor: FloatArray, c: _Latent
) -> None:
    parts = plan.parts
    onc = parts["onc"][g]
    not_evaluable = top_k(idx, sample_poor + 0.3 * rng.random(len(idx)), onc["not_evaluable"])
    pool = np.setdiff1d(idx, not_evaluable)
    tg = c.tcr_group
    # Preferred TCR groups: TLX1 cortical, SIL-TAL1 alpha-beta lineage, CALM-AF10 immature or gamma-delta.
    preferred = {"TLX1": (1,), "TLX3": (), "SIL-TAL1": (1, 2), "CALM-AF10": (0, 3)}
    for marker in ONC_MARKERS:
        weight = np.where(np.isin(tg[pool], preferred[marker]), 4.0, 1.0)
        positives = top_k(pool, soft_key(rng, weight), onc[marker])
        for m in ONC_MARKERS:
            c.markers[m][positives] = POS if m == marker else NEG
        pool = np.setdiff1d(pool, positives)
    for m in ONC_MARKERS:
        c.markers[m][pool] = NEG
    # Not evaluable: each marker negative, not done or blank, with at least one not done or blank.
    k = len(not_evaluable)
    states = rng.choice(
        np.array([NEG, ND, NULL], dtype=np.int8), size=(k, len(ONC_MARKERS)), p=[0.35, 0.45, 0.2]
    )
    all_tested = np.all(states == NEG, axis=1)
    states[all_tested, rng.integers(0, len(ONC_MARKERS), size=int(all_tested.sum()))] = ND
    for j, m in enumerate(ONC_MARKERS):
        c.markers[m][not_evaluable] = states[:, j]

    # HOXA: positives are CALM-AF10 or outside the TLX subgroups, tested mostly with a good sample.
    hoxa = parts["hoxa"][g]
    onc_ok = ~np.isin(idx, not_evaluable)
    weight = np.where(c.markers["CALM-AF10"][idx] == POS, 50.0, 1.0)
    weight = np.where((c.markers["TLX1"][idx] == POS) | (c.markers["TLX3"][idx] == POS), 0.1, weight)
    hoxa_pos = top_k(idx, onc_ok + soft_key(rng, weight), hoxa["positive"])
    c.markers["HOXA"][hoxa_pos] = POS
    rest = np.setdiff1d(idx, hoxa_pos)
    rest_ok = ~np.isin(rest, not_evaluable)
    hoxa_neg = top_k(rest, rest_ok + (1.0 - sample_poor[np.searchsorted(idx, rest)]), hoxa["negative"])
    c.markers["HOXA"][hoxa_neg] = NEG
    hoxa_missing = np.setdiff1d(rest, hoxa_neg)
    c.markers["HOXA"][hoxa_missing] = np.where(rng.random(len(hoxa_missing)) < 0.6, ND, NULL)

    # Patients with no lab result at all were never sent to the lab: most of them have no lab row.
    nothing = (c.tcr[idx] < 0) & (c.etp[idx] < 0)
    nothing &= np.isin(idx, not_evaluable) & np.isin(idx, hoxa_missing)
    no_sample = idx[nothing]
    no_sample = no_sample[rng.random(len(no_sample)) < 0.6]
    for m in MARKERS:
        c.markers[m][no_sample] = NULL
    c.in_lab_export[no_sample] = False
    tested_any = np.zeros(len(idx), dtype=np.bool_)
    for m in MARKERS:
        tested_any |= np.isin(c.markers[m][idx], (NEG, POS))
    c.onc_method[idx] = np.where(tested_any, rng.choice(3, size=len(idx), p=[0.6, 0.1, 0.3]), -1)


def _genomics(rng: np.random.Generator, plan: CohortPlan, g: Group, idx: IntArray, c: _Latent) -> None:
    cells = plan.parts["classifier"][g]
    for cell, members in zip(cells, deal(rng, idx, list(cells.values())), strict=True):
        nf, ras, pten = CLASSIFIER_CELLS[cell]
        c.nf[members], c.ras[members], c.pten[members] = nf, ras, pten
    # Split each pathway into its genes: NOTCH1/FBXW7, KRAS/NRAS, PTEN mutation/deletion (one or both).
    for flag, first, second, shares in (
        (c.nf, "notch1", "fbxw7", (0.65, 0.15)),
        (c.ras, "kras", "nras", (0.4, 0.5)),
        (c.pten, "pten_mut", "pten_del", (0.55, 0.3)),
    ):
        members = idx[flag[idx]]
        u = rng.random(len(members))
        c.flags[first][members] = (u < shares[0]) | (u >= shares[0] + shares[1])
        c.flags[second][members] = u >= shares[0]
    # Epigenetic mutations go with an immature phenotype.
    immature = (c.tcr_group[idx] == 0) | (c.etp[idx] == 1)
    for gene in EPIGENETIC_MUTATIONS:
        chosen = top_k(idx, soft_key(rng, np.where(immature, 3.0, 1.0)), plan.parts[gene][g]["mut"])
        c.flags[gene][chosen] = True
    classes = plan.parts["ikzf1"][g]
    for ci, (name, members) in enumerate(zip(classes, deal(rng, idx, list(classes.values())), strict=True)):
        if name not in IKZF1_CLASSES or len(members) == 0:
            continue
        c.ikzf1_class[members] = ci
        if name in IKZF1_DELETION_CLASSES:
            first_exons, last_exons = ikzf1.deletion_exons(rng, name, len(members))
            c.del_first[members], c.del_last[members] = first_exons, last_exons
        else:
            exons, changes = ikzf1.mutations(rng, name, len(members))
            c.mut_exon[members] = exons
            c.protein_change[members] = changes


def _clinical(rng: np.random.Generator, plan: CohortPlan, g: Group, idx: IntArray, c: _Latent) -> None:
    parts = plan.parts
    adults, _children = deal(rng, idx, list(parts["adult"][g].values()))
    c.adult[adults] = True
    males, _females = deal(rng, idx, list(parts["sex"][g].values()))
    c.male[males] = True
    c.age10[idx] = _draw_ages(rng, c.adult[idx], g)
    c.wbc10[idx] = _draw_wbc(rng, len(idx), g)
    yes, no, _missing = deal(rng, idx, list(parts["cns"][g].values()))
    c.cns[yes], c.cns[no] = 1, 0
    c.mediastinal[idx] = rng.choice(np.array([1, 0, -1], dtype=np.int8), size=len(idx), p=[0.5, 0.44, 0.06])
    # A good prednisone response is more likely with a low blast burden.
    log_wbc = np.log(c.wbc10[idx] / 10)
    good = top_k(idx, soft_key(rng, relative_weight(log_wbc, -0.4)), parts["prednisone"][g]["good"])
    c.prednisone_good[good] = 1
    rest = np.setdiff1d(idx, good)
    poor = rest[rng.permutation(len(rest))[: parts["prednisone"][g]["poor"]]]
    c.prednisone_good[poor] = 0


def _trial_fields(rng: np.random.Generator, plan: CohortPlan, c: _Latent) -> None:
    """Protocol, diagnosis date and trial patient number (increasing with the date inside a protocol)."""
    adults = np.flatnonzero(c.adult)
    c.protocol[~c.adult] = PROTOCOLS.index("FRALLE-2000")
    for p, members in zip(
        plan.protocol_adults, deal(rng, adults, list(plan.protocol_adults.values())), strict=True
    ):
        c.protocol[members] = PROTOCOLS.index(p)
    for pi, protocol in enumerate(PROTOCOLS):
        members = np.flatnonzero(c.protocol == pi)
        start, end = ((d - EPOCH).days for d in DIAGNOSIS_PERIODS[protocol])
        days = np.sort(rng.integers(start, end + 1, size=len(members)))
        members = rng.permutation(members)
        c.diagnosis_day[members] = days
        # Trials also enrol B-lineage patients, hence gaps between consecutive T-ALL numbers.
        c.patient_number[members] = np.cumsum(rng.integers(1, 6, size=len(members)))


def id_digits(trial: str, max_number: int) -> int:
    """Width of the zero-padded patient number, widened when the cohort outgrows the default."""
    digits = ID_DIGITS[trial]
    while max_number >= 10**digits - ID_RESERVE[trial]:
        digits += 1
    return digits


def _masked(values: pl.Series, missing: np.ndarray) -> pl.Series:
    return pl.select(pl.when(pl.Series(missing)).then(None).otherwise(values)).to_series()


def _frame(c: _Latent) -> pl.DataFrame:
    def tri(a: np.ndarray) -> pl.Series:
        return _masked(pl.Series(a == 1), a < 0)

    def coded(a: np.ndarray, labels: tuple[str, ...]) -> pl.Series:
        return pl.Series(a, dtype=pl.Int32).replace_strict(
            dict(enumerate(labels)), default=None, return_dtype=pl.String
        )

    def optional_int(a: np.ndarray) -> pl.Series:
        return _masked(pl.Series(a, dtype=pl.Int32), a < 0)

    protocol = coded(c.protocol, PROTOCOLS)
    trial = pl.Series(np.where(c.adult, "GRAALL", "FRALLE"))
    digits = np.zeros(c.n, dtype=np.int64)
    for t, in_trial in (("GRAALL", c.adult), ("FRALLE", ~c.adult)):
        digits[in_trial] = id_digits(t, int(c.patient_number[in_trial].max(initial=0)))
    ids = pl.select(
        protocol.replace_strict(ID_PREFIX)
        + pl.Series(c.patient_number).cast(pl.String).str.zfill(pl.Series(digits))
    ).to_series()
    ikzf1_names = (*IKZF1_CLASSES, "none")
    ikzf1_class = coded(c.ikzf1_class, ikzf1_names)
    columns: dict[str, pl.Series] = {
        "trial_group": trial,
        "source_patient_id": ids,
        "protocol_code": protocol,
        "diagnosis": pl.Series(["T-ALL"] * c.n),
        "consent_status": pl.Series(["given"] * c.n),
        "diagnosis_date": pl.Series(c.diagnosis_day, dtype=pl.Int32).cast(pl.Date),
        "is_adult": pl.Series(c.adult),
        "ikzf1_status": pl.Series(np.where(c.ikzf1_class >= 0, "Alt", "GL")),
        "ikzf1_alteration": ikzf1_class.replace_strict(
            {n: ("deletion" if n in IKZF1_DELETION_CLASSES else "mutation") for n in IKZF1_CLASSES},
            default=None,
            return_dtype=pl.String,
        ),
        "ikzf1_deletion_class": ikzf1_class.replace_strict(
            {n: n for n in IKZF1_DELETION_CLASSES}, default=None, return_dtype=pl.String
        ),
        "ikzf1_deletion_first_exon": optional_int(c.del_first),
        "ikzf1_deletion_last_exon": optional_int(c.del_last),
        "ikzf1_mutation_class": ikzf1_class.replace_strict(
            {n: n for n in IKZF1_CLASSES if n not in IKZF1_DELETION_CLASSES},
            default=None,
            return_dtype=pl.String,
        ),
        "ikzf1_mutation_exon": optional_int(c.mut_exon),
        "ikzf1_protein_change": pl.Series(c.protein_change.tolist(), dtype=pl.String),
        "notch1_mut": pl.Series(c.flags["notch1"]),
        "fbxw7_mut": pl.Series(c.flags["fbxw7"]),
        "kras_mut": pl.Series(c.flags["kras"]),
        "nras_mut": pl.Series(c.flags["nras"]),
        "pten_mut": pl.Series(c.flags["pten_mut"]),
        "pten_del": pl.Series(c.flags["pten_del"]),
        **{f"{gene}_mut": pl.Series(c.flags[gene]) for gene in EPIGENETIC_MUTATIONS},
        "classifier_high": pl.Series(~(c.nf & ~c.ras & ~c.pten)),
        "sex": pl.Series(np.where(c.male, "M", "F")),
        "age": pl.Series(c.age10 / 10),
        "wbc": pl.Series(c.wbc10 / 10),
        "cns": tri(c.cns),
        "mediastinal_mass": tri(c.mediastinal),
        "prednisone": coded(c.prednisone_good, ("poor", "good")),
        "tcr_status": coded(c.tcr, TCR_CODES),
        "tcr_group": coded(c.tcr_group, tuple(TCR_GROUPS)),
        "etp": tri(c.etp),
        **{m.lower().replace("-", "_"): coded(c.markers[m], MARKER_RESULTS) for m in MARKERS},
        "oncogenetics_method": coded(c.onc_method, ONC_METHODS),
        "in_lab_export": pl.Series(c.in_lab_export),
    }
    return pl.DataFrame(columns)


def build_cohort(plan: CohortPlan, rng: np.random.Generator) -> pl.DataFrame:
    """One row per patient with every latent value known at diagnosis, sorted by trial and patient id."""
    c = _Latent(plan.n_patients)
    sizes = [plan.group_size[g] for g in GROUPS]
    c.group[:] = rng.permutation(np.repeat(np.arange(len(GROUPS), dtype=np.int8), sizes))
    for gi, g in enumerate(GROUPS):
        idx = np.flatnonzero(c.group == gi)
        _clinical(rng, plan, g, idx, c)
        _immunophenotype(rng, plan, g, idx, c)
        _genomics(rng, plan, g, idx, c)
    _trial_fields(rng, plan, c)
    return _frame(c).sort("trial_group", "source_patient_id", descending=[True, False])
