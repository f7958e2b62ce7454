"""Why migration 0003 dropped the FOREIGN KEY constraints: DuckDB 2.0 opens a file with foreign keys
slower after every checkpoint it has seen.

    python -m benchmarks.open_time [--keys 30] [--checkpoints 900] [--step 300]

Two files with the same tables (`--keys` child tables referencing one parent, with and without FOREIGN KEY
clauses) go through the same small committed writes, each followed by a CHECKPOINT as a load's close
does; the time to open each file read-only (best of five) is printed every `--step` checkpoints.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import duckdb

from benchmarks.scale import open_seconds


def create(path: Path, keys: int, enforced: bool) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE run (id INTEGER PRIMARY KEY)")
        con.execute("CREATE TABLE other (id INTEGER)")
        reference = "REFERENCES run (id)" if enforced else ""
        for k in range(keys):
            con.execute(f"CREATE TABLE child_{k} (id INTEGER PRIMARY KEY, run_id INTEGER {reference})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=30)
    parser.add_argument("--checkpoints", type=int, default=900)
    parser.add_argument("--step", type=int, default=300)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cgdw-bench-open-"))
    files = {"foreign keys": workdir / "fk.duckdb", "no foreign keys": workdir / "plain.duckdb"}
    for label, path in files.items():
        create(path, args.keys, enforced=label == "foreign keys")
    print(f"{'checkpoints':>11}  " + "  ".join(f"{label:>16}" for label in files))
    for done in range(0, args.checkpoints + 1, args.step):
        if done:
            for path in files.values():
                for i in range(args.step):
                    with duckdb.connect(str(path)) as con:
                        con.execute("INSERT INTO other VALUES ($i)", {"i": i})
                        con.execute("CHECKPOINT")
        print(
            f"{done:>11}  "
            + "  ".join(f"{open_seconds(p, tries=5) * 1000:>13.1f} ms" for p in files.values())
        )


if __name__ == "__main__":
    main()
