"""Consent withdrawal and purge, as the data manager meets them.

`cgdw consent withdraw --group GRAALL G05-00017` takes the patient out of every stable view and every
extract at once; `cgdw purge --withdrawn` then deletes every row of theirs, leaving an audit record of
counts only. Every test works on a copy of the session warehouse (the synthetic cohort, views applied).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from etl import consent
from etl.analysis.table1 import build_table1
from etl.consent import PatientRef, purge_withdrawn, withdraw_consent
from etl.errors import CgdwError
from etl.export import ExportFormat, export_view
from etl.privacy import patient_key
from etl.synth import SynthResult
from etl.warehouse import published_path
from schema.models import Base
from tests.helpers import DATA_TABLES, TEST_KEY, cgdw, fingerprint, query, scalar

SECRET = TEST_KEY.encode()
# The stable view names of the synthetic warehouse whose rows are per patient.
STABLE_VIEWS = (
    "cohort_patient", "endpoint", "gene_copy_number", "ikzf1_alteration", "mrd_result",
    "patient_gene_alteration", "variant_call_annotation", "patient_attribute", "sample_attribute",
    "patient_mrd",
)  # fmt: skip


@dataclass(frozen=True)
class Subject:
    """The GRAALL patient whose consent the tests withdraw: as the data manager knows them and as stored."""

    source_id: str
    key: str
    patient_id: int


def _copy(warehouse: Path, tmp_path: Path, name: str = "copy.duckdb") -> Path:
    return Path(shutil.copy(warehouse, tmp_path / name))


@pytest.fixture(scope="module")
def subject(warehouse: Path, cohort: SynthResult) -> Subject:
    """A GRAALL patient seen by every per-patient view (with MRD and an IKZF1 alteration), whose
    copy-number calls include a second-method confirmation (a row pointing at a row of its own table)."""
    source_ids = pl.read_csv(cohort.files["graall"], separator=";", encoding="latin-1")["NUM_PATIENT"]
    keys = {patient_key(SECRET, "GRAALL", source_id): source_id for source_id in source_ids}
    rows = query(
        warehouse,
        "SELECT patient_id, patient_key FROM patient WHERE trial_group = 'GRAALL' "
        "AND patient_id IN (SELECT patient_id FROM ikzf1_alteration) "
        "AND patient_id IN (SELECT patient_id FROM mrd_result) "
        "AND patient_id IN (SELECT s.patient_id FROM copy_number_call AS c "
        "JOIN sample AS s USING (sample_id) WHERE c.confirms_copy_number_call_id IS NOT NULL) "
        "ORDER BY patient_id LIMIT 1",
    )
    patient_id, key = rows[0]
    assert isinstance(patient_id, int) and isinstance(key, str)
    return Subject(source_id=keys[key], key=key, patient_id=patient_id)


@pytest.fixture(scope="module")
def withdrawn(warehouse: Path, subject: Subject, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the warehouse where the subject withdrew consent (rows not purged yet)."""
    db = _copy(warehouse, tmp_path_factory.mktemp("withdrawn"))
    withdraw_consent(db, PatientRef(trial_group="GRAALL", source_patient_id=subject.source_id), secret=SECRET)
    return db


