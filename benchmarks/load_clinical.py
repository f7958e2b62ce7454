"""Load time of the trial exports and the lab export of a synthetic cohort.

    python -m benchmarks.load_clinical --patients 100000

Synthesis runs in a child process first, so the peak RSS printed is that of the loads alone.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from etl.demo import DEMO_SOURCES
from etl.loads import load_file
from etl.privacy import DEMO_PSEUDONYM_KEY
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
        subprocess.run(
            [sys.executable, "-m", "etl", "synth", "--out", str(data), "--seed", str(args.seed),
             "--patients", str(args.patients)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        print(f"synth {args.patients} patients: {time.perf_counter() - started:.2f} s")
        database.upgrade(db)
        files = {
            "graall": data / "graall_export.csv",
            "fralle": data / "fralle_export.xlsx",
            "lab": data / "lab_oncogenetics.tsv",
        }
        total_rows, total_seconds = 0, 0.0
        for kind, layout, key in DEMO_SOURCES:
            started = time.perf_counter()
            report = load_file(db, kind, files[key], layout=layout, secret=DEMO_PSEUDONYM_KEY.encode())
            seconds = time.perf_counter() - started
            total_rows += report.rows_read
            total_seconds += seconds
            print(
                f"load {kind:8} {layout:7} {report.rows_read:>9} rows {seconds:7.2f} s "
                f"{report.rows_read / seconds:>10,.0f} rows/s  ({report.rows_rejected} rejected)"
            )
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"all loads: {total_rows} rows in {total_seconds:.2f} s; peak RSS {peak_mib:.0f} MiB; "
            f"database {db.stat().st_size / 2**20:.1f} MiB"
        )


if __name__ == "__main__":
    main()
