"""Proof on data written by others: real public cohorts, converted as published to the cBioPortal study
format (tests/published_cohorts.py: survival::myeloid and KMsurv::bmt), imported with no edited field, and
analysed by `cgdw outcomes`, equal R on R's own copy of the data.

The R side never sees our files: it loads the data sets from their R packages and computes times in years
as days / 365.25. Our side reads the months of the file (days / 30.4375, at full precision), the importer
turns them back into days and the views into years: the same numbers to the last bit or two, so no tie is
made or broken. R: survfit (log(-log) CI), survdiff, coxph (Efron ties, iterated to the maximum),
cmprsk cuminc/timepoints (Gray's test) and crr (iterated to the maximum), as tests/test_outcomes.py.

Tolerances: 1e-6 relative for estimates, test statistics and hazard ratios; 1e-4 for CIs and P values.
Each study is converted and imported once per module, into its own warehouse.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from etl.analysis.cohort import read_cohort
from etl.analysis.outcomes import OutcomeResult, analyse_outcomes
from etl.privacy import patient_key
from schema import database
from tests.helpers import TEST_KEY, cgdw, query
from tests.published_cohorts import BMT_ID, DAYS_PER_MONTH, MYELOID_ID, STUDIES
from tests.r_reference import run_r

HORIZONS = (1.0, 2.0, 5.0)  # years; every group is followed beyond 5 years in both studies
EXACT, LOOSE = 1e-6, 1e-4
Z975 = 1.959963984540054  # R qnorm(0.975)
# (study, endpoint, grouping column, the reference group: the largest)
CASES = [
    (MYELOID_ID, "os", "treatment_arm", "B"),
    (BMT_ID, "os", "disease_group", "AML low risk"),
    (BMT_ID, "dfs", "disease_group", "AML low risk"),
]
CASE_IDS = [f"{study}-{endpoint}" for study, endpoint, _, _ in CASES]


# --- the studies, written and imported once -----------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    study: Path
    db: Path
    reports: list[Any]

    @property
    def group(self) -> str:
        return f"cBioPortal:{self.study.name}"

    def file(self) -> pl.DataFrame:
        """The patient file as written (text, "" for blank), read independently of the importer."""
        lines = (self.study / "data_clinical_patient.txt").read_text().splitlines()
        rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
        return pl.DataFrame(rows[1:], schema=rows[0], orient="row")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Imported]:
    """study id -> the study written by the converter and imported into a fresh warehouse, views applied;
    each study is done once, when a test first asks for it."""
    from etl.cbioportal.importer import load_cbioportal_study
    from etl.views import apply_views

    done: dict[str, Imported] = {}

    def get(study_id: str) -> Imported:
        if study_id not in done:
            root = tmp_path_factory.mktemp(study_id)
            study = STUDIES[study_id](root / study_id)
            db = root / "warehouse.duckdb"
            database.upgrade(db)
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("CGDW_PSEUDONYM_KEY", TEST_KEY)
                reports = load_cbioportal_study(db, study, secret=TEST_KEY.encode())
                apply_views(db)
            done[study_id] = Imported(study, db, reports)
        return done[study_id]

    return get


@pytest.fixture(scope="module")
def outcome(imported: Callable[[str], Imported]) -> Callable[..., OutcomeResult]:
    """(study, endpoint, by, horizon) -> `analyse_outcomes(...).result`, fitted once."""
    done: dict[tuple[str, str, str, float], OutcomeResult] = {}

    def get(study_id: str, endpoint: str, by: str, horizon: float = 5.0) -> OutcomeResult:
        key = (study_id, endpoint, by, horizon)
        if key not in done:
            done[key] = analyse_outcomes(imported(study_id).db, endpoint, by, horizon=horizon).result
        return done[key]

    return get


# --- R on its own copy of the data --------------------------------------------------------------------------

R_SURVIVAL = f"""
horizons <- c({", ".join(map(str, HORIZONS))})
# Both sides iterate to the maximum (coxph stops at a relative change of 1e-9 by default).
ctl <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100)
survival_reference <- function(time, status, group, reference) {{
  g <- relevel(factor(group), ref = reference)
  s <- summary(survfit(Surv(time, status) ~ g, conf.type = "log-log"), times = horizons, extend = TRUE)
  all <- summary(survfit(Surv(time, status) ~ 1, conf.type = "log-log"), times = horizons, extend = TRUE)
  lr <- survdiff(Surv(time, status) ~ g)
  df <- nlevels(g) - 1
  # The groups against the reference, in one model (a K-level factor is K - 1 indicators together).
  cox <- summary(coxph(Surv(time, status) ~ g, ties = "efron", control = ctl))
  k <- cox$conf.int
  hr <- lapply(setNames(seq_len(nrow(k)), sub("^g", "", rownames(k))), function(i)
    c(k[i, "exp(coef)"], k[i, "lower .95"], k[i, "upper .95"], cox$coefficients[i, "Pr(>|z|)"]))
  list(strata = sub("^g=", "", as.character(s$strata)), time = s$time, surv = s$surv, lower = s$lower,
       upper = s$upper, n = as.list(table(g)), events = as.list(tapply(status, g, sum)),
       all = list(time = all$time, surv = all$surv, lower = all$lower, upper = all$upper),
       chisq = lr$chisq, df = df, p = pchisq(lr$chisq, df, lower.tail = FALSE), hr = hr)
}}
"""

R_MYELOID = """
d <- survival::myeloid
out <- list(os = survival_reference(d$futime / 365.25, d$death, d$trt, "B"))
# CIR: patients in CR (crtime given); relapse (1) at rltime, else death (2) or censoring (0) at futime.
k <- d[!is.na(d$crtime), ]
relapsed <- !is.na(k$rltime)
time <- ifelse(relapsed, k$rltime, k$futime) / 365.25
status <- ifelse(relapsed, 1, ifelse(k$death == 1, 2, 0))
ci <- cuminc(time, status, k$trt, cencode = 0)
tp <- timepoints(ci, horizons)
all <- timepoints(cuminc(time, status, cencode = 0), horizons)
# crr stops at a gradient of 1e-6 by default: iterate to the maximum. From coef and var: summary.crr rounds.
fit <- crr(time, status, cbind(A = as.integer(k$trt == "A")), failcode = 1, cencode = 0, gtol = 1e-12)
se <- sqrt(diag(fit$var))
out$cir <- list(
  rows = rownames(tp$est), est = tp$est, var = tp$var, all_est = all$est[1, ], all_var = all$var[1, ],
  n = as.list(table(k$trt)), events = as.list(tapply(status == 1, k$trt, sum)),
  gray = ci$Tests["1", "stat"], gray_p = ci$Tests["1", "pv"], gray_df = ci$Tests["1", "df"],
  hr = list(A = c(exp(fit$coef[[1]]), exp(fit$coef[[1]] - qnorm(0.975) * se[[1]]),
                  exp(fit$coef[[1]] + qnorm(0.975) * se[[1]]), 2 * pnorm(-abs(fit$coef[[1]] / se[[1]])))))
