"""MAF ETL (GDC / cBioPortal `data_mutations` columns): somatic calls into the same tables as VCFs.

A MAF lists retained somatic calls, one row per sample and variant, with the annotation of one
transcript. Only the core GDC columns are required; optional ones (Transcript_ID, HGVSp_Short,
t_depth, FILTER, ...) are used when present. Rows of samples missing from the manifest are quarantined.
"""

from __future__ import annotations

import gzip
import io
import itertools
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandera.polars as pa
import polars as pl

from etl.errors import FileRejected, one_line
from etl.load.framework import Batch, LoadContext, SourceLoader
from etl.load.linking import known_samples, unknown_sample_issues
from etl.load.readers import LINE, reject_cr_only_line_ends, reject_duplicated_columns
from etl.load.transform import issues_where
from etl.load.validation import schema_issues
from etl.sources.variants import (
    ALLELE_PATTERN,
    VariantStage,
    annotation_rows,
    normalise_chrom,
    reference_transcripts,
)

BATCH_ROWS = 250_000  # rows transformed and validated at a time
REQUIRED = [
    "Hugo_Symbol", "Chromosome", "Start_Position", "Reference_Allele", "Tumor_Seq_Allele2",
    "Tumor_Sample_Barcode", "Variant_Classification",
]  # fmt: skip
# MAF Variant_Classification -> Sequence Ontology term and impact, when the MAF has no Consequence column.
CLASSIFICATION = {
    "Missense_Mutation": ("missense_variant", "MODERATE"),
    "Nonsense_Mutation": ("stop_gained", "HIGH"),
    "Nonstop_Mutation": ("stop_lost", "HIGH"),
    "Frame_Shift_Del": ("frameshift_variant", "HIGH"),
    "Frame_Shift_Ins": ("frameshift_variant", "HIGH"),
    "In_Frame_Del": ("inframe_deletion", "MODERATE"),
    "In_Frame_Ins": ("inframe_insertion", "MODERATE"),
    "Splice_Site": ("splice_region_variant", "HIGH"),
    "Translation_Start_Site": ("start_lost", "HIGH"),
    "Silent": ("synonymous_variant", "LOW"),
    "Intron": ("intron_variant", "MODIFIER"),
    "3'UTR": ("3_prime_UTR_variant", "MODIFIER"),
    "5'UTR": ("5_prime_UTR_variant", "MODIFIER"),
    "3'Flank": ("downstream_gene_variant", "MODIFIER"),
    "5'Flank": ("upstream_gene_variant", "MODIFIER"),
    "IGR": ("intergenic_variant", "MODIFIER"),
    "RNA": ("non_coding_transcript_exon_variant", "MODIFIER"),
}
BUILDS = {
    "37": "GRCh37",
    "GRCh37": "GRCh37",
    "hg19": "GRCh37",
    "38": "GRCh38",
    "GRCh38": "GRCh38",
    "hg38": "GRCh38",
}


class MafRowV1(pa.DataFrameModel):
    chrom: str
    pos: int = pa.Field(ge=1)
    ref: str = pa.Field(str_matches=ALLELE_PATTERN)
    alt: str = pa.Field(str_matches=ALLELE_PATTERN)
    assembly: str = pa.Field(isin=["GRCh37", "GRCh38"])
    vaf: float = pa.Field(nullable=True, ge=0, le=1)
    depth: int = pa.Field(nullable=True, ge=0)
    alt_depth: int = pa.Field(nullable=True, ge=0)

    class Config:
        strict = False


SOURCE_COLUMNS = {
    "chrom": "Chromosome", "pos": "Start_Position", "ref": "Reference_Allele", "alt": "Tumor_Seq_Allele2",
    "assembly": "NCBI_Build", "vaf": "t_alt_count", "depth": "t_depth", "alt_depth": "t_alt_count",
}  # fmt: skip


