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


@pytest.mark.parametrize(
    "secret",
    [
        b"Jefe" * 4,  # RFC 4231 test case 2's key, made long enough for cgdw
        b"k" * 131,  # longer than SHA-256's block: HMAC hashes the key first (RFC 4231 case 6)
        "clé-secrète-ünïcode".encode(),
        b"\xaa" * 20,  # not UTF-8: keyed in Python, the same bytes
    ],
)
def test_the_native_key_equals_pythons_hmac_for_every_kind_of_secret(secret: bytes) -> None:
    """Keys made before the native HMAC (issue 16) must stay the keys of the same patients."""
    ids = [f"G{n:05d}" for n in range(500)] + ["Ωmega-7", "a:b", ""]
    rows = pl.DataFrame({"group": ["GRAALL"] * len(ids), "id": ids})
    keys = rows.select(patient_keys(secret, pl.col("group"), pl.col("id")))[:, 0].to_list()
    assert keys == [hmac.new(secret, f"GRAALL:{i}".encode(), "sha256").hexdigest() for i in ids]


def test_rfc_4231_test_case_2() -> None:
    """The native HMAC against the published vector (key "Jefe", data "what do ya want for nothing?")."""
    import polars_hash  # noqa: F401 (the message has no ":" to split at: the HMAC itself is tested)

    message = pl.DataFrame({"m": ["what do ya want for nothing?"]})
    digest = message.select(pl.col("m").chash.hmac_sha256(key="Jefe")).item()  # type: ignore[attr-defined]
    assert digest == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


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
    [
        "NOM", "Prénom", "DATE_NAISSANCE", "date of birth", "IPP", "Hospital Number", "e-mail", "Initiales",
        # French and English spellings a deny-list of exact names missed:
        "NOM_PATIENT", "Nom de naissance", "nom usuel", "PRENOMS", "Date de naissance", "DATE_NAISS",
        "DT_NAISSANCE", "Lieu de naissance", "DOB", "Birth date", "birthday", "Patient name", "Full name",
        "N° dossier", "Numéro de sécurité sociale", "NIR", "Téléphone portable", "Adresse e-mail",
        "email_patient", "Code postal",
        # ... and what a hostile tester found still missed: camelCase, numbered, abbreviated.
        "DateOfBirth", "PatientName", "NomPatient", "NumIPP", "PhoneNumber", "NomDeNaissance",
        "numeroSecuriteSociale", "DATENAISS", "PRENOM1", "NOM_EPOUSE", "NOMPRENOM", "NUM_SECU", "NDA",
        "num_sejour", "TEL1", "tel_patient", "GSM", "MAIL_PATIENT", "ADRESSE1", "CP", "zipcode", "PostCode",
        "NHS_NUMBER", "MedicalRecordNo", "NumDossier", "Dossier_patient", "NOM_MERE", "mother_name",
        "PT_NAME",
    ],
)  # fmt: skip
def test_identifier_like_columns_are_recognised(column: str) -> None:
    assert identifier_columns([column, "AGE_DIAG"]) == [column]


def test_ordinary_clinical_columns_are_not_identifiers() -> None:
    """Names of things, not of people, and a birth weight, are data."""
    ordinary = ["NUM_PATIENT", "DATE_DIAG", "SEXE", "patient_id", "consent", "NOM_PROTOCOLE", "protocol_name",
                "gene_name", "STUDY_NAME", "POIDS_NAISSANCE", "birth_weight", "nom_centre",
                # DDN is also the date of the last news, IPP a proton-pump inhibitor: ambiguous words
                # count only alone.
                "STATUT_DDN", "DATE_DDN", "COMEDICATION_IPP", "MOBILE_ELEMENT_INSERTION", "HGVSp_Short",
                "Tumor_Sample_Barcode", "t_alt_count"]  # fmt: skip
    assert identifier_columns(ordinary) == []


