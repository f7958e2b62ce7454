"""Small-variant calls of the diagnosis (and germline) samples, as truth.parquet says, plus decoys.

Every mutation flag of the truth becomes at least one PASS call inside the gene's exons that changes the
protein on the MANE transcript (missense at the gene's hotspots or in its usual domain, stop gained,
frameshift), and the IKZF1 mutations are exactly the truth's (N159S/T, frameshift or stop at the named
residue). Around them are calls that must not count: synonymous and deep intronic calls, filtered
missense calls, common polymorphisms (also in the germline samples), and a few IKZF1-germline patients
with an IKZF1 missense outside codon 159 or a synonymous IKZF1 call.

Calls are annotated once per distinct allele from the synthetic reference (etl.synth.genome), so the
VCF and MAF writers only format them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from etl.synth.annotation import SITE_COLUMNS, annotate
from etl.synth.calibration import PUBLISHED_PATIENTS, largest_remainder
from etl.synth.genome import (
    BASES,
    GENOME_ENTROPY,
    GeneModel,
    complement,
    gene_models,
    reference_codes,
    translate,
)
from etl.synth.sampling import IntArray

StrArray = npt.NDArray[np.str_]
Accept = Callable[[StrArray, StrArray], npt.NDArray[np.bool_]]


@dataclass(frozen=True)
class Hotspot:
    residue: int
    changes: tuple[
        tuple[int, str, int], ...
    ]  # (codon position 0-2, new base on the transcript strand, weight)


HOTSPOTS: dict[str, tuple[Hotspot, ...]] = {
    "KRAS": (
        Hotspot(12, ((1, "A", 35), (1, "T", 20), (0, "T", 10), (0, "A", 5))),  # G12D, G12V, G12C, G12S
        Hotspot(13, ((1, "A", 15),)),  # G13D
        Hotspot(61, ((2, "T", 5), (1, "G", 5), (1, "T", 5))),  # Q61H, Q61R, Q61L
    ),
    "NRAS": (
        Hotspot(12, ((1, "A", 25), (0, "A", 10))),  # G12D, G12S
        Hotspot(13, ((1, "A", 20), (0, "C", 5))),  # G13D, G13R
        Hotspot(61, ((1, "G", 20), (0, "A", 15), (1, "T", 5))),  # Q61R, Q61K, Q61L
    ),
    "FBXW7": (
        Hotspot(465, ((1, "A", 30), (0, "T", 25))),  # R465H, R465C
        Hotspot(479, ((1, "A", 15),)),  # R479Q
        Hotspot(505, ((0, "T", 20), (0, "G", 10))),  # R505C, R505G
    ),
    "DNMT3A": (Hotspot(882, ((1, "A", 60), (0, "T", 40))),),  # R882H, R882C
    "EZH2": (Hotspot(646, ((0, "A", 50), (1, "T", 50))),),  # Y646N, Y646F
}
# Kind of mutation per mutated gene (weights), and where in the protein each kind falls.
SPECTRUM: dict[str, dict[str, int]] = {
    "NOTCH1": {"missense": 60, "frameshift": 25, "nonsense": 15},
    "FBXW7": {"hotspot": 80, "missense": 10, "nonsense": 10},
    "KRAS": {"hotspot": 100},
    "NRAS": {"hotspot": 100},
    "PTEN": {"frameshift": 60, "nonsense": 25, "missense": 15},
    "EZH2": {"hotspot": 20, "missense": 30, "frameshift": 30, "nonsense": 20},
    "ASXL1": {"frameshift": 70, "nonsense": 30},
    "ETV6": {"missense": 45, "frameshift": 35, "nonsense": 20},
    "DNMT3A": {"hotspot": 40, "missense": 30, "frameshift": 20, "nonsense": 10},
}
REGIONS: dict[tuple[str, str], tuple[int, int]] = {
    ("NOTCH1", "missense"): (1571, 1730),  # heterodimerisation domain
    ("NOTCH1", "frameshift"): (2350, 2550),  # PEST domain
    ("NOTCH1", "nonsense"): (2350, 2550),
    ("ASXL1", "frameshift"): (600, 1400),  # last exon
    ("ASXL1", "nonsense"): (600, 1400),
}
TRUTH_FLAGS = {
    "NOTCH1": "notch1_mut",
    "FBXW7": "fbxw7_mut",
    "KRAS": "kras_mut",
    "NRAS": "nras_mut",
    "PTEN": "pten_mut",
    "EZH2": "ezh2_mut",
    "ASXL1": "asxl1_mut",
    "ETV6": "etv6_mut",
    "DNMT3A": "dnmt3a_mut",
}
SECOND_NOTCH1_SHARE = 0.2  # NOTCH1-mutated T-ALLs often carry two NOTCH1 mutations
# Per-patient rates of calls that must not count; IKZF1 only gets intronic ones (its decoys are counted).
BACKGROUND_RATES = {"synonymous": 0.3, "intron": 0.3, "filtered_missense": 0.2}
BACKGROUND_FILTERS = ("weak_evidence", "strand_bias")
# IKZF1-germline patients with an IKZF1 call that is not an alteration, per 476 patients.
IKZF1_DECOYS = {"other_missense": 2, "synonymous": 1}
# Common polymorphisms: (gene, region, population allele frequency of each ALT allele).
POLYMORPHISMS: tuple[tuple[str, str, tuple[float, ...]], ...] = (
    ("NOTCH1", "synonymous", (0.35,)),
    ("NOTCH1", "intron", (0.2,)),
    ("NOTCH1", "synonymous", (0.12, 0.06)),
    ("IKZF1", "intron", (0.3,)),
    ("IKZF1", "intron", (0.12, 0.08)),
    ("FBXW7", "intron", (0.1,)),
    ("PTEN", "intron", (0.15,)),
    ("KRAS", "synonymous", (0.08,)),
    ("EZH2", "synonymous", (0.25,)),
    ("ASXL1", "synonymous", (0.2,)),
    ("ETV6", "intron", (0.3,)),
    ("DNMT3A", "synonymous", (0.18,)),
)
POLYMORPHISM_SPAWN_KEY = 100  # their sites are the same for every seed, like the reference
INTRON_OFFSETS = (9, 30)  # deep enough to be intron_variant, not splice_region_variant
TUMOR_DEPTH = (150, 900)
GERMLINE_DEPTH = (60, 400)
TUMOR_VAF = (0.05, 0.5)
FILTERED_VAF = (0.01, 0.05)
# Ranking of calls when two of a patient's would land on the same position.
PRIORITY = {"driver": 0, "decoy": 1, "polymorphism": 2, "background": 3}
PROTEIN_CHANGE = re.compile(r"^p\.([A-Z])(\d+)(.+)$")


@dataclass
class Calls:
    """Distinct alleles with their annotation, and the samples carrying them."""

    alleles: pl.DataFrame  # chrom, pos, ref, alt + annotation (one row per distinct allele)
    calls: pl.DataFrame  # patient, tumor, chrom, pos, ref, alt, filter, category, depth, alt_depth, hom


class _Events:
    """Column lists of patient-level events, concatenated once."""

    COLUMNS = ("patient", "gene", "category", "filter", "kind", "c", "offset", "length", "alt", "hom")

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(
        self, patient: IntArray, gene: str, category: str, filters: StrArray | str, **site: np.ndarray
    ) -> None:
        n = len(patient)
        part = {
            "patient": patient,
            "gene": np.full(n, gene),
            "category": np.full(n, category),
            "filter": np.broadcast_to(np.asarray(filters), (n,)).astype(str),
            "kind": site.get("kind", np.full(n, "snv")),
            "c": site["c"],
            "offset": site.get("offset", np.zeros(n, dtype=np.int64)),
            "length": site.get("length", np.ones(n, dtype=np.int64)),
            "alt": site.get("alt", np.zeros(n, dtype=np.uint8)),
            "hom": site.get("hom", np.zeros(n, dtype=np.bool_)),
        }
        self.parts.append(part)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {col: np.concatenate([p[col] for p in self.parts]) for col in self.COLUMNS},
            schema_overrides={"alt": pl.UInt8},
        )


def _missense(ref: StrArray, alt: StrArray) -> npt.NDArray[np.bool_]:
    return (alt != ref) & (alt != "*")


def _nonsense(ref: StrArray, alt: StrArray) -> npt.NDArray[np.bool_]:
    return (alt == "*") & (ref != "*")


def _synonymous(ref: StrArray, alt: StrArray) -> npt.NDArray[np.bool_]:
    return alt == ref


def _substitutions(
    rng: np.random.Generator,
    model: GeneModel,
    accept: Accept,
    residues: IntArray | None = None,
    n: int = 0,
    region: tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """Coding SNVs whose amino-acid change passes `accept`, at given residues or random ones in region."""
    n = len(residues) if residues is not None else n
    low, high = region or (2, len(model.protein))
    c = np.zeros(n, dtype=np.int64)
    alt = np.zeros(n, dtype=np.uint8)
    todo = np.arange(n)
    for _ in range(500):
        if len(todo) == 0:
            break
        k = residues[todo] if residues is not None else rng.integers(low, high + 1, size=len(todo))
        phase = rng.integers(0, 3, size=len(todo))
        base = rng.integers(0, 4, size=len(todo)).astype(np.uint8)
        codon = model.cds[(3 * k - 3)[:, None] + np.arange(3)]
        mutated = codon.copy()
        rows = np.arange(len(todo))
        mutated[rows, phase] = base
        ok = (codon[rows, phase] != base) & accept(translate(codon), translate(mutated))
        c[todo[ok]] = 3 * k[ok] - 2 + phase[ok]
        alt[todo[ok]] = base[ok]
        todo = todo[~ok]
    if len(todo):
        raise ValueError(f"{model.symbol}: no substitution found for {len(todo)} residues")
    return {"c": c, "alt": alt}


def _frameshifts(rng: np.random.Generator, model: GeneModel, residues: IntArray) -> dict[str, np.ndarray]:
    """1-2 bp deletions or 1 bp insertions inside the codon of each residue."""
    n = len(residues)
    kind = rng.choice(np.array(["del", "del", "del2", "ins"]), size=n)
    phase = np.where(kind == "del", rng.integers(0, 3, size=n), rng.integers(0, 2, size=n))
    c = 3 * residues - 2 + phase
    # Two bases of a codon split by an intron are not adjacent on the genome: delete one of them only.
    adjacent = np.abs(model.c_genomic[np.minimum(c, model.cds_length - 1)] - model.c_genomic[c - 1]) == 1
    kind = np.where((kind != "del") & ~adjacent, "del", kind)
    return {
        "kind": np.where(kind == "ins", "ins", "del"),
        "c": c,
        "length": np.where(kind == "del2", 2, 1),
        "alt": rng.integers(0, 4, size=n).astype(np.uint8),
    }


def _introns(
    rng: np.random.Generator, model: GeneModel, n: int, offsets: tuple[int, int]
) -> dict[str, np.ndarray]:
    """Intronic SNVs `offsets` bases from an exon edge (+: after the exon, -: before the next one)."""
    introns = model.coding_introns()
    intron = introns[rng.integers(0, len(introns), size=n)]
    _, last = model.exon_c_bounds(intron)
    distance = rng.integers(offsets[0], offsets[1] + 1, size=n)
    donor_side = rng.random(n) < 0.5
    c = np.where(donor_side, last, last + 1)
    offset = np.where(donor_side, distance, -distance)
    ref = _tx_reference(model, c, offset)
    shift = rng.integers(1, 4, size=n).astype(np.uint8)
    return {"c": c, "offset": offset, "alt": (ref + shift) % np.uint8(4)}


def _tx_reference(model: GeneModel, c: IntArray, offset: IntArray) -> npt.NDArray[np.uint8]:
    """Reference base on the transcript strand at c. position c + offset (offset into the intron)."""
    pos = model.c_genomic[c - 1] + model.strand * offset
    plus = reference_codes(np.full(len(pos), model.chrom), pos)
    return plus if model.strand == 1 else complement(plus)


def _hotspots(rng: np.random.Generator, model: GeneModel, n: int) -> dict[str, np.ndarray]:
    spots = [
        (3 * h.residue - 2 + phase, BASES.index(base), w)
        for h in HOTSPOTS[model.symbol]
        for phase, base, w in h.changes
    ]
    weights = np.array([w for *_, w in spots], dtype=np.float64)
    chosen = rng.choice(len(spots), size=n, p=weights / weights.sum())
    return {
        "c": np.array([spots[i][0] for i in chosen], dtype=np.int64),
        "alt": np.array([spots[i][1] for i in chosen], dtype=np.uint8),
    }


def _gene_drivers(rng: np.random.Generator, gene: str, patients: IntArray, events: _Events) -> None:
    model = gene_models()[gene]
    kinds = list(SPECTRUM[gene])
    weights = np.array(list(SPECTRUM[gene].values()), dtype=np.float64)
    kind = rng.choice(len(kinds), size=len(patients), p=weights / weights.sum())
    for ki, name in enumerate(kinds):
        who = patients[kind == ki]
        if len(who) == 0:
            continue
        region = REGIONS.get((gene, name), (2, len(model.protein)))
        if name == "hotspot":
            site = _hotspots(rng, model, len(who))
        elif name == "missense":
            site = _substitutions(rng, model, _missense, n=len(who), region=region)
        elif name == "nonsense":
            site = _substitutions(rng, model, _nonsense, n=len(who), region=region)
        else:
            site = _frameshifts(rng, model, rng.integers(region[0], region[1] + 1, size=len(who)))
        events.add(who, gene, "driver", "PASS", **site)


def _ikzf1_drivers(rng: np.random.Generator, truth: pl.DataFrame, events: _Events) -> None:
    """The truth's IKZF1 mutations, at the residue and with the change it names."""
    model = gene_models()["IKZF1"]
    mutated = truth.with_row_index("patient").filter(pl.col("ikzf1_mutation_class").is_not_null())
    parsed = [PROTEIN_CHANGE.match(change) for change in mutated["ikzf1_protein_change"]]
    residue = np.array([int(m.group(2)) for m in parsed if m], dtype=np.int64)
    change = np.array([m.group(3) for m in parsed if m])
    patient = mutated["patient"].to_numpy().astype(np.int64)
    hotspot = np.isin(change, ["S", "T"])
    c = 3 * residue[hotspot] - 1
    alt = np.where(change[hotspot] == "S", BASES.index("G"), BASES.index("C")).astype(np.uint8)
    events.add(patient[hotspot], "IKZF1", "driver", "PASS", c=c, alt=alt)
    stop = change == "*"
    site = _substitutions(rng, model, _nonsense, residues=residue[stop])
    events.add(patient[stop], "IKZF1", "driver", "PASS", **site)
    shifted = change == "fs"
    events.add(patient[shifted], "IKZF1", "driver", "PASS", **_frameshifts(rng, model, residue[shifted]))


