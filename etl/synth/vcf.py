"""GRAALL small-variant calls as multi-sample tumor/normal VCFs annotated by VEP (CSQ), in batches.

One VCF per batch of at most BATCH_PATIENTS patients, with a diagnosis (tumor) and a germline column per
patient. Calls of several samples at one site share a record; different ALT alleles at one site make a
multi-allelic record (GT 0/2, AD and AF per allele). A record holds either SNVs, or deletions of one
length, or insertions, with one FILTER; a background call (synonymous, intronic, filtered missense) that
would share a position with a record of another kind is left out, so no record mixes PASS and filtered
calls. Non-carriers are 0/0 with their depth (a few ./. without coverage).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from etl.synth.genome import CONTIG_INDEX, CONTIGS, gene_models

VCF_DIR = "vcf"
BATCH_PATIENTS = 60
CSQ_FORMAT = (
    "Allele|Consequence|IMPACT|SYMBOL|Gene|Feature_type|Feature|BIOTYPE|EXON|INTRON|HGVSc|HGVSp|cDNA_position|"
    "CDS_position|Protein_position|Amino_acids|Codons|Existing_variation|DISTANCE|STRAND|FLAGS|SYMBOL_SOURCE|"
    "HGNC_ID|CANONICAL|MANE_SELECT|GIVEN_REF|USED_REF"
)
CSQ_HEADER = (
    '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. '
    f'Format: {CSQ_FORMAT}">'
)
HEADER = [
    "##fileformat=VCFv4.2",
    "##fileDate=20160915",
    "##source=tall-pipe 2.3.1 (Mutect2 tumor/normal)",
    "##reference=GRCh37",
    *(f"##contig=<ID={chrom},length={length}>" for chrom, length in CONTIGS.items()),
    '##FILTER=<ID=PASS,Description="All filters passed">',
    '##FILTER=<ID=weak_evidence,Description="Mutation does not meet likelihood threshold">',
    '##FILTER=<ID=strand_bias,Description="Evidence for alt allele comes from one read direction only">',
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Approximate read depth over all samples">',
    CSQ_HEADER,
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths for the ref and alt alleles">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Approximate read depth">',
    '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fractions of alternate alleles">',
    '##VEP="v106"',
]
COLUMNS = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]
NO_CALL = "./.:.:.:."
NO_CALL_SHARE = 0.004  # of non-carrier cells without coverage
NON_CARRIER_DEPTH = ((120, 900), (60, 400))  # tumor, germline columns
CHUNK_BATCHES = 40  # batches formatted at once: bounds memory at 100,000 patients


def batch_name(batch: int) -> str:
    return f"graall_batch_{batch + 1:03d}.vcf"


def _csq_entry(mane: bool) -> pl.Expr:
    """One CSQ entry (27 fields) of the allele on the MANE or on the other transcript."""
    shift = 0 if mane else 1
    coding = pl.col("exon") > 0
    exon = pl.format("{}/{}", pl.col("exon") + shift, pl.col("n_exons") + shift)
    intron = pl.format("{}/{}", pl.col("intron") + shift, pl.col("n_exons") - 1 + shift)
    # VEP escapes "=" in HGVSp (p.Leu45= becomes p.Leu45%3D).
    hgvsp = pl.col("hgvsp").str.replace("=", "%3D", literal=True)
    transcript = pl.col("transcript" if mane else "alt_transcript")
    protein = pl.col("protein_id" if mane else "alt_protein_id")
    fields = [
        pl.col("vep_allele"),
        pl.col("consequence"),
        pl.col("impact"),
        pl.col("gene"),
        pl.col("gene_id"),
        pl.lit("Transcript"),
        transcript,
        pl.lit("protein_coding"),
        pl.when(coding).then(exon).otherwise(pl.lit("")),
        pl.when(coding).then(pl.lit("")).otherwise(intron),
        pl.format("{}:{}", transcript, "hgvsc"),
        pl.when(pl.col("hgvsp") == "").then(pl.lit("")).otherwise(pl.format("{}:{}", protein, hgvsp)),
        pl.col("cdna_position" if mane else "alt_cdna_position"),
        pl.col("cds_position"),
        pl.col("protein_position").cast(pl.String).fill_null(""),
        pl.col("amino_acids"),
        pl.col("codons"),
        pl.col("existing"),
        pl.lit(""),
        pl.col("strand").cast(pl.String),
        pl.lit(""),
        pl.lit("HGNC"),
        pl.col("hgnc_id"),
        pl.lit("YES" if mane else ""),
        pl.col("refseq") if mane else pl.lit(""),
        pl.col("ref"),
        pl.col("ref"),
    ]  # fmt: skip
    return pl.concat_str(fields, separator="|")


def allele_csq(alleles: pl.DataFrame) -> pl.DataFrame:
    """chrom, pos, ref, alt and the allele's two CSQ entries (MANE first for two sites in three)."""
    models = gene_models().values()
    genes = pl.DataFrame(
        {
            "gene": [m.symbol for m in models],
            "gene_id": [m.info.gene_id for m in models],
            "hgnc_id": [m.info.hgnc_id for m in models],
            "transcript": [m.transcript for m in models],
            "alt_transcript": [m.alt_transcript for m in models],
            "protein_id": [m.info.protein_id for m in models],
            "alt_protein_id": [m.alt_protein_id for m in models],
            "refseq": [m.info.refseq for m in models],
            "strand": [m.strand for m in models],
        }
    )
    with_gene = alleles.join(genes, on="gene", how="left")
    mane, other = _csq_entry(True), _csq_entry(False)
    # VEP lists transcripts in no fixed order: a reader must pick the MANE one, not the first.
    csq = (
        pl.when(pl.col("pos") % 3 == 0)
        .then(pl.format("{},{}", other, mane))
        .otherwise(pl.format("{},{}", mane, other))
    )
    return with_gene.select("chrom", "pos", "ref", "alt", "existing", csq.alias("csq"))