def test_an_identifier_column_is_refused_even_when_the_layout_would_ignore_it(
    db_path: Path, tmp_path: Path
) -> None:
    """Listing a column under ignored_columns is no way around the refusal: the layout itself is refused,
    and the message asks for the column to be taken out of the export, nothing else."""
    from etl.load.layout import load_layout
    from tests.helpers import ALIVE, GRAALL_HEADER, write_graall

    source = (Path(load_layout("graall").path)).read_text(encoding="utf-8")
    assert "ignored_columns" not in source
    layout = tmp_path / "graall_ignoring.toml"
    layout.write_text(source.replace("[layout]\n", '[layout]\nignored_columns = ["NOM_PATIENT"]\n', 1))
    with pytest.raises(CgdwError, match=r"NOM_PATIENT .*direct identifiers"):
        load_layout(str(layout))
    export = write_graall(tmp_path / "g.csv", ALIVE + ";DUPONT", header=GRAALL_HEADER + ";NOM_PATIENT")
    with pytest.raises(CgdwError, match="NOM_PATIENT look like direct identifiers") as refused:
        load_source(db_path, "clinical", export, layout="graall")
    assert "ignored_columns" not in str(refused.value) and "remove them from the export" in str(refused.value)


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


# --- the warehouse knows which secret built it -----------------------------------------------------------


def test_the_warehouse_records_a_fingerprint_of_its_secret_never_the_secret(warehouse: Path) -> None:
    from etl.privacy import key_fingerprint

    recorded = query(warehouse, "SELECT fingerprint FROM key_fingerprint")
    assert recorded == [(key_fingerprint(TEST_KEY.encode()),)]
    assert TEST_KEY not in str(recorded) and key_fingerprint(SECRET) != recorded[0][0]


def test_a_load_with_another_secret_is_refused_and_changes_nothing(
    warehouse: Path, cohort: SynthResult, tmp_path: Path
) -> None:
    """A rotated key file, or a typo: every patient would get a new key and the next load would double the
    cohort. It is refused in one line, for loads, dry runs, consent changes and purges."""
    from etl.consent import PatientRef, purge_withdrawn, withdraw_consent
    from etl.privacy import KeyMismatch
    from tests.helpers import fingerprint

    db = Path(shutil.copy(warehouse, tmp_path / "copy.duckdb"))
    before = fingerprint(db)
    other = b"a-different-secret-of-enough-length"
    newer = tmp_path / "lab_newer.tsv"  # new bytes, the same rows: a load that would otherwise run
    newer.write_bytes(cohort.files["lab"].read_bytes().replace(b"\n", b"\r\n"))
    for dry_run in (False, True):
        with pytest.raises(KeyMismatch, match="not the one this warehouse was built with"):
            load_source(db, "lab", newer, secret=other, dry_run=dry_run)
    with pytest.raises(KeyMismatch):
        withdraw_consent(db, PatientRef(trial_group="GRAALL", source_patient_id="G03-00001"), secret=other)
    with pytest.raises(KeyMismatch):
        purge_withdrawn(db, secret=other)
    assert fingerprint(db) == before


