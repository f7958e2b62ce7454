"""VEP-style annotation of the generated alleles on the synthetic GRCh37 reference.

An allele is given on the transcript: kind ("snv", "del", "ins"), c. position, offset into the intron
(0 for coding bases), deletion length and the new base on the transcript strand. `annotate` places it on
the genome (VCF and MAF conventions) and names its effect on the MANE transcript the way VEP 106 does
(consequence, impact, HGVSc/HGVSp, positions, amino acids, codons, exon or intron).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from etl.synth.genome import (
    AA3,
    ALT_TRANSCRIPT_EXTRA_BASES,
    GeneModel,
    bases_text,
    complement,
    gene_models,
    reference_codes,
    translate,
)

# Consequence -> (IMPACT, MAF Variant_Classification); frameshifts are Frame_Shift_Del or _Ins.
CONSEQUENCES: dict[str, tuple[str, str]] = {
    "missense_variant": ("MODERATE", "Missense_Mutation"),
    "stop_gained": ("HIGH", "Nonsense_Mutation"),
    "synonymous_variant": ("LOW", "Silent"),
    "frameshift_variant": ("HIGH", "Frame_Shift"),
    "intron_variant": ("MODIFIER", "Intron"),
}
SITE_COLUMNS = ("gene", "kind", "c", "offset", "length", "alt")
LOWER = np.array(list("tcag"))
UPPER = np.array(list("TCAG"))
FALLBACK_RESIDUES = "RSLPAG"  # a frameshift's first new residue when the shifted codon reads the same


def _cat(*parts: npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
    out = parts[0]
    for part in parts[1:]:
        out = np.char.add(out, part)
    return out


def _gene_sites(model: GeneModel, sites: pl.DataFrame) -> dict[str, np.ndarray]:
    """Genomic placement and amino-acid effect of one gene's alleles (numpy columns)."""
    n = sites.height
    kind = sites["kind"].to_numpy()
    c = sites["c"].to_numpy().astype(np.int64)
    offset = sites["offset"].to_numpy().astype(np.int64)
    length = sites["length"].to_numpy().astype(np.int64)
    alt_tx = sites["alt"].to_numpy().astype(np.uint8)
    snv, deletion, insertion = kind == "snv", kind == "del", kind == "ins"
    coding = snv & (offset == 0)
    chrom = np.full(n, model.chrom)

    # Placement on the plus strand (VCF: indels anchored on the base before them).
    g = model.c_genomic[c - 1]
    g_last = model.c_genomic[np.minimum(c - 1 + length - 1, model.cds_length - 1)]
    g_next = model.c_genomic[np.minimum(c, model.cds_length - 1)]
    pos = np.where(
        snv, g + model.strand * offset, np.where(deletion, np.minimum(g, g_last) - 1, np.minimum(g, g_next))
    )
    ref_codes = [reference_codes(chrom, pos + i) for i in range(3)]
    ref_text = [bases_text(codes) for codes in ref_codes]
    alt_plus = bases_text(alt_tx if model.strand == 1 else complement(alt_tx))
    deleted = np.where(length == 2, np.char.add(ref_text[1], ref_text[2]), ref_text[1])
    ref = np.where(deletion, np.char.add(ref_text[0], deleted), ref_text[0])
    alt = np.where(snv, alt_plus, np.where(deletion, ref_text[0], np.char.add(ref_text[0], alt_plus)))
    tx_ref_base = ref_codes[0] if model.strand == 1 else complement(ref_codes[0])

    # Effect on the protein.
    residue = (c - 1) // 3 + 1
    phase = (c - 1) % 3
    safe = np.minimum(residue, len(model.protein))
    window = model.cds[(3 * safe - 3)[:, None] + np.arange(6)]
    codon = window[:, :3]
    rows = np.arange(n)
    mutated = codon.copy()
    mutated[rows, phase] = alt_tx
    ref_aa, alt_aa = translate(codon), translate(mutated)
    # First codon after the frameshift: the window with the deletion removed or the base inserted.
    j = np.arange(3)[None, :]
    p = phase[:, None]
    after_deletion = np.where(j < p, j, j + length[:, None])
    shifted = np.take_along_axis(window, np.minimum(after_deletion, 5), axis=1)
    after_insertion = np.take_along_axis(window, np.clip(np.where(j <= p, j, j - 1), 0, 5), axis=1)
    after_insertion = np.where(j == p + 1, alt_tx[:, None], after_insertion)
    new_aa = translate(np.where(deletion[:, None], shifted, after_insertion).astype(np.uint8))
    fallback = np.array([next(r for r in FALLBACK_RESIDUES if r != aa) for aa in ref_aa])
    new_aa = np.where((new_aa == ref_aa) | (new_aa == "*"), fallback, new_aa)
    consequence = np.select(
        [
            coding & (alt_aa == "*"),
            coding & (alt_aa == ref_aa),
            coding,
            snv,
        ],
        ["stop_gained", "synonymous_variant", "missense_variant", "intron_variant"],
        default="frameshift_variant",
    )
    # Codons: lower case, with the changed bases in upper case (VEP's notation).
    changed = [(j_ == phase) | (deletion & (j_ == phase + length - 1)) for j_ in range(3)]
    ref_codon = [np.where(changed[j_], UPPER[codon[:, j_]], LOWER[codon[:, j_]]) for j_ in range(3)]
    snv_alt = [np.where(j_ == phase, UPPER[mutated[:, j_]], LOWER[mutated[:, j_]]) for j_ in range(3)]
    kept = [
        np.where(deletion & (j_ >= phase) & (j_ < phase + length), "", LOWER[codon[:, j_]]) for j_ in range(3)
    ]
    inserted = [np.where(phase == j_, UPPER[alt_tx], "") for j_ in range(3)]
    ins_alt = _cat(LOWER[codon[:, 0]], inserted[0], LOWER[codon[:, 1]], inserted[1], LOWER[codon[:, 2]])
    codons = np.where(
        insertion,
        _cat(LOWER[codon[:, 0]], LOWER[codon[:, 1]], LOWER[codon[:, 2]], np.full(n, "/"), ins_alt),
        np.where(
            deletion, _cat(*ref_codon, np.full(n, "/"), *kept), _cat(*ref_codon, np.full(n, "/"), *snv_alt)
        ),
    )
    exon = model.c_exon[c - 1]
    return {
        "chrom": chrom,
        "pos": pos,
        "ref": ref,
        "alt_allele": alt,
        "vep_allele": np.where(snv, alt_plus, np.where(deletion, "-", alt_plus)),
        "maf_start": np.where(deletion, pos + 1, pos),
        "maf_end": np.where(deletion, pos + length, np.where(insertion, pos + 1, pos)),
        "maf_ref": np.where(deletion, deleted, np.where(insertion, "-", ref)),
        "maf_alt": np.where(deletion, "-", alt_plus),
        "variant_type": np.where(snv, "SNP", np.where(deletion, "DEL", "INS")),
        "consequence": consequence,
        "ref_tx": bases_text(tx_ref_base),
        "alt_tx": bases_text(alt_tx),
        "residue": residue,
        "ref_aa": ref_aa,
        "alt_aa": np.where(snv, alt_aa, new_aa),
        "codons": codons,
        "exon": np.where(snv & (offset != 0), 0, exon),
        "intron": np.where(snv & (offset != 0), np.where(offset > 0, exon, exon - 1), 0),
        "cdna": model.cds_start + c - 1,
        "n_exons": np.full(n, model.n_exons),
        # The frameshift's new stop: a fixed function of the site, so that an allele has one annotation.
        "ter": 2 + (c * 31 + length * 7) % 47,
    }


