"""The `cgdw` command. Parsing arguments and printing only: every command calls a library function."""

from __future__ import annotations

import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from typer.core import TyperOption

from etl import __version__
from etl.errors import CgdwError
from etl.load import DEFAULT_MAX_REJECT_FRACTION, EXIT_QUARANTINED
from etl.output import OutputFormat, output_file, print_frame
from etl.sources.registry import SOURCE_KINDS, LoadOption, SourceKind
from queries import ViewDefinitionError
from schema import database

if TYPE_CHECKING:
    from etl.analysis.style import FigureStyle
    from etl.load.framework import LoadReport
    from etl.load.framework import Progress as ProgressCallback
    from etl.spark import Lake

app = typer.Typer(
    help="cgdw: the clinical-genomics data warehouse. Load trial records, lab results, variant calls and "
    "MRD into a DuckDB warehouse; build cohort tables for analysis.\n\n"
    "Example: cgdw demo && cgdw table1 --spec seed_tall --by ikzf1_status",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # cgdw --install-completion (bash, zsh, fish, PowerShell)
)


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    """Typer 0.29 labels a flag (--quiet, --help) `<bool>` in --help, as if it took a value: none."""
    return None if self.is_flag else _option_type(self, ctx)


_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]
db_app = typer.Typer(help="Create and migrate the warehouse schema (wraps Alembic).", no_args_is_help=True)
load_app = typer.Typer(
    help="Load source files: one ETL run, one transaction, per file.", no_args_is_help=True
)
validate_app = typer.Typer(
    help="Check source files: everything a load does, then roll back (nothing is written).",
    no_args_is_help=True,
)
plot_app = typer.Typer(help="Figures drawn from the warehouse.", no_args_is_help=True)
views_app = typer.Typer(
    help="Versioned SQL views (queries/views/NAME/vN.sql): apply, list, show, diff, retire.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(load_app, name="load")
app.add_typer(validate_app, name="validate")
app.add_typer(views_app, name="views")
app.add_typer(plot_app, name="plot")
pipeline_app = typer.Typer(
    help="Scheduled loads: new files from drop folders, in dependency order (docs/scheduling.md).",
    no_args_is_help=True,
)
app.add_typer(pipeline_app, name="pipeline")
consent_app = typer.Typer(
    help="Consent withdrawal: take a patient out of every view and extract (docs/privacy.md).",
    no_args_is_help=True,
)
app.add_typer(consent_app, name="consent")
lake_app = typer.Typer(
    help="The warehouse as a Parquet lake for Apache Spark: consented patients only (docs/scale-out.md).",
    no_args_is_help=True,
)
app.add_typer(lake_app, name="lake")

err = Console(stderr=True)
out = Console()
_state = {"debug": False}

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Warehouse file. Default: $CGDW_DB, else ./cgdw.duckdb.", show_default=False),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary (for cron).")]
KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="File holding the pseudonymisation secret. Default: $CGDW_PSEUDONYM_KEY, "
        "else the file named by $CGDW_PSEUDONYM_KEY_FILE.",
    ),
]
MaxRejectOption = Annotated[
    float,
    typer.Option(
        "--max-reject-fraction",
        help="Reject the whole file when more than this fraction of its rows fail validation.",
    ),
]
ProtocolOption = Annotated[
    str | None,
    typer.Option(
        "--protocol", "-p", help="Source layout of the trial export: graall, fralle, or a .toml path."
    ),
]

FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]


class Table1Format(StrEnum):
    """Table 1 also goes to Word, for manuscripts."""

    table = "table"
    csv = "csv"
    json = "json"
    md = "md"
    docx = "docx"


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


# Where analyses and views run: the warehouse file, or a lake on Apache Spark (docs/scale-out.md).
EngineOption = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="duckdb: the warehouse file (--db); spark: a lake written by `cgdw lake export` (--lake), on "
        'Apache Spark (pip install -e ".\\[spark]" and Java 17+).',
    ),
]
LakeOption = Annotated[
    Path | None,
    typer.Option(
        "--lake", help="With --engine spark: the lake's directory. Default: $CGDW_LAKE.", show_default=False
    ),
]
MasterOption = Annotated[
    str | None,
    typer.Option(
        "--master",
        help="With --engine spark: local[N] or spark://host:7077, or sc://host:15002 for a cluster through "
        "Spark Connect. Default: $SPARK_REMOTE if set, else local mode on this machine.",
        show_default=False,
    ),
]


# Lists of rows (query, runs, rejects, views list): a table on a terminal, CSV into a pipe or file.
ListFormatOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format", "-f", help="Output format. Default: table on a terminal, else csv.", show_default=False
    ),
]
DEFAULT_QUERY_LIMIT = 1000  # rows `cgdw query` shows unless told otherwise


def _db(db: Path | None) -> Path:
    return database.resolve_db_path(db)


def _source(
    db: Path | None,
    engine: Engine,
    lake: Path | None,
    master: str | None,
    mrd_threshold: list[str] | None = None,
) -> Path | Lake:
    """What an analysis reads: the warehouse file, or with --engine spark the lake (etl.spark.Lake)."""
    if engine is Engine.spark and mrd_threshold:  # said before a JVM starts
        raise typer.BadParameter(
            "--mrd-threshold decides MRD positivity from the warehouse's MRD pairs: not on --engine spark yet"
        )
    if engine is Engine.duckdb:
        if lake is not None or master is not None:
            raise typer.BadParameter("--lake and --master go with --engine spark")
        return _db(db)
    chosen = lake or (Path(os.environ["CGDW_LAKE"]) if os.environ.get("CGDW_LAKE") else None)
    if chosen is None:
        raise typer.BadParameter(
            "--engine spark reads a lake: give --lake DIR (written by `cgdw lake export`)"
        )
    from etl.spark import Lake as SparkLake  # pyspark itself is imported when a session starts

    return SparkLake(chosen, master)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"cgdw {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    _state["debug"] = debug


