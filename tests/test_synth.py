"""The synthetic cohort generator (etl.synth): what it promises, checked on the files it writes.

The generator reproduces the seed letter's cohort (IKZF1 in T-ALL, Table 1) exactly at 476 patients,
scales it to any size, and writes the raw GRAALL / FRALLE / lab exports in the layouts the loader
reads, plus truth.parquet with every latent value.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import fastexcel
import numpy as np
import polars as pl
import pytest

from etl.load.layout import load_layout
from etl.synth import SynthResult, write_synthetic_cohort
from etl.synth.calibration import (
    CLASSIFIER_COUNTS,
    EPIGENETIC_MUTATIONS,
    ESTIMATES,
    GROUPS,
    HAZARD_RATIOS,
    IKZF1_CLASSES,
    IKZF1_DELETION_CLASSES,
    MEDIANS,
    TABLE1_COUNTS,
    TCR_GROUPS,
    Count,
    Group,
    plan_cohort,
)
from etl.synth.genome import EXONS_FILE as EXONS
from etl.synth.genome import FBXW7_GRCH37_SPAN
from etl.synth.vcf import CSQ_HEADER

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
    for key in ("graall", "fralle", "lab", "samples", "maf", "cnv", "seg", "mrd"):
        assert again.files[key].read_bytes() == cohort.files[key].read_bytes(), key
    batches = sorted(p.name for p in cohort.files["vcf"].iterdir())
    assert batches == sorted(p.name for p in again.files["vcf"].iterdir()) and len(batches) == 4
    for name in batches:
        assert (again.files["vcf"] / name).read_bytes() == (cohort.files["vcf"] / name).read_bytes(), name


def test_another_seed_writes_another_cohort(cohort: SynthResult, tmp_path: Path) -> None:
    other = write_synthetic_cohort(tmp_path, seed=2)
    for key in ("graall", "lab", "samples", "maf", "mrd"):
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
    if path.suffix == ".vcf":
        lines = path.read_text().split("\n")
        header = next(line for line in lines if line.startswith("#CHROM")).split("\t")
        return lines[entry["line"] - 1].split("\t")[header.index(entry["column"])]
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
    assert len(rejected) == 17  # GRAALL 5 + duplicate pair, FRALLE 4, lab 3, MRD 2, VCF 1
    for entry in rejected:
        assert _cell(dirty_cohort, entry) == entry["value"], entry
    duplicate = [e for e in rejected if e["column"] == "NUM_PATIENT"]
    assert len(duplicate) == 2 and duplicate[0]["value"] == duplicate[1]["value"]


def test_dirty_files_keep_the_clean_rows_and_add_few_problem_rows(
    cohort: SynthResult, dirty_cohort: SynthResult
) -> None:
    manifest = json.loads(dirty_cohort.files["dirty_manifest"].read_text())
    for key in ("graall", "lab", "mrd"):
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
        "dirty/vcf_broken_header.vcf",
        "dirty/vcf_truncated.vcf.gz",
        "dirty/vcf_unknown_sample.vcf",
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


def chrom_line(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("#CHROM"))


def test_dirty_genomic_files_break_the_stated_thing(cohort: SynthResult, dirty_cohort: SynthResult) -> None:
    folder = dirty_cohort.out_dir / "dirty"
    manifest = json.loads(dirty_cohort.files["dirty_manifest"].read_text())
    mismatch = (folder / "vcf_ref_mismatch.vcf").read_text().split("\n")
    batches = [p.read_text().split("\n") for p in sorted(cohort.files["vcf"].iterdir())]
    [batch] = [b for b in batches if chrom_line(b) == chrom_line(mismatch)]
    # The copied batch leaves out the duplicated GRAALL patient, whose samples are rejected anyway.
    duplicated = next(e["value"] for e in manifest if "duplicate" in e["problem"])
    samples = read_delimited(cohort.files["samples"], "utf-8", "\t")
    duplicated_samples = set(samples.filter(pl.col("patient_id") == duplicated)["sample_id"])
    assert duplicated_samples and duplicated_samples.isdisjoint(chrom_line(batch).split("\t"))
    broken = (folder / "vcf_broken_header.vcf").read_text().split("\n")
    [csq] = [line for line in broken if line.startswith("##INFO=<ID=CSQ")]
    assert not csq.endswith('">') and len(broken) == len(batch)
    with pytest.raises(EOFError):
        gzip.decompress((folder / "vcf_truncated.vcf.gz").read_bytes())
    header = chrom_line((folder / "vcf_unknown_sample.vcf").read_text().split("\n")).split("\t")
    assert header[-1] == "S9999999-DX" not in set(samples["sample_id"])
    assert set(header[9:-1]) <= set(samples["sample_id"])
    changed = [i for i, (a, b) in enumerate(zip(batch, mismatch, strict=True)) if a != b]
    records = sum(1 for line in batch if line and not line.startswith("#"))
    assert len(changed) == 1 and len(changed) < 0.05 * records
    # New MRD rows: real patients (not the duplicated one) at a time point they have no clean row for.
    mrd = read_delimited(dirty_cohort.files["mrd"], "utf-8", "\t")
    extra = set(mrd.filter(pl.col("time_point") == "MRD3")["patient_id"])
    assert len(extra) == 2 and extra <= set(mrd.filter(pl.col("time_point") == "MRD1")["patient_id"])
    assert duplicated not in extra


# --- Sequencing and MRD files --------------------------------------------------------------------------

SILENT = {"synonymous_variant", "intron_variant"}
PANEL = ("IKZF1", "NOTCH1", "FBXW7", "KRAS", "NRAS", "PTEN", "EZH2", "ASXL1", "ETV6", "DNMT3A")


def vep_allele(ref: str, alt: str) -> str:
    """VEP's Allele: SNV = ALT; indels lose the first base they share with REF ('-' when nothing is left)."""
    return alt if len(ref) == len(alt) == 1 else (alt[1:] or "-")