@pytest.fixture(scope="module")
def purged(withdrawn: Path, subject: Subject, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The withdrawn copy, with a quarantined source row of the subject added, then purged."""
    db = _copy(withdrawn, tmp_path_factory.mktemp("purged"))
    _quarantine_a_row_of(db, subject.source_id)
    purge_withdrawn(db, secret=SECRET)
    return db


def _quarantine_a_row_of(db: Path, source_id: str) -> None:
    """A rejected lab row naming the subject (and one naming nobody), as a load would have quarantined."""
    import duckdb

    with duckdb.connect(str(db)) as con:
        run, source_file = con.execute(
            "SELECT etl_run_id, source_file_id FROM source_file LIMIT 1"
        ).fetchone()
        for value in (f" {source_id} ", "G99-99999"):
            raw = json.dumps({"trial_group": "GRAALL", "patient_id": value, "TLX1": "MAYBE"})
            con.execute(
                "INSERT INTO rejected_record (etl_run_id, source_file_id, line, column_name, value, rule, "
                "message, raw_record) VALUES ($run, $file, 2, 'TLX1', 'MAYBE', 'code:TLX1', 'unknown code', "
                "$raw)",
                {"run": run, "file": source_file, "raw": raw},
            )


def _patient_tables() -> dict[str, str]:
    """Every table that refers to a patient, directly or through a sample -> SQL of that patient's rows
    (with $pid). Read from the models, so that a new table is covered without touching this test."""
    conditions: dict[str, list[str]] = {"patient": ["patient_id = $pid"]}
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            column = fk.parent.name
            if fk.column.table.name == "patient":
                conditions.setdefault(table.name, []).append(f"{column} = $pid")
            elif fk.column.table.name == "sample":
                conditions.setdefault(table.name, []).append(
                    f"{column} IN (SELECT sample_id FROM sample WHERE patient_id = $pid)"
                )
    return {table: " OR ".join(where) for table, where in conditions.items()}


def _rows_of(db: Path, subject: Subject) -> dict[str, int]:
    counts = {
        table: scalar(db, f"SELECT count(*) FROM {table} WHERE {where}", {"pid": subject.patient_id})
        for table, where in _patient_tables().items()
    }
    return {table: int(str(n)) for table, n in counts.items()}


def _others(db: Path, subject: Subject) -> dict[str, list[tuple[object, ...]]]:
    """Every row that is not the subject's, in every table that refers to patients."""
    return {
        table: query(
            db,
            f"SELECT * FROM {table} WHERE ({where}) IS NOT TRUE ORDER BY ALL",
            {"pid": subject.patient_id},
        )
        for table, where in _patient_tables().items()
    }


# --- withdrawal ------------------------------------------------------------------------------------------


def test_the_subject_is_in_every_per_patient_view_before_withdrawal(
    warehouse: Path, subject: Subject
) -> None:
    for view in STABLE_VIEWS:
        assert scalar(warehouse, f"SELECT count(*) FROM {view} WHERE patient_id = {subject.patient_id}"), view


def test_withdrawal_takes_the_patient_out_of_every_stable_view_at_once(
    withdrawn: Path, subject: Subject
) -> None:
    stable = [row[0] for row in query(withdrawn, "SELECT DISTINCT name FROM view_version ORDER BY 1")]
    assert set(stable) == set(STABLE_VIEWS)
    for view in stable:
        assert not scalar(withdrawn, f"SELECT count(*) FROM {view} WHERE patient_id = {subject.patient_id}")
    # The released v1 of the helper views are immutable and still show the rows until the purge.
    assert scalar(withdrawn, f"SELECT count(*) FROM endpoint_v1 WHERE patient_id = {subject.patient_id}")


def test_table1_counts_one_patient_fewer(warehouse: Path, withdrawn: Path) -> None:
    assert build_table1(withdrawn).patients == build_table1(warehouse).patients - 1


def test_extracts_leave_the_patient_out(withdrawn: Path, subject: Subject, tmp_path: Path) -> None:
    for ref in ("cohort_patient", "endpoint", "mrd_result@v1"):
        result = export_view(withdrawn, ref, tmp_path / ref, ExportFormat.parquet)
        assert result.rows > 0
        assert subject.patient_id not in pl.read_parquet(result.data_file)["patient_id"].to_list(), ref


def test_withdrawal_is_a_new_enrolment_version_in_a_run_that_names_no_one(
    withdrawn: Path, subject: Subject
) -> None:
    history = query(
        withdrawn,
        "SELECT consent_status, superseded_by_run_id IS NULL, etl_run_id FROM enrolment "
        "WHERE patient_id = $pid ORDER BY enrolment_id",
        {"pid": subject.patient_id},
    )
    assert [(status, current) for status, current, _ in history] == [("given", False), ("withdrawn", True)]
    run = history[-1][2]
    command, status = query(withdrawn, f"SELECT command, status FROM etl_run WHERE etl_run_id = {run}")[0]
    assert (command, status) == ("cgdw consent withdraw <patient>", "succeeded")
    runs = str(query(withdrawn, "SELECT * FROM etl_run"))
    assert subject.source_id not in runs and subject.key not in runs


def test_withdrawing_again_changes_nothing(withdrawn: Path, subject: Subject, tmp_path: Path) -> None:
    db = _copy(withdrawn, tmp_path)
    before = fingerprint(db)
    result = withdraw_consent(db, PatientRef(patient_key=subject.key))
    assert result.already_withdrawn and "already withdrawn" in result.summary()
    assert fingerprint(db) == before


def test_an_unknown_patient_or_a_wrong_secret_is_a_clear_error(
    warehouse: Path, subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _copy(warehouse, tmp_path)
    before = fingerprint(db)
    with pytest.raises(CgdwError, match=r"no GRAALL patient G99-99999 in "):
        withdraw_consent(db, PatientRef(trial_group="GRAALL", source_patient_id="G99-99999"))
    with pytest.raises(CgdwError, match="no FRALLE patient"):  # the same number in another group
        withdraw_consent(db, PatientRef(trial_group="FRALLE", source_patient_id=subject.source_id))
    monkeypatch.setenv("CGDW_PSEUDONYM_KEY", "not-the-key-the-loads-used")
    with pytest.raises(
        CgdwError, match="the pseudonymisation key is not the one this warehouse was built with"
    ):
        withdraw_consent(db, PatientRef(trial_group="GRAALL", source_patient_id=subject.source_id))
    with pytest.raises(CgdwError, match="either by --group and source patient id, or by --patient-key"):
        PatientRef(trial_group="GRAALL", source_patient_id="x", patient_key="ab")
    assert fingerprint(db) == before


def test_a_later_export_that_still_says_consent_given_does_not_undo_the_withdrawal(
    withdrawn: Path, subject: Subject, cohort: SynthResult, tmp_path: Path
) -> None:
    """The trial database may lag behind: its next export still says OUI. The withdrawal stands (with a
    warning), even when another of the patient's values changed in that export; only `cgdw consent
    restore` brings the patient back."""
    from etl.consent import restore_consent
    from etl.sources.registry import load_source

    db = _copy(withdrawn, tmp_path)
    newer = tmp_path / "graall_newer.csv"
    lines = cohort.files["graall"].read_bytes().decode("latin-1").splitlines(keepends=True)
    header = lines[0].split(";")
    age = header.index("AGE_DIAG")
    row = next(i for i, line in enumerate(lines) if line.startswith(subject.source_id + ";"))
    cells = lines[row].split(";")
    cells[age] = "99"  # a corrected age in the same export: the enrolment row is superseded anyway
    lines[row] = ";".join(cells)
    newer.write_bytes("".join(lines).encode("latin-1"))
    report = load_source(db, "clinical", newer, layout="graall", secret=SECRET)

    current = (
        "SELECT consent_status, age_at_diagnosis_years FROM enrolment "
        "WHERE patient_id = $pid AND superseded_by_run_id IS NULL"
    )
    assert query(db, current, {"pid": subject.patient_id}) == [("withdrawn", 99.0)]
    assert any("the withdrawal stands" in w and w.startswith("1 patients") for w in report.warnings)
    assert not scalar(db, f"SELECT count(*) FROM cohort_patient WHERE patient_id = {subject.patient_id}")

    restored = restore_consent(db, PatientRef(patient_key=subject.key), secret=SECRET)
    assert "consent restored" in restored.summary()
    assert query(db, current, {"pid": subject.patient_id}) == [("given", 99.0)]
    assert scalar(db, f"SELECT count(*) FROM cohort_patient WHERE patient_id = {subject.patient_id}") == 1
    again = restore_consent(db, PatientRef(patient_key=subject.key), secret=SECRET)
    assert again.run_id is None and "already given" in again.summary()


def test_the_command_line_takes_group_and_number_or_the_key(
    warehouse: Path, subject: Subject, tmp_path: Path
) -> None:
    db = _copy(warehouse, tmp_path)
    by_number = cgdw("consent", "withdraw", "--group", "GRAALL", subject.source_id, "--db", str(db))
    assert by_number.returncode == 0, by_number.stderr
    assert "consent withdrawn for GRAALL patient" in by_number.stdout
    by_key = cgdw("consent", "withdraw", "--patient-key", subject.key, "--db", str(db))
    assert by_key.returncode == 0 and "already withdrawn" in by_key.stdout
    unknown = cgdw("consent", "withdraw", "--group", "GRAALL", "G99-99999", "--db", str(db))
    assert unknown.returncode == 1
    assert (
        unknown.stderr.startswith("error: no GRAALL patient G99-99999") and "Traceback" not in unknown.stderr
    )
    commands = [row[0] for row in query(db, "SELECT command FROM etl_run")]
    assert not [c for c in commands if subject.source_id in c or subject.key in c]


# --- purge -----------------------------------------------------------------------------------------------


def test_purge_deletes_every_row_of_the_patient_in_every_table(
    withdrawn: Path, purged: Path, subject: Subject
) -> None:
    before = _rows_of(withdrawn, subject)
    plan = purge_withdrawn(withdrawn, dry_run=True)  # counts, deletes nothing
    assert plan.patients == 1 and {t: n for t, n in plan.deleted.items() if n} == {
        t: n for t, n in before.items() if n
    }
    assert before["enrolment"] == 2  # the given and the withdrawn version
    for table in ("sample", "variant_call", "copy_number_call", "mrd_measurement", "outcome_event"):
        assert before[table], table
    assert set(_rows_of(purged, subject).values()) == {0}
    raw = [row[0] for row in query(purged, "SELECT raw_record FROM rejected_record")]
    assert not [r for r in raw if subject.source_id in r]  # the quarantined row is gone ...
    assert [r for r in raw if "G99-99999" in r]  # ... not the one of nobody


def test_purge_leaves_every_other_patient_and_table_as_it_was(
    withdrawn: Path, purged: Path, subject: Subject
) -> None:
    assert _others(purged, subject) == _others(withdrawn, subject)
    unrelated = set(DATA_TABLES) - set(_patient_tables()) - {"etl_run", "rejected_record", "purged_patient"}
    before, after = fingerprint(withdrawn), fingerprint(purged)
    assert {t: after[t] for t in unrelated} == {t: before[t] for t in unrelated}


def test_the_audit_record_holds_counts_and_no_identifier(purged: Path, subject: Subject) -> None:
    command, status, counts_json = query(
        purged, "SELECT command, status, counts_json FROM etl_run ORDER BY etl_run_id DESC LIMIT 1"
    )[0]
    assert (command, status) == ("cgdw purge --withdrawn", "succeeded")
    audit = json.loads(str(counts_json))
    assert set(audit) == {"purge", "patients", "deleted", "redacted", "compacted"} and audit["patients"] == 1
    assert audit["compacted"] is True  # recorded in the compacted copy that replaced the file
    assert audit["deleted"]["patient"] == 1 and audit["deleted"]["enrolment"] == 2
    assert audit["deleted"]["rejected_record"] == 1
    everything = str(query(purged, "SELECT * FROM etl_run"))
    assert subject.source_id not in everything and subject.key not in everything


def test_purging_again_is_a_no_op(purged: Path, tmp_path: Path) -> None:
    db = _copy(purged, tmp_path)
    before = fingerprint(db)
    report = purge_withdrawn(db)
    assert report.patients == 0 and "nothing to purge" in report.summary()
    assert fingerprint(db) == before


def test_a_purged_patient_cannot_come_back_with_a_later_file(
    warehouse: Path, purged: Path, subject: Subject, cohort: SynthResult, tmp_path: Path
) -> None:
    """The purge leaves tombstones (hashes of the key and of the sample ids, not them): a newer trial export
    or lab file that still lists the patient loads everyone else, and the patient's rows are dropped with a
    warning, neither loaded nor quarantined (a quarantined row would keep their values)."""
    from etl.privacy import sample_tombstone, tombstone
    from etl.sources.registry import load_source

    db = _copy(purged, tmp_path)
    samples = query(
        warehouse, "SELECT sample_key FROM sample WHERE patient_id = $p", {"p": subject.patient_id}
    )
    expected = {tombstone(subject.key), *(sample_tombstone(str(sample)) for (sample,) in samples)}
    assert {row[0] for row in query(db, "SELECT tombstone FROM purged_patient")} == expected
    assert tombstone(subject.key) != subject.key and not scalar(
        db, "SELECT count(*) FROM purged_patient WHERE tombstone = $key", {"key": subject.key}
    )
    quarantined = scalar(db, "SELECT count(*) FROM rejected_record")
    for kind, name, options in [
        ("clinical", "graall", {"layout": "graall"}),
        ("lab", "lab", {}),
        ("mrd", "mrd", {}),
    ]:
        newer = tmp_path / f"newer_{cohort.files[name].name}"
        newer.write_bytes(cohort.files[name].read_bytes().replace(b"\n", b"\r\n"))  # new bytes, same rows
        report = load_source(db, kind, newer, secret=SECRET, **options)
        assert any("purged patients were not loaded" in w for w in report.warnings), (kind, report.warnings)
    assert not scalar(db, "SELECT count(*) FROM patient WHERE patient_key = $key", {"key": subject.key})
    assert scalar(db, "SELECT count(*) FROM rejected_record") == quarantined


def test_views_and_analyses_work_after_the_purge(warehouse: Path, purged: Path) -> None:
    assert build_table1(purged).patients == build_table1(warehouse).patients - 1
    for view in STABLE_VIEWS:
        assert scalar(purged, f"SELECT count(*) FROM {view}")


def test_a_purge_that_fails_half_way_leaves_the_warehouse_as_it_was(
    withdrawn: Path, subject: Subject, tmp_path: Path
) -> None:
    """The purge is one transaction: a failure after some tables were deleted keeps every row (and records
    no run), and the next purge does the whole job."""
    db = _copy(withdrawn, tmp_path)
    before = fingerprint(db)
    full_plan = consent.purge_plan()
    with pytest.MonkeyPatch.context() as patch:
        # Fails after every child table is deleted, just before the patient row.
        patch.setattr(consent, "purge_plan", lambda: [*full_plan[:-1], ("patient", "no_such_column = 1")])
        with pytest.raises(duckdb.BinderException):
            purge_withdrawn(db)
    assert fingerprint(db) == before
    assert _rows_of(db, subject)["patient"] == 1 and _rows_of(db, subject)["enrolment"] > 0
    report = purge_withdrawn(db)
    assert report.patients == 1 and report.deleted["patient"] == 1
    assert set(_rows_of(db, subject).values()) == {0}


def test_the_purge_command_asks_unless_told_yes(withdrawn: Path, tmp_path: Path) -> None:
    db = _copy(withdrawn, tmp_path)
    before = fingerprint(db)
    dry = cgdw("purge", "--withdrawn", "--dry-run", "--db", str(db))
    assert dry.returncode == 0 and "would delete" in dry.stdout and "of 1 patients" in dry.stdout
    refused = cgdw("purge", "--withdrawn", "--db", str(db))  # no terminal to say yes: aborted
    assert refused.returncode == 1
    assert fingerprint(db) == before
    done = cgdw("purge", "--withdrawn", "--yes", "--db", str(db))
    assert done.returncode == 0 and "deleted" in done.stdout, done.stderr
    again = cgdw("purge", "--withdrawn", "--yes", "--db", str(db))
    assert again.returncode == 0 and "nothing to purge" in again.stdout


# --- the analysts' surface: what `cgdw query`, --cohort and export read ---------------------------------


def _surface_rows_of(db: Path, subject: Subject) -> dict[str, int]:
    """Every relation of the analysts' surface that holds patients -> the subject's rows in it."""
    counts = {}
    with duckdb.connect(str(db), read_only=True) as con:
        columns = con.execute(
            "SELECT table_name, list(column_name) FROM information_schema.columns "
            "WHERE table_schema = 'analyst' GROUP BY table_name ORDER BY table_name"
        ).fetchall()
        for relation, names in columns:
            if "patient_id" in names:
                where = "patient_id = $pid"
            elif "sample_id" in names:
                where = "sample_id IN (SELECT sample_id FROM main.sample WHERE patient_id = $pid)"
            else:
                continue  # a reference table
            sql = f'SELECT count(*) FROM analyst."{relation}" WHERE {where}'
            counts[relation] = con.execute(sql, {"pid": subject.patient_id}).fetchall()[0][0]
    return counts


def test_the_analysts_surface_offers_the_views_and_data_tables_but_no_audit_table(warehouse: Path) -> None:
    from schema.models import AUDIT_TABLES

    offered = {row[0] for row in query(warehouse, "SELECT table_name FROM information_schema.tables "
                                                  "WHERE table_schema = 'analyst'")}  # fmt: skip
    versions = {
        f"{name}_v{version}" for name, version in query(warehouse, "SELECT name, version FROM view_version")
    }
    assert versions | set(STABLE_VIEWS) <= offered
    assert {"patient", "enrolment", "variant_call", "mrd_measurement", "gene", "protocol"} <= offered
    assert not offered & set(AUDIT_TABLES) and not [r for r in offered if r.endswith("_materialized")]


def test_withdrawal_takes_the_patient_off_every_relation_of_the_analysts_surface(
    warehouse: Path, withdrawn: Path, subject: Subject
) -> None:
    """Pinned versions (endpoint_v1, mrd_result_v1, ...) and the tables show every patient in the main
    schema; on the surface, the withdrawn patient is in none of them, from the withdrawal on."""
    before, after = _surface_rows_of(warehouse, subject), _surface_rows_of(withdrawn, subject)
    assert set(before) == set(after)
    assert before["endpoint_v1"] and before["mrd_result_v1"] and before["variant_call"] and before["patient"]
    assert after == dict.fromkeys(after, 0)
    from etl.query import run_query

    pinned = run_query(
        withdrawn, f"SELECT count(*) AS n FROM endpoint_v1 WHERE patient_id = {subject.patient_id}"
    )
    assert pinned["n"].to_list() == [0]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM rejected_record",
        "SELECT command FROM etl_run",
        "SELECT * FROM source_file",
        "SELECT * FROM main.endpoint_v1",
        "SELECT * FROM cohort_patient_v3_materialized",
        "SELECT * FROM query_table('patient')",
        "SELECT * FROM duckdb_tables()",
        "WITH e AS (SELECT * FROM main.enrolment) SELECT * FROM e",
        "SELECT * FROM cohort_patient WHERE patient_id IN (SELECT patient_id FROM main.patient)",
        # A CTE named like a warehouse relation reads that relation in its own body (found by a hostile
        # tester): such names are refused, in any case and at any depth.
        "WITH etl_run AS (SELECT * FROM etl_run) SELECT * FROM etl_run",
        "WITH x AS (WITH cohort_patient_v3_materialized AS (SELECT 1) SELECT 1) "
        "SELECT patient_key FROM cohort_patient_v3_materialized",
        "WITH Rejected_Record AS (SELECT 1 AS n) SELECT * FROM rejected_record",
        'SELECT * FROM "MAIN"."ETL_RUN"',
    ],
)
def test_cgdw_query_reads_the_analysts_surface_only(withdrawn: Path, sql: str) -> None:
    from etl.query import run_query
    from etl.sqlguard import UnsafeSql

    with pytest.raises(UnsafeSql, match=r"not on the analysts' surface|is not available in|may not be named"):
        run_query(withdrawn, sql)


