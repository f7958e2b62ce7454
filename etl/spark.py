"""The Spark engine: the released views and the analyses' reads over a lake (`cgdw lake export`), on
Apache Spark (docs/scale-out.md). Optional: `pip install -e ".[spark]"` and a Java 17+ runtime.

A `Lake` names the lake's folder and where Spark runs: local mode by default, a cluster through Spark
Connect with `--master sc://host:15002` (or $SPARK_REMOTE), or any `spark.master` URL. `LakeSession`
plans every table of the lake and every view version its warehouse had live, and creates each in the
Spark session when a query first needs it, with what it reads first: a table as a temporary view of
exactly the Parquet files the manifest lists (their sizes checked) with exactly its DuckDB columns; a
shipped version from its stored Spark rendering (queries/spark.py), its checksum checked against the
one the warehouse released; a generated version (patient_attribute, patient_mrd) from the manifest's
SELECT, checked the same way; a stable name made from the registry as `cgdw views apply` makes it. A
version stored by `cgdw views apply --engine spark` (`-- materialize: table`) is read from its Parquet
copy in the lake instead; an export replaces the lake, and the copy with it, so it is never stale.

Reads hand back polars frames (through Arrow), so that the analyses fit on the same input as with DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlglot
from sqlglot import exp

from etl.errors import CgdwError
from queries import ViewDefinition, load_definitions, sql_checksum
from queries.attributes import stable_join_sql
from queries.spark import SparkRenderingError, render_spark, render_view, stored_rendering

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

MANIFEST = "manifest.json"
LAKE_FORMAT = "cgdw-lake/1"
STORED_VIEWS = "_views"  # the lake's folder of view versions stored by `views apply --engine spark`
STORED_MANIFEST = "stored.json"
LOG_CONFIG = Path(__file__).resolve().parent / "spark-log4j2.properties"


class SparkUnavailable(CgdwError):
    """pyspark or Java is missing: the Spark engine is an optional install."""


class SparkQueryError(CgdwError):
    """Spark refused or failed a query (the first line of its message)."""


_ERROR_CLASS = re.compile(r"\[[A-Z][A-Z0-9_.]+\]")


def first_line(exc: BaseException) -> str:
    """The line of a Spark error that says what went wrong: the first naming an error class
    ([PATH_NOT_FOUND] ...), else the first; never the JVM stack trace that follows."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if _ERROR_CLASS.search(line) and not line.startswith("at ")]
    return (named or lines or [type(exc).__name__])[0][:500]


def read_manifest(lake: Path) -> dict[str, Any]:
    path = lake / MANIFEST
    if not path.is_file():
        raise CgdwError(f"{lake} is not a cgdw lake (no {MANIFEST}): write one with `cgdw lake export`")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != LAKE_FORMAT:
        raise CgdwError(f"{path}: format {manifest.get('format')!r}, this cgdw reads {LAKE_FORMAT}")
    return manifest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entries(lake: Path, files: list[Path]) -> list[dict[str, Any]]:
    """The manifest's record of data files: path in the lake, size, sha256."""
    return [
        {"path": str(p.relative_to(lake)), "bytes": p.stat().st_size, "sha256": sha256_of(p)} for p in files
    ]


def stored_copies(lake: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The view versions `views apply --engine spark` stored in this lake: relation -> rows, files."""
    path = lake / STORED_VIEWS / STORED_MANIFEST
    if not path.is_file():
        return {}
    stored: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if stored.get("warehouse_run") != manifest["warehouse_run"]:
        return {}
    return {relation: copy for relation, copy in stored.items() if isinstance(copy, dict)}


@dataclass(frozen=True)
class Lake:
    """Where the lake is and which Spark reads it (None: $SPARK_REMOTE if set, else local mode)."""

    path: Path
    master: str | None = None


def spark_session(master: str | None = None) -> SparkSession:
    """A Spark session: Spark Connect for sc:// (or $SPARK_REMOTE), else a local or cluster master."""
    if master is not None and not _MASTER.match(master):  # said whether pyspark is installed or not
        raise CgdwError(
            f"--master {master!r}: local, local[N], spark://HOST:PORT, yarn, k8s://URL, or sc://HOST:PORT "
            "(Spark Connect)"
        )
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(
            'the Spark engine needs pyspark: pip install -e ".[spark]" (and a Java 17+ runtime)'
        ) from None
    remote = master if master and master.startswith("sc://") else None
    if master is None:
        remote = os.environ.get("SPARK_REMOTE") or None
    if remote:
        return SparkSession.builder.remote(remote).getOrCreate()
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise SparkUnavailable(
            "Spark needs a Java 17+ runtime: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
        )
    builder = (
        SparkSession.builder.master(master or "local[*]")
        .appName("cgdw")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # Partition folders are read back as text: the column's type comes from the manifest.
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.driver.memory", os.environ.get("CGDW_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.sql.shuffle.partitions", os.environ.get("CGDW_SPARK_SHUFFLE_PARTITIONS", "8"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}")
    )
    return builder.getOrCreate()


