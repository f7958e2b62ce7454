"""`cgdw pipeline run`: scheduled loads of the files data managers drop in folders (docs/scheduling.md).

    config (YAML, strict) -> pipeline lock -> find files -> sha256 already loaded? -> load_source per file,
    in dependency order -> views apply -> JSON-lines log + summary -> exit code for cron

One pipeline at a time: `<db>.pipeline.lock` (flock, released by the kernel when the process dies) holds
the pid and start time of the run; a lock file still holding them when the next run starts means that run
did not finish, which the next run reports and then proceeds. Each file is one ETL run (one transaction),
so a killed pipeline leaves only whole files loaded, and the next run loads the rest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from etl.errors import CgdwError, FileRejected, WarehouseLocked
from etl.ledger import utc_now
from etl.load import DEFAULT_MAX_REJECT_FRACTION
from etl.load import EXIT_QUARANTINED as LOAD_QUARANTINED
from etl.load.framework import Progress
from etl.sources.registry import LAYOUT_KINDS, SOURCE_KINDS, dependency_order, source_kind
from etl.warehouse import Publication, one_writer, publication_deferred

# Exit codes for cron and systemd (documented in docs/scheduling.md and `cgdw pipeline run --help`).
EXIT_OK = 0  # every file loaded cleanly, or nothing new
EXIT_QUARANTINED = LOAD_QUARANTINED  # loaded, but some rows were quarantined (`cgdw rejects RUN`)
EXIT_REJECTED = 11  # at least one file was rejected whole; the other files were loaded
EXIT_LOCKED = 75  # EX_TEMPFAIL: another pipeline (or a cgdw load) is writing; try again later
EXIT_CONFIG = 78  # EX_CONFIG: the configuration file (or the key it names) is wrong

TOP_KEYS = ("warehouse", "key_file", "log", "max_reject_fraction", "settle_seconds", "sources")
SOURCE_KEYS = ("kind", "folder", "pattern", "max_reject_fraction")
# Options passed to the loader, per kind: the options of `cgdw load KIND` (etl/sources/registry.py).
KIND_KEYS: dict[str, tuple[str, ...]] = {
    kind.name: ("layout",) if kind.layout_driven else tuple(option.name for option in kind.options)
    for kind in SOURCE_KINDS
}
ALL_SOURCE_KEYS = tuple(dict.fromkeys([*SOURCE_KEYS, *(k for keys in KIND_KEYS.values() for k in keys)]))
KIND_ORDER = dependency_order()  # trial exports create the patients; calls and MRD refer to the samples


class PipelineConfigError(CgdwError):
    """The pipeline configuration is wrong: nothing was loaded."""

    exit_code = EXIT_CONFIG


class PipelineLocked(WarehouseLocked):
    """Another pipeline run holds the pipeline lock of this warehouse."""

    exit_code = EXIT_LOCKED


# --- configuration ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceConfig:
    """One `sources:` entry: files of one kind matching `pattern` in `folder`."""

    kind: str
    folder: Path
    pattern: str
    line: int  # in the YAML file, for messages
    layout: str | None = None
    max_reject_fraction: float | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the kind's loader options (registry)

    def describe(self) -> str:
        layout = f" ({self.layout})" if self.layout else ""
        return f"{self.kind}{layout} {self.folder / self.pattern}"


@dataclass(frozen=True)
class PipelineConfig:
    path: Path
    sources: tuple[SourceConfig, ...]
    warehouse: Path | None = None
    key_file: Path | None = None
    log: Path | None = None
    max_reject_fraction: float = DEFAULT_MAX_REJECT_FRACTION
    settle_seconds: float = 0.0


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _fail(config: Path, node: yaml.Node, message: str) -> PipelineConfigError:
    return PipelineConfigError(f"{config}: line {_line(node)}: {message}")


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _mapping(config: Path, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key -> (key node, value node), refusing non-mappings and duplicated keys."""
    if not isinstance(node, yaml.MappingNode):
        raise _fail(config, node, f"{what} must be a mapping of keys to values")
    result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key in result:
            raise _fail(config, key_node, f"{key!r} is given twice in {what}")
        result[key] = (key_node, value_node)
    return result