# A bar with counts, elapsed time and time left (rich estimates it from the pace so far).
_BAR_COLUMNS = (
    SpinnerColumn(),
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
    TimeRemainingColumn(),
)


@contextmanager
def _progress(quiet: bool) -> Iterator[ProgressCallback | None]:
    if quiet:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("starting")
        yield lambda phase: progress.update(task, description=phase)


@contextmanager
def _counted_progress(
    quiet: bool,
) -> Iterator[tuple[ProgressCallback | None, Callable[[int, int], None] | None]]:
    """A phase callback and a (done, total) callback driving one bar with counts and time left."""
    if quiet:
        yield None, None
        return
    with Progress(*_BAR_COLUMNS, console=err, transient=True) as progress:
        task = progress.add_task("starting", total=None)
        yield (
            lambda phase: progress.update(task, description=phase),
            lambda done, total: progress.update(task, completed=done, total=total),
        )


@contextmanager
def _steps_progress() -> Iterator[Callable[[str, int, int], None] | None]:
    """A bar over a job's steps (step, done, total), on a terminal only."""
    with _counted_progress(not err.is_terminal) as (phase, counted):
        if phase is None or counted is None:
            yield None
            return

        def step(name: str, done: int, total: int) -> None:
            phase(name)
            counted(done, total)

        yield step


@contextmanager
def _files_progress(
    quiet: bool, files: list[Path]
) -> Iterator[Callable[[int, Path], ProgressCallback] | None]:
    """A bar over the files (count, elapsed, time left) whose description follows the current file's phase."""
    if quiet:
        yield None
        return
    with Progress(*_BAR_COLUMNS, console=err, transient=True) as progress:
        task = progress.add_task("starting", total=len(files))

        def for_file(index: int, path: Path) -> ProgressCallback:
            progress.update(task, completed=index)
            return lambda phase: progress.update(task, description=f"{path.name}: {phase}")

        yield for_file


def _say(message: str) -> None:
    out.print(message, markup=False, highlight=False, soft_wrap=True)


def _note(message: str) -> None:
    """A message about the command's work ("wrote FILE"): on stderr, so stdout holds only the result."""
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def _warn(message: str) -> None:
    err.print(Text.assemble(("warning: ", "yellow"), message), soft_wrap=True)


def _error(message: str) -> None:
    err.print(Text.assemble(("error: ", "red"), message), soft_wrap=True)


def _print_report(report: LoadReport, quiet: bool) -> None:
    """A load's summary and its problems (the first 20; a dry run lists them all)."""
    would = "would be " if report.dry_run else ""
    if quiet:
        if report.rows_rejected and not report.noop:  # so that cron mails it (the exit code says so too)
            where = "" if report.dry_run else f": `cgdw rejects {report.run_id}`"
            _warn(f"{report.path}: {report.rows_rejected} rows {would}quarantined{where}")
        return
    _say(report.summary())
    for warning in report.warnings:
        _warn(warning)
    shown = max(report.issues.height, report.fact_issues.height) if report.dry_run else 20
    if report.issues.height:
        issues = report.issues.rename({"_line": "line"}).head(shown)
        title = f"{'Problems' if report.dry_run else 'Quarantined'} ({report.issues.height})"
        print_frame(issues, OutputFormat.table, title=title)
    if report.fact_issues.height:
        facts = report.fact_issues.rename({"_line": "line"}).head(shown)
        title = f"Values {would}withheld, their rows {would}loaded ({report.fact_issues.height})"
        print_frame(facts, OutputFormat.table, title=title)


# --- db ------------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    db: DbOption = None,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create the warehouse or migrate it forward (default: to the newest revision).

    Example: cgdw db upgrade --db warehouse.duckdb
    """
    from etl.warehouse import publish

    path = _db(db)
    database.upgrade(path, revision)
    _say(f"{path}: schema at revision {database.current_revision(path)}")
    if database.current_revision(path) == database.head_revision() and (publication := publish(path)):
        _note(publication.line())


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision: 0012, base (drops everything), or -1 as `--db W -- -1`.")
    ],
    db: DbOption = None,
) -> None:
    """Migrate the warehouse back to an earlier revision. Its published copy is removed (readers are told
    to upgrade) until a cgdw at that revision publishes again.

    Example: cgdw db downgrade 0012 --db warehouse.duckdb
    """
    from etl.warehouse import publish

    path = _db(db)
    database.downgrade(path, revision)
    _say(f"{path}: schema at revision {database.current_revision(path) or 'base (empty)'}")
    if path.exists():
        publish(path)  # below migration 0013 this removes the copy: readers must not serve a newer schema


@db_app.command("current")
def db_current(db: DbOption = None) -> None:
    """Print the schema revision of the warehouse and the newest one this cgdw knows.

    Example: cgdw db current --db warehouse.duckdb
    """
    path = _db(db)
    _say(f"{path}: {database.current_revision(path) or 'no schema'} (head: {database.head_revision()})")


@db_app.command("status")
def db_status(db: DbOption = None) -> None:
    """Say which run the published copy (what readers see) holds, and the newest run of the warehouse.

    Example: cgdw db status --db warehouse.duckdb
    """
    from etl.warehouse import published_state

    state = published_state(_db(db))
    if state.writing:
        _say(f"warehouse: {state.warehouse} (a write is running: its newest run cannot be read now)")
    else:
        _say(f"warehouse: {state.warehouse} (newest run {state.warehouse_run})")
    if state.published is None:
        _say("published copy: none yet (readers open the warehouse itself): run `cgdw publish`")
        return
    storage = state.storage_version or "this DuckDB's own"
    at = f"{state.published_at:%Y-%m-%d %H:%M:%S} UTC" if state.published_at else "at an unknown time"
    behind = f": behind; run `cgdw publish --db {state.warehouse}`" if state.behind else ""
    _say(
        f"published copy: {state.published} (run {state.published_run}, published {at}, storage {storage})"
        f"{behind}"
    )


@db_app.command("check")
def db_check(db: DbOption = None) -> None:
    """Check integrity: every declared relation's references point at a row, and every checked unique key
    is unique (exit 1 if not).

    Example: cgdw db check --db warehouse.duckdb
    """
    from etl.warehouse import read_only_connection
    from schema.integrity import checked_keys, find_orphans, find_repeated_keys, relations

    path = _db(db)
    with read_only_connection(path) as con:
        orphans = find_orphans(con)
        repeated = find_repeated_keys(con)
    for found in orphans:
        r = found.relation
        _warn(f"{r.table}.{r.column}: {found.rows} rows point at no {r.parent}.{r.parent_column}")
    for key, count in repeated:
        values = "1 key value is" if count == 1 else f"{count} key values are"
        _warn(f"{key.table} ({', '.join(key.columns)}): {values} on more than one row")
    if orphans or repeated:
        raise CgdwError(
            f"{path}: {len(orphans)} of {len(relations())} relations have orphan rows, "
            f"{len(repeated)} of {len(checked_keys())} unique keys repeat"
        )
    _say(
        f"{path}: all {len(relations())} relations hold (no orphan rows), "
        f"all {len(checked_keys())} checked unique keys too"
    )


@db_app.command("record-key")
def db_record_key(
    source_patient_id: Annotated[str, typer.Argument(help="A patient's number in the trial database.")],
    group: Annotated[str, typer.Option("--group", "-g", help="Trial group of that number: GRAALL, ...")],
    db: DbOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Record which pseudonymisation key built a warehouse that has no record of it, once it proves itself.

    Example: cgdw db record-key --group GRAALL G05-00017 --key-file /secure/cgdw.key
    """
    from etl.consent import PatientRef, record_key

    patient = PatientRef(trial_group=group, source_patient_id=source_patient_id)
    _say(record_key(_db(db), patient, key_file=key_file))


