"""Consent withdrawal and purge: `cgdw consent withdraw` and `cgdw purge --withdrawn`.

Withdrawing consent is a new version of the patient's enrolment with consent_status 'withdrawn' (the
current row is superseded, as a newer trial export would do), in one transaction recorded as an ETL run.
From that commit on the patient is out of every stable view name (cohort_patient and the v2 of the other
views keep only patients whose current consent is 'given') and out of every extract (`cgdw export`
filters withdrawn patients whatever the view). The patient's rows are still in the tables.

Purging deletes, for every patient whose consent is withdrawn, every row that refers to them: the fact
tables with a patient_id, the rows of their samples, their quarantined source rows, and the patient row.
The audit record is the purge's ETL run: it holds the number of patients and of rows deleted per table,
never a source patient id, a patient key or a warehouse patient id.

No identifier reaches the warehouse on the way: the ETL run of a withdrawal records the command as
`cgdw consent withdraw <patient>`, since the real command line holds the source patient id.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import sqlalchemy as sa

from etl import ledger
from etl.errors import CgdwError
from etl.privacy import (
    SAMPLE_TOMBSTONE_PREFIX,
    TOMBSTONE_PREFIX,
    KeyMismatch,
    check_key,
    key_fingerprint,
    load_pseudonym_key,
    patient_key,
)
from etl.warehouse import fetch_value, open_for_write, query_frame
from schema.models import Base, Enrolment

WITHDRAW_COMMAND = "cgdw consent withdraw <patient>"
RESTORE_COMMAND = "cgdw consent restore <patient>"
PURGE_COMMAND = "cgdw purge --withdrawn"
QUARANTINE = "rejected_record"
TARGET = "purge_target"  # the patients a purge deletes, registered for the length of the purge

# The patients a purge deletes: consent withdrawn, plus any patient row without an enrolment (left by the
# table-by-table purges of revisions before 0003, which could stop half-way).
_TARGETS = """
    SELECT p.patient_id, p.patient_key, p.trial_group FROM patient AS p
    WHERE p.patient_id IN (
        SELECT patient_id FROM enrolment
        WHERE superseded_by_run_id IS NULL AND consent_status = 'withdrawn'
    )
    OR NOT EXISTS (SELECT 1 FROM enrolment AS e WHERE e.patient_id = p.patient_id)
"""


# --- withdrawal ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientRef:
    """How a data manager names a patient: trial group and source id (the usual way), or the key."""

    trial_group: str | None = None
    source_patient_id: str | None = None
    patient_key: str | None = None

    def __post_init__(self) -> None:
        by_source = self.trial_group is not None or self.source_patient_id is not None
        if by_source == (self.patient_key is not None):
            raise CgdwError("name the patient either by --group and source patient id, or by --patient-key")
        if by_source and not (self.trial_group and self.source_patient_id):
            raise CgdwError(
                "a source patient id needs its trial group (--group GRAALL) and the other way round"
            )

    def key(self, key_file: Path | None = None, secret: bytes | None = None) -> str:
        """The patient key: given, or computed with the pseudonymisation secret (`secret`, else
        `load_pseudonym_key(key_file)`)."""
        if self.patient_key is not None:
            return self.patient_key.strip().lower()
        assert self.trial_group is not None and self.source_patient_id is not None
        secret = secret if secret is not None else load_pseudonym_key(key_file)
        return patient_key(secret, self.trial_group, self.source_patient_id.strip())

    def describe(self) -> str:
        """For messages on the user's terminal only, never for the warehouse."""
        if self.patient_key is not None:
            return f"patient key {self.patient_key[:12]}..."
        return f"{self.trial_group} patient {self.source_patient_id}"


@dataclass
class ConsentChange:
    """A consent change (withdrawal or restoration) as recorded, or not needed."""

    run_id: int | None  # None: the consent already was `status`, nothing written
    patient: str
    status: str = "withdrawn"
    unchanged: bool = False

    @property
    def already_withdrawn(self) -> bool:
        return self.unchanged and self.status == "withdrawn"

    def summary(self) -> str:
        if self.unchanged:
            return f"{self.patient}: consent was already {self.status}; nothing changed"
        if self.status == "given":
            return f"run {self.run_id}: consent restored for {self.patient}; back in the views and extracts"
        return (
            f"run {self.run_id}: consent withdrawn for {self.patient}; out of every view and extract now, "
            "rows kept until `cgdw purge --withdrawn`"
        )