def _column(frame: pl.DataFrame, *names: str) -> pl.Expr:
    """The first of `names` the MAF has (empty cells as NULL), else NULL."""
    for name in names:
        if name in frame.columns:
            return pl.col(name).replace("", None)
    return pl.lit(None, pl.String)


def read_maf(path: Path) -> pl.DataFrame:
    """All columns as text, with the line of each row (comment lines such as '#version 2.4' skipped).

    A plain file is handed to polars by path (read in place, not copied into a Python bytes object first):
    a million-patient MAF is 0.7 GB of text."""
    reject_cr_only_line_ends(path)
    try:
        with open(path, "rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
        data: bytes | None = gzip.decompress(path.read_bytes()) if gzipped else None
        comments = _leading_comment_lines(path, data)
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a damaged deflate stream
        raise FileRejected(path, f"unreadable or truncated file: {one_line(exc)}") from exc
    try:
        frame = pl.read_csv(
            data if data is not None else path,
            separator="\t",
            comment_prefix="#",
            infer_schema=False,
            quote_char=None,
            raise_if_empty=True,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise FileRejected(path, f"not a tab-separated MAF: {one_line(exc)}") from exc
    reject_duplicated_columns(path, frame)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise FileRejected(path, f"missing MAF columns: {', '.join(missing)}")
    if frame.is_empty():
        raise FileRejected(path, "the MAF has a header but no rows")
    # Line numbers: the header follows the comment lines; blank lines do not occur inside a MAF.
    return frame.with_row_index(LINE, offset=comments + 2).with_columns(pl.col(LINE).cast(pl.Int64))


def _leading_comment_lines(path: Path, data: bytes | None) -> int:
    with io.BytesIO(data) if data is not None else open(path, "rb") as handle:
        return sum(1 for _ in itertools.takewhile(lambda line: line.startswith(b"#"), handle))


class MafLoader(SourceLoader):
    kind = "maf"

    def __init__(self, assembly: str | None = None, pass_only: bool = False) -> None:
        self.layout_name = "maf"
        self.assembly_option = assembly
        self.pass_only = pass_only
        self.stage = VariantStage()

    def batches(self, path: Path) -> Iterator[Batch]:
        # Transformed and validated in slices: the whole file's records, issues and Arrow copies at once
        # took 5 GiB for a million-patient MAF. Calls are merged in `finish`, so a sample may span slices.
        whole = read_maf(path)
        for start in range(0, whole.height, BATCH_ROWS):
            yield self._batch(whole.slice(start, BATCH_ROWS))

    def _batch(self, raw: pl.DataFrame) -> Batch:
        build_text = _column(raw, "NCBI_Build")
        build = build_text.replace_strict(BUILDS, default=build_text)  # unknown builds fail the schema
        ref = pl.col("Reference_Allele")
        alt = (
            pl.when(pl.col("Tumor_Seq_Allele2") == ref)
            .then(_column(raw, "Tumor_Seq_Allele1"))
            .otherwise(pl.col("Tumor_Seq_Allele2"))
        )
        depth = _column(raw, "t_depth").cast(pl.Int64, strict=False)
        alt_depth = _column(raw, "t_alt_count").cast(pl.Int64, strict=False)
        wu_vaf = _column(raw, "i_TumorVAF_WU").cast(pl.Float64, strict=False) / 100
        classification = pl.col("Variant_Classification").replace_strict(
            {k: v[0] for k, v in CLASSIFICATION.items()}, default=None
        )
        impact = pl.col("Variant_Classification").replace_strict(
            {k: v[1] for k, v in CLASSIFICATION.items()}, default=None
        )
        short = _column(raw, "HGVSp_Short", "Protein_Change")
        records = raw.select(
            LINE,
            pl.col("Tumor_Sample_Barcode").alias("sample_key"),
            (pl.lit(self.assembly_option) if self.assembly_option else build).alias("assembly"),
            normalise_chrom(pl.col("Chromosome")).alias("chrom"),
            pl.col("Start_Position").cast(pl.Int64, strict=False).alias("pos"),
            ref.str.to_uppercase().alias("ref"),
            alt.str.to_uppercase().alias("alt"),
            pl.coalesce(_column(raw, "FILTER"), pl.lit("PASS")).alias("filter"),
            depth.alias("depth"),
            alt_depth.alias("alt_depth"),
            pl.coalesce(pl.when(depth > 0).then(alt_depth / depth), wu_vaf).round(6).alias("vaf"),
            pl.col("Hugo_Symbol").alias("gene_symbol"),
            pl.coalesce(
                _column(raw, "Transcript_ID", "i_transcript_name", "RefSeq"),
                pl.col("Hugo_Symbol") + ":unspecified",
            ).alias("transcript_accession"),
            pl.coalesce(_column(raw, "Consequence"), classification).alias("consequence"),
            pl.coalesce(_column(raw, "IMPACT"), impact).alias("impact"),
            _column(raw, "HGVSc").alias("hgvsc"),
            pl.coalesce(_column(raw, "HGVSp"), short).alias("hgvsp"),
            _column(raw, "Exon_Number").alias("exon"),
            pl.coalesce(_column(raw, "Protein_position"), short.str.extract(r"(\d+)", 1)).alias(
                "protein_position"
            ),
            pl.coalesce(
                _column(raw, "Amino_acids"),
                short.str.extract(r"^p\.([A-Z*])\d+([A-Z*])$", 1)
                + "/"
                + short.str.extract(r"^p\.([A-Z*])\d+([A-Z*])$", 2),
            ).alias("amino_acids"),
            _column(raw, "CANONICAL").alias("canonical"),
            _column(raw, "MANE_SELECT", "MANE").alias("mane_select"),
        )
        issues = schema_issues(records, raw, MafRowV1, lambda field: SOURCE_COLUMNS.get(field, field))
        return Batch(raw=raw, records=records, issues=issues)

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        keys = batch.records.get_column("sample_key").drop_nulls().unique().to_list()
        known = known_samples(con, keys)
        records = batch.records.join(known, on="sample_key", how="left")
        wrong_build = pl.col("assay_assembly").is_not_null() & (
            pl.col("assay_assembly") != pl.col("assembly")
        )
        return pl.concat(
            [
                unknown_sample_issues(records, "Tumor_Sample_Barcode"),
                issues_where(
                    records, wrong_build, "NCBI_Build", pl.col("assembly"), "assay_assembly",
                    pl.format("the sample's assay is on {}, the MAF row on {}", pl.col("assay_assembly"),
                              pl.col("assembly")),
                ),
            ]
        )  # fmt: skip

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        self.stage.create(con)
        keys = batch.records.get_column("sample_key").unique().to_list()
        records = batch.records.join(
            known_samples(con, keys).select("sample_key", "sample_id"), on="sample_key"
        )
        if self.pass_only:
            records = records.filter(pl.col("filter") == "PASS")
        self.stage.append(
            con, VariantStage.VARIANTS, records.select("assembly", "chrom", "pos", "ref", "alt")
        )
        annotations = annotation_rows(records, "MAF", reference_transcripts(con))
        self.stage.append(con, VariantStage.ANNOTATIONS, annotations.drop(LINE))
        calls = records.select(
            "assembly", "chrom", "pos", "ref", "alt", "sample_id", pl.lit(None, pl.String).alias("genotype"),
            "vaf", "depth", "alt_depth", "filter", pl.col(LINE).alias("source_line"),
        )  # fmt: skip
        self.stage.append(con, VariantStage.CALLS, calls)
        return {}

    def finish(self, con: duckdb.DuckDBPyConnection, ctx: LoadContext) -> dict[str, Any]:
        self.stage.create(con)
        return self.stage.merge(con, ctx.run_id, ctx.source_file_id)
