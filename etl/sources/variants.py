"""What VCF and MAF loading share: allele normalisation, annotation parsing, transcript selection, the
checks of a file's variants (one line per sample and variant, the samples of purged patients, the assembly
a file names against --assembly), and the bulk writes into variant, variant_annotation and variant_call.

Variants are stored trimmed, the way MAF and VEP write them, so that the same change loaded from a VCF
and from a MAF is one variant: the base shared by REF and ALT at the start is dropped and an empty
allele is "-"; a deletion is placed at its first deleted base, an insertion at the base before it.
(Left-alignment would need the reference genome, which cgdw does not ship.) Bases are stored upper case:
VCF and MAF bases are case-insensitive, so `a>g` is the variant `A>G`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.errors import FileRejected
from etl.load.readers import LINE
from etl.load.snapshot import merge_snapshot
from etl.load.transform import empty_issues, issues_where
from etl.privacy import sample_tombstone
from etl.warehouse import fetch_value, query_frame

ALLELE_PATTERN = r"^([ACGTN]+|-)$"

# Columns of the staged annotations (one row per variant x transcript), whatever the source format.
ANNOTATION_COLUMNS = {
    "gene_symbol": pl.String,
    "transcript_accession": pl.String,
    "consequence": pl.String,
    "impact": pl.String,
    "hgvsc": pl.String,
    "hgvsp": pl.String,
    "exon": pl.String,
    "protein_position": pl.String,
    "amino_acids": pl.String,
    "canonical": pl.String,
    "mane_select": pl.String,
}
CALL_COLUMNS = ["variant_id", "genotype", "vaf", "depth", "alt_depth", "filter"]
KEY = ["assembly", "chrom", "pos", "ref", "alt"]  # a stored variant


def minimal(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """The shortest (pos, ref, alt): drop the bases REF and ALT share at the end, then at the start."""
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    shared = 0
    while shared < min(len(ref), len(alt)) and ref[shared] == alt[shared]:
        shared += 1
    ref, alt = ref[shared:], alt[shared:]
    # A deletion starts at its first deleted base; an insertion stands at the base before it.
    pos = pos + shared - (1 if not ref and shared else 0)
    return pos, ref or "-", alt or "-"


def with_minimal_alleles(frame: pl.DataFrame) -> pl.DataFrame:
    """`pos`, `ref`, `alt` in the stored form. SNVs and single-anchor indels (nearly every record) are
    trimmed column-wise; only alleles longer than one base on both sides go through `minimal`."""
    ref, alt, pos = pl.col("ref"), pl.col("alt"), pl.col("pos").cast(pl.Int64)
    simple = (ref.str.len_chars() == 1) | (alt.str.len_chars() == 1)
    anchored = (ref.str.len_chars() != alt.str.len_chars()) & (ref.str.slice(0, 1) == alt.str.slice(0, 1))
    insertion = anchored & (ref.str.len_chars() == 1)
    new_ref = pl.when(anchored).then(ref.str.slice(1)).otherwise(ref)
    new_alt = pl.when(anchored).then(alt.str.slice(1)).otherwise(alt)
    frame = frame.with_columns(
        pl.when(anchored & ~insertion).then(pos + 1).otherwise(pos).alias("pos"),
        pl.when(new_ref == "").then(pl.lit("-")).otherwise(new_ref).alias("ref"),
        pl.when(new_alt == "").then(pl.lit("-")).otherwise(new_alt).alias("alt"),
        simple.alias("_simple"),
    )
    if frame.get_column("_simple").all():
        return frame.drop("_simple")
    complex_rows = frame.filter(~pl.col("_simple"))
    fixed = [minimal(p, r, a) for p, r, a in complex_rows.select("pos", "ref", "alt").iter_rows()]
    complex_rows = complex_rows.with_columns(
        pl.Series("pos", [f[0] for f in fixed], pl.Int64),
        pl.Series("ref", [f[1] for f in fixed], pl.String),
        pl.Series("alt", [f[2] for f in fixed], pl.String),
    )
    return pl.concat([frame.filter(pl.col("_simple")), complex_rows]).drop("_simple")


def variant_text() -> pl.Expr:
    """A stored variant as messages name it: '7:50450292 A>G'."""
    return pl.format("{}:{} {}>{}", "chrom", "pos", "ref", "alt")


def normalise_chrom(chrom: pl.Expr) -> pl.Expr:
    """'chr7' -> '7', 'chrM' / 'M' -> 'MT'."""
    bare = chrom.cast(pl.String).str.replace(r"^chr", "")
    return pl.when(bare == "M").then(pl.lit("MT")).otherwise(bare)


def leading_int(text: pl.Expr) -> pl.Expr:
    """The first integer of '5/8', '159-160' or '159/519'."""
    return text.str.extract(r"^(\d+)", 1).cast(pl.Int64, strict=False)


def annotation_rows(annotations: pl.DataFrame, source: str, reference: frozenset[str]) -> pl.DataFrame:
    """Staged annotations (ANNOTATION_COLUMNS plus the variant key) as variant_annotation columns, once
    per variant, transcript and source, with the selected transcript of each variant and gene marked:
    MANE Select, else cgdw's reference transcript of the gene (`reference`: versionless accessions),
    else the annotator's canonical flag, else the lowest accession."""
    versionless = pl.col("transcript_accession").str.replace(r"\.\d+$", "")
    # Formats name different fields (SnpEff has no canonical flag): absent ones are NULL.
    typed = annotations.with_columns(
        pl.col(c).cast(t) if c in annotations.columns else pl.lit(None, t).alias(c)
        for c, t in ANNOTATION_COLUMNS.items()
    )
    rows = typed.select(
        *([LINE] if LINE in annotations.columns else []),
        "assembly",
        "chrom",
        "pos",
        "ref",
        "alt",
        pl.col("gene_symbol"),
        pl.col("transcript_accession"),
        pl.col("consequence"),
        pl.col("impact"),
        pl.col("hgvsc"),
        pl.col("hgvsp"),
        leading_int(pl.col("exon")).alias("exon_number"),
        pl.col("exon").str.extract(r"/(\d+)$", 1).cast(pl.Int64, strict=False).alias("exon_count"),
        leading_int(pl.col("protein_position")).alias("protein_position"),
        pl.col("amino_acids"),
        pl.col("canonical").is_in(["YES", "1", "true", "True"]).alias("is_canonical"),
        (pl.col("mane_select").fill_null("") != "").alias("is_mane_select"),
        versionless.is_in(list(reference)).alias("is_reference"),
        pl.lit(source).alias("annotation_source"),
    )
    rows = rows.filter(pl.col("transcript_accession").is_not_null()).unique(
        [*KEY, "transcript_accession"], keep="first", maintain_order=True
    )
    order = ["is_mane_select", "is_reference", "is_canonical", "transcript_accession"]
    rows = rows.sort([*KEY, "gene_symbol", *order], descending=[False] * 6 + [True, True, True, False])
    first = pl.int_range(pl.len()).over([*KEY, "gene_symbol"]) == 0
    selected = first & pl.col("gene_symbol").is_not_null()
    rule = (
        pl.when(~selected).then(None)
        .when(pl.col("is_mane_select")).then(pl.lit("mane_select"))
        .when(pl.col("is_reference")).then(pl.lit("reference_transcript"))
        .when(pl.col("is_canonical")).then(pl.lit("annotator_canonical"))
        .otherwise(pl.lit("lowest_accession"))
    )  # fmt: skip
    return rows.with_columns(selected.alias("is_selected"), rule.alias("selection_rule")).drop("is_reference")