def withdraw_consent(
    db_path: Path, patient: PatientRef, key_file: Path | None = None, secret: bytes | None = None
) -> ConsentChange:
    """Record that the patient withdrew consent: a new current enrolment version, one ETL run.

    The withdrawal stands until `restore_consent`: a later trial export that still says 'given' does not
    undo it (the clinical loader keeps 'withdrawn' and warns)."""
    return _record_consent(
        db_path, patient, "withdrawn", WITHDRAW_COMMAND, _secret_for(patient, key_file, secret)
    )


def restore_consent(
    db_path: Path, patient: PatientRef, key_file: Path | None = None, secret: bytes | None = None
) -> ConsentChange:
    """Record that a patient whose consent was withdrawn consents again (not possible after a purge)."""
    return _record_consent(db_path, patient, "given", RESTORE_COMMAND, _secret_for(patient, key_file, secret))


def _secret_for(patient: PatientRef, key_file: Path | None, secret: bytes | None) -> bytes | None:
    """The pseudonymisation secret when the patient is named by source id (None when by key)."""
    if patient.patient_key is not None:
        return None
    return secret if secret is not None else load_pseudonym_key(key_file)


def _record_consent(
    db_path: Path, patient: PatientRef, status: str, command: str, secret: bytes | None
) -> ConsentChange:
    key = patient.key(secret=secret)
    with open_for_write(db_path) as con:
        if secret is not None:
            check_key(con, secret)  # a wrong key is said as such, not as "no such patient"
        found = con.execute(
            "SELECT p.patient_id, e.enrolment_id, e.consent_status FROM patient AS p "
            "LEFT JOIN enrolment AS e ON e.patient_id = p.patient_id AND e.superseded_by_run_id IS NULL "
            "WHERE p.patient_key = $key",
            {"key": key},
        ).fetchall()
        if not found:
            raise CgdwError(f"no {patient.describe()} in {db_path}")
        _, enrolment_id, consent = found[0]
        if enrolment_id is None:
            raise CgdwError(f"{patient.describe()} has no current enrolment: no consent to change")
        if consent == status:
            return ConsentChange(run_id=None, patient=patient.describe(), status=status, unchanged=True)
        if status == "given" and consent != "withdrawn":
            raise CgdwError(
                f"{patient.describe()}: consent is {consent!r}, not withdrawn: nothing to restore"
            )
        copied = [
            c.name
            for c in Enrolment.__table__.columns
            if c.name not in ("enrolment_id", "etl_run_id", "superseded_by_run_id", "consent_status")
        ]
        columns = ", ".join(copied)
        with ledger.transaction(con):
            run_id = ledger.start_run(con, ledger.CONSENT, command)
            if secret is not None:
                check_key(con, secret, ledger.utc_now())
            con.execute(
                "UPDATE enrolment SET superseded_by_run_id = $run WHERE enrolment_id = $id",
                {"run": run_id, "id": enrolment_id},
            )
            # The new version keeps the lineage (file, line) of the row it replaces; etl_run_id says
            # that this run, not a file, changed the consent.
            con.execute(
                f"INSERT INTO enrolment ({columns}, etl_run_id, consent_status) "
                f"SELECT {columns}, $run, $status FROM enrolment WHERE enrolment_id = $id",
                {"run": run_id, "id": enrolment_id, "status": status},
            )
            ledger.finish_run(con, run_id, {"enrolment": {"inserted": 1, "superseded": 1}})
    return ConsentChange(run_id=run_id, patient=patient.describe(), status=status)


def record_key(
    db_path: Path, patient: PatientRef, key_file: Path | None = None, secret: bytes | None = None
) -> str:
    """Record the fingerprint of the pseudonymisation secret in a warehouse that has patients but no record
    of it, once the secret proves itself: the patient the data manager names by trial group and number
    must be found under the key it gives. Returns what was done, for the user."""
    if patient.patient_key is not None:
        raise CgdwError("name a patient by --group and number: a key proves nothing about the secret")
    secret = secret if secret is not None else load_pseudonym_key(key_file)
    with open_for_write(db_path, force_publish=True) as con:  # records no run
        recorded = con.execute("SELECT fingerprint FROM key_fingerprint").fetchall()
        if recorded:
            check_key(con, secret)  # refuses another secret
            return f"{db_path}: the key is already recorded, and this is it"
        known = fetch_value(
            con, "SELECT count(*) FROM patient WHERE patient_key = $key", {"key": patient.key(secret=secret)}
        )
        if not known:
            raise KeyMismatch(
                f"no {patient.describe()} in {db_path} under this key: either the key is not the one that "
                "built the warehouse, or the patient is not loaded; nothing recorded"
            )
        with ledger.transaction(con):
            con.execute(
                "INSERT INTO key_fingerprint VALUES ($fingerprint, $now)",
                {"fingerprint": key_fingerprint(secret), "now": ledger.utc_now()},
            )
    return (
        f"{db_path}: key recorded ({patient.describe()} found under it); other keys are refused from now on"
    )


