"""VCF ETL: small-variant calls with Ensembl VEP (CSQ) and/or SnpEff (ANN) annotations.

Records are parsed by oxbow (noodles, Rust) into Arrow batches, so memory stays bounded whatever the
file size; annotation field order is read from the header's Format description, never assumed.
Multi-allelic records are split; every sample column must be in the sample manifest, except the columns of
samples of purged patients, which are dropped with a warning. A sample carries an allele when its genotype
holds it, or when the genotype does not but reads support it (AD > 0: somatic callers such as Pindel write
0/0 for tumours); the genotype is stored as written. Without a genotype (GT absent or './.'), AD decides; AF
decides only without AD (tumour-only callers write DP:AF; Mutect2's AF is above 0 even with no alt read).
A record none of whose samples gives GT, AD or AF cannot say who carries it and is quarantined; a file
whose ##FORMAT lines declare none of them is refused.

Records are unique per variant (a later line is quarantined), annotation entries must have the fields
their header declares, bases are read case-insensitively. Blank lines at the end are ignored; a blank line
between records is quarantined under its line number.
"""

from __future__ import annotations

import gzip
import io
import re
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import duckdb
import pandera.polars as pa
import polars as pl
import pyarrow

from etl.errors import CgdwError, FileRejected, one_line
from etl.load.framework import Batch, LoadContext, SourceLoader
from etl.load.linking import known_samples
from etl.load.readers import LINE, reject_cr_only_line_ends
from etl.load.transform import ISSUE_SCHEMA, issues_where
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
    with_minimal_alleles,
)

BATCH_RECORDS = 100_000
FORMAT_FIELDS = ("GT", "AD", "DP", "AF")
CARRIER_FIELDS = ("GT", "AD", "AF")  # the fields that can say whether a sample carries an allele
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
# How ##reference, ##assembly and ##contig assembly= name the two assemblies (FASTA names included).
ASSEMBLY_NAMES = (
    (r"GRCh37|hg19|b37|hs37|g1k_v37|NCBI37", "GRCh37"),
    (r"GRCh38|hg38|assembly38|NCBI38", "GRCh38"),
)


@dataclass
class VcfHeader:
    lines: int  # header lines, the #CHROM line included: record i (0-based) is on line lines + i + 1
    samples: list[str]
    info: dict[str, str] = field(default_factory=dict)  # INFO id -> Description
    format_ids: set[str] = field(default_factory=set)
    meta: dict[str, str] = field(default_factory=dict)  # ##key=value lines that are not structured
    assembly_lines: list[str] = field(default_factory=list)  # header lines that may name the assembly

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

    def named_assemblies(self) -> dict[str, str]:
        """Each assembly the header names -> the first line naming it: ##reference, ##assembly, a ##contig's
        assembly= or the length of chromosome 1."""
        named: dict[str, str] = {}
        for line in self.assembly_lines:
            key, _, value = line[2:].partition("=")
            fields = _structured(value) if key == "contig" else {}
            text = fields.get("assembly", "") if key == "contig" else value
            for pattern, assembly in ASSEMBLY_NAMES:
                if re.search(pattern, text, re.IGNORECASE):
                    named.setdefault(assembly, line)
            if fields.get("ID") in ("1", "chr1") and fields.get("length", "").isdigit():
                by_length = ASSEMBLY_BY_CHR1_LENGTH.get(int(fields["length"]))
                if by_length:
                    named.setdefault(by_length, line)
        return named


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


def _open_bytes(path: Path) -> IO[bytes]:
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path) if magic == b"\x1f\x8b" else open(path, "rb")  # type: ignore[return-value]


def _open_text(path: Path) -> io.TextIOBase:
    return io.TextIOWrapper(_open_bytes(path), encoding="utf-8", errors="replace")


def _structured(value: str) -> dict[str, str]:
    """The key=value pairs of a structured header line's <...> value."""
    return dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,>]*)', value[1:-1]))


def _copy_without_blank_lines(path: Path, header_lines: int, start: int, copy: Path) -> tuple[list[int], int]:
    """Copy the header and the lines from `start` on into `copy`, leaving out blank lines (oxbow stops at
    one). Returns the blank lines' numbers and the number of the last line that is not blank."""
    blank: list[int] = []
    last = 0
    with _open_bytes(path) as source, open(copy, "wb") as target:
        for number, line in enumerate(source, start=1):
            if header_lines < number < start:
                continue
            if line.strip():
                target.write(line)
                last = number
            else:
                blank.append(number)
    return blank, last