def _records(calls: pl.DataFrame) -> pl.DataFrame:
    """Calls with their record (batch, site, kind of allele, FILTER) and allele index in that record."""
    calls = calls.with_columns(
        kind=(pl.col("alt").str.len_chars() - pl.col("ref").str.len_chars()).sign(),
        contig=pl.col("chrom").replace_strict(CONTIG_INDEX, return_dtype=pl.Int32),
    )
    record_key = ["batch", "contig", "pos", "ref", "kind", "filter"]
    clash = pl.struct(record_key).n_unique().over("batch", "contig", "pos") > 1
    calls = calls.filter(~(clash & (pl.col("category") == "background")))
    records = calls.select(record_key).unique().sort(record_key).with_row_index("record")
    calls = calls.join(records, on=record_key, how="left")
    alleles = (
        calls.select("record", "alt")
        .unique()
        .sort("record", "alt")
        .with_columns(allele=pl.int_range(1, pl.len() + 1).over("record"), n_alt=pl.len().over("record"))
    )
    return calls.join(alleles, on=["record", "alt"], how="left")


def _fraction(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    """part / whole with exactly three decimals (0.231, 1.000)."""
    milli = (part * 1000 / whole).round(0).cast(pl.Int64)
    return pl.format("{}.{}", milli // 1000, (milli % 1000).cast(pl.String).str.zfill(3))


def _cells(
    rng: np.random.Generator, calls: pl.DataFrame, records: pl.DataFrame, width: np.ndarray
) -> pl.DataFrame:
    """Per record: the tab-joined sample cells and the summed depth (INFO DP)."""
    n_records = records.height
    counts = width[records["batch"].to_numpy()]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    record_of = np.repeat(np.arange(n_records), counts)
    column = np.arange(len(record_of)) - offsets[record_of]
    (tumor_low, tumor_high), (germline_low, germline_high) = NON_CARRIER_DEPTH
    depth = np.where(
        column % 2 == 0,  # a tumor then a germline column per patient
        rng.integers(tumor_low, tumor_high + 1, size=len(column)),
        rng.integers(germline_low, germline_high + 1, size=len(column)),
    )
    missing = rng.random(len(column)) < NO_CALL_SHARE
    n_alt = records["n_alt"].to_numpy()[record_of]
    zeros = pl.Series(n_alt).replace_strict(
        {k: ",".join(["0"] * k) for k in range(1, int(n_alt.max(initial=1)) + 1)}, return_dtype=pl.String
    )
    cells = pl.select(
        pl.when(pl.Series(missing))
        .then(pl.lit(NO_CALL))
        .otherwise(pl.format("0/0:{},{}:{}:{}", pl.Series(depth), zeros, pl.Series(depth), zeros))
    ).to_series()
    at = offsets[calls["record"].to_numpy()] + calls["col"].to_numpy()
    max_alt = int(calls["n_alt"].to_numpy().max(initial=1))
    allele, n = pl.col("allele"), pl.col("n_alt")

    def per_allele(value: pl.Expr) -> pl.Expr:
        """One value per ALT allele of the record: `value` for the carried one, 0 for the others."""
        slots = [pl.when(allele == k).then(value).otherwise(pl.lit("0")) for k in range(1, max_alt + 1)]
        return pl.concat_list(slots).list.head(n).list.join(",")

    genotype = (
        pl.when(pl.col("hom")).then(pl.format("{}/{}", allele, allele)).otherwise(pl.format("0/{}", allele))
    )
    carrier = calls.select(
        pl.format(
            "{}:{},{}:{}:{}",
            genotype,
            pl.col("depth") - pl.col("alt_depth"),
            per_allele(pl.col("alt_depth").cast(pl.String)),
            pl.col("depth"),
            per_allele(_fraction(pl.col("alt_depth"), pl.col("depth"))),
        )
    ).to_series()
    cells = cells.scatter(at, carrier)
    depth[at] = calls["depth"].to_numpy()
    missing[at] = False
    return (
        pl.DataFrame({"record": record_of, "cell": cells, "dp": np.where(missing, 0, depth)})
        .group_by("record", maintain_order=True)
        .agg(pl.col("cell").str.join("\t"), pl.col("dp").sum())
    )


def write_vcfs(
    folder: Path,
    calls: pl.DataFrame,
    csq: pl.DataFrame,
    batch_samples: list[list[str]],
    rng: np.random.Generator,
) -> list[Path]:
    """Write one VCF per batch; `calls` carry batch and col (sample column inside the batch)."""
    folder.mkdir(parents=True, exist_ok=True)
    width = np.array([len(s) for s in batch_samples])
    paths = []
    for first in range(0, len(batch_samples), CHUNK_BATCHES):
        chunk = calls.filter(pl.col("batch").is_between(first, first + CHUNK_BATCHES - 1))
        chunk = _records(chunk)
        records = (
            chunk.group_by("record")
            .agg(pl.first("batch", "chrom", "pos", "ref", "filter", "n_alt"))
            .sort("record")
        )
        alleles = (
            chunk.select("record", "allele", "chrom", "pos", "ref", "alt")
            .unique(["record", "allele"])
            .join(csq, on=["chrom", "pos", "ref", "alt"], how="left")
            .sort("record", "allele")
            .group_by("record", maintain_order=True)
            .agg(
                pl.col("alt").str.join(","),
                pl.col("csq").str.join(","),
                pl.col("existing").filter(pl.col("existing") != "").first().fill_null("."),
            )
        )
        cells = _cells(rng, chunk, records, width)
        lines = (
            records.join(alleles, on="record").join(cells, on="record").sort("record")
            .select(
                "batch",
                pl.concat_str(
                    [
                        pl.col("chrom"), pl.col("pos").cast(pl.String), pl.col("existing"), pl.col("ref"),
                        pl.col("alt"), pl.lit("."), pl.col("filter"), pl.format("DP={};CSQ={}", "dp", "csq"),
                        pl.lit("GT:AD:DP:AF"), pl.col("cell"),
                    ],
                    separator="\t",
                ).alias("line"),
            )
            .group_by("batch", maintain_order=True)
            .agg(pl.col("line").str.join("\n"))
        )  # fmt: skip
        for batch, body in lines.iter_rows():
            header = "\n".join([*HEADER, "\t".join([*COLUMNS, *batch_samples[batch]])])
            path = folder / batch_name(batch)
            path.write_text(f"{header}\n{body}\n", encoding="utf-8")
            paths.append(path)
    return paths
