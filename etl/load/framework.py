"""The load framework shared by every loader: one load = one ETL run = one transaction.

    register run and file (sha256) -> read -> transform -> validate (pandera, lazy) -> reference checks
    -> quarantine failing rows -> bulk insert valid rows -> counts -> commit

A file-level problem, or more rejected rows than --max-reject-fraction, raises FileRejected and rolls the
transaction back: the database is left exactly as it was. Loading bytes already loaded is a no-op.
"""

from __future__ import annotations

import datetime as dt
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import polars as pl

from etl import ledger
from etl.errors import FileRejected
from etl.faults import fault_point
from etl.load import DEFAULT_MAX_REJECT_FRACTION
from etl.load.readers import LINE, FileInfo, file_info
from etl.load.snapshot import newer_export
from etl.load.transform import empty_issues
from etl.privacy import check_key
from etl.warehouse import LOAD_MEMORY_LIMIT, fetch_value, open_for_write

Progress = Callable[[str], None]


@dataclass
class Batch:
    """A slice of a source file: raw text (+ `_line`), the canonical records row-aligned with it, and the
    issues found so far (parse and schema)."""

    raw: pl.DataFrame
    records: pl.DataFrame
    issues: pl.DataFrame
    parts: dict[str, pl.DataFrame] = field(default_factory=dict)  # more records keyed by `_line`
    # Problems that withhold one fact of a line, not the line: the loader has already left that fact out
    # of its records (a relapse without a CR, an attribute value that is not a number); the line's other
    # facts load. Quarantined like the others, with the rule and the raw line.
    fact_issues: pl.DataFrame = field(default_factory=empty_issues)
    # The records of the lines left out (quarantined), as far as they could be read: a loader whose
    # snapshot is finer than a patient holds back what those lines would have corrected.
    rejected_records: pl.DataFrame = field(default_factory=pl.DataFrame)

    def without_lines(self, lines: pl.Series) -> Batch:
        """The batch without the given source lines (the rejected ones), in every frame."""
        keep = ~pl.col(LINE).is_in(lines.implode())
        return Batch(
            raw=self.raw.filter(keep),
            records=self.records.filter(keep),
            issues=self.issues.filter(keep),
            parts={name: part.filter(keep) for name, part in self.parts.items()},
            fact_issues=self.fact_issues.filter(keep),
            rejected_records=self.records.filter(~keep),
        )


@dataclass(frozen=True)
class LoadContext:
    run_id: int
    source_file_id: int
    path: Path