def vcf_calls(folder: Path) -> pl.DataFrame:
    """One row per sample carrying an allele, with the allele's CSQ entry on the MANE transcript."""
    rows = []
    for path in sorted(folder.glob("*.vcf")):
        names: list[str] = []
        samples: list[str] = []
        for line in path.read_text().split("\n"):
            if line.startswith("##INFO=<ID=CSQ"):
                names = line.split("Format: ")[1].removesuffix('">').split("|")
            elif line.startswith("#CHROM"):
                samples = line.split("\t")[9:]
            elif line and not line.startswith("#"):
                chrom, pos, _, ref, alt, _, filt, info, _, *cells = line.split("\t")
                alts = alt.split(",")
                entries = [
                    dict(zip(names, e.split("|"), strict=True)) for e in info.split("CSQ=")[1].split(",")
                ]
                mane = {e["Allele"]: e for e in entries if e["MANE_SELECT"]}
                for sample, cell in zip(samples, cells, strict=True):
                    genotype = cell.split(":", 1)[0]
                    for allele in {int(a) for a in genotype.split("/") if a not in ("0", ".")}:
                        entry = mane[vep_allele(ref, alts[allele - 1])]
                        site = {
                            "sample_id": sample,
                            "chrom": chrom,
                            "pos": int(pos),
                            "ref": ref,
                            "filter": filt,
                        }
                        rows.append(
                            site
                            | {
                                "gene": entry["SYMBOL"],
                                "consequence": entry["Consequence"],
                                "residue": entry["Protein_position"],
                                "exon": entry["EXON"],
                                "existing": entry["Existing_variation"],
                                "genotype": genotype,
                                "cell": cell,
                            }
                        )
    return pl.DataFrame(rows)