def test_cgdw_query_reads_surface_names_in_any_case(withdrawn: Path) -> None:
    from etl.query import run_query

    assert run_query(withdrawn, 'SELECT count(*) AS n FROM "Cohort_Patient"')["n"].to_list() == [475]


def test_an_analysis_cohort_must_be_on_the_analysts_surface(withdrawn: Path) -> None:
    with pytest.raises(CgdwError, match="no view 'rejected_record' on the analysts' surface"):
        build_table1(withdrawn, cohort="rejected_record")


# --- after a purge, nothing holds the patient -----------------------------------------------------------


def _name_the_subject_in_the_audit_trail(db: Path, subject: Subject, sample: str) -> None:
    """Correction files named after the patient and their sample (the number glued to other words, in
    lower case too), loaded by a command that names them, whose run recorded their key among its counts,
    and a quarantined row naming their sample: what a data manager's day can leave behind."""
    number = subject.source_id
    names = [f"graall_correction_{number}.csv", f"graall_{number}-corrige.csv", f"graall_{number}v2.csv",
             f"graall_{number.lower()}.csv", f"cnv_{sample}.tsv"]  # fmt: skip
    with duckdb.connect(str(db)) as con:
        for name in names:
            run = con.execute(
                "INSERT INTO etl_run (kind, command, run_by, code_version, started_at, finished_at, status, "
                "counts_json) VALUES ('load', $command, 'dm', 'cgdw', now()::TIMESTAMP, now()::TIMESTAMP, "
                "'succeeded', $counts) RETURNING etl_run_id",
                {
                    "command": f"cgdw load clinical {name} -p graall",
                    "counts": json.dumps({"absent": [subject.key]}),
                },
            ).fetchall()[0][0]
            con.execute(
                "INSERT INTO source_file (etl_run_id, path, file_name, sha256, size_bytes, kind, layout, "
                "trial_group) VALUES ($run, $path, $name, sha256($name), 1, 'clinical', 'graall', 'GRAALL')",
                {"run": run, "path": f"/srv/cgdw/drop/graall/{name}", "name": name},
            )
        raw = json.dumps({"sample_id": sample, "gene": "NOTAGENE", "call": "deletion"})
        con.execute(
            "INSERT INTO rejected_record (etl_run_id, source_file_id, line, column_name, value, rule, "
            "message, raw_record) SELECT etl_run_id, source_file_id, 2, 'gene', 'NOTAGENE', 'known_gene', "
            "'unknown gene', $raw FROM source_file ORDER BY source_file_id DESC LIMIT 1",
            {"raw": raw},
        )


