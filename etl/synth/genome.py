"""A made-up but fixed GRCh37 reference for the panel genes the generator mutates.

Exon coordinates are the GRCh37 rows of schema/migrations/data/0001_exons.tsv; FBXW7, which has none
there, gets its GRCh38 model moved onto its GRCh37 span (chr4:153,242,410-153,457,253). Bases are
invented once for all seeds: the coding sequence back-translates a protein (the real IKAROS isoform for
IKZF1, random proteins carrying the real hotspot residues elsewhere) and every other base is a hash of
the position. So a position has the same REF in every file, and codons, amino acids and HGVS notations
agree with the REF.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

import schema
from etl.synth.ikzf1 import IKZF1_PROTEIN
from etl.synth.sampling import IntArray

ASSEMBLY = "GRCh37"
EXONS_FILE = Path(schema.__file__).resolve().parent / "migrations" / "data" / "0001_exons.tsv"
# GRCh37 lengths of the chromosomes the panel genes lie on, in VCF contig order.
CONTIGS: dict[str, int] = {
    "1": 249250621,
    "2": 243199373,
    "4": 191154276,
    "7": 159138663,
    "9": 141213431,
    "10": 135534747,
    "12": 133851895,
    "20": 63025520,
}
FBXW7_GRCH37_SPAN = (153242410, 153457253)
# GRCh38 -> GRCh37 shift that puts FBXW7's 5' end on the end of its GRCh37 span.
FBXW7_SHIFT = 153457253 - 152536092
CONTIG_INDEX = {chrom: i for i, chrom in enumerate(CONTIGS)}
GENOME_ENTROPY = 20170116  # the reference is the same for every seed

BASES = "TCAG"  # base codes 0-3, in the order of the codon table below
CODON_TABLE = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
AA3 = {
    "A": "Ala", "R": "Arg", "N": "Asn", "D": "Asp", "C": "Cys", "Q": "Gln", "E": "Glu", "G": "Gly",
    "H": "His", "I": "Ile", "L": "Leu", "K": "Lys", "M": "Met", "F": "Phe", "P": "Pro", "S": "Ser",
    "T": "Thr", "W": "Trp", "Y": "Tyr", "V": "Val", "*": "Ter", "X": "Xaa",
}  # fmt: skip
# Arginine codons are restricted to the two one step from a stop, so any residue the truth names in a
# nonsense change (Q, R, W, E, K, Y) can become one.
ARGININE_CODONS = ("CGA", "AGA")
RANDOM_RESIDUES = "ACDEFGHIKLNPQRSTVWY"
ALT_TRANSCRIPT_EXTRA_BASES = 96  # length of the made-up transcript's extra first exon
ExonModel = tuple[str, str, int, tuple[tuple[int, int], ...]]  # transcript, chrom, strand, exons


@dataclass(frozen=True)
class GeneInfo:
    gene_id: str
    hgnc_id: str
    transcript_version: int
    refseq: str  # MANE Select RefSeq with version
    protein_id: str
    protein_length: int
    anchor: tuple[int, int]  # (c. position, GRCh37 position of that base): places the CDS on the exons
    hotspots: dict[int, str]  # residue -> reference codon (transcript strand)


GENES: dict[str, GeneInfo] = {
    "IKZF1": GeneInfo("ENSG00000185811", "HGNC:13176", 8, "NM_006060.6", "ENSP00000331614.3", 519,
                      (476, 50450293), {159: "AAT"}),
    "NOTCH1": GeneInfo("ENSG00000148400", "HGNC:7881", 1, "NM_017617.5", "ENSP00000498587.1", 2555,
                       (1, 139440238), {}),
    "FBXW7": GeneInfo("ENSG00000109670", "HGNC:16712", 10, "NM_001349798.2", "ENSP00000281708.4", 707,
                      (1, 153332933), {465: "CGC", 479: "CGG", 505: "CGT"}),
    "KRAS": GeneInfo("ENSG00000133703", "HGNC:6407", 8, "NM_004985.5", "ENSP00000308495.3", 189,
                     (35, 25398284), {12: "GGT", 13: "GGC", 61: "CAA"}),
    "NRAS": GeneInfo("ENSG00000213281", "HGNC:7989", 5, "NM_002524.5", "ENSP00000358548.4", 189,
                     (35, 115258747), {12: "GGT", 13: "GGC", 61: "CAA"}),
    "PTEN": GeneInfo("ENSG00000171862", "HGNC:9588", 8, "NM_000314.8", "ENSP00000361021.3", 403,
                     (1, 89624227), {}),
    "EZH2": GeneInfo("ENSG00000106462", "HGNC:3527", 7, "NM_004456.5", "ENSP00000320147.2", 751,
                     (1936, 148508728), {646: "TAC"}),
    "ASXL1": GeneInfo("ENSG00000171456", "HGNC:18318", 10, "NM_015338.6", "ENSP00000364839.4", 1541,
                      (1934, 31022441), {}),
    "ETV6": GeneInfo("ENSG00000139083", "HGNC:3495", 9, "NM_001987.5", "ENSP00000379658.4", 452,
                     (1, 11803062), {}),
    "DNMT3A": GeneInfo("ENSG00000119772", "HGNC:2978", 10, "NM_022552.5", "ENSP00000324375.5", 912,
                       (2645, 25457242), {882: "CGC"}),
}  # fmt: skip


@dataclass(frozen=True)
class GeneModel:
    """One gene's MANE transcript on GRCh37, plus a made-up second transcript of the same CDS."""

    symbol: str
    info: GeneInfo
    chrom: str
    strand: int  # 1 or -1
    exons: tuple[tuple[int, int], ...]  # genomic (start, end), exon 1 first
    transcript: str  # MANE Select Ensembl id with version
    alt_transcript: str
    alt_protein_id: str
    protein: str  # without the stop
    cds_start: int  # cDNA position of c.1
    cds: npt.NDArray[np.uint8]  # base codes of c.1 .. stop, transcript strand
    c_genomic: IntArray  # GRCh37 position of c.1 .. stop
    c_exon: IntArray  # exon number of c.1 .. stop

    @property
    def n_exons(self) -> int:
        return len(self.exons)

    @property
    def cds_length(self) -> int:
        return len(self.cds)

    def coding_introns(self) -> IntArray:
        """Introns (numbered like the exon before them) between two exons that both hold coding bases."""
        coding = np.unique(self.c_exon)
        return coding[np.isin(coding + 1, coding)]

    def exon_c_bounds(self, exon: IntArray) -> tuple[IntArray, IntArray]:
        """First and last c. position inside each (coding) exon."""
        first = np.searchsorted(self.c_exon, exon, side="left") + 1
        last = np.searchsorted(self.c_exon, exon, side="right")
        return first, last