def _drivers(rng: np.random.Generator, truth: pl.DataFrame, events: _Events) -> None:
    _ikzf1_drivers(rng, truth, events)
    for gene, flag in TRUTH_FLAGS.items():
        patients = np.flatnonzero(truth[flag].to_numpy()).astype(np.int64)
        _gene_drivers(rng, gene, patients, events)
        if gene == "NOTCH1":
            second = patients[rng.random(len(patients)) < SECOND_NOTCH1_SHARE]
            _gene_drivers(rng, gene, second, events)


def ikzf1_decoy_patients(rng: np.random.Generator, truth: pl.DataFrame) -> dict[str, IntArray]:
    """IKZF1-germline patients given an IKZF1 missense outside codon 159 or a synonymous IKZF1 call."""
    weights = [*IKZF1_DECOYS.values(), PUBLISHED_PATIENTS - sum(IKZF1_DECOYS.values())]
    counts = largest_remainder(weights, truth.height)[:-1]
    germline = np.flatnonzero((truth["ikzf1_status"] == "GL").to_numpy())
    chosen = rng.choice(germline, size=sum(counts), replace=False)
    bounds = np.cumsum(counts)[:-1]
    return dict(zip(IKZF1_DECOYS, np.split(np.sort(chosen), bounds), strict=True))


