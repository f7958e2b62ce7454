"""Entry points for loading and validating source files: what `cgdw load` and `cgdw validate` call."""

from __future__ import annotations

from pathlib import Path

from etl.clinical import ClinicalLoader
from etl.errors import CgdwError
from etl.framework import DEFAULT_MAX_REJECT_FRACTION, LoadReport, Progress, SourceLoader, run_load
from etl.lab import LabLoader
from etl.layouts import available_layouts, load_layout
from etl.privacy import load_pseudonym_key

KINDS = ("clinical", "lab")


def make_loader(kind: str, layout: str | Path | None, secret: bytes) -> SourceLoader:
    """The loader for a source kind; `layout` is the protocol layout for clinical files (graall, fralle)."""
    if kind == "clinical":
        if layout is None:
            raise CgdwError(
                f"clinical files need --protocol (one of {', '.join(available_layouts('clinical'))})"
            )
        return ClinicalLoader(load_layout(layout), secret)
    if kind == "lab":
        return LabLoader(load_layout(layout or "lab"), secret)
    raise CgdwError(f"unknown source kind {kind!r}: one of {', '.join(KINDS)}")


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
