"""Entry points for loading and validating source files: what `cgdw load` and `cgdw validate` call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from etl.clinical import ClinicalLoader
from etl.cnv import CopyNumberCallLoader
from etl.errors import CgdwError
from etl.framework import DEFAULT_MAX_REJECT_FRACTION, LoadReport, Progress, SourceLoader, run_load
from etl.lab import LabLoader
from etl.layouts import available_layouts, load_layout
from etl.mrd import MrdLoader
from etl.privacy import load_pseudonym_key
from etl.samples import SampleManifestLoader
from etl.tabular import TabularLoader

# Source kinds read through a layout, with their default layout (clinical has one per trial group).
TABULAR: dict[str, tuple[type[TabularLoader], str | None]] = {
    "clinical": (ClinicalLoader, None),
    "lab": (LabLoader, "lab"),
    "samples": (SampleManifestLoader, "samples"),
    "mrd": (MrdLoader, "mrd"),
    "cnv": (CopyNumberCallLoader, "cnv"),
}
KINDS = tuple(TABULAR)


def make_loader(kind: str, layout: str | Path | None, secret: bytes) -> SourceLoader:
    """The loader for a layout-driven kind; `layout` is the trial group's layout for clinical files."""
    if kind not in TABULAR:
        raise CgdwError(f"unknown source kind {kind!r}: one of {', '.join(KINDS)}")
    loader, default_layout = TABULAR[kind]
    chosen = layout or default_layout
    if chosen is None:
        raise CgdwError(f"{kind} files need --protocol (one of {', '.join(available_layouts(kind))})")
    return loader(load_layout(chosen), secret)


def load_file(
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
) -> LoadReport:
    """Load (or with dry_run, validate) one file; the pseudonym secret is `secret`, else from key_file/env."""
    if not 0 <= max_reject_fraction <= 1:
        raise CgdwError(f"--max-reject-fraction must be between 0 and 1, not {max_reject_fraction}")
    loader = make_loader(kind, layout, secret or load_pseudonym_key(key_file))
    return run_load(
        db_path,
        loader,
        path,
        max_reject_fraction=max_reject_fraction,
        dry_run=dry_run,
        command=command,
        progress=progress,
    )


def load_vcf(
    db_path: Path,
    path: Path,
    *,
    assembly: str | None = None,
    pass_only: bool = False,
    samples: list[str] | None = None,
    **run_options: Any,
) -> LoadReport:
    """Load a VCF (plain or bgzipped) of samples already in the sample manifest."""
    from etl.vcf import VcfLoader

    return run_load(
        db_path, VcfLoader(assembly=assembly, pass_only=pass_only, samples=samples), path, **run_options
    )


def load_maf(
    db_path: Path, path: Path, *, assembly: str | None = None, pass_only: bool = False, **run_options: Any
) -> LoadReport:
    """Load a MAF (GDC / cBioPortal columns) of samples already in the sample manifest."""
    from etl.maf import MafLoader

    return run_load(db_path, MafLoader(assembly=assembly, pass_only=pass_only), path, **run_options)


def load_seg(
    db_path: Path, path: Path, *, assembly: str | None = None, method: str = "aCGH", **run_options: Any
) -> LoadReport:
    """Load copy-number segments and derive per-gene calls over the reference exons."""
    from etl.seg import SegLoader

    return run_load(db_path, SegLoader(assembly=assembly, method=method), path, **run_options)


def load_source(db_path: Path, kind: str, path: Path, **options: Any) -> LoadReport:
    """Load a file of any kind: the layout-driven ones, vcf, maf or seg (options as for each)."""
    if kind in FORMAT_LOADERS:
        return FORMAT_LOADERS[kind](db_path, path, **options)
    return load_file(db_path, kind, path, **options)


# Standard formats read without a layout.
FORMAT_LOADERS: dict[str, Callable[..., LoadReport]] = {"vcf": load_vcf, "maf": load_maf, "seg": load_seg}
ALL_KINDS = (*KINDS, *FORMAT_LOADERS)