# --- purge -----------------------------------------------------------------------------------------------


@dataclass
class PurgeReport:
    """What a purge deleted (or, dry, would delete): counts only, never who."""

    patients: int
    deleted: dict[str, int] = field(default_factory=dict)
    run_id: int | None = None
    dry_run: bool = False
    redacted: int = 0  # file names, commands and run counts that named a purged patient
    compacted: bool = False  # the file was rewritten without the deleted values

    @property
    def rows(self) -> int:
        return sum(self.deleted.values())

    def summary(self) -> str:
        if not self.patients:
            return "no patient with consent withdrawn: nothing to purge"
        verb = "would delete" if self.dry_run else "deleted"
        tables = ", ".join(f"{table} {n}" for table, n in self.deleted.items() if n)
        run = "" if self.run_id is None else f"run {self.run_id}: "
        return (
            f"{run}{verb} {self.rows} rows of {self.patients} patients whose consent is withdrawn ({tables})"
        )


def _referencing(target: str) -> dict[str, list[str]]:
    """Tables whose foreign keys point at `target` (patient or sample): table -> columns."""
    found: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == target:
                found.setdefault(table.name, []).append(fk.parent.name)
    return found


def _self_references(table: sa.Table) -> list[str]:
    return sorted(fk.parent.name for fk in table.foreign_keys if fk.column.table is table)


def purge_plan() -> list[tuple[str, str]]:
    """(table, WHERE clause over the purge_target relation) in a safe order: children first, enrolment
    just before patient, and rows that point at a row of their own table before that row."""
    by_patient, by_sample = _referencing("patient"), _referencing("sample")
    steps: list[tuple[str, str]] = []
    for table in reversed(Base.metadata.sorted_tables):
        if table.name not in by_patient and table.name not in by_sample:
            continue
        conditions = [f"{c} IN (SELECT patient_id FROM purge_target)" for c in by_patient.get(table.name, [])]
        conditions += [
            f"{c} IN (SELECT sample_id FROM sample WHERE patient_id IN (SELECT patient_id FROM purge_target))"
            for c in by_sample.get(table.name, [])
        ]
        where = " OR ".join(conditions)
        for column in _self_references(table):
            steps.append((table.name, f"({where}) AND {column} IS NOT NULL"))
        steps.append((table.name, where))
    enrolment = [s for s in steps if s[0] == "enrolment"]
    others = [s for s in steps if s[0] != "enrolment"]
    return [*others, *enrolment, ("patient", "patient_id IN (SELECT patient_id FROM purge_target)")]


def _quarantined_rows(con: duckdb.DuckDBPyConnection, matcher: PurgedNames) -> list[int]:
    """rejected_record ids of the targets' source rows: a raw row holds the source patient number (not the
    key) or one of their sample ids; every value of every raw row is tried."""
    rows = con.execute(f"SELECT rejected_record_id, raw_record, value FROM {QUARANTINE}").fetchall()
    return sorted(
        record_id
        for record_id, raw, value in rows
        if any(
            matcher.names(v) for v in _values(raw) | ({str(value).strip()} if value is not None else set())
        )
    )


def _values(raw_record: str) -> set[str]:
    try:
        record = json.loads(raw_record)
    except ValueError:
        return set()
    values = record.values() if isinstance(record, dict) else record if isinstance(record, list) else []
    return {str(v).strip() for v in values if v is not None and not isinstance(v, dict | list)}


