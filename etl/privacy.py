"""Pseudonymisation and the identifier deny-list.

The patient key is HMAC-SHA256(secret, "<trial group>:<source patient id>"): stable for a patient,
different across trial groups, and impossible to recompute without the secret, which is never stored in
the warehouse. The secret comes from --key-file, else $CGDW_PSEUDONYM_KEY, else the file named by
$CGDW_PSEUDONYM_KEY_FILE; surrounding white space (a file's final newline, a stray space in the variable)
is not part of it, whichever way it comes. The warehouse keeps a keyed fingerprint of the secret that
built it (`key_fingerprint`) and refuses any other (`check_key`): another secret would re-key every patient.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from etl.errors import CgdwError

if TYPE_CHECKING:
    import datetime as dt

    import duckdb

# Documented in README and docs/privacy.md: synthetic demo data only, never real patients.
DEMO_PSEUDONYM_KEY = "cgdw-demo-key-synthetic-data-only"
KEY_BYTES_MIN = 16

# Normalised column names (lower case, ASCII, camelCase split, "_" separators, no trailing digits) that
# hold direct identifiers. Ambiguous abbreviations count only alone: DDN is a birth date or, in French trial
# exports, the date of the last news (DATE_DDN); IPP a patient number or a proton-pump inhibitor.
IDENTIFIER_COLUMNS = frozenset(
    {
        "name", "names", "nom", "prenom", "first_name", "firstname", "last_name", "lastname", "surname",
        "given_name", "family_name", "maiden_name", "nom_naissance", "nom_jeune_fille", "patient_name",
        "initials", "initiales", "birth_date", "date_of_birth", "dob", "birthdate", "date_naissance",
        "ddn", "naissance", "ipp", "nip", "mrn", "hospital_number", "medical_record_number",
        "numero_dossier", "nss", "ssn", "insee", "social_security_number", "address", "adresse",
        "street", "rue", "phone", "telephone", "tel", "mobile", "email", "e_mail", "mail", "courriel",
        "postal_code", "zip", "zip_code", "code_postal", "cp", "secu", "nda", "gsm",
        "other_patient_id", "nhs_no", "hosp_no", "hospital_no", "national_id", "pesel", "bsn",
        "year_of_birth", "birth_year", "annee_naissance",
    }
)  # fmt: skip
# The exact names written without separators, as some exports do (DATEOFBIRTH, PATIENTNAME).
_COMPACT_IDENTIFIER_COLUMNS = frozenset(c.replace("_", "") for c in IDENTIFIER_COLUMNS)
# Beyond the exact names, the words that make a column an identifier wherever they stand in its name
# (French and English spellings seen in trial and hospital exports)...
IDENTIFIER_WORDS = frozenset(
    {
        "prenom", "prenoms", "firstname", "lastname", "surname", "forename", "forenames", "givenname",
        "fullname", "nomprenom", "patronyme", "birthdate", "birthday", "datenaissance", "datenaiss",
        "dtnaiss", "datnaiss", "nir", "nss", "ssn", "insee", "adresse", "address", "street", "telephone",
        "phone", "gsm", "email", "mail", "courriel", "fax", "postcode", "zipcode", "mrn", "pesel", "bsn",
        "dateofbirth", "patientname",
    }
)  # fmt: skip
# ... and the pairs of words that do, e.g. "date ... naissance", "nom ... patient", "code postal".
IDENTIFIER_PAIRS = tuple(
    frozenset(pair)
    for pair in (
        ("date", "naissance"), ("date", "naiss"), ("dt", "naissance"), ("dt", "naiss"), ("jour", "naissance"),
        ("lieu", "naissance"), ("ville", "naissance"), ("date", "birth"), ("place", "birth"),
        ("dob", "patient"), ("ddn", "patient"), ("nom", "patient"), ("nom", "naissance"), ("nom", "famille"),
        ("nom", "usage"), ("nom", "usuel"), ("nom", "marital"), ("nom", "jeune"), ("nom", "complet"),
        ("nom", "epouse"), ("nom", "mere"), ("nom", "pere"), ("patient", "name"), ("pt", "name"),
        ("first", "name"), ("last", "name"), ("given", "name"), ("family", "name"), ("maiden", "name"),
        ("full", "name"), ("middle", "name"), ("birth", "name"), ("mother", "name"), ("father", "name"),
        ("initials", "patient"), ("initiales", "patient"), ("securite", "sociale"), ("social", "security"),
        ("num", "secu"), ("numero", "secu"), ("no", "secu"), ("numero", "dossier"), ("num", "dossier"),
        ("no", "dossier"), ("n", "dossier"), ("dossier", "patient"), ("numero", "sejour"), ("num", "sejour"),
        ("no", "sejour"), ("num", "ipp"), ("numero", "ipp"), ("no", "ipp"), ("ipp", "patient"),
        ("nip", "patient"), ("num", "nip"), ("hospital", "number"), ("medical", "record"), ("nhs", "number"),
        ("code", "postal"), ("postal", "code"), ("zip", "code"), ("post", "code"), ("e", "mail"),
        ("adresse", "mail"), ("tel", "portable"), ("tel", "domicile"), ("tel", "patient"), ("num", "tel"),
        ("numero", "tel"), ("tel", "mobile"), ("telephone", "mobile"), ("mobile", "phone"),
        ("numero", "mobile"), ("num", "mobile"), ("nhs", "no"), ("hosp", "no"), ("hosp", "number"),
        ("national", "id"), ("national", "number"), ("year", "birth"), ("birth", "year"),
    )
)  # fmt: skip


def normalise_column_name(name: str) -> str:
    """Lower case, ASCII, words separated by "_": `Date de naissance`, `DATE_NAISSANCE`, `DateOfBirth`
    and `dateOfBirth2` all give words a rule can read."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    split = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", ascii_name)  # camelCase words
    words = re.sub(r"[^a-z0-9]+", "_", split.lower()).strip("_").split("_")
    return "_".join(word.rstrip("0123456789") or word for word in words)  # TEL1, ADRESSE2


