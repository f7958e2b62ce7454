"""`cgdw lake export|status`: the warehouse as a Parquet lake, for Spark (docs/scale-out.md).

`export_lake` writes what an analyst may read, nothing else: every table of the analysts' surface
(etl/surface.py: consented patients only; the audit tables, the quarantine's raw rows and stored view
copies are not on it), one folder per table, plus `manifest.json`:

- per table: rows, columns with their DuckDB types, how it is partitioned, each file with its sha256;
- the live view versions (name, version, SQL checksum; the SELECT of the generated ones, patient_attribute
  and patient_mrd, which no file ships) and the SELECT of each stable name, as the warehouse runs them;
- the schema revision, the last run the warehouse had committed (`warehouse_run`), the loaded files'
  names and hashes, the warehouse's identity (`lake_status` compares a lake with its own warehouse only),
  cgdw's version, time.

Partitions, where a reader can skip folders: the variant tables by chromosome (variant_call and
variant_annotation through their variant: a derived folder key, dropped again when Spark reads them),
copy-number calls and segments by their chromosome, the clinical facts by the protocol of the patient's
current enrolment (derived the same way). Partition folders are keyed by value, so a table's columns on
Spark are exactly its columns in DuckDB.

An export replaces the whole lake at once: it is written beside it and renamed into place, so a reader
sees the old lake or the new one, never half of each; a killed export leaves the old lake (and its own
staging folder, which the next export removes). Only a lake, or an empty directory, is replaced. It is a
snapshot: a consent withdrawal or a purge after it does not reach it until the next export (which is how a
purge reaches the lake; `lake_status` says when a lake is behind the warehouse, and which runs it misses).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from etl import __version__
from etl.errors import CgdwError
from etl.privacy import identifier_columns
from etl.spark import LAKE_FORMAT, MANIFEST, file_entries, read_manifest, sha256_of, stored_copies
from etl.surface import SCHEMA, surface_relations
from etl.warehouse import fetch_value, open_for_read, utc_now
from schema.vocabulary import AUDIT_TABLES

# Partition folder keys: the table's own column, or derived (column, SELECT of (key id, value)).
_BY_PATIENT_PROTOCOL = (
    "protocol_code",
    "SELECT patient_id, min(protocol_code) AS protocol_code FROM analyst.enrolment "
    "WHERE superseded_by_run_id IS NULL GROUP BY patient_id",
    "patient_id",
)
_BY_VARIANT_CHROM = ("chrom", "SELECT variant_id, chrom FROM analyst.variant", "variant_id")
OWN_PARTITION = {"variant": "chrom", "copy_number_call": "chrom", "copy_number_segment": "chrom",
                 "enrolment": "protocol_code"}  # fmt: skip
CLINICAL_FACTS = ("baseline", "treatment_response", "outcome_event", "oncogenetic_result", "immunophenotype",
                  "mrd_measurement", "reported_endpoint", "attribute_value")  # fmt: skip
DERIVED_PARTITION = {
    "variant_call": _BY_VARIANT_CHROM,
    "variant_annotation": _BY_VARIANT_CHROM,
    **dict.fromkeys(CLINICAL_FACTS, _BY_PATIENT_PROTOCOL),
}


@dataclass
class LakeReport:
    path: Path
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows
    files: int = 0
    bytes: int = 0
    warehouse_run: int | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        rows = sum(self.tables.values())
        return (
            f"lake {self.path}: {len(self.tables)} tables, {rows:,} rows of consented patients in "
            f"{self.files} Parquet files ({self.bytes / 1e6:.1f} MB), as of run {self.warehouse_run}, "
            f"in {self.seconds:.1f} s"
        )


def _surface_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    from schema.models import Base  # SQLAlchemy only here: the table list

    offered = surface_relations(con)
    return [t.name for t in Base.metadata.sorted_tables if t.name not in AUDIT_TABLES and t.name in offered]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[list[str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $schema "
        "AND table_name = $table ORDER BY ordinal_position",
        {"schema": SCHEMA, "table": table},
    ).fetchall()
    return [[name, data_type] for name, data_type in rows]


def _export_table(con: duckdb.DuckDBPyConnection, table: str, folder: Path) -> dict[str, Any]:
    columns = _columns(con, table)
    names = [name for name, _ in columns]
    # Rows about patients: the schema holds no identifier, and a lake is no place to find out otherwise
    # (reference tables, e.g. gene_panel.name, name no person).
    denied = identifier_columns(names) if {"patient_id", "sample_id"} & set(names) else []
    if denied:
        raise CgdwError(f"table {table} has identifier-like columns {', '.join(denied)}: nothing exported")
    source = f'SELECT * FROM {SCHEMA}."{table}"'
    rows = int(fetch_value(con, f"SELECT count(*) FROM ({source})"))
    partition, derived = OWN_PARTITION.get(table), False
    if partition and fetch_value(con, f"SELECT count(*) FROM ({source}) WHERE {partition} IS NULL"):
        partition = None  # a NULL folder key would come back as text: one file keeps the NULLs
    if not rows:
        partition = None  # an empty table is one file with its columns, not an empty folder
    elif table in DERIVED_PARTITION:
        key, lookup, on = DERIVED_PARTITION[table]
        if key not in names and on in names:
            source = (
                f'SELECT t.*, k.{key} AS {key} FROM {SCHEMA}."{table}" AS t '
                f"LEFT JOIN ({lookup}) AS k ON k.{on} = t.{on}"
            )
            partition, derived = key, True
    folder.mkdir(parents=True)
    target = str(folder if partition else folder / "part-0.parquet").replace("'", "''")
    options = f"FORMAT parquet, PARTITION_BY ({partition})" if partition else "FORMAT parquet"
    con.execute(f"COPY ({source}) TO '{target}' ({options})")
    files = sorted(p for p in folder.rglob("*.parquet"))
    return {
        "rows": rows,
        "columns": columns,
        "partition_by": partition,
        "partition_derived": derived,  # a folder key, not a column of the table
        "files": file_entries(folder.parent, files),
    }


def _views(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    versions = con.execute(
        "SELECT name, version, sql_sha256, generated_sql FROM view_version WHERE retired_at IS NULL "
        "ORDER BY name, version"
    ).fetchall()
    stable = dict(
        con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
        ).fetchall()
    )
    live = [{"name": n, "version": v, "sql_sha256": sha, "generated_sql": g} for n, v, sha, g in versions]
    names = sorted({row["name"] for row in live})
    relations = [*(f"{row['name']}_v{row['version']}" for row in live), *names]
    mrd = con.execute("SELECT generated_sql FROM view_version WHERE name = 'patient_mrd'").fetchall()
    return {
        "versions": live,
        "stable": {name: _select_of(stable[name]) for name in names if name in stable},
        # What an extract's data dictionary says of each column (etl/export.py), as the warehouse types it.
        "columns": {relation: _columns(con, relation) for relation in relations},
        "patient_mrd_sql": [sql for (sql,) in mrd if sql],  # every version's: they name the MRD columns
    }


def _source_files(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The files the warehouse loaded (kind, name, sha256, run): an extract's provenance."""
    rows = con.execute(
        "SELECT r.etl_run_id, f.kind, f.file_name, f.sha256 FROM etl_run AS r JOIN source_file AS f "
        "USING (etl_run_id) WHERE r.status = 'succeeded' ORDER BY r.etl_run_id, f.source_file_id"
    ).fetchall()
    return [
        {"etl_run_id": run, "kind": kind, "file_name": name, "sha256": sha} for run, kind, name, sha in rows
    ]


