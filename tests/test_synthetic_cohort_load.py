"""The yardstick: the synthetic cohort's raw files, loaded, give back the seed letter's Table 1.

Every value below is read from the warehouse with SQL, as an analyst would: IKZF1 status from the
ikzf1_alteration view over the loaded VCF, MAF and copy-number calls, MRD1 from the mrd_result view.
The generator's truth file is used only to check that the warehouse found each patient's true status.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

from etl.demo import demo_sources
from etl.errors import FileRejected
from etl.framework import LoadReport
from etl.loads import load_source
from etl.privacy import patient_keys
from etl.synth import SynthResult
from queries import view_sql
from schema import database
from tests.conftest import SHARED, TEST_KEY
from tests.helpers import fingerprint, query, scalar

SOURCES = (("clinical", "graall", "graall"), ("clinical", "fralle", "fralle"), ("lab", "lab", "lab"))
# Protein-changing consequences: what "mutated" means in Table 1 (PASS calls on the selected transcript).
NON_SILENT = (
    "missense_variant|stop_gained|frameshift_variant|splice_acceptor_variant|splice_donor_variant|"
    "inframe_insertion|inframe_deletion|start_lost|stop_lost|protein_altering_variant"
)

# Table 1 rows the trial and lab exports carry, as (numerator, denominator) SQL over `cohort` below.
TABLE1_SQL = {
    "adult": ("trial_group = 'GRAALL'", "true"),
    "male": ("sex = 'M'", "true"),
    "cns": ("cns_involvement", "cns_involvement IS NOT NULL"),
    "etp": ("etp_status", "etp_status IS NOT NULL"),
    "tcr_immature": ("tcr_group = 'immature'", "tcr_group IS NOT NULL"),
    "tcr_cortical": ("tcr_group = 'cortical'", "tcr_group IS NOT NULL"),
    "tcr_mature_ab": ("tcr_group = 'mature_ab'", "tcr_group IS NOT NULL"),
    "tcr_mature_gd": ("tcr_group = 'mature_gd'", "tcr_group IS NOT NULL"),
    "onc_tlx1": ("tlx1 = 'positive'", "onc_evaluable"),
    "onc_tlx3": ("tlx3 = 'positive'", "onc_evaluable"),
    "onc_sil_tal1": ("sil_tal1 = 'positive'", "onc_evaluable"),
    "onc_calm_af10": ("calm_af10 = 'positive'", "onc_evaluable"),
    "onc_none": ("onc_positives = 0", "onc_evaluable"),
    "hoxa": ("hoxa = 'positive'", "hoxa IN ('positive', 'negative')"),
    "cr": ("complete_remission", "true"),
    "pred_good": ("prednisone_response = 'good'", "prednisone_response IS NOT NULL"),
    "hsct": ("hsct_in_cr1", "complete_remission"),
    "notch1_fbxw7": ("mut_notch1 OR mut_fbxw7", "true"),
    "ras": ("mut_kras OR mut_nras", "true"),
    "pten": ("mut_pten OR del_pten", "true"),
    "classifier_high": (
        "NOT ((mut_notch1 OR mut_fbxw7) AND NOT (mut_kras OR mut_nras) AND NOT (mut_pten OR del_pten))",
        "true",
    ),
    "mrd1_pos": ("mrd1_positive", "mrd1_positive IS NOT NULL"),
}
# The genes the letter's text counts (IKZF1-altered vs germline): EZH2 5/26 vs 27/450, ASXL1 4/26 vs 15/450,
# ETV6 4/26 vs 13/450, DNMT3A 5/26 vs 17/450.
TEXT_COUNTS = {"ezh2": (5, 27), "asxl1": (4, 15), "etv6": (4, 13), "dnmt3a": (5, 17)}

COHORT_SQL = """
WITH markers AS (
    SELECT patient_id,
           any_value(result) FILTER (marker_code = 'TLX1') AS tlx1,
           any_value(result) FILTER (marker_code = 'TLX3') AS tlx3,
           any_value(result) FILTER (marker_code = 'SIL-TAL1') AS sil_tal1,
           any_value(result) FILTER (marker_code = 'CALM-AF10') AS calm_af10,
           any_value(result) FILTER (marker_code = 'HOXA') AS hoxa,
           count(*) FILTER (m.is_subgroup AND result IN ('positive', 'negative')) = 4 AS onc_evaluable,
           count(*) FILTER (m.is_subgroup AND result = 'positive') AS onc_positives
    FROM oncogenetic_result JOIN oncogenetic_marker AS m USING (marker_code)
    WHERE superseded_by_run_id IS NULL GROUP BY patient_id
),
mutated AS (
    SELECT s.patient_id, a.gene_symbol
    FROM variant_call AS c
    JOIN sample AS s ON s.sample_id = c.sample_id AND s.sample_type = 'diagnosis'
    JOIN variant_annotation AS a ON a.variant_id = c.variant_id AND a.is_selected
    WHERE c.superseded_by_run_id IS NULL AND c.filter = 'PASS'
      AND regexp_matches(a.consequence, '{non_silent}')
),
deleted AS (
    SELECT s.patient_id, g.symbol AS gene_symbol
    FROM copy_number_call AS c JOIN sample AS s USING (sample_id) JOIN gene AS g USING (gene_id)
    WHERE c.superseded_by_run_id IS NULL AND c.confirms_copy_number_call_id IS NULL
      AND c.call_type IN ('deletion', 'homozygous_deletion')
),
mrd1 AS (
    SELECT patient_id, bool_or(is_positive) AS mrd1_positive
    FROM ({mrd_result}) WHERE time_point = 'MRD1' GROUP BY patient_id
)
SELECT p.patient_key, p.trial_group, e.sex, e.age_at_diagnosis_years AS age, b.wbc_g_per_l AS wbc,
       b.cns_involvement, i.etp_status, s.tcr_group, k.*, t.complete_remission, t.prednisone_response,
       t.hsct_in_cr1,
       CASE WHEN x.is_altered THEN 'Alt' ELSE 'GL' END AS ikzf1,
       x.alteration_type AS ikzf1_alteration,
       {genes},
       p.patient_id IN (SELECT patient_id FROM deleted WHERE gene_symbol = 'PTEN') AS del_pten,
       r.mrd1_positive
