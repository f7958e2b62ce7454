"""SYNTHETIC HOVON 102 / SAKK 30/09-like AML cohort (clofarabine added to standard induction), written as raw
source exports: the trial export in layout hovon102 and the flow-cytometry MRD results in layout mrd.

Nothing here is a real patient. The cohort imitates the published trial, Löwenberg B, Pabst T, Maertens J,
et al. "Therapeutic value of clofarabine in younger and middle-aged (18-65 years) adults with newly
diagnosed AML", Blood 2017;129(12):1636-1645 (HOVON 102, NTR2187): adults 18-65 randomised 1:1 between
standard induction (arm A: idarubicin-cytarabine, then amsacrine-cytarabine) and the same with clofarabine
(arm B). It is calibrated to the subgroup result reported for ELN 2010 intermediate-I AML, at 4 years,
A vs B (the ± are the printed standard errors):

- event-free survival 26% ± 4 vs 40% ± 5, Cox P = .002;
- overall survival 29% ± 5 vs 50% ± 6, Cox P < .001;

Overall (all ELN groups) the arm effect stays modest, as in the paper (4-year EFS 35% vs 38%, not
significant; less relapse, 44% vs 35%, and more death in remission, 15% vs 22%, with clofarabine): here
about 33% vs 36% (P ~ .1), relapse 45% vs 39%.
What is SYNTHETIC (made up, only plausible): every patient; the ELN 2010 shares (fav ~22%, int-I ~30%,
int-II ~18%, adverse ~30%, a few not evaluated), FLT3-ITD (~21%) and NPM1 (~27%) consistent with ELN 2010
(NPM1 mutated without FLT3-ITD in a normal karyotype is favourable), age (median ~52), WBC (lognormal,
median ~15 x10^9/L; the paper's median is 6-7), marrow blasts, ~8% high-risk MDS (RAEB); CR after at most
two cycles ~80% (the paper: 89%), lower in adverse risk, ~10% early deaths, CR after cycle 1 more often
with clofarabine, and in intermediate-I more CR with clofarabine (79% vs 91%: with the relapses it
delays, this makes the curves part early, which the published Cox P values need); every time (accrual
over 4 years, data cut-off 7 years after the first patient: median follow-up ~5 years, the paper's was
3; some lost to follow-up); the transplants in first CR (~35% of CR patients, mostly intermediate-II and
adverse, after day 100); and all MRD results, whose shares follow the HOVON 102 flow studies only loosely
(MFC after cycle 1, 2 and consolidation; at C2 MFC-MRD >= 0.1% in ~27% of evaluable patients and
CD34+CD38- LSC detectable in ~37%, both less frequent in arm B, correlated, and carrying a relapse hazard
ratio of about 2-3). The survival after relapse differs by arm in intermediate-I only because the
letter's OS lies 3 points above its EFS in arm A and 10 in arm B.

How outcomes are made: within each ELN group and arm, the outcome classes (early death, refractory,
relapse, death in CR, event-free at 4 years; alive or not at 4 years after an event) are dealt by quota
(exact counts, shuffled), then times are drawn inside each class. The 4-year Kaplan-Meier estimates
therefore sit on the targets for any seed up to censoring, instead of wandering by a standard error. MRD
is drawn after the outcome, from a latent score that is higher for patients who relapse (earlier relapse,
higher score) and lower with clofarabine; the positive shares are set by quantile.

`write_synthetic_aml_cohort` writes hovon102_export.csv, hovon102_mrd.tsv, truth.parquet (one row per
patient, every latent value) and README.txt. Deterministic for a seed: numpy's default_rng only, on
independent SeedSequence streams per stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.special import ndtr, ndtri

from etl.load.layout import CodeList, load_layout
from etl.synth import SynthResult
from etl.synth.mrd import DOWN, NEAREST, UP, format_level
from etl.synth.sampling import BoolArray, FloatArray, IntArray
from etl.synth.writers import README_FILE, TRUTH_FILE

__all__ = ["write_synthetic_aml_cohort"]


LAYOUT = "hovon102"
CLINICAL_FILE = "hovon102_export.csv"
MRD_FILE = "hovon102_mrd.tsv"
TRIAL_GROUP = "HOVON-SAKK"
STUDY = "HO102"
PROTOCOL = "HOVON-102"
HORIZON_DAYS = 1461  # 4 years: the horizon of the published estimates

# --- baseline ------------------------------------------------------------------------------------------
RISKS = ("fav", "int1", "int2", "adv")
RISK_SHARES = (0.22, 0.30, 0.18, 0.30)
RISK_NOT_EVALUATED_SHARE = 0.02  # cytogenetics failed: ELN 2010 reported as NE (the latent group acts)
ARMS = ("A", "B")
# (NPM1 mutated, FLT3-ITD) genotypes per ELN 2010 group: NPM1+/ITD- in a normal karyotype is favourable,
# the other normal-karyotype genotypes are intermediate-I; abnormal karyotypes carry them less often.
GENOTYPES = ((True, True), (True, False), (False, True), (False, False))
GENOTYPE_SHARES = {
    "fav": (0.0, 0.60, 0.04, 0.36),  # NPM1+/ITD- (normal karyotype), CBF AML, CEBPA
    "int1": (0.30, 0.0, 0.15, 0.55),  # normal karyotype with ITD, or NPM1 wild-type without
    "int2": (0.08, 0.12, 0.10, 0.70),
    "adv": (0.03, 0.03, 0.08, 0.86),
}
MUTATION_NOT_DONE_SHARE = 0.05  # FLT3 / NPM1 not determined (ND), each
AGE = (53.5, 11.0, 18.0, 65.99)  # normal mean, sd, truncated to [18, 66)
MALE_SHARE = 0.55
SEX_MISSING_SHARE = 0.01
RAEB_SHARE = 0.08  # high-risk MDS (RAEB), enrolled with AML; kept as written (open diagnosis list)
WBC_MEDIAN, WBC_SIGMA = 12.5, 1.25  # x10^9/L, before the genotype factors below
WBC_FACTOR = {"flt3_itd": 2.2, "npm1": 1.6, "raeb": 0.3}
BLASTS_MISSING_SHARE = 0.05
YEAR_MISSING_SHARE = 0.03
WITHDRAWN_SHARE = 0.005  # consent withdrawn: loaded, never analysed

# --- induction -----------------------------------------------------------------------------------------
C1_DAYS = (28, 45)  # evaluation after cycle 1
C2_DAYS = (55, 140)  # evaluation after cycle 2: 55 + lognormal(27 days), median ~82
C2_OFFSET = (27.0, 0.45)
CR_AFTER_C1 = {"A": 0.74, "B": 0.84}  # of CR patients (paper: 66% vs 75% in CR after cycle 1, 89% in all)
EARLY_DEATH_DAYS = (3, 60)


@dataclass(frozen=True)
class CellPlan:
    """Outcome shares of one ELN 2010 group in one arm, by 4 years (HORIZON_DAYS).

    early_death + refractory + CR = 1; relapse and death in CR (nrm) are shares of the CR patients;
    salvage: share of the relapsed (refractory) patients still alive at 4 years."""

    early_death: float
    cr: float
    relapse: float
    nrm: float
    relapse_salvage: float
    refractory_salvage: float

    @property
    def efs(self) -> float:
        return self.cr * (1 - self.relapse - self.nrm)

    @property
    def os(self) -> float:
        refractory = 1 - self.cr - self.early_death
        return self.efs + self.cr * self.relapse * self.relapse_salvage + refractory * self.refractory_salvage


# EFS = cr x (1 - relapse - nrm); OS = EFS + the salvaged. Intermediate-I reproduces the letter (the
# post-relapse survival differs by arm as its OS gap requires: 3 vs 10 points above EFS); the other groups
# keep the paper's pattern: no survival gain, less relapse and more death in CR with clofarabine.
PLAN: dict[tuple[str, str], CellPlan] = {
    ("fav", "A"): CellPlan(0.05, 0.93, 0.25, 0.09, 0.45, 0.30),
    ("fav", "B"): CellPlan(0.05, 0.93, 0.22, 0.15, 0.40, 0.30),
    ("int1", "A"): CellPlan(0.10, 0.79, 0.531, 0.14, 0.048, 0.10),
    ("int1", "B"): CellPlan(0.05, 0.91, 0.38, 0.18, 0.27, 0.10),
    ("int2", "A"): CellPlan(0.10, 0.80, 0.49, 0.13, 0.14, 0.10),
    ("int2", "B"): CellPlan(0.10, 0.80, 0.44, 0.19, 0.10, 0.10),
    ("adv", "A"): CellPlan(0.14, 0.64, 0.55, 0.14, 0.08, 0.06),
    ("adv", "B"): CellPlan(0.14, 0.64, 0.52, 0.18, 0.03, 0.06),
}
# Times (days from diagnosis): lognormal (median, sigma), truncated to the class's window.
# Relapse, and death after it (days after the relapse) for the unsalvaged, per ELN group and arm:
# clofarabine delays relapse, most in intermediate-I, where the letter's curves part early (the Cox P of
# .002 needs that, with CR 79% vs 91%: the same 4-year estimates with curves parting late give P ~ .05).
RELAPSE_TIMING: dict[tuple[str, str], tuple[tuple[float, float], tuple[float, float]]] = {
    **{(risk, "A"): ((280.0, 0.6), (150.0, 0.8)) for risk in RISKS},
    **{(risk, "B"): ((340.0, 0.6), (150.0, 0.8)) for risk in RISKS},
    ("int1", "A"): ((250.0, 0.55), (100.0, 0.7)),
    ("int1", "B"): ((400.0, 0.6), (200.0, 0.8)),
}
NRM_DAYS = (220.0, 0.9)
REFRACTORY_DEATH_DAYS = (220.0, 0.7)
LATE_RELAPSE_SHARE = 0.05  # of patients event-free at 4 years, before the cut-off
LATE_NRM_SHARE = 0.02
LATE_DEATH_SHARE = 0.15  # of the salvaged, after 4 years
LATE_WINDOW = 3 * 365  # days after the 4 years in which late events happen

# --- transplant in first CR ----------------------------------------------------------------------------
HSCT_SHARE = {"fav": 0.05, "int1": 0.35, "int2": 0.50, "adv": 0.55}  # of CR patients
HSCT_AFTER_C2 = (25, 110)  # days after the C2 evaluation, and never before day 101
HSCT_MARGIN = 14  # a transplanted patient is event-free at least this long after it

# --- follow-up -----------------------------------------------------------------------------------------
TRIAL_START_YEAR = 2010
ACCRUAL_DAYS = 4 * 365  # accrual over 4 years
CUTOFF_DAY = 7 * 365  # data cut-off, counted from the first patient: follow-up 3-7 years, median ~5
LAST_NEWS_LAG = 90  # last news up to this many days before the cut-off
LOST_SHARE = 0.04  # lost to follow-up at a random day after day 180

# --- MRD (flow cytometry, percent of white cells) -------------------------------------------------------
MFC_THRESHOLD = 1e-3  # 0.1%: MRD positive at or above (mrd_result's MFC threshold)
MFC_LOD, MFC_RANGE_LOW = 1e-4, 2e-4
LSC_LOD, LSC_RANGE_LOW = 1e-6, 5e-6
MFC_TARGET, LSC_TARGET = "LAIP/DfN", "CD34+CD38-"
MRD_SAMPLED_SHARE = 0.92  # of the CR patients evaluable at C2 (alive, in CR, followed)
MFC_C2_NOT_DONE_SHARE = 0.03
LSC_C2_NOT_DONE_SHARE = 0.08
C1_SAMPLED_SHARE = 0.85  # of the patients in CR after cycle 1
C3_SAMPLED_SHARE = 0.6  # of the patients in CR, not transplanted, at C3
C3_DAYS = (150, 200)
POSITIVE_SHARE = {"C1": 0.40, "C2_MFC": 0.27, "C2_LSC": 0.37, "C3": 0.12}
MRD_RELAPSE_WEIGHT = 0.65  # latent MRD score: + this for a patient who relapses (ever)
MRD_EARLY_WEIGHT = 0.25  # + this x (how early the relapse is, 0-1)
MRD_ARM_B_SHIFT = -0.25  # clofarabine clears more disease
LSC_ARM_B_SHIFT = -0.2  # and more leukaemic stem cells, beyond what the MFC score carries
LSC_CORRELATION = 0.75  # of the LSC score with the MFC score
MFC_UNITS = {"%": 0.5, "percent": 0.3, "fraction": 0.2}
MISSING_CODE_SHARE = 0.7  # of "not evaluated" values written as the code (NE, ND), else an empty cell
CODE_VARIANT_SHARE = 0.01  # of codes written in lower case


def write_synthetic_aml_cohort(
    out_dir: Path,
    seed: int = 1,
    patients: int = 800,
    progress: Callable[[str, int, int], None] | None = None,
) -> SynthResult:
    """Write a SYNTHETIC HOVON 102-like cohort of `patients` patients into out_dir (see the module doc).
    `progress(step, done, total)` follows the steps (a bar in `cgdw synth`)."""
    if patients < 1:
        raise ValueError(f"patients must be at least 1, got {patients}")
    say = progress or (lambda _step, _done, _total: None)
    baseline_seed, outcome_seed, mrd_seed, writer_seed = np.random.SeedSequence(seed).spawn(4)
    say("baseline characteristics", 0, 4)
    truth = _baseline(np.random.default_rng(baseline_seed), patients)
    say("simulating outcomes", 1, 4)
    truth = _outcomes(np.random.default_rng(outcome_seed), truth)
    say("MRD after cycle 2", 2, 4)
    truth, mrd = _mrd(np.random.default_rng(mrd_seed), truth)
    say("writing the files", 3, 4)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "hovon102": out_dir / CLINICAL_FILE,
        "mrd": out_dir / MRD_FILE,
        "truth": out_dir / TRUTH_FILE,
        "readme": out_dir / README_FILE,
    }
    clinical = _clinical_export(np.random.default_rng(writer_seed), truth)
    files["hovon102"].write_bytes(clinical.write_csv(line_terminator="\n").encode("utf-8"))
    files["mrd"].write_bytes(mrd.write_csv(separator="\t", line_terminator="\n").encode("utf-8"))
    truth.write_parquet(files["truth"])
    _write_readme(files["readme"], seed, patients, files)
    say("done", 4, 4)
    return SynthResult(out_dir, seed, patients, False, files)


# --- sampling helpers ----------------------------------------------------------------------------------


def _quota(rng: np.random.Generator, n: int, shares: dict[str, float]) -> npt.NDArray[np.str_]:
    """n labels in exactly the given shares (largest remainder, ties at random), shuffled."""
    names = list(shares)
    raw = np.array([shares[k] for k in names]) * n
    counts = np.floor(raw).astype(np.int64)
    left = n - int(counts.sum())
    if left > 0:
        remainder = raw - counts
        order = np.argsort(-(remainder + rng.random(len(names)) * 1e-9), kind="stable")
        counts[order[:left]] += 1
    labels = np.repeat(np.array(names), counts)
    return rng.permutation(labels)


def _stratified_uniform(rng: np.random.Generator, cells: npt.NDArray[np.str_]) -> FloatArray:
    """Uniforms stratified within each cell: the k values of a cell fall one in each of [j/k, (j+1)/k), so
    that the times drawn from them follow their distribution closely even in a small cell."""
    u = np.empty(len(cells))
    for cell in np.unique(cells):
        idx = np.flatnonzero(cells == cell)
        u[idx] = (rng.permutation(len(idx)) + rng.random(len(idx))) / len(idx)
    return u


def _truncated_lognormal(
    u: FloatArray, median: float, sigma: float, low: npt.ArrayLike, high: npt.ArrayLike
) -> IntArray:
    """Whole days from a lognormal(median, sigma) truncated to [low, high], by the inverse CDF at u."""
    lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    p_low = ndtr((np.log(np.maximum(lo, 1e-9)) - np.log(median)) / sigma)
    p_high = ndtr((np.log(np.maximum(hi, 1e-9)) - np.log(median)) / sigma)
    p = p_low + u * (p_high - p_low)
    days = np.exp(np.log(median) + sigma * ndtri(np.clip(p, 1e-12, 1 - 1e-12)))
    return np.clip(np.round(days), lo, hi).astype(np.int64)


def _uniform_days(rng: np.random.Generator, n: int, low: npt.ArrayLike, high: npt.ArrayLike) -> IntArray:
    """Whole days uniform on [low, high]."""
    lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    return np.floor(lo + rng.random(n) * (hi - lo + 1)).clip(lo, hi).astype(np.int64)


# --- patients at diagnosis ------------------------------------------------------------------------------


def _baseline(rng: np.random.Generator, n: int) -> pl.DataFrame:
    accrual = np.sort(rng.random(n) * ACCRUAL_DAYS).astype(np.int64)
    risk = _quota(rng, n, dict(zip(RISKS, RISK_SHARES, strict=True)))
    # Randomisation by permuted blocks of 4 within each ELN stratum, in accrual order.
    arm = np.empty(n, dtype="<U1")
    for r in RISKS:
        idx = np.flatnonzero(risk == r)
        blocks = [rng.permutation(["A", "A", "B", "B"]) for _ in range(len(idx) // 4 + 1)]
        arm[idx] = np.concatenate(blocks)[: len(idx)] if blocks else []
    npm1 = np.zeros(n, dtype=bool)
    flt3 = np.zeros(n, dtype=bool)
    for r in RISKS:
        idx = np.flatnonzero(risk == r)
        pick = rng.choice(len(GENOTYPES), size=len(idx), p=GENOTYPE_SHARES[r])
        npm1[idx] = [GENOTYPES[g][0] for g in pick]
        flt3[idx] = [GENOTYPES[g][1] for g in pick]
    ages = np.empty(0)
    mean, sd, low, high = AGE
    while len(ages) < n:
        draw = rng.normal(mean, sd, 2 * n)
        ages = np.concatenate([ages, draw[(draw >= low) & (draw < high)]])
    age = np.floor(ages[:n] * 10) / 10
    raeb = rng.random(n) < RAEB_SHARE
    wbc = np.exp(rng.normal(np.log(WBC_MEDIAN), WBC_SIGMA, n))
    wbc *= np.where(flt3, WBC_FACTOR["flt3_itd"], 1.0) * np.where(npm1, WBC_FACTOR["npm1"], 1.0)
    wbc *= np.where(raeb, WBC_FACTOR["raeb"], 1.0)
    wbc = np.clip(np.round(wbc, 1), 0.3, 350.0)
    blasts = np.where(raeb, 10 + rng.random(n) * 9.9, 20 + 75 * rng.beta(1.8, 2.0, n))
    blasts = np.round(blasts, 1)
    sex = np.where(rng.random(n) < MALE_SHARE, "M", "F")
    return pl.DataFrame(
        {
            "source_patient_id": [f"{STUDY}-{i + 1:04d}" for i in range(n)],
            "trial_group": TRIAL_GROUP,
            "protocol_code": PROTOCOL,
            "accrual_day": accrual,
            "diagnosis_year": TRIAL_START_YEAR + (accrual // 365.25).astype(np.int64),
            "year_reported": rng.random(n) >= YEAR_MISSING_SHARE,
            "sex": pl.Series(sex).set(pl.Series(rng.random(n) < SEX_MISSING_SHARE), None),
            "age": age,
            "diagnosis": np.where(raeb, "RAEB", "AML"),
            "wbc": wbc,
            "bm_blasts": pl.Series(blasts).set(pl.Series(rng.random(n) < BLASTS_MISSING_SHARE), None),
            "arm": arm,
            "eln2010_risk": risk,
            "eln2010_reported": pl.Series(risk).set(
                pl.Series(rng.random(n) < RISK_NOT_EVALUATED_SHARE), None
            ),
            "npm1_mutated": npm1,
            "flt3_itd": flt3,
            "npm1_reported": pl.Series(npm1).set(pl.Series(rng.random(n) < MUTATION_NOT_DONE_SHARE), None),
            "flt3_reported": pl.Series(flt3).set(pl.Series(rng.random(n) < MUTATION_NOT_DONE_SHARE), None),
            "consent_status": np.where(rng.random(n) < WITHDRAWN_SHARE, "withdrawn", "given"),
        }
    )


# --- outcomes -------------------------------------------------------------------------------------------


def _outcomes(rng: np.random.Generator, truth: pl.DataFrame) -> pl.DataFrame:
    n = truth.height
    risk, arm = truth["eln2010_risk"].to_numpy(), truth["arm"].to_numpy()
    pathway = np.empty(n, dtype="<U16")
    for (r, a), plan in PLAN.items():
        idx = np.flatnonzero((risk == r) & (arm == a))
        refractory = 1 - plan.cr - plan.early_death
        relapses, deaths_in_cr = plan.cr * plan.relapse, plan.cr * plan.nrm
        shares = {
            "early_death": plan.early_death,
            "refractory_dead": refractory * (1 - plan.refractory_salvage),
            "refractory_alive": refractory * plan.refractory_salvage,
            "relapse_dead": relapses * (1 - plan.relapse_salvage),
            "relapse_alive": relapses * plan.relapse_salvage,
            "death_in_cr": deaths_in_cr,
            "event_free": plan.cr - relapses - deaths_in_cr,
        }
        pathway[idx] = _quota(rng, len(idx), shares)

    cr = ~np.isin(pathway, ["early_death", "refractory_dead", "refractory_alive"])
    c1_day = _uniform_days(rng, n, *C1_DAYS)
    c2_day = np.clip(
        np.round(C2_DAYS[0] + rng.lognormal(np.log(C2_OFFSET[0]), C2_OFFSET[1], n)), *C2_DAYS
    ).astype(np.int64)
    after_c1 = rng.random(n) < np.where(arm == "B", CR_AFTER_C1["B"], CR_AFTER_C1["A"])
    cr_day = np.where(cr, np.where(after_c1, c1_day, c2_day), -1)
    relapse_day = np.full(n, -1, dtype=np.int64)
    death_day = np.full(n, -1, dtype=np.int64)
    late_window = np.full(n, float(HORIZON_DAYS + LATE_WINDOW))
    horizon = np.full(n, float(HORIZON_DAYS))

    def draw(mask: BoolArray, days: IntArray, into: IntArray) -> None:
        into[mask] = days[mask]

    cells = np.char.add(np.char.add(risk.astype(str), arm.astype(str)), pathway)
    # Early death: during induction, no CR.
    draw(pathway == "early_death", _uniform_days(rng, n, *EARLY_DEATH_DAYS), death_day)
    # Refractory: not salvaged -> death before 4 years.
    refractory_death = _truncated_lognormal(
        _stratified_uniform(rng, cells), *REFRACTORY_DEATH_DAYS, c2_day + 10.0, horizon
    )
    draw(pathway == "refractory_dead", refractory_death, death_day)
    # Relapse before 4 years, at least a month after the C2 evaluation; death after it for the unsalvaged.
    relapsed = np.isin(pathway, ["relapse_dead", "relapse_alive"])
    u_relapse, u_after = _stratified_uniform(rng, cells), _stratified_uniform(rng, cells)
    for (r, a), (relapse_timing, death_timing) in RELAPSE_TIMING.items():
        cell = (risk == r) & (arm == a)
        days = _truncated_lognormal(u_relapse, *relapse_timing, c2_day + 30.0, horizon - 30)
        draw(relapsed & cell, days, relapse_day)
        after = _truncated_lognormal(
            u_after, *death_timing, np.full(n, 7.0), horizon - np.maximum(relapse_day, 0)
        )
        draw((pathway == "relapse_dead") & cell, relapse_day + after, death_day)
    # Death in CR before 4 years, at least a week after the CR.
    nrm = _truncated_lognormal(_stratified_uniform(rng, cells), *NRM_DAYS, cr_day + 7.0, horizon)
    draw(pathway == "death_in_cr", nrm, death_day)
    # After 4 years: some late relapses and deaths in CR; some of the salvaged die.
    late = _uniform_days(rng, n, HORIZON_DAYS + 1, late_window)
    roll = rng.random(n)
    free = pathway == "event_free"
    late_relapse = free & (roll < LATE_RELAPSE_SHARE)
    draw(late_relapse, late, relapse_day)
    draw(late_relapse & (rng.random(n) < 0.5), late + _uniform_days(rng, n, 60, 700), death_day)
    draw(free & (roll >= LATE_RELAPSE_SHARE) & (roll < LATE_RELAPSE_SHARE + LATE_NRM_SHARE), late, death_day)
    salvaged = np.isin(pathway, ["relapse_alive", "refractory_alive"])
    draw(salvaged & (rng.random(n) < LATE_DEATH_SHARE), late, death_day)

    # Transplant in first CR: after day 100, before any relapse or death.
    hsct_day = np.maximum(101, c2_day + _uniform_days(rng, n, *HSCT_AFTER_C2))
    first_event = np.where(relapse_day >= 0, relapse_day, np.iinfo(np.int64).max)
    first_event = np.minimum(first_event, np.where(death_day >= 0, death_day, np.iinfo(np.int64).max))
    feasible = cr & (first_event > hsct_day + HSCT_MARGIN)
    hsct = np.zeros(n, dtype=bool)
    for r, share in HSCT_SHARE.items():
        in_group = cr & (risk == r)
        possible = feasible & (risk == r)
        if possible.any():
            p = min(1.0, share * in_group.sum() / possible.sum())
            hsct |= possible & (rng.random(n) < p)

    # Follow-up: administrative cut-off, last news shortly before it, some lost to follow-up.
    accrual = truth["accrual_day"].to_numpy()
    potential = CUTOFF_DAY - accrual
    censor = potential - _uniform_days(rng, n, 0, LAST_NEWS_LAG)
    lost = rng.random(n) < LOST_SHARE
    censor = np.where(lost, _uniform_days(rng, n, 180, censor), censor)
    death_seen = (death_day >= 0) & (death_day <= censor)
    relapse_seen = (relapse_day >= 0) & (relapse_day <= censor)
    hsct_seen = hsct & (hsct_day <= censor)

    def days_or_null(values: IntArray, seen: BoolArray) -> pl.Series:
        return pl.Series(values, dtype=pl.Int64).set(pl.Series(~seen), None)

    return truth.with_columns(
        pathway=pl.Series(pathway),
        cr=pl.Series(cr),
        cr_cycle=pl.Series(np.where(after_c1, 1, 2)).set(pl.Series(~cr), None),
        cr_day=days_or_null(cr_day, cr),
        c1_day=pl.Series(c1_day),
        c2_day=pl.Series(c2_day),
        latent_relapse_day=days_or_null(relapse_day, relapse_day >= 0),
        latent_death_day=days_or_null(death_day, death_day >= 0),
        hsct_planned=pl.Series(hsct),
        latent_hsct_day=days_or_null(hsct_day, hsct),
        lost_to_follow_up=pl.Series(lost),
        censor_day=pl.Series(censor),
        hsct=pl.Series(hsct_seen).set(pl.Series(~cr), None),
        hsct_day=days_or_null(hsct_day, hsct_seen),
        relapse_day=days_or_null(relapse_day, relapse_seen),
        death_day=days_or_null(death_day, death_seen),
        vital_status=pl.Series(np.where(death_seen, "dead", "alive")),
        last_contact_day=pl.Series(np.where(death_seen, death_day, censor)),
    )


# --- MRD ------------------------------------------------------------------------------------------------


def _positive_by_quantile(score: FloatArray, share: float) -> BoolArray:
    if len(score) == 0:
        return np.zeros(0, dtype=bool)
    return score > np.quantile(score, 1 - share)


def _mrd(rng: np.random.Generator, truth: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = truth.height
    cr = truth["cr"].to_numpy()
    arm = truth["arm"].to_numpy()
    big = np.iinfo(np.int64).max
    relapse = truth["latent_relapse_day"].fill_null(big).to_numpy()
    death = truth["latent_death_day"].fill_null(big).to_numpy()
    censor = truth["censor_day"].to_numpy()
    cr_day = truth["cr_day"].fill_null(-1).to_numpy()
    c1_day, c2_day = truth["c1_day"].to_numpy(), truth["c2_day"].to_numpy()
    hsct_day = truth["latent_hsct_day"].fill_null(big).to_numpy()

    relapses = relapse < big
    earliness = np.where(relapses, np.clip(1 - relapse / HORIZON_DAYS, 0, 1), 0.0)
    score = (
        MRD_RELAPSE_WEIGHT * relapses
        + MRD_EARLY_WEIGHT * earliness
        + np.where(arm == "B", MRD_ARM_B_SHIFT, 0.0)
        + rng.normal(size=n)
    )
    spread = float(score.std()) or 1.0
    noise = rng.normal(size=n)
    lsc_score = LSC_CORRELATION * (score - score.mean()) / spread + np.sqrt(1 - LSC_CORRELATION**2) * noise
    lsc_score += np.where(arm == "B", LSC_ARM_B_SHIFT, 0.0)

    def in_cr_at(day: IntArray) -> BoolArray:
        return cr & (cr_day <= day) & (relapse > day) & (death > day) & (censor >= day)

    c1 = (
        in_cr_at(c1_day)
        & (truth["cr_cycle"].fill_null(0).to_numpy() == 1)
        & (rng.random(n) < C1_SAMPLED_SHARE)
    )
    c2 = in_cr_at(c2_day) & (rng.random(n) < MRD_SAMPLED_SHARE)
    c3_day = np.clip(c2_day + _uniform_days(rng, n, 60, 100), *C3_DAYS)
    c3 = in_cr_at(c3_day) & (hsct_day > c3_day) & (rng.random(n) < C3_SAMPLED_SHARE)

    mfc_c2_done = c2 & (rng.random(n) >= MFC_C2_NOT_DONE_SHARE)
    lsc_c2_done = c2 & (rng.random(n) >= LSC_C2_NOT_DONE_SHARE)
    c1_positive = np.zeros(n, dtype=bool)
    c1_positive[c1] = _positive_by_quantile(
        score[c1] + rng.normal(0, 0.8, int(c1.sum())), POSITIVE_SHARE["C1"]
    )
    mfc_positive = np.zeros(n, dtype=bool)
    mfc_positive[mfc_c2_done] = _positive_by_quantile(score[mfc_c2_done], POSITIVE_SHARE["C2_MFC"])
    lsc_positive = np.zeros(n, dtype=bool)
    lsc_positive[lsc_c2_done] = _positive_by_quantile(lsc_score[lsc_c2_done], POSITIVE_SHARE["C2_LSC"])
    c3_positive = np.zeros(n, dtype=bool)
    c3_positive[c3] = _positive_by_quantile(
        score[c3] + rng.normal(0, 0.8, int(c3.sum())), POSITIVE_SHARE["C3"]
    )

    rows: list[dict[str, str | None]] = []
    ids = truth["source_patient_id"].to_list()
    levels = {name: np.full(n, np.nan) for name in ("c1_mfc", "c2_mfc", "c2_lsc", "c3_mfc")}
    results: dict[str, list[str | None]] = {name: [None] * n for name in levels}
    for i in range(n):
        measured = [
            ("C1", c1_day[i], "MFC", c1[i], True, c1_positive[i], "c1_mfc"),
            ("C2", c2_day[i], "MFC", c2[i], mfc_c2_done[i], mfc_positive[i], "c2_mfc"),
            ("C2", c2_day[i], "LSC-MFC", c2[i], lsc_c2_done[i], lsc_positive[i], "c2_lsc"),
            ("C3", c3_day[i], "MFC", c3[i], True, c3_positive[i], "c3_mfc"),
        ]
        for time_point, day, method, sampled, done, positive, name in measured:
            if not sampled:
                continue
            row, level, result = _mrd_row(rng, method, bool(done), bool(positive))
            levels[name][i], results[name][i] = level, result
            rows.append(
                {
                    "trial_group": TRIAL_GROUP,
                    "patient_id": ids[i],
                    "sample_id": None,
                    "time_point": time_point,
                    "days_from_diagnosis": str(int(day)),
                    **row,
                }
            )
    layout = load_layout("mrd")
    frame = pl.DataFrame(rows, schema=dict.fromkeys(layout.source_columns, pl.String))
    truth = truth.with_columns(
        mrd_score=pl.Series(score),
        lsc_score=pl.Series(lsc_score),
        c3_day=pl.Series(c3_day),
        **{f"mrd_{name}_fraction": pl.Series(values).fill_nan(None) for name, values in levels.items()},
        **{f"mrd_{name}_result": pl.Series(values, dtype=pl.String) for name, values in results.items()},
        # Positive by the study's definitions (MFC >= 0.1%, LSC detectable); NULL when not measured.
        **{
            f"mrd_{name}_positive": pl.Series(positive).set(pl.Series(~done), None)
            for name, positive, done in (
                ("c1_mfc", c1_positive, c1),
                ("c2_mfc", mfc_positive, mfc_c2_done),
                ("c2_lsc", lsc_positive, lsc_c2_done),
                ("c3_mfc", c3_positive, c3),
            )
        },
    )
    return truth, frame


def _mrd_row(
    rng: np.random.Generator, method: str, done: bool, positive: bool
) -> tuple[dict[str, str | None], float, str]:
    """The measured columns of one MRD row, the true level (fraction; 0 = nothing detected, NaN = not done)
    and the result as the truth file keeps it (positive, negative, pnq, not_done)."""
    lsc = method == "LSC-MFC"
    unit = str(rng.choice(list(MFC_UNITS), p=list(MFC_UNITS.values())))
    lod, low = (LSC_LOD, LSC_RANGE_LOW) if lsc else (MFC_LOD, MFC_RANGE_LOW)
    row: dict[str, str | None] = {
        "method": method,
        "target": LSC_TARGET if lsc else MFC_TARGET,
        "value": None,
        "unit": unit,
        "limit_of_detection": format_level(lod, unit, NEAREST),
        "quantitative_range_low": format_level(low, unit, NEAREST),
        "qualitative_result": None,
    }
    if not done:
        row.update(value=None, unit=None, limit_of_detection=None, quantitative_range_low=None)
        row["qualitative_result"] = "not done"
        return row, float("nan"), "not_done"
    draw = rng.random()
    if lsc:
        # LSC: any detectable CD34+CD38- leukaemic stem cell is positive (HOVON 102 flow definition).
        if not positive:
            row["qualitative_result"] = "negative"
            return row, 0.0, "negative"
        if draw < 0.1:
            row["qualitative_result"] = "positive not quantifiable"
            return row, float(10 ** rng.uniform(np.log10(LSC_LOD), np.log10(LSC_RANGE_LOW))), "pnq"
        level = float(10 ** rng.uniform(np.log10(LSC_RANGE_LOW), -2.3))
        row.update(value=format_level(level, unit, UP), qualitative_result="positive")
        return row, level, "positive"
    if positive:
        level = float(min(0.2, 1.05 * MFC_THRESHOLD * 10 ** rng.exponential(0.6)))
        row.update(value=format_level(level, unit, UP), qualitative_result="positive")
        return row, level, "positive"
    if draw < 0.45:
        row["qualitative_result"] = "negative"
        return row, 0.0, "negative"
    if draw < 0.55:
        row["qualitative_result"] = "positive not quantifiable"
        return row, float(10 ** rng.uniform(np.log10(MFC_LOD), np.log10(MFC_RANGE_LOW))), "pnq"
    level = float(10 ** rng.uniform(np.log10(MFC_RANGE_LOW), np.log10(0.95 * MFC_THRESHOLD)))
    row["value"] = format_level(level, unit, DOWN)
    return row, level, "negative"


# --- the export -----------------------------------------------------------------------------------------


def _code(
    rng: np.random.Generator, codes: CodeList, values: list[object], not_applicable: BoolArray | None = None
) -> list[str | None]:
    """Canonical values back to source codes; a missing value is the list's missing code or an empty cell
    (always empty where the value does not apply); a few codes in lower case."""
    inverse: dict[object, str] = {}
    for source, canonical in codes.mapping.items():
        inverse.setdefault(canonical, source)
    n = len(values)
    roll, variant = rng.random(n), rng.random(n)
    out: list[str | None] = []
    for i, value in enumerate(values):
        if value is None:
            explicit = codes.missing and roll[i] < MISSING_CODE_SHARE
            skip = not_applicable is not None and not_applicable[i]
            out.append(None if skip or not explicit else codes.missing[0])
            continue
        code = inverse[value]
        out.append(code.lower() if variant[i] < CODE_VARIANT_SHARE else code)
    return out


def _clinical_export(rng: np.random.Generator, truth: pl.DataFrame) -> pl.DataFrame:
    layout = load_layout(LAYOUT)
    codes = {spec.column: spec.codes for spec in layout.fields.values() if spec.codes is not None}
    codes |= {a.column: a.codes for a in layout.attributes.values() if a.codes is not None}
    not_cr = ~truth["cr"].to_numpy()

    def coded(column: str, values: pl.Series, not_applicable: BoolArray | None = None) -> list[str | None]:
        code_list = codes[column]
        assert code_list is not None
        return _code(rng, code_list, values.to_list(), not_applicable)

    def days(values: pl.Series) -> pl.Series:
        return values.cast(pl.String)

    columns: dict[str, pl.Series | list[str | None]] = {
        "PATNO": truth["source_patient_id"],
        "STUDY": pl.Series([STUDY] * truth.height),
        "SEX": coded("SEX", truth["sex"]),
        "AGE": truth["age"].round(1).cast(pl.String),
        "YEAR_DX": truth["diagnosis_year"].cast(pl.String).set(~truth["year_reported"], None),
        "DIAGNOSIS": truth["diagnosis"],
        "WBC": truth["wbc"].round(1).cast(pl.String),
        "CR1": coded("CR1", truth["cr"]),
        "DAYS_TO_CR": days(truth["cr_day"]),
        "ALLO_CR1": coded("ALLO_CR1", truth["hsct"], not_cr),
        "DAYS_TO_ALLO": days(truth["hsct_day"]),
        "DAYS_TO_RELAPSE": days(truth["relapse_day"]),
        "STATUS": coded("STATUS", truth["vital_status"]),
        "DAYS_TO_DEATH": days(truth["death_day"]),
        "DAYS_FOLLOW_UP": days(truth["last_contact_day"]),
        "CONSENT": coded("CONSENT", truth["consent_status"]),
        "ARM": truth["arm"],
        "ELN2010": coded("ELN2010", truth["eln2010_reported"]),
        "FLT3_ITD": coded("FLT3_ITD", truth["flt3_reported"]),
        "NPM1": coded("NPM1", truth["npm1_reported"]),
        "BM_BLASTS": truth["bm_blasts"].round(1).cast(pl.String),
    }
    assert list(columns) == layout.source_columns, "the export's columns are the layout's, in its order"
    return pl.DataFrame({name: pl.Series(name, values, dtype=pl.String) for name, values in columns.items()})


def _write_readme(path: Path, seed: int, patients: int, files: dict[str, Path]) -> None:
    lines = [
        "SYNTHETIC DATA - not real patients. Generated by cgdw (etl.synth.aml) to resemble the HOVON 102 /",
        "SAKK 30/09 AML trial (clofarabine added to standard induction; Lowenberg et al., Blood 2017;",
        "129(12):1636-1645), calibrated to its ELN 2010 intermediate-I result at 4 years (EFS 26% vs 40%,",
        "OS 29% vs 50%, control vs clofarabine). No value comes from a real person.",
        f"seed={seed} patients={patients}",
        "",
        f"hovon102: {files['hovon102'].name} (layout hovon102: cgdw load clinical --protocol hovon102)",
        f"mrd: {files['mrd'].name} (layout mrd: cgdw load mrd; time points C1, C2, C3; MFC and LSC-MFC)",
        f"truth: {files['truth'].name} (one row per patient, every latent value)",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
