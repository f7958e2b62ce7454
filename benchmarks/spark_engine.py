"""DuckDB against Spark local mode (the optional Spark engine, etl/spark.py, docs/scale-out.md): the same
views and analyses on the same warehouse, timed alternately in the same run (DuckDB, then Spark, `rounds`
times per operation); medians, and the ratio Spark time / DuckDB time (the machines are shared and noisy:
never an absolute time alone).

    python -m benchmarks.spark_engine --workdir /tmp/sparkbench --rounds 3 [--sizes 100000,1000000]
        [--warehouse 100000=PATH] [--driver-memory 4g] [--operations "views apply,table1"]

Needs pyspark (pip install -e ".[spark]") and a Java 17+ runtime. Per size, in WORKDIR/pN:

- Setup (not timed): an existing benchmark warehouse (--warehouse SIZE=PATH; defaults below) copied to
  WORKDIR/pN/warehouse.duckdb (never written in place), `db upgrade` and `views apply` on the copy, once.
- `lake export` (one-off, DuckDB side only): export_lake of the copy into WORKDIR/pN/lake, `rounds` times;
  seconds, files and bytes of the lake.
- The operations, each on both engines: `views apply` (apply_views on the warehouse, its stored copy of
  cohort_patient made stale first so that it is built again, and its publication included;
  apply_views_on_spark on the lake as an export leaves it (a copy stored by an earlier apply removed
  first: else the apply reads it and writes it back), which registers the lake and stores cohort_patient),
  `table1` (spec seed_tall by ikzf1_status), `outcomes os` (by ikzf1_status, adjusted for age and
  log_wbc) and `outcomes cir` (by ikzf1_status), the results rendered as JSON (what `-f json` prints).
  The Spark analyses read the lake as `cgdw views apply --engine spark` leaves it (cohort_patient stored).
- Spark start-up, measured in every Spark child before its operation and reported apart (Spark's cost is
  mostly this fixed overhead, paid by every `--engine spark` command): the JVM (getOrCreate of the local
  session) and lake_session. Since relations are created on first use (etl/spark.py), lake_session only
  plans them, and the registration of the few an analysis needs is inside the operation's time; the
  figures in RESULTS.md for issue 17 were measured before that change (every table and view registered
  up front). `views apply` registers the lake again itself: that is its work.

Every run is its own child process: imports outside the timed part; peak RSS (VmHWM) of the Python child
read from /proc/self/status, and of the JVM pyspark starts (a child of it) from /proc/PID/status just
before the child exits. The digests of the rendered results say whether both engines gave the same
answer. Figures print as a table and go to WORKDIR/spark_engine.json (merged by size across runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV = {**os.environ, "CGDW_PSEUDONYM_KEY": "benchmark-key-0123456789"}
WAREHOUSES = {100_000: Path("/tmp/bench100k/bench.duckdb"), 1_000_000: Path("/tmp/b1m/bench.duckdb")}
OPERATIONS = ("views apply", "table1", "outcomes os", "outcomes cir")
BY = "ikzf1_status"
SPEC = "seed_tall"
ADJUST = ("age", "log_wbc")
CHILD_TIMEOUT = 3600  # seconds: a hung JVM should not hang the benchmark


# ---------------------------------------------------------------- child processes (timed parts)


def peak_rss_mib(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a process, MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0.0
    return int(line.split()[1]) / 1024


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, command name) of every process below `root`, from the parent ids in /proc/*/stat."""
    parents: dict[int, tuple[int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]  # the name may hold spaces and parentheses
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        parents[int(stat.parent.name)] = (ppid, name)
    found, frontier = [], {root}
    while frontier:
        below = [(pid, name) for pid, (ppid, name) in parents.items() if ppid in frontier]
        found += below
        frontier = {pid for pid, _ in below}
    return found


def jvm_peak_mib() -> tuple[int | None, float]:
    """The JVM pyspark launched for this process (a java process below it; else the py4j gateway's
    process) and its peak RSS."""
    javas = [pid for pid, name in descendants(os.getpid()) if name == "java"]
    if not javas:
        from pyspark import SparkContext

        gateway = SparkContext._gateway
        process = getattr(gateway, "proc", None) if gateway is not None else None
        javas = [process.pid] if process is not None else []
    if not javas:
        return None, 0.0
    peaks = {pid: peak_rss_mib(pid) for pid in javas}
    pid = max(peaks, key=lambda p: peaks[p])
    return pid, peaks[pid]


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def digest(text: str) -> str:
    """Of a JSON result, its floats to 9 significant digits: the engines hand rows over in different
    orders, and sums over them differ in the last bits (an HR of 1.781773760161833 and ...8329)."""
    rounded = json.dumps(_rounded(json.loads(text)), sort_keys=True)
    return hashlib.sha256(rounded.encode()).hexdigest()[:12]


def run_operation(operation: str, source: Any) -> str:
    """One operation on the warehouse (a Path) or the lake (etl.spark.Lake); returns a digest of its
    result (for views: the rows stored, cohort_patient's copy)."""
    from etl.analysis.outcomes import analyse_outcomes
    from etl.analysis.table1 import build_table1
    from etl.analysis.table1_spec import load_spec
    from etl.output import OutputFormat, render_outcomes, render_table1

    if operation == "views apply":
        if isinstance(source, Path):
            from etl.views import apply_views

            return f"{sum(apply_views(source).materialized.values())} rows stored"
        from etl.spark import apply_views_on_spark

        return f"{sum(apply_views_on_spark(source).stored.values())} rows stored"
    if operation == "table1":
        table = build_table1(source, by=BY, rows=load_spec(SPEC).rows)
        return digest(render_table1(table, OutputFormat.json))
    endpoint = operation.split()[1]
    adjust = ADJUST if endpoint == "os" else ()
    fitted = analyse_outcomes(source, endpoint, BY, adjust=adjust)
    return digest(render_outcomes(fitted.result, OutputFormat.json))


def _import_all() -> None:
    """The modules every operation needs, imported before the clock starts."""
    import etl.analysis.outcomes
    import etl.analysis.table1
    import etl.analysis.table1_spec
    import etl.output
    import etl.views  # noqa: F401


def duckdb_child(operation: str, db: str) -> None:
    _import_all()
    if operation == "views apply":
        # The stored copy (cohort_patient) made stale, as a load would: DuckDB builds it again, as the
        # Spark engine stores its copy at every apply. The records alone, before the clock.
        import duckdb

        with duckdb.connect(db) as con:
            con.execute("DELETE FROM view_materialization")
    started = time.perf_counter()
    result = run_operation(operation, Path(db))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "result": result, "peak_mib": peak_rss_mib()}))


