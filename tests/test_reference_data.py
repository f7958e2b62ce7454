"""The shipped reference data is coherent: panel, assays, transcripts and exons."""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.helpers import query


def test_ikzf1_has_its_8_exons_on_both_assemblies_in_transcript_order(db_path: Path) -> None:
    rows = query(
        db_path,
        "SELECT x.assembly, x.exon_number, x.start, x.end FROM exon x "
        "JOIN transcript t USING (transcript_id) WHERE t.accession = 'ENST00000331340' ORDER BY 1, 2",
    )
    for assembly in ("GRCh37", "GRCh38"):
        exons = [(n, s, e) for a, n, s, e in rows if a == assembly]
        assert [n for n, _, _ in exons] == list(range(1, 9))
        starts = [s for _, s, _ in exons]
        assert starts == sorted(starts), "IKZF1 is on the + strand: exon 1 first"
    # Exon 5 (the N159 hotspot) is 168 bp on both assemblies.
    assert {e - s + 1 for a, n, s, e in rows if n == 5} == {168}


def test_exons_follow_the_strand_and_never_overlap(db_path: Path) -> None:
    rows = query(
        db_path,
        "SELECT t.accession, x.assembly, x.strand, x.exon_number, x.start, x.end FROM exon x "
        "JOIN transcript t USING (transcript_id) ORDER BY 1, 2, 4",
    )
    by_transcript: dict[tuple[object, object], list[tuple[object, ...]]] = {}
    for accession, assembly, *rest in rows:
        by_transcript.setdefault((accession, assembly), []).append(tuple(rest))
    assert len(by_transcript) == 19  # ten genes on GRCh38, nine on GRCh37 (no FBXW7)
    for exons in by_transcript.values():
        strand = exons[0][0]
        starts = [start for _, _, start, _ in exons]
        assert starts == (sorted(starts) if strand == "+" else sorted(starts, reverse=True))
        spans = sorted((start, end) for _, _, start, end in exons)
        assert all(end < next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


def test_every_panel_gene_is_known_and_the_assays_use_the_panel(db_path: Path) -> None:
    assert query(db_path, "SELECT count(*) FROM gene_panel_gene") == [(80,)]
    assays = query(db_path, "SELECT name, version, assembly FROM sequencing_assay ORDER BY version")
    assert assays == [("TALL80", "1", "GRCh37"), ("TALL80", "2", "GRCh38")]