def purge_withdrawn(
    db_path: Path, key_file: Path | None = None, dry_run: bool = False, secret: bytes | None = None
) -> PurgeReport:
    """Delete every row of every patient whose consent is withdrawn (see the module docstring).

    One transaction, children before parents: all or nothing. The run's counts_json is the audit record.
    The pseudonymisation secret is needed to find quarantined rows."""
    secret = secret if secret is not None else load_pseudonym_key(key_file)
    with open_for_write(db_path) as con:
        check_key(con, secret)
        targets = query_frame(con, _TARGETS)
        report = PurgeReport(patients=targets.height, dry_run=dry_run)
        if not report.patients:
            if not dry_run and _compaction_pending(con):
                compact(con, db_path)  # a purge whose compaction was interrupted: finish it now
                report.compacted = True
            return report
        con.register("purge_target", targets.to_arrow())
        try:
            matcher = PurgedNames.of_targets(con, secret)
            quarantined = _quarantined_rows(con, matcher)
            steps = [(QUARANTINE, _id_list("rejected_record_id", quarantined)), *purge_plan()]
            if dry_run:
                # A table's last step is its whole share (the earlier one deletes a part of it first).
                for table, where in dict(steps).items():
                    count = f"SELECT count(*) FROM {table} WHERE {where}"
                    report.deleted[table] = int(fetch_value(con, count))
                return report
            _run_purge(con, report, steps, matcher)
        finally:
            con.unregister("purge_target")
        # Deleted rows stay readable in freed blocks of the file until something overwrites them.
        compact(con, db_path)
        report.compacted = True
    return report


