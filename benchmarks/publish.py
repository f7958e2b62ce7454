"""What publishing costs (docs/concurrency.md), against the loads that trigger it, on a large warehouse.

    python -m benchmarks.publish --patients 1000000 --workdir /tmp/b1m [--rounds 5]

Builds (or reuses) the warehouse of `benchmarks.analysis`, then times, alternately in the same run, a
publication as every write makes it (checkpoint, byte copy, fsync, rename) and one in DuckDB 1.4's storage
version (a logical copy, `cgdw publish --storage-version v1.4.0`), and prints their medians beside the
duration of each load the ledger recorded when the warehouse was built: the ratio is what a write pays
to publish. Target (issue 15): a small fraction of the load that triggers it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.analysis import build
from etl.warehouse import open_for_read, publish, published_path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, required=True, help="Keep (and reuse) the warehouse here.")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = build(args.workdir, args.patients, args.seed)
    with open_for_read(db, latest=True) as con:
        loads: list[tuple[str, str, float]] = con.execute(
            "SELECT f.kind, f.file_name, epoch(r.finished_at - r.started_at) FROM etl_run AS r "
            "JOIN source_file AS f USING (etl_run_id) WHERE r.kind = 'load' ORDER BY r.etl_run_id"
        ).fetchall()
    timings: dict[str, list[float]] = {"byte copy (every write)": [], "storage v1.4.0 (logical copy)": []}
    size = 0.0
    for _ in range(args.rounds):
        for label, version in zip(timings, ("default", "v1.4.0"), strict=True):
            started = time.perf_counter()
            publication = publish(db, version)
            timings[label].append(time.perf_counter() - started)
            assert publication is not None
            size = max(size, publication.size_bytes / 2**20)
    publish(db, "default")
    print(f"warehouse {db} ({db.stat().st_size / 2**20:,.0f} MiB), published copy {size:,.0f} MiB")
    print(f"{'publication':40} {'median':>8}  (of {args.rounds}: min / max)")
    for label, seconds in timings.items():
        print(f"{label:40} {statistics.median(seconds):7.2f} s  ({min(seconds):.2f} / {max(seconds):.2f})")
    byte_copy = statistics.median(timings["byte copy (every write)"])
    by_kind: dict[str, list[float]] = {}
    for kind, _, seconds in loads:
        by_kind.setdefault(kind, []).append(seconds)
    header = f"{'loads (as built, from the ledger)':34} {'files':>6} {'median load':>12} {'publish/load':>15}"
    print(f"\n{header}")
    for kind, seconds in by_kind.items():
        median = statistics.median(seconds)
        print(f"{kind:34} {len(seconds):6} {median:10.1f} s {byte_copy / median:14.1%}")
    total = sum(seconds for _, _, seconds in loads)
    label = "every load at once (a pipeline run)"
    print(f"{label:34} {len(loads):6} {total:10.1f} s {byte_copy / total:14.2%}")
    print(f"published copy: {published_path(db)}")


if __name__ == "__main__":
    main()