class VariantStage:
    """Staging tables for one load: explicit DDL (not CREATE TABLE AS: a DuckDB 2.0 bug loses values of
    CTAS staging tables in a transaction), filled batch by batch, merged once at the end."""

    VARIANTS = "cgdw_stage_variant"
    ANNOTATIONS = "cgdw_stage_annotation"
    CALLS = "cgdw_stage_call"
    SEEN = "cgdw_stage_seen"  # the first line of each variant (per sample for a MAF) the load has written

    def __init__(self) -> None:
        self.created = False

    def create(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.created:
            return
        key = "assembly VARCHAR, chrom VARCHAR, pos BIGINT, ref VARCHAR, alt VARCHAR"
        con.execute(f"CREATE TEMP TABLE {self.VARIANTS} ({key})")
        con.execute(
            f"""
            CREATE TEMP TABLE {self.ANNOTATIONS} ({key}, gene_symbol VARCHAR, transcript_accession VARCHAR,
                consequence VARCHAR, impact VARCHAR, hgvsc VARCHAR, hgvsp VARCHAR, exon_number BIGINT,
                exon_count BIGINT, protein_position BIGINT, amino_acids VARCHAR, is_canonical BOOLEAN,
                is_mane_select BOOLEAN, annotation_source VARCHAR, is_selected BOOLEAN,
                selection_rule VARCHAR)
            """
        )
        con.execute(
            f"""
            CREATE TEMP TABLE {self.CALLS} ({key}, sample_id INTEGER, genotype VARCHAR, vaf DOUBLE,
                depth BIGINT, alt_depth BIGINT, filter VARCHAR, source_line BIGINT)
            """
        )
        con.execute(f"CREATE TEMP TABLE {self.SEEN} (scope VARCHAR, {key}, source_line BIGINT)")
        self.created = True

    def append(self, con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
        con.register("cgdw_stage_batch", frame.to_arrow())
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM cgdw_stage_batch")
        con.unregister("cgdw_stage_batch")

    def duplicate_issues(
        self,
        con: duckdb.DuckDBPyConnection,
        records: pl.DataFrame,
        rejected: pl.Series,
        scope: pl.Expr,
        column: str,
        value: pl.Expr,
        subject: pl.Expr,
    ) -> pl.DataFrame:
        """`unique` issues for the lines of `records` whose variant an earlier line of the file already gave,
        within `scope` (the sample of a MAF row; the whole file for a VCF, whose lines hold every sample):
        the later line would be a second current call of one sample and variant. The first line that
        loads is kept, in this batch or an earlier one; `rejected` lines (other issues) are not candidates.
        `subject` names the variant in the message, `column` and `value` what the issue points at."""
        self.create(con)
        keyed = (
            records.filter(~pl.col(LINE).is_in(rejected.unique().implode()))
            .select(
                LINE,
                scope.alias("scope"),
                *KEY,
                value.cast(pl.String).alias("value"),
                subject.alias("subject"),
            )
            .drop_nulls(["scope", *KEY])
            .sort(LINE, maintain_order=True)
        )
        if keyed.is_empty():
            return empty_issues()
        con.register("cgdw_seen_probe", keyed.select("scope", *KEY).unique().to_arrow())
        try:
            earlier = query_frame(
                con,
                f"""
                SELECT p.scope, p.assembly, p.chrom, p.pos, p.ref, p.alt, min(s.source_line) AS earlier
                FROM cgdw_seen_probe AS p JOIN {self.SEEN} AS s USING (scope, assembly, chrom, pos, ref, alt)
                GROUP BY ALL
                """,
            )
        finally:
            con.unregister("cgdw_seen_probe")
        group = ["scope", *KEY]
        keyed = keyed.join(
            earlier.cast({"pos": pl.Int64}), on=group, how="left", maintain_order="left"
        ).with_columns(
            pl.coalesce(pl.col("earlier"), pl.col(LINE).min().over(group)).alias("first"),
            (pl.col("earlier").is_not_null() | (pl.int_range(pl.len()).over(group) > 0)).alias("later"),
        )
        message = pl.format("{} is already on line {}", pl.col("subject"), pl.col("first"))
        return issues_where(keyed, pl.col("later"), column, pl.col("value"), "unique", message).unique(
            LINE, keep="first", maintain_order=True
        )

    def remember(self, con: duckdb.DuckDBPyConnection, records: pl.DataFrame, scope: pl.Expr) -> None:
        """Note the variants of written lines, for `duplicate_issues` of later batches."""
        self.create(con)
        self.append(
            con, self.SEEN, records.select(scope.alias("scope"), *KEY, pl.col(LINE).alias("source_line"))
        )

    def merge(self, con: duckdb.DuckDBPyConnection, run_id: int, source_file_id: int) -> dict[str, Any]:
        """Variants, annotations (with the selected transcript) and per-sample call snapshots."""
        counts: dict[str, Any] = {}
        counts["variant"] = {
            "inserted": fetch_value(
                con,
                f"""
                INSERT INTO variant (assembly, chrom, pos, ref, alt)
                SELECT DISTINCT assembly, chrom, pos, ref, alt FROM {self.VARIANTS} AS s
                WHERE NOT EXISTS (
                    SELECT 1 FROM variant AS v WHERE v.assembly = s.assembly AND v.chrom = s.chrom
                      AND v.pos = s.pos AND v.ref = s.ref AND v.alt = s.alt)
                """,
            )
        }
        counts["variant_annotation"] = {"inserted": self._merge_annotations(con, run_id, source_file_id)}
        calls = f"""
            SELECT s.sample_id, v.variant_id, s.genotype, s.vaf, s.depth, s.alt_depth, s.filter, s.source_line
            FROM {self.CALLS} AS s JOIN variant AS v USING (assembly, chrom, pos, ref, alt)
        """
        counts["variant_call"] = merge_snapshot(
            con, "variant_call", CALL_COLUMNS, calls, f"SELECT DISTINCT sample_id FROM {self.CALLS}",
            run_id, source_file_id, scope="sample_id",
        ).as_dict()  # fmt: skip
        for table in (self.VARIANTS, self.ANNOTATIONS, self.CALLS, self.SEEN):
            con.execute(f"DROP TABLE {table}")
        self.created = False
        return counts

    def _merge_annotations(self, con: duckdb.DuckDBPyConnection, run_id: int, source_file_id: int) -> int:
        columns = (
            "gene_symbol, transcript_accession, consequence, impact, hgvsc, hgvsp, exon_number, exon_count, "
            "protein_position, amino_acids, is_canonical, is_mane_select, is_selected, selection_rule, "
            "annotation_source"
        )
        key = "assembly, chrom, pos, ref, alt, transcript_accession, annotation_source"
        staged, distinct = con.execute(
            f"SELECT count(*), count(DISTINCT ({key})) FROM {self.ANNOTATIONS}"
        ).fetchall()[0]
        # One row per (variant, transcript, source): a variant staged by several batches (a MAF read in
        # slices, other samples) is annotated once. Without a repeated key (a VCF: a repeated variant is
        # quarantined) the DISTINCT ON and its sort are skipped; they were most of the merge's time.
        pick = (
            ""
            if staged == distinct
            else "DISTINCT ON (v.variant_id, a.transcript_accession, a.annotation_source)"
        )
        order = (
            ""
            if staged == distinct
            else "ORDER BY v.variant_id, a.transcript_accession, a.annotation_source, a.is_selected DESC"
        )
        return int(
            fetch_value(
                con,
                f"""
                INSERT INTO variant_annotation (variant_id, {columns}, etl_run_id, source_file_id)
                SELECT {pick}
                    v.variant_id, {", ".join(f"a.{c.strip()}" for c in columns.split(","))}, $run, $file
                FROM {self.ANNOTATIONS} AS a JOIN variant AS v USING (assembly, chrom, pos, ref, alt)
                WHERE NOT EXISTS (
                    SELECT 1 FROM variant_annotation AS x WHERE x.variant_id = v.variant_id
                      AND x.transcript_accession = a.transcript_accession
                      AND x.annotation_source = a.annotation_source)
                {order}
                """,
                {"run": run_id, "file": source_file_id},
            )
        )


def reference_transcripts(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Versionless accessions (Ensembl and RefSeq) of cgdw's reference transcripts."""
    rows = con.execute("SELECT accession, refseq_accession FROM transcript WHERE is_mane_select").fetchall()
    return frozenset(accession for row in rows for accession in row if accession)


def blank_line_message(line: int, kind: str) -> str:
    return f"line {line} is blank: a {kind} has no blank lines between records"


def purged_samples(con: duckdb.DuckDBPyConnection, keys: Iterable[str]) -> set[str]:
    """The sample ids among `keys` whose patient was purged: the purge keeps a tombstone of each of their
    samples in purged_patient, so that a re-delivered VCF or MAF drops them instead of failing on them."""
    tombstones = {sample_tombstone(key): key for key in set(keys)}
    if not tombstones:
        return set()
    con.register("cgdw_tombstone_probe", pl.DataFrame({"tombstone": list(tombstones)}).to_arrow())
    try:
        rows = con.execute(
            "SELECT tombstone FROM cgdw_tombstone_probe JOIN purged_patient USING (tombstone)"
        ).fetchall()
    finally:
        con.unregister("cgdw_tombstone_probe")
    return {tombstones[tombstone] for (tombstone,) in rows}


def purged_warning(what: str, count: int) -> str:
    """The warning for data of purged patients left out: counts only, never a sample id (the run's counts
    are kept in the ledger, which must hold nothing a purged patient can be found by)."""
    verb = "was" if count == 1 else "were"
    return (
        f"{what} of purged patients {verb} not loaded: their consent was withdrawn and their data purged "
        "(cgdw purge)"
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def refuse_other_assembly(path: Path, said: list[tuple[str, str]]) -> None:
    """`said`: who says which assembly (--assembly, a MAF's NCBI_Build, a VCF header line, a sample's
    assay). Each may fill in what the others do not say, none may contradict another: which one is wrong
    cannot be told, so the file is refused naming both."""
    first_who, first = said[0]
    for who, assembly in said[1:]:
        if assembly != first:
            raise FileRejected(
                path,
                f"{who} says {assembly}, {first_who} says {first}: cgdw cannot tell which is right (on the "
                "wrong assembly, every position is wrong)",
            )