FROM patient AS p
JOIN enrolment AS e ON e.patient_id = p.patient_id AND e.superseded_by_run_id IS NULL
JOIN baseline AS b ON b.patient_id = p.patient_id AND b.superseded_by_run_id IS NULL
JOIN treatment_response AS t ON t.patient_id = p.patient_id AND t.superseded_by_run_id IS NULL
LEFT JOIN immunophenotype AS i ON i.patient_id = p.patient_id AND i.superseded_by_run_id IS NULL
LEFT JOIN tcr_status AS s ON s.tcr_status_code = i.tcr_status_code
LEFT JOIN markers AS k ON k.patient_id = p.patient_id
LEFT JOIN ({ikzf1_alteration}) AS x ON x.patient_id = p.patient_id
LEFT JOIN mrd1 AS r ON r.patient_id = p.patient_id
""".format(
    non_silent=NON_SILENT,
    mrd_result=view_sql("mrd_result"),
    ikzf1_alteration=view_sql("ikzf1_alteration"),
    genes=",\n       ".join(
        f"p.patient_id IN (SELECT patient_id FROM mutated WHERE gene_symbol = '{gene.upper()}') AS mut_{gene}"
        for gene in ("notch1", "fbxw7", "kras", "nras", "pten", "ezh2", "asxl1", "etv6", "dnmt3a")
    ),
)


def load_cohort(db: Path, cohort: SynthResult, kinds: tuple[str, ...] | None = None) -> list[LoadReport]:
    """Every file of the cohort (or those of the given kinds), in dependency order, as the demo does."""
    return [
        load_source(db, kind, path, **options)
        for kind, path, options in demo_sources(cohort.files, TEST_KEY.encode())
        if kinds is None or kind in kinds
    ]


def published() -> dict[str, dict[str, str]]:
    lines = (SHARED / "reference" / "table1_published.tsv").read_text().splitlines()
    rows = csv.DictReader((line for line in lines if not line.startswith("#")), delimiter="\t")
    return {row["row"]: row for row in rows}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, cohort: SynthResult) -> Path:
    db = tmp_path_factory.mktemp("loaded") / "cohort.duckdb"
    database.upgrade(db)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CGDW_PSEUDONYM_KEY", TEST_KEY)
        load_cohort(db, cohort)
    return db


@pytest.fixture(scope="module")
def by_group(loaded: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The cohort as an analyst would build it; `ikzf1` (Alt / GL) comes from the warehouse's own view."""
    con = duckdb.connect(str(loaded), read_only=True)
    con.execute(f"CREATE TEMP VIEW cohort AS {COHORT_SQL}")
    yield con
    con.close()


