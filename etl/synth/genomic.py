"""Sequencing files of the synthetic cohort: sample manifest, VCF/MAF variant calls, copy number, aCGH.

Every patient has a diagnosis sample (S0001234-DX); GRAALL patients also a germline one (S0001234-GL,
remission blood), the normal of their tumor/normal VCFs. FRALLE calls come as one tumor-only MAF. IKZF1
and PTEN deletions and CDKN2A homozygous deletions are gene-level copy-number calls (NGS, confirmed by
MLPA or aCGH for some); a quarter of the GRAALL diagnosis samples also have aCGH segments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from etl.load.layout import Layout, load_layout
from etl.synth.genome import ASSEMBLY, CONTIG_INDEX, CONTIGS, gene_models
from etl.synth.maf import MAF_FILE, write_maf
from etl.synth.sampling import IntArray
from etl.synth.variants import ikzf1_decoy_patients, simulate_calls
from etl.synth.vcf import BATCH_PATIENTS, VCF_DIR, allele_csq, write_vcfs
from etl.synth.writers import SourceTable, write_table

SAMPLES_FILE = "samples.tsv"
CNV_FILE = "cnv_calls.tsv"
SEG_FILE = "segments_acgh.seg"
GENOMIC_SPAWN_KEY = 7  # SeedSequence(seed, spawn_key=(7,)): independent of the clinical streams
SAMPLE_NUMBERS = 8_999_999  # S0000001-S8999999; S9999999 is left for the dirty files
ASSAY = ("TALL80", "1", ASSEMBLY, "tall-pipe 2.3.1")
PB_SHARE = 0.2  # diagnosis samples from blood rather than marrow
DX_DAY_MISSING_SHARE = 0.05
GERMLINE_DAYS = (60, 120)  # remission blood
CDKN2A_HOMDEL_SHARE = 0.6
PTEN_DELETIONS = ((1, 9), (2, 9), (3, 9))
MLPA_PTEN_SHARE = 0.5
ACGH_IKZF1_SHARE = 1 / 3
SEG_SHARE = 0.25  # of GRAALL diagnosis samples with aCGH segments
SEG_DELETED_SHARE = 0.6  # of the IKZF1-deleted GRAALL patients among them
SEG_DELETION_MEAN = (-1.1, -0.8)
SEG_NEUTRAL_SD = 0.04  # neutral seg.mean stays within 0 +- 0.1
SEG_GAIN_MEAN = (0.35, 0.6)
CHR7_CENTROMERE = 59_000_000
MARKER_SPACING = 20_000  # aCGH probes per segment ~ length / spacing
SEG_SCHEMA = {
    "ID": pl.String,
    "chrom": pl.String,
    "loc.start": pl.Int64,
    "loc.end": pl.Int64,
    "num.mark": pl.Int64,
    "seg.mean": pl.Float64,
}


@dataclass
class Genomics:
    truth: pl.DataFrame  # the truth with dx_sample_id, gl_sample_id and ikzf1_other_missense
    files: dict[str, Path]
    vcf_paths: list[Path]
    mrd_rng: np.random.Generator
    dirty_rng: np.random.Generator


def add_sample_ids(truth: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    numbers = rng.choice(SAMPLE_NUMBERS, size=truth.height, replace=False) + 1
    stem = pl.Series(numbers).cast(pl.String).str.zfill(7)
    return truth.with_columns(
        dx_sample_id=pl.format("S{}-DX", stem),
        gl_sample_id=pl.when(pl.col("trial_group") == "GRAALL").then(pl.format("S{}-GL", stem)),
    )


def _layout_frame(layout: Layout, rows: pl.DataFrame) -> pl.DataFrame:
    """Canonical-field columns as the layout's source columns, in its order, as text."""
    return rows.select(
        [pl.col(name).cast(pl.String).alias(spec.column) for name, spec in layout.fields.items()]
    )


