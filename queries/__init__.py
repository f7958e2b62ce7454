"""Versioned SQL views (queries/views/NAME/vN.sql): each file is a SELECT with a header naming the view,
its version, what it depends on and every column. Issue 4's registry applies them as NAME_vN."""

from __future__ import annotations

from pathlib import Path

VIEWS_DIR = Path(__file__).resolve().parent / "views"


def view_sql(name: str, version: int = 1) -> str:
    """The SELECT of a view version."""
    return (VIEWS_DIR / name / f"v{version}.sql").read_text(encoding="utf-8")
