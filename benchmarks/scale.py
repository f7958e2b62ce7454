"""The scale benchmark: synthetic cohorts of several sizes, every load, the views and the analyses, with
DuckDB's own reader (the ceiling) and pandas `to_sql` (the analyst's default, the peer) on the same files.

    python -m benchmarks --sizes 10000,100000 [--workdir DIR] [--peer-rows 20000]

Per size it prints, per source kind: cgdw load time and rows/s; the ceiling, `CREATE TABLE AS SELECT *
FROM read_csv(...)` of the same files into a DuckDB table; the peer, `pandas.read_csv(...).to_sql(...)`
through SQLAlchemy (duckdb-engine) into the same kind of table; and our speed as a ratio to each. Then
peak RSS of the loads, database size, and the wall clock of `cgdw views apply`, `cgdw table1` and
`cgdw outcomes` as a user runs them. Targets (issue 6): tabular loads >= 0.5x the ceiling, VCF >= 0.25x,
>= 20x faster than the peer, peak RSS < 4 GiB at 1M patients, table1 / outcomes < 3 s at 1M patients.

The peer inserts row by row, so it is timed on the first `--peer-rows` rows of each file and its rate
extrapolated; that is said in the output. The xlsx export has no DuckDB reader offline (the excel
extension cannot be installed here): its ceiling reads it with polars (fastexcel) into DuckDB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from benchmarks import synthesize_in_child

KINDS = ("clinical", "lab", "samples", "vcf", "maf", "cnv", "seg", "mrd")
TABULAR_TARGET, VCF_TARGET, PEER_TARGET = 0.5, 0.25, 20.0


@dataclass
class KindFigures:
    kind: str
    rows: int
    seconds: float
    ceiling: float
    peer_rows_per_s: float | None


def child_loads(db: str, files_json: str) -> None:
    """Runs in its own process: every load, then per-kind seconds and rows and the process's peak RSS."""
    import resource

    from etl.demo import demo_sources
    from etl.sources.registry import load_source
    from schema import database

    files = {key: Path(value) for key, value in json.loads(files_json).items()}
    database.upgrade(Path(db))
    seconds: dict[str, float] = {}
    rows: dict[str, int] = {}
    for kind, path, options in demo_sources(files):
        started = time.perf_counter()
        report = load_source(Path(db), kind, path, **options)
        seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - started
        rows[kind] = rows.get(kind, 0) + report.rows_read
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_mib": peak}))


def source_files(files: dict[str, Path]) -> dict[str, list[Path]]:
    by_kind = {
        "clinical": [files["graall"], files["fralle"]],
        "lab": [files["lab"]],
        "samples": [files["samples"]],
        "vcf": sorted(files["vcf"].glob("*.vcf")),
        "maf": [files["maf"]],
        "cnv": [files["cnv"]],
        "seg": [files["seg"]],
        "mrd": [files["mrd"]],
    }
    return by_kind


def _csv_options(path: Path) -> str:
    if path.suffix == ".csv":
        return "delim=';', encoding='latin-1', header=true, all_varchar=true"
    if path.suffix == ".vcf":
        return "delim='\t', comment='#', header=false, quote='', all_varchar=true"
    if path.suffix == ".maf":
        return "delim='\t', comment='#', header=true, quote='', all_varchar=true"
    return "delim='\t', header=true, quote='', all_varchar=true"


def ceiling_seconds(paths: list[Path]) -> float:
    """DuckDB reading the same files into a table: the fastest this machine can take the bytes in."""
    con = duckdb.connect()
    started = time.perf_counter()
    for index, path in enumerate(paths):
        if path.suffix == ".xlsx":
            import polars as pl

            frame = pl.read_excel(path)  # noqa: F841 - read by the SQL below through a replacement scan
            con.execute(f"CREATE TABLE t{index} AS SELECT * FROM frame")
        else:
            con.execute(f"CREATE TABLE t{index} AS SELECT * FROM read_csv('{path}', {_csv_options(path)})")
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def peer_rows_per_second(paths: list[Path], peer_rows: int, tmp: Path) -> float | None:
    """pandas read_csv + to_sql through SQLAlchemy, the analyst's default, on the first rows of a file."""
    import pandas as pd
    from sqlalchemy import create_engine

    path = paths[0]
    if path.suffix in (".vcf", ".xlsx"):
        return None  # no pandas reader for VCF; the xlsx is read by the clinical csv's figure
    separator = ";" if path.suffix == ".csv" else "\t"
    encoding = "latin-1" if path.suffix == ".csv" else "utf-8"
    engine = create_engine(f"duckdb:///{tmp / 'peer.duckdb'}")
    started = time.perf_counter()
    frame = pd.read_csv(
        path,
        sep=separator,
        encoding=encoding,
        nrows=peer_rows,
        dtype=str,
        comment="#" if path.suffix == ".maf" else None,
    )
    frame.to_sql(f"peer_{path.stem}", engine, index=False)
    seconds = time.perf_counter() - started
    engine.dispose()
    return len(frame) / seconds


