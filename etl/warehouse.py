"""Opening the warehouse: one writer at a time (a lock file), readers read-only, schema checked at head.

Readers never wait for a writer, nor a writer for a reader: every write that commits publishes a copy of
the warehouse beside it (`<name>.published.duckdb`, replaced atomically), and readers open that copy
(docs/concurrency.md). DuckDB lets no other process open a file one process writes, and no process write
a file another one reads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.errors import CgdwError, WarehouseLocked, one_line
from schema import database

# Only what ships in the duckdb wheel: never try to download an extension at run time.
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    # Bounded memory whatever the file size: DuckDB spills to <db>.tmp beyond this.
    "memory_limit": os.environ.get("CGDW_MEMORY_LIMIT", "1GB"),
}
# A load holds the rows it stages in DuckDB until its merge: half the readers' share keeps a million-record
# VCF under 2 GiB (1.86 against 2.03 GiB measured, at the same speed; lab and MRD within 5%). Either is
# set by $CGDW_MEMORY_LIMIT (docs/loading.md).
LOAD_MEMORY_LIMIT = os.environ.get("CGDW_MEMORY_LIMIT", "512MB")


class PublicationFailed(CgdwError):
    """A write committed, but the copy readers open could not be replaced: they see the state before it
    until `cgdw publish` succeeds."""

    exit_code = 12  # cgdw's own, beside the pipeline's 10 and 11: kept, not yet visible to readers


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


def _storage_advice(exc: BaseException) -> tuple[str, str] | None:
    """(what to do, the OS's detail) when `exc` is a storage failure, else None."""
    text = str(exc)
    for needle, advice in _STORAGE_PROBLEMS:
        if needle in text.lower():
            return advice, text.strip().splitlines()[-1] if text.strip() else type(exc).__name__
    return None


def storage_error(db_path: Path, exc: BaseException) -> WarehouseStorageError | None:
    """A clear error for a storage failure reported by DuckDB or the OS, else None (not a storage problem)."""
    if (found := _storage_advice(exc)) is None:
        return None
    advice, detail = found
    return WarehouseStorageError(
        f"{db_path}: cannot write the warehouse: {advice}, then run the same command again "
        "(a write is all or nothing: none of it was kept; a file already loaded is skipped by its "
        "sha256). "
        f"Detail: {detail}"
    )


def _connect(db_path: Path, read_only: bool, external_access: bool = True) -> duckdb.DuckDBPyConnection:
    config = _CONFIG if external_access else {**_CONFIG, "enable_external_access": False}
    try:
        con = duckdb.connect(str(db_path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseLocked(
                f"{db_path} is in use by another process (DuckDB allows one writer): try again when it ends"
            ) from exc
        if not read_only and (storage := storage_error(db_path, exc)):
            raise storage from exc
        raise CgdwError(f"{db_path}: cannot open the warehouse: {exc}") from exc
    # DuckDB draws a progress bar on stdout when a statement runs for seconds (a million-row merge): stdout
    # holds a command's result only (a session setting; the connection config refuses it).
    con.execute("SET enable_progress_bar = false")
    return con


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


def utc_now() -> dt.datetime:
    """The time every warehouse timestamp is written with: UTC, without a time zone (TIMESTAMP columns)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def published_path(db_path: Path) -> Path:
    """The copy readers open: `warehouse.duckdb` -> `warehouse.published.duckdb`, beside it."""
    return db_path.with_name(f"{db_path.stem}.published{db_path.suffix}")


def readable_path(db_path: Path) -> Path:
    """What a reader opens: the published copy, or the warehouse itself before its first publication (a
    warehouse written by a cgdw older than migration 0013), which a writer then cannot open meanwhile."""
    published = published_path(db_path)
    return published if published.exists() else db_path


def _refuse_published_copy(db_path: Path) -> None:
    if db_path.stem.endswith(".published") or db_path.name.endswith(".published"):
        original = db_path.name.replace(".published", "", 1)
        raise CgdwError(
            f"{db_path} is a published copy, replaced at every write: write to the warehouse itself "
            f"(--db {db_path.with_name(original)})"
        )


# Paths whose publication waits for the end of a pipeline run: {path: written since}.
_DEFERRED: ContextVar[dict[Path, bool] | None] = ContextVar("cgdw_deferred_publication", default=None)


@contextmanager
def publication_deferred(db_path: Path) -> Iterator[list[Publication]]:
    """Writes inside publish nothing; the end publishes once if any of them wrote (a pipeline run, whose
    readers keep the state before it until it ends), and appends the publication to the list it yields.
    An error or an interruption still publishes what was committed before it (a consent withdrawal among
    the files must reach readers), without hiding the error."""
    pending = {**(_DEFERRED.get() or {}), db_path: False}
    token = _DEFERRED.set(pending)
    published: list[Publication] = []
    try:
        yield published
    except BaseException:
        _DEFERRED.reset(token)
        if pending[db_path]:
            with contextlib.suppress(Exception):  # the error in flight is the one to report
                _publish_deferred(db_path, published)
        raise
    _DEFERRED.reset(token)
    if pending[db_path]:
        _publish_deferred(db_path, published)


def _publish_deferred(db_path: Path, published: list[Publication]) -> None:
    # Another writer holding the lock now publishes everything (ours included) when it commits.
    with contextlib.suppress(WarehouseLocked), write_lock(db_path):
        # Not forced: writes that changed nothing (dry runs, files loaded before) publish nothing.
        if publication := _publish_locked(db_path, storage_version=None, force=False):
            published.append(publication)


_SHARED: ContextVar[dict[Path, duckdb.DuckDBPyConnection] | None] = ContextVar(
    "cgdw_shared_writer", default=None
)


@contextmanager
def one_writer(db_path: Path) -> Iterator[None]:
    """Every write to `db_path` inside shares one connection, under one write lock: each write is still its
    own transaction and run, but the warehouse is opened, checked at head and closed (a checkpoint) once,
    not once per file (`cgdw load KIND FILE...`, a pipeline run: 40 ms of a small VCF batch's load)."""
    with open_for_write(db_path) as con:
        token = _SHARED.set({**(_SHARED.get() or {}), db_path: con})
        try:
            yield
        finally:
            _SHARED.reset(token)


@contextmanager
def open_for_write(db_path: Path, *, force_publish: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writing connection to a warehouse at head, under the write lock; publishes when the body ends
    without an error, unless it changed nothing (no new run: `force_publish` for the writes that record
    none, as retiring a view) or a pipeline run defers it. Inside `one_writer`, its connection.

    A storage failure while writing (a full disk surfaces at COMMIT, as DuckDB checkpoints) becomes a
    WarehouseStorageError naming the file; DuckDB has then discarded the transaction.
    """
    shared = (_SHARED.get() or {}).get(db_path)
    if shared is not None:
        yield shared  # the outer one_writer publishes, and turns storage failures into clear errors
        return
    _refuse_published_copy(db_path)
    require_warehouse(db_path)  # before the lock, which would otherwise create the lock file's directory
    with write_lock(db_path):
        require_warehouse(db_path)
        con = _connect(db_path, read_only=False)
        inode = db_path.stat().st_ino
        deferred = _DEFERRED.get()
        deferring = deferred is not None and db_path in deferred
        try:
            require_head(con, db_path)
            try:
                yield con
            finally:
                if deferred is not None and deferring:
                    # Even on an error: a one_writer's earlier files committed, and their publication
                    # (checked for change when it runs) must not wait for the next write.
                    deferred[db_path] = True
            if not deferring and db_path.stat().st_ino == inode:
                # Through this connection: no other process can open the file between commit and copy.
                _publish_locked(db_path, storage_version=None, force=force_publish, con=con)
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
        # A purge's compaction renamed a new file over the one `con` had open: publish that one.
        if not deferring and db_path.stat().st_ino != inode:
            _publish_locked(db_path, storage_version=None, force=True)


@dataclass(frozen=True)
class Publication:
    """A copy put in place (a row of `publication`)."""

    path: Path
    etl_run_id: int | None
    schema_revision: str
    storage_version: str | None
    size_bytes: int
    seconds: float

    def line(self) -> str:
        after = f"after run {self.etl_run_id}" if self.etl_run_id is not None else "before any run"
        storage = f", DuckDB storage {self.storage_version}" if self.storage_version else ""
        return (
            f"published {self.path.name} ({after}, schema {self.schema_revision}{storage}): "
            f"{self.size_bytes / 1e6:,.1f} MB in {self.seconds:.2f} s"
        )


# The storage versions DuckDB 2 can write (it refuses others with a clear message of its own).
_STORAGE_VERSION = re.compile(r"v\d+\.\d+\.\d+")


def publish(db_path: Path, storage_version: str | None = None) -> Publication | None:
    """Replace the published copy with the warehouse as it stands, under the write lock (`cgdw publish`).

    storage_version ('v1.4.0') writes a copy an older DuckDB opens, and every later publication keeps it,
    until 'default' returns to this DuckDB's own (a byte copy, much faster)."""
    _refuse_published_copy(db_path)
    require_warehouse(db_path)
    if storage_version not in (None, "default") and not _STORAGE_VERSION.fullmatch(storage_version):
        raise CgdwError(
            f"--storage-version {storage_version!r}: give a DuckDB version such as v1.4.0, or default"
        )
    with write_lock(db_path):
        return _publish_locked(db_path, storage_version=storage_version, force=True)


def _publish_locked(
    db_path: Path,
    storage_version: str | None,
    force: bool,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Publication | None:
    """Copy the warehouse beside itself and rename the copy over the published one (readers holding the old
    copy keep reading it; the next reader opens the new one). The caller holds the write lock, and passes
    its writing connection when it has one (no other process can open the file in between). Without
    `force`, nothing is done when the published copy already holds the newest run and revision.

    Raises PublicationFailed (the write is kept) when the copy cannot be made or put in place."""
    if con is not None:
        return _publish_with(con, db_path, storage_version, force)
    opened = _connect_for_publication(db_path)
    try:
        return _publish_with(opened, db_path, storage_version, force)
    finally:
        opened.close()


def _connect_for_publication(db_path: Path) -> duckdb.DuckDBPyConnection:
    """A writing connection for a publication after the writer closed its own (a replaced file): a reader
    of the warehouse file itself (`cgdw db status`) may hold it for a moment, so wait a little."""
    for _ in range(50):
        try:
            return _connect(db_path, read_only=False)
        except WarehouseLocked:
            time.sleep(0.1)
    raise PublicationFailed(
        f"{db_path}: not published (any write is kept): another process held the warehouse file itself "
        f"(not its published copy) for 5 s; run `cgdw publish --db {db_path}` (readers see the state "
        "before it until then)"
    )


def _publish_with(
    con: duckdb.DuckDBPyConnection, db_path: Path, storage_version: str | None, force: bool
) -> Publication | None:
    started = time.monotonic()
    target = published_path(db_path)
    for stale in target.parent.glob(f".{target.name}.*.partial"):  # a publication killed half-way
        stale.unlink(missing_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    if not relation_columns(con, "publication"):
        # A schema older than migration 0013 (a downgrade): no copy, so readers open the warehouse itself
        # and are told to upgrade, instead of reading a copy of a newer schema.
        target.unlink(missing_ok=True)
        return None
    newest_run = fetch_value(con, "SELECT max(etl_run_id) FROM etl_run WHERE finished_at IS NOT NULL")
    revision = fetch_value(con, "SELECT version_num FROM alembic_version")
    last = con.execute(
        "SELECT etl_run_id, schema_revision, storage_version FROM publication "
        "ORDER BY publication_id DESC LIMIT 1"
    ).fetchall()
    version = storage_version if storage_version != "default" else None
    if storage_version is None:
        version = last[0][2] if last else None  # an older storage version, once asked for, sticks
    if (
        not force
        and last
        and last[0] == (newest_run, revision, version)
        and _holds(target, newest_run, revision)
    ):
        return None
    try:
        if version is None:
            # A byte copy of a checkpointed file that no one else may write (we hold the lock).
            con.execute("CHECKPOINT")
            wal = db_path.with_name(db_path.name + ".wal")
            if wal.exists() and wal.stat().st_size:
                raise PublicationFailed(f"{db_path}: cannot publish: its write-ahead log did not checkpoint")
            _copy_file(db_path, partial)
        else:
            partial.unlink(missing_ok=True)
            name = fetch_value(con, "SELECT current_database()")
            quoted = str(partial).replace("'", "''")  # a directory name may hold a quote
            con.execute(f"ATTACH '{quoted}' AS cgdw_published (STORAGE_VERSION '{version}')")
            try:
                con.execute(f'COPY FROM DATABASE "{name}" TO cgdw_published')
            finally:
                con.execute("DETACH cgdw_published")
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        # Read-only on disk: DuckDB (in R or Python) opens it read-write by default, and a write there
        # would be lost at the next publication, or leave a WAL that breaks every reader of the next copy.
        partial.chmod(0o444)
        target.with_name(target.name + ".wal").unlink(missing_ok=True)
        os.replace(partial, target)
        _fsync_directory(target.parent)
    except (duckdb.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, duckdb.InvalidInputException | duckdb.NotImplementedException):
            raise CgdwError(f"{db_path}: cannot publish with storage version {version}: {exc}") from exc
        advice, detail = _storage_advice(exc) or ("see the detail", one_line(exc))
        raise PublicationFailed(
            f"{db_path}: the write is kept, but publishing it to {target.name} failed: {advice}, then "
            f"run `cgdw publish --db {db_path}` (readers see the state before it until then; the "
            f"warehouse needs room for its published copy). Detail: {detail}"
        ) from exc
    publication = Publication(
        target, newest_run, revision, version, target.stat().st_size, time.monotonic() - started
    )
    con.execute(
        "INSERT INTO publication (published_at, etl_run_id, schema_revision, storage_version, "
        "size_bytes, seconds) VALUES ($at, $run, $revision, $version, $size, $seconds)",
        {
            "at": utc_now(),
            "run": newest_run,
            "revision": revision,
            "version": version,
            "size": publication.size_bytes,
            "seconds": publication.seconds,
        },
    )
    return publication


def _holds(target: Path, newest_run: int | None, revision: str) -> bool:
    """Whether the published copy holds this run and revision: the log of publications is not enough, as
    the file may have been replaced by hand (a copy of another warehouse) or written to."""
    if not target.exists() or target.with_name(target.name + ".wal").exists():
        return False
    try:
        with duckdb.connect(str(target), read_only=True, config=_CONFIG) as copy:
            held = copy.execute(
                "SELECT (SELECT max(etl_run_id) FROM etl_run WHERE finished_at IS NOT NULL), "
                "(SELECT version_num FROM alembic_version)"
            ).fetchall()
    except duckdb.Error:
        return False
    return held == [(newest_run, revision)]


def _copy_file(source: Path, target: Path) -> None:
    """copy_file_range: in the kernel, and a reflink (no data copied) on XFS, btrfs and ZFS; sendfile
    (shutil) where the file system or the kernel does not offer it."""
    try:
        with open(source, "rb") as reading, open(target, "wb") as writing:
            left = os.fstat(reading.fileno()).st_size
            while left > 0:
                copied = os.copy_file_range(reading.fileno(), writing.fileno(), left)
                if copied == 0:
                    break
                left -= copied
            if left == 0:
                return
    except OSError:
        pass
    shutil.copyfile(source, target)


def _fsync_directory(directory: Path) -> None:
    """A rename survives a crash once its directory is synced."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


@dataclass(frozen=True)
class PublishedState:
    """What readers see: the newest run in the published copy, beside the newest in the warehouse (None
    when it was not read: a write holds it, or only the copy was asked for)."""

    warehouse: Path
    published: Path | None
    warehouse_run: int | None
    published_run: int | None
    published_at: dt.datetime | None  # UTC
    storage_version: str | None
    writing: bool = False  # a write held the warehouse file when it was looked at

    @property
    def behind(self) -> bool:
        return self.published is not None and not self.writing and self.published_run != self.warehouse_run


def published_state(db_path: Path, *, warehouse: bool = True) -> PublishedState:
    """The published copy's newest run and time; with `warehouse`, also the warehouse's own newest run
    (`cgdw db status`), read only if no write holds the file: a reader never waits for a writer, nor makes
    one wait for more than this one query. The Python API reads the copy only."""
    require_warehouse(db_path)
    newest = "SELECT max(etl_run_id) FROM etl_run WHERE finished_at IS NOT NULL"
    warehouse_run, version, writing = None, None, False
    if warehouse:
        try:
            with open_for_read(db_path, latest=True) as con:
                warehouse_run = fetch_value(con, newest)
                version = fetch_value(
                    con, "SELECT storage_version FROM publication ORDER BY publication_id DESC LIMIT 1"
                )
        except WarehouseLocked:
            writing = True
    target = published_path(db_path)
    if not target.exists():
        return PublishedState(db_path, None, warehouse_run, None, None, None, writing)
    with open_for_read(db_path) as con:
        published_run = fetch_value(con, newest)
    at = dt.datetime.fromtimestamp(target.stat().st_mtime, dt.UTC).replace(tzinfo=None)
    return PublishedState(db_path, target, warehouse_run, published_run, at, version, writing)


@contextmanager
def open_for_read(db_path: Path, *, latest: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the published copy (see `readable_path`). `latest` opens the warehouse
    itself, for a writer's own decisions (which files are new, which views are stale): it fails with exit
    75 while another process writes."""
    require_warehouse(db_path)
    path = db_path if latest else readable_path(db_path)
    con = _connect(path, read_only=True)
    try:
        require_head(con, db_path)
        yield con
    finally:
        con.close()


@contextmanager
def read_only_connection(db_path: Path, external_access: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """Like `open_for_read`; with external_access=False no SQL on it can touch a file (analyst queries)."""
    require_warehouse(db_path)
    path = readable_path(db_path)
    con = _connect(path, read_only=True, external_access=external_access)
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
