"""The synthetic cohort's raw files load whole, and the warehouse's views find each patient's truth.

Values are read from the warehouse with SQL, as an analyst would (the `cohort_patient` view over the
loaded VCF, MAF, copy-number and MRD files); the generator's truth file is used only to check them. The
Table 1 counts themselves are checked through `cgdw table1` in test_table1.py. Dirty files are
quarantined or refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from etl.errors import FileRejected
from etl.load.framework import LoadReport
from etl.privacy import patient_keys
from etl.sources.registry import load_source
from etl.synth import SynthResult
from tests.helpers import TEST_KEY, fingerprint, load_cohort, query, scalar


def test_every_row_of_every_file_is_loaded(warehouse: Path) -> None:
    runs = query(
        warehouse,
        "SELECT rows_read, rows_loaded, rows_rejected FROM etl_run JOIN source_file USING (etl_run_id) "
        "ORDER BY etl_run_id",
    )
    assert all(rejected == 0 and read == loaded_ for read, loaded_, rejected in runs)
    assert [read for read, _, _ in runs[:3]] == [215, 261, 439]
    assert scalar(warehouse, "SELECT count(*) FROM patient") == 476


def test_the_warehouse_finds_every_patients_true_ikzf1_status(warehouse: Path, cohort: SynthResult) -> None:
    truth = pl.read_parquet(cohort.files["truth"]).select(
        patient_keys(TEST_KEY.encode(), pl.col("trial_group"), pl.col("source_patient_id")).alias(
            "patient_key"
        ),
        pl.col("ikzf1_status").alias("truth"),
        pl.col("ikzf1_alteration").alias("truth_alteration"),
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.sql("SELECT patient_key, ikzf1_status, ikzf1_alteration_type FROM cohort_patient").pl()
        kinds = dict(
            con.execute(
                "SELECT ikzf1_alteration_type, count(*) FROM cohort_patient WHERE ikzf1_alt GROUP BY 1"
            ).fetchall()
        )
    compared = truth.join(found, on="patient_key")
    assert compared.height == 476
    assert compared.filter(pl.col("truth") != pl.col("ikzf1_status")).is_empty()
    assert kinds == {"deletion": 16, "mutation": 10}


def test_the_endpoints_follow_the_truth_file(warehouse: Path, cohort: SynthResult) -> None:
    """OS from the loaded follow-up equals the generator's latent outcome for every patient."""
    truth = pl.read_parquet(cohort.files["truth"]).select(
        patient_keys(TEST_KEY.encode(), pl.col("trial_group"), pl.col("source_patient_id")).alias(
            "patient_key"
        ),
        pl.col("death_day").is_not_null().cast(pl.Int32).alias("dead"),
        pl.coalesce("death_day", "last_contact_day").alias("end_day"),
        pl.col("relapse_day"),
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.sql(
            "SELECT c.patient_key, c.os_status, e.os_days, e.first_relapse_day "
            "FROM cohort_patient c JOIN endpoint e USING (patient_id)"
        ).pl()
    compared = truth.join(found, on="patient_key")
    assert compared.height == 476
    assert (compared["dead"] == compared["os_status"]).all()
    assert (compared["end_day"] == compared["os_days"]).all()
    assert compared.filter(pl.col("relapse_day").ne_missing(pl.col("first_relapse_day"))).is_empty()


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
