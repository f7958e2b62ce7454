"""What the test modules share: paths and the test key, the files tests write, the commands they run, and
reading the warehouse the way an analyst would. Fixtures live in conftest.py; no test module imports
another."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from queries import view_sql
from schema.models import Base

if TYPE_CHECKING:
    from etl.load.framework import LoadReport
    from etl.synth import SynthResult

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TEST_KEY = "test-pseudonym-key-0123456789"


# --- the warehouse, read as an analyst would ----------------------------------------------------------

TABLES = tuple(Base.metadata.tables)  # every table of the schema
# What `fingerprint` compares: everything but the record of published copies, which a write that changes
# nothing (a file loaded again) may add to, when it publishes what a killed run committed.
DATA_TABLES = tuple(t for t in TABLES if t != "publication")


def query(db_path: Path, sql: str, params: dict[str, object] | None = None) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def scalar(db_path: Path, sql: str, params: dict[str, object] | None = None) -> object:
    return query(db_path, sql, params)[0][0]


def fingerprint(db_path: Path) -> dict[str, str]:
    """A checksum of every row of every table (but `publication`): equal fingerprints mean an unchanged
    database."""
    result = {}
    with duckdb.connect(str(db_path), read_only=True) as con:
        for table in DATA_TABLES:
            rows = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            result[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return result


def view_rows(db_path: Path, name: str, columns: str = "*", where: str = "true") -> list[tuple[object, ...]]:
    return query(db_path, f"SELECT {columns} FROM ({view_sql(name)}) WHERE {where} ORDER BY ALL")


# --- loading the synthetic cohort ----------------------------------------------------------------------


def load_cohort(db: Path, cohort: SynthResult, kinds: tuple[str, ...] | None = None) -> list[LoadReport]:
    """Every file of the cohort (or those of the given kinds), in dependency order, as the demo does."""
    from etl.demo import demo_sources
    from etl.sources.registry import load_source

    return [
        load_source(db, kind, path, **options)
        for kind, path, options in demo_sources(cohort.files, TEST_KEY.encode())
        if kinds is None or kind in kinds
    ]


# --- small GRAALL exports written by the tests ---------------------------------------------------------

GRAALL_HEADER = (
    "NUM_PATIENT;PROTOCOLE;SEXE;AGE_DIAG;DATE_DIAG;DIAGNOSTIC;GB_MM3;ATTEINTE_SNC;MASSE_MEDIASTINALE;"
    "CORTICOSENSIBILITE;RC_INDUCTION;DATE_RC;ALLOGREFFE_RC1;DATE_ALLOGREFFE;DATE_RECHUTE;DATE_RECHUTE_2;"
    "STATUT_VITAL;DATE_DECES;CAUSE_DECES;DATE_DERNIERES_NOUVELLES;CONSENTEMENT"
)

ALIVE = (
    "G03-00001;GRAALL-2003;M;23,5;12/03/2004;LAL-T;74100;NON;OUI;CORTICOSENSIBLE;OUI;15/04/2004;NON;;;;"
    "VIVANT;;;01/06/2010;OUI"
)

DEAD = (
    "G03-00002;GRAALL-2003;F;45,1;01/02/2004;LAL-T;2800;NE;;CORTICORESISTANT;OUI;01/03/2004;OUI;01/07/2004;"
    "01/01/2005;;DÉCÉDÉ;01/06/2005;LEUCÉMIE;01/06/2005;OUI"
)

REFRACTORY = (
    "G05-00003;GRAALL-2005;M;30,0;10/10/2008;LAL-T;150000;OUI;NON;NE;NON;;;;;;DÉCÉDÉ;01/12/2008;LEUCÉMIE;"
    "01/12/2008;OUI"
)


def write_graall(path: Path, *rows: str, header: str = GRAALL_HEADER, encoding: str = "latin-1") -> Path:
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path


# The columns of a sample manifest (layout samples), for the manifests tests write.
MANIFEST_HEADER = "\t".join(
    ["sample_id", "trial_group", "patient_id", "sample_type", "tissue", "days_from_diagnosis", "assay",
     "assay_version", "assembly", "pipeline_version"]
)  # fmt: skip


# --- the cgdw command, run as a user would ---------------------------------------------------------------


def cgdw(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base_env = {"PATH": "/usr/bin:/bin", "CGDW_PSEUDONYM_KEY": TEST_KEY, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "etl", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base_env, **(env or {})},
    )


def start_load(db: Path, export: Path, fault_point: str, marker: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CGDW_PSEUDONYM_KEY": TEST_KEY,
        "CGDW_FAULT_POINT": fault_point,
        "CGDW_FAULT_MARKER": str(marker),
    }
    command = [
        sys.executable,
        "-m",
        "etl",
        "load",
        "clinical",
        str(export),
        "-p",
        "graall",
        "--db",
        str(db),
        "-q",
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(marker: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"the load ended before the fault point: {process.stderr.read()!r}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise AssertionError("the load never reached the fault point")
        time.sleep(0.05)


@contextmanager
def held_load(db: Path, tmp_path: Path) -> Iterator[None]:
    """A `cgdw load clinical` holding the warehouse (lock file and DuckDB's own lock), killed at the end."""
    export = write_graall(tmp_path / "held.csv", ALIVE, DEAD, REFRACTORY)
    marker = tmp_path / "held"
    process = start_load(db, export, "after_register", marker)
    try:
        wait_for(marker, process)
        yield
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


# --- a data manager's drop folders and pipeline configuration ----------------------------------------

# Drop folder -> (kind, layout, glob): the configuration of docs/scheduling.md, with relative folders.
SOURCES = {
    "graall": ("clinical", "graall", "graall_*.csv"),
    "fralle": ("clinical", "fralle", "fralle_*.xlsx"),
    "lab": ("lab", None, "*.tsv"),
    "samples": ("samples", None, "*.tsv"),
    "vcf": ("vcf", None, "*.vcf*"),
    "maf": ("maf", None, "*.maf*"),
    "cnv": ("cnv", None, "*.tsv"),
    "seg": ("seg", None, "*.seg"),
    "mrd": ("mrd", None, "*.tsv"),
}


def drop(root: Path, cohort: SynthResult, *keys: str) -> None:
    """Copy cohort files into their drop folders (all of them when no key is given)."""
    for key in keys or tuple(SOURCES):
        folder = root / "drop" / key
        folder.mkdir(parents=True, exist_ok=True)
        source = cohort.files[key]
        for path in sorted(source.glob("*.vcf")) if source.is_dir() else [source]:
            shutil.copy(path, folder / path.name)


def write_config(root: Path, extra: str = "") -> Path:
    """The pipeline configuration of a test: every drop folder (created empty), warehouse beside it."""
    lines = ["warehouse: warehouse.duckdb", "log: logs/pipeline.jsonl", extra, "sources:"]
    for key, (kind, layout, pattern) in SOURCES.items():
        (root / "drop" / key).mkdir(parents=True, exist_ok=True)
        layout_key = f", layout: {layout}" if layout else ""
        lines.append(f'  - {{kind: {kind}, folder: drop/{key}, pattern: "{pattern}"{layout_key}}}')
    config = root / "pipeline.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def command(site: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "etl", "pipeline", "run", "--config", str(site / "pipeline.yaml"), *args]


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "CGDW_PSEUDONYM_KEY": TEST_KEY, "COLUMNS": "250", **(extra or {})}


