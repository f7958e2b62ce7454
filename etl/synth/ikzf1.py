"""IKZF1 alteration details (exons lost, protein changes) for the IKZF1-altered patients."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# IKAROS isoform Ik1 (UniProt Q13422-1, 519 aa): protein changes name the real residue.
IKZF1_PROTEIN = (
    "MDADEGQDMSQVSGKESPPVSDTPDEGDEPMPIPEDLSTTSGGQQSSKSDRVVASNVKVETQSDEENGRACEMNGEECAEDLRMLDASGEKMNGSH"
    "RDQGSSALSGVGGIRLPNGKLKCDICGIVCIGPNVLMVHKRSHTGERPFQCNQCGASFTQKGNLLRHIKLHSGEKPFKCHLCNYACRRRDALTGHL"
    "RTHSVGKPHKCGYCGRSYKQRSSLEEHKERCHNYLESMGLPGTLYPVIKEETNHSEMAEDLCKIGSERSLVLDRLASNVAKRKSSMPQKFLGDKGL"
    "SDTPYDSSASYEKENEMMKSHVMDQAINNAINYLGAESLRPLVQTPPGGSEVVPVISPMYQLHKPLAEGTPRSNHSAQDSAVENLLLLSKAKLVPS"
    "EREASPSNSCQDSTDTESNNEEQRSGLIYLTNHIAPHARNGLSLKEEHRAYDLLRAASENSQDALRVVSTSGEQMKVYKCEHCRVLFLDHVMYTI"
    "HMGCHGFRDPFECNMCGYHSQDRYEFSSHITRGEHRFHMS"
)
# Amino-acid span of each coding exon (exon 5 holds zinc fingers 2-3 and N159); exons 4-8 are exact for
# NM_006060.6 on the GRCh37 exons (c.476 = chr7:50450293), exon 3 starts where truncations may start.
EXON_AA_SPANS: dict[int, tuple[int, int]] = {
    3: (28, 53),
    4: (54, 140),
    5: (141, 196),
    6: (197, 238),
    7: (239, 283),
    8: (284, 519),
}
# Truncating mutations stop before the C-terminal dimerisation zinc fingers.
LAST_TRUNCATING_RESIDUE = 459
# Residues whose codon can become a stop codon by one substitution.
STOP_REACHABLE = frozenset("QRWEKY")
OTHER_PARTIAL_DELETIONS: tuple[tuple[int, int], ...] = ((1, 3), (2, 3), (2, 7), (4, 8), (5, 8), (1, 4))


def _exon_of(positions: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    starts = np.array([span[0] for span in EXON_AA_SPANS.values()])
    return np.array(list(EXON_AA_SPANS))[np.searchsorted(starts, positions, side="right") - 1]


def _truncating_positions(rng: np.random.Generator, n: int, nonsense: bool) -> npt.NDArray[np.int64]:
    first = EXON_AA_SPANS[3][0]
    candidates = np.arange(first, LAST_TRUNCATING_RESIDUE + 1)
    if nonsense:
        candidates = np.array([p for p in candidates if IKZF1_PROTEIN[p - 1] in STOP_REACHABLE])
    return rng.choice(candidates, size=n)


def deletion_exons(rng: np.random.Generator, deletion_class: str, n: int) -> tuple[list[int], list[int]]:
    """First and last exon lost for n deletions of one class."""
    if deletion_class == "pan_genic":
        return [1] * n, [8] * n
    if deletion_class == "intragenic_4_7":
        return [4] * n, [7] * n
    chosen = rng.integers(0, len(OTHER_PARTIAL_DELETIONS), size=n)
    pairs = [OTHER_PARTIAL_DELETIONS[i] for i in chosen]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def mutations(rng: np.random.Generator, mutation_class: str, n: int) -> tuple[list[int], list[str]]:
    """Exon and HGVS protein change (one-letter) for n mutations of one class."""
    if mutation_class == "hotspot_missense":
        alt = np.where(rng.random(n) < 2 / 3, "S", "T")
        return [5] * n, [f"p.N159{a}" for a in alt]
    positions = _truncating_positions(rng, n, nonsense=mutation_class == "nonsense")
    suffix = "*" if mutation_class == "nonsense" else "fs"
    changes = [f"p.{IKZF1_PROTEIN[p - 1]}{p}{suffix}" for p in positions]
    return [int(e) for e in _exon_of(positions)], changes