def _positions(first: pl.Expr, intronic: pl.Expr, one_base: pl.Expr) -> pl.Expr:
    """VEP's cDNA/CDS position: one number, a range for two bases, nothing inside an intron."""
    return (
        pl.when(intronic)
        .then(pl.lit(""))
        .when(one_base)
        .then(first.cast(pl.String))
        .otherwise(pl.format("{}-{}", first, first + 1))
    )


def annotate(sites: pl.DataFrame) -> pl.DataFrame:
    """`sites` (distinct SITE_COLUMNS rows) with their genomic alleles and MANE annotation added."""
    parts = []
    for (gene,), rows in sites.group_by("gene", maintain_order=True):
        cols = _gene_sites(gene_models()[str(gene)], rows)
        parts.append(rows.with_columns(**{k: pl.Series(v) for k, v in cols.items()}))
    frame = pl.concat(parts)
    c, length = pl.col("c"), pl.col("length")
    coding_snv = (pl.col("kind") == "snv") & (pl.col("offset") == 0)
    intronic = (pl.col("kind") == "snv") & (pl.col("offset") != 0)
    one_base = coding_snv | ((pl.col("kind") == "del") & (length == 1))
    aa3 = {"ref_aa": "ref3", "alt_aa": "alt3"}
    consequence = pl.col("consequence")
    return (
        frame.with_columns(
            *(pl.col(k).replace_strict(AA3, return_dtype=pl.String).alias(v) for k, v in aa3.items()),
            impact=consequence.replace_strict({k: v[0] for k, v in CONSEQUENCES.items()}),
            maf_class=pl.when(consequence == "frameshift_variant")
            .then(
                pl.when(pl.col("kind") == "del")
                .then(pl.lit("Frame_Shift_Del"))
                .otherwise(pl.lit("Frame_Shift_Ins"))
            )
            .otherwise(consequence.replace_strict({k: v[1] for k, v in CONSEQUENCES.items()})),
            hgvsc=pl.when(coding_snv)
            .then(pl.format("c.{}{}>{}", c, "ref_tx", "alt_tx"))
            .when(intronic)
            .then(
                pl.format(
                    "c.{}{}{}{}>{}",
                    c,
                    pl.when(pl.col("offset") > 0).then(pl.lit("+")).otherwise(pl.lit("-")),
                    pl.col("offset").abs(),
                    "ref_tx",
                    "alt_tx",
                )
            )
            .when((pl.col("kind") == "del") & (length == 1))
            .then(pl.format("c.{}del", c))
            .when(pl.col("kind") == "del")
            .then(pl.format("c.{}_{}del", c, c + 1))
            .otherwise(pl.format("c.{}_{}ins{}", c, c + 1, "alt_tx")),
            cdna_position=_positions(pl.col("cdna"), intronic, one_base),
            alt_cdna_position=_positions(pl.col("cdna") + ALT_TRANSCRIPT_EXTRA_BASES, intronic, one_base),
            cds_position=_positions(c, intronic, one_base),
        )
        .with_columns(
            hgvsp=pl.when(intronic)
            .then(pl.lit(""))
            .when(consequence == "synonymous_variant")
            .then(pl.format("p.{}{}=", "ref3", "residue"))
            .when(consequence == "frameshift_variant")
            .then(pl.format("p.{}{}{}fsTer{}", "ref3", "residue", "alt3", "ter"))
            .otherwise(pl.format("p.{}{}{}", "ref3", "residue", "alt3")),
            hgvsp_short=pl.when(intronic)
            .then(pl.lit(""))
            .when(consequence == "synonymous_variant")
            .then(pl.format("p.{}{}=", "ref_aa", "residue"))
            .when(consequence == "frameshift_variant")
            .then(pl.format("p.{}{}{}fs*{}", "ref_aa", "residue", "alt_aa", "ter"))
            .otherwise(pl.format("p.{}{}{}", "ref_aa", "residue", "alt_aa")),
            amino_acids=pl.when(intronic)
            .then(pl.lit(""))
            .when(consequence == "synonymous_variant")
            .then(pl.col("ref_aa"))
            .when(consequence == "frameshift_variant")
            .then(pl.format("{}/X", "ref_aa"))
            .otherwise(pl.format("{}/{}", "ref_aa", "alt_aa")),
            codons=pl.when(intronic).then(pl.lit("")).otherwise(pl.col("codons")),
            protein_position=pl.when(intronic).then(None).otherwise(pl.col("residue")),
        )
        .drop("ref3", "alt3", "cdna", "ter")
    )
