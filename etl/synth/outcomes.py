"""Treatment response and follow-up (days from diagnosis) for the latent cohort.

Within each IKZF1 group, outcome classes are assigned by rank of a latent risk z = beta.x - log(E),
E ~ Exp(1): taking the k highest z is a proportional-hazards model with beta, censored where k events
have happened. k comes from the published 5-year OS and CIR of the group, so even the 26 IKZF1-altered
patients hit their targets closely, while the covariates (age, log WBC, prednisone response,
classifier) keep hazard ratios in the published direction and size.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from etl.synth.calibration import DATA_CUTOFF, ESTIMATES, GROUPS, CohortPlan, Group
from etl.synth.sampling import FloatArray, IntArray, relative_weight, soft_key, top_k

FIVE_YEARS = 1826
# Log-hazard coefficients, tuned with lifelines fits on a few seeds so that the univariate HRs land near
# the published ones (OS: age 1.03/y, log WBC ~2, good prednisone ~0.55, high classifier ~2.9). Rank
# selection, mediation through relapse and the prednisone/WBC association make them differ from exp(beta).
BETA_OS = {"age": 0.07, "log_wbc": 0.6, "prednisone_good": -0.35, "classifier_high": 1.0}
BETA_RELAPSE = {"age": 0.0, "log_wbc": 0.45, "prednisone_good": 0.0, "classifier_high": 1.0}
BETA_MRD1_RELAPSE = 0.7
NO_CR_DEATH_SHARE = 0.9
TRM_SHARE = (0.04, 0.10)  # usual and highest share of CR patients dying in CR (treatment-related)
LATE_RELAPSE_SHARE = 0.03  # of CR patients, after 5 years
LATE_DEATH_SHARE = 0.3  # of relapsed patients still alive at 5 years
SECOND_RELAPSE_SHARE = 0.10
LOST_TO_FOLLOW_UP_SHARE = 0.05
RELAPSE_DAYS = (400.0, 0.92)  # lognormal median and sigma: 95% of relapses before 5 years
POST_RELAPSE_DAYS = (250.0, 0.8)
NO_CR_DEATH_DAYS = (120.0, 0.9)
DEATH_CAUSES = ("leukemia", "toxicity", "infection", "other")
UNKNOWN = -1
CAUSE_SHARES = {
    "induction": ((1, 2, UNKNOWN), (0.4, 0.5, 0.1)),
    "refractory": ((0, 2, 3, UNKNOWN), (0.85, 0.05, 0.05, 0.05)),
    "in_cr": ((1, 2, 3, UNKNOWN), (0.5, 0.42, 0.04, 0.04)),
    "after_relapse": ((0, 2, 1, 3, UNKNOWN), (0.85, 0.06, 0.03, 0.02, 0.04)),
}
NONE = -1


def _lognormal_below(
    rng: np.random.Generator, median: float, sigma: float, upper: FloatArray, lower: float = 1.0
) -> IntArray:
    """Whole days from a lognormal truncated to [lower, upper) by redrawing (upper > lower + 1)."""
    days = rng.lognormal(np.log(median), sigma, len(upper))
    for _ in range(100):
        bad = (days >= upper) | (days < lower)
        if not bad.any():
            break
        days[bad] = rng.lognormal(np.log(median), sigma, int(bad.sum()))
    days = np.clip(days, lower, upper - 1)
    return np.floor(days).astype(np.int64)


def _causes(rng: np.random.Generator, kind: str, n: int) -> IntArray:
    codes, shares = CAUSE_SHARES[kind]
    return rng.choice(np.array(codes, dtype=np.int64), size=n, p=shares)


class _Outcomes:
    def __init__(self, n: int) -> None:
        self.cr = np.zeros(n, dtype=np.bool_)
        self.cr_day = np.full(n, NONE, dtype=np.int64)
        self.mrd1 = np.full(n, -1, dtype=np.int8)  # 1 positive, 0 negative, -1 not evaluable
        self.mrd1_value = np.full(n, np.nan)
        self.hsct = np.zeros(n, dtype=np.bool_)
        self.hsct_day = np.full(n, NONE, dtype=np.int64)
        self.relapse_day = np.full(n, NONE, dtype=np.int64)
        self.second_relapse_day = np.full(n, NONE, dtype=np.int64)
        self.death_day = np.full(n, NONE, dtype=np.int64)
        self.death_cause = np.full(n, UNKNOWN, dtype=np.int64)
        self.last_contact_day = np.zeros(n, dtype=np.int64)
        self.lost = np.zeros(n, dtype=np.bool_)


def _linear_predictors(cohort: pl.DataFrame) -> tuple[FloatArray, FloatArray]:
    x = {
        "age": cohort["age"].to_numpy(),
        "log_wbc": np.log(cohort["wbc"].to_numpy()),
        # Unknown prednisone response counts half-way.
        "prednisone_good": cohort["prednisone"]
        .replace_strict({"good": 1.0, "poor": 0.0}, default=0.5)
        .to_numpy(),
        "classifier_high": cohort["classifier_high"].to_numpy().astype(np.float64),
    }
    lin_os = sum(BETA_OS[k] * v for k, v in x.items())
    lin_relapse = sum(BETA_RELAPSE[k] * v for k, v in x.items())
    return np.asarray(lin_os, dtype=np.float64), np.asarray(lin_relapse, dtype=np.float64)


def _event_counts(plan: CohortPlan, g: Group) -> dict[str, int]:
    """How many of each event the group gets: fixed by its 5-year OS and CIR targets."""
    n = plan.group_size[g]
    n_cr = plan.count("cr", g, "cr")
    n_no_cr = n - n_cr
    deaths_5y = round((1 - ESTIMATES["os5"][g].percent / 100) * n)
    relapses_5y = round(ESTIMATES["cir5"][g].percent / 100 * n_cr)
    no_cr_deaths = round(NO_CR_DEATH_SHARE * n_no_cr)
    trm = round(TRM_SHARE[0] * n_cr)
    missing = deaths_5y - no_cr_deaths - trm - relapses_5y
    # Deaths the relapses cannot provide come from more deaths in CR, up to the highest usual share.
    if missing > 0:
        trm = min(trm + missing, max(trm, int(TRM_SHARE[1] * n_cr)))
    late_relapses = min(round(LATE_RELAPSE_SHARE * n_cr), n_cr - relapses_5y)
    trm = min(trm, n_cr - relapses_5y - late_relapses)
    return {
        "no_cr": n_no_cr,
        "no_cr_deaths": no_cr_deaths,
        "relapses_5y": relapses_5y,
        "late_relapses": late_relapses,
        "trm": trm,
        "relapse_deaths_5y": min(relapses_5y, max(0, deaths_5y - no_cr_deaths - trm)),
    }


def _group_outcomes(
    rng: np.random.Generator,
    plan: CohortPlan,
    g: Group,
    idx: IntArray,
    lin_os: FloatArray,
    lin_relapse: FloatArray,
    weights_hsct: FloatArray,
    o: _Outcomes,
) -> None:
    k = _event_counts(plan, g)
    # Induction failure: the highest overall risk.
    z0 = lin_os[idx] - np.log(rng.exponential(size=len(idx)))
    no_cr = top_k(idx, z0, k["no_cr"])
    cr = np.setdiff1d(idx, no_cr)
    o.cr[cr] = True
    o.cr_day[cr] = rng.integers(25, 46, size=len(cr))
    refractory_dead = no_cr[: k["no_cr_deaths"]]
    o.death_day[refractory_dead] = 5 + _lognormal_below(
        rng, *NO_CR_DEATH_DAYS, np.full(len(refractory_dead), 1800.0)
    )
    early = o.death_day[refractory_dead] < 45
    o.death_cause[refractory_dead] = np.where(
        early,
        _causes(rng, "induction", len(refractory_dead)),
        _causes(rng, "refractory", len(refractory_dead)),
    )

    # MRD1 after induction: positives lean towards patients at high relapse risk.
    mrd = plan.parts["mrd1"][g]
    positive = top_k(cr, soft_key(rng, relative_weight(lin_relapse[cr])), mrd["positive"])
    rest = rng.permutation(np.setdiff1d(cr, positive))
    negative = rest[: mrd["negative"]]
    o.mrd1[positive], o.mrd1[negative] = 1, 0
    o.mrd1_value[positive] = 10.0 ** rng.uniform(-4, -1, len(positive))
    o.mrd1_value[negative] = 10.0 ** rng.uniform(-6, -4, len(negative))

    # Relapse: the k highest relapse risks among CR patients, earliest times to the highest risks.
    z1 = lin_relapse[cr] + BETA_MRD1_RELAPSE * (o.mrd1[cr] == 1) - np.log(rng.exponential(size=len(cr)))
    ranked = cr[np.argsort(-z1, kind="stable")]
    relapsed = ranked[: k["relapses_5y"]]
    late = ranked[k["relapses_5y"] : k["relapses_5y"] + k["late_relapses"]]
    times = np.sort(_lognormal_below(rng, *RELAPSE_DAYS, np.full(len(relapsed), 1800.0)))
    o.relapse_day[relapsed] = np.maximum(times, o.cr_day[relapsed] + 30)
    o.relapse_day[late] = rng.integers(FIVE_YEARS + 5, 3650, size=len(late))

    # Death in CR (treatment-related), within two years, older and higher-risk patients first.
    in_cr = ranked[k["relapses_5y"] + k["late_relapses"] :]
    trm = top_k(in_cr, soft_key(rng, relative_weight(lin_os[in_cr])), k["trm"])
    o.death_day[trm] = rng.integers(o.cr_day[trm] + 15, 731)
    o.death_cause[trm] = _causes(rng, "in_cr", len(trm))

    # Death after relapse: the highest overall risks die before 5 years, some others later.
    z2 = lin_os[relapsed] - np.log(rng.exponential(size=len(relapsed)))
    order = relapsed[np.argsort(-z2, kind="stable")]
    dying = order[: k["relapse_deaths_5y"]]
    room = (FIVE_YEARS - o.relapse_day[dying]).astype(np.float64)
    o.death_day[dying] = o.relapse_day[dying] + _lognormal_below(rng, *POST_RELAPSE_DAYS, room)
    survivors = np.concatenate([order[k["relapse_deaths_5y"] :], late])
    later = survivors[rng.random(len(survivors)) < LATE_DEATH_SHARE]
    o.death_day[later] = np.maximum(o.relapse_day[later], FIVE_YEARS) + _lognormal_below(
        rng, *POST_RELAPSE_DAYS, np.full(len(later), 3000.0)
    )
    o.death_cause[dying] = _causes(rng, "after_relapse", len(dying))
    o.death_cause[later] = _causes(rng, "after_relapse", len(later))

    # Allogeneic HSCT in first CR between day 90 and 240, only for patients still in CR and alive then.
    first_event = np.where(o.relapse_day[cr] >= 0, o.relapse_day[cr], np.iinfo(np.int64).max)
    first_event = np.minimum(first_event, np.where(o.death_day[cr] >= 0, o.death_day[cr], first_event))
    eligible = cr[first_event > 100]
    weight = weights_hsct[eligible] * np.where(o.mrd1[eligible] == 1, 2.0, 1.0)
    chosen = top_k(eligible, soft_key(rng, weight), plan.count("hsct", g, "yes"))
    o.hsct[chosen] = True
    last_possible = np.minimum(240, first_event[np.searchsorted(cr, chosen)] - 1)
    o.hsct_day[chosen] = rng.integers(90, last_possible + 1)


def _follow_up(rng: np.random.Generator, censor: IntArray, o: _Outcomes) -> None:
    """Administrative censoring at the data cut-off, second relapses, and a few patients lost to follow-up."""
    for days in (o.relapse_day, o.death_day):
        days[days > censor] = NONE
    o.death_cause[o.death_day < 0] = UNKNOWN
    dead = o.death_day >= 0
    end = np.where(dead, o.death_day, censor)
    candidates = np.flatnonzero((o.relapse_day >= 0) & (end - o.relapse_day > 180))
    n_second = min(len(candidates), round(SECOND_RELAPSE_SHARE * int((o.relapse_day >= 0).sum())))
    second = rng.choice(candidates, size=n_second, replace=False)
    o.second_relapse_day[second] = rng.integers(o.relapse_day[second] + 60, end[second] - 30)

    last_event = np.maximum.reduce(
        [o.cr_day, o.hsct_day, o.relapse_day, o.second_relapse_day, np.zeros_like(censor)]
    )
    window_start = np.maximum(last_event + 30, 180)
    alive = np.flatnonzero(~dead)
    eligible = alive[window_start[alive] < censor[alive] - 30]
    n_lost = min(len(eligible), round(LOST_TO_FOLLOW_UP_SHARE * len(alive)))
    lost = rng.choice(eligible, size=n_lost, replace=False)
    o.lost[lost] = True
    o.last_contact_day[:] = np.where(dead, o.death_day, censor)
    o.last_contact_day[lost] = rng.integers(window_start[lost], censor[lost])


def simulate_outcomes(cohort: pl.DataFrame, plan: CohortPlan, rng: np.random.Generator) -> pl.DataFrame:
    """The cohort with response, MRD1, HSCT, relapse, death and follow-up columns added."""
    n = cohort.height
    o = _Outcomes(n)
    lin_os, lin_relapse = _linear_predictors(cohort)
    status = cohort["ikzf1_status"].to_numpy()
    # Transplant in CR1 was mostly for high-risk adults (MRD1 is added per group).
    weights_hsct = np.where(cohort["is_adult"].to_numpy(), 3.0, 1.0) * np.where(
        cohort["classifier_high"].to_numpy(), 2.0, 1.0
    )
    for g in GROUPS:
        idx = np.flatnonzero(status == ("Alt" if g == "alt" else "GL"))
        _group_outcomes(rng, plan, g, idx, lin_os, lin_relapse, weights_hsct, o)
    censor = (
        cohort.select((pl.lit(DATA_CUTOFF) - pl.col("diagnosis_date")).dt.total_days()).to_series().to_numpy()
    ).astype(np.int64)
    _follow_up(rng, censor, o)

    def days(a: IntArray) -> pl.Series:
        return pl.select(
            pl.when(pl.Series(a < 0)).then(None).otherwise(pl.Series(a, dtype=pl.Int32))
        ).to_series()

    dead = o.death_day >= 0
    mrd_known = o.mrd1 >= 0
    return cohort.with_columns(
        cr=pl.Series(o.cr),
        cr_day=days(o.cr_day),
        mrd1_evaluable=pl.Series(mrd_known),
        mrd1_value=pl.Series(o.mrd1_value).fill_nan(None),
        mrd1_positive=pl.select(pl.when(pl.Series(mrd_known)).then(pl.Series(o.mrd1 == 1))).to_series(),
        hsct=pl.select(pl.when(pl.Series(o.cr)).then(pl.Series(o.hsct))).to_series(),
        hsct_day=days(o.hsct_day),
        relapse_day=days(o.relapse_day),
        second_relapse_day=days(o.second_relapse_day),
        death_day=days(o.death_day),
        death_cause=pl.Series(o.death_cause, dtype=pl.Int32).replace_strict(
            dict(enumerate(DEATH_CAUSES)), default=None, return_dtype=pl.String
        ),
        vital_status=pl.Series(np.where(dead, "dead", "alive")),
        last_contact_day=pl.Series(o.last_contact_day, dtype=pl.Int32),
        lost_to_follow_up=pl.Series(o.lost),
    )