def test_every_row_of_every_file_is_loaded(loaded: Path) -> None:
    runs = query(loaded, "SELECT rows_read, rows_loaded, rows_rejected FROM etl_run ORDER BY etl_run_id")
    assert all(rejected == 0 and read == loaded_ for read, loaded_, rejected in runs)
    assert [read for read, _, _ in runs[:3]] == [215, 261, 439]
    assert scalar(loaded, "SELECT count(*) FROM patient") == 476


def test_the_warehouse_finds_every_patients_true_ikzf1_status(
    by_group: duckdb.DuckDBPyConnection, cohort: SynthResult
) -> None:
    truth = pl.read_parquet(cohort.files["truth"]).select(
        patient_keys(TEST_KEY.encode(), pl.col("trial_group"), pl.col("source_patient_id")).alias(
            "patient_key"
        ),
        pl.col("ikzf1_status").alias("truth"),
        pl.col("ikzf1_alteration").alias("truth_alteration"),
    )
    found = by_group.sql("SELECT patient_key, ikzf1, ikzf1_alteration FROM cohort").pl()
    compared = truth.join(found, on="patient_key")
    assert compared.height == 476
    assert compared.filter(pl.col("truth") != pl.col("ikzf1")).is_empty()
    kinds = dict(
        by_group.execute(
            "SELECT ikzf1_alteration, count(*) FROM cohort WHERE ikzf1 = 'Alt' GROUP BY 1"
        ).fetchall()
    )
    assert kinds == {"deletion": 16, "mutation": 10}


def test_the_groups_are_the_published_ones(by_group: duckdb.DuckDBPyConnection) -> None:
    sizes = dict(by_group.execute("SELECT ikzf1, count(*) FROM cohort GROUP BY ikzf1").fetchall())
    assert sizes == {"Alt": int(published()["total"]["alt"]), "GL": int(published()["total"]["gl"])}


@pytest.mark.parametrize("row", list(TABLE1_SQL))
def test_table1_counts_and_denominators_equal_the_published_ones(
    by_group: duckdb.DuckDBPyConnection, row: str
) -> None:
    numerator, denominator = TABLE1_SQL[row]
    counts = dict(
        (group, (n, d))
        for group, n, d in by_group.execute(
            f"SELECT ikzf1, count(*) FILTER (({numerator}) AND ({denominator})), "
            f"count(*) FILTER ({denominator}) FROM cohort GROUP BY ikzf1"
        ).fetchall()
    )
    expected = published()[row]
    assert counts["Alt"] == (int(expected["alt"]), int(expected["alt_denom"]))
    assert counts["GL"] == (int(expected["gl"]), int(expected["gl_denom"]))


@pytest.mark.parametrize("gene", list(TEXT_COUNTS))
def test_the_mutation_counts_of_the_text_equal_the_published_ones(
    by_group: duckdb.DuckDBPyConnection, gene: str
) -> None:
    counts = dict(
        by_group.execute(f"SELECT ikzf1, count(*) FILTER (mut_{gene}) FROM cohort GROUP BY ikzf1").fetchall()
    )
    assert (counts["Alt"], counts["GL"]) == TEXT_COUNTS[gene]