def maf_calls(path: Path) -> pl.DataFrame:
    maf = pl.read_csv(path, separator="\t", skip_rows=1, infer_schema=False)
    return maf.select(
        sample_id="Tumor_Sample_Barcode",
        chrom="Chromosome",
        pos=pl.col("Start_Position").cast(pl.Int64),
        ref="Reference_Allele",
        filter="FILTER",
        gene="Hugo_Symbol",
        consequence="Consequence",
        residue=pl.col("HGVSp_Short").str.extract(r"^p\.[A-Z*](\d+)"),
        exon="Exon_Number",
        existing=pl.col("dbSNP_RS").replace("novel", ""),
    )


def is_mutation() -> pl.Expr:
    """PASS and changing the protein; for IKZF1 only the letter's alterations (N159 missense, truncating)."""
    consequence = pl.col("consequence")
    ikzf1 = consequence.is_in(["frameshift_variant", "stop_gained"]) | (
        (consequence == "missense_variant") & (pl.col("residue") == "159")
    )
    return (pl.col("filter") == "PASS") & ~consequence.is_in(SILENT) & ((pl.col("gene") != "IKZF1") | ikzf1)


def cohort_calls(result: SynthResult) -> pl.DataFrame:
    """VCF and MAF calls of a cohort with their patient."""
    samples = read_delimited(result.files["samples"], "utf-8", "\t").select("sample_id", "patient_id")
    calls = pl.concat(
        [vcf_calls(result.files["vcf"]), maf_calls(result.files["maf"])], how="diagonal_relaxed"
    )
    return calls.join(samples, on="sample_id")


def genomic_status(result: SynthResult) -> pl.DataFrame:
    """Per patient, what the sequencing files say: mutated genes (VCF or MAF) and NGS deletions."""
    samples = read_delimited(result.files["samples"], "utf-8", "\t").select("sample_id", "patient_id")
    mutated = cohort_calls(result).filter(is_mutation()).group_by("patient_id").agg("gene")
    cnv = read_delimited(result.files["cnv"], "utf-8", "\t")
    deleted = (
        cnv.filter((pl.col("method") == "NGS") & (pl.col("call") == "deletion"))
        .join(samples, on="sample_id")
        .group_by("patient_id")
        .agg(pl.col("gene").alias("deleted"))
    )
    patients = samples.select("patient_id").unique()
    status = patients.join(mutated, on="patient_id", how="left").join(deleted, on="patient_id", how="left")
    has = {g: pl.col("gene").list.contains(g).fill_null(False) for g in PANEL}
    lost = {g: pl.col("deleted").list.contains(g).fill_null(False) for g in ("IKZF1", "PTEN")}
    return status.select(
        "patient_id",
        ikzf1_deletion=lost["IKZF1"],
        ikzf1_mutation=has["IKZF1"],
        notch1_fbxw7=has["NOTCH1"] | has["FBXW7"],
        ras=has["KRAS"] | has["NRAS"],
        pten=has["PTEN"] | lost["PTEN"],
        **{gene.lower(): has[gene] for gene in ("EZH2", "ASXL1", "ETV6", "DNMT3A")},
    ).with_columns(
        group=pl.when(pl.col("ikzf1_deletion") | pl.col("ikzf1_mutation"))
        .then(pl.lit("alt"))
        .otherwise(pl.lit("gl"))
    )


def genomic_counts(status: pl.DataFrame) -> dict[str, dict[Group, Count]]:
    rows = [
        "notch1_fbxw7",
        "ras",
        "pten",
        "ezh2",
        "asxl1",
        "etv6",
        "dnmt3a",
        "ikzf1_deletion",
        "ikzf1_mutation",
    ]
    out: dict[str, dict[Group, Count]] = {}
    for g in GROUPS:
        members = status.filter(pl.col("group") == g)
        for row in rows:
            out.setdefault(row, {})[g] = Count(int(members[row].sum()), members.height)
    return out