def spark_child(operation: str, lake: str) -> None:
    """Start the JVM, register the lake (not for views apply, which registers it itself), then run the
    operation; the JVM's peak RSS is read before the session stops."""
    _import_all()
    import pyspark.sql  # noqa: F401

    from etl.spark import STORED_VIEWS, Lake, lake_session, spark_session

    source = Lake(Path(lake))
    if operation == "views apply":
        # The lake as an export leaves it: without the copy of cohort_patient a previous apply stored.
        # Else the apply reads that copy and writes it back, building nothing (28 s against 291 s at 1M).
        shutil.rmtree(source.path / STORED_VIEWS, ignore_errors=True)
    started = time.perf_counter()
    spark = spark_session(source.master)
    jvm = time.perf_counter() - started
    register = None
    if operation != "views apply":
        started = time.perf_counter()
        lake_session(source)
        register = time.perf_counter() - started
    started = time.perf_counter()
    result = run_operation(operation, source)
    seconds = time.perf_counter() - started
    java_pid, java_peak = jvm_peak_mib()
    python_peak = peak_rss_mib()
    spark.stop()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "jvm_seconds": jvm,
                "register_seconds": register,
                "result": result,
                "peak_mib": python_peak,
                "java_peak_mib": java_peak,
                "java_pid": java_pid,
            }
        )
    )


def export_child(db: str, out: str) -> None:
    from etl.lake import export_lake

    started = time.perf_counter()
    report = export_lake(Path(db), Path(out))
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "files": report.files,
                "bytes": report.bytes,
                "rows": sum(report.tables.values()),
                "tables": len(report.tables),
                "peak_mib": peak_rss_mib(),
            }
        )
    )


# ---------------------------------------------------------------- the parent: setup, rounds


