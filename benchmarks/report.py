"""The size of `cgdw report` and the time it takes, on a large warehouse, per section.

    python -m benchmarks.report --patients 1000000 --workdir /tmp/b1m

Builds (or reuses) the warehouse of `benchmarks.analysis`, runs `cgdw report` as a user does (wall clock
and peak RSS of the process) and prints the size of each section of the HTML. Target (issue 15): a file
small enough to mail at a million patients (it was 84 MB: every MRD level and every curve step as SVG).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.analysis import build


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, required=True, help="Keep (and reuse) the warehouse here.")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = build(args.workdir, args.patients, args.seed)
    out = args.workdir / "report.html"
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "etl", "report", "--out", str(out), "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"cgdw report failed: {child.stderr.read().decode() if child.stderr else ''}")
    text = out.read_text(encoding="utf-8")
    peak = usage.ru_maxrss / 1024
    print(f"cgdw report at {args.patients:,} patients: {seconds:.1f} s, peak RSS {peak:,.0f} MiB")
    print(f"{'section':12} {'kB':>8}")
    starts = [(m.group(1), m.start()) for m in re.finditer(r'<section id="([a-z0-9]+)">', text)]
    for (name, start), end in zip(starts, [s for _, s in starts[1:]] + [len(text)], strict=True):
        print(f"{name:12} {(end - start) / 1000:8.0f}")
    print(f"{'whole file':12} {len(text.encode()) / 1000:8.0f}")


if __name__ == "__main__":
    main()