def expected_genomic_counts(scale: int = 1) -> dict[str, dict[Group, Count]]:
    def scaled(c: Count) -> Count:
        return Count(scale * c.n, scale * c.denom)

    published = {row: TABLE1_COUNTS[row] for row in ("notch1_fbxw7", "ras", "pten")} | EPIGENETIC_MUTATIONS
    out = {row: {g: scaled(c) for g, c in by_group.items()} for row, by_group in published.items()}
    deletions = sum(n for name, n in IKZF1_CLASSES.items() if name in IKZF1_DELETION_CLASSES)
    out["ikzf1_deletion"] = {"alt": Count(scale * deletions, scale * 26), "gl": Count(0, scale * 450)}
    out["ikzf1_mutation"] = {"alt": Count(scale * (26 - deletions), scale * 26), "gl": Count(0, scale * 450)}
    return out


@pytest.fixture(scope="module")
def status(cohort: SynthResult) -> pl.DataFrame:
    return genomic_status(cohort)


@pytest.fixture(scope="module")
def calls(cohort: SynthResult) -> pl.DataFrame:
    return cohort_calls(cohort)


def test_variant_files_and_copy_number_calls_give_the_published_counts(
    status: pl.DataFrame, truth: pl.DataFrame
) -> None:
    assert status.height == 476
    by_truth = truth.select(patient_id="source_patient_id", truth_group=pl.col("ikzf1_status").replace_strict(
        {"Alt": "alt", "GL": "gl"}))  # fmt: skip
    assert status.join(by_truth, on="patient_id").filter(pl.col("group") != pl.col("truth_group")).is_empty()
    assert genomic_counts(status) == expected_genomic_counts()
    assert status.filter(pl.col("ikzf1_deletion") & pl.col("ikzf1_mutation")).is_empty()


def test_ten_times_the_patients_gives_ten_times_the_genomic_counts(tmp_path: Path) -> None:
    result = write_synthetic_cohort(tmp_path, seed=3, patients=4760)
    assert genomic_counts(genomic_status(result)) == expected_genomic_counts(10)


def test_counted_mutations_sit_in_exons_at_the_usual_places(calls: pl.DataFrame) -> None:
    counted = calls.filter(is_mutation())
    assert counted["exon"].str.contains(r"^\d+/\d+$").all()
    ras = counted.filter(pl.col("gene").is_in(["KRAS", "NRAS"]))
    assert (
        ras["residue"].is_in(["12", "13", "61"]).all()
        and ras["exon"].str.slice(0, 2).is_in(["2/", "3/"]).all()
    )
    fbxw7 = calls.filter(pl.col("gene") == "FBXW7")["pos"]
    assert fbxw7.is_between(*FBXW7_GRCH37_SPAN).all()
    assert "882" in set(counted.filter(pl.col("gene") == "DNMT3A")["residue"])


def test_decoys_and_background_calls_do_not_count(calls: pl.DataFrame, truth: pl.DataFrame) -> None:
    ikzf1 = calls.filter(
        (pl.col("gene") == "IKZF1") & (pl.col("filter") == "PASS") & (pl.col("existing") == "")
    )
    other = ikzf1.filter((pl.col("consequence") == "missense_variant") & (pl.col("residue") != "159"))
    assert other["exon"].str.starts_with("8/").all()
    flagged = truth.filter(pl.col("ikzf1_other_missense"))
    assert sorted(other["patient_id"]) == sorted(flagged["source_patient_id"]) and other.height == 2
    assert (flagged["ikzf1_status"] == "GL").all()
    synonymous = ikzf1.filter(pl.col("consequence") == "synonymous_variant")
    germline_patients = set(truth.filter(pl.col("ikzf1_status") == "GL")["source_patient_id"])
    assert synonymous.height == 1 and synonymous["patient_id"][0] in germline_patients
    # Every kind of non-counting call is there, in the genes that are counted.
    assert calls.filter(pl.col("filter") != "PASS")["consequence"].unique().to_list() == ["missense_variant"]
    assert set(calls.filter(pl.col("filter") != "PASS")["filter"]) == {"weak_evidence", "strand_bias"}
    assert {"NOTCH1", "PTEN", "DNMT3A"} <= set(calls.filter(pl.col("consequence").is_in(SILENT))["gene"])
    # Germline columns only hold polymorphisms (with an rs id), seen in many samples.
    germline = calls.filter(pl.col("sample_id").str.ends_with("-GL"))
    assert germline.height > 100 and germline["existing"].str.starts_with("rs").all()
    # The truth's IKZF1 mutations are the ones written, in the exon it names.
    written = calls.filter(is_mutation() & (pl.col("gene") == "IKZF1")).select("patient_id", "exon")
    named = truth.filter(pl.col("ikzf1_mutation_exon").is_not_null()).select(
        patient_id="source_patient_id", exon=pl.format("{}/8", "ikzf1_mutation_exon")
    )
    assert sorted(written.rows()) == sorted(named.rows())