def samples_table(truth: pl.DataFrame, rng: np.random.Generator) -> SourceTable:
    """A diagnosis sample per patient, then the germline sample of GRAALL patients."""
    n = truth.height
    assay, version, assembly, pipeline = ASSAY
    base = truth.select(
        "trial_group",
        "source_patient_id",
        "dx_sample_id",
        "gl_sample_id",
        order=pl.int_range(pl.len()),
        blood=pl.Series(rng.random(n) < PB_SHARE),
        no_day=pl.Series(rng.random(n) < DX_DAY_MISSING_SHARE),
        germline_day=pl.Series(rng.integers(GERMLINE_DAYS[0], GERMLINE_DAYS[1] + 1, size=n)),
    )
    diagnosis = base.with_columns(
        kind=pl.lit(0),
        sample_key=pl.col("dx_sample_id"),
        sample_type=pl.lit("diagnosis"),
        tissue=pl.when(pl.col("blood")).then(pl.lit("PB")).otherwise(pl.lit("BM")),
        collection_day=pl.when(pl.col("no_day")).then(None).otherwise(pl.lit(0)),
    )
    germline = base.filter(pl.col("gl_sample_id").is_not_null()).with_columns(
        kind=pl.lit(1),
        sample_key=pl.col("gl_sample_id"),
        sample_type=pl.lit("germline"),
        tissue=pl.lit("PB"),
        collection_day=pl.col("germline_day"),
    )
    rows = (
        pl.concat([diagnosis, germline], how="vertical_relaxed")
        .sort("order", "kind")
        .with_columns(
            assay_name=pl.lit(assay),
            assay_version=pl.lit(version),
            assembly=pl.lit(assembly),
            pipeline_version=pl.lit(pipeline),
        )
    )
    layout = load_layout("samples")
    return SourceTable(layout, _layout_frame(layout, rows))


def _exon_span(gene: str, first: IntArray, last: IntArray) -> tuple[IntArray, IntArray]:
    """GRCh37 start and end of exons first..last of a gene."""
    exons = np.array(gene_models()[gene].exons)
    lo = np.minimum(exons[first - 1, 0], exons[last - 1, 0])
    hi = np.maximum(exons[first - 1, 1], exons[last - 1, 1])
    return lo, hi


@dataclass(frozen=True)
class _Call:
    gene: str
    call: str
    method: str
    ratio: tuple[float, float]
    copy_number: str | None
    genomic: bool  # with assembly, chrom, start and end (MLPA probes and the CDKN2A calls have none)


def _cnv_rows(
    rng: np.random.Generator, call: _Call, who: pl.DataFrame, first: IntArray, last: IntArray, rank: int
) -> pl.DataFrame:
    """One call per patient of `who` (canonical cnv fields, plus order and rank for sorting)."""
    start, end = _exon_span(call.gene, first, last) if call.genomic else (None, None)
    chrom = gene_models()[call.gene].chrom if call.genomic else None
    return who.select(
        "order",
        rank=pl.lit(rank),
        sample_key="dx_sample_id",
        gene_symbol=pl.lit(call.gene),
        first_exon=pl.Series(first, dtype=pl.Int64),
        last_exon=pl.Series(last, dtype=pl.Int64),
        assembly=pl.lit(ASSEMBLY if call.genomic else None, dtype=pl.String),
        chrom=pl.lit(chrom, dtype=pl.String),
        start=pl.Series(start, dtype=pl.Int64) if start is not None else pl.lit(None, dtype=pl.Int64),
        end=pl.Series(end, dtype=pl.Int64) if end is not None else pl.lit(None, dtype=pl.Int64),
        call_type=pl.lit(call.call),
        copy_number=pl.lit(call.copy_number, dtype=pl.String),
        ratio=pl.Series(np.round(rng.uniform(*call.ratio, who.height), 2), dtype=pl.Float64),
        method=pl.lit(call.method),
    )


IKZF1_CALLS = (
    _Call("IKZF1", "deletion", "NGS", (0.44, 0.56), "1", True),
    _Call("IKZF1", "deletion", "MLPA", (0.4, 0.6), None, False),  # confirmation of the NGS call
    _Call("IKZF1", "deletion", "aCGH", (0.47, 0.57), None, True),
)
PTEN_CALLS = (
    _Call("PTEN", "deletion", "NGS", (0.44, 0.56), "1", True),
    _Call("PTEN", "deletion", "MLPA", (0.4, 0.6), None, False),
)
CDKN2A_CALL = _Call("CDKN2A", "homdel", "NGS", (0.02, 0.12), "0", False)