# --- small FRALLE workbooks written by the tests -------------------------------------------------------

FRALLE_ROW: dict[str, object] = {
    "patient_id": "FR2000-0001", "protocol": "FRALLE-2000", "sex": "male", "age_at_diagnosis": 12.5,
    "diagnosis_date": "2001-03-04", "diagnosis": "T-ALL", "wbc_g_l": 45.5, "cns_involvement": "no",
    "mediastinal_mass": "yes", "prednisone_response": "good", "complete_remission": "yes",
    "cr_date": "2001-04-10", "hsct_first_cr": "no", "hsct_date": None, "relapse_date": None,
    "second_relapse_date": None, "vital_status": "alive", "death_date": None, "death_cause": None,
    "last_contact_date": "2010-01-01", "consent": "given",
}  # fmt: skip


def write_fralle(path: Path, *rows: dict[str, object], computed: bool = False) -> Path:
    """A FRALLE workbook (sheet 'patients'). A cell given as a ("=FORMULA", cached value) pair is a
    formula. xlsxwriter asks spreadsheets to recalculate every formula on load (its cached values are
    placeholders); computed=True drops that request, as in a workbook saved by Excel."""
    import zipfile

    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    sheet = workbook.add_worksheet("patients")
    sheet.write_row(0, 0, list(FRALLE_ROW))
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row.values()):
            if isinstance(value, tuple):
                sheet.write_formula(r, c, value[0], None, value[1])
            elif value is not None:
                sheet.write(r, c, value)
    workbook.close()
    if computed:
        with zipfile.ZipFile(path) as source:
            parts = {name: source.read(name) for name in source.namelist()}
        parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(b' fullCalcOnLoad="1"', b"")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
            for name, data in parts.items():
                target.writestr(name, data)
    return path