def _select_of(create_view: str) -> str:
    """The SELECT of DuckDB's `CREATE VIEW name AS SELECT ...;`."""
    head, _, select = create_view.partition(" AS ")
    if not head.upper().startswith("CREATE VIEW"):
        raise CgdwError(f"unexpected view definition in the warehouse: {create_view[:80]}")
    return select.strip().rstrip(";")


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _refuse_to_replace(out: Path) -> None:
    """An export replaces `out` whole: only a lake, or an empty or new directory, is given up."""
    if out.exists() and not out.is_dir():
        raise CgdwError(f"--out {out} is a file: give a directory (it is created if it does not exist)")
    if out.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
        raise CgdwError(f"--out {out} is the current directory or holds it: give a directory of its own")
    if not out.exists() or not any(out.iterdir()):
        return
    try:
        read_manifest(out)
    except (CgdwError, ValueError) as exc:  # no manifest, not JSON, not a cgdw lake's
        raise CgdwError(
            f"--out {out} holds files and is not a cgdw lake ({exc}): nothing replaced; give an empty or "
            "new directory"
        ) from None


def _leftovers(out: Path) -> list[Path]:
    """Staging and replaced folders that a killed export left beside the lake (they hold patient rows)."""
    return sorted(out.parent.glob(f".{out.name}.partial-*")) + sorted(
        out.parent.glob(f".{out.name}.replaced-*")
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(out: Path) -> None:
    for folder in _leftovers(out):
        pid = folder.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _alive(int(pid))):  # an export still at work keeps its own
            shutil.rmtree(folder, ignore_errors=True)


def warehouse_identity(con: duckdb.DuckDBPyConnection) -> str:
    """What tells one warehouse from another for as long as it lives: its first run's start and the
    fingerprint of its pseudonymisation key (neither changes; runs are never deleted)."""
    first = fetch_value(con, "SELECT min(started_at) FROM etl_run")
    keys = ",".join(
        sorted(str(f) for (f,) in con.execute("SELECT fingerprint FROM key_fingerprint").fetchall())
    )
    return hashlib.sha256(f"{first}|{keys}".encode()).hexdigest()[:16]