def is_identifier_column(name: str) -> bool:
    """Whether a column's name says it holds a direct identifier of a person: the exact names above, any of
    the identifying words, or a pair of words such as "date ... naissance" (a birth weight is not one)."""
    normalised = normalise_column_name(name)
    words = set(normalised.split("_"))
    return (
        normalised in IDENTIFIER_COLUMNS
        or normalised.replace("_", "") in _COMPACT_IDENTIFIER_COLUMNS
        or bool(words & IDENTIFIER_WORDS)
        or any(pair <= words for pair in IDENTIFIER_PAIRS)
    )


def identifier_columns(columns: list[str]) -> list[str]:
    """The columns whose name says they hold a direct identifier."""
    return [c for c in columns if is_identifier_column(c)]


def load_pseudonym_key(key_file: Path | None = None) -> bytes:
    """The HMAC secret: --key-file, else $CGDW_PSEUDONYM_KEY, else the file $CGDW_PSEUDONYM_KEY_FILE names."""
    if key_file is None:
        if os.environ.get("CGDW_PSEUDONYM_KEY"):
            return _checked_key(os.environ["CGDW_PSEUDONYM_KEY"].encode().strip())
        if not os.environ.get("CGDW_PSEUDONYM_KEY_FILE"):
            raise CgdwError(
                "no pseudonymisation key: set CGDW_PSEUDONYM_KEY or CGDW_PSEUDONYM_KEY_FILE "
                "(the demo uses its documented demo key)"
            )
        key_file = Path(os.environ["CGDW_PSEUDONYM_KEY_FILE"])
    try:
        return _checked_key(key_file.read_bytes().strip())
    except OSError as exc:
        raise CgdwError(f"cannot read the pseudonymisation key file {key_file}: {exc.strerror}") from exc


def _checked_key(key: bytes) -> bytes:
    if len(key) < KEY_BYTES_MIN:
        raise CgdwError(f"the pseudonymisation key must be at least {KEY_BYTES_MIN} bytes long")
    return key


class KeyMismatch(CgdwError):
    """The pseudonymisation secret is not the one that built the warehouse."""


FINGERPRINT_MESSAGE = b"cgdw-key-fingerprint"