emit(out)
"""

R_BMT = """
data(bmt, package = "KMsurv", envir = environment())
group <- c("ALL", "AML low risk", "AML high risk")[bmt$group]
emit(list(os = survival_reference(bmt$t1 / 365.25, bmt$d1, group, "AML low risk"),
          dfs = survival_reference(bmt$t2 / 365.25, bmt$d3, group, "AML low risk")))
"""


@pytest.fixture(scope="module")
def r_reference() -> Callable[[str], dict[str, Any]]:
    """study id -> what R computes on the package's data set (one Rscript run per study, when first asked)."""
    done: dict[str, dict[str, Any]] = {}

    def get(study_id: str) -> dict[str, Any]:
        if study_id not in done:
            if study_id == MYELOID_ID:
                done[study_id] = run_r(R_SURVIVAL + R_MYELOID, packages=["survival", "cmprsk"])
            else:
                done[study_id] = run_r(R_SURVIVAL + R_BMT, packages=["survival", "KMsurv"])
        return done[study_id]

    return get


# --- the import: every patient, every value -----------------------------------------------------------------


@pytest.mark.parametrize("study_id", [MYELOID_ID, BMT_ID])
def test_every_patient_of_the_file_is_a_row_of_cohort_patient(
    imported: Callable[[str], Imported], study_id: str
) -> None:
    study = imported(study_id)
    patients = study.file().height
    assert patients == {MYELOID_ID: 646, BMT_ID: 137}[study_id]
    assert [r.rows_rejected for r in study.reports] == [0]
    in_view = query(study.db, "SELECT count(*), count(DISTINCT patient_id) FROM cohort_patient")
    assert in_view == [(patients, patients)]
    assert query(study.db, "SELECT DISTINCT trial_group FROM cohort_patient") == [(study.group,)]