# --- sequencing samples written by the tests, and a purged one ----------------------------------------


def write_sample_manifest(
    path: Path, samples: list[str], patient: str = "G03-00001", assembly: str = "GRCh37"
) -> Path:
    """A sample manifest (layout samples) naming `samples` for one GRAALL patient, on one assay."""
    version = "1" if assembly == "GRCh37" else "2"
    rows = [
        f"{s}\tGRAALL\t{patient}\tdiagnosis\tBM\t0\tTALL80\t{version}\t{assembly}\tpipeline 1"
        for s in samples
    ]
    path.write_text("\n".join([MANIFEST_HEADER, *rows]) + "\n")
    return path


def record_purged_sample(db_path: Path, sample_key: str) -> None:
    """The tombstone a purge keeps of a purged patient's sample (etl.privacy.sample_tombstone), as the
    purge writes it: in purged_patient, under the latest run."""
    from etl.privacy import sample_tombstone

    with duckdb.connect(str(db_path)) as con:
        con.execute(
            "INSERT INTO purged_patient (tombstone, etl_run_id, purged_at) "
            "SELECT $tombstone, max(etl_run_id), now()::TIMESTAMP FROM etl_run",
            {"tombstone": sample_tombstone(sample_key)},
        )


# --- two engines, one answer (tests/test_spark.py) ----------------------------------------------------


def assert_close(duckdb_value: object, spark_value: object, rel: float = 1e-12, where: str = "$") -> None:
    """Equal JSON-like values, floats to `rel` relative (Java's Math.log is not C's: a log differs in its
    last bit); the path of the first difference in the message."""
    if isinstance(duckdb_value, float) and isinstance(spark_value, float):
        if duckdb_value != spark_value and not math.isclose(
            duckdb_value, spark_value, rel_tol=rel, abs_tol=0
        ):
            raise AssertionError(f"{where}: {duckdb_value!r} (DuckDB) != {spark_value!r} (Spark)")
    elif isinstance(duckdb_value, dict) and isinstance(spark_value, dict):
        assert list(duckdb_value) == list(spark_value), (
            f"{where}: keys {list(duckdb_value)} != {list(spark_value)}"
        )
        for key in duckdb_value:
            assert_close(duckdb_value[key], spark_value[key], rel, f"{where}.{key}")
    elif isinstance(duckdb_value, list) and isinstance(spark_value, list):
        assert len(duckdb_value) == len(spark_value), (
            f"{where}: {len(duckdb_value)} != {len(spark_value)} items"
        )
        for index, (a, b) in enumerate(zip(duckdb_value, spark_value, strict=True)):
            assert_close(a, b, rel, f"{where}[{index}]")
    else:
        assert duckdb_value == spark_value, f"{where}: {duckdb_value!r} (DuckDB) != {spark_value!r} (Spark)"
