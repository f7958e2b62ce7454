"""Pseudonymisation and the identifier deny-list."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.errors import CgdwError
from etl.privacy import identifier_columns, load_pseudonym_key, patient_key

SECRET = b"a-secret-of-enough-length"


def test_the_same_source_patient_always_gets_the_same_key() -> None:
    assert patient_key(SECRET, "GRAALL", "G03-00017") == patient_key(SECRET, "GRAALL", "G03-00017")


def test_keys_differ_across_trial_groups_and_secrets() -> None:
    graall = patient_key(SECRET, "GRAALL", "0017")
    assert graall != patient_key(SECRET, "FRALLE", "0017")
    assert graall != patient_key(b"another-secret-of-enough-length", "GRAALL", "0017")


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