def export_lake(db_path: Path, out: Path) -> LakeReport:
    """Write the lake of the warehouse's published copy into `out`, replacing the lake there, if any."""
    started = time.monotonic()
    _refuse_to_replace(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    report = LakeReport(path=out)
    try:
        with open_for_read(db_path) as con:
            tables = _surface_tables(con)
            if not tables:
                raise CgdwError(f"{db_path} has no analysts' surface yet: run `cgdw views apply` first")
            exported = {table: _export_table(con, table, staging / table) for table in tables}
            report.warehouse_run = fetch_value(
                con, "SELECT max(etl_run_id) FROM etl_run WHERE status = 'succeeded'"
            )
            manifest = {
                "format": LAKE_FORMAT,
                "cgdw_version": __version__,
                "exported_at": utc_now().isoformat(),
                "schema_revision": fetch_value(con, "SELECT version_num FROM alembic_version"),
                "warehouse_run": report.warehouse_run,
                "warehouse": db_path.name,  # the name only, as extracts record it
                "warehouse_id": warehouse_identity(con),
                # The newest run the published copy holds, failed ones too (an extract's warehouse_run).
                "last_run": fetch_value(
                    con, "SELECT max(etl_run_id) FROM etl_run WHERE finished_at IS NOT NULL"
                ),
                "source_files": _source_files(con),
                "tables": exported,
                "views": _views(con),
            }
        _write_manifest(staging, manifest)
        old = out.parent / f".{out.name}.replaced-{os.getpid()}"
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.tables = {table: meta["rows"] for table, meta in exported.items()}
    report.files = sum(len(meta["files"]) for meta in exported.values())
    report.bytes = sum(f["bytes"] for meta in exported.values() for f in meta["files"])
    report.seconds = time.monotonic() - started
    return report


@dataclass
class LakeStatus:
    path: Path
    warehouse_run: int
    missed: list[tuple[int, str, str]]  # (run, kind, command) committed after the export
    damaged: list[str]  # files whose size or checksum differs from the manifest, or that it does not list
    leftovers: list[Path] = field(default_factory=list)  # folders of killed exports beside the lake

    @property
    def current(self) -> bool:
        return not self.missed and not self.damaged and not self.leftovers

    def summary(self) -> str:
        lines = [f"lake {self.path}: as of run {self.warehouse_run}"]
        if self.missed:
            kinds = sorted({kind for _, kind, _ in self.missed})
            privacy = "; a consent change or purge is not in it until then"
            lines.append(
                f"behind the warehouse by {len(self.missed)} runs ({', '.join(kinds)}): export it again "
                f"(`cgdw lake export`){privacy if {'consent', 'purge'} & set(kinds) else ''}"
            )
            lines += [f"  run {run} {kind}: {command}" for run, kind, command in self.missed]
        lines += [f"damaged: {path}" for path in self.damaged]
        lines += [
            f"left by a killed export (patient rows; the next export removes it): {folder}"
            for folder in self.leftovers
        ]
        if self.current:
            lines.append("current: every change the warehouse committed is in it, every file as written")
        return "\n".join(lines)


def lake_status(db_path: Path, lake: Path, *, verify: bool = True) -> LakeStatus:
    """Whether a lake still reflects the warehouse: the data-changing runs committed since its export,
    and (with verify) the files whose checksum no longer matches the manifest."""
    manifest = read_manifest(lake)
    since = int(manifest["warehouse_run"] or 0)
    with open_for_read(db_path) as con:
        if manifest.get("warehouse_id") != warehouse_identity(con):
            raise CgdwError(
                f"{lake} was exported from another warehouse than {db_path} "
                f"({manifest.get('warehouse', '?')}): give the --db it came from"
            )
        missed = con.execute(
            "SELECT etl_run_id, kind, command FROM etl_run WHERE etl_run_id > $since "
            "AND status = 'succeeded' AND kind <> 'views_apply' ORDER BY etl_run_id",
            {"since": since},
        ).fetchall()
    listed = [entry for meta in manifest["tables"].values() for entry in meta["files"]]
    listed += [entry for copy in stored_copies(lake, manifest).values() for entry in copy["files"]]
    damaged = []
    for entry in listed if verify else []:
        path = lake / entry["path"]
        intact = path.is_file() and path.stat().st_size == entry["bytes"]
        if not intact or sha256_of(path) != entry["sha256"]:
            damaged.append(entry["path"])
    known = {entry["path"] for entry in listed}
    unlisted = (str(path.relative_to(lake)) for path in lake.rglob("*.parquet"))
    damaged += sorted(path for path in unlisted if path not in known)
    missed_runs = [(int(r), str(k), str(c)) for r, k, c in missed]
    return LakeStatus(lake, since, missed_runs, damaged, _leftovers(lake))