def _decoys(rng: np.random.Generator, decoys: dict[str, IntArray], events: _Events) -> None:
    model = gene_models()["IKZF1"]
    first, _ = model.exon_c_bounds(np.array([model.n_exons]))
    exon8 = (int(first[0]) + 2) // 3 + 1  # first residue whose codon lies wholly in the last exon
    missense = _substitutions(
        rng, model, _missense, n=len(decoys["other_missense"]), region=(exon8, len(model.protein))
    )
    events.add(decoys["other_missense"], "IKZF1", "decoy", "PASS", **missense)
    synonymous = _substitutions(rng, model, _synonymous, n=len(decoys["synonymous"]))
    events.add(decoys["synonymous"], "IKZF1", "decoy", "PASS", **synonymous)


def _background(rng: np.random.Generator, n_patients: int, events: _Events) -> None:
    genes = list(TRUTH_FLAGS)
    for name, rate in BACKGROUND_RATES.items():
        count = rng.poisson(rate, size=n_patients)
        patients = np.repeat(np.arange(n_patients, dtype=np.int64), count)
        pool = [*genes, "IKZF1"] if name == "intron" else genes
        gene_of = rng.integers(0, len(pool), size=len(patients))
        for gi, gene in enumerate(pool):
            who = patients[gene_of == gi]
            if len(who) == 0:
                continue
            model = gene_models()[gene]
            if name == "synonymous":
                site = _substitutions(rng, model, _synonymous, n=len(who))
            elif name == "intron":
                site = _introns(rng, model, len(who), INTRON_OFFSETS)
            else:
                site = _substitutions(rng, model, _missense, n=len(who))
            filters = (
                rng.choice(np.array(BACKGROUND_FILTERS), size=len(who))
                if name == "filtered_missense"
                else "PASS"
            )
            events.add(who, gene, "background", filters, **site)


