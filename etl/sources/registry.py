"""The registry of source kinds: one declaration per kind, read by `cgdw load`/`validate`, the pipeline, the
demo and `load_source`.

A declaration says what a kind is (name, help), which loader reads it (imported only when a file of that
kind is loaded, so that `cgdw --help` stays fast), whether it is read through a layout (and then needs the
pseudonymisation key), which kinds its rows refer to (hence the order a pipeline loads them in) and the
options its loader takes (the same for `cgdw load KIND --OPTION` and a pipeline source's `OPTION:` key).
Adding a kind is its module in etl/sources/ plus one `SourceKind` here.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.errors import CgdwError, FileRejected
from etl.load import DEFAULT_MAX_REJECT_FRACTION

if TYPE_CHECKING:
    from etl.load.framework import LoadReport, Progress, SourceLoader


@dataclass(frozen=True)
class LoadOption:
    """An option of one kind's loader: a keyword argument, a `--flag` of `cgdw load`, a pipeline key."""

    name: str  # the loader's keyword and the pipeline key; the flag is --name-with-dashes
    type: type  # str, bool, or list (of str: comma-separated on the command line, a YAML list)
    help: str
    default: Any = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class SourceKind:
    name: str
    summary: str  # what `cgdw load NAME --help` says first
    file_help: str
    loader: str  # "module:Class" of its SourceLoader
    layout_driven: bool = False  # read through a layout (etl/sources/layouts/*.toml); needs the key
    default_layout: str | None = None  # None with layout_driven: the user names one (clinical: the trial)
    layout_flags: tuple[str, ...] = ("--layout",)
    layout_help: str = "Layout name or .toml path."
    refers_to: tuple[str, ...] = ()  # kinds whose rows its rows point at: loaded before it
    options: tuple[LoadOption, ...] = ()
    example: str = ""  # the arguments of a typical `cgdw load NAME` (its --help shows them)

    def loader_class(self) -> type[SourceLoader]:
        module, _, name = self.loader.partition(":")
        loader: type[SourceLoader] = getattr(importlib.import_module(module), name)
        return loader


ASSEMBLY = LoadOption("assembly", str, "GRCh37 or GRCh38. Default: from the file, else the samples' assay.")
PASS_ONLY = LoadOption("pass_only", bool, "Store only calls whose FILTER is PASS.", False)
# Layout exports are dated snapshots (etl/load/snapshot.py); their loaders take these two, run_load uses them.
SNAPSHOT_OPTIONS = (
    LoadOption(
        "export_date",
        str,
        "The day the source exported the file, YYYY-MM-DD. Default: from the file name as the layout's "
        "export_date_pattern says, else unknown (not compared).",
    ),
    LoadOption(
        "force",
        bool,
        "Load an export older than one already loaded (it undoes the newer corrections).",
        False,
    ),
)

