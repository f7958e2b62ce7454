"""The yardstick: the synthetic cohort's raw files, loaded, give back the seed letter's Table 1.

IKZF1 status comes from the genomic files in a later issue; until then the groups are taken from the
generator's truth file (linked through the same keyed hash the loader uses). Every other value below is
read from the warehouse with SQL, as an analyst would.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from etl.errors import FileRejected
from etl.loads import load_file
from etl.privacy import patient_keys
from etl.synth import SynthResult
from schema import database
from tests.conftest import SHARED, TEST_KEY
from tests.helpers import fingerprint, scalar

SOURCES = (("clinical", "graall", "graall"), ("clinical", "fralle", "fralle"), ("lab", "lab", "lab"))

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
}

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
)
SELECT p.patient_key, p.trial_group, e.sex, e.age_at_diagnosis_years AS age, b.wbc_g_per_l AS wbc,
       b.cns_involvement, i.etp_status, s.tcr_group, k.*, t.complete_remission, t.prednisone_response,
       t.hsct_in_cr1
FROM patient AS p
JOIN enrolment AS e ON e.patient_id = p.patient_id AND e.superseded_by_run_id IS NULL
JOIN baseline AS b ON b.patient_id = p.patient_id AND b.superseded_by_run_id IS NULL
JOIN treatment_response AS t ON t.patient_id = p.patient_id AND t.superseded_by_run_id IS NULL
LEFT JOIN immunophenotype AS i ON i.patient_id = p.patient_id AND i.superseded_by_run_id IS NULL
LEFT JOIN tcr_status AS s ON s.tcr_status_code = i.tcr_status_code
LEFT JOIN markers AS k ON k.patient_id = p.patient_id
"""


def load_cohort(db: Path, cohort: SynthResult, **options: object) -> list[object]:
    return [
        load_file(db, kind, cohort.files[key], layout=layout, **options)  # type: ignore[arg-type]
        for kind, layout, key in SOURCES
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
def by_group(loaded: Path, cohort: SynthResult) -> duckdb.DuckDBPyConnection:
    """The cohort as an analyst would build it, with each patient's IKZF1 group (`ikzf1`: Alt / GL)."""
    truth = pl.read_parquet(cohort.files["truth"]).select(
        patient_keys(TEST_KEY.encode(), pl.col("trial_group"), pl.col("source_patient_id")).alias(
            "patient_key"
        ),
        pl.col("ikzf1_status").alias("ikzf1"),
    )
    con = duckdb.connect(str(loaded), read_only=True)
    con.register("ikzf1_truth", truth.to_arrow())
    con.execute(
        f"CREATE TEMP VIEW cohort AS SELECT * FROM ({COHORT_SQL}) JOIN ikzf1_truth USING (patient_key)"
    )
    return con


def test_every_row_of_every_file_is_loaded(loaded: Path, cohort: SynthResult) -> None:
    runs = duckdb.connect(str(loaded), read_only=True).execute(
        "SELECT rows_read, rows_loaded, rows_rejected FROM etl_run ORDER BY etl_run_id"
    )
    assert [(read, rejected) for read, loaded_, rejected in runs.fetchall()] == [(215, 0), (261, 0), (439, 0)]
    assert scalar(loaded, "SELECT count(*) FROM patient") == 476


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


def test_the_dirty_cohort_quarantines_exactly_the_injected_problems(
    db_path: Path, dirty_cohort: SynthResult
) -> None:
    reports = load_cohort(db_path, dirty_cohort)
    manifest = json.loads(dirty_cohort.files["dirty_manifest"].read_text())
    expected = {
        (Path(p["file"]).name, p["line"], p["column"]) for p in manifest if p["expect"] == "row_rejected"
    }
    rejected = set(
        duckdb.connect(str(db_path), read_only=True)
        .execute(
            "SELECT DISTINCT f.file_name, q.line, q.column_name FROM rejected_record q JOIN source_file f "
            "USING (source_file_id)"
        )
        .fetchall()
    )
    assert expected <= rejected, "every injected row problem is quarantined at its line and column"
    # Beyond them, only lab rows of the patient whose duplicated trial rows were all quarantined.
    extra = {(f, line) for f, line, _ in rejected} - {(f, line) for f, line, _ in expected}
    duplicated = {p["value"] for p in manifest if "duplicate" in p["problem"]}
    for file_name, line in extra:
        rule, raw = (
            duckdb.connect(str(db_path), read_only=True)
            .execute("SELECT rule, raw_record FROM rejected_record WHERE line = $line", {"line": line})
            .fetchall()[0]
        )
        assert file_name == "lab_oncogenetics.tsv" and rule == "known_patient"
        assert json.loads(raw)["patient_id"] in duplicated
    for report in reports:
        assert report.rows_read == report.rows_loaded + report.rows_rejected  # type: ignore[attr-defined]


def test_the_dirty_cohort_refuses_the_broken_files_whole(db_path: Path, dirty_cohort: SynthResult) -> None:
    load_cohort(db_path, dirty_cohort)
    manifest = json.loads(dirty_cohort.files["dirty_manifest"].read_text())
    refused = [p for p in manifest if p["expect"] == "file_refused"]
    assert len(refused) == 4
    kinds = {"graall": ("clinical", "graall"), "fralle": ("clinical", "fralle"), "lab_": ("lab", "lab")}
    for problem in refused:
        path = dirty_cohort.out_dir / problem["file"]
        kind, layout = next(v for k, v in kinds.items() if path.name.startswith(k))
        before = fingerprint(db_path)
        with pytest.raises(FileRejected, match=str(path.name)):
            load_file(db_path, kind, path, layout=layout)
        assert fingerprint(db_path) == before, problem["problem"]