def read_header(path: Path) -> VcfHeader:
    """The header, checked: file-level problems here reject the whole file."""
    reject_cr_only_line_ends(path)
    info: dict[str, str] = {}
    meta: dict[str, str] = {}
    assembly_lines: list[str] = []
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
                        fields = _structured(value)
                        if key in ("INFO", "FORMAT", "FILTER", "contig") and not fields.get("ID"):
                            raise FileRejected(path, f"line {number}: the ##{key} header line has no ID")
                        if key == "INFO":
                            info[fields.get("ID", "")] = fields.get("Description", "").strip('"')
                        elif key == "FORMAT":
                            format_ids.add(fields.get("ID", ""))
                    else:
                        meta[key] = value
                    if key in ("reference", "assembly", "contig"):
                        assembly_lines.append(line)
                    continue
                if line.startswith("#CHROM"):
                    columns = line[1:].split("\t")
                    fixed = ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
                    if columns[:8] != fixed or (len(columns) > 8 and columns[8] != "FORMAT"):
                        raise FileRejected(path, f"line {number}: malformed #CHROM header line")
                    return VcfHeader(number, columns[9:], info, format_ids, meta, assembly_lines)
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
    """One row per (record line, annotation entry) with canonical columns, from a CSQ / ANN list; `entry` is
    the entry as written and `fields` how many fields it has."""
    index = {name: i for i, name in enumerate(names)}
    entries = frame.select(LINE, pl.col("info").struct.field(info_id).alias("entry")).explode("entry")
    entries = entries.filter(pl.col("entry").is_not_null()).with_columns(
        pl.col("entry").str.split("|").alias("split")
    )
    columns = []
    for canonical, candidates in mapping.items():
        position = next((index[c] for c in candidates if c in index), None)
        value = (
            pl.col("split").list.get(position, null_on_oob=True).str.strip_chars()
            if position is not None
            else pl.lit(None, pl.String)
        )
        columns.append(pl.when(value == "").then(None).otherwise(value).alias(canonical))
    return entries.select(LINE, "entry", pl.col("split").list.len().alias("fields"), *columns)


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
    """One row per ALT allele: line, allele index (1-based), VEP's allele string, trimmed variant key. Bases
    are case-insensitive: read upper case."""
    alleles = (
        frame.select(
            LINE, "chrom", "pos", pl.col("ref").str.to_uppercase(),
            pl.col("alt").list.eval(pl.element().str.to_uppercase()), "filter",
        )
        .with_columns(pl.int_ranges(1, pl.col("alt").list.len() + 1).alias("allele_index"))
        .explode("alt", "allele_index")
    )  # fmt: skip
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
        self.blank_lines: list[int] = []

    # The loader needs the warehouse before reading (samples, assembly): run_load hands it over here.
    def prepare(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.header = read_header(path)
        self.reference = reference_transcripts(con)
        chosen = self.sample_option if self.sample_option is not None else self.header.samples
        absent = [s for s in chosen if s not in self.header.samples]
        if absent:
            raise FileRejected(path, f"--samples names columns the VCF does not have: {', '.join(absent)}")
        purged = purged_samples(con, chosen)
        if purged:  # a re-delivered batch still holds them: the other samples load
            chosen = [s for s in chosen if s not in purged]
            self.warnings.append(purged_warning(plural(len(purged), "sample column"), len(purged)))
        self.samples = known_samples(con, chosen)
        unknown = sorted(set(chosen) - set(self.samples.get_column("sample_key")))
        if unknown:
            raise FileRejected(
                path,
                f"sample columns {', '.join(unknown)} are not in the sample manifest: load the manifest "
                "first, or choose the columns to load with --samples",
            )
        if self.samples.height and not set(CARRIER_FIELDS) & self.header.format_ids:
            declared = ", ".join(sorted(self.header.format_ids))
            found = f"only {declared}" if declared else "no ##FORMAT line at all"
            raise FileRejected(
                path,
                f"the ##FORMAT lines declare none of GT, AD, AF ({found}): no record can say which sample "
                "carries a variant",
            )
        self.assembly = self._assembly(path)
        self.formats: dict[str, tuple[list[str], dict[str, tuple[str, ...]]]] = {}
        for info_id, mapping in (("CSQ", CSQ_FIELDS), ("ANN", ANN_FIELDS)):
            try:
                names = self.header.annotation_fields(info_id)
            except CgdwError as exc:
                raise FileRejected(path, str(exc)) from exc
            if names:
                self.formats[info_id] = (names, mapping)

    def _assembly(self, path: Path) -> str:
        """--assembly, the header and the samples' assays may each say the assembly, and must agree."""
        named = self.header.named_assemblies()
        if len(named) > 1:
            raise FileRejected(
                path,
                "the header names two assemblies: " + "; ".join(f"{line} ({a})" for a, line in named.items()),
            )
        said = [("--assembly", self.assembly_option)] if self.assembly_option else []
        said += [(f"the header's {line}", assembly) for assembly, line in named.items()]
        assays = self.samples.drop_nulls("assay_assembly").unique(
            "assay_assembly", keep="first", maintain_order=True
        )
        said += [
            (f"sample {key}'s assay", assembly)
            for key, assembly in assays.select("sample_key", "assay_assembly").iter_rows()
        ]
        if not said:
            raise FileRejected(path, "cannot tell the genome assembly: pass --assembly GRCh37 or GRCh38")
        refuse_other_assembly(path, said)
        return said[0][1]

    def _oxbow(self, path: Path) -> Iterator[pl.DataFrame]:
        """oxbow's record batches, as they come (a malformed record raises a plain Exception, no line)."""
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
        for batch in source.batches():
            yield pl.DataFrame(pyarrow.record_batch(batch))

    def _records(self, path: Path) -> Iterator[pl.DataFrame]:
        """The record batches with the line of each record. oxbow stops at a blank line: the records after
        the last batch it gave are then read from a copy without blank lines (a trailing blank line makes
        this a re-read of the last batch only)."""
        line = self.header.lines + 1
        try:
            for frame in self._oxbow(path):
                yield frame.with_columns(pl.int_range(line, line + frame.height, dtype=pl.Int64).alias(LINE))
                line += frame.height
            return
        except (OSError, EOFError, zlib.error) as exc:
            raise FileRejected(path, f"unreadable or truncated file: {one_line(exc)}") from exc
        except Exception as exc:  # oxbow reports malformed records as plain Exceptions
            failure = exc
        with tempfile.TemporaryDirectory(prefix="cgdw-vcf-") as scratch:
            copy = Path(scratch) / "records.vcf"
            try:
                blank, last = _copy_without_blank_lines(path, self.header.lines, line, copy)
            except (OSError, EOFError, zlib.error):  # a damaged compressed file: not a blank line
                blank, last = [], 0
            if not blank:
                raise self._malformed(path, failure) from failure
            self.blank_lines = [b for b in blank if b < last]  # after the last record: ignored
            # Record i of the copy is on line `line + i` plus the blank lines before it.
            shifts = pl.Series([b - line - i for i, b in enumerate(self.blank_lines)], dtype=pl.Int64)
            read = 0
            try:
                for frame in self._oxbow(copy):
                    index = pl.int_range(read, read + frame.height, dtype=pl.Int64, eager=True)
                    lines = line + index + shifts.search_sorted(index, side="right").cast(pl.Int64)
                    yield frame.with_columns(lines.alias(LINE))
                    read += frame.height
            except Exception as exc:
                raise self._malformed(path, exc) from exc

    def _malformed(self, path: Path, exc: Exception) -> FileRejected:
        reason = str(exc).splitlines()[0].removeprefix("External error: ")
        return FileRejected(path, f"{locate_bad_record(path, self.header) or 'malformed record'}: {reason}")

    def batches(self, path: Path) -> Iterator[Batch]:
        for frame in self._records(path):
            yield self._batch(frame)
        if self.blank_lines:
            yield self._blank_lines()

    def _batch(self, frame: pl.DataFrame) -> Batch:
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
        calls = self._calls(frame, alleles, issues)
        issues.append(schema_issues(calls, raw, VcfCallV1, lambda _field: "FORMAT"))
        return Batch(
            raw=raw,
            records=alleles,
            issues=pl.concat(issues),
            parts={"annotations": annotations, "calls": calls},
        )

    def _blank_lines(self) -> Batch:
        """The blank lines between records: rows of the file, each quarantined under its number."""
        lines = pl.Series(LINE, self.blank_lines, pl.Int64)
        raw = pl.DataFrame(lines).with_columns(
            pl.lit(None, pl.String).alias(c) for c in ("CHROM", "POS", "REF", "ALT", "FILTER")
        )
        issues = pl.DataFrame(
            [(n, None, None, "blank_line", blank_line_message(n, "VCF")) for n in self.blank_lines],
            schema=ISSUE_SCHEMA,
            orient="row",
        )
        text = dict.fromkeys(["assembly", "chrom", "ref", "alt", "vcf_alt"], pl.String)
        records = pl.DataFrame(schema={LINE: pl.Int64, "pos": pl.Int64, **text})
        empty = pl.DataFrame(schema={LINE: pl.Int64})
        return Batch(raw=raw, records=records, issues=issues, parts={"annotations": empty, "calls": empty})

    def _annotations(
        self, frame: pl.DataFrame, alleles: pl.DataFrame, issues: list[pl.DataFrame]
    ) -> pl.DataFrame:
        """Annotations matched to their allele. An entry whose field count is not its header's, and a VEP
        reference-allele mismatch, become issues."""
        parts = []
        for info_id, (names, mapping) in self.formats.items():
            entries = _annotations(frame, info_id, names, mapping)
            if entries.is_empty():
                continue
            # Fields are read by position: with one too many or too few, which one moved cannot be told.
            misshapen = entries.filter(pl.col("fields") != len(names)).unique(
                LINE, keep="first", maintain_order=True
            )
            issues.append(
                issues_where(
                    misshapen, pl.lit(True), info_id, pl.col("entry"), f"fields:{info_id}",
                    pl.format(f"a {info_id} entry has {{}} fields, the ##INFO {info_id} header declares "
                              f"{len(names)}: its fields cannot be told apart", pl.col("fields")),
                )
            )  # fmt: skip
            if info_id == "CSQ" and "ALLELE_NUM" in names:
                on = [pl.col("allele_num").cast(pl.Int64, strict=False) == pl.col("allele_index")]
            elif info_id == "CSQ":
                on = [pl.col("allele").str.to_uppercase() == pl.col("vep_allele")]
            else:
                on = [pl.col("allele").str.to_uppercase() == pl.col("vcf_alt")]
            matched = entries.join(alleles, on=LINE).filter(*on)
            if info_id == "CSQ" and {"GIVEN_REF", "USED_REF"} <= set(names):
                given, used = pl.col("given_ref").str.to_uppercase(), pl.col("used_ref").str.to_uppercase()
                mismatch = matched.filter(given != used).unique(LINE)
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

    def _calls(self, frame: pl.DataFrame, alleles: pl.DataFrame, issues: list[pl.DataFrame]) -> pl.DataFrame:
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
        issues.append(_silent_records(long))
        genotypes = long.join(
            alleles.select(LINE, "allele_index", "assembly", "chrom", "pos", "ref", "alt", "filter"), on=LINE
        )
        alt_depth = pl.col("ad").list.get(pl.col("allele_index"), null_on_oob=True).cast(pl.Int64)
        allele_af = pl.col("af").list.get(pl.col("allele_index") - 1, null_on_oob=True).cast(pl.Float64)
        depth = pl.coalesce(pl.col("dp").cast(pl.Int64), pl.col("ad").list.sum().cast(pl.Int64))
        called = pl.col("gt_alleles").list.drop_nulls().list.len().fill_null(0) > 0  # not absent nor './.'
        carries = (
            pl.when(called)
            .then(pl.col("gt_alleles").list.contains(pl.col("allele_index")) | (alt_depth.fill_null(0) > 0))
            .when(alt_depth.is_not_null())
            .then(alt_depth > 0)
            .otherwise(allele_af.fill_null(0) > 0)
        )
        genotype = (
            pl.col("gt_alleles")
            .list.eval(pl.element().cast(pl.String).fill_null("."))
            .list.join(pl.when(pl.col("phased")).then(pl.lit("|")).otherwise(pl.lit("/")))
        )
        vaf = pl.coalesce(allele_af, pl.when(depth > 0).then(alt_depth / depth))
        calls = genotypes.filter(carries).select(
            LINE, "sample_id", "assembly", "chrom", "pos", "ref", "alt", "filter", genotype.alias("genotype"),
            vaf.round(6).alias("vaf"), depth.alias("depth"), alt_depth.alias("alt_depth"),
        )  # fmt: skip
        if self.pass_only:
            passing = calls.filter(pl.col("filter") == "PASS")
            self.skipped_non_pass += calls.height - passing.height
            calls = passing
        return calls

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        return self.stage.duplicate_issues(
            con, batch.records, batch.issues.get_column(LINE), pl.lit(""), "ALT", pl.col("vcf_alt"),
            pl.format("variant {}", variant_text()),
        )  # fmt: skip

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        self.stage.create(con)
        self.stage.remember(con, batch.records, pl.lit(""))
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


def _silent_records(long: pl.DataFrame) -> pl.DataFrame:
    """carrier_evidence issues for the records none of whose samples gives GT, AD or AF (one row per record
    and sample in `long`): who carries their alleles cannot be told. The value is what the samples gave."""
    given = [
        pl.when(pl.col(column).is_not_null().any()).then(pl.lit(name))
        for name, column in (("GT", "gt_alleles"), ("AD", "ad"), ("DP", "dp"), ("AF", "af"))
    ]
    records = long.group_by(LINE, maintain_order=True).agg(
        pl.concat_str(given, separator=":", ignore_nulls=True).replace("", None).alias("given"),
        pl.any_horizontal(pl.col(c).is_not_null() for c in ("gt_alleles", "ad", "af")).any().alias("tells"),
    )
    return issues_where(
        records, ~pl.col("tells"), "FORMAT", pl.col("given"), "carrier_evidence",
        pl.format("the samples give {}, no GT, AD or AF: who carries ALT cannot be told",
                  pl.col("given").fill_null("no value")),
    )  # fmt: skip
