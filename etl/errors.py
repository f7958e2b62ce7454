"""Errors a user sees: one clear line and an exit code, never a traceback (unless --debug)."""

from __future__ import annotations


class CgdwError(Exception):
    """An error with a message meant for the user."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def one_line(exc: BaseException) -> str:
    """The first line of a third-party error (polars, fastexcel and gzip add hints and context lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


class FileRejected(CgdwError):
    """A file-level problem: the whole load is aborted and the database is left unchanged."""

    exit_code = 3

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: file rejected, nothing loaded: {reason}")
        self.path = path
        self.reason = reason


class WarehouseLocked(CgdwError):
    """Another process is writing to the warehouse (one writer per DuckDB file)."""

    exit_code = 75  # EX_TEMPFAIL: cron may simply try again later