def run_child(code: str, env: dict[str, str] = ENV) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT
    )
    if done.returncode:
        raise RuntimeError(f"child failed ({code}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cgdw(*arguments: str) -> None:
    """The cgdw CLI of this interpreter's environment (setup only)."""
    command = [str(Path(sys.executable).with_name("cgdw")), *arguments]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def prepare(workdir: Path, patients: int, original: Path) -> Path:
    """A copy of the benchmark warehouse, upgraded, its views applied; made once and reused."""
    folder = workdir / f"p{patients}"
    db = folder / "warehouse.duckdb"
    ready = folder / "warehouse.ready"
    if ready.exists() and db.exists():
        return db
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("warehouse*"):
        stale.unlink()
    print(f"copying {original} to {db}, upgrading, applying the views ...", flush=True)
    shutil.copy(original, db)  # the warehouse alone: its published copy is made again by the upgrade
    cgdw("db", "upgrade", "--db", str(db))
    cgdw("views", "apply", "--db", str(db))
    ready.write_text(f"{original}\n")
    return db


@dataclass
class Figure:
    name: str
    duckdb: list[float] = field(default_factory=list)
    spark: list[float] = field(default_factory=list)
    duckdb_peak_mib: float = 0.0
    spark_peak_mib: float = 0.0  # the Python child
    java_peak_mib: float = 0.0
    results: set[tuple[str, str]] = field(default_factory=set)  # (engine, result digest)
    failed: str = ""  # the Spark child's error, when it failed (its remaining rounds are skipped)

    @property
    def ratio(self) -> float:
        if not self.spark:
            return float("nan")
        return statistics.median(self.spark) / statistics.median(self.duckdb)

    def same_result(self) -> str:
        engines = {engine: {r for e, r in self.results if e == engine} for engine in ("duckdb", "spark")}
        if len(engines["duckdb"]) != 1 or len(engines["spark"]) != 1:
            return "varies: " + "; ".join(f"{e} {sorted(r)}" for e, r in engines.items())
        return "same" if engines["duckdb"] == engines["spark"] else "DIFFERS"

    def as_json(self) -> dict[str, Any]:
        return {
            "duckdb_seconds": self.duckdb,
            "spark_seconds": self.spark,
            "duckdb_median": statistics.median(self.duckdb),
            "spark_median": statistics.median(self.spark) if self.spark else None,
            "ratio_spark_over_duckdb": self.ratio if self.spark else None,
            "spark_failed": self.failed,
            "duckdb_peak_mib": self.duckdb_peak_mib,
            "spark_python_peak_mib": self.spark_peak_mib,
            "spark_java_peak_mib": self.java_peak_mib,
            "results": sorted(self.results),
            "same_result": self.same_result(),
        }


@dataclass
class SizeRun:
    patients: int
    export: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    jvm: list[float] = field(default_factory=list)
    register: list[float] = field(default_factory=list)
    load: list[tuple[str, float]] = field(default_factory=list)  # (when, 1-minute load average)


def child_code(function: str, *arguments: str) -> str:
    listed = ", ".join(repr(a) for a in arguments)
    return f"from benchmarks.spark_engine import {function}; {function}({listed})"


def run_size(
    workdir: Path,
    patients: int,
    original: Path,
    rounds: int,
    spark_env: dict[str, str],
    operations: tuple[str, ...] = OPERATIONS,
) -> SizeRun:
    db = prepare(workdir, patients, original)
    lake = workdir / f"p{patients}" / "lake"
    run = SizeRun(patients)
    print(f"\n== {patients:,} patients: {db}", flush=True)
    for _ in range(rounds):
        run.export.append(run_child(child_code("export_child", str(db), str(lake))))
        exported = run.export[-1]
        print(
            f"  lake export {exported['seconds']:.2f} s, {exported['files']} files, "
            f"{exported['bytes'] / 2**20:.0f} MiB",
            flush=True,
        )
    for operation in operations:
        figure = Figure(operation)
        for index in range(rounds):
            run.load.append((f"{operation} round {index + 1}", os.getloadavg()[0]))
            ours = run_child(child_code("duckdb_child", operation, str(db)))
            figure.duckdb.append(float(ours["seconds"]))
            figure.duckdb_peak_mib = max(figure.duckdb_peak_mib, float(ours["peak_mib"]))
            figure.results.add(("duckdb", str(ours["result"])))
            if figure.failed:
                continue
            try:
                theirs = run_child(child_code("spark_child", operation, str(lake)), spark_env)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                figure.failed = str(exc)
                print(f"  {operation} round {index + 1}: Spark FAILED:\n{exc}", flush=True)
                continue
            figure.spark.append(float(theirs["seconds"]))
            figure.spark_peak_mib = max(figure.spark_peak_mib, float(theirs["peak_mib"]))
            figure.java_peak_mib = max(figure.java_peak_mib, float(theirs["java_peak_mib"]))
            figure.results.add(("spark", str(theirs["result"])))
            run.jvm.append(float(theirs["jvm_seconds"]))
            if theirs["register_seconds"] is not None:
                run.register.append(float(theirs["register_seconds"]))
            print(
                f"  {operation} round {index + 1}: duckdb {figure.duckdb[-1]:.2f} s, spark "
                f"{figure.spark[-1]:.2f} s (+ jvm {theirs['jvm_seconds']:.2f} s"
                + (
                    f", registration {theirs['register_seconds']:.2f} s)"
                    if theirs["register_seconds"] is not None
                    else ")"
                )
                + f"; load {run.load[-1][1]:.2f}",
                flush=True,
            )
        run.figures.append(figure)
    return run


# ---------------------------------------------------------------- report


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.2f}-{max(values):.2f}" if len(values) > 1 else "-"