_MASTER = re.compile(r"^(local(\[(\*|\d+)(,\d+)?\])?|spark://.+|yarn|k8s://.+|sc://.+)$")

# DuckDB's type names (information_schema) -> Spark SQL, for the partition columns read back as text.
_SPARK_TYPES = {"VARCHAR": "STRING", "INTEGER": "INT", "BIGINT": "BIGINT", "SMALLINT": "SMALLINT",
                "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN", "DATE": "DATE"}  # fmt: skip


@dataclass
class LakeSession:
    """A lake registered in a Spark session: its tables and live view versions as temporary views."""

    lake: Lake
    spark: SparkSession
    manifest: dict[str, Any]
    views: list[str] = field(default_factory=list)  # relations created, in order

    # What each relation is made of, created on first use: a relation is registered (a table read, a view
    # analysed) only when a query needs it, with what it reads first. An analysis of cohort_patient then
    # costs its own few relations, not the lake's 27 tables and 29 views (benchmarks/RESULTS.md, issue 17).
    _plans: dict[str, _Plan] = field(default_factory=dict)

    @classmethod
    def open(cls, lake: Lake) -> LakeSession:
        manifest = read_manifest(lake.path)
        session = cls(lake, spark_session(lake.master), manifest)
        session._plan()
        return session

    @property
    def stored(self) -> dict[str, Any]:
        """The view versions stored in this lake by `views apply --engine spark`: relation -> rows, files."""
        return stored_copies(self.lake.path, self.manifest)

    def _listed(self, what: str, entries: list[dict[str, Any]]) -> list[str]:
        """The files the manifest lists, each there with its size: what Spark reads, and nothing else (a
        file added to a folder, or one missing, would change the rows)."""
        for entry in entries:
            path = self.lake.path / entry["path"]
            if not path.is_file() or path.stat().st_size != entry["bytes"]:
                raise CgdwError(
                    f"{self.lake.path}: {entry['path']} of {what} is missing or changed since the export: "
                    f"nothing read (`cgdw lake status --lake {self.lake.path}`; export the lake again)"
                )
        return [self._path(entry["path"]) for entry in entries]

    def _path(self, *parts: str) -> str:
        """A path of the lake as Spark reads it: absolute (a Spark Connect server has its own working
        directory; on a cluster the lake is on storage every node mounts at the same path)."""
        return str(self.lake.path.resolve().joinpath(*parts))

    def _register_table(self, table: str) -> None:
        meta = self.manifest["tables"][table]
        files = self._listed(f"table {table}", meta["files"])
        try:
            frame = self.spark.read.option("basePath", self._path(table)).parquet(*files)
        except Exception as exc:
            raise CgdwError(
                f"{self.lake.path}: Spark cannot read table {table}: {first_line(exc)} "
                f"(`cgdw lake status --lake {self.lake.path}` checks the files)"
            ) from None
        key = meta["partition_by"]
        if key and meta["partition_derived"]:
            frame = frame.drop(key)
        elif key:
            data_type = dict(meta["columns"])[key]
            frame = frame.withColumn(key, frame[key].cast(_SPARK_TYPES.get(data_type, "STRING")))
        frame.select(*(name for name, _ in meta["columns"])).createOrReplaceTempView(table)

    def _view(self, relation: str, sql: str) -> None:
        try:
            self.spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW `{relation}` AS {sql}")
        except Exception as exc:  # pyspark's AnalysisException and friends, with the SQL's position
            raise CgdwError(f"Spark refused view {relation}: {first_line(exc)}") from exc

    def _plan(self) -> None:
        """What every table and live view version of the lake is made of (nothing is created yet)."""
        for table in self.manifest["tables"]:
            self._plans[table] = _Plan(reads=())
        live = {(v["name"], v["version"]): v for v in self.manifest["views"]["versions"]}
        stored = self.stored
        for d in load_definitions():  # in dependency order
            if (d.name, d.version) not in live:
                continue
            released = live[d.name, d.version]["sql_sha256"]
            if released != d.sql_sha256:
                raise CgdwError(
                    f"{self.lake.path}: {d.ref} was released with SQL checksum {released[:12]}; this cgdw "
                    f"ships {d.sql_sha256[:12]}: read the lake with the cgdw version that exported it"
                )
            if d.relation in stored:
                self._plans[d.relation] = _Plan(reads=(), stored=True)
            else:
                self._plans[d.relation] = _Plan(reads=_reads(d.sql), spark_sql=spark_sql_of(d))
        for version in sorted(live.values(), key=lambda v: (v["name"], v["version"])):
            if version["generated_sql"]:
                relation = f"{version['name']}_v{version['version']}"
                sql = version["generated_sql"]
                if sql_checksum(sql) != version["sql_sha256"]:
                    raise CgdwError(
                        f"{self.lake.path}: the SELECT of {relation} in {MANIFEST} is not the one the "
                        "warehouse released (its checksum differs): export the lake again"
                    )
                self._plans[relation] = _Plan(reads=_reads(sql), spark_sql=_rendered(sql, relation))
        for name, sql in self._stable_names(live).items():
            self._plans[name] = _Plan(reads=_reads(sql), spark_sql=_rendered(sql, name))

    def _stable_names(self, live: dict[tuple[str, int], Any]) -> dict[str, str]:
        """The SELECT of each stable name, made here as `cgdw views apply` makes it (etl/views.py): the
        latest live version, joined with the latest version of each generated view its file names."""
        latest: dict[str, int] = {}
        for name, version in live:
            latest[name] = max(version, latest.get(name, 0))
        shipped = {(d.name, d.version): d for d in load_definitions()}
        columns = self.manifest["views"]["columns"]
        stable = {}
        for name, version in sorted(latest.items()):
            relation = f"{name}_v{version}"
            definition = shipped.get((name, version))
            joins = [
                (f"{view}_v{latest[view]}", [c for c, _ in columns[f"{view}_v{latest[view]}"]])
                for view in (definition.joins if definition else ())
                if view in latest
            ]
            base = [c for c, _ in columns[relation]]
            stable[name] = stable_join_sql(relation, base, joins) if joins else f'SELECT * FROM "{relation}"'
        return stable

    def ensure(self, relation: str) -> bool:
        """Create `relation` in the session (and what it reads, first) unless it is there; False when the
        lake has no relation of that name."""
        plan = self._plans.get(relation)
        if plan is None:
            return False
        if plan.created:
            return True
        for read in plan.reads:
            self.ensure(read)
        if relation in self.manifest["tables"]:
            self._register_table(relation)
        elif plan.stored:
            files = self._listed(f"the stored {relation}", self.stored[relation]["files"])
            self.spark.read.parquet(*files).createOrReplaceTempView(relation)
        else:
            self._view(relation, plan.spark_sql or "")
        plan.created = True
        if relation not in self.manifest["tables"]:
            self.views.append(relation)
        return True

    def create_all(self) -> list[str]:
        """Every table and view version of the lake, in dependency order; returns the views created."""
        for relation in self._plans:
            self.ensure(relation)
        return self.views

    def relation_columns(self, relation: str) -> list[str]:
        """The columns of a table or view of the lake (empty when it has none of that name)."""
        if not self.ensure(relation):
            return []
        return list(self.spark.table(f"`{relation}`").columns)

    def has(self, relation: str) -> bool:
        return relation in self._plans

    def table(self, relation: str) -> DataFrame:
        """A relation of the lake as a Spark DataFrame (created first if need be)."""
        if not self.ensure(relation):
            raise CgdwError(f"{self.lake.path} has no table or view {relation!r}")
        return self.spark.table(f"`{relation}`")

    def frame(self, duckdb_sql: str, what: str = "query") -> pl.DataFrame:
        """A SELECT written in DuckDB SQL, run on Spark (rendered by queries/spark.py), as a polars frame.
        Spark's errors come back as SparkQueryError with their first line (no JVM stack)."""
        sql = _rendered(duckdb_sql, what)
        for relation in _reads(duckdb_sql):
            self.ensure(relation)
        try:
            return self.collect(self.spark.sql(sql))
        except Exception as exc:
            raise SparkQueryError(f"{what} failed on Spark: {first_line(exc)}") from None

    @staticmethod
    def collect(frame: DataFrame) -> pl.DataFrame:
        return pl.from_arrow(frame.toArrow())  # type: ignore[return-value]

    def store_view(self, relation: str) -> int:
        """Write a view version as Parquet into the lake (replacing any copy); returns its rows."""
        folder = self.lake.path.resolve() / STORED_VIEWS
        staging = folder / f".{relation}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        self.table(relation).write.parquet(str(staging))
        rows = int(self.spark.read.parquet(str(staging)).count())
        target = folder / relation
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        path = folder / STORED_MANIFEST
        stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        if stored.get("warehouse_run") != self.manifest["warehouse_run"]:
            stored = {"warehouse_run": self.manifest["warehouse_run"]}
        lake = self.lake.path.resolve()
        stored[relation] = {"rows": rows, "files": file_entries(lake, sorted(target.rglob("*.parquet")))}
        path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return rows