# In dependency order (a test checks that every kind comes after the kinds it refers to).
SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind(
        "clinical",
        "Load a trial-database export (patients, baseline, response, outcomes) of one cooperative group.",
        "The trial export (csv or xlsx, as the layout says).",
        "etl.sources.clinical:ClinicalLoader",
        example="graall_2024-05.csv --protocol graall --db warehouse.duckdb",
        layout_driven=True,
        layout_flags=("--protocol", "-p"),
        layout_help="Source layout of the trial export: graall, fralle, or a .toml path.",
        options=SNAPSHOT_OPTIONS,
    ),
    SourceKind(
        "lab",
        "Load the reference laboratory's TCR status, ETP and oncogenetics (after the trial exports).",
        "The reference-laboratory export (TSV).",
        "etl.sources.lab:LabLoader",
        example="lab_oncogenetics.tsv --db warehouse.duckdb",
        layout_driven=True,
        default_layout="lab",
        refers_to=("clinical",),
        options=SNAPSHOT_OPTIONS,
    ),
    SourceKind(
        "samples",
        "Load a sequencing sample manifest: sample ids -> patients, assays, pipelines (before any calls).",
        "The sample manifest (TSV).",
        "etl.sources.samples:SampleManifestLoader",
        example="samples.tsv --db warehouse.duckdb",
        layout_driven=True,
        default_layout="samples",
        refers_to=("clinical",),
        options=SNAPSHOT_OPTIONS,
    ),
    SourceKind(
        "vcf",
        "Load variant calls from a VCF; its sample columns must be in the sample manifest.",
        "VCF 4.x, plain or bgzipped, with VEP CSQ and/or SnpEff ANN.",
        "etl.sources.vcf:VcfLoader",
        example="batch_*.vcf.gz --pass-only --db warehouse.duckdb",
        refers_to=("samples",),
        options=(
            LoadOption("assembly", str, "GRCh37 or GRCh38. Default: the samples' assay, else the header."),
            PASS_ONLY,
            LoadOption("samples", list, "Comma-separated sample columns to load (default: all)."),
        ),
    ),
    SourceKind(
        "maf",
        "Load somatic calls from a MAF into the same tables as VCF calls.",
        "MAF (GDC / cBioPortal data_mutations columns), plain or gzipped.",
        "etl.sources.maf:MafLoader",
        example="mutations.maf --assembly GRCh38 --db warehouse.duckdb",
        refers_to=("samples",),
        options=(ASSEMBLY, PASS_ONLY),
    ),
    SourceKind(
        "cnv",
        "Load gene-level copy-number calls (NGS, MLPA, aCGH); second methods confirm NGS calls.",
        "The copy-number calls (TSV).",
        "etl.sources.cnv:CopyNumberCallLoader",
        example="cnv_calls.tsv --db warehouse.duckdb",
        layout_driven=True,
        default_layout="cnv",
        refers_to=("samples",),
        options=SNAPSHOT_OPTIONS,
    ),
    SourceKind(
        "seg",
        "Load copy-number segments; per-gene exon calls are derived from the reference exon coordinates.",
        "SEG file (ID chrom loc.start loc.end num.mark seg.mean).",
        "etl.sources.seg:SegLoader",
        example="segments.seg --method aCGH --db warehouse.duckdb",
        refers_to=("samples",),
        options=(
            ASSEMBLY,
            LoadOption("method", str, "Method that produced the segments: aCGH, SNP_array or NGS.", "aCGH"),
        ),
    ),
    SourceKind(
        "mrd",
        "Load MRD results of any method (PCR, ddPCR, flow, NGS), normalised to fractions.",
        "The MRD results (TSV, long format).",
        "etl.sources.mrd:MrdLoader",
        example="mrd_results_2024-05.tsv --db warehouse.duckdb",
        layout_driven=True,
        default_layout="mrd",
        refers_to=("clinical", "samples"),
        options=SNAPSHOT_OPTIONS,
    ),
)
KINDS: dict[str, SourceKind] = {kind.name: kind for kind in SOURCE_KINDS}
KIND_NAMES = tuple(KINDS)
LAYOUT_KINDS = tuple(kind.name for kind in SOURCE_KINDS if kind.layout_driven)


def source_kind(name: str) -> SourceKind:
    if name not in KINDS:
        raise CgdwError(f"unknown source kind {name!r}: one of {', '.join(KIND_NAMES)}")
    return KINDS[name]


def make_loader(
    kind: str, *, layout: str | Path | None = None, secret: bytes | None = None, **options: Any
) -> SourceLoader:
    """The loader of a file of `kind`: layout-driven kinds take a layout (their default unless given) and
    the pseudonymisation secret; the standard formats take their own options."""
    declared = source_kind(kind)
    if not declared.layout_driven:
        known = {option.name for option in declared.options}
        unknown = sorted(set(options) - known)
        if unknown or layout is not None:
            named = [*unknown, *(["layout"] if layout is not None else [])]
            raise CgdwError(f"{kind} files take no {', '.join(named)} option")
        return declared.loader_class()(**options)
    if options:
        raise CgdwError(f"{kind} files take no {', '.join(sorted(options))} option")
    from etl.load.layout import available_layouts, load_layout

    chosen = layout or declared.default_layout
    if chosen is None:
        flag = declared.layout_flags[0]
        raise CgdwError(f"{kind} files need {flag} (one of {', '.join(available_layouts(kind))})")
    if secret is None:
        from etl.privacy import load_pseudonym_key

        secret = load_pseudonym_key()
    return declared.loader_class()(load_layout(chosen), secret)  # type: ignore[call-arg]


