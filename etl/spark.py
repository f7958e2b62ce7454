"""The Spark engine: the released views and the analyses' reads over a lake (`cgdw lake export`), on
Apache Spark (docs/scale-out.md). Optional: `pip install -e ".[spark]"` and a Java 17+ runtime.

A `Lake` names the lake's folder and where Spark runs: local mode by default, a cluster through Spark
Connect with `--master sc://host:15002` (or $SPARK_REMOTE), or any `spark.master` URL. `LakeSession`
registers each table of the lake as a temporary view with exactly its DuckDB columns, then every view
version the lake's warehouse had live, in dependency order, from its Spark rendering (queries/spark.py):
the shipped ones from the stored renderings (checked against the checksum the warehouse released), the
generated ones and the stable names from the SQL the lake's manifest carries. A version stored by
`cgdw views apply --engine spark` (`-- materialize: table`) is read from its Parquet copy in the lake
instead; an export replaces the lake, and the copy with it, so it is never stale.

Reads hand back polars frames (through Arrow), so that the analyses fit on the same input as with DuckDB.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from etl.errors import CgdwError
from queries import ViewDefinition, load_definitions
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


def first_line(exc: BaseException) -> str:
    """The first line of a Spark error (its JVM stack trace follows)."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def read_manifest(lake: Path) -> dict[str, Any]:
    path = lake / MANIFEST
    if not path.is_file():
        raise CgdwError(f"{lake} is not a cgdw lake (no {MANIFEST}): write one with `cgdw lake export`")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != LAKE_FORMAT:
        raise CgdwError(f"{path}: format {manifest.get('format')!r}, this cgdw reads {LAKE_FORMAT}")
    return manifest


@dataclass(frozen=True)
class Lake:
    """Where the lake is and which Spark reads it (None: $SPARK_REMOTE if set, else local mode)."""

    path: Path
    master: str | None = None

    def describe(self) -> str:
        return f"the lake {self.path} on Spark ({self.master or os.environ.get('SPARK_REMOTE') or 'local'})"


def spark_session(master: str | None = None) -> SparkSession:
    """A Spark session: Spark Connect for sc:// (or $SPARK_REMOTE), else a local or cluster master."""
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

    @classmethod
    def open(cls, lake: Lake) -> LakeSession:
        manifest = read_manifest(lake.path)
        session = cls(lake, spark_session(lake.master), manifest)
        session._register_tables()
        session._create_views()
        return session

    @property
    def stored(self) -> dict[str, Any]:
        """The view versions stored in this lake by `views apply --engine spark`: relation -> rows."""
        path = self.lake.path / STORED_VIEWS / STORED_MANIFEST
        if not path.is_file():
            return {}
        stored: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return stored if stored.get("warehouse_run") == self.manifest["warehouse_run"] else {}

    def _path(self, *parts: str) -> str:
        """A path of the lake as Spark reads it: absolute (a Spark Connect server has its own working
        directory; on a cluster the lake is on storage every node mounts at the same path)."""
        return str(self.lake.path.resolve().joinpath(*parts))

    def _register_tables(self) -> None:
        for table, meta in self.manifest["tables"].items():
            try:
                frame = self.spark.read.parquet(self._path(table))
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
        self.views.append(relation)

    def _create_views(self) -> None:
        live = {(v["name"], v["version"]): v for v in self.manifest["views"]["versions"]}
        shipped = [d for d in load_definitions() if (d.name, d.version) in live]
        stored = self.stored
        for d in shipped:
            released = live[d.name, d.version]["sql_sha256"]
            if released != d.sql_sha256:
                raise CgdwError(
                    f"{self.lake.path}: {d.ref} was released with SQL checksum {released[:12]}; this cgdw "
                    f"ships {d.sql_sha256[:12]}: read the lake with the cgdw version that exported it"
                )
            if d.relation in stored:
                frame = self.spark.read.parquet(self._path(STORED_VIEWS, d.relation))
                frame.createOrReplaceTempView(d.relation)
                self.views.append(d.relation)
                continue
            self._view(d.relation, spark_sql_of(d))
        for version in sorted(live.values(), key=lambda v: (v["name"], v["version"])):
            if version["generated_sql"]:
                relation = f"{version['name']}_v{version['version']}"
                self._view(relation, _rendered(version["generated_sql"], relation))
        for name, sql in sorted(self.manifest["views"]["stable"].items()):
            self._view(name, _rendered(sql, name))

    def relation_columns(self, relation: str) -> list[str]:
        """The columns of a registered relation (empty when the lake has none of that name)."""
        if not self.spark.catalog.tableExists(relation):
            return []
        return list(self.spark.table(f"`{relation}`").columns)

    def has(self, relation: str) -> bool:
        return relation in self.views or relation in self.manifest["tables"]

    def frame(self, duckdb_sql: str, what: str = "query") -> pl.DataFrame:
        """A SELECT written in DuckDB SQL, run on Spark (rendered by queries/spark.py), as a polars frame.
        Spark's errors come back as SparkQueryError with their first line (no JVM stack)."""
        sql = _rendered(duckdb_sql, what)
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
        self.spark.table(f"`{relation}`").write.parquet(str(staging))
        rows = int(self.spark.read.parquet(str(staging)).count())
        target = folder / relation
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        path = folder / STORED_MANIFEST
        stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        if stored.get("warehouse_run") != self.manifest["warehouse_run"]:
            stored = {"warehouse_run": self.manifest["warehouse_run"]}
        stored[relation] = rows
        path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return rows


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
    manifest = read_manifest(lake.path)
    stored_path = lake.path / STORED_VIEWS / STORED_MANIFEST
    stamp = f"{manifest['exported_at']}|{stored_path.stat().st_mtime_ns if stored_path.exists() else 0}"
    key = (lake.path.resolve(), lake.master, stamp)
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
    live = {(v["name"], v["version"]) for v in session.manifest["views"]["versions"]}
    stored = {
        d.relation: session.store_view(d.relation)
        for d in load_definitions()
        if d.materialize and (d.name, d.version) in live
    }
    # Every view planned once: Spark resolves a temporary view lazily, so an error would wait for a read.
    for relation in session.views:
        session.spark.table(f"`{relation}`").schema  # noqa: B018 (resolves the plan)
    _SESSIONS.clear()
    return SparkViewsReport(lake.path, session.views, stored, time.monotonic() - started)
