"""VCF ETL: small-variant calls with Ensembl VEP (CSQ) and/or SnpEff (ANN) annotations.

Records are parsed by oxbow (noodles, Rust) into Arrow batches, so memory stays bounded whatever the
file size; annotation field order is read from the header's Format description, never assumed.
Multi-allelic records are split; every sample column must be in the sample manifest. A sample carries an
allele when its genotype holds it, or when the genotype does not but reads support it (AD > 0: somatic
callers such as Pindel write 0/0 for tumours); the genotype is stored as written.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandera.polars as pa
import polars as pl
import pyarrow

from etl.errors import CgdwError, FileRejected, one_line
from etl.load.framework import Batch, LoadContext, SourceLoader
from etl.load.linking import known_samples
from etl.load.readers import LINE, reject_cr_only_line_ends
from etl.load.transform import issues_where
from etl.load.validation import schema_issues
from etl.sources.variants import (
    ALLELE_PATTERN,
    VariantStage,
    annotation_rows,
    normalise_chrom,
    reference_transcripts,
    with_minimal_alleles,
)

BATCH_RECORDS = 100_000
FORMAT_FIELDS = ("GT", "AD", "DP", "AF")
# Header field names of each annotation format, for the canonical annotation columns.
CSQ_FIELDS: dict[str, tuple[str, ...]] = {
    "allele": ("Allele",),
    "allele_num": ("ALLELE_NUM",),
    "consequence": ("Consequence",),
    "impact": ("IMPACT",),
    "gene_symbol": ("SYMBOL",),
    "feature_type": ("Feature_type",),
    "transcript_accession": ("Feature",),
    "exon": ("EXON",),
    "hgvsc": ("HGVSc",),
    "hgvsp": ("HGVSp",),
    "protein_position": ("Protein_position",),
    "amino_acids": ("Amino_acids",),
    "canonical": ("CANONICAL",),
    "mane_select": ("MANE_SELECT", "MANE"),
    "given_ref": ("GIVEN_REF",),
    "used_ref": ("USED_REF",),
}
ANN_FIELDS: dict[str, tuple[str, ...]] = {
    "allele": ("Allele",),
    "consequence": ("Annotation",),
    "impact": ("Annotation_Impact",),
    "gene_symbol": ("Gene_Name",),
    "feature_type": ("Feature_Type",),
    "transcript_accession": ("Feature_ID",),
    "exon": ("Rank",),
    "hgvsc": ("HGVS.c",),
    "hgvsp": ("HGVS.p",),
    "protein_position": ("AA.pos / AA.length",),
}
ASSEMBLY_BY_CHR1_LENGTH = {249250621: "GRCh37", 248956422: "GRCh38"}


@dataclass
class VcfHeader:
    lines: int  # header lines, the #CHROM line included: record i (0-based) is on line lines + i + 1
    samples: list[str]
    info: dict[str, str] = field(default_factory=dict)  # INFO id -> Description
    format_ids: set[str] = field(default_factory=set)
    meta: dict[str, str] = field(default_factory=dict)  # ##key=value lines that are not structured
    contigs: dict[str, int] = field(default_factory=dict)

    def annotation_fields(self, info_id: str) -> list[str] | None:
        """Field names of CSQ / ANN, from the Description (VEP: 'Format: A|B', SnpEff: quoted list)."""
        description = self.info.get(info_id)
        if description is None:
            return None
        match = re.search(r"Format: ([^\"]+)", description) or re.search(r"'([^']+)'", description)
        if match is None:
            raise CgdwError(f"the {info_id} header describes no field list: {description[:80]}")
        return [name.strip() for name in match.group(1).split("|")]

    def annotation_source(self, info_id: str) -> str:
        """'VEP v106', 'SnpEff 5.1d', or just the tool when the header does not say its version."""
        tool, meta_key = ("VEP", "VEP") if info_id == "CSQ" else ("SnpEff", "SnpEffVersion")
        version = self.meta.get(meta_key, "").strip('"').split(" ")[0].strip('"')
        return f"{tool} {version}" if version else tool

    def assembly_hint(self) -> str | None:
        reference = self.meta.get("reference", "") + self.meta.get("assembly", "")
        for pattern, assembly in ((r"GRCh37|hg19|b37|hs37", "GRCh37"), (r"GRCh38|hg38", "GRCh38")):
            if re.search(pattern, reference, re.IGNORECASE):
                return assembly
        length = self.contigs.get("1") or self.contigs.get("chr1")
        return ASSEMBLY_BY_CHR1_LENGTH.get(length) if length else None


def locate_bad_record(path: Path, header: VcfHeader) -> str | None:
    """Where a record breaks the VCF grammar (wrong field count, non-numeric POS or depths): run only when
    the parser has failed, to name the line it could not."""
    columns = 8 + (len(header.samples) + 1 if header.samples else 0)
    try:
        return _first_bad_record(path, header, columns)
    except (OSError, EOFError, zlib.error):  # a damaged compressed file: the caller says so
        return None


def _first_bad_record(path: Path, header: VcfHeader, columns: int) -> str | None:
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if number <= header.lines or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != columns:
                return f"line {number}: {len(fields)} fields, the header has {columns}"
            if not fields[1].isdigit():
                return f"line {number}: POS {fields[1]!r} is not a number"
            keys = fields[8].split(":") if header.samples else []
            for value in fields[9:]:
                for key, item in zip(keys, value.split(":"), strict=False):
                    if key in ("AD", "DP") and not re.fullmatch(r"(\d+|\.)(,(\d+|\.))*", item):
                        return f"line {number}: {key} {item!r} is not a list of read counts"
    return None


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_header(path: Path) -> VcfHeader:
    """The header, checked: file-level problems here reject the whole file."""
    reject_cr_only_line_ends(path)
    info: dict[str, str] = {}
    meta: dict[str, str] = {}
    contigs: dict[str, int] = {}
    format_ids: set[str] = set()
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\n")
                if number == 1 and not line.startswith("##fileformat=VCF"):
                    raise FileRejected(
                        path, f"line 1: not a VCF (expected ##fileformat=VCFv4.x, found {line[:40]!r})"
                    )
                if line.startswith("##"):
                    key, _, value = line[2:].partition("=")
                    if value.startswith("<"):
                        if not value.endswith(">"):
                            raise FileRejected(
                                path, f"line {number}: the ##{key} header line is not closed by '>'"
                            )
                        fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,>]*)', value[1:-1]))
                        if key in ("INFO", "FORMAT", "FILTER", "contig") and not fields.get("ID"):
                            raise FileRejected(path, f"line {number}: the ##{key} header line has no ID")
                        if key == "INFO":
                            info[fields.get("ID", "")] = fields.get("Description", "").strip('"')
                        elif key == "FORMAT":
                            format_ids.add(fields.get("ID", ""))
                        elif key == "contig" and fields.get("length", "").isdigit():
                            contigs[fields["ID"]] = int(fields["length"])
                    else:
                        meta[key] = value
                    continue
                if line.startswith("#CHROM"):
                    columns = line[1:].split("\t")
                    fixed = ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
                    if columns[:8] != fixed or (len(columns) > 8 and columns[8] != "FORMAT"):
                        raise FileRejected(path, f"line {number}: malformed #CHROM header line")
                    return VcfHeader(number, columns[9:], info, format_ids, meta, contigs)
                raise FileRejected(path, f"line {number}: data before the #CHROM header line")
    except (EOFError, gzip.BadGzipFile, OSError, zlib.error) as exc:
        raise FileRejected(path, f"unreadable or truncated compressed file: {one_line(exc)}") from exc
    raise FileRejected(path, "no #CHROM header line (empty or truncated file)")


class VcfRecordV1(pa.DataFrameModel):
    """One ALT allele of a VCF record, trimmed (see etl.sources.variants)."""

    chrom: str
    pos: int = pa.Field(ge=1)
    ref: str = pa.Field(str_matches=ALLELE_PATTERN)
    alt: str = pa.Field(str_matches=ALLELE_PATTERN)

    class Config:
        strict = False


class VcfCallV1(pa.DataFrameModel):
    vaf: float = pa.Field(nullable=True, ge=0, le=1)
    depth: int = pa.Field(nullable=True, ge=0)
    alt_depth: int = pa.Field(nullable=True, ge=0)

    class Config:
        strict = False


def _annotations(
    frame: pl.DataFrame, info_id: str, names: list[str], mapping: dict[str, tuple[str, ...]]
) -> pl.DataFrame:
    """One row per (record line, annotation entry) with canonical columns, from a CSQ / ANN list."""
    index = {name: i for i, name in enumerate(names)}
    entries = frame.select(LINE, pl.col("info").struct.field(info_id).alias("entry")).explode("entry")
    entries = entries.filter(pl.col("entry").is_not_null()).with_columns(pl.col("entry").str.split("|"))
    columns = []
    for canonical, candidates in mapping.items():
        position = next((index[c] for c in candidates if c in index), None)
        value = (
            pl.col("entry").list.get(position, null_on_oob=True).str.strip_chars()
            if position is not None
            else pl.lit(None, pl.String)
        )
        columns.append(pl.when(value == "").then(None).otherwise(value).alias(canonical))
    return entries.select(LINE, *columns)


def filter_text(filters: pl.Expr) -> pl.Expr:
    """oxbow gives PASS as an empty list and '.' as NULL; failed filters as their names."""
    return (
        pl.when(filters.is_null())
        .then(pl.lit("."))
        .when(filters.list.len() == 0)
        .then(pl.lit("PASS"))
        .otherwise(filters.list.join(";"))
    )


def _allele_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per ALT allele: line, allele index (1-based), VEP's allele string, trimmed variant key."""
    alleles = (
        frame.select(LINE, "chrom", "pos", "ref", "alt", "filter")
        .with_columns(pl.int_ranges(1, pl.col("alt").list.len() + 1).alias("allele_index"))
        .explode("alt", "allele_index")
    )
    # VEP drops the first base from every allele when they all share it ('-' if nothing is left).
    shared = alleles.group_by(LINE).agg(
        (pl.col("alt").str.slice(0, 1) == pl.col("ref").first().str.slice(0, 1)).all().alias("shared")
    )
    vep = pl.when(pl.col("shared")).then(pl.col("alt").str.slice(1)).otherwise(pl.col("alt"))
    return (
        alleles.join(shared, on=LINE)
        .with_columns(
            pl.when(vep == "").then(pl.lit("-")).otherwise(vep).alias("vep_allele"),
            pl.col("alt").alias("vcf_alt"),
            pl.col("ref").alias("vcf_ref"),
            normalise_chrom(pl.col("chrom")).alias("chrom"),
            filter_text(pl.col("filter")).alias("filter"),
        )
        .drop("shared")
        .pipe(with_minimal_alleles)
    )


