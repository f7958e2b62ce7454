"""What VCF and MAF loading share: allele normalisation, annotation parsing, transcript selection, and
the bulk writes into variant, variant_annotation and variant_call.

Variants are stored trimmed, the way MAF and VEP write them, so that the same change loaded from a VCF
and from a MAF is one variant: the base shared by REF and ALT at the start is dropped and an empty
allele is "-"; a deletion is placed at its first deleted base, an insertion at the base before it.
(Left-alignment would need the reference genome, which cgdw does not ship.)
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from etl.snapshot import merge_snapshot
from etl.warehouse import fetch_value

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


def trimmed(pos: pl.Expr, ref: pl.Expr, alt: pl.Expr) -> list[pl.Expr]:
    """(pos, ref, alt) in the stored form. SNVs and single-anchor indels (nearly every record) are
    trimmed column-wise; alleles longer than one base on both sides go through `minimal`."""
    anchored = (ref.str.len_chars() != alt.str.len_chars()) & (ref.str.slice(0, 1) == alt.str.slice(0, 1))
    simple = (ref.str.len_chars() == 1) | (alt.str.len_chars() == 1)
    insertion = anchored & (ref.str.len_chars() == 1)
    new_ref = pl.when(anchored).then(ref.str.slice(1)).otherwise(ref)
    new_alt = pl.when(anchored).then(alt.str.slice(1)).otherwise(alt)
    slow = pl.struct(pos=pos, ref=ref, alt=alt).map_elements(
        lambda v: dict(zip(("pos", "ref", "alt"), minimal(v["pos"], v["ref"], v["alt"]), strict=True)),
        return_dtype=pl.Struct({"pos": pl.Int64, "ref": pl.String, "alt": pl.String}),
    )
    return [
        pl.when(simple).then(pl.when(anchored & ~insertion).then(pos + 1).otherwise(pos))
        .otherwise(slow.struct.field("pos")).alias("pos"),
        pl.when(simple).then(pl.when(new_ref == "").then(pl.lit("-")).otherwise(new_ref))
        .otherwise(slow.struct.field("ref")).alias("ref"),
        pl.when(simple).then(pl.when(new_alt == "").then(pl.lit("-")).otherwise(new_alt))
        .otherwise(slow.struct.field("alt")).alias("alt"),
    ]  # fmt: skip


def normalise_chrom(chrom: pl.Expr) -> pl.Expr:
    """'chr7' -> '7', 'chrM' / 'M' -> 'MT'."""
    bare = chrom.cast(pl.String).str.replace(r"^chr", "")
    return pl.when(bare == "M").then(pl.lit("MT")).otherwise(bare)


def leading_int(text: pl.Expr) -> pl.Expr:
    """The first integer of '5/8', '159-160' or '159/519'."""
    return text.str.extract(r"^(\d+)", 1).cast(pl.Int64, strict=False)


def annotation_rows(annotations: pl.DataFrame, source: str) -> pl.DataFrame:
    """Staged annotations (ANNOTATION_COLUMNS plus the variant key) as variant_annotation columns."""
    versionless = pl.col("transcript_accession").str.replace(r"\.\d+$", "")
    annotations = annotations.with_columns(pl.col(c).cast(t) for c, t in ANNOTATION_COLUMNS.items())
    return annotations.select(
        pl.col("_line"),
        "assembly",
        "chrom",
        "pos",
        "ref",
        "alt",
        pl.col("gene_symbol"),
        pl.col("transcript_accession"),
        versionless.alias("transcript_key"),
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
        pl.lit(source).alias("annotation_source"),
    ).filter(pl.col("transcript_accession").is_not_null())


class VariantStage:
    """Staging tables for one load: explicit DDL (not CREATE TABLE AS: a DuckDB 2.0 bug loses values of
    CTAS staging tables in a transaction), filled batch by batch, merged once at the end."""

    VARIANTS = "cgdw_stage_variant"
    ANNOTATIONS = "cgdw_stage_annotation"
    CALLS = "cgdw_stage_call"

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
                transcript_key VARCHAR, consequence VARCHAR, impact VARCHAR, hgvsc VARCHAR, hgvsp VARCHAR,
                exon_number BIGINT, exon_count BIGINT, protein_position BIGINT, amino_acids VARCHAR,
                is_canonical BOOLEAN, is_mane_select BOOLEAN, annotation_source VARCHAR)
            """
        )
        con.execute(
            f"""
            CREATE TEMP TABLE {self.CALLS} ({key}, sample_id INTEGER, genotype VARCHAR, vaf DOUBLE,
                depth BIGINT, alt_depth BIGINT, filter VARCHAR, source_line BIGINT)
            """
        )
        self.created = True

    def append(self, con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
        con.register("cgdw_stage_batch", frame.to_arrow())
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM cgdw_stage_batch")
        con.unregister("cgdw_stage_batch")

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
        for table in (self.VARIANTS, self.ANNOTATIONS, self.CALLS):
            con.execute(f"DROP TABLE {table}")
        self.created = False
        return counts

    def _merge_annotations(self, con: duckdb.DuckDBPyConnection, run_id: int, source_file_id: int) -> int:
        # One selected transcript per variant, gene and source: MANE Select, else the reference
        # transcript of the gene in cgdw, else the annotator's canonical flag, else the lowest accession.
        return int(
            fetch_value(
                con,
                f"""
                INSERT INTO variant_annotation (variant_id, gene_symbol, transcript_accession,
                    consequence, impact, hgvsc, hgvsp, exon_number, exon_count, protein_position,
                    amino_acids, is_canonical, is_mane_select, is_selected, selection_rule,
                    annotation_source, etl_run_id, source_file_id)
                WITH staged AS (
                    SELECT DISTINCT ON (v.variant_id, a.transcript_accession, a.annotation_source)
                           v.variant_id, a.*, t.transcript_id IS NOT NULL AS is_reference
                    FROM {self.ANNOTATIONS} AS a
                    JOIN variant AS v USING (assembly, chrom, pos, ref, alt)
                    LEFT JOIN transcript AS t ON t.is_mane_select
                         AND a.transcript_key IN (t.accession, t.refseq_accession)
                ), ranked AS (
                    SELECT *, row_number() OVER (
                        PARTITION BY variant_id, gene_symbol, annotation_source
                        ORDER BY is_mane_select DESC, is_reference DESC, is_canonical DESC,
                                 transcript_accession
                    ) AS rank
                    FROM staged
                )
                SELECT variant_id, gene_symbol, transcript_accession, consequence, impact, hgvsc, hgvsp,
                       exon_number, exon_count, protein_position, amino_acids, is_canonical, is_mane_select,
                       rank = 1 AND gene_symbol IS NOT NULL,
                       CASE WHEN rank > 1 OR gene_symbol IS NULL THEN NULL
                            WHEN is_mane_select THEN 'mane_select'
                            WHEN is_reference THEN 'reference_transcript'
                            WHEN is_canonical THEN 'annotator_canonical'
                            ELSE 'lowest_accession' END,
                       annotation_source, $run, $file
                FROM ranked AS r
                WHERE NOT EXISTS (
                    SELECT 1 FROM variant_annotation AS x WHERE x.variant_id = r.variant_id
                      AND x.transcript_accession = r.transcript_accession
                      AND x.annotation_source = r.annotation_source)
                """,
                {"run": run_id, "file": source_file_id},
            )
        )


def known_samples(con: duckdb.DuckDBPyConnection, keys: list[str]) -> pl.DataFrame:
    """sample_key, sample_id and the assay assembly of the given sample ids that the warehouse knows."""
    con.register(
        "cgdw_sample_probe", pl.DataFrame({"sample_key": keys}, schema={"sample_key": pl.String}).to_arrow()
    )
    try:
        rows = con.execute(
            """
            SELECT s.sample_key, s.sample_id, a.assembly FROM cgdw_sample_probe AS p
            JOIN sample AS s USING (sample_key) LEFT JOIN sequencing_assay AS a USING (sequencing_assay_id)
            """
        ).fetchall()
    finally:
        con.unregister("cgdw_sample_probe")
    return pl.DataFrame(
        rows,
        schema={"sample_key": pl.String, "sample_id": pl.Int32, "assay_assembly": pl.String},
        orient="row",
    )