def _scalar(config: Path, node: yaml.Node, key: str, kind: type | tuple[type, ...]) -> Any:
    value = yaml.SafeLoader("").construct_object(node, deep=True)
    # bool is an int in Python: a `true` where a number is expected is a mistake, not 1.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        names = " or ".join(t.__name__ for t in _as_tuple(kind)).replace("str", "text")
        raise _fail(config, node, f"{key} must be {names}, not {value!r}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _path(config: Path, node: yaml.Node, key: str) -> Path:
    # Relative paths are relative to the configuration file, not to cron's working directory.
    path = Path(_scalar(config, node, key, str)).expanduser()
    return path if path.is_absolute() else config.parent / path


def _fraction(config: Path, node: yaml.Node, key: str) -> float:
    value = float(_scalar(config, node, key, (int, float)))
    if not 0 <= value <= 1:
        raise _fail(config, node, f"{key} must be between 0 and 1, not {value}")
    return value


def _check_keys(
    config: Path, entries: dict[str, tuple[yaml.Node, yaml.Node]], allowed: tuple[str, ...], where: str
) -> None:
    for key, (key_node, _) in entries.items():
        if key not in allowed:
            raise _fail(
                config,
                key_node,
                f"unknown key {key!r} in {where}{_suggest(key, allowed)}; valid keys: {', '.join(allowed)}",
            )


def load_config(path: Path) -> PipelineConfig:
    """Read and validate a pipeline configuration; every mistake is a PipelineConfigError naming its line."""
    path = Path(path).absolute()  # the log and `cgdw runs` name it; cron's working directory is no help
    try:
        with open(path, encoding="utf-8") as handle:  # a file, so that YAML errors name it
            root = yaml.compose(handle, Loader=yaml.SafeLoader)
    except OSError as exc:
        raise PipelineConfigError(f"cannot read the pipeline configuration {path}: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PipelineConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if root is None:
        raise PipelineConfigError(f"{path}: the configuration is empty (see docs/scheduling.md)")
    top = _mapping(path, root, "the configuration")
    _check_keys(path, top, TOP_KEYS, "the configuration")
    if "sources" not in top:
        raise _fail(path, root, "no 'sources' list: name at least one drop folder (see docs/scheduling.md)")
    sources_node = top["sources"][1]
    if not isinstance(sources_node, yaml.SequenceNode) or not sources_node.value:
        raise _fail(path, sources_node, "sources must be a non-empty list of {kind, folder, pattern, ...}")
    options: dict[str, Any] = {}
    for key in ("warehouse", "key_file", "log"):
        if key in top:
            options[key] = _path(path, top[key][1], key)
    if "max_reject_fraction" in top:
        options["max_reject_fraction"] = _fraction(path, top["max_reject_fraction"][1], "max_reject_fraction")
    if "settle_seconds" in top:
        settle = float(_scalar(path, top["settle_seconds"][1], "settle_seconds", (int, float)))
        if settle < 0:
            raise _fail(path, top["settle_seconds"][1], "settle_seconds must be 0 or more")
        options["settle_seconds"] = settle
    sources = tuple(_source(path, node, i) for i, node in enumerate(sources_node.value, start=1))
    return PipelineConfig(path=path, sources=sources, **options)


def _source(config: Path, node: yaml.Node, index: int) -> SourceConfig:
    where = f"sources entry {index}"
    entries = _mapping(config, node, where)
    kind = None
    if "kind" in entries:
        kind_node = entries["kind"][1]
        kind = _scalar(config, kind_node, "kind", str)
        if kind not in KIND_ORDER:
            choices = ", ".join(KIND_ORDER)
            raise _fail(
                config, kind_node, f"unknown kind {kind!r}{_suggest(kind, KIND_ORDER)}; kinds: {choices}"
            )
    allowed = (*SOURCE_KEYS, *KIND_KEYS[kind]) if kind else ALL_SOURCE_KEYS
    for key, (key_node, _) in entries.items():
        if key in ALL_SOURCE_KEYS and key not in allowed:
            raise _fail(
                config,
                key_node,
                f"{key!r} does not apply to {kind} sources; valid keys: {', '.join(allowed)}",
            )
    _check_keys(config, entries, allowed, where)
    for required in ("kind", "folder", "pattern"):
        if required not in entries:
            raise _fail(config, node, f"{where} has no {required!r}")
    assert kind is not None
    folder_node = entries["folder"][1]
    folder = _path(config, folder_node, "folder")
    if not folder.is_dir():
        raise _fail(config, folder_node, f"folder {folder} does not exist (or is not a directory)")
    pattern_node = entries["pattern"][1]
    pattern = _scalar(config, pattern_node, "pattern", str)
    if not pattern or Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        raise _fail(
            config, pattern_node, f"pattern must be a glob inside the folder, e.g. '*.tsv', not {pattern!r}"
        )
    layout = _layout(config, kind, entries.get("layout"))
    if kind == "clinical" and layout is None:
        raise _fail(config, node, f"{where}: clinical sources need a layout: graall, fralle or a .toml path")
    fraction = (
        _fraction(config, entries["max_reject_fraction"][1], "max_reject_fraction")
        if "max_reject_fraction" in entries
        else None
    )
    options: dict[str, Any] = {}
    for option in source_kind(kind).options:
        if option.name in entries:
            option_node = entries[option.name][1]
            options[option.name] = value = _scalar(config, option_node, option.name, option.type)
            if option.type is list and not all(isinstance(item, str) for item in value):
                raise _fail(config, option_node, f"{option.name} must be a list of names ({option.help})")
    return SourceConfig(kind, folder, pattern, _line(node), layout, fraction, options)


def _layout(config: Path, kind: str, entry: tuple[yaml.Node, yaml.Node] | None) -> str | None:
    """A packaged layout name or a .toml path (relative to the config), checked now rather than at 3 am."""
    from etl.load.layout import load_layout

    if entry is None:
        return None
    node = entry[1]
    name = _scalar(config, node, "layout", str)
    chosen = str(_path(config, node, "layout")) if Path(name).suffix else name
    try:
        layout = load_layout(chosen)
    except CgdwError as exc:
        raise _fail(config, node, str(exc)) from exc
    if layout.kind != kind:
        raise _fail(config, node, f"layout {name!r} is for {layout.kind} files, not {kind}")
    return chosen


# --- planning: which files are new ------------------------------------------------------------------------


@dataclass
class FileOutcome:
    """One file the pipeline found: what it is (change) and what became of it (status)."""

    kind: str
    path: Path
    source: SourceConfig
    sha256: str | None = None
    change: str = "new"  # new | changed (same path, other bytes) | already_loaded | settling | unreadable
    status: str = (
        "pending"  # would_load | already_loaded | settling | loaded | quarantined | rejected | skipped
    )
    run_id: int | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    message: str = ""

    def log_record(self) -> dict[str, Any]:
        return {
            "event": "file",
            "kind": self.kind,
            "path": str(self.path),
            "sha256": self.sha256,
            "change": self.change,
            "status": self.status,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "run_id": self.run_id,
            "message": self.message,
        }

    def line(self) -> str:
        rows = (
            f" {self.rows_loaded} of {self.rows_read} rows"
            if self.status in ("loaded", "quarantined")
            else ""
        )
        run = f" (run {self.run_id})" if self.run_id is not None and self.status != "rejected" else ""
        note = f": {self.message}" if self.message else ""
        return f"  {self.status:15} {self.kind:9} {self.path}{rows}{run}{note}"


def find_files(config: PipelineConfig, now: float | None = None) -> tuple[list[FileOutcome], list[str]]:
    """Every matching file in dependency order (kind, then file name), and the sources matching nothing."""
    now = time.time() if now is None else now
    found: dict[tuple[str, Path], FileOutcome] = {}
    empty = []
    for source in config.sources:
        # Hidden files are the temporary copies of rsync and editors: never half a file.
        matches = [
            p for p in source.folder.glob(source.pattern) if p.is_file() and not p.name.startswith(".")
        ]
        if not matches:
            empty.append(source.describe())
        for path in matches:
            outcome = FileOutcome(source.kind, path, source)
            if config.settle_seconds and now - path.stat().st_mtime < config.settle_seconds:
                outcome.change = outcome.status = "settling"
                outcome.message = f"modified less than {config.settle_seconds:g} s ago: next run"
            # The same file matched by two entries of one kind is loaded once (the first entry's options).
            found.setdefault((source.kind, path.resolve()), outcome)
    order = {kind: i for i, kind in enumerate(KIND_ORDER)}
    files = sorted(found.values(), key=lambda f: (order[f.kind], f.path.name, str(f.path)))
    return files, empty


def _classify(db_path: Path, files: list[FileOutcome]) -> list[str]:
    """Hash every file and look it up read-only: new, changed or already loaded. Returns warnings about
    ETL runs a killed process left marked 'running'."""
    from etl.load.readers import file_info
    from etl.warehouse import open_for_read

    with open_for_read(db_path, latest=True) as con:  # what the loads build on, not what readers see
        for outcome in files:
            if outcome.change == "settling":
                continue
            try:
                outcome.sha256 = file_info(outcome.path).sha256
            except FileRejected as exc:
                outcome.change, outcome.status, outcome.message = "unreadable", "rejected", exc.reason
                continue
            rows = con.execute(
                "SELECT etl_run_id FROM source_file WHERE sha256 = $sha AND kind = $kind",
                {"sha": outcome.sha256, "kind": outcome.kind},
            ).fetchall()
            if rows:
                outcome.change = outcome.status = "already_loaded"
                outcome.run_id = int(rows[0][0])
                continue
            same_path = con.execute(
                "SELECT count(*) FROM source_file WHERE path = $path AND kind = $kind",
                {"path": str(outcome.path.resolve()), "kind": outcome.kind},
            ).fetchall()[0][0]
            outcome.change = "changed" if same_path else "new"
        stuck = con.execute(
            "SELECT etl_run_id, command, started_at FROM etl_run WHERE status = 'running' ORDER BY etl_run_id"
        ).fetchall()
    return [
        f"ETL run {run} ({command}, started {started:%Y-%m-%d %H:%M:%S} UTC) is still marked running: "
        "the process that ran it ended without finishing it"
        for run, command, started in stuck
    ]


# --- the lock --------------------------------------------------------------------------------------------


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".pipeline.lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _holder(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@contextmanager
def pipeline_lock(db_path: Path, config: Path) -> Iterator[str | None]:
    """Hold `<db>.pipeline.lock` for the whole run; yields a warning when the previous run did not finish.

    flock dies with its process, so a killed run never blocks the next one; the pid and start time it
    wrote stay in the file (a run that ends, even on an error, empties it), which is how the next run knows.
    """
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # The holder writes who it is just after taking the lock: give it a moment to do so.
            holder: dict[str, Any] = {}
            for _ in range(40):
                handle.seek(0)
                holder = _holder(handle.read())
                if holder:
                    break
                time.sleep(0.025)
            raise PipelineLocked(
                f"a pipeline is already running on {db_path} since {holder.get('started_at', '?')}, "
                f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} (lock {path}); "
                "this run did nothing, try again when it ends"
            ) from None
        try:
            handle.seek(0)
            previous = handle.read().strip()
            _write_holder(handle, config)
            yield _stale_warning(previous, path) if previous else None
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_holder(handle: IO[str], config: Path) -> None:
    handle.seek(0)
    handle.truncate()
    holder = {
        "pid": os.getpid(),
        "started_at": _iso(utc_now()),
        "host": socket.gethostname(),
        "config": str(config),
    }
    handle.write(json.dumps(holder) + "\n")
    handle.flush()


def _stale_warning(previous: str, path: Path) -> str:
    holder = _holder(previous)
    pid = holder.get("pid")
    gone = (
        "its process is gone"
        if isinstance(pid, int) and not _pid_alive(pid)
        else "it was killed or its machine stopped"
    )
    return (
        f"the previous pipeline run (pid {pid or '?'}, started {holder.get('started_at', '?')}) "
        f"did not finish ({gone}; stale lock {path}): its unfinished file load was rolled back, "
        "the files it did not load are loaded now"
    )


# --- the run ---------------------------------------------------------------------------------------------


@dataclass
class PipelineResult:
    db_path: Path
    config: PipelineConfig
    dry_run: bool
    started_at: dt.datetime
    files: list[FileOutcome] = field(default_factory=list)
    empty_sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    views: str | None = None
    publication: Publication | None = None
    exit_code: int = EXIT_OK
    log_path: Path | None = None
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    def counts(self) -> dict[str, int]:
        return {status: self.count(status) for status in dict.fromkeys(f.status for f in self.files)}

    def summary_lines(self) -> list[str]:
        if self.dry_run:
            head = f"dry run on {self.db_path}: {self.count('would_load')} files would load, nothing written"
        else:
            done = (
                ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in self.counts().items())
                or "no file"
            )
            head = f"pipeline on {self.db_path}: {done} in {self.seconds:.1f} s (exit {self.exit_code})"
        lines = [head, *(f.line() for f in self.files if f.status != "already_loaded" or self.dry_run)]
        lines += [f"  no file matches {source}" for source in self.empty_sources]
        if self.views:
            lines.append(f"  views: {self.views}")
        if self.publication:
            lines.append(f"  {self.publication.line()}")
        lines += [f"warning: {w}" for w in self.warnings]
        if self.log_path is not None:
            lines.append(f"log: {self.log_path}")
        return lines

    def summary_record(self) -> dict[str, Any]:
        return {
            "event": "summary",
            "db": str(self.db_path),
            "config": str(self.config.path),
            "exit_code": self.exit_code,
            "files": self.counts(),
            "empty_sources": self.empty_sources,
            "views": self.views,
            "published_after_run": self.publication.etl_run_id if self.publication else None,
            "publish_seconds": round(self.publication.seconds, 3) if self.publication else None,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


def _iso(moment: dt.datetime) -> str:
    """UTC (the ledger's clock) in ISO 8601 with a Z, for the log and the lock file."""
    return moment.isoformat(timespec="seconds") + "Z"


class RunLog:
    """The JSON-lines run log: appended and flushed line by line, so a killed run keeps what it did."""

    def __init__(self, path: Path, run: str) -> None:
        self.path = path
        self.run = run
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"time": _iso(utc_now()), "pipeline_run": self.run, **record}, default=str)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def resolve_paths(config: PipelineConfig, db: Path | None) -> Path:
    """--db, else the config's `warehouse`, else $CGDW_DB, else ./cgdw.duckdb."""
    from schema.database import resolve_db_path

    return Path(db) if db is not None else (config.warehouse or resolve_db_path(None))