def key_fingerprint(secret: bytes) -> str:
    """A keyed fingerprint of the secret: tells two secrets apart, reveals nothing of either."""
    return hmac.new(secret, FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()


def check_key(con: duckdb.DuckDBPyConnection, secret: bytes, now: dt.datetime | None = None) -> None:
    """Refuse a secret other than the one recorded in the warehouse. With `now` (a write, inside its
    transaction), the first secret a warehouse sees is recorded; without, nothing is written."""
    recorded = con.execute("SELECT fingerprint, recorded_at FROM key_fingerprint").fetchall()
    fingerprint = key_fingerprint(secret)
    if not recorded:
        patients = con.execute("SELECT count(*) FROM patient").fetchall()[0][0]
        if patients:
            # Keys already made, by a secret nobody recorded (a warehouse from before migration 0007, or
            # one downgraded past it): trusting the first secret that comes could re-key everyone.
            raise KeyMismatch(
                f"this warehouse holds {patients} patients but no record of the pseudonymisation key that "
                "made their keys: prove the key with `cgdw db record-key --group GROUP NUMBER`, naming a "
                "patient you know is loaded (docs/privacy.md)"
            )
        if now is not None:
            con.execute(
                "INSERT INTO key_fingerprint VALUES ($fingerprint, $now)",
                {"fingerprint": fingerprint, "now": now},
            )
        return
    if all(row[0] != fingerprint for row in recorded):
        raise KeyMismatch(
            f"the pseudonymisation key is not the one this warehouse was built with (recorded "
            f"{recorded[0][1]:%Y-%m-%d}): every patient would get a new key; use that key "
            "(changing it is a rebuild, docs/privacy.md)"
        )


def patient_key(secret: bytes, trial_group: str, source_patient_id: str) -> str:
    message = f"{trial_group}:{source_patient_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def patient_keys(secret: bytes, trial_group: pl.Expr, source_patient_id: pl.Expr) -> pl.Expr:
    """Vectorised `patient_key` as a polars expression: the same bytes, computed in Rust.

    polars-hash's HMAC-SHA256 runs over the column in native code (0.3 s per million ids against 2 s for a
    Python loop over `hmac`); it takes its key as text, so a secret that is not UTF-8 (a binary key file)
    keys the batch in Python instead, each distinct message once."""
    message = pl.concat_str([trial_group, source_patient_id], separator=":")
    try:
        text_key = secret.decode("utf-8")
    except UnicodeDecodeError:
        return message.map_batches(_python_keys(secret), return_dtype=pl.String)
    import polars_hash  # noqa: F401 (registers the `chash` namespace)

    return message.chash.hmac_sha256(key=text_key)  # type: ignore[attr-defined]


def _python_keys(secret: bytes) -> Callable[[pl.Series], pl.Series]:
    """The batch function keying messages with Python's `hmac`: keyed once and copied per value, each
    distinct message hashed once."""
    keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def key(message: str) -> str:
        mac = keyed.copy()
        mac.update(message.encode())
        return mac.hexdigest()

    def key_batch(messages: pl.Series) -> pl.Series:
        keys = {m: key(m) for m in messages.unique().drop_nulls().to_list()}
        return pl.Series([None if m is None else keys[m] for m in messages.to_list()], dtype=pl.String)

    return key_batch


TOMBSTONE_PREFIX = "cgdw-purged:"


def tombstone(patient_key: str) -> str:
    """What a purge keeps of a patient: SHA-256 of a purge prefix and the key, never the key itself."""
    return hashlib.sha256(f"{TOMBSTONE_PREFIX}{patient_key}".encode()).hexdigest()


def tombstones(patient_key: pl.Expr) -> pl.Expr:
    """Vectorised `tombstone`, in native code."""
    import polars_hash  # noqa: F401 (registers the `chash` namespace)

    return pl.concat_str([pl.lit(TOMBSTONE_PREFIX), patient_key]).chash.sha2_256()  # type: ignore[attr-defined]


SAMPLE_TOMBSTONE_PREFIX = "cgdw-purged-sample:"


def sample_tombstone(sample_key: str) -> str:
    """What a purge keeps of a purged patient's sample (in `purged_patient` too), so that a re-delivered
    VCF or MAF naming it drops its calls instead of failing: SHA-256 of a prefix and the sample id."""
    return hashlib.sha256(f"{SAMPLE_TOMBSTONE_PREFIX}{sample_key}".encode()).hexdigest()