@db_app.command("history")
def db_history() -> None:
    """List the migrations.

    Example: cgdw db history
    """
    out.print(database.history(), end="")


# --- load / validate -------------------------------------------------------------------------------------


def _load_command(kind: SourceKind, *, dry_run: bool = False) -> Callable[..., None]:
    """`cgdw load KIND FILE... [options]` (or `cgdw validate KIND FILE...`) for a kind of the registry: its
    options become flags."""
    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, annotation, default in (
            ("files", Annotated[list[Path], typer.Argument(help=kind.file_help, show_default=False)], ...),
            *(
                [("layout", Annotated[str | None, typer.Option(*kind.layout_flags, help=kind.layout_help)],
                  kind.default_layout)]
                if kind.layout_driven else []
            ),
            *((option.name, _option_annotation(option), option.default) for option in kind.options),
            ("db", DbOption, None),
            *([("key_file", KeyFileOption, None)] if kind.layout_driven else []),
            ("max_reject_fraction", MaxRejectOption, DEFAULT_MAX_REJECT_FRACTION),
            ("quiet", QuietOption, False),
        )
    ]  # fmt: skip

    def command(**values: Any) -> None:
        from etl.sources.registry import load_sources

        files, db, quiet = values.pop("files"), _db(values.pop("db")), values.pop("quiet")
        for option in kind.options:
            if option.type is list and values[option.name] is not None:
                items = [item.strip() for item in values[option.name].split(",")]
                values[option.name] = [item for item in items if item] or None
        with _files_progress(quiet, files) as file_progress:
            results = load_sources(
                db, kind.name, files, file_progress=file_progress, dry_run=dry_run, **values
            )
        for result in results:
            if isinstance(result, CgdwError):
                if _state["debug"]:
                    traceback.print_exception(result)
                _error(str(result))
            else:
                _print_report(result, quiet)
        if not dry_run:
            _views_hint(db, quiet)
        raise typer.Exit(_load_exit_code(results))

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    verb = "validate" if dry_run else "load"
    what = (
        "Everything a load does, then rolled back: what would be loaded, quarantined, withheld."
        if dry_run
        else "Several files: one ETL run each, in the order given, published once at the end."
    )
    would = "would be " if dry_run else ""
    summary = (
        f"Check, without writing: {kind.summary[0].lower()}{kind.summary[1:]}" if dry_run else kind.summary
    )
    command.__doc__ = (
        f"{summary}\n\n{what}\n\nExit: 0 {'valid' if dry_run else 'loaded'}; {EXIT_QUARANTINED} rows "
        f"{would}quarantined; 3 a file {would}rejected whole."
        f"\n\nExample: cgdw {verb} {kind.name} {kind.example}"
    )
    return command


def _load_exit_code(results: Sequence[LoadReport | CgdwError]) -> int:
    """3 when a file was rejected whole, else 10 when rows were quarantined, else 0."""
    if any(isinstance(r, CgdwError) or r.file_problem for r in results):
        return 3
    # A file loaded before (noop) quarantined nothing now.
    quarantined = any(r.rows_rejected and not r.noop for r in results if not isinstance(r, CgdwError))
    return EXIT_QUARANTINED if quarantined else 0


def _option_annotation(option: LoadOption) -> Any:
    if option.type is bool:
        return Annotated[bool, typer.Option(option.flag, help=option.help)]
    return Annotated[str | None, typer.Option(option.flag, help=option.help)]


for _kind in SOURCE_KINDS:
    load_app.command(_kind.name)(_load_command(_kind))
    validate_app.command(_kind.name)(_load_command(_kind, dry_run=True))


@load_app.command("cbioportal")
def load_cbioportal(
    study_dir: Annotated[Path, typer.Argument(help="cBioPortal study directory (meta_*.txt files).")],
    db: DbOption = None,
    key_file: KeyFileOption = None,
    max_reject_fraction: MaxRejectOption = DEFAULT_MAX_REJECT_FRACTION,
    quiet: QuietOption = False,
) -> None:
    """Import a cBioPortal study: patients, samples, MAF, discrete CNA, SEG (one run per file).

    Example: cgdw load cbioportal all_phase2_target_2018_pub/ --db warehouse.duckdb
    """
    from etl.cbioportal.importer import load_cbioportal_study

    with _progress(quiet) as progress:
        reports = load_cbioportal_study(
            _db(db), study_dir, key_file=key_file, max_reject_fraction=max_reject_fraction, progress=progress
        )
    for report in reports:
        _print_report(report, quiet)
    _views_hint(_db(db), quiet)


