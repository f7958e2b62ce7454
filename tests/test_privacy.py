"""Pseudonymisation and the identifier deny-list."""

from __future__ import annotations

import hmac
import shutil
from pathlib import Path

import polars as pl
import pytest

from etl.demo import demo_sources
from etl.errors import CgdwError
from etl.privacy import identifier_columns, load_pseudonym_key, patient_key, patient_keys
from etl.sources.registry import load_source
from etl.synth import SynthResult
from schema import database
from tests.helpers import TEST_KEY, query, scalar

SECRET = b"a-secret-of-enough-length"


def test_the_same_source_patient_always_gets_the_same_key() -> None:
    assert patient_key(SECRET, "GRAALL", "G03-00017") == patient_key(SECRET, "GRAALL", "G03-00017")


def test_keys_differ_across_trial_groups_and_secrets() -> None:
    graall = patient_key(SECRET, "GRAALL", "0017")
    assert graall != patient_key(SECRET, "FRALLE", "0017")
    assert graall != patient_key(b"another-secret-of-enough-length", "GRAALL", "0017")


def test_the_vectorised_key_is_the_hmac_of_each_row() -> None:
    """The loaders' polars expression (keyed once, each distinct id hashed once) equals the plain HMAC."""
    rows = pl.DataFrame(
        {"group": ["GRAALL", "FRALLE", None, "GRAALL", "GRAALL"], "id": ["17", "17", "3", "17", None]}
    )
    keys = rows.select(patient_keys(SECRET, pl.col("group"), pl.col("id")))[:, 0].to_list()
    plain = patient_key(SECRET, "GRAALL", "17")
    assert keys == [plain, patient_key(SECRET, "FRALLE", "17"), None, plain, None]
    assert plain == hmac.new(SECRET, b"GRAALL:17", "sha256").hexdigest()


def test_the_key_comes_from_the_environment_or_a_key_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CGDW_PSEUDONYM_KEY", "from-the-environment-123")
    assert load_pseudonym_key() == b"from-the-environment-123"
    key_file = tmp_path / "key"
    key_file.write_text("from-a-key-file-4567890\n")
    assert load_pseudonym_key(key_file) == b"from-a-key-file-4567890"
    monkeypatch.delenv("CGDW_PSEUDONYM_KEY")
    monkeypatch.setenv("CGDW_PSEUDONYM_KEY_FILE", str(key_file))
    assert load_pseudonym_key() == b"from-a-key-file-4567890"


def test_no_key_or_a_short_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CGDW_PSEUDONYM_KEY")
    with pytest.raises(CgdwError, match="no pseudonymisation key"):
        load_pseudonym_key()
    monkeypatch.setenv("CGDW_PSEUDONYM_KEY", "short")
    with pytest.raises(CgdwError, match="at least 16 bytes"):
        load_pseudonym_key()


@pytest.mark.parametrize(
    "column",
    ["NOM", "Prénom", "DATE_NAISSANCE", "date of birth", "IPP", "Hospital Number", "e-mail", "Initiales"],
)
def test_identifier_like_columns_are_recognised(column: str) -> None:
    assert identifier_columns([column, "AGE_DIAG"]) == [column]


def test_ordinary_clinical_columns_are_not_identifiers() -> None:
    assert identifier_columns(["NUM_PATIENT", "DATE_DIAG", "SEXE", "patient_id", "consent"]) == []


# --- pseudonymisation in the warehouse ------------------------------------------------------------------


def _source_ids(cohort: SynthResult) -> dict[str, list[str]]:
    """Trial group -> the patient numbers of its trial export, as the data centre knows them."""
    graall = pl.read_csv(cohort.files["graall"], separator=";", encoding="latin-1", infer_schema=False)
    lab = pl.read_csv(cohort.files["lab"], separator="\t", infer_schema=False)
    return {
        "GRAALL": graall["NUM_PATIENT"].to_list(),
        "FRALLE": lab.filter(pl.col("trial_group") == "FRALLE")["patient_id"].to_list(),
    }


def test_a_source_patient_has_one_key_across_files_and_loads(
    warehouse: Path, cohort: SynthResult, tmp_path: Path
) -> None:
    secret = TEST_KEY.encode()
    ids = _source_ids(cohort)
    keys = {row[0]: row[1] for row in query(warehouse, "SELECT patient_key, patient_id FROM patient")}
    source_id = ids["GRAALL"][0]
    patient_id = keys[patient_key(secret, "GRAALL", source_id)]  # the trial export created it ...
    lab_rows = scalar(  # ... and the lab file, a different file and load, found the same patient
        warehouse, "SELECT count(*) FROM immunophenotype WHERE patient_id = $p", {"p": patient_id}
    )
    assert lab_rows == 1
    assert {patient_key(secret, "FRALLE", i) for i in ids["FRALLE"]} <= set(keys)
    # A newer export of the same patients (new bytes, same rows) creates no patient: same keys.
    db = Path(shutil.copy(warehouse, tmp_path / "copy.duckdb"))
    newer = tmp_path / "graall_newer.csv"
    newer.write_bytes(cohort.files["graall"].read_bytes().replace(b"\n", b"\r\n"))
    report = load_source(db, "clinical", newer, layout="graall", secret=secret)
    assert report.rows_loaded == len(ids["GRAALL"])
    assert scalar(db, "SELECT count(*) FROM patient") == len(keys)


def test_the_same_number_in_two_groups_is_two_patients() -> None:
    assert patient_key(SECRET, "GRAALL", "G03-00002") != patient_key(SECRET, "FRALLE", "G03-00002")


def test_key_rotation_is_a_rebuild_from_the_sources_with_the_new_key(
    warehouse: Path, cohort: SynthResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented procedure (docs/privacy.md, "Rotating the key"): the same source files loaded with
    a new secret give the same data under keys that nothing links to the old ones; without the secret
    the mapping cannot be recomputed, and the old key cannot recompute the new one."""
    new_key = tmp_path / "cgdw-new.key"
    new_key.write_text("a-brand-new-secret-from-secrets-token-hex\n")
    monkeypatch.delenv("CGDW_PSEUDONYM_KEY")
    monkeypatch.setenv("CGDW_PSEUDONYM_KEY_FILE", str(new_key))
    rebuilt = tmp_path / "rebuilt.duckdb"
    database.upgrade(rebuilt)
    for kind, path, options in demo_sources(cohort.files, load_pseudonym_key()):
        if kind in ("clinical", "lab"):
            load_source(rebuilt, kind, path, **options)
    facts = (
        "SELECT p.trial_group, e.protocol_code, e.sex, e.age_at_diagnosis_years, e.consent_status, "
        "i.etp_status, i.tcr_status_code FROM patient AS p JOIN enrolment AS e USING (patient_id) "
        "LEFT JOIN immunophenotype AS i USING (patient_id) ORDER BY ALL"
    )
    assert query(rebuilt, facts) == query(warehouse, facts)
    old_keys = {row[0] for row in query(warehouse, "SELECT patient_key FROM patient")}
    new_keys = {row[0] for row in query(rebuilt, "SELECT patient_key FROM patient")}
    assert len(new_keys) == len(old_keys) and not new_keys & old_keys
    source_id = _source_ids(cohort)["GRAALL"][0]
    assert patient_key(load_pseudonym_key(), "GRAALL", source_id) in new_keys
    assert patient_key(TEST_KEY.encode(), "GRAALL", source_id) not in new_keys