def _a_sample_of(db: Path, subject: Subject) -> str:
    return str(
        scalar(db, "SELECT min(sample_key) FROM sample WHERE patient_id = $p", {"p": subject.patient_id})
    )


def test_after_a_purge_no_relation_stored_copy_name_or_byte_of_the_file_holds_the_patient(
    withdrawn: Path, subject: Subject, tmp_path: Path
) -> None:
    """The stored copy of cohort_patient (built before the withdrawal), file names, command lines, run
    counts, a quarantined row naming a sample of the patient, and the deleted values left in freed blocks
    of the file: all gone after `cgdw purge`."""
    db = _copy(withdrawn, tmp_path)
    sample = _a_sample_of(db, subject)
    _name_the_subject_in_the_audit_trail(db, subject, sample)
    _quarantine_a_row_of(db, subject.source_id)
    stored = f"SELECT count(*) FROM cohort_patient_v3_materialized WHERE patient_id = {subject.patient_id}"
    assert scalar(db, stored) == 1
    identifiers = (subject.source_id.encode(), subject.source_id.lower().encode(), subject.key.encode(),
                   sample.encode())  # fmt: skip
    assert all(value in db.read_bytes() for value in identifiers)

    report = purge_withdrawn(db)

    assert report.redacted == 20 and report.compacted and scalar(db, stored) == 0  # 5 files x 4 values
    audit = str(query(db, "SELECT * FROM source_file")) + str(query(db, "SELECT * FROM etl_run"))
    audit += str(query(db, "SELECT * FROM rejected_record"))
    for value in (subject.source_id, subject.source_id.lower(), subject.key, sample):
        assert value not in audit
    assert "graall_[purged]-corrige.csv" in audit and "graall_[purged]v2.csv" in audit
    assert not any(value in db.read_bytes() for value in identifiers)
    # The copy readers open was replaced by a copy of the compacted file at the purge's end.
    assert not any(value in published_path(db).read_bytes() for value in identifiers)
    assert sorted(p.name for p in db.parent.iterdir() if p.name.startswith(db.name)) == [
        db.name,
        f"{db.name}.lock",
    ]


