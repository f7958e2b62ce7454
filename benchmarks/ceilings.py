"""Load speed against honest ceilings (issue 16): each ceiling does the same work as the cgdw load it is set
against, with the fastest tools a bioinformatician would reach for, timed alternately with cgdw in the same
run on the same file; ratios of medians (the machines are shared and noisy: never an absolute time alone).

    python -m benchmarks.ceilings --workdir DIR [--rounds 3] [--only vcf,tabular,peer,small,startup]

- VCF, 1M records with CSQ: `bcftools query` (Debian package) piped through a FIFO into DuckDB `read_csv`,
  the CSQ split per transcript in SQL into a second table, both in a file-backed database, committed;
  against `cgdw load vcf` of the same file into a warehouse that knows its sample.
- Tabular (lab, MRD, the GRAALL clinical CSV) at 1M and 100k patients: DuckDB `read_csv` of the file into
  a file-backed table, committed; against `cgdw load` of it (lab and MRD into a warehouse holding the
  cohort's patients and samples, clinical into an empty one).
- The peer: pandas `read_csv` + `to_sql` through SQLAlchemy (duckdb-engine), on the first 20,000 rows of
  the 1M-patient files (it inserts row by row); cgdw's rows/s over the peer's.
- Many small files: 40 VCF batch files of the 100k cohort (120 samples each) with one `cgdw load vcf
  FILES...`, against DuckDB reading all of them in one `read_csv` query; 40 small MRD files (the 100k
  cohort's MRD results split by patient) with one `cgdw load mrd FILES...`. Milliseconds per file.
- Start-up: CPU seconds of a process that imports the CLI and a loader, against bare Python.

Every cgdw run and every ceiling runs in its own child process (imports excluded from the timed part,
peak RSS read by the child). Cohorts: DIR/p1000000/data and DIR/p100000/data, synthesised when missing
(a million patients takes about 4 minutes; a symlink to an existing cohort's data folder is reused).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ENV = {**os.environ, "CGDW_PSEUDONYM_KEY": "benchmark-key-0123456789"}
SECTIONS = ("vcf", "tabular", "peer", "small", "startup")
SMALL_FILES = 40
SMALL_MRD_ROWS = 250  # rows per small MRD file
PEER_ROWS = 20_000
# Ratios are at least their target; milliseconds per file and start-up seconds at most.
TARGETS = {
    "vcf": 0.4,
    "lab": 0.35,
    "mrd": 0.35,
    "clinical": 0.25,
    "tabular_100k": 0.25,
    "peer": 25.0,
    "small_vcf_ms": 60.0,
    "small_tabular_ms": 50.0,
    "startup_s": 0.5,
}


# ---------------------------------------------------------------- child processes (timed parts)


def cgdw_child(db: str, kind: str, paths: list[str], options: dict[str, object]) -> None:
    """One `cgdw load KIND FILES...` as the CLI runs it (load_source for one file, load_sources for more),
    timed after the imports; prints seconds, rows and the peak RSS of the process."""
    from etl.sources.registry import load_source, load_sources, source_kind

    source_kind(kind).loader_class()  # the loader's imports, outside the timed part
    started = time.perf_counter()
    if len(paths) == 1:
        reports: list[object] = [load_source(Path(db), kind, Path(paths[0]), **options)]
    else:
        reports = list(load_sources(Path(db), kind, [Path(p) for p in paths], **options))
    seconds = time.perf_counter() - started
    failed = [str(r) for r in reports if isinstance(r, Exception)]
    rows = sum(getattr(r, "rows_read", 0) for r in reports)
    rejected = sum(getattr(r, "rows_rejected", 0) for r in reports)
    peak = peak_rss_mib()
    print(
        json.dumps(
            {"seconds": seconds, "rows": rows, "rejected": rejected, "failed": failed, "peak_mib": peak}
        )
    )


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: on Linux a child started by fork and
    exec reports its parent's peak there when that is higher (a parent that had just written a big VCF
    made a 20,000-record load that peaked at 0.4 GiB report 1.2)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def csv_options(path: Path) -> str:
    if path.suffix == ".csv":  # the GRAALL export: Latin-1, ';'
        return "delim=';', encoding='latin-1', header=true"
    if path.suffix == ".vcf":
        # The columns from the #CHROM line, as text: DuckDB's sniffer costs 75 ms a file on 129 columns,
        # and knowing a VCF's columns is what its reader does.
        with open(path) as handle:
            names = next(line for line in handle if line.startswith("#CHROM"))[1:].rstrip("\n").split("\t")
        columns = ", ".join(f"'{name}': 'VARCHAR'" for name in names)
        return f"delim='\t', comment='#', header=false, quote='', auto_detect=false, columns={{{columns}}}"
    return "delim='\t', header=true, quote=''"


def ceiling_child(db: str, how: str, paths: list[str]) -> None:
    """The ceiling of one figure, into a new file-backed database, committed; prints seconds."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(db)
    con.execute("BEGIN")
    if how == "read_csv":
        listed = ", ".join(f"'{p}'" for p in paths)
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv([{listed}], {csv_options(Path(paths[0]))})")
    elif how == "bcftools":
        _bcftools_ceiling(con, Path(paths[0]), Path(db).with_suffix(".fifo"))
    else:
        raise ValueError(how)
    con.execute("COMMIT")
    con.close()
    print(json.dumps({"seconds": time.perf_counter() - started}))


