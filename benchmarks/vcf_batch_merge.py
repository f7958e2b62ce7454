"""A design measured, not adopted (issue 16): many small VCF files staged one after the other and merged
once, against `cgdw load vcf FILE...` as it is (one connection, one run and one merge per file).

    python -m benchmarks.vcf_batch_merge --workdir DIR [--files 40] [--rounds 3]

DIR is a workdir of `python -m benchmarks.ceilings` (its 100,000-patient cohort and warehouse template).
The design is imitated with the loaders as they are: every file's loader shares one VariantStage whose
staging tables live on the shared connection, a file's own merge is skipped, and one merge of everything
staged runs at the end. It measures how much of a small file's load the per-file merge is; it keeps
nothing a product needs (each run's counts, each row's lineage, a rejected file's staged rows), which is
why the design is not adopted (docs/loading.md, "Speed and memory").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("CGDW_PSEUDONYM_KEY", "benchmark-key-0123456789")


def per_file(db: Path, files: list[Path]) -> float:
    from etl.sources.registry import load_sources

    started = time.perf_counter()
    results = load_sources(db, "vcf", files)
    assert not [r for r in results if isinstance(r, Exception)]
    return time.perf_counter() - started


def merged_once(db: Path, files: list[Path]) -> float:
    import polars as pl

    from etl import ledger
    from etl.sources import vcf
    from etl.sources.registry import load_sources
    from etl.sources.variants import VariantStage
    from etl.warehouse import one_writer, open_for_write, publication_deferred

    shared = VariantStage()
    original: dict[str, Any] = {name: getattr(vcf.VcfLoader, name) for name in ("__init__", "finish")}
    current = {"file": ""}

    def init(self: vcf.VcfLoader, *args: Any, **kwargs: Any) -> None:
        original["__init__"](self, *args, **kwargs)
        self.stage = shared

    def prepare(self: vcf.VcfLoader, con: Any, path: Path) -> None:
        current["file"] = path.name  # variants repeat across files: the duplicate check is per file
        type(self).prepare_original(self, con, path)  # type: ignore[attr-defined]

    def reference_issues(self: vcf.VcfLoader, con: Any, batch: Any) -> pl.DataFrame:
        return self.stage.duplicate_issues(
            con, batch.records, batch.issues.get_column("_line"), pl.lit(current["file"]), "ALT",
            pl.col("vcf_alt"), pl.lit("variant"),
        )  # fmt: skip

    def write(self: vcf.VcfLoader, con: Any, batch: Any, ctx: Any) -> dict[str, Any]:
        self.stage.create(con)
        self.stage.remember(con, batch.records, pl.lit(current["file"]))
        self.stage.append(
            con, VariantStage.VARIANTS, batch.records.select("assembly", "chrom", "pos", "ref", "alt")
        )
        if batch.parts["annotations"].height:
            self.stage.append(con, VariantStage.ANNOTATIONS, batch.parts["annotations"].drop("_line"))
        calls = batch.parts["calls"].rename({"_line": "source_line"})
        if calls.height:
            self.stage.append(con, VariantStage.CALLS, calls)
        return {}

    vcf.VcfLoader.prepare_original = vcf.VcfLoader.prepare  # type: ignore[attr-defined]
    patched = {"__init__": init, "prepare": prepare, "reference_issues": reference_issues, "write": write,
               "finish": lambda self, con, ctx: {}}  # fmt: skip
    saved = {name: getattr(vcf.VcfLoader, name) for name in patched}
    for name, function in patched.items():
        setattr(vcf.VcfLoader, name, function)
    try:
        started = time.perf_counter()
        with publication_deferred(db), one_writer(db):
            results = load_sources(db, "vcf", files)
            assert not [r for r in results if isinstance(r, Exception)]
            with open_for_write(db) as con, ledger.transaction(con):
                run, file = con.execute(
                    "SELECT max(etl_run_id), max(source_file_id) FROM source_file"
                ).fetchall()[0]
                shared.merge(con, run, file)
        return time.perf_counter() - started
    finally:
        for name, function in saved.items():
            setattr(vcf.VcfLoader, name, function)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from schema.database import HEAD_REVISION

    template = args.workdir / f"template_p100000_{HEAD_REVISION}.duckdb"
    batches = sorted((args.workdir / "p100000" / "data" / "vcf").glob("*.vcf"))
    files = batches[:: max(1, len(batches) // args.files)][: args.files]
    scratch = args.workdir / "scratch"
    scratch.mkdir(exist_ok=True)
    timings: dict[str, list[float]] = {"per file (as it is)": [], "one merge at the end": []}
    for _ in range(args.rounds):
        for name, run in (("per file (as it is)", per_file), ("one merge at the end", merged_once)):
            db = scratch / "batch.duckdb"
            for stale in scratch.glob("batch*"):
                stale.unlink()
            shutil.copy(template, db)
            timings[name].append(run(db, files))
    for name, seconds in timings.items():
        print(
            f"{name}: {statistics.median(seconds) / len(files) * 1000:.0f} ms per file "
            f"(median of {args.rounds})"
        )


if __name__ == "__main__":
    main()