def test_a_compaction_cut_short_is_finished_by_the_next_purge(
    withdrawn: Path, subject: Subject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purge commits, then the process dies while rewriting the file: every relation is purged, but the
    freed blocks still hold the patient. The next `cgdw purge`, with nothing left to purge, compacts."""
    db = _copy(withdrawn, tmp_path)

    def killed(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
        raise KeyboardInterrupt  # as a SIGINT or a kill would stop it, after the commit

    with monkeypatch.context() as patch:
        patch.setattr(consent, "compact", killed)
        with pytest.raises(KeyboardInterrupt):
            purge_withdrawn(db)
    assert set(_rows_of(db, subject).values()) == {0} and subject.key.encode() in db.read_bytes()
    again = purge_withdrawn(db)
    assert again.patients == 0 and again.compacted and subject.key.encode() not in db.read_bytes()
    assert not purge_withdrawn(db).compacted  # nothing pending any more


def test_extracts_and_the_report_made_after_a_purge_do_not_name_the_patient(
    withdrawn: Path, subject: Subject, tmp_path: Path
) -> None:
    from etl.report import write_report

    db = _copy(withdrawn, tmp_path)
    _name_the_subject_in_the_audit_trail(db, subject, _a_sample_of(db, subject))
    purge_withdrawn(db)
    export_view(db, "cohort_patient", tmp_path / "extract", ExportFormat.csv)
    report = write_report(db, tmp_path / "report.html")
    for text in ((tmp_path / "extract" / "manifest.json").read_text(), report.read_text()):
        assert subject.source_id not in text and subject.key not in text


def test_the_pipeline_rebuilds_a_stored_copy_a_purge_left_stale(purged: Path) -> None:
    from etl.views import apply_views, views_outdated

    assert views_outdated(purged)  # the purge is a data-changing run after the copy was built
    apply_views(purged)
    assert not views_outdated(purged)
