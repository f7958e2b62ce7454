"""The synthetic cohort generator (etl.synth): what it promises, checked on the files it writes.

The generator reproduces the seed letter's cohort (IKZF1 in T-ALL, Table 1) exactly at 476 patients,
scales it to any size, and writes the raw GRAALL / FRALLE / lab exports in the layouts the loader
reads, plus truth.parquet with every latent value.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import fastexcel
import numpy as np
import polars as pl
import pytest

from etl.layouts import load_layout
from etl.synth import SynthResult, write_synthetic_cohort
from etl.synth.calibration import (
    CLASSIFIER_COUNTS,
    EPIGENETIC_MUTATIONS,
    ESTIMATES,
    GROUPS,
    HAZARD_RATIOS,
    IKZF1_CLASSES,
    MEDIANS,
    TABLE1_COUNTS,
    TCR_GROUPS,
    Count,
    Group,
    plan_cohort,
)

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
STATUS: dict[Group, str] = {"alt": "Alt", "gl": "GL"}
ONC_COLUMNS = {
    "tlx1": "onc_tlx1",
    "tlx3": "onc_tlx3",
    "sil_tal1": "onc_sil_tal1",
    "calm_af10": "onc_calm_af10",
}


@pytest.fixture(scope="module")
def truth(cohort: SynthResult) -> pl.DataFrame:
    return pl.read_parquet(cohort.files["truth"])


def table1_from_truth(truth: pl.DataFrame) -> dict[str, dict[Group, Count]]:
    """Recompute every count row of Table 1 from truth.parquet, the way an analyst would."""
    four = [pl.col(c).is_in(["positive", "negative"]) for c in ONC_COLUMNS]
    onc_evaluable = pl.all_horizontal(four)
    everyone = pl.col("source_patient_id").is_not_null()
    rows: dict[str, tuple[pl.Expr, pl.Expr]] = {
        "adult": (pl.col("is_adult"), everyone),
        "male": (pl.col("sex") == "M", everyone),
        "cns": (pl.col("cns"), pl.col("cns").is_not_null()),
        "etp": (pl.col("etp"), pl.col("etp").is_not_null()),
        **{
            f"tcr_{group}": (pl.col("tcr_status").is_in(codes), pl.col("tcr_status").is_not_null())
            for group, codes in TCR_GROUPS.items()
        },
        **{row: (pl.col(c) == "positive", onc_evaluable) for c, row in ONC_COLUMNS.items()},
        "onc_none": (pl.all_horizontal([pl.col(c) == "negative" for c in ONC_COLUMNS]), onc_evaluable),
        "hoxa": (pl.col("hoxa") == "positive", pl.col("hoxa").is_in(["positive", "negative"])),
        "classifier_high": (pl.col("classifier_high"), everyone),
        "notch1_fbxw7": (pl.col("notch1_mut") | pl.col("fbxw7_mut"), everyone),
        "ras": (pl.col("kras_mut") | pl.col("nras_mut"), everyone),
        "pten": (pl.col("pten_mut") | pl.col("pten_del"), everyone),
        "cr": (pl.col("cr"), everyone),
        "pred_good": (pl.col("prednisone") == "good", pl.col("prednisone").is_not_null()),
        "mrd1_pos": (pl.col("mrd1_positive"), pl.col("mrd1_evaluable")),
        "hsct": (pl.col("hsct"), pl.col("cr")),
    }
    out: dict[str, dict[Group, Count]] = {"total": {}}
    for g in GROUPS:
        t = truth.filter(pl.col("ikzf1_status") == STATUS[g])
        out["total"][g] = Count(t.height, truth.height)
        for row, (event, denom) in rows.items():
            d = denom.fill_null(False)
            n, total = t.select((event.fill_null(False) & d).sum().alias("n"), d.sum().alias("denom")).row(0)
            out.setdefault(row, {})[g] = Count(int(n), int(total))
    return out


def read_reference_table1() -> pl.DataFrame:
    return pl.read_csv(
        REFERENCE / "table1_published.tsv", separator="\t", comment_prefix="#", infer_schema=False
    )


def read_delimited(path: Path, encoding: str, separator: str) -> pl.DataFrame:
    text = path.read_bytes().decode(encoding)
    return pl.read_csv(io.BytesIO(text.encode()), separator=separator, infer_schema=False)


def normalised(column: str) -> pl.Expr:
    """Source codes are matched after trimming, case-insensitively (the layouts say so)."""
    return pl.col(column).str.strip_chars().str.to_uppercase()


# --- Determinism -----------------------------------------------------------------------------------


def test_the_same_seed_writes_byte_identical_files(cohort: SynthResult, tmp_path: Path) -> None:
    again = write_synthetic_cohort(tmp_path, seed=1)
    for key in ("graall", "fralle", "lab"):
        assert again.files[key].read_bytes() == cohort.files[key].read_bytes(), key


def test_another_seed_writes_another_cohort(cohort: SynthResult, tmp_path: Path) -> None:
    other = write_synthetic_cohort(tmp_path, seed=2)
    for key in ("graall", "lab"):
        assert other.files[key].read_bytes() != cohort.files[key].read_bytes(), key


# --- The embedded calibration is the published Table 1 ---------------------------------------------


def test_embedded_counts_equal_the_published_table1() -> None:
    for row in read_reference_table1().filter(pl.col("kind") == "count").iter_rows(named=True):
        ours = TABLE1_COUNTS[row["row"]]
        assert ours["alt"] == Count(int(row["alt"]), int(row["alt_denom"])), row["row"]
        assert ours["gl"] == Count(int(row["gl"]), int(row["gl_denom"])), row["row"]
        total_n = ours["alt"].n + ours["gl"].n
        total_denom = 476 if row["row"] == "total" else ours["alt"].denom + ours["gl"].denom
        assert (total_n, total_denom) == (int(row["total"]), int(row["total_denom"])), row["row"]


def test_embedded_medians_and_estimates_equal_the_published_table1() -> None:
    reference = read_reference_table1()
    for row in reference.filter(pl.col("kind") == "median").iter_rows(named=True):
        for group in ("alt", "gl", "total"):
            low, high = (float(v) for v in row[f"{group}_denom"].split("-"))
            expected = (float(row[group]), low, high)
            ours = MEDIANS[row["row"]][group]
            assert (ours.median, ours.low, ours.high) == expected, (row["row"], group)
    for row in reference.filter(pl.col("kind") == "estimate").iter_rows(named=True):
        for group in ("alt", "gl", "total"):
            low, high = (float(v) for v in row[f"{group}_denom"].split("-"))
            estimate = ESTIMATES[row["row"]][group]  # type: ignore[index]
            assert (estimate.percent, estimate.ci_low, estimate.ci_high) == (float(row[group]), low, high)


def test_embedded_hazard_ratios_equal_the_published_ones() -> None:
    published = pl.read_csv(
        REFERENCE / "hazard_ratios_published.tsv", separator="\t", comment_prefix="#", infer_schema=False
    )
    ours = {(h.endpoint, h.covariate): h for h in HAZARD_RATIOS}
    assert len(ours) == published.height
    for row in published.iter_rows(named=True):
        hr = ours[(row["endpoint"], row["covariate"])]
        assert hr.uni_hr == float(row["uni_hr"])
        assert hr.multi_hr == (float(row["multi_hr"]) if row["multi_hr"] else None)


def test_the_plan_at_476_patients_is_exactly_the_published_cohort() -> None:
    plan = plan_cohort(476)
    assert plan.table1() == TABLE1_COUNTS
    assert plan.parts["classifier"] == CLASSIFIER_COUNTS
    assert sum(plan.protocol_adults.values()) == 215


# --- truth.parquet reproduces the letter ------------------------------------------------------------


def test_truth_reproduces_every_table1_count(truth: pl.DataFrame) -> None:
    assert table1_from_truth(truth) == TABLE1_COUNTS


def test_truth_has_the_trials_of_the_letter(truth: pl.DataFrame) -> None:
    by_protocol = dict(truth.group_by("protocol_code").len().iter_rows())
    assert by_protocol["FRALLE-2000"] == 261
    assert by_protocol["GRAALL-2003"] + by_protocol["GRAALL-2005"] == 215
    assert 0.35 < by_protocol["GRAALL-2003"] / 215 < 0.55
    assert truth["source_patient_id"].n_unique() == 476
    graall = truth.filter(pl.col("trial_group") == "GRAALL")
    assert graall["source_patient_id"].str.contains(r"^G0[35]-\d{5}$").all()
    assert graall["age"].is_between(15, 59.9).all()
    fralle = truth.filter(pl.col("trial_group") == "FRALLE")
    assert fralle["source_patient_id"].str.contains(r"^FR2000-\d{4}$").all()
    assert fralle["age"].is_between(1, 19).all()
    assert (truth["consent_status"] == "given").all() and (truth["diagnosis"] == "T-ALL").all()


def test_medians_and_ranges_are_the_published_ones(truth: pl.DataFrame) -> None:
    for variable in ("age", "wbc"):
        for g in GROUPS:
            values = truth.filter(pl.col("ikzf1_status") == STATUS[g])[variable]
            target = MEDIANS[variable][g]
            assert (values.median(), values.min(), values.max()) == (target.median, target.low, target.high)
        total = MEDIANS[variable]["total"]
        assert abs(float(truth[variable].median()) - total.median) <= 0.05 * total.median  # type: ignore[arg-type]


def test_the_classifier_is_high_unless_notch1_fbxw7_without_ras_or_pten(truth: pl.DataFrame) -> None:
    low = (pl.col("notch1_mut") | pl.col("fbxw7_mut")) & ~(pl.col("kras_mut") | pl.col("nras_mut"))
    low = low & ~(pl.col("pten_mut") | pl.col("pten_del"))
    assert truth.select((pl.col("classifier_high") == ~low).all()).item()


def test_ikzf1_alterations_are_16_deletions_and_10_mutations_never_both(truth: pl.DataFrame) -> None:
    alt = truth.filter(pl.col("ikzf1_status") == "Alt")
    assert dict(alt.group_by("ikzf1_alteration").len().iter_rows()) == {"deletion": 16, "mutation": 10}
    classes = alt.select(pl.coalesce("ikzf1_deletion_class", "ikzf1_mutation_class"))
    assert dict(classes.to_series().value_counts().iter_rows()) == IKZF1_CLASSES
    assert alt.filter(
        pl.col("ikzf1_deletion_class").is_not_null() & pl.col("ikzf1_mutation_class").is_not_null()
    ).is_empty()
    pan = alt.filter(pl.col("ikzf1_deletion_class") == "pan_genic")
    assert (pan["ikzf1_deletion_first_exon"] == 1).all() and (pan["ikzf1_deletion_last_exon"] == 8).all()
    hotspot = alt.filter(pl.col("ikzf1_mutation_class") == "hotspot_missense")
    assert hotspot["ikzf1_protein_change"].is_in(["p.N159S", "p.N159T"]).all()
    assert (hotspot["ikzf1_mutation_exon"] == 5).all()
    truncating = alt.filter(pl.col("ikzf1_mutation_class").is_in(["frameshift", "nonsense"]))
    assert truncating["ikzf1_mutation_exon"].is_between(3, 8).all()
    assert truth.filter(pl.col("ikzf1_status") == "GL")["ikzf1_alteration"].is_null().all()


def test_epigenetic_mutations_match_the_text(truth: pl.DataFrame) -> None:
    for gene, counts in EPIGENETIC_MUTATIONS.items():
        for g in GROUPS:
            n = truth.filter(pl.col("ikzf1_status") == STATUS[g])[f"{gene}_mut"].sum()
            assert Count(int(n), counts[g].denom) == counts[g], (gene, g)


def test_etp_positive_patients_are_tcr_immature(truth: pl.DataFrame) -> None:
    etp = truth.filter(pl.col("etp").fill_null(False))
    assert etp["tcr_status"].is_in(TCR_GROUPS["immature"]).all()


def test_mrd1_is_positive_from_1e_minus_4_and_only_after_cr(truth: pl.DataFrame) -> None:
    evaluable = truth.filter(pl.col("mrd1_evaluable"))
    assert evaluable["cr"].all()
    assert (evaluable["mrd1_positive"] == (evaluable["mrd1_value"] >= 1e-4)).all()
    assert evaluable["mrd1_value"].is_between(1e-6, 1e-1).all()
    assert truth.filter(~pl.col("mrd1_evaluable"))["mrd1_value"].is_null().all()


def test_event_days_follow_the_course_of_the_disease(truth: pl.DataFrame) -> None:
    days = ["cr_day", "hsct_day", "relapse_day", "second_relapse_day", "death_day"]
    latest = pl.max_horizontal([pl.col(d).fill_null(0) for d in days])
    checks = {
        "every day >= 0": pl.all_horizontal([pl.col(d).fill_null(0) >= 0 for d in days]),
        "CR on day 25-45": pl.col("cr_day").is_null() | pl.col("cr_day").is_between(25, 45),
        "CR day only with CR": pl.col("cr_day").is_not_null() == pl.col("cr"),
        "relapse only after CR": pl.col("relapse_day").is_null()
        | (pl.col("relapse_day") >= pl.col("cr_day")),
        "HSCT on day 90-240": pl.col("hsct_day").is_null() | pl.col("hsct_day").is_between(90, 240),
        "HSCT known only for CR": pl.col("hsct").is_null() == ~pl.col("cr"),
        "HSCT before relapse": pl.col("hsct_day").is_null()
        | (pl.col("hsct_day") < pl.col("relapse_day").fill_null(10**6)),
        "second relapse after the first": pl.col("second_relapse_day").is_null()
        | (pl.col("second_relapse_day") > pl.col("relapse_day")),
        "death last": pl.col("death_day").is_null() | (pl.col("death_day") >= latest),
        "last contact = death": pl.col("death_day").is_null()
        | (pl.col("last_contact_day") == pl.col("death_day")),
        "last contact last": pl.col("last_contact_day") >= latest,
        "vital status": (pl.col("vital_status") == "dead") == pl.col("death_day").is_not_null(),
        "cause only for the dead": pl.col("death_cause").is_null() | pl.col("death_day").is_not_null(),
    }
    failed = [name for name, check in checks.items() if not truth.select(check.all()).item()]
    assert failed == []
    cutoff = truth.select((pl.date(2016, 12, 31) - pl.col("diagnosis_date")).dt.total_days()).to_series()
    assert (truth["last_contact_day"] <= cutoff).all()
    assert 0.02 < truth["lost_to_follow_up"].mean() < 0.08  # type: ignore[operator]


def _five_year_os(t: pl.DataFrame) -> float:
    """Kaplan-Meier overall survival at 5 years (1826 days)."""
    time, dead = t["last_contact_day"].to_numpy(), t["death_day"].is_not_null().to_numpy()
    survival = 1.0
    for day in np.unique(time[dead & (time <= 1826)]):
        at_risk = (time >= day).sum()
        survival *= 1 - (dead & (time == day)).sum() / at_risk
    return survival


def _five_year_cir(t: pl.DataFrame) -> float:
    """Aalen-Johansen cumulative incidence of relapse at 5 years among CR patients, death in CR competing."""
    t = t.filter(pl.col("cr"))
    time = t.select(pl.coalesce("relapse_day", "death_day", "last_contact_day")).to_series().to_numpy()
    relapse = t["relapse_day"].is_not_null().to_numpy()
    death = t["death_day"].is_not_null().to_numpy() & ~relapse
    free, incidence = 1.0, 0.0
    for day in np.unique(time[(relapse | death) & (time <= 1826)]):
        at_risk = (time >= day).sum()
        relapses, deaths = (relapse & (time == day)).sum(), (death & (time == day)).sum()
        incidence += free * relapses / at_risk
        free *= 1 - (relapses + deaths) / at_risk
    return incidence


def test_outcomes_hit_the_published_five_year_estimates(truth: pl.DataFrame) -> None:
    for g in GROUPS:
        t = truth.filter(pl.col("ikzf1_status") == STATUS[g])
        assert _five_year_os(t) == pytest.approx(ESTIMATES["os5"][g].percent / 100, abs=0.03), g
        assert _five_year_cir(t) == pytest.approx(ESTIMATES["cir5"][g].percent / 100, abs=0.03), g


def test_prognostic_factors_point_the_published_way(truth: pl.DataFrame) -> None:
    def os_ratio(worse: pl.Expr) -> float:
        return (1 - _five_year_os(truth.filter(worse))) / (1 - _five_year_os(truth.filter(~worse)))

    assert os_ratio(pl.col("classifier_high")) > 1.5
    assert os_ratio(pl.col("prednisone") == "poor") > 1.2
    assert os_ratio(pl.col("wbc") > pl.col("wbc").median()) > 1.2
    assert os_ratio(pl.col("age") > 30) > 1.2


# --- Scaling -------------------------------------------------------------------------------------


def test_ten_times_the_patients_gives_ten_times_every_count(tmp_path: Path) -> None:
    result = write_synthetic_cohort(tmp_path, seed=3, patients=4760)
    counts = table1_from_truth(pl.read_parquet(result.files["truth"]))
    assert counts == {
        row: {g: Count(10 * c.n, 10 * c.denom) for g, c in by_group.items()}
        for row, by_group in TABLE1_COUNTS.items()
    }


@pytest.mark.parametrize("patients", [100, 1001])
def test_any_size_keeps_partitions_summing_and_subsets_inside_supersets(
    tmp_path: Path, patients: int
) -> None:
    plan = plan_cohort(patients)
    for name, by_group in plan.parts.items():
        for g, parts in by_group.items():
            parent = plan.group_size[g] if name not in ("hsct", "mrd1") else plan.parts["cr"][g]["cr"]
            assert sum(parts.values()) == parent, (name, g)
    truth = pl.read_parquet(write_synthetic_cohort(tmp_path, seed=4, patients=patients).files["truth"])
    assert truth.height == patients
    assert table1_from_truth(truth) == plan.table1()
    after_cr = pl.col("hsct").is_not_null() | pl.col("mrd1_evaluable") | pl.col("relapse_day").is_not_null()
    assert truth.filter(after_cr)["cr"].all()
    for g in GROUPS:
        t = truth.filter(pl.col("ikzf1_status") == STATUS[g])
        assert (t["age"].median(), t["wbc"].median()) == (MEDIANS["age"][g].median, MEDIANS["wbc"][g].median)
        immature = t["tcr_status"].is_in(TCR_GROUPS["immature"]).fill_null(False)
        etp = t["etp"].fill_null(False)
        assert (etp & immature).sum() == min(etp.sum(), immature.sum())


# --- Raw exports in the declared layouts ---------------------------------------------------------


def test_graall_export_is_latin1_semicolon_with_french_codes(
    cohort: SynthResult, truth: pl.DataFrame
) -> None:
    layout = load_layout("graall")
    raw = cohort.files["graall"].read_bytes()
    assert "DÉCÉDÉ".encode("latin-1") in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    frame = read_delimited(cohort.files["graall"], "latin-1", ";")
    assert frame.columns == layout.source_columns
    expected = truth.filter(pl.col("trial_group") == "GRAALL").sort("source_patient_id")
    assert frame["NUM_PATIENT"].to_list() == expected["source_patient_id"].to_list()
    # Decimal commas for ages; WBC per mm3 as a whole number (x10^9/L * 1000); dd/mm/yyyy dates.
    ages = frame["AGE_DIAG"].str.replace(",", ".", literal=True).cast(pl.Float64)
    assert ages.to_list() == expected["age"].to_list()
    assert (frame["GB_MM3"].cast(pl.Int64) == (expected["wbc"] * 1000).round(0).cast(pl.Int64)).all()
    assert (frame["DATE_DIAG"].str.strptime(pl.Date, "%d/%m/%Y") == expected["diagnosis_date"]).all()
    statuses = frame.select(normalised("STATUT_VITAL")).to_series()
    assert (statuses.replace_strict({"VIVANT": "alive", "DÉCÉDÉ": "dead"}) == expected["vital_status"]).all()
    # Missing values come both as the explicit code NE and as empty cells.
    cns = frame.select(normalised("ATTEINTE_SNC")).to_series()
    assert set(cns.drop_nulls()) <= {"OUI", "NON", "NE"}
    prednisone = frame.select(normalised("CORTICOSENSIBILITE")).to_series()
    assert (prednisone == "NE").any() and prednisone.is_null().any()
    # Without CR there is no transplant in first CR to report: the cell stays empty.
    no_cr = frame.filter(normalised("RC_INDUCTION") == "NON")
    assert no_cr.height > 0 and no_cr["ALLOGREFFE_RC1"].is_null().all()


def test_fralle_export_is_an_xlsx_with_english_codes(cohort: SynthResult, truth: pl.DataFrame) -> None:
    layout = load_layout("fralle")
    reader = fastexcel.read_excel(cohort.files["fralle"])
    assert reader.sheet_names == ["patients"]
    frame = reader.load_sheet_by_name("patients", dtypes="string").to_polars()
    assert frame.columns == layout.source_columns
    expected = truth.filter(pl.col("trial_group") == "FRALLE").sort("source_patient_id")
    assert frame["patient_id"].to_list() == expected["source_patient_id"].to_list()
    assert (frame["wbc_g_l"].cast(pl.Float64) == expected["wbc"]).all()
    # Real date cells read as "yyyy-mm-dd 00:00:00"; a few were typed in as ISO text.
    dates = frame["diagnosis_date"]
    assert dates.str.ends_with(" 00:00:00").any()
    assert (dates.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d") == expected["diagnosis_date"]).all()
    sexes = frame.select(normalised("sex")).to_series().replace_strict({"MALE": "M", "FEMALE": "F"})
    assert (sexes == expected["sex"]).all()
    cns = frame.select(normalised("cns_involvement")).to_series()
    assert set(cns.drop_nulls()) <= {"YES", "NO", "NOT EVALUATED", "UNKNOWN"}


def test_lab_export_is_utf8_tsv_with_one_row_per_tested_patient(
    cohort: SynthResult, truth: pl.DataFrame
) -> None:
    layout = load_layout("lab")
    frame = read_delimited(cohort.files["lab"], "utf-8", "\t")
    assert frame.columns == layout.source_columns
    assert frame.height == truth["in_lab_export"].sum() < truth.height
    markers = frame.select(
        pl.concat_list([normalised(m) for m in ("TLX1", "TLX3", "SIL-TAL1", "CALM-AF10", "HOXA")])
    )
    assert set(markers.to_series().explode().drop_nulls()) == {"POS", "NEG", "ND"}
    assert set(frame.select(normalised("tcr_status")).to_series().drop_nulls()) <= {
        *(code for codes in TCR_GROUPS.values() for code in codes),
        "NE",
    }


def test_readme_says_the_data_is_synthetic(cohort: SynthResult) -> None:
    assert "SYNTHETIC DATA" in cohort.files["readme"].read_text()


# --- Dirty mode ----------------------------------------------------------------------------------


def _cell(result: SynthResult, entry: dict[str, Any]) -> str | None:
    path = result.out_dir / entry["file"]
    if path.suffix == ".xlsx":
        sheet = fastexcel.read_excel(path).load_sheet_by_name("patients", dtypes="string").to_polars()
        value = sheet[entry["column"]][entry["line"] - 2]
        return None if value is None else str(value).removesuffix(" 00:00:00")
    layout = load_layout(path.name.split("_")[0])
    lines = path.read_bytes().decode(layout.encoding).split("\n")
    header = lines[0].split(layout.delimiter)
    return lines[entry["line"] - 1].split(layout.delimiter)[header.index(entry["column"])]


def test_dirty_manifest_lines_point_at_the_stated_values(dirty_cohort: SynthResult) -> None:
    manifest = json.loads(dirty_cohort.files["dirty_manifest"].read_text())
    rejected = [e for e in manifest if e["expect"] == "row_rejected"]
    assert len(rejected) == 14  # GRAALL 5 + duplicate pair, FRALLE 4, lab 3
    for entry in rejected:
        assert _cell(dirty_cohort, entry) == entry["value"], entry
    duplicate = [e for e in rejected if e["column"] == "NUM_PATIENT"]
    assert len(duplicate) == 2 and duplicate[0]["value"] == duplicate[1]["value"]


def test_dirty_files_keep_the_clean_rows_and_add_few_problem_rows(
    cohort: SynthResult, dirty_cohort: SynthResult
) -> None:
    manifest = json.loads(dirty_cohort.files["dirty_manifest"].read_text())
    for key in ("graall", "lab"):
        clean_bytes = cohort.files[key].read_bytes()
        assert dirty_cohort.files[key].read_bytes().startswith(clean_bytes)
        lines = dirty_cohort.files[key].read_bytes().count(b"\n") - 1
        problems = sum(1 for e in manifest if e["file"] == dirty_cohort.files[key].name)
        assert problems < 0.05 * lines
    assert pl.read_parquet(dirty_cohort.files["truth"]).equals(pl.read_parquet(cohort.files["truth"]))


def test_dirty_mode_writes_whole_files_to_refuse(dirty_cohort: SynthResult) -> None:
    refused = {
        e["file"]: e
        for e in json.loads(dirty_cohort.files["dirty_manifest"].read_text())
        if e["expect"] == "file_refused"
    }
    assert set(refused) == {
        "dirty/graall_export_identifiers.csv",
        "dirty/fralle_missing_column.xlsx",
        "dirty/graall_export_utf8.csv",
        "dirty/lab_empty.tsv",
    }
    identifiers = read_delimited(dirty_cohort.out_dir / "dirty/graall_export_identifiers.csv", "latin-1", ";")
    assert {"NOM", "PRENOM", "DATE_NAISSANCE"} <= set(identifiers.columns)
    workbook = fastexcel.read_excel(dirty_cohort.out_dir / "dirty/fralle_missing_column.xlsx")
    columns = [c.name for c in workbook.load_sheet_by_name("patients").available_columns()]
    assert "vital_status" not in columns and "patient_id" in columns
    utf8 = refused["dirty/graall_export_utf8.csv"]
    as_latin1 = (dirty_cohort.out_dir / utf8["file"]).read_bytes().decode("latin-1").split("\n")
    assert as_latin1[utf8["line"] - 1].split(";")[16] == utf8["value"] != "DÉCÉDÉ"
    assert (dirty_cohort.out_dir / "dirty/lab_empty.tsv").read_text().count("\n") == 1