def cnv_table(truth: pl.DataFrame, rng: np.random.Generator) -> SourceTable:
    """IKZF1 deletions (NGS + MLPA, a third also aCGH), PTEN deletions (NGS, half MLPA), CDKN2A homdels."""
    layout = load_layout("cnv")
    ordered = truth.with_row_index("order")
    frames = []
    ikzf1 = ordered.filter(pl.col("ikzf1_deletion_class").is_not_null())
    first = ikzf1["ikzf1_deletion_first_exon"].to_numpy().astype(np.int64)
    last = ikzf1["ikzf1_deletion_last_exon"].to_numpy().astype(np.int64)
    acgh = rng.random(ikzf1.height) < ACGH_IKZF1_SHARE
    for rank, (call, keep) in enumerate(zip(IKZF1_CALLS, (None, None, acgh), strict=True)):
        mask = np.ones(ikzf1.height, dtype=np.bool_) if keep is None else keep
        frames.append(_cnv_rows(rng, call, ikzf1.filter(pl.Series(mask)), first[mask], last[mask], rank))
    pten = ordered.filter(pl.col("pten_del"))
    spans = np.array(PTEN_DELETIONS)[rng.integers(0, len(PTEN_DELETIONS), size=pten.height)]
    mlpa = rng.random(pten.height) < MLPA_PTEN_SHARE
    for rank, (call, mask) in enumerate(
        zip(PTEN_CALLS, (np.ones(pten.height, dtype=np.bool_), mlpa), strict=True)
    ):
        frames.append(
            _cnv_rows(rng, call, pten.filter(pl.Series(mask)), spans[mask, 0], spans[mask, 1], 3 + rank)
        )
    cdkn2a = ordered.filter(pl.Series(rng.random(truth.height) < CDKN2A_HOMDEL_SHARE))
    ones = np.ones(cdkn2a.height, dtype=np.int64)
    frames.append(_cnv_rows(rng, CDKN2A_CALL, cdkn2a, ones, 3 * ones, 5))
    return SourceTable(layout, _layout_frame(layout, pl.concat(frames).sort("order", "rank")))