@dataclass
class _Plan:
    """How a relation of the lake is made: the relations its SQL reads, and that SQL rendered for Spark
    (none for a table, or a view version read from its stored copy)."""

    reads: tuple[str, ...]
    spark_sql: str | None = None
    stored: bool = False
    created: bool = False


def _reads(sql: str) -> tuple[str, ...]:
    """The relations a DuckDB SELECT reads (its CTEs' names excluded)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return tuple(dict.fromkeys(t.name for t in tree.find_all(exp.Table) if t.name not in ctes))


def spark_sql_of(definition: ViewDefinition) -> str:
    """What Spark runs for a shipped version: the stored rendering (reviewed in the repository), else the
    rendering made now (a view added without `python -m queries.spark --write`)."""
    return stored_rendering(definition) or render_view(definition)


def _rendered(sql: str, what: str) -> str:
    try:
        return render_spark(sql, what)
    except SparkRenderingError as exc:
        raise CgdwError(str(exc)) from None


_SESSIONS: dict[tuple[Path, str | None, str], LakeSession] = {}


def lake_session(lake: Lake) -> LakeSession:
    """The lake registered in this process's Spark session, once per export of the lake (analyses read
    several times: Table 1's columns, its labels, its rows)."""
    manifests = (lake.path / MANIFEST, lake.path / STORED_VIEWS / STORED_MANIFEST)
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else None for p in manifests)
    key = (lake.path.resolve(), lake.master, str(stamp))  # a new export, or new stored copies: open again
    if key not in _SESSIONS:
        _SESSIONS.clear()
        _SESSIONS[key] = LakeSession.open(lake)
    return _SESSIONS[key]


@dataclass
class SparkViewsReport:
    lake: Path
    views: list[str]
    stored: dict[str, int]
    seconds: float = 0.0

    def summary(self) -> str:
        built = ", ".join(f"{relation} ({rows:,} rows)" for relation, rows in self.stored.items())
        return (
            f"{len(self.views)} views created on Spark over the lake {self.lake} in {self.seconds:.1f} s"
            + (f"; stored in the lake: {built}" if built else "")
        )


def apply_views_on_spark(lake: Lake) -> SparkViewsReport:
    """`cgdw views apply --engine spark`: every live view version over the lake, in dependency order, and
    the versions marked `-- materialize: table` stored into the lake as Parquet (read instead from then
    on, until the next export replaces the lake)."""
    started = time.monotonic()
    session = LakeSession.open(lake)
    created = session.create_all()  # each analysed by Spark: an error is found now, not at a read
    live = {(v["name"], v["version"]) for v in session.manifest["views"]["versions"]}
    stored = {
        d.relation: session.store_view(d.relation)
        for d in load_definitions()
        if d.materialize and (d.name, d.version) in live
    }
    _SESSIONS.clear()
    return SparkViewsReport(lake.path, created, stored, time.monotonic() - started)