def cohort_by_file_row(study: Imported, columns: list[str]) -> pl.DataFrame:
    """The file's rows joined to cohort_patient by the pseudonymous key of their PATIENT_ID."""
    rows = read_cohort(study.db, "cohort_patient", ["patient_key", *columns])
    keys = study.file().with_columns(
        pl.col("PATIENT_ID")
        .map_elements(lambda i: patient_key(TEST_KEY.encode(), study.group, i), return_dtype=pl.String)
        .alias("patient_key")
    )
    joined = keys.join(rows, on="patient_key", how="left", validate="1:1")
    assert joined.height == rows.height == keys.height
    return joined


def months_as_years(column: str) -> pl.Expr:
    return pl.col(column).replace("", None).cast(pl.Float64) * DAYS_PER_MONTH / 365.25


def status_number(column: str) -> pl.Expr:
    return pl.col(column).replace("", None).str.slice(0, 1).cast(pl.Int64)


def assert_same(joined: pl.DataFrame, mine: str, expected: pl.Expr, rel: float = 0.0) -> None:
    """`mine` (a cohort_patient column) equals `expected` row by row, NULL where it is NULL."""
    frame = joined.select(pl.col(mine).alias("mine"), expected.alias("expected"), "PATIENT_ID")
    assert (frame["mine"].is_null() == frame["expected"].is_null()).all(), (mine, frame.filter(
        pl.col("mine").is_null() != pl.col("expected").is_null()).head())  # fmt: skip
    both = frame.drop_nulls(["mine", "expected"])
    if rel:
        worst = (both["mine"].cast(pl.Float64) / both["expected"].cast(pl.Float64) - 1).abs().max()
        assert both.is_empty() or (worst or 0.0) <= rel, (mine, worst)
    else:
        differ = both.filter(pl.col("mine") != pl.col("expected"))
        assert differ.is_empty(), (mine, differ.head())