def _views_hint(db: Path, quiet: bool) -> None:
    """After a load: the analysts' views (stored copies, declared attributes) wait for `cgdw views apply`."""
    if quiet:
        return
    from etl.views import views_outdated

    if views_outdated(db):
        _say(
            f"the analysts' views are not current (new data or attributes): run `cgdw views apply --db {db}`"
        )


# --- views -------------------------------------------------------------------------------------------------


@views_app.command("apply")
def views_apply(
    db: DbOption = None,
    engine: EngineOption = Engine.duckdb,
    lake: LakeOption = None,
    master: MasterOption = None,
) -> None:
    """Create every view version as NAME_vN and NAME -> latest; release new versions (one run).

    With --engine spark: every view version the lake's warehouse released, over the lake, and the stored
    copies (cohort_patient) written into the lake.

    Example: cgdw views apply --db warehouse.duckdb
    """
    source = _source(db, engine, lake, master)
    if not isinstance(source, Path):
        from etl.spark import apply_views_on_spark

        _say(apply_views_on_spark(source).summary())
        return
    from etl import views

    _say(views.apply_views(source, command=" ".join(["cgdw", *sys.argv[1:]])).summary())


@views_app.command("list")
def views_list(
    db: Annotated[
        Path | None, typer.Option(help="Warehouse whose registry to compare with. Default: $CGDW_DB or none.")
    ] = None,
    fmt: ListFormatOption = None,
) -> None:
    """Every shipped view version, and its state in the warehouse (released, pending, changed, retired).

    Example: cgdw views list --db warehouse.duckdb
    """
    from etl import views

    chosen = db or (Path(os.environ["CGDW_DB"]) if os.environ.get("CGDW_DB") else None)
    print_frame(views.list_views(chosen), fmt, title="Views")


@views_app.command("show")
def views_show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@vN (default: the latest version).")],
    db: Annotated[
        Path | None,
        typer.Option(
            "--db", help="Warehouse whose generated views to show (patient_attribute, sample_attribute)."
        ),
    ] = None,
) -> None:
    """Print a view version: description, dependencies, columns and SQL.

    Example: cgdw views show cohort_patient@v3
    """
    from etl import views
    from queries import parse_ref

    name, version = parse_ref(ref)
    shown = views.show_view(name, version, db_path=_db(db) if name in views.GENERATED_VIEWS else None)
    out.print(shown, markup=False, highlight=False, soft_wrap=True)


@views_app.command("diff")
def views_diff(
    name: Annotated[str, typer.Argument(help="View name.")],
    old: Annotated[str, typer.Argument(help="Older version, e.g. v1.")],
    new: Annotated[str, typer.Argument(help="Newer version, e.g. v2.")],
) -> None:
    """Unified diff between two versions of a view.

    Example: cgdw views diff cohort_patient v2 v3
    """
    from etl import views
    from queries import parse_ref

    _, a = parse_ref(f"{name}@{old}")
    _, b = parse_ref(f"{name}@{new}")
    assert a is not None and b is not None
    out.print(views.diff_views(name, a, b) or "(identical)", markup=False, highlight=False, soft_wrap=True)


@views_app.command("retire")
def views_retire(
    ref: Annotated[str, typer.Argument(help="NAME@vN to drop on purpose.")], db: DbOption = None
) -> None:
    """Retire a released view version: NAME_vN is dropped, NAME moves to the latest live version.

    Example: cgdw views retire cohort_patient@v1 --db warehouse.duckdb
    """
    from etl import views
    from queries import parse_ref

    name, version = parse_ref(ref)
    if version is None:
        raise typer.BadParameter("say which version to retire: NAME@vN")
    _say(views.retire_view(_db(db), name, version))


# --- analyses ----------------------------------------------------------------------------------------------


class EndpointChoice(StrEnum):
    os = "os"
    efs = "efs"
    cir = "cir"
    dfs = "dfs"
    pfs = "pfs"


