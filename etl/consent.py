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
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import sqlalchemy as sa

from etl import ledger
from etl.errors import CgdwError
from etl.privacy import TOMBSTONE_PREFIX, load_pseudonym_key, patient_key
from etl.warehouse import fetch_value, open_for_write, query_frame
from schema.models import Base, Enrolment

WITHDRAW_COMMAND = "cgdw consent withdraw <patient>"
RESTORE_COMMAND = "cgdw consent restore <patient>"
PURGE_COMMAND = "cgdw purge --withdrawn"
QUARANTINE = "rejected_record"

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
    return _record_consent(db_path, patient, "withdrawn", WITHDRAW_COMMAND, patient.key(key_file, secret))


def restore_consent(
    db_path: Path, patient: PatientRef, key_file: Path | None = None, secret: bytes | None = None
) -> ConsentChange:
    """Record that a patient whose consent was withdrawn consents again (not possible after a purge)."""
    return _record_consent(db_path, patient, "given", RESTORE_COMMAND, patient.key(key_file, secret))


def _record_consent(db_path: Path, patient: PatientRef, status: str, command: str, key: str) -> ConsentChange:
    with open_for_write(db_path) as con:
        found = con.execute(
            "SELECT p.patient_id, e.enrolment_id, e.consent_status FROM patient AS p "
            "LEFT JOIN enrolment AS e ON e.patient_id = p.patient_id AND e.superseded_by_run_id IS NULL "
            "WHERE p.patient_key = $key",
            {"key": key},
        ).fetchall()
        if not found:
            hint = "" if patient.patient_key else " (is the pseudonymisation key the one the loads used?)"
            raise CgdwError(f"no {patient.describe()} in {db_path}{hint}")
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


# --- purge -----------------------------------------------------------------------------------------------


@dataclass
class PurgeReport:
    """What a purge deleted (or, dry, would delete): counts only, never who."""

    patients: int
    deleted: dict[str, int] = field(default_factory=dict)
    run_id: int | None = None
    dry_run: bool = False

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


def _quarantined_rows(con: duckdb.DuckDBPyConnection, secret: bytes) -> list[int]:
    """rejected_record ids of the targets' source rows. The raw row holds the source patient id, not the
    key: every value of every raw row is keyed with each target's trial group and compared."""
    targets = con.execute("SELECT patient_key, trial_group FROM purge_target").fetchall()
    keys = {key for key, _ in targets}
    groups = {group for _, group in targets}
    rows = con.execute(f"SELECT rejected_record_id, raw_record FROM {QUARANTINE}").fetchall()
    raw = {record_id: _values(text) for record_id, text in rows}
    hashed = {
        value: any(patient_key(secret, group, value) in keys for group in groups)
        for value in set().union(*raw.values())
    }
    return sorted(record_id for record_id, values in raw.items() if any(hashed[v] for v in values))


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
        targets = query_frame(con, _TARGETS)
        report = PurgeReport(patients=targets.height, dry_run=dry_run)
        if not report.patients:
            return report
        con.register("purge_target", targets.to_arrow())
        try:
            quarantined = _quarantined_rows(con, secret)
            steps = [(QUARANTINE, _id_list("rejected_record_id", quarantined)), *purge_plan()]
            if dry_run:
                # A table's last step is its whole share (the earlier one deletes a part of it first).
                for table, where in dict(steps).items():
                    count = f"SELECT count(*) FROM {table} WHERE {where}"
                    report.deleted[table] = int(fetch_value(con, count))
                return report
            _run_purge(con, report, steps)
        finally:
            con.unregister("purge_target")
    return report


def _id_list(column: str, ids: list[int]) -> str:
    return f"{column} IN ({', '.join(str(i) for i in ids)})" if ids else "false"


def _audit(report: PurgeReport) -> dict[str, object]:
    return {"purge": "consent withdrawn", "patients": report.patients, "deleted": report.deleted}


def _run_purge(con: duckdb.DuckDBPyConnection, report: PurgeReport, steps: list[tuple[str, str]]) -> None:
    """Every step and the audit run in one transaction: a purge that fails or is killed leaves the
    warehouse as it was (possible since migration 0003: DuckDB refused child-then-parent deletes in one
    transaction while foreign keys were enforced)."""
    try:
        with ledger.transaction(con):
            report.run_id = ledger.start_run(con, ledger.PURGE, PURGE_COMMAND)
            # The tombstones first: a later file that still lists the patient must not load them again.
            con.execute(
                "INSERT INTO purged_patient (tombstone, etl_run_id, purged_at) "
                "SELECT DISTINCT sha256($prefix || patient_key), $run, $now FROM purge_target "
                "WHERE sha256($prefix || patient_key) NOT IN (SELECT tombstone FROM purged_patient)",
                {"prefix": TOMBSTONE_PREFIX, "run": report.run_id, "now": ledger.utc_now()},
            )
            for table, where in steps:
                n = int(fetch_value(con, f"SELECT count(*) FROM {table} WHERE {where}"))
                con.execute(f"DELETE FROM {table} WHERE {where}")
                report.deleted[table] = report.deleted.get(table, 0) + n
            ledger.finish_run(con, report.run_id, _audit(report))
    except BaseException:
        report.run_id = None
        report.deleted.clear()
        raise