def test_vcfs_are_vep_annotated_tumor_normal_batches(cohort: SynthResult, truth: pl.DataFrame) -> None:
    paths = sorted(cohort.files["vcf"].glob("*.vcf"))
    assert [p.name for p in paths] == [f"graall_batch_00{i}.vcf" for i in range(1, 5)]
    graall = truth.filter(pl.col("trial_group") == "GRAALL")
    columns = []
    contigs = ["1", "2", "4", "7", "9", "10", "12", "20"]
    for path in paths:
        lines = path.read_text().split("\n")
        assert (
            lines[0] == "##fileformat=VCFv4.2" and "##reference=GRCh37" in lines and '##VEP="v106"' in lines
        )
        assert "##contig=<ID=1,length=249250621>" in lines and "##contig=<ID=20,length=63025520>" in lines
        assert CSQ_HEADER in lines
        header = next(line for line in lines if line.startswith("#CHROM")).split("\t")
        assert header[8] == "FORMAT" and len(header) - 9 <= 120
        columns += header[9:]
        records = [line.split("\t") for line in lines if line and not line.startswith("#")]
        keys = [(contigs.index(r[0]), int(r[1])) for r in records]
        assert keys == sorted(keys)
        assert {r[8] for r in records} == {"GT:AD:DP:AF"}
    expected = [s for pair in graall.select("dx_sample_id", "gl_sample_id").rows() for s in pair]
    assert columns == expected
    calls = vcf_calls(cohort.files["vcf"])
    multi = calls.filter(pl.col("genotype") == "0/2")
    assert multi.height > 0
    # AD and AF per allele: AF of the carried allele = its reads / DP, three decimals.
    for cell in calls.filter(pl.col("genotype").is_in(["0/1", "0/2"]))["cell"]:
        gt, ad, dp, af = cell.split(":")
        allele = int(gt[-1])
        fraction = af.split(",")[allele - 1]
        assert len(fraction.split(".")[1]) == 3
        assert float(fraction) == pytest.approx(int(ad.split(",")[allele]) / int(dp), abs=0.0005 + 1e-9)
    text = "".join(p.read_text() for p in paths)
    assert "\t./.:.:.:." in text and "\t0/0:" in text
    tumor = calls.filter(pl.col("sample_id").str.ends_with("-DX") & (pl.col("existing") == ""))
    vaf = (
        tumor["cell"]
        .str.split(":")
        .list.get(3)
        .str.split(",")
        .list.eval(pl.element().cast(pl.Float64))
        .list.max()
    )
    assert vaf.filter(tumor["filter"] == "PASS").is_between(0.04, 0.51).all()


def test_a_position_has_the_same_ref_in_every_file(cohort: SynthResult) -> None:
    vcf = vcf_calls(cohort.files["vcf"]).select("chrom", "pos", base=pl.col("ref").str.slice(0, 1))
    maf = maf_calls(cohort.files["maf"]).filter(pl.col("ref") != "-")
    # MAF deletions start after the VCF anchor base: compare the first base of each position only.
    maf = maf.select("chrom", "pos", base=pl.col("ref").str.slice(0, 1))
    both = pl.concat([vcf, maf]).unique()
    assert both.group_by("chrom", "pos").len().filter(pl.col("len") > 1).is_empty()