def run_pipeline(
    config_path: Path,
    *,
    db: Path | None = None,
    key_file: Path | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    files_done: Callable[[int, int], None] | None = None,
) -> PipelineResult:
    """Load every new file the configuration names, in dependency order, then apply the views.

    Raises PipelineConfigError (exit 78) before touching anything, PipelineLocked (exit 75) when another
    pipeline runs; otherwise returns the result, whose exit_code is 0, 10, 11 or 75 (warehouse busy).
    `progress` follows the phases, `files_done(done, total)` the files loaded."""
    say = progress or (lambda _phase: None)
    config = load_config(config_path)
    db_path = resolve_paths(config, db)
    secret = _secret(config, key_file)
    result = PipelineResult(db_path=db_path, config=config, dry_run=dry_run, started_at=utc_now())
    clock = time.monotonic()
    if dry_run:
        # Writes nothing at all, not even the log or the lock file: a dry run is safe next to a real run.
        result.files, result.empty_sources = find_files(config)
        say("looking up the files")
        result.warnings += _classify(db_path, result.files)
        for outcome in result.files:
            if outcome.status == "pending":
                outcome.status = "would_load"
                outcome.message = "changed since its last load" if outcome.change == "changed" else ""
        result.seconds = time.monotonic() - clock
        return result
    result.log_path = config.log or db_path.with_name(db_path.name + ".pipeline.jsonl")
    log = RunLog(result.log_path, f"{_iso(result.started_at)}/{os.getpid()}")
    publications: list[Publication] = []
    with pipeline_lock(db_path, config.path) as stale:
        if stale:
            result.warnings.append(stale)
        try:
            result.files, result.empty_sources = find_files(config)
            say("looking up the files")
            try:
                result.warnings += _classify(db_path, result.files)
            except WarehouseLocked as exc:
                # A `cgdw load` by hand holds the warehouse file: load nothing, as when it holds the lock.
                _skip_all(result, str(exc))
            # Readers keep the state before the run until it ends, then see all of it at once.
            with publication_deferred(db_path) as published:
                # (An error or Ctrl-C still publishes what was committed: the log says so below.)
                publications = published
                _load_all(result, secret, log, say, files_done or (lambda _done, _total: None))
                if result.exit_code != EXIT_LOCKED and _views_needed(result):
                    from etl.views import apply_views

                    say("applying the views")
                    result.views = apply_views(
                        db_path, command=f"cgdw pipeline run --config {config.path} (views apply)"
                    ).summary()
                say("publishing")
            result.publication = published[0] if published else None
        except BaseException as exc:
            # The log says how the run ended even when it ends on an error (the CLI prints the error), with
            # the exit code the process ends with (130 after Ctrl-C) and what it published on the way out.
            result.seconds = time.monotonic() - clock
            if publications:
                result.publication = publications[0]
            code = 130 if isinstance(exc, KeyboardInterrupt) else getattr(exc, "exit_code", 1)
            log.write({**result.summary_record(), "exit_code": code, "error": str(exc) or type(exc).__name__})
            raise
    result.exit_code = _exit_code(result)
    result.seconds = time.monotonic() - clock
    log.write(result.summary_record())
    return result