def base_codes(text: str) -> npt.NDArray[np.uint8]:
    return np.array([BASES.index(b) for b in text], dtype=np.uint8)


def bases_text(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.str_]:
    return np.array(list(BASES))[codes]


def complement(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return codes ^ np.uint8(2)  # T<->A, C<->G in the TCAG coding


def translate(codons: npt.NDArray[np.uint8]) -> npt.NDArray[np.str_]:
    """Amino acid (one letter, * for stop) of each row of an (n, 3) array of base codes."""
    index = 16 * codons[:, 0].astype(np.int64) + 4 * codons[:, 1] + codons[:, 2]
    return np.array(list(CODON_TABLE))[index]


def _index(codon: str) -> int:
    return 16 * BASES.index(codon[0]) + 4 * BASES.index(codon[1]) + BASES.index(codon[2])


def _synonymous_codons() -> dict[str, list[str]]:
    codons: dict[str, list[str]] = {}
    for codon in (a + b + c for a in BASES for b in BASES for c in BASES):
        codons.setdefault(CODON_TABLE[_index(codon)], []).append(codon)
    codons["R"] = list(ARGININE_CODONS)
    return codons


def _exons() -> dict[str, ExonModel]:
    """gene -> (Ensembl transcript without version, chrom, strand, exons in exon-number order)."""
    table = pl.read_csv(EXONS_FILE, separator="\t", schema_overrides={"chrom": pl.String})
    grch37 = table.filter(pl.col("assembly") == ASSEMBLY)
    # FBXW7 has no GRCh37 rows: its GRCh38 exons, shifted.
    fbxw7 = table.filter((pl.col("gene") == "FBXW7") & (pl.col("assembly") == "GRCh38")).with_columns(
        pl.col("start") + FBXW7_SHIFT, pl.col("end") + FBXW7_SHIFT
    )
    out = {}
    for (gene,), rows in pl.concat([grch37, fbxw7]).sort("exon_number").group_by("gene", maintain_order=True):
        strand = 1 if rows["strand"][0] == "+" else -1
        exons = tuple(zip(rows["start"].to_list(), rows["end"].to_list(), strict=True))
        out[str(gene)] = (rows["transcript"][0], rows["chrom"][0], strand, exons)
    return out


def _protein(symbol: str, info: GeneInfo, rng: np.random.Generator) -> str:
    if symbol == "IKZF1":
        return IKZF1_PROTEIN
    residues = list("M" + "".join(rng.choice(list(RANDOM_RESIDUES), size=info.protein_length - 1)))
    for residue, codon in info.hotspots.items():
        residues[residue - 1] = CODON_TABLE[_index(codon)]
    return "".join(residues)


def _model(symbol: str, rng: np.random.Generator, exon_table: dict[str, ExonModel]) -> GeneModel:
    info = GENES[symbol]
    transcript, chrom, strand, exons = exon_table[symbol]
    # Genomic position and exon number of every cDNA base, 5' to 3' along the transcript.
    pieces = [np.arange(s, e + 1) if strand == 1 else np.arange(e, s - 1, -1) for s, e in exons]
    tx_genomic = np.concatenate(pieces)
    tx_exon = np.concatenate([np.full(len(p), k + 1) for k, p in enumerate(pieces)])
    c_anchor, g_anchor = info.anchor
    cds_start = int(np.flatnonzero(tx_genomic == g_anchor)[0]) + 1 - (c_anchor - 1)
    protein = _protein(symbol, info, rng)
    by_residue = _synonymous_codons()
    codons = ["ATG"]
    for residue, aa in enumerate(protein[1:], start=2):
        choices = by_residue[aa]
        codons.append(info.hotspots.get(residue, choices[int(rng.integers(0, len(choices)))]))
    codons.append(("TAA", "TAG", "TGA")[int(rng.integers(0, 3))])
    cds = base_codes("".join(codons))
    span = slice(cds_start - 1, cds_start - 1 + len(cds))
    if span.start < 0 or span.stop > len(tx_genomic):
        raise ValueError(f"{symbol}: the coding sequence does not fit on its exons")
    number = int(transcript.removeprefix("ENST"))
    return GeneModel(
        symbol=symbol,
        info=info,
        chrom=chrom,
        strand=strand,
        exons=exons,
        transcript=f"{transcript}.{info.transcript_version}",
        # A made-up second transcript with one more (non-coding) first exon: exon numbers differ by one.
        alt_transcript=f"ENST{number + 600000:011d}.1",
        alt_protein_id=f"ENSP{number + 600000:011d}.1",
        protein=protein,
        cds_start=cds_start,
        cds=cds,
        c_genomic=tx_genomic[span],
        c_exon=tx_exon[span],
    )


@functools.cache
def gene_models() -> dict[str, GeneModel]:
    exon_table = _exons()
    root = np.random.SeedSequence(GENOME_ENTROPY)
    streams = root.spawn(len(GENES))
    return {
        symbol: _model(symbol, np.random.default_rng(stream), exon_table)
        for symbol, stream in zip(GENES, streams, strict=True)
    }


def _keys(chrom_index: IntArray, pos: IntArray) -> npt.NDArray[np.uint64]:
    return (chrom_index.astype(np.uint64) << np.uint64(32)) | pos.astype(np.uint64)


@functools.cache
def _coding_bases() -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]:
    """Sorted position keys and base codes (plus strand) of the genes' coding sequences."""
    keys, codes = [], []
    for model in gene_models().values():
        keys.append(_keys(np.full(model.cds_length, CONTIG_INDEX[model.chrom]), model.c_genomic))
        codes.append(model.cds if model.strand == 1 else complement(model.cds))
    all_keys, all_codes = np.concatenate(keys), np.concatenate(codes)
    order = np.argsort(all_keys, kind="stable")
    return all_keys[order], all_codes[order]


def reference_codes(chrom: npt.NDArray[np.str_], pos: IntArray) -> npt.NDArray[np.uint8]:
    """Base codes (plus strand) of the synthetic GRCh37 reference at the given positions."""
    keys = _keys(pl.Series(chrom).replace_strict(CONTIG_INDEX).to_numpy(), pos)
    # splitmix64 of the position: fixed pseudo-random bases outside the genes' coding sequences.
    z = keys + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out = ((z ^ (z >> np.uint64(31))) & np.uint64(3)).astype(np.uint8)
    fixed_keys, fixed_codes = _coding_bases()
    at = np.clip(np.searchsorted(fixed_keys, keys), 0, len(fixed_keys) - 1)
    hit = fixed_keys[at] == keys
    out[hit] = fixed_codes[at[hit]]
    return out