def table(run: SizeRun, rounds: int) -> list[str]:
    jvm = statistics.median(run.jvm) if run.jvm else float("nan")
    register = statistics.median(run.register) if run.register else float("nan")
    startup = jvm + register
    lines = [
        f"### {run.patients:,} patients ({rounds} rounds, medians; ratio = Spark time / DuckDB time; "
        "Spark times exclude start-up)",
        "",
        "| operation | DuckDB | Spark | ratio | Spark + start-up | ratio with start-up | DuckDB range | "
        "Spark range | peak RSS DuckDB | peak RSS Spark Python / Java | same result |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in run.figures:
        duck = statistics.median(f.duckdb)
        if not f.spark:
            lines.append(f"| {f.name} | {duck:.2f} s | FAILED (see above) | | | | {spread(f.duckdb)} |")
            continue
        spark = statistics.median(f.spark)
        # views apply registers the lake itself: only the JVM comes on top of it
        total = spark + (jvm if f.name == "views apply" else startup)
        lines.append(
            f"| {f.name} | {duck:.2f} s | {spark:.2f} s | **{f.ratio:.1f}x** | {total:.2f} s | "
            f"{total / duck:.1f}x | {spread(f.duckdb)} | {spread(f.spark)} | {f.duckdb_peak_mib:,.0f} MiB | "
            f"{f.spark_peak_mib:,.0f} / {f.java_peak_mib:,.0f} MiB | {f.same_result()} |"
        )
    seconds = [float(e["seconds"]) for e in run.export]
    last = run.export[-1]
    export_peak = max(float(e["peak_mib"]) for e in run.export)
    lines += [
        "",
        f"- lake export (one-off): {statistics.median(seconds):.2f} s median ({spread(seconds)}), "
        f"{last['tables']} tables, {last['rows']:,} rows, {last['files']} Parquet files, "
        f"{last['bytes'] / 2**20:,.1f} MiB; peak RSS {export_peak:,.0f} MiB",
        f"- Spark session start-up: JVM {jvm:.2f} s median ({spread(run.jvm)}, {len(run.jvm)} children) + "
        + (
            f"lake registration {register:.2f} s median ({spread(run.register)}, {len(run.register)} "
            f"children) = {startup:.2f} s"
            if run.register
            else "lake registration not measured (only the analyses' children measure it)"
        ),
        f"- 1-minute load average at the start of each round: {spread([load for _, load in run.load])}",
    ]
    return lines


def save(path: Path, run: SizeRun, rounds: int, spark_env: dict[str, str]) -> None:
    saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    before = saved.get(str(run.patients), {})
    operations = {**before.get("operations", {}), **{f.name: f.as_json() for f in run.figures}}
    if not run.register:  # views apply alone: the start-up figures of the run that measured them stay
        run.jvm, run.register = before.get("jvm_seconds", run.jvm), before.get("register_seconds", [])
    saved[str(run.patients)] = {
        "rounds": rounds,
        "driver_memory": spark_env.get("CGDW_SPARK_DRIVER_MEMORY", "2g (etl.spark's default)"),
        "cpus": os.cpu_count(),
        "export": run.export,
        "operations": operations,
        "jvm_seconds": run.jvm,
        "register_seconds": run.register,
        "startup_median": (
            statistics.median(run.jvm) + statistics.median(run.register) if run.register else None
        ),
        "load_average": run.load,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    path.write_text(json.dumps(saved, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated patient counts")
    parser.add_argument(
        "--warehouse",
        action="append",
        default=[],
        metavar="SIZE=PATH",
        help="the warehouse of a size (copied, never written); defaults: "
        + ", ".join(f"{n}={p}" for n, p in WAREHOUSES.items()),
    )
    parser.add_argument("--driver-memory", help="CGDW_SPARK_DRIVER_MEMORY for the Spark children")
    parser.add_argument(
        "--operations",
        default=",".join(OPERATIONS),
        help="comma-separated, of: " + ", ".join(OPERATIONS) + " (others measured before stay in the JSON)",
    )
    args = parser.parse_args()
    operations = tuple(o.strip() for o in args.operations.split(","))
    if unknown := set(operations) - set(OPERATIONS):
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    warehouses = dict(WAREHOUSES)
    for given in args.warehouse:
        size, _, path = given.partition("=")
        warehouses[int(size)] = Path(path)
    spark_env = dict(ENV)
    if args.driver_memory:
        spark_env["CGDW_SPARK_DRIVER_MEMORY"] = args.driver_memory
    args.workdir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for patients in (int(s) for s in args.sizes.split(",")):
        run = run_size(args.workdir, patients, warehouses[patients], args.rounds, spark_env, operations)
        lines += ["", *table(run, args.rounds)]
        save(args.workdir / "spark_engine.json", run, args.rounds, spark_env)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