CohortOption = Annotated[
    str,
    typer.Option(
        "--cohort",
        help="Cohort view (one row per patient), or a named cohort definition NAME[@vN] of queries/cohorts/.",
    ),
]
MrdThresholdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--mrd-threshold",
        help="Decide MRD positivity at another threshold for this analysis: METHOD=VALUE, a fraction or a "
        "percentage (MFC=0.01%, ASO-PCR=1e-5; 0 = any detectable level); repeatable. Default: table "
        "mrd_threshold (docs/mrd.md).",
    ),
]
ByOption = Annotated[str, typer.Option("--by", help="Grouping column of the cohort view.")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Write to this file instead of the terminal.")]
HorizonOption = Annotated[float, typer.Option(help="Years at which estimates are given.")]
WhereOption = Annotated[
    str | None,
    typer.Option(
        "--where",
        help="Only the patients this filter over the cohort's columns selects, e.g. \"age >= 18 AND "
        "treatment_arm = 'A'\" (checked like `cgdw export --where`).",
    ),
]
MinCellOption = Annotated[
    int | None,
    typer.Option(
        "--min-cell",
        help="For tables that leave the building: hide counts below N, and any count one could be derived "
        "from by subtraction (docs/privacy.md).",
    ),
]

LabelsOption = Annotated[
    str | None,
    typer.Option(
        "--labels",
        help='Names to show instead of codes, in tables and figures: "ikzf1_status=IKZF1 status,Alt=IKZF1 '
        "altered,GL=Germline\" (a column or a value; COLUMN.VALUE=... for one column's value). The "
        "attribute dictionary's labels apply without it. JSON keeps the codes.",
    ),
]
CensorMarksOption = Annotated[
    bool,
    typer.Option("--censor-marks/--no-censor-marks", help="Ticks where patients are censored on the curves."),
]
FigureSizeOption = Annotated[
    str | None, typer.Option("--figure-size", help="Figure size WIDTHxHEIGHT in inches, e.g. 7x5.")
]
FontSizeOption = Annotated[
    float | None, typer.Option("--font-size", help="Figure text size in points (default 9); titles scale.")
]


def _figure_style(censor_marks: bool, figure_size: str | None, font_size: float | None) -> FigureStyle:
    from etl.analysis.style import FigureStyle

    return FigureStyle(censor_marks, FigureStyle.parse_size(figure_size), font_size)


def _emit(text: str, out_file: Path | None, renderables: list[Any] | None = None) -> None:
    """To a file, else to the terminal (rich tables when given, so they fit its width)."""
    if out_file is not None:
        output_file(out_file).write_text(text, encoding="utf-8")
        _note(f"wrote {out_file}")
    elif renderables is not None:
        for renderable in renderables:
            out.print(renderable, markup=False, highlight=False)
    else:
        sys.stdout.write(text)


@app.command("table1")
def table1(
    by: ByOption = "ikzf1_status",
    cohort: CohortOption = "cohort_patient",
    where: WhereOption = None,
    with_attrition: Annotated[
        bool, typer.Option("--attrition", help="Also print the patients left and dropped, rule by rule.")
    ] = False,
    mrd_threshold: MrdThresholdOption = None,
    spec: Annotated[
        str | None,
        typer.Option(
            "--spec",
            help="Table 1 spec: a packaged name (seed_tall: the seed letter's) or a TOML file "
            "(docs/analysis.md). Default: every column of the cohort.",
        ),
    ] = None,
    horizon: HorizonOption = 5.0,
    min_cell: MinCellOption = None,
    labels: LabelsOption = None,
    fmt: Annotated[
        Table1Format, typer.Option("--format", "-f", help="Output format; docx (Word) needs --out.")
    ] = Table1Format.table,
    out_file: OutOption = None,
    db: DbOption = None,
    engine: EngineOption = Engine.duckdb,
    lake: LakeOption = None,
    master: MasterOption = None,
) -> None:
    """Table 1 by a grouping column: n/denominator (%), median (range), P per row; rows from --spec.

    Example: cgdw table1 --spec seed_tall --by ikzf1_status --where \"age >= 18\" --format md --out table1.md
    """
    from etl.analysis.labels import warehouse_labels
    from etl.analysis.table1 import build_table1, table1_rows
    from etl.output import labelled_table1, render_table1, table1_renderables, write_table1_docx

    if fmt is Table1Format.docx and (out_file is None or out_file.suffix.lower() != ".docx"):
        raise typer.BadParameter("--format docx writes a Word file: give --out FILE.docx")

    source = _source(db, engine, lake, master, mrd_threshold)
    rows = table1_rows(source, cohort, spec, by=by)
    result = build_table1(
        source,
        rows=rows,
        by=by,
        cohort=cohort,
        horizon=horizon,
        min_cell=min_cell,
        where=where,
        with_attrition=with_attrition,
        mrd_thresholds=mrd_threshold,
    )
    if fmt in (Table1Format.table, Table1Format.md, Table1Format.docx):  # for people; CSV, JSON keep codes
        result = labelled_table1(result, warehouse_labels(source, labels))
    if fmt is Table1Format.docx and out_file is not None:
        _note(f"wrote {write_table1_docx(result, out_file)}")
        return
    text = OutputFormat(fmt.value)
    terminal = table1_renderables(result) if text is OutputFormat.table else None
    _emit(render_table1(result, text), out_file, terminal)


@app.command("outcomes")
def outcomes(
    endpoint: Annotated[
        EndpointChoice, typer.Option(help="os, efs, cir (death in CR competing), or dfs / pfs as reported.")
    ] = (EndpointChoice.os),
    by: ByOption = "ikzf1_status",
    horizon: HorizonOption = 5.0,
    adjust: Annotated[
        str, typer.Option(help="Comma-separated covariates for the multivariable model, e.g. age,log_wbc.")
    ] = "",
    reference: Annotated[
        str | None, typer.Option(help="Reference group of --by (default: the largest group).")
    ] = None,
    cohort: CohortOption = "cohort_patient",
    where: WhereOption = None,
    landmark: Annotated[
        str | None,
        typer.Option(
            "--landmark",
            help="Landmark: a day from diagnosis (e.g. 82), or a column of days giving each patient's own "
            "landmark (e.g. mrd_c2_mfc_day, the MRD assessment after cycle 2). Only patients event-free and "
            "followed after it; time counted from it.",
        ),
    ] = None,
    mrd_threshold: MrdThresholdOption = None,
    time_dependent: Annotated[
        str | None,
        typer.Option(
            "--time-dependent",
            help="A column of the cohort giving the time (years from diagnosis) a covariate switches on, "
            "e.g. hsct_years: in the Cox models as a time-dependent covariate (counting-process form).",
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the curves with numbers at risk (.png or .svg).")
    ] = None,
    min_cell: MinCellOption = None,
    labels: LabelsOption = None,
    censor_marks: CensorMarksOption = True,
    figure_size: FigureSizeOption = None,
    font_size: FontSizeOption = None,
    fmt: FormatOption = OutputFormat.table,
    out_file: OutOption = None,
    db: DbOption = None,
    engine: EngineOption = Engine.duckdb,
    lake: LakeOption = None,
    master: MasterOption = None,
) -> None:
    """Kaplan-Meier / cumulative incidence at the horizon, log-rank / Gray's test, Cox / Fine-Gray HRs.

    Example: cgdw outcomes --endpoint cir --by ikzf1_status --adjust age,log_wbc --plot cir.png
    """
    from etl.analysis.labels import warehouse_labels
    from etl.analysis.outcomes import analyse_outcomes, landmark_arguments, suppress_small_counts
    from etl.output import labelled_outcomes, outcomes_renderables, render_outcomes

    source = _source(db, engine, lake, master, mrd_threshold)
    fitted = analyse_outcomes(
        source,
        endpoint.value,
        by,
        cohort=cohort,
        horizon=horizon,
        adjust=tuple(name.strip() for name in adjust.split(",") if name.strip()),
        reference=reference,
        where=where,
        time_dependent=time_dependent,
        mrd_thresholds=mrd_threshold,
        **landmark_arguments(landmark),
    )
    result = fitted.result if min_cell is None else suppress_small_counts(fitted.result, min_cell)
    named = warehouse_labels(source, labels)
    if fmt in (OutputFormat.table, OutputFormat.md):  # for people; CSV and JSON keep the codes
        result = labelled_outcomes(result, named)
    terminal = outcomes_renderables(result) if fmt is OutputFormat.table else None
    _emit(render_outcomes(result, fmt), out_file, terminal)
    if plot is not None:
        from etl.analysis.survival_plot import plot_outcomes

        style = _figure_style(censor_marks, figure_size, font_size)
        _note(f"wrote {plot_outcomes(fitted, plot, min_cell=min_cell, labels=named, style=style)}")


@plot_app.command("oncoplot")
def plot_oncoplot(
    out_file: Annotated[Path, typer.Option("--out", help="Image to write (.png or .svg).")],
    by: ByOption = "ikzf1_status",
    genes: Annotated[
        str | None, typer.Option(help="Comma-separated genes, in order (default: those of Figure 1C).")
    ] = None,
    cohort: CohortOption = "cohort_patient",
    where: WhereOption = None,
    labels: LabelsOption = None,
    db: DbOption = None,
) -> None:
    """Oncoplot of the main alterations at diagnosis by group (Figure 1C of the seed letter).

    Example: cgdw plot oncoplot --out oncoplot.png --labels "Alt=IKZF1 altered,GL=Germline"
    """
    from etl.analysis.labels import warehouse_labels
    from etl.analysis.oncoplot import write_oncoplot

    chosen = [g.strip() for g in genes.split(",") if g.strip()] if genes else None
    named = warehouse_labels(_db(db), labels)
    written = write_oncoplot(_db(db), out_file, by=by, genes=chosen, cohort=cohort, where=where, labels=named)
    _note(f"wrote {written}")


@lake_app.command("export")
def lake_export(
    out_dir: Annotated[
        Path, typer.Option("--out-dir", "--out", help="The lake's directory (an export replaces it whole).")
    ],
    db: DbOption = None,
) -> None:
    """Write what analysts may read as Parquet: one folder per table, partitioned, with a manifest.

    Example: cgdw lake export --out lake/ --db warehouse.duckdb
    """
    from etl.lake import export_lake

    _say(export_lake(_db(db), out_dir).summary())


@lake_app.command("status")
def lake_status(
    lake: Annotated[Path, typer.Option("--lake", help="The lake's directory.")],
    db: DbOption = None,
) -> None:
    """Whether a lake still holds what the warehouse holds (a purge after it is not in it), files intact.

    Exit 1 when it is behind or damaged.

    Example: cgdw lake status --lake lake/ --db warehouse.duckdb
    """
    from etl.lake import lake_status as status_of

    status = status_of(_db(db), lake)
    _say(status.summary())
    if not status.current:
        raise typer.Exit(1)


# --- extracts and queries ---------------------------------------------------------------------------------


class ExportFormatChoice(StrEnum):
    parquet = "parquet"
    csv = "csv"
    xlsx = "xlsx"
    stata = "stata"
    spss = "spss"
    sas = "sas"


@app.command("export")
def export(
    target: Annotated[
        str,
        typer.Argument(help="A view, NAME or NAME@vN (e.g. cohort_patient@v1), or `cbioportal` for a study."),
    ],
    out_dir: Annotated[Path, typer.Option("--out-dir", "--out", help="Directory to write the extract to.")],
    fmt: Annotated[ExportFormatChoice, typer.Option("--format", "-f", help="Data file format.")] = (
        ExportFormatChoice.parquet
    ),
    where: Annotated[
        str | None, typer.Option(help="Row filter over the view's columns, e.g. \"age >= 18 AND sex = 'F'\".")
    ] = None,
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns (default: all).")] = None,
    study_id: Annotated[
        str, typer.Option("--study-id", help="cbioportal only: cancer_study_identifier (letters, digits, _).")
    ] = "cgdw",
    db: DbOption = None,
    engine: EngineOption = Engine.duckdb,
    lake: LakeOption = None,
    master: MasterOption = None,
) -> None:
    """Write an analysis-ready extract (data, data dictionary, provenance manifest) or a cBioPortal study.

    Example: cgdw export cohort_patient --format stata --out-dir extract/ --where \"age >= 18\"
    """
    source = _source(db, engine, lake, master)
    if target == "cbioportal":
        if engine is Engine.spark:
            raise typer.BadParameter("a cBioPortal study is exported from the warehouse (--engine duckdb)")
        if where or columns:
            raise typer.BadParameter(
                "--where and --columns apply to view extracts, not to a cBioPortal study"
            )
        _export_cbioportal(_db(db), out_dir, study_id)
        return
    from etl.export import ExportFormat, export_view

    chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    result = export_view(source, target, out_dir, ExportFormat(fmt.value), where=where, columns=chosen)
    _say(result.summary())


def _export_cbioportal(db: Path, out_dir: Path, study_id: str) -> None:
    from etl.cbioportal.exporter import export_cbioportal

    summary = export_cbioportal(db, out_dir, study_id=study_id)
    _say(summary.summary())
    for problem in summary.problems:
        _warn(problem)


@app.command("query")
def query(
    sql: Annotated[str, typer.Argument(help="One SELECT statement.")],
    limit: Annotated[
        int,
        typer.Option(help="Return at most N rows (0: all). A line on stderr says when some were left out."),
    ] = DEFAULT_QUERY_LIMIT,
    fmt: ListFormatOption = None,
    db: DbOption = None,
) -> None:
    """Run one read-only SELECT over the analysts' surface (no writes, no second statement, no file access).

    Example: cgdw query "SELECT ikzf1_status, count(*) AS n FROM cohort_patient GROUP BY ALL" --format csv
    """
    from etl.query import query_with_limit

    frame, left_out = query_with_limit(_db(db), sql, limit)
    print_frame(frame, fmt)
    if left_out:
        _note(f"first {limit:,} rows shown, more left out: --limit N for more, --limit 0 for all")


@app.command("publish")
def publish(
    storage_version: Annotated[
        str | None,
        typer.Option(
            "--storage-version",
            help="Write the published copy in this DuckDB storage version (v1.4.0: DuckDB 1.4 in R or Python "
            "opens it), now and at every later write; 'default' returns to this DuckDB's own.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Publish the warehouse now: replace the copy readers open (every write does this when it commits).

    Example: cgdw publish --storage-version v1.4.0 --db warehouse.duckdb
    """
    from etl.warehouse import publish as publish_warehouse

    publication = publish_warehouse(_db(db), storage_version)
    if publication:
        _say(publication.line())


# --- audit -----------------------------------------------------------------------------------------------


@app.command("runs")
def runs(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="Show the newest N runs.")] = 50,
    fmt: ListFormatOption = None,
) -> None:
    """List ETL runs, newest first.

    Example: cgdw runs --limit 10 --db warehouse.duckdb
    """
    from etl import audit

    print_frame(audit.list_runs(_db(db), limit), fmt, title="ETL runs")


@app.command("rejects")
def rejects(
    run: Annotated[int, typer.Argument(help="ETL run id (see `cgdw runs`).")],
    db: DbOption = None,
    fmt: ListFormatOption = None,
) -> None:
    """Show what a run quarantined: file, line, column, value, rule and message.

    Example: cgdw rejects 3 --format csv --db warehouse.duckdb > run3_rejects.csv
    """
    from etl import audit

    print_frame(audit.list_rejects(_db(db), run), fmt, title=f"Rejected records of run {run}")


# --- synthetic data and demo ------------------------------------------------------------------------------


class StudyChoice(StrEnum):
    tall = "tall"
    aml = "aml"


StudyOption = Annotated[
    StudyChoice,
    typer.Option(
        "--study",
        help="tall: the seed letter's T-ALL cohort (GRAALL/FRALLE, 476 patients); aml: the second letter's "
        "HOVON-SAKK 102 cohort (800 patients, MFC- and LSC-MRD after cycle 2).",
    ),
]


@app.command("synth")
def synth(
    out_dir: Annotated[
        Path, typer.Option("--out-dir", "--out", help="Directory to write the source files to.")
    ],
    study: StudyOption = StudyChoice.tall,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 1,
    patients: Annotated[
        int | None, typer.Option(min=1, help="Cohort size (default: the letter's: 476 tall, 800 aml).")
    ] = None,
    dirty: Annotated[bool, typer.Option("--dirty", help="Add documented data problems (tall).")] = False,
) -> None:
    """Write a SYNTHETIC cohort calibrated to a letter, as raw source files in each group's layout.

    Example: cgdw synth --study aml --patients 2000 --out-dir synthetic/
    """
    sized: dict[str, Any] = {} if patients is None else {"patients": patients}  # else the letter's size
    if study is StudyChoice.aml:
        if dirty:
            raise CgdwError("--dirty is offered for the T-ALL cohort (--study tall) only")
        from etl.synth.aml import write_synthetic_aml_cohort

        with _steps_progress() as steps:
            result = write_synthetic_aml_cohort(out_dir, seed=seed, progress=steps, **sized)
    else:
        from etl.synth import write_synthetic_cohort

        with _steps_progress() as steps:
            result = write_synthetic_cohort(out_dir, seed=seed, dirty=dirty, progress=steps, **sized)
    _say(f"wrote a SYNTHETIC cohort of {result.n_patients} patients to {out_dir}:")
    for name, path in result.files.items():
        _say(f"  {name:15} {path}")


@app.command("demo")
def demo(
    db: DbOption = None,
    study: StudyOption = StudyChoice.tall,
    workdir: Annotated[
        Path | None, typer.Option(help="Where the synthetic source files go. Default: beside the database.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic cohort.")] = 1,
    quiet: QuietOption = False,
) -> None:
    """Build a demo warehouse from SYNTHETIC data: synth, migrate, load, print the letter's analyses.

    Example: cgdw demo --study aml --db aml.duckdb
    """
    from etl import demo as demo_module

    with _progress(quiet) as progress:
        summary = demo_module.run_demo(
            _db(db), workdir=workdir, seed=seed, progress=progress, study=study.value
        )
    if not quiet:
        demo_module.print_summary(summary, out)


# --- scheduled loads -------------------------------------------------------------------------------------


@pipeline_app.command("run")
def pipeline_run(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            envvar="CGDW_PIPELINE_CONFIG",
            help="Pipeline configuration (YAML).",
            show_default=False,
        ),
    ],
    db: Annotated[
        Path | None,
        typer.Option(
            "--db", help="Warehouse file. Default: the config's warehouse, else $CGDW_DB, else ./cgdw.duckdb."
        ),
    ] = None,
    key_file: KeyFileOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List what would load (new, changed, already loaded); write nothing."),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="No summary; only rejected files and errors, on stderr (cron)."),
    ] = False,
) -> None:
    """Load the new or changed files of the drop folders in dependency order, apply the views, log the run.

    Exit codes (for cron and systemd):
    0 all loaded, or nothing new;
    10 loaded, with quarantined rows (`cgdw rejects RUN`);
    11 a file was rejected whole (the other files were loaded);
    75 locked: another pipeline or load is writing (try again later);
    78 configuration error (nothing loaded);
    1 any other error.

    Example: cgdw pipeline run --config /etc/cgdw/pipeline.yaml --quiet
    """
    from etl import pipeline

    # No bar unless on a terminal: under cron it would only leave a blank line on stderr.
    with _counted_progress(quiet or not err.is_terminal) as (progress, counted):
        result = pipeline.run_pipeline(
            config, db=db, key_file=key_file, dry_run=dry_run, progress=progress, files_done=counted
        )
    # Why a busy warehouse stopped the run (another writer holds it): on stderr, so that cron mails it.
    busy = next(
        (
            o.message
            for o in result.files
            if o.status == "skipped" and o.message != "warehouse busy: next run"
        ),
        None,
    )
    if busy and result.exit_code == pipeline.EXIT_LOCKED:
        _warn(f"the warehouse is busy, the files not loaded are new for the next run: {busy}")
    if not quiet:
        for line in result.summary_lines():
            _say(line)
    else:
        rejected = [outcome for outcome in result.files if outcome.status == "rejected"]
        for outcome in rejected:
            _error(f"{outcome.path}: file rejected, nothing loaded: {outcome.message}")
        if result.exit_code and not rejected and not busy:  # one line, so that cron mails something
            _warn(f"{result.summary_lines()[0]}; log: {result.log_path}")
    if result.exit_code:
        raise typer.Exit(result.exit_code)


# --- consent and purge -----------------------------------------------------------------------------------


# How a data manager names a patient, for both consent commands.
SourcePatientArgument = Annotated[
    str | None, typer.Argument(help="The patient's number in the trial database, e.g. G05-00017.")
]
GroupOption = Annotated[
    str | None, typer.Option("--group", "-g", help="Trial group of that number: GRAALL, FRALLE, ...")
]
PatientKeyOption = Annotated[
    str | None, typer.Option("--patient-key", help="Or the pseudonymous patient key (e.g. from an extract).")
]


@consent_app.command("withdraw")
def consent_withdraw(
    source_patient_id: SourcePatientArgument = None,
    group: GroupOption = None,
    patient_key: PatientKeyOption = None,
    db: DbOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Record that a patient withdrew consent: out of every view and extract at once (one ETL run).

    Example: cgdw consent withdraw --group GRAALL G05-00017 --db warehouse.duckdb
    """
    from etl.consent import PatientRef, withdraw_consent

    patient = PatientRef(trial_group=group, source_patient_id=source_patient_id, patient_key=patient_key)
    _say(withdraw_consent(_db(db), patient, key_file=key_file).summary())


@consent_app.command("restore")
def consent_restore(
    source_patient_id: SourcePatientArgument = None,
    group: GroupOption = None,
    patient_key: PatientKeyOption = None,
    db: DbOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Record that a patient whose consent was withdrawn consents again (a withdrawal stands until then).

    Example: cgdw consent restore --group GRAALL G05-00017 --db warehouse.duckdb
    """
    from etl.consent import PatientRef, restore_consent

    patient = PatientRef(trial_group=group, source_patient_id=source_patient_id, patient_key=patient_key)
    _say(restore_consent(_db(db), patient, key_file=key_file).summary())


@app.command("purge")
def purge(
    withdrawn: Annotated[
        bool, typer.Option("--withdrawn", help="Purge every patient whose consent is withdrawn.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted.")] = False,
    db: DbOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Delete for good every row of the patients whose consent is withdrawn (audit: counts only).

    Example: cgdw purge --withdrawn --dry-run --db warehouse.duckdb
    """
    from etl.consent import purge_withdrawn

    if not withdrawn:
        raise typer.BadParameter("say what to purge: --withdrawn")
    path = _db(db)
    if not (yes or dry_run):
        plan = purge_withdrawn(path, key_file=key_file, dry_run=True)
        if not plan.patients:
            _say(plan.summary())
            return
        _say(plan.summary())
        typer.confirm("Delete these rows for good?", abort=True)
    _say(purge_withdrawn(path, key_file=key_file, dry_run=dry_run).summary())


# --- report ----------------------------------------------------------------------------------------------


@app.command("report")
def report(
    out_file: Annotated[Path, typer.Option("--out", help="HTML file to write (self-contained, offline).")],
    by: ByOption = "ikzf1_status",
    cohort: CohortOption = "cohort_patient",
    where: WhereOption = None,
    horizon: HorizonOption = 5.0,
    min_cell: MinCellOption = None,
    labels: LabelsOption = None,
    censor_marks: CensorMarksOption = True,
    font_size: FontSizeOption = None,
    db: DbOption = None,
) -> None:
    """One HTML file: Table 1, OS, EFS and CIR curves, hazard ratios, oncoplot, MRD, data quality, provenance.

    Example: cgdw report --out report.html --min-cell 5
    """
    from etl.report import write_report

    with _counted_progress(not err.is_terminal) as (progress, counted):
        written = write_report(
            _db(db), out_file, by=by, horizon=horizon, min_cell=min_cell, where=where, cohort=cohort,
            labels=labels, style=_figure_style(censor_marks, None, font_size), progress=progress,
            sections_done=counted,
        )  # fmt: skip
    _note(f"wrote {written}")


def main() -> None:
    """Console entry point: errors become one line and an exit code (tracebacks only with --debug)."""
    try:
        app(prog_name="cgdw")
    except SystemExit as exc:
        _exit(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
    except CgdwError as exc:
        if _state["debug"]:
            traceback.print_exc()
        _error(str(exc))
        _exit(exc.exit_code)
    except ViewDefinitionError as exc:
        _error(str(exc))
        _exit(1)
    except Exception as exc:
        if _state["debug"]:
            raise
        _error(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        _exit(1)
    _exit(0)


def _exit(code: int) -> None:
    """Leave without interpreter finalization. When DuckDB, oxbow and fastexcel have all been used in one
    process, DuckDB's binding layer (nanobind) prints dozens of spurious "leaked instance" lines at
    finalization; every connection is closed (and committed data checkpointed) before this point."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
