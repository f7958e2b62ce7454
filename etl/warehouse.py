"""Opening the warehouse: one writer at a time (a lock file), readers read-only, schema checked at head."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.errors import CgdwError, WarehouseLocked
from schema import database

# Only what ships in the duckdb wheel: never try to download an extension at run time.
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    # Bounded memory whatever the file size: DuckDB spills to <db>.tmp beyond this.
    "memory_limit": os.environ.get("CGDW_MEMORY_LIMIT", "1GB"),
}


class WarehouseStorageError(CgdwError):
    """The file system refused a write (read-only, permissions, disk full): fix the storage and run the same
    command again. Nothing half-written is left: a write is one transaction."""

    exit_code = 74  # EX_IOERR: distinct from a busy warehouse (75), which cron may simply retry


# What the OS (through DuckDB or Python) says -> what the user is told. Matched on the message because
# DuckDB reports every one of them as the same exception class (IOException, or FatalException at commit).
_STORAGE_PROBLEMS = (
    ("no space left on device", "the disk is full (No space left on device): free space"),
    ("disk quota exceeded", "the disk quota is exceeded: free space or raise the quota"),
    ("read-only file system", "its file system is read-only (Read-only file system): mount it read-write"),
    ("permission denied", "permission denied: give this user write access to the file and its directory"),
    (
        "operation not permitted",
        "the operating system refused the write (Operation not permitted: an immutable file? "
        "see lsattr): make the file writable",
    ),
)


def storage_error(db_path: Path, exc: BaseException) -> WarehouseStorageError | None:
    """A clear error for a storage failure reported by DuckDB or the OS, else None (not a storage problem)."""
    text = str(exc)
    for needle, advice in _STORAGE_PROBLEMS:
        if needle in text.lower():
            detail = text.strip().splitlines()[-1] if text.strip() else type(exc).__name__
            return WarehouseStorageError(
                f"{db_path}: cannot write the warehouse: {advice}, then run the same command again "
                "(a write is all or nothing: none of it was kept; a file already loaded is skipped by its "
                "sha256). "
                f"Detail: {detail}"
            )
    return None


def _connect(db_path: Path, read_only: bool, external_access: bool = True) -> duckdb.DuckDBPyConnection:
    config = _CONFIG if external_access else {**_CONFIG, "enable_external_access": False}
    try:
        return duckdb.connect(str(db_path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseLocked(
                f"{db_path} is in use by another process (DuckDB allows one writer): try again when it ends"
            ) from exc
        if not read_only and (storage := storage_error(db_path, exc)):
            raise storage from exc
        raise CgdwError(f"{db_path}: cannot open the warehouse: {exc}") from exc


def require_warehouse(db_path: Path) -> None:
    if not db_path.exists():
        raise CgdwError(f"no warehouse at {db_path}: create it with `cgdw db upgrade --db {db_path}`")


def require_head(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    """The schema is at the head revision, else say what to run (read through `con`: a second connection
    with another configuration to the same file is refused by DuckDB)."""
    try:
        current = fetch_value(con, "SELECT version_num FROM alembic_version")
    except duckdb.CatalogException:
        current = None
    head = database.head_revision()
    if current != head:
        raise CgdwError(
            f"{db_path} is at schema revision {current or 'none'}, this cgdw needs {head}: "
            f"run `cgdw db upgrade --db {db_path}`"
        )


@contextmanager
def write_lock(db_path: Path) -> Iterator[None]:
    """An advisory lock beside the database, so a second writer fails at once with a clear message.

    flock is released by the kernel when the process dies, so a killed load never leaves a stale lock.
    """
    lock_path = db_path.with_name(db_path.name + ".lock")
    # No mkdir: the warehouse (hence its directory) must exist; a mistyped --db must not create directories.
    try:
        # Unbuffered, so that a full disk fails the write below, not the close.
        handle = open(os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644), "r+b", buffering=0)  # noqa: SIM115
    except OSError as exc:
        raise storage_error(db_path, exc) or CgdwError(
            f"{db_path}: cannot create the lock file {lock_path}: {exc.strerror}"
        ) from exc
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().decode(errors="replace").strip() or "unknown"
            raise WarehouseLocked(
                f"{db_path} is being written by another cgdw process (pid {holder}); try again when it ends"
            ) from None
        try:
            pid = str(os.getpid()).encode()
            handle.seek(0)
            handle.write(pid)  # over the previous holder's pid: no new block needed
            handle.truncate(len(pid))
        except OSError as exc:  # a full disk shows first here, before the database is touched
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            raise storage_error(db_path, exc) or CgdwError(
                f"{db_path}: cannot write the lock file {lock_path}: {exc.strerror}"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def open_for_write(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writing connection to a warehouse at head, under the write lock.

    A storage failure while writing (a full disk surfaces at COMMIT, as DuckDB checkpoints) becomes a
    WarehouseStorageError naming the file; DuckDB has then discarded the transaction.
    """
    require_warehouse(db_path)  # before the lock, which would otherwise create the lock file's directory
    with write_lock(db_path):
        require_warehouse(db_path)
        con = _connect(db_path, read_only=False)
        try:
            require_head(con, db_path)
            yield con
        except (duckdb.Error, OSError) as exc:
            # Only errors about this warehouse's own files (<db>, <db>.wal, <db>.tmp): a source file that
            # cannot be read is the loader's business and keeps its own message.
            about_warehouse = db_path.name in str(exc) or isinstance(exc, duckdb.FatalException)
            storage = storage_error(db_path, exc) if about_warehouse else None
            if storage is None:
                raise
            raise storage from exc
        finally:
            con.close()


@contextmanager
def open_for_read(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    require_warehouse(db_path)
    con = _connect(db_path, read_only=True)
    try:
        require_head(con, db_path)
        yield con
    finally:
        con.close()


@contextmanager
def read_only_connection(db_path: Path, external_access: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Like `open_for_read`; with external_access=False no SQL on it can touch a file (analyst queries)."""
    require_warehouse(db_path)
    con = _connect(db_path, read_only=True, external_access=external_access)
    try:
        require_head(con, db_path)
        yield con
    finally:
        con.close()


def relation_columns(con: duckdb.DuckDBPyConnection, relation: str, schema: str = "main") -> list[str]:
    """The columns of a table or view, in order (empty when it does not exist)."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $schema "
        "AND table_name = $relation ORDER BY ordinal_position",
        {"schema": schema, "relation": relation},
    ).fetchall()
    return [name for (name,) in rows]


def fetch_value(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> Any:
    """The first column of the first row (None if no row), reading the whole result: a DuckDB 2.0
    connection refuses any other work (even `register`) while a result is left unfinished."""
    rows = con.execute(sql, params).fetchall()
    return rows[0][0] if rows else None


def query_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None
) -> pl.DataFrame:
    """A query's result as a polars frame (DuckDB 2.0 connections have no `.pl()` after execute)."""
    return con.sql(sql, params=params).pl()
