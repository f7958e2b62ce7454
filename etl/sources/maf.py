"""MAF ETL (GDC / cBioPortal `data_mutations` columns): somatic calls into the same tables as VCFs.

A MAF lists retained somatic calls, one row per sample and variant, with the annotation of one
transcript. Only the core GDC columns are required; optional ones (Transcript_ID, HGVSp_Short,
t_depth, FILTER, ...) are used when present. Rows of samples missing from the manifest are quarantined;
rows of samples of purged patients are left out with a warning.

Decisions: Variant_Classification must be one of the GDC / cBioPortal values (`CLASSIFICATION`), and gives
the consequence when the MAF has no Consequence column. A MAF without a FILTER column lists the calls its
producer kept (the MAF convention): they are PASS; an empty cell of a FILTER column says nothing, so it is
stored '.' (as VCF writes "no filter status"), never PASS. NCBI_Build and --assembly must agree: the option
only fills empty builds. A line with fewer fields than the header is quarantined; a short last line with no
final newline is a file cut in transfer and is refused. Blank lines at the end are ignored.
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
from etl.load.transform import ISSUE_SCHEMA, issues_where, quoted
from etl.load.validation import schema_issues
from etl.sources.variants import (
    ALLELE_PATTERN,
    VariantStage,
    annotation_rows,
    blank_line_message,
    normalise_chrom,
    plural,
    purged_samples,
    purged_warning,
    reference_transcripts,
    refuse_other_assembly,
    variant_text,
)

BATCH_ROWS = 250_000  # rows transformed and validated at a time
REQUIRED = [
    "Hugo_Symbol", "Chromosome", "Start_Position", "Reference_Allele", "Tumor_Seq_Allele2",
    "Tumor_Sample_Barcode", "Variant_Classification",
]  # fmt: skip
# The GDC / cBioPortal Variant_Classification values -> the Sequence Ontology term and impact VEP would give
# (vcf2maf's mapping read backwards), used when the MAF has no Consequence column. Targeted_Region is what
# vcf2maf writes for any other term: SO's root term says no more. Unknown gives no consequence.
CLASSIFICATION: dict[str, tuple[str | None, str | None]] = {
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
    "Splice_Region": ("splice_region_variant", "LOW"),
    "De_novo_Start_InFrame": ("5_prime_UTR_premature_start_codon_gain_variant", "MODIFIER"),
    "De_novo_Start_OutOfFrame": ("5_prime_UTR_premature_start_codon_gain_variant", "MODIFIER"),
    "Targeted_Region": ("sequence_variant", "MODIFIER"),
    "Unknown": (None, None),
}
ALLOWED_CLASSIFICATIONS = ", ".join(CLASSIFICATION)
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


def read_maf(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All columns as text, with the line of each row (comment lines such as '#version 2.4' skipped), and
    the issues of lines that are not rows of the header's shape (`line_shape_issues`).

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
    # Line numbers: the header follows the comment lines; a blank line is read as a row of NULLs.
    frame = frame.with_row_index(LINE, offset=comments + 2).with_columns(pl.col(LINE).cast(pl.Int64))
    frame, issues = line_shape_issues(path, data, frame)
    if frame.is_empty():
        raise FileRejected(path, "the MAF has a header but no rows")
    return frame, issues


def _leading_comment_lines(path: Path, data: bytes | None) -> int:
    with io.BytesIO(data) if data is not None else open(path, "rb") as handle:
        return sum(1 for _ in itertools.takewhile(lambda line: line.startswith(b"#"), handle))


def line_shape_issues(
    path: Path, data: bytes | None, frame: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """polars pads a line with fewer fields than the header with NULLs and reads a blank line as a row of
    NULLs. Count the fields of the lines that may be either (their last column is NULL): a short line is
    quarantined (rule fields), a blank one too (rule blank_line) unless only blank lines follow it (then it
    is dropped), and a short last line with no final newline refuses the file: it was cut in transfer.
    Returns the frame without its trailing blank lines, and the issues."""
    header = [c for c in frame.columns if c != LINE]
    suspects = set(frame.filter(pl.col(header[-1]).is_null()).get_column(LINE).to_list())
    if not suspects:
        return frame, pl.DataFrame(schema=ISSUE_SCHEMA)
    counts = _field_counts(path, data, suspects)
    blank = [line for line, fields in counts.items() if fields == 0]
    last = int(frame.filter(~pl.col(LINE).is_in(blank)).get_column(LINE).max() or 0)  # type: ignore[arg-type]
    frame = frame.filter(pl.col(LINE) <= last)
    short = {line: fields for line, fields in counts.items() if 0 < fields < len(header)}
    shape = "line {} has {} fields, the header has " + str(len(header))
    if last in short and not _ends_with_newline(path, data):
        raise FileRejected(
            path, shape.format(last, short[last]) + ": the file ends inside this line (cut in transfer?)"
        )
    rows: list[tuple[int, str | None, None, str, str]] = [
        (line, header[n], None, "fields", shape.format(line, n)) for line, n in short.items()
    ]
    rows += [(n, None, None, "blank_line", blank_line_message(n, "MAF")) for n in blank if n < last]
    return frame, pl.DataFrame(rows, schema=ISSUE_SCHEMA, orient="row").sort(LINE)


def _field_counts(path: Path, data: bytes | None, lines: set[int]) -> dict[int, int]:
    """The number of tab-separated fields of each of `lines` (0 for a blank line)."""
    counts = {}
    with io.BytesIO(data) if data is not None else open(path, "rb") as handle:
        for number, text in enumerate(handle, start=1):
            if number in lines:
                text = text.rstrip(b"\r\n")
                counts[number] = text.count(b"\t") + 1 if text.strip() else 0
                if len(counts) == len(lines):
                    break
    return counts


def _ends_with_newline(path: Path, data: bytes | None) -> bool:
    if data is not None:
        return data.endswith(b"\n")
    with open(path, "rb") as handle:
        handle.seek(-1, io.SEEK_END)
        return handle.read(1) == b"\n"


class MafLoader(SourceLoader):
    kind = "maf"

    def __init__(self, assembly: str | None = None, pass_only: bool = False) -> None:
        self.layout_name = "maf"
        self.assembly_option = assembly
        self.pass_only = pass_only
        self.stage = VariantStage()

    def prepare(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        """Read the file; leave out the rows of purged patients' samples; check NCBI_Build against
        --assembly (file-level problems: before anything is written)."""
        whole, self.line_issues = read_maf(path)
        barcode = pl.col("Tumor_Sample_Barcode")
        purged = purged_samples(con, whole.get_column("Tumor_Sample_Barcode").drop_nulls().unique().to_list())
        if purged:
            dropped = whole.filter(barcode.is_in(list(purged))).get_column(LINE)
            whole = whole.filter(~barcode.is_in(list(purged)).fill_null(False))
            self.line_issues = self.line_issues.filter(~pl.col(LINE).is_in(dropped.implode()))
            what = f"{plural(dropped.len(), 'row')} of {plural(len(purged), 'sample')}"
            self.warnings.append(purged_warning(what, dropped.len()))
        self._check_build(path, whole)
        self.whole = whole

    def _check_build(self, path: Path, whole: pl.DataFrame) -> None:
        if self.assembly_option is None or "NCBI_Build" not in whole.columns:
            return
        named = pl.col("NCBI_Build").replace_strict(BUILDS, default=None, return_dtype=pl.String)
        other = whole.select(LINE, "NCBI_Build", named.alias("named")).filter(
            pl.col("named").is_not_null() & (pl.col("named") != self.assembly_option)
        )
        if other.height:
            line, text, assembly = other.row(0)
            refuse_other_assembly(
                path, [("--assembly", self.assembly_option), (f"NCBI_Build {text!r} (line {line})", assembly)]
            )

    def batches(self, path: Path) -> Iterator[Batch]:
        # Transformed and validated in slices: the whole file's records, issues and Arrow copies at once
        # took 5 GiB for a million-patient MAF. Calls are merged in `finish`, so a sample may span slices.
        for start in range(0, self.whole.height, BATCH_ROWS):
            yield self._batch(self.whole.slice(start, BATCH_ROWS))

    def _batch(self, raw: pl.DataFrame) -> Batch:
        line_issues = self.line_issues.join(raw.select(LINE), on=LINE, how="semi")
        blank = line_issues.filter(pl.col("rule") == "blank_line").get_column(LINE)
        rows = raw.filter(~pl.col(LINE).is_in(blank.implode()))  # blank lines are counted, not read
        build_text = _column(rows, "NCBI_Build")
        build = build_text.replace_strict(BUILDS, default=build_text)  # unknown builds fail the schema
        # Bases are case-insensitive: stored upper case.
        ref = pl.col("Reference_Allele").str.to_uppercase()
        allele2 = pl.col("Tumor_Seq_Allele2").str.to_uppercase()
        alt = (
            pl.when(allele2 == ref)
            .then(_column(rows, "Tumor_Seq_Allele1").str.to_uppercase())
            .otherwise(allele2)
        )
        depth = _column(rows, "t_depth").cast(pl.Int64, strict=False)
        alt_depth = _column(rows, "t_alt_count").cast(pl.Int64, strict=False)
        wu_vaf = _column(rows, "i_TumorVAF_WU").cast(pl.Float64, strict=False) / 100
        given = pl.col("Variant_Classification").str.to_uppercase()
        classification, impact = (
            given.replace_strict({k.upper(): v[i] for k, v in CLASSIFICATION.items()}, default=None,
                                 return_dtype=pl.String)
            for i in (0, 1)
        )  # fmt: skip
        short = _column(rows, "HGVSp_Short", "Protein_Change")
        records = rows.select(
            LINE,
            pl.col("Tumor_Sample_Barcode").alias("sample_key"),
            pl.coalesce(build, pl.lit(self.assembly_option, pl.String)).alias("assembly"),
            normalise_chrom(pl.col("Chromosome")).alias("chrom"),
            pl.col("Start_Position").cast(pl.Int64, strict=False).alias("pos"),
            ref.alias("ref"),
            alt.alias("alt"),
            (_column(rows, "FILTER").fill_null(".") if "FILTER" in rows.columns else pl.lit("PASS")).alias(
                "filter"
            ),
            depth.alias("depth"),
            alt_depth.alias("alt_depth"),
            pl.coalesce(pl.when(depth > 0).then(alt_depth / depth), wu_vaf).round(6).alias("vaf"),
            pl.col("Hugo_Symbol").alias("gene_symbol"),
            pl.coalesce(
                _column(rows, "Transcript_ID", "i_transcript_name", "RefSeq"),
                pl.col("Hugo_Symbol") + ":unspecified",
            ).alias("transcript_accession"),
            pl.coalesce(_column(rows, "Consequence"), classification).alias("consequence"),
            pl.coalesce(_column(rows, "IMPACT"), impact).alias("impact"),
            _column(rows, "HGVSc").alias("hgvsc"),
            pl.coalesce(_column(rows, "HGVSp"), short).alias("hgvsp"),
            _column(rows, "Exon_Number").alias("exon"),
            pl.coalesce(_column(rows, "Protein_position"), short.str.extract(r"(\d+)", 1)).alias(
                "protein_position"
            ),
            pl.coalesce(
                _column(rows, "Amino_acids"),
                short.str.extract(r"^p\.([A-Z*])\d+([A-Z*])$", 1)
                + "/"
                + short.str.extract(r"^p\.([A-Z*])\d+([A-Z*])$", 2),
            ).alias("amino_acids"),
            _column(rows, "CANONICAL").alias("canonical"),
            _column(rows, "MANE_SELECT", "MANE").alias("mane_select"),
        )
        written = pl.col("Variant_Classification")
        outside = ~given.is_in([k.upper() for k in CLASSIFICATION]).fill_null(False)
        unknown_class = issues_where(
            rows, outside, "Variant_Classification", written, "code:Variant_Classification",
            pl.when(written.is_null()).then(pl.lit("Variant_Classification is empty"))
            .otherwise(pl.format("'{}' is not a Variant_Classification code", quoted(written)))
            + f" (allowed: the GDC / cBioPortal values {ALLOWED_CLASSIFICATIONS})",
        )  # fmt: skip
        checked = schema_issues(records, rows, MafRowV1, lambda field: SOURCE_COLUMNS.get(field, field))
        return Batch(raw=raw, records=records, issues=pl.concat([line_issues, unknown_class, checked]))

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        keys = batch.records.get_column("sample_key").drop_nulls().unique().to_list()
        known = known_samples(con, keys)
        records = batch.records.join(known, on="sample_key", how="left")
        wrong_build = pl.col("assay_assembly").is_not_null() & (
            pl.col("assay_assembly") != pl.col("assembly")
        )
        found = pl.concat(
            [
                unknown_sample_issues(records, "Tumor_Sample_Barcode"),
                issues_where(
                    records, wrong_build, "NCBI_Build", pl.col("assembly"), "assay_assembly",
                    pl.format("the sample's assay is on {}, the MAF row on {}", pl.col("assay_assembly"),
                              pl.col("assembly")),
                ),
            ]
        )  # fmt: skip
        rejected = pl.concat([batch.issues.get_column(LINE), found.get_column(LINE)])
        duplicates = self.stage.duplicate_issues(
            con, batch.records, rejected, pl.col("sample_key"), "Tumor_Seq_Allele2", pl.col("alt"),
            pl.format("sample {}, variant {}", pl.col("sample_key"), variant_text()),
        )  # fmt: skip
        return pl.concat([found, duplicates])

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        self.stage.create(con)
        self.stage.remember(con, batch.records, pl.col("sample_key"))
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