# The CSQ fields cgdw keeps, by position in the benchmark VCF's Format (benchmarks.load_vcf.CSQ).
CSQ_COLUMNS = {
    "allele": 1, "consequence": 2, "impact": 3, "gene_symbol": 4, "feature_type": 6,
    "transcript_accession": 7, "exon": 9, "hgvsc": 11, "hgvsp": 12, "protein_position": 15,
    "amino_acids": 16, "canonical": 22, "mane_select": 23,
}  # fmt: skip


def _bcftools_ceiling(con: object, vcf: Path, fifo: Path) -> None:
    """bcftools query | DuckDB read_csv: one row per record (fixed fields, CSQ, the sample's GT:AD:DP), then
    one row per CSQ entry with its fields split, in two tables."""
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    query = r"%CHROM\t%POS\t%REF\t%ALT\t%FILTER\t%INFO/CSQ[\t%GT\t%AD\t%DP]\n"  # bcftools reads the escapes
    process = subprocess.Popen(["bcftools", "query", "-f", query, "-o", str(fifo), str(vcf)])
    try:
        con.execute(  # type: ignore[attr-defined]
            f"""
            CREATE TABLE variant_record AS SELECT * FROM read_csv('{fifo}', delim='\t', header=false,
                quote='', columns={{'chrom': 'VARCHAR', 'pos': 'BIGINT', 'ref': 'VARCHAR', 'alt': 'VARCHAR',
                'filter': 'VARCHAR', 'csq': 'VARCHAR', 'gt': 'VARCHAR', 'ad': 'VARCHAR', 'dp': 'INTEGER'}})
            """
        )
    finally:
        if process.wait() != 0:
            raise RuntimeError("bcftools query failed")
        fifo.unlink()
    fields = ", ".join(
        f"nullif(split_part(entry, '|', {i}), '') AS {name}" for name, i in CSQ_COLUMNS.items()
    )
    con.execute(  # type: ignore[attr-defined]
        f"""
        CREATE TABLE variant_annotation AS
        SELECT chrom, pos, ref, alt, {fields}
        FROM (SELECT chrom, pos, ref, alt, unnest(string_split(csq, ',')) AS entry FROM variant_record)
        """
    )


# ---------------------------------------------------------------- the parent: data, templates, rounds

PRELUDE = (
    "from pathlib import Path\nfrom schema import database\nfrom etl.sources.registry import load_source\n"
)