def open_seconds(db: Path, tries: int = 3) -> float:
    """DuckDB opening the file read-only, the fixed cost of every command (best of `tries`)."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        duckdb.connect(str(db), read_only=True).close()
        best = min(best, time.perf_counter() - started)
    return best


def cli_seconds(db: Path, *arguments: str) -> float:
    env = {**os.environ, "CGDW_DB": str(db)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "etl", *arguments], check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def run_size(patients: int, workdir: Path, peer_rows: int) -> None:
    size_dir = workdir / f"p{patients}"
    size_dir.mkdir(parents=True, exist_ok=True)
    db = size_dir / "bench.duckdb"
    for stale in [*size_dir.glob("bench.duckdb*"), *size_dir.glob("peer.duckdb*")]:
        stale.unlink()
    started = time.perf_counter()
    files = synthesize_in_child(size_dir / "data", patients)
    files_json = json.dumps({key: str(value) for key, value in files.items()})
    print(f"\n== {patients:,} patients (synth {time.perf_counter() - started:.1f} s)")

    child = f"from benchmarks.scale import child_loads; child_loads({str(db)!r}, {files_json!r})"
    loads = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    if loads.returncode != 0:
        raise SystemExit(f"the loads failed:\n{loads.stderr[-3000:]}")
    measured = json.loads(loads.stdout.strip().splitlines()[-1])
    figures = []
    by_kind = source_files(files)
    for kind in KINDS:
        peer = peer_rows_per_second(by_kind[kind], peer_rows, size_dir)
        figures.append(
            KindFigures(
                kind, measured["rows"][kind], measured["seconds"][kind], ceiling_seconds(by_kind[kind]), peer
            )
        )
    print(f"{'kind':9} {'rows':>10} {'cgdw':>9} {'rows/s':>9} {'ceiling':>9} {'x ceil':>7} {'target':>7} "
          f"{'peer r/s':>9} {'x peer':>7}")  # fmt: skip
    for f in figures:
        ratio = f.ceiling / f.seconds
        target = VCF_TARGET if f.kind == "vcf" else TABULAR_TARGET
        ours = f.rows / f.seconds
        peer_text = (
            f"{f.peer_rows_per_s:9,.0f} {ours / f.peer_rows_per_s:6.1f}x"
            if f.peer_rows_per_s
            else f"{'n/a':>9} {'':>7}"
        )
        print(f"{f.kind:9} {f.rows:10,} {f.seconds:8.2f}s {ours:9,.0f} {f.ceiling:8.2f}s {ratio:6.2f}x "
              f"{'met' if ratio >= target else 'NOT':>7} {peer_text}")  # fmt: skip
    total = sum(f.seconds for f in figures)
    vcf_files = len(by_kind["vcf"])
    print(
        f"all loads {total:.1f} s; peak RSS {measured['peak_mib']:.0f} MiB; database "
        f"{db.stat().st_size / 2**20:.0f} MiB (peer rates: first {peer_rows:,} rows of each file); "
        f"vcf {vcf_files:,} files, {measured['seconds']['vcf'] / vcf_files:.3f} s per file; "
        f"opening the warehouse {open_seconds(db):.3f} s"
    )
    to_json = ["--format", "json", "--out", str(size_dir / "out.json")]
    timings = {
        "views apply": cli_seconds(db, "views", "apply"),
        "table1": cli_seconds(db, "table1", "--spec", "seed_tall", *to_json),  # the letter's 31 rows
        "outcomes os": cli_seconds(db, "outcomes", "--endpoint", "os", *to_json),
        "outcomes cir": cli_seconds(db, "outcomes", "--endpoint", "cir", *to_json),
    }
    print("  ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="Comma-separated cohort sizes.")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--peer-rows", type=int, default=20_000)
    args = parser.parse_args()
    os.environ.setdefault("CGDW_PSEUDONYM_KEY", "benchmark-key-0123456789")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cgdw-bench-scale-"))
    for size in (int(s) for s in args.sizes.split(",")):
        run_size(size, workdir, args.peer_rows)


if __name__ == "__main__":
    main()