def _secret(config: PipelineConfig, key_file: Path | None) -> bytes | None:
    """The pseudonym key, read (and checked) before any load when a layout-driven source is configured."""
    from etl.privacy import load_pseudonym_key

    if not any(source.kind in LAYOUT_KINDS for source in config.sources):
        return None
    try:
        return load_pseudonym_key(key_file or config.key_file)
    except CgdwError as exc:
        raise PipelineConfigError(f"{config.path}: {exc}") from exc


def _load_all(
    result: PipelineResult,
    secret: bytes | None,
    log: RunLog,
    say: Progress,
    files_done: Callable[[int, int], None],
) -> None:
    pending = [f for f in result.files if f.status == "pending"]
    with contextlib.ExitStack() as writer:
        if pending:
            try:
                # One connection for every file (each still its own run and transaction): once it is
                # held, no other writer can get in between two files.
                writer.enter_context(one_writer(result.db_path))
            except WarehouseLocked as exc:
                _skip_all(result, str(exc))
                pending = []
        for outcome in result.files:
            if outcome.status != "pending":
                log.write(outcome.log_record())
        if not pending:
            files_done(0, 0)
            return
        _load_pending(result, pending, secret, log, say, files_done)


def _skip_all(result: PipelineResult, message: str) -> None:
    """A `cgdw load` by hand holds the warehouse: every file not yet loaded waits for the next run."""
    for outcome in result.files:
        if outcome.status == "pending":
            outcome.status, outcome.message = "skipped", message
            message = "warehouse busy: next run"
    result.exit_code = EXIT_LOCKED