def run_child(code: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"child failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def time_cgdw(template: Path, scratch: Path, kind: str, paths: list[Path], **options: object) -> dict:
    db = scratch / "cgdw.duckdb"
    for stale in scratch.glob("cgdw*"):
        stale.unlink()
    shutil.copy(template, db)
    listed = [str(p) for p in paths]
    return run_child(
        "from benchmarks.ceilings import cgdw_child; "
        f"cgdw_child({str(db)!r}, {kind!r}, {listed!r}, {options!r})"
    )


def time_ceiling(scratch: Path, how: str, paths: list[Path]) -> dict:
    db = scratch / "ceiling.duckdb"
    for stale in scratch.glob("ceiling*"):
        stale.unlink()
    listed = [str(p) for p in paths]
    return run_child(
        f"from benchmarks.ceilings import ceiling_child; ceiling_child({str(db)!r}, {how!r}, {listed!r})"
    )


@dataclass
class Figure:
    name: str
    ours: list[float]
    ceiling: list[float]
    rows: int
    peak_mib: float

    @property
    def ratio(self) -> float:
        return statistics.median(self.ceiling) / statistics.median(self.ours)


def alternate(rounds: int, ours: Callable[[], dict], ceiling: Callable[[], dict], name: str) -> Figure:
    """cgdw and its ceiling, one after the other, `rounds` times: both see the same machine weather."""
    figure = Figure(name, [], [], 0, 0.0)
    for _ in range(rounds):
        result = ours()
        if result.get("failed"):
            raise RuntimeError(f"{name}: files rejected: {result['failed']}")
        figure.ours.append(float(result["seconds"]))  # type: ignore[arg-type]
        figure.rows = int(result["rows"])  # type: ignore[call-overload]
        figure.peak_mib = max(figure.peak_mib, float(result["peak_mib"]))  # type: ignore[arg-type]
        figure.ceiling.append(float(ceiling()["seconds"]))  # type: ignore[arg-type]
        print(f"  {name}: cgdw {figure.ours[-1]:.2f} s, ceiling {figure.ceiling[-1]:.2f} s", flush=True)
    return figure


def cohort(workdir: Path, patients: int) -> dict[str, Path]:
    from benchmarks import synthesize_in_child

    data = workdir / f"p{patients}" / "data"
    if not (data / "mrd_results.tsv").exists():
        print(f"synthesising {patients:,} patients into {data} ...", flush=True)
        synthesize_in_child(data, patients)
    return {
        "graall": data / "graall_export.csv",
        "fralle": data / "fralle_export.xlsx",
        "lab": data / "lab_oncogenetics.tsv",
        "mrd": data / "mrd_results.tsv",
        "samples": data / "samples.tsv",
        "vcf": data / "vcf",
    }


def cohort_loads(files: dict[str, Path]) -> list[tuple[str, Path, dict[str, str]]]:
    """The loads that give a warehouse the cohort's patients and samples."""
    return [
        ("clinical", files["graall"], {"layout": "graall"}),
        ("clinical", files["fralle"], {"layout": "fralle"}),
        ("samples", files["samples"], {}),
    ]


def warehouse_template(workdir: Path, name: str, loads: list[tuple[str, Path, dict[str, str]]]) -> Path:
    """A migrated warehouse with `loads` done, built once (under another name until it is complete) and
    reused while the schema revision is the same."""
    from schema.database import HEAD_REVISION

    template = workdir / f"template_{name}_{HEAD_REVISION}.duckdb"
    if template.exists():
        return template
    print(f"building {template.name} ...", flush=True)
    building = template.with_suffix(".building")
    for stale in workdir.glob(building.name + "*"):
        stale.unlink()
    code = (
        f"{PRELUDE}db = Path({str(building)!r})\ndatabase.upgrade(db)\n"
        + "".join(f"load_source(db, {k!r}, Path({str(p)!r}), **{o!r})\n" for k, p, o in loads)
        + "print('{}')"
    )
    run_child(code)
    building.rename(template)
    # The building file's lock, WAL and the copy its loads published: the template is copied, not read.
    for extra in [*workdir.glob(building.name + ".*"), *workdir.glob(template.stem + ".published*")]:
        extra.unlink()
    return template


# ---------------------------------------------------------------- the sections


def vcf_section(workdir: Path, scratch: Path, rounds: int, records: int) -> list[Figure]:
    from benchmarks import load_vcf

    vcf = workdir / f"bench_{records}.vcf"
    if not vcf.exists():
        print(f"writing {vcf.name} ...", flush=True)
        load_vcf.write_inputs(load_vcf.records(records), vcf, workdir / "unused.tsv")
    (workdir / "g.csv").write_bytes(load_vcf.CLINICAL.encode("latin-1"))
    (workdir / "m.tsv").write_text(load_vcf.MANIFEST)
    loads = [("clinical", workdir / "g.csv", {"layout": "graall"}), ("samples", workdir / "m.tsv", {})]
    template = warehouse_template(workdir, "vcf_sample", loads)
    return [
        alternate(
            rounds,
            lambda: time_cgdw(template, scratch, "vcf", [vcf]),
            lambda: time_ceiling(scratch, "bcftools", [vcf]),
            f"vcf {records:,} records",
        )
    ]


def tabular_section(workdir: Path, scratch: Path, rounds: int, patients: int) -> list[Figure]:
    files = cohort(workdir, patients)
    empty = warehouse_template(workdir, "empty", [])
    with_patients = warehouse_template(workdir, f"p{patients}", cohort_loads(files))
    figures = []
    for kind, path, template, options in (
        ("lab", files["lab"], with_patients, {}),
        ("mrd", files["mrd"], with_patients, {}),
        ("clinical", files["graall"], empty, {"layout": "graall"}),
    ):
        figures.append(
            alternate(
                rounds,
                lambda k=kind, p=path, t=template, o=options: time_cgdw(t, scratch, k, [p], **o),  # type: ignore[misc]
                lambda p=path: time_ceiling(scratch, "read_csv", [p]),  # type: ignore[misc]
                f"{kind} {patients:,} patients",
            )
        )
    return figures


def peer_section(workdir: Path, figures: list[Figure]) -> list[tuple[str, float, float]]:
    """cgdw's rows/s (from the 1M tabular figures) over the pandas to_sql peer's, on the same files."""
    from benchmarks.scale import peer_rows_per_second

    files = cohort(workdir, 1_000_000)
    by_kind = {"lab": files["lab"], "mrd": files["mrd"], "clinical": files["graall"]}
    rows = []
    for figure in figures:
        kind = figure.name.split()[0]
        if kind not in by_kind or "1,000,000" not in figure.name:
            continue
        peer = peer_rows_per_second([by_kind[kind]], PEER_ROWS, workdir)
        for stale in workdir.glob("peer.duckdb*"):
            stale.unlink()
        assert peer is not None
        ours = figure.rows / statistics.median(figure.ours)
        rows.append((kind, ours, peer))
    return rows


def small_files_section(workdir: Path, scratch: Path, rounds: int) -> list[Figure]:
    import polars as pl

    files = cohort(workdir, 100_000)
    template = warehouse_template(workdir, "p100000", cohort_loads(files))
    batches = sorted(files["vcf"].glob("*.vcf"))
    step = max(1, len(batches) // SMALL_FILES)
    vcfs = batches[::step][:SMALL_FILES]
    small = workdir / "small_mrd"
    if not small.exists():
        small.mkdir()
        mrd = pl.read_csv(files["mrd"], separator="\t", infer_schema=False)
        patients = mrd.get_column("patient_id").unique(maintain_order=True)
        per_file = max(1, SMALL_MRD_ROWS * patients.len() // mrd.height)
        for index in range(SMALL_FILES):
            chosen = patients.slice(index * per_file, per_file).implode()
            part = mrd.filter(pl.col("patient_id").is_in(chosen))
            part.write_csv(small / f"mrd_part_{index + 1:03d}.tsv", separator="\t")
    mrds = sorted(small.glob("*.tsv"))
    return [
        alternate(
            rounds,
            lambda: time_cgdw(template, scratch, "vcf", vcfs),
            lambda: time_ceiling(scratch, "read_csv", vcfs),
            f"{len(vcfs)} small vcf files",
        ),
        alternate(
            rounds,
            lambda: time_cgdw(template, scratch, "mrd", mrds),
            lambda: time_ceiling(scratch, "read_csv", mrds),
            f"{len(mrds)} small mrd files",
        ),
    ]


def cpu_seconds(code: str, runs: int = 5) -> float:
    """Median user+system CPU seconds of a Python process running `code`."""
    import resource

    spent = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        spent.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(spent)


def startup_section() -> list[tuple[str, float]]:
    rows = [("bare Python", cpu_seconds("pass"))]
    for kind in ("vcf", "lab", "mrd", "clinical"):
        code = f"import etl.cli\nfrom etl.sources.registry import KINDS\nKINDS[{kind!r}].loader_class()"
        rows.append((f"cgdw load {kind} (CLI + loader imports)", cpu_seconds(code)))
    return rows


# ---------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=1_000_000, help="records of the big VCF")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    args = parser.parse_args()
    only = set(args.only.split(","))
    args.workdir.mkdir(parents=True, exist_ok=True)
    scratch = args.workdir / "scratch"
    scratch.mkdir(exist_ok=True)
    lines = [f"rounds {args.rounds}, medians; ratio = ceiling time / cgdw time", ""]
    lines.append("| load | rows | ceiling | cgdw | ratio | target | peak RSS |")
    lines.append("|---|---|---|---|---|---|---|")

    def row(figure: Figure, target: float) -> None:
        met = "met" if figure.ratio >= target else "NOT met"
        lines.append(
            f"| {figure.name} | {figure.rows:,} | {statistics.median(figure.ceiling):.2f} s | "
            f"{statistics.median(figure.ours):.2f} s | **{figure.ratio:.2f}x** | >= {target}x: {met} | "
            f"{figure.peak_mib:,.0f} MiB |"
        )

    tabular: list[Figure] = []
    if "vcf" in only:
        for figure in vcf_section(args.workdir, scratch, args.rounds, args.records):
            row(figure, TARGETS["vcf"])
    if "tabular" in only or "peer" in only:
        for patients in (1_000_000, 100_000):
            for figure in tabular_section(args.workdir, scratch, args.rounds, patients):
                kind = figure.name.split()[0]
                row(figure, TARGETS[kind] if patients == 1_000_000 else TARGETS["tabular_100k"])
                tabular.append(figure)
    if "peer" in only:
        lines += [
            "",
            "| vs the pandas to_sql peer (1M patients) | cgdw rows/s | peer rows/s | ratio | target |",
        ]
        lines.append("|---|---|---|---|---|")
        for kind, ours, peer in peer_section(args.workdir, tabular):
            met = "met" if ours / peer >= TARGETS["peer"] else "NOT met"
            lines.append(
                f"| {kind} | {ours:,.0f} | {peer:,.0f} | **{ours / peer:.1f}x** | "
                f">= {TARGETS['peer']}x: {met} |"
            )
    if "small" in only:
        lines += ["", "| many small files | files | ceiling ms/file | cgdw ms/file | target | peak RSS |"]
        lines.append("|---|---|---|---|---|---|")
        for figure, target in zip(
            small_files_section(args.workdir, scratch, args.rounds),
            (TARGETS["small_vcf_ms"], TARGETS["small_tabular_ms"]),
            strict=True,
        ):
            count = int(figure.name.split()[0])
            ours = statistics.median(figure.ours) / count * 1000
            met = "met" if ours <= target else "NOT met"
            lines.append(
                f"| {figure.name} ({figure.rows:,} rows) | {count} | "
                f"{statistics.median(figure.ceiling) / count * 1000:.0f} | **{ours:.0f}** | "
                f"<= {target:.0f}: {met} | {figure.peak_mib:,.0f} MiB |"
            )
    if "startup" in only:
        lines += ["", "| start-up (median of 5) | CPU seconds | target |", "|---|---|---|"]
        for name, seconds in startup_section():
            target = (
                ""
                if name == "bare Python"
                else f"<= {TARGETS['startup_s']} s: "
                + ("met" if seconds <= TARGETS["startup_s"] else "NOT met")
            )
            lines.append(f"| {name} | **{seconds:.2f}** | {target} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
