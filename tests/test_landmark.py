"""Against guarantee-time bias: landmark analyses (`cgdw outcomes --landmark DAYS`: the patients event-free
and under follow-up after the landmark, time counted from it; R: d <- subset(d, time > L); d$time <- d$time
- L) and time-dependent covariates (`--time-dependent COLUMN`: exposed only from the time it switches on;
R: tmerge and coxph on (tstart, tstop]). A status known only later (MRD after two cycles, a transplant)
then buys its patients no guaranteed survival. Every figure equals R, to 1e-6 (estimates) / 1e-4 (CIs, P)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from etl.analysis.cohort import read_cohort
from etl.analysis.outcomes import OutcomeResult, analyse_outcomes, suppress_small_counts
from etl.errors import CgdwError
from tests.helpers import cgdw
from tests.r_reference import run_r

LANDMARK_DAYS = 180.0
HORIZON = 3.0


def landmark_frame(warehouse: Path, time: str, status: str) -> pl.DataFrame:
    """What R gets: every patient with a group, a time and a status, before the landmark is applied."""
    frame = read_cohort(warehouse, "cohort_patient", ["ikzf1_status", time, status, "age"])
    return frame.drop_nulls([time, status, "ikzf1_status"]).select(
        pl.col(time).alias("time"), pl.col(status).alias("status"), "ikzf1_status",
        (pl.col("ikzf1_status") == "Alt").cast(pl.Int32).alias("alt"), "age",
    )  # fmt: skip


@pytest.fixture(scope="module")
def os_landmark(warehouse: Path) -> tuple[OutcomeResult, dict]:
    fitted = analyse_outcomes(
        warehouse, "os", "ikzf1_status", adjust=("age",), horizon=HORIZON, landmark_days=LANDMARK_DAYS
    ).result
    reference = run_r(
        f"""
        L <- {LANDMARK_DAYS} / 365.25
        n0 <- nrow(d)
        d <- subset(d, time > L); d$time <- d$time - L
        fit <- survfit(Surv(time, status) ~ ikzf1_status, data = d, conf.type = "log-log")
        s <- summary(fit, times = {HORIZON}, extend = TRUE)
        lr <- survdiff(Surv(time, status) ~ ikzf1_status, data = d)
        ctl <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100)
        f <- coxph(Surv(time, status) ~ alt + age, data = d, ties = "efron", control = ctl)
        k <- summary(f)$conf.int; p <- summary(f)$coefficients[, "Pr(>|z|)"]
        emit(list(n = nrow(d), dropped = n0 - nrow(d),
                  strata = sub("ikzf1_status=", "", as.character(s$strata)),
                  surv = s$surv, lower = s$lower, upper = s$upper, chisq = lr$chisq,
                  hr = unname(k[, "exp(coef)"]), lo = unname(k[, "lower .95"]),
                  hi = unname(k[, "upper .95"]), p = unname(p)))
        """,
        {"d": landmark_frame(warehouse, "os_years", "os_status")},
        packages=["survival"],
    )
    return fitted, reference


def test_landmark_km_log_rank_and_cox_equal_r_on_the_landmark_subset(
    os_landmark: tuple[object, dict],
) -> None:
    result, r = os_landmark
    assert result.patients == r["n"]
    assert (
        result.excluded[f"event or end of follow-up by the landmark (day {LANDMARK_DAYS:g})"] == r["dropped"]
    )
    estimates = {g.group: g for g in result.groups}
    for i, group in enumerate(r["strata"]):
        assert estimates[group].estimate == pytest.approx(r["surv"][i], rel=1e-6)
        assert (estimates[group].lower, estimates[group].upper) == pytest.approx(
            (r["lower"][i], r["upper"][i]), rel=1e-4
        )
    assert result.test.statistic == pytest.approx(r["chisq"], rel=1e-6)
    multi = [h for h in result.hazard_ratios if h.model == "multivariable"]
    assert [h.hr for h in multi] == pytest.approx(r["hr"], rel=1e-6)
    assert [h.lower for h in multi] == pytest.approx(r["lo"], rel=1e-4)
    assert [h.upper for h in multi] == pytest.approx(r["hi"], rel=1e-4)
    assert [h.p_value for h in multi] == pytest.approx(r["p"], rel=1e-4)


def test_landmark_cumulative_incidence_and_fine_gray_equal_cmprsk(warehouse: Path) -> None:
    result = analyse_outcomes(
        warehouse, "cir", "ikzf1_status", horizon=HORIZON, landmark_days=LANDMARK_DAYS
    ).result
    r = run_r(
        f"""
        L <- {LANDMARK_DAYS} / 365.25
        d <- subset(d, time > L); d$time <- d$time - L
        ci <- cuminc(d$time, d$status, d$ikzf1_status, cencode = 0)
        tp <- timepoints(ci, {HORIZON})
        x <- as.matrix(d[, "alt", drop = FALSE])
        f <- crr(d$time, d$status, x, failcode = 1, cencode = 0, gtol = 1e-12)
        emit(list(n = nrow(d), est = as.list(tp$est[, 1]), gray = ci$Tests["1", "stat"],
                  hr = exp(f$coef[[1]])))
        """,
        {"d": landmark_frame(warehouse, "cir_years", "cir_status")},
        packages=["cmprsk"],
    )
    assert result.patients == r["n"]
    for group in result.groups:
        assert group.estimate == pytest.approx(r["est"][f"{group.group} 1"], rel=1e-6)
    assert result.test.statistic == pytest.approx(r["gray"], rel=1e-6)
    assert result.hazard_ratios[0].hr == pytest.approx(r["hr"], rel=1e-6)


def test_the_command_says_the_landmark_and_refuses_a_negative_one(warehouse: Path) -> None:
    shown = cgdw("outcomes", "--landmark", "180", "--db", str(warehouse))
    assert shown.returncode == 0, shown.stderr
    assert "from the day-180 landmark" in shown.stdout
    assert "Excluded, event or end of follow-up by the landmark (day 180)" in shown.stdout
    with pytest.raises(CgdwError, match="--landmark must be a number of days"):
        analyse_outcomes(warehouse, "os", "ikzf1_status", landmark_days=-1)


# --- a landmark at each patient's own MRD assessment (`--landmark mrd1_pcr_day`) --------------------------


def test_a_landmark_at_each_patients_mrd_assessment_equals_r_on_that_subset(warehouse: Path) -> None:
    """Outcome by MRD status counted from the day MRD was assessed (R: the patients assessed and event-free
    after their own assessment day L_i, time - L_i), as the AML letter counts from MRD after cycle 2."""
    result = analyse_outcomes(
        warehouse, "os", "mrd1_pcr_positive", horizon=HORIZON, landmark_column="mrd1_pcr_day"
    ).result
    frame = read_cohort(
        warehouse, "cohort_patient", ["mrd1_pcr_positive", "mrd1_pcr_day", "os_years", "os_status"]
    )
    data = frame.drop_nulls(["mrd1_pcr_positive", "os_years", "os_status"]).select(
        pl.col("os_years").alias("time"), pl.col("os_status").alias("status"),
        pl.col("mrd1_pcr_positive").cast(pl.Int32).alias("positive"), pl.col("mrd1_pcr_day").alias("lm"),
    )  # fmt: skip
    r = run_r(
        f"""
        n0 <- nrow(d)
        d <- subset(d, !is.na(lm)); n1 <- nrow(d)
        d <- subset(d, time > lm / 365.25); d$time <- (round(d$time * 365.25, 6) - d$lm) / 365.25
        fit <- survfit(Surv(time, status) ~ positive, data = d, conf.type = "log-log")
        s <- summary(fit, times = {HORIZON}, extend = TRUE)
        ctl <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100)
        f <- coxph(Surv(time, status) ~ positive, data = d, ties = "efron", control = ctl)
        emit(list(unassessed = n0 - n1, dropped = n1 - nrow(d), n = nrow(d),
                  strata = sub("positive=", "", as.character(s$strata)), surv = s$surv,
                  lower = s$lower, upper = s$upper, hr = unname(exp(coef(f))),
                  p = unname(summary(f)$coefficients[, "Pr(>|z|)"])))
        """,
        {"d": data},
        packages=["survival"],
    )
    assert result.landmark_column == "mrd1_pcr_day"
    assert result.patients == r["n"] and r["unassessed"] > 0
    assert result.excluded["no mrd1_pcr_day (no landmark)"] == r["unassessed"]
    assert result.excluded["event or end of follow-up by the landmark (mrd1_pcr_day)"] == r["dropped"]
    estimates = {g.group: g for g in result.groups}
    for i, stratum in enumerate(r["strata"]):
        group = estimates["yes" if stratum == "1" else "no"]
        assert group.estimate == pytest.approx(r["surv"][i], rel=1e-6)
        assert (group.lower, group.upper) == pytest.approx((r["lower"][i], r["upper"][i]), rel=1e-4)
    assert result.hazard_ratios[0].hr == pytest.approx(r["hr"], rel=1e-6)
    assert result.hazard_ratios[0].p_value == pytest.approx(r["p"], rel=1e-4)


def test_small_exclusion_counts_are_withheld_under_min_cell(warehouse: Path) -> None:
    result = analyse_outcomes(warehouse, "os", "mrd1_pcr_positive", landmark_column="mrd1_pcr_day").result
    small = {reason: n for reason, n in result.excluded.items() if 0 < n < 50}
    assert small  # e.g. the patients without an MRD1 day
    suppressed = suppress_small_counts(result, 50)
    assert not set(small) & set(suppressed.excluded)
    assert any("Exclusion counts below 50 withheld" in note for note in suppressed.notes)


def test_the_command_takes_a_landmark_column_and_refuses_one_that_is_not_days(warehouse: Path) -> None:
    shown = cgdw(
        "outcomes", "--by", "mrd1_pcr_positive", "--landmark", "mrd1_pcr_day", "--db", str(warehouse)
    )
    assert shown.returncode == 0, shown.stderr
    assert "from each patient's landmark day mrd1_pcr_day" in " ".join(shown.stdout.split())
    with pytest.raises(CgdwError, match="a landmark column holds days from diagnosis"):
        analyse_outcomes(warehouse, "os", "ikzf1_status", landmark_column="sex")
    with pytest.raises(CgdwError, match="not both"):
        analyse_outcomes(warehouse, "os", "ikzf1_status", landmark_days=82, landmark_column="mrd1_pcr_day")
    with pytest.raises(CgdwError, match=r"holds days from diagnosis .*, not years"):
        analyse_outcomes(warehouse, "os", "ikzf1_status", landmark_column="hsct_years")
    with pytest.raises(CgdwError, match="says so in its name"):
        analyse_outcomes(warehouse, "efs", "ikzf1_status", landmark_column="efs_status")
    with pytest.raises(CgdwError, match="says so in its name"):  # a level, not a day
        analyse_outcomes(warehouse, "os", "ikzf1_status", landmark_column="mrd1_pcr_value")
    with pytest.raises(CgdwError, match="os_years is the os endpoint itself"):
        analyse_outcomes(warehouse, "os", "ikzf1_status", adjust=("os_years",))
    with pytest.raises(CgdwError, match=r"in years from diagnosis .*, not days"):
        analyse_outcomes(warehouse, "os", "ikzf1_status", time_dependent="mrd1_pcr_day")


def test_a_landmark_with_a_time_dependent_covariate_equals_tmerge_on_the_landmark_subset(
    warehouse: Path,
) -> None:
    """Event and switch times are both shifted in days, so a transplant on another patient's event day
    stays tied with it, as in a table of days."""
    result = analyse_outcomes(
        warehouse, "os", "ikzf1_status", landmark_days=LANDMARK_DAYS, time_dependent="hsct_years"
    ).result
    frame = read_cohort(warehouse, "cohort_patient", ["ikzf1_status", "os_years", "os_status", "hsct_years"])
    data = frame.drop_nulls(["os_years", "os_status", "ikzf1_status"]).select(
        pl.col("os_years").alias("time"), pl.col("os_status").alias("status"),
        (pl.col("ikzf1_status") == "Alt").cast(pl.Int32).alias("alt"), pl.col("hsct_years").alias("h"),
    )  # fmt: skip
    r = run_r(
        f"""
        L <- {LANDMARK_DAYS}
        d <- subset(d, time > L / 365.25)
        d$time <- (round(d$time * 365.25, 6) - L) / 365.25
        d$h <- (round(d$h * 365.25, 6) - L) / 365.25
        d$h[!is.na(d$h) & d$h <= 0] <- 0
        d$id <- seq_len(nrow(d))
        b <- tmerge(d[, c("id", "alt", "time")], d, id = id, death = event(time, status))
        td <- tmerge(b, d, id = id, hsct = tdc(h))
        ctl <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100)
        f <- coxph(Surv(tstart, tstop, death) ~ alt + hsct, data = td, ties = "efron", control = ctl)
        emit(list(hr = unname(exp(coef(f))), p = unname(summary(f)$coefficients[, "Pr(>|z|)"])))
        """,
        {"d": data},
        packages=["survival"],
    )
    multi = [h for h in result.hazard_ratios if h.model == "multivariable"]
    assert [h.covariate for h in multi] == ["ikzf1_status=Alt", "hsct_years(t)"]
    assert [h.hr for h in multi] == pytest.approx(r["hr"], rel=1e-6)
    assert [h.p_value for h in multi] == pytest.approx(r["p"], rel=1e-4)


# --- time-dependent covariates (`--time-dependent COLUMN`) -----------------------------------------------


def test_a_transplant_as_a_time_dependent_covariate_equals_coxph_on_tmerge(warehouse: Path) -> None:
    """HSCT in first CR switches on at its date: counted as exposed only from then on (R survival's tmerge
    and coxph(Surv(tstart, tstop, death) ~ ...)), never as exposed from diagnosis (immortal time)."""
    result = analyse_outcomes(
        warehouse, "os", "ikzf1_status", adjust=("age",), time_dependent="hsct_years"
    ).result
    frame = read_cohort(
        warehouse, "cohort_patient", ["ikzf1_status", "os_years", "os_status", "age", "hsct_years"]
    )
    data = frame.drop_nulls(["os_years", "os_status", "ikzf1_status", "age"]).select(
        pl.col("os_years").alias("time"), pl.col("os_status").alias("status"),
        (pl.col("ikzf1_status") == "Alt").cast(pl.Int32).alias("alt"), "age", pl.col("hsct_years").alias("h"),
    )  # fmt: skip
    assert data["h"].drop_nulls().len() > 20  # transplants to switch on
    r = run_r(
        """
        d$id <- seq_len(nrow(d))
        b <- tmerge(d[, c("id", "alt", "age", "time")], d, id = id, death = event(time, status))
        td <- tmerge(b, d, id = id, hsct = tdc(h))
        ctl <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100)
        out <- function(f) {
          k <- summary(f)$conf.int; p <- summary(f)$coefficients[, "Pr(>|z|)"]
          list(hr = unname(k[, "exp(coef)"]), lo = unname(k[, "lower .95"]), hi = unname(k[, "upper .95"]),
               p = unname(p))
        }
        fit <- function(f) coxph(f, data = td, ties = "efron", control = ctl)
        emit(list(uni = out(fit(Surv(tstart, tstop, death) ~ hsct)),
                  multi = out(fit(Surv(tstart, tstop, death) ~ alt + age + hsct))))
        """,
        {"d": data},
        packages=["survival"],
    )
    uni = [h for h in result.hazard_ratios if h.model == "univariable" and h.covariate == "hsct_years(t)"]
    multi = [h for h in result.hazard_ratios if h.model == "multivariable"]
    assert [h.covariate for h in multi] == ["ikzf1_status=Alt", "age", "hsct_years(t)"]
    for ours, theirs in ((uni, r["uni"]), (multi, r["multi"])):
        listed = {key: value if isinstance(value, list) else [value] for key, value in theirs.items()}
        assert [h.hr for h in ours] == pytest.approx(listed["hr"], rel=1e-6)  # (R unboxes one value)
        assert [h.lower for h in ours] == pytest.approx(listed["lo"], rel=1e-4)
        assert [h.upper for h in ours] == pytest.approx(listed["hi"], rel=1e-4)
        assert [h.p_value for h in ours] == pytest.approx(listed["p"], rel=1e-4)


def test_a_time_dependent_covariate_is_refused_where_it_does_not_apply(warehouse: Path) -> None:
    with pytest.raises(CgdwError, match="--time-dependent applies to the Cox models"):
        analyse_outcomes(warehouse, "cir", "ikzf1_status", time_dependent="hsct_years")
    with pytest.raises(CgdwError, match="a time from diagnosis in years"):
        analyse_outcomes(warehouse, "os", "ikzf1_status", time_dependent="sex")
