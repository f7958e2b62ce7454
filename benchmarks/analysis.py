"""Latency of the analyst commands on a large synthetic cohort, as a user runs them (wall clock of the
`cgdw` process, interpreter start-up included).

    python -m benchmarks.analysis --patients 100000 [--workdir DIR]

Builds the cohort once (synth + every load, as `cgdw demo` does) in DIR, or reuses the warehouse a
previous run left there, then times `cgdw views apply`, `cgdw table1` (the seed spec, with `--where`,
and every column), `cgdw outcomes` (OS, CIR, OS from a landmark day and from each patient's MRD1 day, and
OS adjusted as in the seed letter) and `cgdw plot oncoplot`.
Targets (issues 4 and 14): table1, table1 --where, outcomes OS and outcomes --landmark under 3 s, views
apply under 10 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from etl.demo import demo_sources
from etl.sources.registry import load_source
from schema import database

ADJUST = ["--adjust", "age,log_wbc,prednisone_good,classifier_high"]


def to_json(name: str) -> list[str]:
    return ["--format", "json", "--out", f"{{tmp}}/{name}.json"]


COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("views apply", ["views", "apply"], 10.0),
    ("views apply (again)", ["views", "apply"], 10.0),
    # --spec seed_tall: the seed letter's 31 rows, as measured before `cgdw table1` listed every column.
    ("table1", ["table1", "--spec", "seed_tall", *to_json("table1")], 3.0),
    ("table1 --where (issue 14)",
     ["table1", "--spec", "seed_tall", "--where", "age >= 18 AND sex = 'M'", *to_json("table1_w")], 3.0),
    ("table1 (every column, no spec)", ["table1", *to_json("table1_all")], None),
    ("outcomes --endpoint os", ["outcomes", "--endpoint", "os", *to_json("os")], 3.0),
    ("outcomes --endpoint cir", ["outcomes", "--endpoint", "cir", *to_json("cir")], None),
    ("outcomes --endpoint os --landmark 180 (issue 14)",
     ["outcomes", "--endpoint", "os", "--landmark", "180", *to_json("os_l")], 3.0),
    ("outcomes --by mrd1_pcr_positive --landmark mrd1_pcr_day (each patient's MRD1 day)",
     ["outcomes", "--endpoint", "os", "--by", "mrd1_pcr_positive", "--landmark", "mrd1_pcr_day",
      *to_json("os_lm")], None),
    ("outcomes --endpoint os --adjust (4 covariates)",
     ["outcomes", "--endpoint", "os", *ADJUST, *to_json("os_a")], None),
    ("outcomes --endpoint cir --adjust (4 covariates)",
     ["outcomes", "--endpoint", "cir", *ADJUST, *to_json("cir_a")], None),
    ("plot oncoplot", ["plot", "oncoplot", "--out", "{tmp}/oncoplot.png"], None),
]  # fmt: skip


def build(workdir: Path, patients: int, seed: int) -> Path:
    db = workdir / "bench.duckdb"
    done = workdir / "loaded.ok"
    if done.exists():
        started = time.perf_counter()
        database.upgrade(db)  # a warehouse left by an older cgdw is migrated first, as a user's would be
        print(
            f"reusing {db} ({patients:,} patients loaded by an earlier run; "
            f"migrated to head in {time.perf_counter() - started:.1f} s)"
        )
        return db
    from etl.synth import write_synthetic_cohort

    started = time.perf_counter()
    cohort = write_synthetic_cohort(workdir / "data", seed=seed, patients=patients)
    print(f"synth {patients:,} patients: {time.perf_counter() - started:.1f} s")
    database.upgrade(db)
    started = time.perf_counter()
    for kind, path, options in demo_sources(cohort.files):
        load_source(db, kind, path, **options)
    print(f"loads: {time.perf_counter() - started:.1f} s; database {db.stat().st_size / 2**20:.0f} MiB")
    done.write_text("ok\n")
    return db


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep (and reuse) the warehouse here.")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cgdw-bench-analysis-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = build(workdir, args.patients, args.seed)
    env = {**os.environ, "CGDW_DB": str(db)}
    cgdw = [sys.executable, "-m", "etl"]
    print(f"{'command':50} {'wall':>8} {'peak RSS':>10}  target")
    for label, arguments, target in COMMANDS:
        argv = [a.format(tmp=workdir) for a in arguments]
        with tempfile.TemporaryFile() as errors:
            started = time.perf_counter()
            child = subprocess.Popen([*cgdw, *argv], env=env, stdout=subprocess.DEVNULL, stderr=errors)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
            seconds = time.perf_counter() - started
            if status != 0:
                errors.seek(0)
                raise SystemExit(f"cgdw {' '.join(argv)} failed: {errors.read().decode(errors='replace')}")
        verdict = "" if target is None else (f"< {target:g} s: " + ("met" if seconds < target else "NOT met"))
        print(f"cgdw {label:45} {seconds:7.2f} s {usage.ru_maxrss / 1024:7.0f} MiB  {verdict}", flush=True)
    started = time.perf_counter()
    subprocess.run([*cgdw, "--version"], check=True, env=env, capture_output=True)
    print(f"{'(interpreter start-up: cgdw --version)':50} {time.perf_counter() - started:7.2f} s")


if __name__ == "__main__":
    main()