def _materialized_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Stored copies of views that have a patient_id column."""
    return [
        table
        for (table,) in con.execute(
            "SELECT m.table_name FROM view_materialization AS m JOIN information_schema.columns AS c "
            "ON c.table_schema = 'main' AND c.table_name = m.table_name AND c.column_name = 'patient_id'"
        ).fetchall()
    ]


# Where the audit trail keeps free text: file paths and names, command lines, the runs' counts and warnings.
_FREE_TEXT = (
    ("source_file", "source_file_id", ("path", "file_name")),
    ("etl_run", "etl_run_id", ("command", "counts_json")),
)
_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")  # a word of a name, hyphens kept: G05-00017
_CHUNK = re.compile(r"[A-Za-z]+|[0-9]+|-+")
MAX_CHUNKS = 8  # letters, digits and hyphens a patient number or sample id is made of, at most
REDACTED = "[purged]"


@dataclass
class PurgedNames:
    """What names a purged patient in free text: their key, their trial patient number (a text whose key
    under their trial group is theirs, as written or in upper case) or one of their sample ids."""

    secret: bytes
    keys: set[str]
    groups: set[str]
    samples: set[str]
    cache: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def of_targets(cls, con: duckdb.DuckDBPyConnection, secret: bytes) -> PurgedNames:
        targets = con.execute(f"SELECT patient_key, trial_group FROM {TARGET}").fetchall()
        samples = con.execute(
            f"SELECT sample_key FROM sample WHERE patient_id IN (SELECT patient_id FROM {TARGET})"
        ).fetchall()
        return cls(secret, {k for k, _ in targets}, {g for _, g in targets}, {s for (s,) in samples})

    def names(self, text: str) -> bool:
        if text not in self.cache:
            variants = {text, text.upper()}
            self.cache[text] = bool(
                variants & self.keys
                or variants & self.samples
                or any(patient_key(self.secret, g, v) in self.keys for g in self.groups for v in variants)
            )
        return self.cache[text]

    def redact(self, value: str) -> str:
        """`value` with every part that names a purged patient replaced: whole words, and runs of letters,
        digits and hyphens inside them (`graall_G05-00017v2-corrige.csv`)."""
        spans = []
        for word in _RUN.finditer(value):
            chunks = [
                (word.start() + c.start(), word.start() + c.end()) for c in _CHUNK.finditer(word.group())
            ]
            candidates = [(word.start(), word.end())] + [
                (chunks[i][0], chunks[j][1])
                for i in range(len(chunks))
                for j in range(i, min(len(chunks), i + MAX_CHUNKS))
                if value[chunks[i][0]] != "-" and value[chunks[j][0]] != "-"
            ]
            spans += [(start, end) for start, end in candidates if self.names(value[start:end])]
        redacted, last = [], 0
        for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
            if start >= last:
                redacted += [value[last:start], REDACTED]
                last = end
        return "".join(redacted) + value[last:]


def _redact_names(con: duckdb.DuckDBPyConnection, matcher: PurgedNames) -> int:
    """Redact, in file names, command lines and run counts, every part that names a purged patient.
    Returns the values changed."""
    changed = 0
    for table, id_column, columns in _FREE_TEXT:
        rows = con.execute(f"SELECT {id_column}, {', '.join(columns)} FROM {table}").fetchall()
        for row_id, *values in rows:
            for column, value in zip(columns, values, strict=True):
                if value is None:
                    continue
                redacted = matcher.redact(str(value))
                if redacted != value:
                    con.execute(
                        f"UPDATE {table} SET {column} = $value WHERE {id_column} = $id",
                        {"value": redacted, "id": row_id},
                    )
                    changed += 1
    return changed


def _compaction_pending(con: duckdb.DuckDBPyConnection) -> bool:
    """A purge committed but its compaction did not finish (the process was killed)."""
    return bool(
        fetch_value(
            con,
            "SELECT count(*) FROM etl_run WHERE kind = 'purge' AND status = 'succeeded' "
            "AND json_extract(counts_json, '$.compacted') = 'false'::JSON",
        )
    )


def compact(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    """Rewrite the warehouse file with only its live rows (DuckDB keeps deleted values in freed blocks
    until they are reused): COPY FROM DATABASE into a new file beside it, then rename it over the old one.
    Runs under the write lock, after the purge committed; a failure leaves the old (purged) file."""
    compacted = db_path.with_name(db_path.name + ".compact")
    compacted.unlink(missing_ok=True)
    name = fetch_value(con, "SELECT current_database()")
    con.execute(f"ATTACH '{compacted}' AS cgdw_compacted")
    try:
        con.execute(f'COPY FROM DATABASE "{name}" TO cgdw_compacted')
        # The copy records that the purges it holds are compacted: the old file keeps saying they are not,
        # so a purge killed before the rename is finished by the next `cgdw purge`.
        con.execute(
            "UPDATE cgdw_compacted.etl_run SET counts_json = json_merge_patch(counts_json, "
            "'{\"compacted\": true}') WHERE kind = 'purge' AND json_extract(counts_json, '$.compacted') = "
            "'false'::JSON"
        )
    finally:
        con.execute("DETACH cgdw_compacted")
    con.execute("CHECKPOINT")
    os.replace(compacted, db_path)
    directory = os.open(db_path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def _id_list(column: str, ids: list[int]) -> str:
    return f"{column} IN ({', '.join(str(i) for i in ids)})" if ids else "false"


def _audit(report: PurgeReport) -> dict[str, object]:
    return {
        "purge": "consent withdrawn",
        "patients": report.patients,
        "deleted": report.deleted,
        "redacted": report.redacted,
        "compacted": False,  # until the compacted copy replaces the file (`compact`)
    }


def _run_purge(
    con: duckdb.DuckDBPyConnection, report: PurgeReport, steps: list[tuple[str, str]], matcher: PurgedNames
) -> None:
    """Every step and the audit run in one transaction: a purge that fails or is killed leaves the
    warehouse as it was (possible since migration 0003: DuckDB refused child-then-parent deletes in one
    transaction while foreign keys were enforced)."""
    try:
        with ledger.transaction(con):
            report.run_id = ledger.start_run(con, ledger.PURGE, PURGE_COMMAND)
            # The tombstones first: a later file that still lists the patient, or a re-delivered VCF or
            # MAF that still has one of their samples, must not load them again.
            con.execute(
                "INSERT INTO purged_patient (tombstone, etl_run_id, purged_at) "
                "SELECT DISTINCT tombstone, $run, $now FROM ("
                "  SELECT sha256($prefix || patient_key) AS tombstone FROM purge_target"
                "  UNION SELECT sha256($sample_prefix || s.sample_key) FROM sample AS s"
                "  WHERE s.patient_id IN (SELECT patient_id FROM purge_target)"
                ") WHERE tombstone NOT IN (SELECT tombstone FROM purged_patient)",
                {"prefix": TOMBSTONE_PREFIX, "sample_prefix": SAMPLE_TOMBSTONE_PREFIX, "run": report.run_id,
                 "now": ledger.utc_now()},
            )  # fmt: skip
            for table in _materialized_tables(con):
                # A stored copy of a view is not a table of the model: its rows of the patient go too.
                con.execute(f'DELETE FROM "{table}" WHERE patient_id IN (SELECT patient_id FROM {TARGET})')
            report.redacted = _redact_names(con, matcher)
            for table, where in steps:
                n = int(fetch_value(con, f"SELECT count(*) FROM {table} WHERE {where}"))
                con.execute(f"DELETE FROM {table} WHERE {where}")
                report.deleted[table] = report.deleted.get(table, 0) + n
            ledger.finish_run(con, report.run_id, _audit(report))
    except BaseException:
        report.run_id = None
        report.deleted.clear()
        raise
