"""The per-file cost of VCF batch loads into a large warehouse, the figure that dominates a cohort load.

    python -m benchmarks.vcf_batches --workdir DIR [--files 20]

DIR is a workdir of `python -m benchmarks` (DIR/bench.duckdb, DIR/data/vcf/*.vcf). The warehouse is copied,
`--files` of its batch files are re-stamped (one header line added, so each is a new file with the same
records: the load parses, validates, stages and merges everything, and finds every call unchanged) and
loaded one by one in one process. Prints the first load (with imports) and the median and mean of the rest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from etl.sources.registry import load_source
from schema import database


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--files", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("CGDW_PSEUDONYM_KEY", "benchmark-key-0123456789")
    scratch = Path(tempfile.mkdtemp(prefix="cgdw-bench-vcf-"))
    db = Path(shutil.copy(args.workdir / "bench.duckdb", scratch / "bench.duckdb"))
    database.upgrade(db)
    batches = sorted((args.workdir / "data" / "vcf").glob("*.vcf"))
    step = max(1, len(batches) // args.files)
    chosen = batches[::step][: args.files]
    seconds = []
    for index, source in enumerate(chosen):
        lines = source.read_text().splitlines(keepends=True)
        restamped = scratch / source.name
        restamped.write_text("".join([lines[0], f"##cgdw_benchmark_restamp={index}\n", *lines[1:]]))
        started = time.perf_counter()
        load_source(db, "vcf", restamped)
        seconds.append(time.perf_counter() - started)
    rest = seconds[1:]
    print(
        f"{len(chosen)} batch files into {args.workdir / 'bench.duckdb'} "
        f"({db.stat().st_size / 2**20:.0f} MiB): first {seconds[0]:.3f} s, then median "
        f"{statistics.median(rest):.3f} s, mean {statistics.fmean(rest):.3f} s per file"
    )
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