@pytest.mark.parametrize(("row", "column"), [("age", "age"), ("wbc", "wbc")])
def test_medians_and_ranges_are_the_published_ones(
    by_group: duckdb.DuckDBPyConnection, row: str, column: str
) -> None:
    stats = {
        group: (median, low, high)
        for group, median, low, high in by_group.execute(
            f"SELECT ikzf1, median({column}), min({column}), max({column}) FROM cohort GROUP BY ikzf1"
        ).fetchall()
    }
    expected = published()[row]
    for group, key in (("Alt", "alt"), ("GL", "gl")):
        low, high = (float(v) for v in expected[f"{key}_denom"].split("-"))
        assert stats[group] == pytest.approx((float(expected[key]), low, high))


def test_loading_the_cohort_again_is_a_noop(db_path: Path, cohort: SynthResult) -> None:
    load_cohort(db_path, cohort)
    before = fingerprint(db_path)
    assert all(report.noop for report in load_cohort(db_path, cohort))  # type: ignore[attr-defined]
    assert fingerprint(db_path) == before


# The dirty cohort without the VCF batches and the MAF: the duplicated GRAALL patient is quarantined, so
# the manifest rows of its samples are too, and a VCF with its sample columns is refused whole.
DIRTY_KINDS = ("clinical", "lab", "samples", "cnv", "seg", "mrd")


def load_dirty(db: Path, cohort: SynthResult) -> list[LoadReport]:
    reports = load_cohort(db, cohort, DIRTY_KINDS)
    reports.append(load_source(db, "vcf", cohort.out_dir / "dirty" / "vcf_ref_mismatch.vcf"))
    return reports


def test_the_dirty_cohort_quarantines_exactly_the_injected_problems(
    db_path: Path, dirty_cohort: SynthResult
) -> None:
    reports = load_dirty(db_path, dirty_cohort)
    manifest = json.loads(dirty_cohort.files["dirty_manifest"].read_text())
    expected = {
        (Path(p["file"]).name, p["line"], p["column"]) for p in manifest if p["expect"] == "row_rejected"
    }
    rejected = query(
        db_path,
        "SELECT DISTINCT f.file_name, q.line, q.column_name, q.rule, q.raw_record FROM rejected_record q "
        "JOIN source_file f USING (source_file_id)",
    )
    assert expected <= {(f, line, column) for f, line, column, _, _ in rejected}, (
        "every injected row problem is quarantined at its line and column"
    )
    # Beyond them, only rows that belong to the patient whose duplicated trial rows were all quarantined.
    duplicated = {p["value"] for p in manifest if "duplicate" in p["problem"]}
    truth = pl.read_parquet(dirty_cohort.files["truth"]).filter(pl.col("source_patient_id").is_in(duplicated))
    belongs = (
        duplicated
        | set(truth.get_column("dx_sample_id"))
        | set(truth.get_column("gl_sample_id").drop_nulls())
    )
    for file_name, line, _, rule, raw in rejected:
        if any((file_name, line) == (f, n) for f, n, _ in expected):
            continue
        assert rule in ("known_patient", "known_sample"), (file_name, line, rule)
        assert belongs & set(json.loads(raw).values()), (file_name, line, raw)
    for report in reports:
        assert report.rows_read == report.rows_loaded + report.rows_rejected


def test_the_dirty_cohort_refuses_the_broken_files_whole(db_path: Path, dirty_cohort: SynthResult) -> None:
    load_dirty(db_path, dirty_cohort)
    manifest = json.loads(dirty_cohort.files["dirty_manifest"].read_text())
    refused = [p for p in manifest if p["expect"] == "file_refused"]
    assert len(refused) == 7
    kinds = {"graall": ("clinical", "graall"), "fralle": ("clinical", "fralle"), "lab_": ("lab", "lab"),
             "vcf_": ("vcf", None)}  # fmt: skip
    for problem in refused:
        path = dirty_cohort.out_dir / problem["file"]
        kind, layout = next(v for k, v in kinds.items() if path.name.startswith(k))
        before = fingerprint(db_path)
        with pytest.raises(FileRejected, match=str(path.name)):
            load_source(db_path, kind, path, **({"layout": layout} if layout else {}))
        assert fingerprint(db_path) == before, problem["problem"]