def test_the_same_secret_gives_the_same_keys_whichever_way_it_is_passed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A key file ends with a newline; a variable may carry a stray space: neither is part of the secret."""
    key_file = tmp_path / "cgdw.key"
    key_file.write_text("the-secret-of-this-warehouse\n")
    monkeypatch.setenv("CGDW_PSEUDONYM_KEY", " the-secret-of-this-warehouse \t")
    from_variable = load_pseudonym_key()
    monkeypatch.delenv("CGDW_PSEUDONYM_KEY")
    monkeypatch.setenv("CGDW_PSEUDONYM_KEY_FILE", str(key_file))
    assert load_pseudonym_key() == load_pseudonym_key(key_file) == from_variable


def test_a_pipeline_with_another_secret_loads_nothing(cohort: SynthResult, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.helpers import drop, environment, write_config

    write_config(tmp_path)
    database.upgrade(tmp_path / "warehouse.duckdb")
    drop(tmp_path, cohort, "graall")
    config = str(tmp_path / "pipeline.yaml")
    first = subprocess.run([sys.executable, "-m", "etl", "pipeline", "run", "--config", config, "-q"],
                           capture_output=True, text=True, env=environment())  # fmt: skip
    assert first.returncode == 0, first.stderr
    drop(tmp_path, cohort, "fralle")
    other = environment({"CGDW_PSEUDONYM_KEY": "a-different-secret-of-enough-length"})
    second = subprocess.run([sys.executable, "-m", "etl", "pipeline", "run", "--config", config, "-q"],
                            capture_output=True, text=True, env=other)  # fmt: skip
    assert second.returncode != 0 and "not the one this warehouse was built with" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert (
        scalar(tmp_path / "warehouse.duckdb", "SELECT count(*) FROM patient WHERE trial_group = 'FRALLE'")
        == 0
    )


def test_a_quarantined_row_keeps_only_what_the_layout_reads(db_path: Path, tmp_path: Path) -> None:
    """A column the layout ignores is read no further, not into the quarantine's raw row either: it is
    the data manager's copy of the row, and what the layout ignores is nobody's business."""
    import json

    from etl.load.layout import load_layout
    from tests.helpers import ALIVE, DEAD, GRAALL_HEADER, write_graall

    source = Path(load_layout("graall").path).read_text(encoding="utf-8")
    layout = tmp_path / "graall_commented.toml"
    layout.write_text(source.replace("[layout]\n", '[layout]\nignored_columns = ["COMMENTAIRE"]\n', 1))
    bad_sex = DEAD.replace(";F;", ";X;")
    export = write_graall(
        tmp_path / "g.csv",
        ALIVE + ";vu en consultation",
        bad_sex + ";chambre 12",
        header=GRAALL_HEADER + ";COMMENTAIRE",
    )
    report = load_source(db_path, "clinical", export, layout=str(layout), max_reject_fraction=1.0)
    assert report.rows_rejected == 1
    (raw,) = query(db_path, "SELECT raw_record FROM rejected_record")[0]
    assert "COMMENTAIRE" not in json.loads(str(raw)) and "chambre" not in str(raw)


def test_a_warehouse_without_a_recorded_key_refuses_until_a_key_proves_itself(
    warehouse: Path, cohort: SynthResult, tmp_path: Path
) -> None:
    """A warehouse from before migration 0007, or downgraded past it, holds patients and no fingerprint:
    trusting the next secret could re-key everyone (found by a hostile tester: downgrade, upgrade, load
    with another key, 476 patients became 691). Loads are refused until `cgdw db record-key` finds a
    patient the data manager names under the key."""
    from etl.consent import PatientRef, record_key
    from etl.privacy import KeyMismatch

    db = Path(shutil.copy(warehouse, tmp_path / "copy.duckdb"))
    database.downgrade(db, "0006")
    database.upgrade(db)
    newer = tmp_path / "lab_newer.tsv"
    newer.write_bytes(cohort.files["lab"].read_bytes().replace(b"\n", b"\r\n"))
    other = b"a-different-secret-of-enough-length"
    for secret in (other, TEST_KEY.encode()):
        with pytest.raises(KeyMismatch, match="record-key"):
            load_source(db, "lab", newer, secret=secret)
    number = _source_ids(cohort)["GRAALL"][0]
    with pytest.raises(KeyMismatch, match="nothing recorded"):
        record_key(db, PatientRef(trial_group="GRAALL", source_patient_id=number), secret=other)
    assert "key recorded" in record_key(db, PatientRef(trial_group="GRAALL", source_patient_id=number))
    with pytest.raises(KeyMismatch, match="not the one this warehouse was built with"):
        load_source(db, "lab", newer, secret=other)
    assert load_source(db, "lab", newer).rows_loaded


def test_the_vectorised_tombstone_is_the_one_a_purge_keeps() -> None:
    from etl.privacy import tombstone, tombstones

    keys = [patient_key(SECRET, "GRAALL", str(n)) for n in range(50)]
    made = pl.DataFrame({"key": keys}).select(tombstones(pl.col("key")))[:, 0].to_list()
    assert made == [tombstone(k) for k in keys]