class VcfLoader(SourceLoader):
    kind = "vcf"

    def __init__(
        self,
        assembly: str | None = None,
        pass_only: bool = False,
        samples: list[str] | None = None,
        batch_records: int = BATCH_RECORDS,
    ) -> None:
        self.layout_name = "vcf"
        self.assembly_option = assembly
        self.pass_only = pass_only
        self.sample_option = samples
        self.batch_records = batch_records
        self.stage = VariantStage()
        self.skipped_non_pass = 0

    # The loader needs the warehouse before reading (samples, assembly): run_load hands it over here.
    def prepare(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.header = read_header(path)
        self.reference = reference_transcripts(con)
        chosen = self.sample_option if self.sample_option is not None else self.header.samples
        absent = [s for s in chosen if s not in self.header.samples]
        if absent:
            raise FileRejected(path, f"--samples names columns the VCF does not have: {', '.join(absent)}")
        self.samples = known_samples(con, chosen)
        unknown = sorted(set(chosen) - set(self.samples.get_column("sample_key")))
        if unknown:
            raise FileRejected(
                path,
                f"sample columns {', '.join(unknown)} are not in the sample manifest: load the manifest "
                "first, or choose the columns to load with --samples",
            )
        assemblies = set(self.samples.get_column("assay_assembly").drop_nulls())
        hint = self.header.assembly_hint()
        self.assembly = self.assembly_option or (assemblies.pop() if len(assemblies) == 1 else None) or hint
        if self.assembly is None:
            raise FileRejected(path, "cannot tell the genome assembly: pass --assembly GRCh37 or GRCh38")
        if hint and hint != self.assembly:
            raise FileRejected(
                path, f"the header says {hint}, the samples' assay or --assembly says {self.assembly}"
            )
        self.formats: dict[str, tuple[list[str], dict[str, tuple[str, ...]]]] = {}
        for info_id, mapping in (("CSQ", CSQ_FIELDS), ("ANN", ANN_FIELDS)):
            try:
                names = self.header.annotation_fields(info_id)
            except CgdwError as exc:
                raise FileRejected(path, str(exc)) from exc
            if names:
                self.formats[info_id] = (names, mapping)

    def _scanner(self, path: Path) -> Iterator[pl.DataFrame]:
        import oxbow

        with open(path, "rb") as handle:
            compressed = handle.read(2) == b"\x1f\x8b"
        source = oxbow.from_vcf(
            str(path),
            compression="gzip" if compressed else None,
            info_fields=list(self.formats) or None,
            genotype_fields=[f for f in FORMAT_FIELDS if f in self.header.format_ids] or None,
            samples=list(self.samples.get_column("sample_key")) or None,
            batch_size=self.batch_records,
        )
        try:
            for batch in source.batches():
                yield pl.DataFrame(pyarrow.record_batch(batch))
        except (OSError, EOFError, zlib.error) as exc:
            raise FileRejected(path, f"unreadable or truncated file: {one_line(exc)}") from exc
        except Exception as exc:  # oxbow reports malformed records as plain Exceptions, without a line
            reason = str(exc).splitlines()[0].removeprefix("External error: ")
            raise FileRejected(
                path, f"{locate_bad_record(path, self.header) or 'malformed record'}: {reason}"
            ) from exc

    def batches(self, path: Path) -> Iterator[Batch]:
        offset = self.header.lines + 1
        for frame in self._scanner(path):
            frame = frame.with_row_index(LINE, offset=offset).with_columns(pl.col(LINE).cast(pl.Int64))
            offset += frame.height
            if "info" not in frame.columns:
                frame = frame.with_columns(pl.lit(None).alias("info"))
            # The record as written (VCF column names), for quarantine messages and raw_record.
            raw = frame.select(
                LINE,
                pl.col("chrom").cast(pl.String).alias("CHROM"),
                pl.col("pos").alias("POS"),
                pl.col("ref").alias("REF"),
                pl.col("alt").list.join(",").alias("ALT"),
                filter_text(pl.col("filter")).alias("FILTER"),
            )
            alleles = _allele_keys(frame).with_columns(pl.lit(self.assembly).alias("assembly"))
            issues = [schema_issues(alleles, raw, VcfRecordV1, str.upper)]
            annotations = self._annotations(frame, alleles, issues)
            calls = self._calls(frame, alleles)
            issues.append(schema_issues(calls, raw, VcfCallV1, lambda _field: "FORMAT"))
            yield Batch(
                raw=raw,
                records=alleles,
                issues=pl.concat(issues),
                parts={"annotations": annotations, "calls": calls},
            )

    def _annotations(
        self, frame: pl.DataFrame, alleles: pl.DataFrame, issues: list[pl.DataFrame]
    ) -> pl.DataFrame:
        """Annotations matched to their allele; a VEP reference-allele mismatch becomes an issue."""
        parts = []
        for info_id, (names, mapping) in self.formats.items():
            entries = _annotations(frame, info_id, names, mapping)
            if entries.is_empty():
                continue
            if info_id == "CSQ" and "ALLELE_NUM" in names:
                on = [pl.col("allele_num").cast(pl.Int64, strict=False) == pl.col("allele_index")]
            elif info_id == "CSQ":
                on = [pl.col("allele") == pl.col("vep_allele")]
            else:
                on = [pl.col("allele") == pl.col("vcf_alt")]
            matched = entries.join(alleles, on=LINE).filter(*on)
            if info_id == "CSQ" and {"GIVEN_REF", "USED_REF"} <= set(names):
                mismatch = matched.filter(pl.col("given_ref") != pl.col("used_ref")).unique(LINE)
                issues.append(
                    issues_where(
                        mismatch, pl.lit(True), "REF", pl.col("vcf_ref"), "reference_allele",
                        pl.format("REF {} is not the reference genome's {} (VEP GIVEN_REF/USED_REF)",
                                  pl.col("given_ref"), pl.col("used_ref")),
                    )
                )  # fmt: skip
            # Regulatory features and intergenic entries carry no transcript.
            transcripts = matched.filter(
                pl.col("feature_type").str.to_lowercase().fill_null("transcript") == "transcript"
            )
            parts.append(annotation_rows(transcripts, self.header.annotation_source(info_id), self.reference))
        if not parts:
            return pl.DataFrame(schema={LINE: pl.Int64})
        return pl.concat(parts, how="diagonal_relaxed")

    def _calls(self, frame: pl.DataFrame, alleles: pl.DataFrame) -> pl.DataFrame:
        keys = self.samples.get_column("sample_key").to_list()
        if not keys:
            return pl.DataFrame(
                schema={LINE: pl.Int64, "vaf": pl.Float64, "depth": pl.Int64, "alt_depth": pl.Int64}
            )
        # Every sample column has the same FORMAT struct: one long frame, one row per record and sample.
        dtype = frame.schema[keys[0]]
        present = {f.name for f in dtype.fields} if isinstance(dtype, pl.Struct) else set()

        def field(name: str, missing: pl.DataType) -> pl.Expr:
            """A FORMAT field, NULL when the VCF does not declare it."""
            return pl.col("format").struct.field(name) if name in present else pl.lit(None, missing)

        gt_type = pl.Struct({"allele": pl.List(pl.Int32), "phased": pl.List(pl.Boolean)})
        long = (
            frame.select(LINE, *keys)
            .unpivot(on=keys, index=LINE, variable_name="sample_key", value_name="format")
            .join(self.samples.select("sample_key", "sample_id"), on="sample_key")
            .select(
                LINE,
                "sample_id",
                field("GT", gt_type).struct.field("allele").alias("gt_alleles"),
                field("GT", gt_type).struct.field("phased").list.any().fill_null(False).alias("phased"),
                field("AD", pl.List(pl.Int32)).alias("ad"),
                field("DP", pl.Int32()).alias("dp"),
                field("AF", pl.List(pl.Float32)).alias("af"),
            )
        )
        genotypes = long.join(
            alleles.select(LINE, "allele_index", "assembly", "chrom", "pos", "ref", "alt", "filter"), on=LINE
        )
        alt_depth = pl.col("ad").list.get(pl.col("allele_index"), null_on_oob=True).cast(pl.Int64)
        depth = pl.coalesce(pl.col("dp").cast(pl.Int64), pl.col("ad").list.sum().cast(pl.Int64))
        carries = pl.col("gt_alleles").list.contains(pl.col("allele_index")).fill_null(False) | (
            alt_depth.fill_null(0) > 0
        )
        genotype = (
            pl.col("gt_alleles")
            .list.eval(pl.element().cast(pl.String).fill_null("."))
            .list.join(pl.when(pl.col("phased")).then(pl.lit("|")).otherwise(pl.lit("/")))
        )
        vaf = pl.coalesce(
            pl.col("af").list.get(pl.col("allele_index") - 1, null_on_oob=True).cast(pl.Float64),
            pl.when(depth > 0).then(alt_depth / depth),
        )
        calls = genotypes.filter(carries).select(
            LINE, "sample_id", "assembly", "chrom", "pos", "ref", "alt", "filter", genotype.alias("genotype"),
            vaf.round(6).alias("vaf"), depth.alias("depth"), alt_depth.alias("alt_depth"),
        )  # fmt: skip
        if self.pass_only:
            passing = calls.filter(pl.col("filter") == "PASS")
            self.skipped_non_pass += calls.height - passing.height
            calls = passing
        return calls

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        self.stage.create(con)
        variants = batch.records.select("assembly", "chrom", "pos", "ref", "alt")
        self.stage.append(con, VariantStage.VARIANTS, variants)
        annotations = batch.parts["annotations"]
        if annotations.height:
            self.stage.append(con, VariantStage.ANNOTATIONS, annotations.drop(LINE))
        calls = batch.parts["calls"].rename({LINE: "source_line"})
        if calls.height:
            self.stage.append(con, VariantStage.CALLS, calls)
        return {}

    def finish(self, con: duckdb.DuckDBPyConnection, ctx: LoadContext) -> dict[str, Any]:
        self.stage.create(con)
        counts = self.stage.merge(con, ctx.run_id, ctx.source_file_id)
        if self.pass_only:
            counts["variant_call"]["skipped_non_pass"] = self.skipped_non_pass
        return counts
