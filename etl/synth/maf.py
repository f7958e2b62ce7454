"""FRALLE small-variant calls as one GDC-style MAF (tumor-only calling: no matched normal).

One row per diagnosis sample and allele, annotated on the MANE transcript only. MAF conventions: a
deletion gives the deleted bases (Start..End = those bases, Tumor_Seq_Allele2 "-"), an insertion gives
Reference_Allele "-" and the two flanking bases as Start/End; polymorphisms carry their rs id in
dbSNP_RS (others "novel").
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from etl.synth.genome import ASSEMBLY, CONTIG_INDEX, gene_models

MAF_FILE = "mutations_fralle.maf"
MAF_VERSION = "#version 2.4"
CENTER = "FRALLE-NGS"


def write_maf(path: Path, calls: pl.DataFrame, alleles: pl.DataFrame) -> None:
    """calls: the FRALLE tumor calls with their sample_id; alleles: the annotated alleles."""
    transcripts = pl.DataFrame(
        {
            "gene": list(gene_models()),
            "transcript": [m.transcript for m in gene_models().values()],
            "refseq": [m.info.refseq for m in gene_models().values()],
        }
    )
    rows = (
        calls.join(alleles, on=["chrom", "pos", "ref", "alt"], how="left")
        .join(transcripts, on="gene", how="left")
        .with_columns(contig=pl.col("chrom").replace_strict(CONTIG_INDEX, return_dtype=pl.Int32))
        .sort("sample_id", "contig", "pos", "alt")
    )
    maf = rows.select(
        Hugo_Symbol=pl.col("gene"),
        Entrez_Gene_Id=pl.lit("0"),
        Center=pl.lit(CENTER),
        NCBI_Build=pl.lit(ASSEMBLY),
        Chromosome=pl.col("chrom"),
        Start_Position=pl.col("maf_start"),
        End_Position=pl.col("maf_end"),
        Strand=pl.lit("+"),
        Variant_Classification=pl.col("maf_class"),
        Variant_Type=pl.col("variant_type"),
        Reference_Allele=pl.col("maf_ref"),
        Tumor_Seq_Allele1=pl.when(pl.col("hom")).then(pl.col("maf_alt")).otherwise(pl.col("maf_ref")),
        Tumor_Seq_Allele2=pl.col("maf_alt"),
        dbSNP_RS=pl.when(pl.col("existing") == "").then(pl.lit("novel")).otherwise(pl.col("existing")),
        Tumor_Sample_Barcode=pl.col("sample_id"),
        Matched_Norm_Sample_Barcode=pl.lit(""),
        HGVSc=pl.col("hgvsc"),
        HGVSp=pl.col("hgvsp"),
        HGVSp_Short=pl.col("hgvsp_short"),
        Transcript_ID=pl.col("transcript"),
        Exon_Number=pl.when(pl.col("exon") > 0)
        .then(pl.format("{}/{}", "exon", "n_exons"))
        .otherwise(pl.lit("")),
        t_depth=pl.col("depth"),
        t_ref_count=pl.col("depth") - pl.col("alt_depth"),
        t_alt_count=pl.col("alt_depth"),
        n_depth=pl.lit(""),
        FILTER=pl.col("filter"),
        Consequence=pl.col("consequence"),
        IMPACT=pl.col("impact"),
        CANONICAL=pl.lit("YES"),
        RefSeq=pl.col("refseq"),
    )
    body = maf.write_csv(separator="\t", line_terminator="\n", quote_style="never")
    path.write_text(f"{MAF_VERSION}\n{body}", encoding="utf-8")