class SourceLoader(ABC):
    """One subclass per source kind (etl/sources/registry.py lists them)."""

    kind: ClassVar[str]
    dated: ClassVar[bool] = False  # its files are dated snapshots: an export older than one loaded is refused
    layout_name: str
    trial_group: str | None = None
    secret: bytes | None = None  # the pseudonymisation secret, for loaders that key patients
    warnings: list[str]
    audit: dict[str, Any]  # what the run's counts_json records besides tables and warnings

    def export_date(self, path: Path) -> dt.date | None:
        """The day the source exported the file, when the file says it (e.g. by its name)."""
        return None

    def prepare(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:  # noqa: B027 (optional hook)
        """Before reading: checks that need the warehouse and the whole file (e.g. a VCF's samples)."""

    @abstractmethod
    def batches(self, path: Path) -> Iterator[Batch]:
        """Read, transform and validate the file, in batches (one for small tabular files)."""

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        """Issues that need the warehouse (e.g. a lab row for a patient no trial export has)."""
        return empty_issues()

    @abstractmethod
    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        """Insert the batch's valid records in bulk; return per-table counts."""

    def finish(self, con: duckdb.DuckDBPyConnection, ctx: LoadContext) -> dict[str, Any]:
        """After all batches: work that needs the whole file (a per-sample snapshot merge); returns counts.
        Warnings worth a human's attention go to `self.warnings`."""
        return {}


@dataclass
class LoadReport:
    path: Path
    kind: str
    layout: str
    sha256: str
    run_id: int | None = None
    noop: bool = False
    dry_run: bool = False
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    tables: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    issues: pl.DataFrame = field(default_factory=empty_issues)
    fact_issues: pl.DataFrame = field(default_factory=empty_issues)  # facts withheld, lines loaded
    file_problem: str | None = None  # why the whole file would be rejected (dry runs report it)
    dated: bool = False  # a kind whose exports are dated (layout-driven)
    export_date: dt.date | None = None

    def summary(self) -> str:
        if self.noop:
            return f"{self.path}: already loaded by run {self.run_id} (same sha256), nothing to do"
        if self.file_problem:
            return f"{self.path}: would be rejected whole: {self.file_problem}"
        verb = "would load" if self.dry_run else f"run {self.run_id}: loaded"
        exported = (
            f"exported {self.export_date}" if self.export_date else "export date unknown (not compared)"
        )
        return (
            (
                f"{self.path}: {verb} {self.rows_loaded} of {self.rows_read} rows, "
                f"{self.rows_rejected} rejected ({self.issues.height} problems)"
            )
            + (
                f"; {self.fact_issues.height} values withheld from loaded rows (quarantined)"
                if self.fact_issues.height
                else ""
            )
            + (f"; {exported}" if self.dated else "")
        )


def _rejected_lines(issues: pl.DataFrame) -> pl.Series:
    return issues.get_column(LINE).unique()


def _write_rejects(
    con: duckdb.DuckDBPyConnection, batch: Batch, issues: pl.DataFrame, ctx: LoadContext
) -> None:
    raw_json = batch.raw.select(
        pl.col(LINE), pl.struct(pl.exclude(LINE)).struct.json_encode().alias("raw_record")
    )
    rejects = issues.join(raw_json, on=LINE, how="left").sort(LINE, "column", nulls_last=True)
    con.register("cgdw_rejects", rejects.to_arrow())
    con.execute(
        """
        INSERT INTO rejected_record
            (etl_run_id, source_file_id, line, column_name, value, rule, message, raw_record)
        SELECT $run, $file, _line, "column", value, rule, message, raw_record FROM cgdw_rejects
        """,
        {"run": ctx.run_id, "file": ctx.source_file_id},
    )
    con.unregister("cgdw_rejects")


def _register(
    con: duckdb.DuckDBPyConnection,
    loader: SourceLoader,
    info: FileInfo,
    command: str,
    export_date: dt.date | None,
) -> LoadContext:
    run_id = ledger.start_run(con, ledger.LOAD, command)
    source_file_id = fetch_value(
        con,
        """
        INSERT INTO source_file
            (etl_run_id, path, file_name, sha256, size_bytes, kind, layout, trial_group, snapshot_date)
        VALUES ($run, $path, $name, $sha, $size, $kind, $layout, $group, $exported)
        RETURNING source_file_id
        """,
        {
            "run": run_id,
            "path": str(info.path.resolve()),
            "name": info.path.name,
            "sha": info.sha256,
            "size": info.size_bytes,
            "kind": loader.kind,
            "layout": loader.layout_name,
            "group": loader.trial_group,
            "exported": export_date,
        },
    )
    return LoadContext(run_id=int(run_id), source_file_id=int(source_file_id), path=info.path)


def run_load(
    db_path: Path,
    loader: SourceLoader,
    path: Path,
    *,
    max_reject_fraction: float = DEFAULT_MAX_REJECT_FRACTION,
    dry_run: bool = False,
    command: str | None = None,
    progress: Progress | None = None,
    export_date: dt.date | None = None,
    force: bool = False,
) -> LoadReport:
    """Load one file in one transaction. With dry_run (`cgdw validate`) everything runs and is rolled back.

    `export_date` (else the loader's, from the file name) dates the snapshot: an export older than one
    already loaded of the same kind, layout and trial group is refused unless `force`."""
    say = progress or (lambda _phase: None)
    say("hashing")
    info = file_info(path)
    report = LoadReport(
        path=path, kind=loader.kind, layout=loader.layout_name, sha256=info.sha256, dry_run=dry_run
    )
    report.dated, report.export_date = loader.dated, export_date or loader.export_date(path)
    if report.export_date and report.export_date > ledger.utc_now().date() + dt.timedelta(days=1):
        raise FileRejected(path, f"export date {report.export_date} is in the future")
    with open_for_write(db_path) as con:
        con.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
        already = con.execute(
            """
            SELECT r.etl_run_id, r.rows_read, r.rows_loaded, r.rows_rejected
            FROM source_file AS f JOIN etl_run AS r USING (etl_run_id)
            WHERE f.sha256 = $sha AND f.kind = $kind
            """,
            {"sha": info.sha256, "kind": loader.kind},
        ).fetchall()
        if already and not dry_run:
            report.noop = True
            report.run_id, report.rows_read, report.rows_loaded, report.rows_rejected = already[0]
            return report
        older = (
            newer_export(con, loader.kind, loader.layout_name, loader.trial_group, report.export_date)
            if report.export_date
            else None
        )
        if older and not (force or dry_run):
            raise FileRejected(path, older)
        # A dry run (`cgdw validate`) does everything, then rolls back; its provisional registration must
        # not collide with the file's real one when the file was loaded before (validating it is allowed).
        with ledger.transaction(con, commit=not dry_run):
            registered = FileInfo(info.path, f"validate:{info.sha256}", info.size_bytes) if dry_run else info
            command_line = command or " ".join(["cgdw", *sys.argv[1:]])
            ctx = _register(con, loader, registered, command_line, report.export_date)
            report.run_id = ctx.run_id
            if loader.secret is not None:
                check_key(con, loader.secret, ledger.utc_now())
            fault_point("after_register")
            loader.warnings, loader.audit = [], {}
            if already:  # only a dry run gets here with a file loaded before
                loader.warnings.append(
                    f"already loaded (run {already[0][0]}): `cgdw load` would skip it; checked as if new"
                )
            if older and force:
                loader.warnings.append(f"loaded with --force: {older.partition(': ')[0]}")
            loader.prepare(con, path)
            all_issues, all_fact_issues = [], []
            for batch in loader.batches(path):
                say("checking references")
                issues = pl.concat([batch.issues, loader.reference_issues(con, batch)])
                # One issue per (line, column): a parse failure also fails the schema's null check.
                issues = issues.unique(subset=[LINE, "column"], keep="first", maintain_order=True)
                bad = _rejected_lines(issues)
                # Rows are source lines (batch.raw); a line may give several records (VCF alleles x samples).
                report.rows_read += batch.raw.height
                report.rows_rejected += bad.len()
                report.rows_loaded += batch.raw.height - bad.len()
                all_issues.append(issues)
                if issues.height:
                    _write_rejects(con, batch, issues, ctx)
                # A withheld fact of a rejected line is in the line's quarantine already.
                facts = batch.fact_issues.filter(~pl.col(LINE).is_in(bad.implode()))
                if facts.height:
                    _write_rejects(con, batch, facts, ctx)
                all_fact_issues.append(facts)
                say("writing")
                _accumulate(report.tables, loader.write(con, batch.without_lines(bad), ctx))
                fault_point("during_insert")  # between batches of a multi-batch file (tests kill here)
            report.issues = pl.concat(all_issues) if all_issues else empty_issues()
            report.fact_issues = pl.concat(all_fact_issues) if all_fact_issues else empty_issues()
            fault_point("after_insert")
            report.file_problem = _reject_fraction_problem(report, max_reject_fraction)
            if report.file_problem and not dry_run:
                raise FileRejected(path, report.file_problem)
            if older and not force:  # only a dry run gets here
                report.file_problem = older
            _accumulate(report.tables, loader.finish(con, ctx))
            report.warnings, report.audit = loader.warnings, loader.audit
            ledger.finish_run(
                con,
                ctx.run_id,
                {
                    "tables": report.tables,
                    "warnings": report.warnings,
                    "values_withheld": report.fact_issues.height,
                    **report.audit,
                },
                rows_read=report.rows_read,
                rows_loaded=report.rows_loaded,
                rows_rejected=report.rows_rejected,
            )
            fault_point("before_commit")
        if not dry_run:
            fault_point("after_commit")  # committed, not yet closed: a kill here must keep the load
    return report


def _reject_fraction_problem(report: LoadReport, limit: float) -> str | None:
    if report.rows_read == 0:
        return "no data rows"
    fraction = report.rows_rejected / report.rows_read
    if fraction <= limit:
        return None
    examples = "; ".join(
        f"line {line} {column}: {message}"
        for line, column, message in report.issues.select(LINE, "column", "message").head(3).iter_rows()
    )
    return (
        f"{report.rows_rejected} of {report.rows_read} rows ({fraction:.1%}) fail validation, more than "
        f"--max-reject-fraction {limit:.0%}; first problems: {examples} (`cgdw validate` lists them all)"
    )


def _accumulate(total: dict[str, Any], counts: dict[str, Any]) -> None:
    for table, table_counts in counts.items():
        into = total.setdefault(table, {})
        for key, value in table_counts.items():
            into[key] = into.get(key, 0) + value