def test_maf_follows_the_gdc_conventions(cohort: SynthResult, truth: pl.DataFrame) -> None:
    lines = cohort.files["maf"].read_text().split("\n")
    assert lines[0] == "#version 2.4"
    maf = pl.read_csv(cohort.files["maf"], separator="\t", skip_rows=1, infer_schema=False)
    fralle = set(truth.filter(pl.col("trial_group") == "FRALLE")["dx_sample_id"])
    assert set(maf["Tumor_Sample_Barcode"]) <= fralle and maf["Matched_Norm_Sample_Barcode"].is_null().all()
    assert set(maf["Variant_Classification"]) == {
        *("Missense_Mutation", "Nonsense_Mutation", "Frame_Shift_Del", "Frame_Shift_Ins", "Silent", "Intron"),
    }
    deletions = maf.filter(pl.col("Variant_Type") == "DEL")
    length = deletions["End_Position"].cast(pl.Int64) - deletions["Start_Position"].cast(pl.Int64) + 1
    assert (deletions["Tumor_Seq_Allele2"] == "-").all()
    assert (deletions["Reference_Allele"].str.len_chars() == length).all()
    insertions = maf.filter(pl.col("Variant_Type") == "INS")
    assert (insertions["Reference_Allele"] == "-").all()
    end = insertions["End_Position"].cast(pl.Int64)
    assert (end == insertions["Start_Position"].cast(pl.Int64) + 1).all()
    hotspot = maf.filter((pl.col("Hugo_Symbol") == "IKZF1") & pl.col("HGVSp_Short").str.starts_with("p.N159"))
    assert hotspot["HGVSc"].is_in(["c.476A>G", "c.476A>C"]).all() and hotspot.height > 0
    assert hotspot["Transcript_ID"].unique().to_list() == ["ENST00000331340.8"]
    assert (hotspot["Exon_Number"] == "5/8").all() and (hotspot["RefSeq"] == "NM_006060.6").all()


def test_samples_manifest_lists_a_diagnosis_sample_per_patient(
    cohort: SynthResult, truth: pl.DataFrame
) -> None:
    layout = load_layout("samples")
    samples = read_delimited(cohort.files["samples"], "utf-8", "\t")
    assert samples.columns == layout.source_columns
    dx = samples.filter(pl.col("sample_type") == "diagnosis")
    gl = samples.filter(pl.col("sample_type") == "germline")
    assert dx.height == 476 and gl.height == 215 and samples["sample_id"].n_unique() == samples.height
    assert dx["sample_id"].str.contains(r"^S\d{7}-DX$").all() and (gl["tissue"] == "PB").all()
    assert (dx["sample_id"].str.slice(0, 8) == truth["dx_sample_id"].str.slice(0, 8)).all()
    assert 0.1 < (dx["tissue"] == "PB").mean() < 0.3  # type: ignore[operator]
    assert gl["days_from_diagnosis"].cast(pl.Int64).is_between(60, 120).all()
    assert set(samples["assembly"]) == {"GRCh37"} and set(samples["assay"]) == {"TALL80"}