def _load_pending(
    result: PipelineResult,
    pending: list[FileOutcome],
    secret: bytes | None,
    log: RunLog,
    say: Progress,
    files_done: Callable[[int, int], None],
) -> None:
    from etl.sources.registry import load_source

    config = result.config
    for index, outcome in enumerate(pending, start=1):
        files_done(index - 1, len(pending))
        source = outcome.source
        options: dict[str, Any] = dict(source.options)
        if source.kind in LAYOUT_KINDS:
            options |= {"layout": source.layout, "secret": secret}
        fraction = source.max_reject_fraction
        options["max_reject_fraction"] = config.max_reject_fraction if fraction is None else fraction

        def file_progress(phase: str, name: str = outcome.path.name, n: int = index) -> None:
            say(f"{n}/{len(pending)} {name}: {phase}")

        command = f"cgdw pipeline run --config {config.path} (load {outcome.kind} {outcome.path.name})"
        try:
            report = load_source(
                result.db_path, outcome.kind, outcome.path, command=command, progress=file_progress, **options
            )
        except FileRejected as exc:
            # One bad file does not hold back the others; later kinds still run, and their own reference
            # checks quarantine the rows that needed what this file would have loaded.
            outcome.status, outcome.message = "rejected", exc.reason
        else:
            outcome.run_id = report.run_id
            outcome.rows_read, outcome.rows_loaded, outcome.rows_rejected = (
                report.rows_read,
                report.rows_loaded,
                report.rows_rejected,
            )
            if report.noop:  # loaded by someone else since we looked
                outcome.status, outcome.change = "already_loaded", "already_loaded"
            elif report.rows_rejected:
                outcome.status = "quarantined"
                outcome.message = f"{report.rows_rejected} rows quarantined: `cgdw rejects {report.run_id}`"
            else:
                outcome.status = "loaded"
            if report.warnings:
                outcome.message = "; ".join([outcome.message, *report.warnings]).strip("; ")
        log.write(outcome.log_record())
    files_done(len(pending), len(pending))


def _views_needed(result: PipelineResult) -> bool:
    """After a load; when a shipped view version was never applied (a new cgdw, a fresh warehouse); when
    a stored copy of a view is stale (a consent change or a purge since) or the analysts' surface is not
    built yet."""
    if any(f.status in ("loaded", "quarantined") for f in result.files):
        return True
    from etl.views import views_outdated

    return views_outdated(result.db_path)


def _exit_code(result: PipelineResult) -> int:
    # A rejected file needs a person, so it outranks "try again later" and "look at the quarantine".
    if result.count("rejected"):
        return EXIT_REJECTED
    if result.exit_code == EXIT_LOCKED:
        return EXIT_LOCKED
    if result.count("quarantined"):
        return EXIT_QUARANTINED
    return EXIT_OK