def polymorphism_sites() -> pl.DataFrame:
    """The common polymorphisms: one row per ALT allele with its rs id and allele frequency."""
    rng = np.random.default_rng(np.random.SeedSequence(GENOME_ENTROPY, spawn_key=(POLYMORPHISM_SPAWN_KEY,)))
    rows = []
    for index, (gene, region, freqs) in enumerate(POLYMORPHISMS):
        model = gene_models()[gene]
        if region == "intron":
            site = _introns(rng, model, 1, INTRON_OFFSETS)
            ref = int(_tx_reference(model, site["c"], site["offset"])[0])
        else:
            # A fourfold-degenerate codon, so that every ALT base at its third position is synonymous.
            fourfold = [i + 1 for i, aa in enumerate(model.protein) if aa in "AGPTV" and i > 0]
            residue = fourfold[int(rng.integers(0, len(fourfold)))]
            site = {"c": np.array([3 * residue]), "offset": np.zeros(1, dtype=np.int64)}
            ref = int(model.cds[3 * residue - 1])
        alts = rng.permutation([b for b in range(4) if b != ref])[: len(freqs)]
        rs = f"rs{int(rng.integers(1_000_000, 99_999_999))}"
        for alt, freq in zip(alts, freqs, strict=True):
            rows.append(
                {"site": index, "gene": gene, "c": int(site["c"][0]), "offset": int(site["offset"][0]),
                 "alt": int(alt), "rs": rs, "freq": freq}
            )  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={"alt": pl.UInt8})