def test_copy_number_calls_and_segments_match_the_deletions(cohort: SynthResult, truth: pl.DataFrame) -> None:
    layout = load_layout("cnv")
    cnv = read_delimited(cohort.files["cnv"], "utf-8", "\t")
    assert cnv.columns == layout.source_columns
    exons = pl.read_csv(EXONS, separator="\t").filter(
        (pl.col("gene") == "IKZF1") & (pl.col("assembly") == "GRCh37")
    )
    start, end = (
        dict(exons.select("exon_number", "start").rows()),
        dict(exons.select("exon_number", "end").rows()),
    )
    ikzf1 = cnv.filter(pl.col("gene") == "IKZF1")
    ngs, mlpa = ikzf1.filter(pl.col("method") == "NGS"), ikzf1.filter(pl.col("method") == "MLPA")
    assert ngs.height == mlpa.height == 16
    assert sorted(ngs.select("sample_id", "first_exon", "last_exon").rows()) == sorted(
        mlpa.select("sample_id", "first_exon", "last_exon").rows()
    )
    assert mlpa["start"].is_null().all() and mlpa["ratio"].cast(pl.Float64).is_between(0.4, 0.6).all()
    for row in ngs.iter_rows(named=True):
        assert (int(row["start"]), int(row["end"])) == (
            start[int(row["first_exon"])],
            end[int(row["last_exon"])],
        )
    assert "FBXW7" not in set(cnv["gene"])
    cdkn2a = cnv.filter(pl.col("gene") == "CDKN2A")
    assert (cdkn2a["call"] == "homdel").all() and 0.5 < cdkn2a.height / 476 < 0.7
    # aCGH segments: IKZF1 exons lost only where a deletion was called, from its first to its last exon.
    seg = pl.read_csv(cohort.files["seg"], separator="\t", schema_overrides={"chrom": pl.String})
    assert seg.columns == ["ID", "chrom", "loc.start", "loc.end", "num.mark", "seg.mean"]
    over_ikzf1 = seg.filter(
        (pl.col("chrom") == "7") & (pl.col("loc.start") <= end[8]) & (pl.col("loc.end") >= start[1])
    )
    lost = over_ikzf1.filter(pl.col("seg.mean") <= -0.3)
    called = {
        (r["sample_id"], start[int(r["first_exon"])], end[int(r["last_exon"])])
        for r in ngs.iter_rows(named=True)
    }
    assert set(lost.select("ID", "loc.start", "loc.end").rows()) <= called
    assert lost["seg.mean"].is_between(-1.1, -0.8).all()
    graall_deleted = truth.filter(
        (pl.col("trial_group") == "GRAALL") & pl.col("ikzf1_deletion_class").is_not_null()
    )
    assert lost.height >= graall_deleted.height / 2
    assert seg["ID"].n_unique() == pytest.approx(0.25 * 215, abs=2)


def mrd_fraction(column: str) -> pl.Expr:
    value, unit = pl.col(column).cast(pl.Float64), pl.col("unit")
    return (
        pl.when(unit == "fraction")
        .then(value)
        .when(unit.is_in(["percent", "%"]))
        .then(value / 100)
        .when(unit == "log10")
        .then(10**value)
    )


def test_mrd1_results_give_the_published_positivity(cohort: SynthResult, truth: pl.DataFrame) -> None:
    layout = load_layout("mrd")
    mrd = read_delimited(cohort.files["mrd"], "utf-8", "\t")
    assert mrd.columns == layout.source_columns
    assert set(mrd["unit"]) == {"fraction", "percent", "%", "log10"} and mrd["sample_id"].is_null().all()
    status = truth.select(patient_id="source_patient_id", group="ikzf1_status")
    mrd1 = (
        mrd.filter(pl.col("time_point") == "MRD1")
        .join(status, on="patient_id")
        .with_columns(level=mrd_fraction("value"), low=mrd_fraction("quantitative_range_low"))
    )
    assert mrd1["patient_id"].n_unique() == mrd1.height == truth["mrd1_evaluable"].sum()
    for g in GROUPS:
        rows = mrd1.filter(pl.col("group") == STATUS[g])
        n_positive = int((rows["level"] >= 1e-4).fill_null(False).sum())
        assert Count(n_positive, rows.height) == TABLE1_COUNTS["mrd1_pos"][g], g
    positive = mrd1.filter(pl.col("level") >= 1e-4)
    assert (positive["qualitative_result"] == "positive").all()
    assert ((positive["low"] - 1e-4).abs() < 1e-12).all()
    pnq = mrd1.filter(pl.col("qualitative_result") == "PNQ")
    assert pnq.height > 0 and pnq["value"].is_null().all() and ((pnq["low"] - 1e-4).abs() < 1e-12).all()
    quantified_negative = mrd1.filter(pl.col("level") < 1e-4)
    assert (
        quantified_negative.height > 0 and (quantified_negative["low"] <= quantified_negative["level"]).all()
    )
    mrd2 = mrd.filter(pl.col("time_point") == "MRD2")
    assert 0.2 < mrd2.height / mrd1.height < 0.4
