"""Load time of every source file of a synthetic cohort (trial exports, lab, samples, VCF, MAF, CNV,
SEG, MRD), per kind, in the demo's dependency order.

    python -m benchmarks.load_clinical --patients 100000

Synthesis runs in a child process first, so the peak RSS printed is that of the loads alone.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from benchmarks import synthesize_in_child
from etl.demo import demo_sources
from etl.sources.registry import load_source
from schema import database


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=476)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cgdw-bench-") as tmp:
        data, db = Path(tmp) / "data", Path(tmp) / "bench.duckdb"
        started = time.perf_counter()
        files = synthesize_in_child(data, args.patients, args.seed)
        print(f"synth {args.patients} patients: {time.perf_counter() - started:.2f} s")
        database.upgrade(db)
        seconds_by_kind: dict[str, float] = {}
        rows_by_kind: dict[str, int] = {}
        for kind, path, options in demo_sources(files):
            started = time.perf_counter()
            report = load_source(db, kind, path, **options)
            seconds_by_kind[kind] = seconds_by_kind.get(kind, 0.0) + time.perf_counter() - started
            rows_by_kind[kind] = rows_by_kind.get(kind, 0) + report.rows_read
        for kind, seconds in seconds_by_kind.items():
            rows = rows_by_kind[kind]
            print(f"load {kind:9} {rows:>10,} rows {seconds:7.2f} s {rows / seconds:>10,.0f} rows/s")
        total_rows, total_seconds = sum(rows_by_kind.values()), sum(seconds_by_kind.values())
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"all loads: {total_rows} rows in {total_seconds:.2f} s; peak RSS {peak_mib:.0f} MiB; "
            f"database {db.stat().st_size / 2**20:.1f} MiB"
        )


if __name__ == "__main__":
    main()