def _polymorphisms(rng: np.random.Generator, n_patients: int, events: _Events) -> None:
    """Genotypes of every patient at the polymorphisms (heterozygous or homozygous for one ALT allele)."""
    for _, alleles in polymorphism_sites().group_by("site", maintain_order=True):
        freqs = alleles["freq"].to_numpy()
        # Hardy-Weinberg, leaving out the rare carriers of two different ALT alleles.
        probs = np.concatenate([[2 * f * (1 - freqs.sum()), f * f] for f in freqs])
        genotype = np.searchsorted(np.cumsum(probs), rng.random(n_patients), side="right")
        for ai, row in enumerate(alleles.iter_rows(named=True)):
            who = np.flatnonzero(genotype // 2 == ai).astype(np.int64)
            n = len(who)
            events.add(
                who, row["gene"], "polymorphism", "PASS",
                c=np.full(n, row["c"]), offset=np.full(n, row["offset"]),
                alt=np.full(n, row["alt"], dtype=np.uint8), hom=genotype[who] % 2 == 1,
            )  # fmt: skip


def _uniform_int(rng: np.random.Generator, bounds: tuple[int, int], n: int) -> IntArray:
    return rng.integers(bounds[0], bounds[1] + 1, size=n)


def _read_counts(rng: np.random.Generator, calls: pl.DataFrame) -> pl.DataFrame:
    """Depth and ALT reads of each call: somatic VAF 5-50% (filtered calls 1-5%), germline ~50% or ~100%."""
    n = calls.height
    tumor = calls["tumor"].to_numpy()
    depth = np.where(tumor, _uniform_int(rng, TUMOR_DEPTH, n), _uniform_int(rng, GERMLINE_DEPTH, n))
    category = calls["category"].to_numpy()
    hom = calls["hom"].to_numpy()
    vaf = np.select(
        [category == "polymorphism", calls["filter"].to_numpy() != "PASS"],
        [
            np.where(hom, rng.uniform(0.97, 1.0, n), np.clip(rng.normal(0.5, 0.04, n), 0.35, 0.65)),
            rng.uniform(*FILTERED_VAF, n),
        ],
        default=rng.uniform(*TUMOR_VAF, n),
    )
    alt_depth = np.clip(np.rint(vaf * depth).astype(np.int64), 2, depth)
    return calls.with_columns(depth=pl.Series(depth), alt_depth=pl.Series(alt_depth))


def simulate_calls(truth: pl.DataFrame, decoys: dict[str, IntArray], rng: np.random.Generator) -> Calls:
    """Every patient's calls (diagnosis sample; germline sample too for polymorphisms in GRAALL)."""
    events = _Events()
    _drivers(rng, truth, events)
    _decoys(rng, decoys, events)
    _background(rng, truth.height, events)
    _polymorphisms(rng, truth.height, events)
    frame = events.frame()
    sites = annotate(frame.select(SITE_COLUMNS).unique(maintain_order=True))
    placed = frame.join(
        sites.select(*SITE_COLUMNS, "chrom", "pos", "ref", "alt_allele"), on=list(SITE_COLUMNS), how="left"
    )
    # One call per patient and position: a driver wins over anything else that landed there.
    placed = (
        placed.with_columns(priority=pl.col("category").replace_strict(PRIORITY, return_dtype=pl.Int8))
        .sort("patient", "priority", maintain_order=True)
        .unique(["patient", "chrom", "pos"], keep="first", maintain_order=True)
        .drop("alt")
        .rename({"alt_allele": "alt"})
    )
    rs = polymorphism_sites().select("gene", "c", "offset", "alt", "rs")
    alleles = (
        sites.join(rs, on=["gene", "c", "offset", "alt"], how="left")
        .with_columns(existing=pl.col("rs").fill_null(""))
        .drop("alt", "rs")
        .rename({"alt_allele": "alt"})
        .sort("existing", descending=True)
        .unique(["chrom", "pos", "ref", "alt"], keep="first", maintain_order=True)
    )
    patients = truth.select(pl.col("trial_group"), pl.int_range(pl.len()).alias("patient"))
    tumor = placed.with_columns(tumor=pl.lit(True))
    germline = placed.filter(pl.col("category") == "polymorphism").with_columns(tumor=pl.lit(False))
    calls = (
        pl.concat([tumor, germline])
        .join(patients.with_columns(pl.col("patient").cast(pl.Int64)), on="patient", how="left")
        .filter(pl.col("tumor") | (pl.col("trial_group") == "GRAALL"))
        .select("patient", "trial_group", "tumor", "chrom", "pos", "ref", "alt", "filter", "category", "hom")
        .sort("patient", "tumor", "chrom", "pos", descending=[False, True, False, False])
    )
    return Calls(alleles, _read_counts(rng, calls))