def test_myeloid_values_arrive_as_published(imported: Callable[[str], Imported]) -> None:
    """Endpoints to the last bits (months x 30.4375 / 365.25), attributes exactly as written: numbers as
    the doubles of their text, booleans, strings; CIR from COMPLETE_REMISSION and the DFS recurrences."""
    study = imported(MYELOID_ID)
    columns = ["sex", "treatment_arm", "complete_remission", "cr_months", "transplant_months",
               "relapse_months", "os_years", "os_status", "dfs_years", "dfs_status", "cir_years",
               "cir_status"]  # fmt: skip
    joined = cohort_by_file_row(study, columns)
    assert_same(joined, "sex", pl.col("SEX").replace_strict({"Female": "F", "Male": "M"}))
    assert_same(joined, "treatment_arm", pl.col("TREATMENT_ARM"))
    assert_same(joined, "complete_remission", pl.col("COMPLETE_REMISSION") == "TRUE")
    for name in ("CR_MONTHS", "TRANSPLANT_MONTHS", "RELAPSE_MONTHS"):
        assert_same(joined, name.lower(), pl.col(name).replace("", None).cast(pl.Float64))
    assert_same(joined, "os_years", months_as_years("OS_MONTHS"), rel=1e-14)
    assert_same(joined, "os_status", status_number("OS_STATUS"))
    assert_same(joined, "dfs_years", months_as_years("DFS_MONTHS"), rel=1e-14)
    assert_same(joined, "dfs_status", status_number("DFS_STATUS"))
    in_cr = pl.col("COMPLETE_REMISSION") == "TRUE"
    relapsed = pl.col("DFS_STATUS").str.starts_with("1:")
    assert_same(
        joined,
        "cir_years",
        pl.when(in_cr).then(pl.when(relapsed).then(months_as_years("DFS_MONTHS")).otherwise(
            months_as_years("OS_MONTHS"))),
        rel=1e-14,
    )  # fmt: skip
    assert_same(
        joined,
        "cir_status",
        pl.when(in_cr).then(pl.when(relapsed).then(1).when(pl.col("OS_STATUS") == "1:DECEASED").then(2)
                            .otherwise(0)),
    )  # fmt: skip
    # The converter's choices, checked on the data: 454 in CR; 20 relapses without a CR stay out of DFS.
    assert joined.filter(in_cr).height == 454
    assert joined.filter(~in_cr & (pl.col("RELAPSE_MONTHS") != "")).height == 20


def test_bmt_values_arrive_as_published(imported: Callable[[str], Imported]) -> None:
    study = imported(BMT_ID)
    others = ["ta", "da", "tc", "dc", "tp", "dp", "z2", "z4", "z5", "z6", "z7", "z8", "z9", "z10"]
    columns = ["sex", "age", "disease_group", "relapse", *others, "os_years", "os_status", "dfs_years",
               "dfs_status"]  # fmt: skip
    joined = cohort_by_file_row(study, columns)
    assert_same(joined, "sex", pl.col("SEX").replace_strict({"Female": "F", "Male": "M"}))
    assert_same(joined, "age", pl.col("AGE").cast(pl.Float64))
    assert_same(joined, "disease_group", pl.col("DISEASE_GROUP"))
    assert_same(joined, "relapse", pl.col("RELAPSE") == "TRUE")
    for name in others:
        assert_same(joined, name, pl.col(name.upper()).cast(pl.Float64))
    assert_same(joined, "os_years", months_as_years("OS_MONTHS"), rel=1e-14)
    assert_same(joined, "os_status", status_number("OS_STATUS"))
    assert_same(joined, "dfs_years", months_as_years("DFS_MONTHS"), rel=1e-14)
    assert_same(joined, "dfs_status", status_number("DFS_STATUS"))
    assert joined["DISEASE_GROUP"].value_counts().sort("DISEASE_GROUP").rows() == [
        ("ALL", 38), ("AML high risk", 45), ("AML low risk", 54),
    ]  # fmt: skip


def test_a_dfs_event_that_is_not_a_recurrence_is_not_a_relapse(imported: Callable[[str], Imported]) -> None:
    """bmt's DFS event is "1:Relapsed or died": 41 of its 83 events are deaths without relapse (RELAPSE
    FALSE). Read by its number it is a DFS event; it must not become a relapse of the warehouse."""
    study = imported(BMT_ID)
    endpoint = max(
        (name for (name,) in query(study.db, "SELECT view_name FROM duckdb_views() WHERE view_name "
                                             "SIMILAR TO 'endpoint_v[0-9]+'")),
        key=lambda name: int(name.rsplit("_v", 1)[1]),
    )  # fmt: skip
    relapses = query(
        study.db,
        f"""SELECT c.relapse, count(*) FROM {endpoint} AS e JOIN cohort_patient AS c USING (patient_id)
            WHERE e.first_relapse_day IS NOT NULL GROUP BY ALL ORDER BY ALL""",
    )
    assert all(relapse for relapse, _ in relapses), relapses