def load_source(
    db_path: Path,
    kind: str,
    path: Path,
    *,
    layout: str | Path | None = None,
    key_file: Path | None = None,
    secret: bytes | None = None,
    max_reject_fraction: float = DEFAULT_MAX_REJECT_FRACTION,
    dry_run: bool = False,
    command: str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> LoadReport:
    """Load (or with dry_run, validate) one file of any kind: one ETL run, one transaction.

    Layout-driven kinds use `layout` and the pseudonymisation secret (`secret`, else from `key_file` or the
    environment), and may be dated (`export_date`, `force`: see run_load); VCF, MAF and SEG take their
    options (`assembly`, `pass_only`, `samples`, `method`)."""
    from etl.load.framework import run_load

    if not 0 <= max_reject_fraction <= 1:
        raise CgdwError(f"--max-reject-fraction must be between 0 and 1, not {max_reject_fraction}")
    snapshot: dict[str, Any] = {}
    if source_kind(kind).layout_driven:
        snapshot = {
            "export_date": _date(options.pop("export_date", None)),
            "force": options.pop("force", False),
        }
        if secret is None:
            from etl.privacy import load_pseudonym_key

            secret = load_pseudonym_key(key_file)
    loader = make_loader(kind, layout=layout, secret=secret, **options)
    return run_load(
        db_path,
        loader,
        path,
        max_reject_fraction=max_reject_fraction,
        dry_run=dry_run,
        command=command,
        progress=progress,
        **snapshot,
    )


def load_sources(
    db_path: Path,
    kind: str,
    paths: list[Path],
    *,
    file_progress: Callable[[int, Path], Progress | None] | None = None,
    **options: Any,
) -> list[LoadReport | FileRejected]:
    """Several files of one kind (`cgdw load vcf batch_*.vcf`): one ETL run and one transaction per file, in
    the order given, as `load_source` loads each, through one connection (`one_writer`); published once,
    after the last (docs/concurrency.md). A rejected file does not hold back the others, as in a pipeline
    run: its FileRejected takes its place in the result.

    `file_progress(index, path)` gives the progress callback of each file (index from 0)."""
    from etl.warehouse import one_writer, publication_deferred

    if len(paths) > 1 and options.get("export_date"):
        raise CgdwError("--export-date dates one file: load the files one by one, each with its own date")
    results: list[LoadReport | FileRejected] = []
    with publication_deferred(db_path), one_writer(db_path):
        for index, path in enumerate(paths):
            progress = file_progress(index, path) if file_progress else None
            try:
                results.append(load_source(db_path, kind, path, progress=progress, **options))
            except FileRejected as exc:
                results.append(exc)
    return results


def _date(value: str | dt.date | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise CgdwError(f"--export-date must be a date in YYYY-MM-DD form, not {value!r}")


def dependency_order(kinds: tuple[SourceKind, ...] = SOURCE_KINDS) -> tuple[str, ...]:
    """Kind names such that every kind comes after the kinds it refers to (declaration order otherwise)."""
    ordered: list[str] = []
    pending = list(kinds)
    while pending:
        ready = next((k for k in pending if all(r in ordered for r in k.refers_to)), None)
        if ready is None:
            raise CgdwError(f"source kinds refer to each other in a cycle: {[k.name for k in pending]}")
        ordered.append(ready.name)
        pending.remove(ready)
    return tuple(ordered)