def _segment(sample: str, chrom: str, start: int, end: int, mean: float, rng: np.random.Generator) -> tuple:
    marks = max(5, (end - start) // MARKER_SPACING + int(rng.integers(-3, 4)))
    return sample, chrom, start, end, marks, round(mean, 4)


def seg_text(truth: pl.DataFrame, rng: np.random.Generator) -> str:
    """aCGH segments of a quarter of the GRAALL diagnosis samples, most IKZF1-deleted ones among them."""
    graall = truth.with_row_index("order").filter(pl.col("trial_group") == "GRAALL")
    is_deleted = graall["ikzf1_deletion_class"].is_not_null().to_numpy()
    deleted, others = np.flatnonzero(is_deleted), np.flatnonzero(~is_deleted)
    n_deleted = math.ceil(SEG_DELETED_SHARE * len(deleted))
    n_others = min(len(others), max(0, round(SEG_SHARE * graall.height) - n_deleted))
    chosen = np.sort(np.concatenate([rng.choice(deleted, n_deleted, replace=False),
                                     rng.choice(others, n_others, replace=False)]))  # fmt: skip
    ikzf1 = gene_models()["IKZF1"].exons
    chr7 = CONTIGS["7"]
    rows = []
    for row in graall[chosen].iter_rows(named=True):
        sample = row["dx_sample_id"]

        def neutral() -> float:
            return float(np.clip(rng.normal(0, SEG_NEUTRAL_SD), -0.1, 0.1))

        if row["ikzf1_deletion_class"] is not None:
            start = ikzf1[row["ikzf1_deletion_first_exon"] - 1][0]
            end = ikzf1[row["ikzf1_deletion_last_exon"] - 1][1]
            loss = float(rng.uniform(*SEG_DELETION_MEAN))
            rows.append(_segment(sample, "7", 1, start - 1, neutral(), rng))
            rows.append(_segment(sample, "7", start, end, loss, rng))
            rows.append(_segment(sample, "7", end + 1, CHR7_CENTROMERE, neutral(), rng))
        else:
            rows.append(_segment(sample, "7", 1, CHR7_CENTROMERE, neutral(), rng))
        rows.append(_segment(sample, "7", CHR7_CENTROMERE + 1, chr7, neutral(), rng))
        # A few other chromosomes, neutral or gained (whole or from a breakpoint on).
        for chrom in rng.choice(
            [c for c in CONTIGS if c != "7"], size=int(rng.integers(2, 4)), replace=False
        ):
            length = CONTIGS[str(chrom)]
            if rng.random() < 0.3:
                cut = int(rng.integers(length // 4, 3 * length // 4))
                gain = float(rng.uniform(*SEG_GAIN_MEAN))
                rows.append(_segment(sample, str(chrom), 1, cut, neutral(), rng))
                rows.append(_segment(sample, str(chrom), cut + 1, length, gain, rng))
            else:
                rows.append(_segment(sample, str(chrom), 1, length, neutral(), rng))
    frame = pl.DataFrame(rows, schema=SEG_SCHEMA, orient="row").sort(
        "ID", pl.col("chrom").replace_strict(CONTIG_INDEX, return_dtype=pl.Int32), "loc.start"
    )
    return frame.write_csv(separator="\t", line_terminator="\n", quote_style="never", float_precision=4)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    names = ("samples", "calls", "vcf", "cnv", "seg", "mrd", "dirty")
    children = np.random.SeedSequence(seed, spawn_key=(GENOMIC_SPAWN_KEY,)).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children, strict=True)}


def write_genomic_files(out_dir: Path, truth: pl.DataFrame, seed: int) -> Genomics:
    """Write samples, VCFs, MAF, copy-number calls and segments; return the truth with sample ids."""
    rng = _streams(seed)
    truth = add_sample_ids(truth, rng["samples"])
    decoys = ikzf1_decoy_patients(rng["calls"], truth)
    other_missense = np.zeros(truth.height, dtype=np.bool_)
    other_missense[decoys["other_missense"]] = True
    truth = truth.with_columns(ikzf1_other_missense=pl.Series(other_missense))
    files = {
        "samples": out_dir / SAMPLES_FILE,
        "vcf": out_dir / VCF_DIR,
        "maf": out_dir / MAF_FILE,
        "cnv": out_dir / CNV_FILE,
        "seg": out_dir / SEG_FILE,
    }
    write_table(samples_table(truth, rng["samples"]), files["samples"])

    calls = simulate_calls(truth, decoys, rng["calls"])
    # GRAALL patients in id order, BATCH_PATIENTS per VCF, a tumor then a germline column each.
    ids = truth.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("patient"),
        "dx_sample_id",
        "gl_sample_id",
        rank=(pl.col("trial_group") == "GRAALL").cast(pl.Int64).cum_sum() - 1,
    )
    located = calls.calls.join(ids, on="patient", how="left").with_columns(
        sample_id=pl.when(pl.col("tumor")).then(pl.col("dx_sample_id")).otherwise(pl.col("gl_sample_id")),
        batch=pl.col("rank") // BATCH_PATIENTS,
        col=2 * (pl.col("rank") % BATCH_PATIENTS) + pl.when(pl.col("tumor")).then(0).otherwise(1),
    )
    graall = truth.filter(pl.col("trial_group") == "GRAALL")
    pairs = [s for dx, gl in graall.select("dx_sample_id", "gl_sample_id").iter_rows() for s in (dx, gl)]
    per_batch = 2 * BATCH_PATIENTS
    batch_samples = [pairs[i : i + per_batch] for i in range(0, len(pairs), per_batch)]
    vcf_paths = write_vcfs(
        files["vcf"],
        located.filter(pl.col("trial_group") == "GRAALL"),
        allele_csq(calls.alleles),
        batch_samples,
        rng["vcf"],
    )
    write_maf(files["maf"], located.filter(pl.col("trial_group") == "FRALLE"), calls.alleles)
    write_table(cnv_table(truth, rng["cnv"]), files["cnv"])
    files["seg"].write_text(seg_text(truth, rng["seg"]), encoding="utf-8")
    return Genomics(truth, files, vcf_paths, rng["mrd"], rng["dirty"])