def test_the_studies_pass_the_format_rules_but_have_no_sample_file(tmp_path: Path) -> None:
    """The converter writes what cBioPortal's rules accept (etl/cbioportal/checker.py); these cohorts have
    no sample, so there is no sample file, which a portal would ask for and cgdw does not need."""
    from etl.cbioportal.checker import check_cbioportal_study

    for study_id, write in STUDIES.items():
        assert check_cbioportal_study(write(tmp_path / study_id)) == [
            "no meta file for CLINICAL/SAMPLE_ATTRIBUTES"
        ]


# --- Kaplan-Meier, log-rank, Cox against survival -----------------------------------------------------------


@pytest.mark.parametrize("horizon", HORIZONS)
@pytest.mark.parametrize(("study_id", "endpoint", "by", "reference"), CASES, ids=CASE_IDS)
def test_kaplan_meier_matches_survfit(
    outcome: Callable[..., OutcomeResult],
    r_reference: Callable[[str], dict[str, Any]],
    study_id: str,
    endpoint: str,
    by: str,
    reference: str,
    horizon: float,
) -> None:
    """Per group and overall, the estimate at the horizon (1e-6) and its log(-log) CI (1e-4)."""
    result = outcome(study_id, endpoint, by, horizon)
    r = r_reference(study_id)[endpoint]
    assert sorted(g.group for g in result.groups) == sorted(r["n"])
    for group in result.groups:
        assert (group.n, group.events) == (r["n"][group.group], r["events"][group.group])
        i = next(j for j, (s, t) in enumerate(zip(r["strata"], r["time"], strict=True))
                 if s == group.group and t == horizon)  # fmt: skip
        assert group.estimate == pytest.approx(r["surv"][i], rel=EXACT), group.group
        assert (group.lower, group.upper) == pytest.approx((r["lower"][i], r["upper"][i]), rel=LOOSE)
    i = r["all"]["time"].index(horizon)
    overall = result.overall
    assert overall.estimate == pytest.approx(r["all"]["surv"][i], rel=EXACT)
    assert (overall.lower, overall.upper) == pytest.approx(
        (r["all"]["lower"][i], r["all"]["upper"][i]), rel=LOOSE
    )
    assert result.patients == sum(r["n"].values()) and result.reference == reference


@pytest.mark.parametrize(("study_id", "endpoint", "by", "reference"), CASES, ids=CASE_IDS)
def test_log_rank_matches_survdiff(
    outcome: Callable[..., OutcomeResult],
    r_reference: Callable[[str], dict[str, Any]],
    study_id: str,
    endpoint: str,
    by: str,
    reference: str,
) -> None:
    test = outcome(study_id, endpoint, by).test
    r = r_reference(study_id)[endpoint]
    assert (test.name, test.df) == ("log-rank test", r["df"])
    assert test.statistic == pytest.approx(r["chisq"], rel=EXACT)
    assert test.p_value == pytest.approx(r["p"], rel=LOOSE)


def assert_hazard_ratios(result: OutcomeResult, by: str, reference: dict[str, list[float]]) -> None:
    """Every group against the reference group: HR (1e-6), 95% CI and P (1e-4)."""
    found = {h.covariate: h for h in result.hazard_ratios if h.model == "univariable"}
    assert sorted(found) == sorted(f"{by}={group}" for group in reference)
    for group, (hr, lower, upper, p) in reference.items():
        mine = found[f"{by}={group}"]
        assert mine.hr == pytest.approx(hr, rel=EXACT), group
        assert (mine.lower, mine.upper) == pytest.approx((lower, upper), rel=LOOSE), group
        assert mine.p_value == pytest.approx(p, rel=LOOSE), group


@pytest.mark.parametrize(("study_id", "endpoint", "by", "reference"), CASES, ids=CASE_IDS)
def test_cox_hazard_ratios_match_coxph(
    outcome: Callable[..., OutcomeResult],
    r_reference: Callable[[str], dict[str, Any]],
    study_id: str,
    endpoint: str,
    by: str,
    reference: str,
) -> None:
    """coxph with the grouping as a factor against the reference group (one model, K - 1 indicators)."""
    assert_hazard_ratios(outcome(study_id, endpoint, by), by, r_reference(study_id)[endpoint]["hr"])


# --- CIR on myeloid: cuminc, Gray's test, crr ---------------------------------------------------------------


@pytest.mark.parametrize("horizon", HORIZONS)
def test_cumulative_incidence_of_relapse_matches_cuminc(
    outcome: Callable[..., OutcomeResult], r_reference: Callable[[str], dict[str, Any]], horizon: float
) -> None:
    """Among the 454 patients in CR: per arm and overall, the estimate at the horizon (1e-6) and the
    log(-log) CI from cuminc's variance (1e-4)."""
    result = outcome(MYELOID_ID, "cir", "treatment_arm", horizon)
    r = r_reference(MYELOID_ID)["cir"]
    column = HORIZONS.index(horizon)
    assert result.patients == 454 and result.reference == "B"

    def check(estimate: Any, est: float, var: float, what: str) -> None:
        assert estimate.estimate == pytest.approx(est, rel=EXACT), what
        half = Z975 * math.sqrt(var) / (est * math.log(est))
        bounds = sorted((est ** math.exp(half), est ** math.exp(-half)))
        assert (estimate.lower, estimate.upper) == pytest.approx(bounds, rel=LOOSE), what

    for group in result.groups:
        assert (group.n, group.events) == (r["n"][group.group], r["events"][group.group])
        row = r["rows"].index(f"{group.group} 1")
        check(group, r["est"][row][column], r["var"][row][column], group.group)
    check(result.overall, r["all_est"][column], r["all_var"][column], "Total")


def test_grays_test_matches_cuminc(
    outcome: Callable[..., OutcomeResult], r_reference: Callable[[str], dict[str, Any]]
) -> None:
    test = outcome(MYELOID_ID, "cir", "treatment_arm").test
    r = r_reference(MYELOID_ID)["cir"]
    assert (test.name, test.df) == ("Gray's test", r["gray_df"])
    assert test.statistic == pytest.approx(r["gray"], rel=EXACT)
    assert test.p_value == pytest.approx(r["gray_p"], rel=LOOSE)


def test_fine_gray_hazard_ratio_matches_crr(
    outcome: Callable[..., OutcomeResult], r_reference: Callable[[str], dict[str, Any]]
) -> None:
    result = outcome(MYELOID_ID, "cir", "treatment_arm")
    assert_hazard_ratios(result, "treatment_arm", r_reference(MYELOID_ID)["cir"]["hr"])


# --- the command --------------------------------------------------------------------------------------------


def test_cgdw_outcomes_by_treatment_arm_prints(
    imported: Callable[[str], Imported], r_reference: Callable[[str], dict[str, Any]]
) -> None:
    """`cgdw outcomes --by treatment_arm` on the imported study, as a user runs it: the table prints, and
    the JSON carries R's log-rank statistic."""
    db = str(imported(MYELOID_ID).db)
    shown = cgdw("outcomes", "--db", db, "--endpoint", "os", "--by", "treatment_arm")
    assert shown.returncode == 0, shown.stderr
    # The study's attribute dictionary names the column: "Treatment Arm: A" (JSON keeps treatment_arm=A).
    assert "Treatment Arm: A" in shown.stdout and "317" in shown.stdout and "329" in shown.stdout
    as_json = cgdw("outcomes", "--db", db, "--endpoint", "cir", "--by", "treatment_arm", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["test"]["statistic"] == pytest.approx(r_reference(MYELOID_ID)["cir"]["gray"], rel=EXACT)
