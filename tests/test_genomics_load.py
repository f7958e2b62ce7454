"""Genomic and MRD loaders on real third-party files (../shared/third_party) and on small files written
here: VCF (VEP CSQ / SnpEff ANN), MAF, SEG, gene-level copy-number calls, MRD, the sample manifest."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from etl.errors import FileRejected
from etl.sources.registry import load_source
from tests.helpers import (
    ALIVE,
    DEAD,
    SHARED,
    fingerprint,
    query,
    scalar,
    view_rows,
    write_graall,
    write_sample_manifest,
)

THIRD_PARTY = SHARED / "third_party"
CSQ_FORMAT = "|".join(
    ["Allele", "Consequence", "IMPACT", "SYMBOL", "Feature_type", "Feature", "EXON", "HGVSp",
     "Protein_position", "Amino_acids", "CANONICAL", "MANE_SELECT", "GIVEN_REF", "USED_REF"]
)  # fmt: skip


@pytest.fixture
def warehouse(db_path: Path, tmp_path: Path) -> Path:
    """A warehouse with two GRAALL patients, G03-00001 and G03-00002."""
    load_source(db_path, "clinical", write_graall(tmp_path / "graall.csv", ALIVE, DEAD), layout="graall")
    return db_path


def with_samples(db: Path, tmp_path: Path, samples: list[str], **options: str) -> None:
    manifest = write_sample_manifest(tmp_path / f"manifest_{len(samples)}.tsv", samples, **options)
    load_source(db, "samples", manifest)


def vcf_text(records: list[str], samples: tuple[str, ...] = ("T1",), csq_format: str = CSQ_FORMAT) -> str:
    header = [
        "##fileformat=VCFv4.2",
        "##reference=GRCh37",
        "##contig=<ID=7,length=159138663>",
        '##VEP="v106"',
        '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. '
        f'Format: {csq_format}">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]),
    ]
    return "\n".join([*header, *records]) + "\n"


# IKZF1 p.N159S (exon 5) with the MANE transcript and another one, and a multi-allelic record.
HOTSPOT = (
    "7\t50450292\t.\tA\tG\t.\tPASS\tCSQ="
    "G|missense_variant|MODERATE|IKZF1|Transcript|ENST00000439701.2|4/7|p.Asn100Ser|100|N/S|||A|A,"
    "G|missense_variant|MODERATE|IKZF1|Transcript|ENST00000331340.8|5/8|p.Asn159Ser|159|N/S|YES|NM_006060.6|A|A"
    "\tGT:AD:DP\t0/1:60,40:100"
)
MULTI = (
    "7\t50467700\t.\tCAT\tC,CATT\t.\tweak_evidence\tCSQ="
    "-|frameshift_variant|HIGH|IKZF1|Transcript|ENST00000331340.8|8/8|p.Ile400fs|400|I/X|YES|NM_006060.6|CAT|CAT,"
    "ATT|frameshift_variant|HIGH|IKZF1|Transcript|ENST00000331340.8|8/8|p.Ile400fs|400|-/X|YES|NM_006060.6|CAT|CAT"
    "\tGT:AD:DP\t1/2:50,30,20:100"
)


def test_a_vep_vcf_is_split_per_allele_and_the_mane_transcript_selected(
    warehouse: Path, tmp_path: Path
) -> None:
    with_samples(warehouse, tmp_path, ["T1"])
    vcf = tmp_path / "calls.vcf"
    vcf.write_text(vcf_text([HOTSPOT, MULTI]))
    report = load_source(warehouse, "vcf", vcf)
    assert (report.rows_read, report.rows_rejected) == (2, 0)
    variants = query(warehouse, "SELECT chrom, pos, ref, alt FROM variant ORDER BY pos, alt")
    # Minimal, as MAF writes them: a deletion at its first deleted base, an insertion at the base before it.
    assert variants == [("7", 50450292, "A", "G"), ("7", 50467701, "AT", "-"), ("7", 50467701, "-", "T")]
    selected = query(
        warehouse,
        "SELECT v.pos, a.transcript_accession, a.selection_rule, a.exon_number, a.protein_position, "
        "a.amino_acids FROM variant_annotation a JOIN variant v USING (variant_id) WHERE a.is_selected "
        "ORDER BY v.pos, v.alt",
    )
    assert selected[0] == (50450292, "ENST00000331340.8", "mane_select", 5, 159, "N/S")
    calls = query(
        warehouse, "SELECT v.alt, c.genotype, c.alt_depth, c.vaf, c.filter FROM variant_call c "
        "JOIN variant v USING (variant_id) ORDER BY v.pos, v.alt",
    )  # fmt: skip
    assert calls == [
        ("G", "0/1", 40, 0.4, "PASS"),
        ("-", "1/2", 30, 0.3, "weak_evidence"),
        ("T", "1/2", 20, 0.2, "weak_evidence"),
    ]


def test_annotation_fields_are_read_from_the_header_not_assumed(warehouse: Path, tmp_path: Path) -> None:
    with_samples(warehouse, tmp_path, ["T1"])
    fields = CSQ_FORMAT.split("|")
    shuffled = list(reversed(fields))
    entries = HOTSPOT.split("\t")[7].removeprefix("CSQ=").split(",")
    reordered = ",".join("|".join(reversed(entry.split("|"))) for entry in entries)
    record = HOTSPOT.replace(HOTSPOT.split("\t")[7], "CSQ=" + reordered)
    vcf = tmp_path / "shuffled.vcf"
    vcf.write_text(vcf_text([record], csq_format="|".join(shuffled)))
    load_source(warehouse, "vcf", vcf)
    assert query(
        warehouse, "SELECT protein_position, amino_acids FROM variant_annotation WHERE is_selected"
    ) == [(159, "N/S")]


def test_pass_only_is_an_option_not_a_silent_rule(warehouse: Path, tmp_path: Path) -> None:
    with_samples(warehouse, tmp_path, ["T1"])
    vcf = tmp_path / "calls.vcf"
    vcf.write_text(vcf_text([HOTSPOT, MULTI]))
    report = load_source(warehouse, "vcf", vcf, pass_only=True)
    assert report.tables["variant_call"]["skipped_non_pass"] == 2
    assert scalar(warehouse, "SELECT count(*) FROM variant_call") == 1
    assert scalar(warehouse, "SELECT count(*) FROM variant") == 3  # the variants are still known


def test_a_vep_reference_mismatch_is_quarantined(warehouse: Path, tmp_path: Path) -> None:
    with_samples(warehouse, tmp_path, ["T1"])
    vcf = tmp_path / "calls.vcf"
    vcf.write_text(vcf_text([HOTSPOT.replace("|A|A\t", "|A|C\t"), MULTI]))
    report = load_source(warehouse, "vcf", vcf, max_reject_fraction=0.5)
    assert report.rows_rejected == 1
    assert query(warehouse, "SELECT line, column_name, value, rule FROM rejected_record") == [
        (10, "REF", "A", "reference_allele")
    ]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (
            lambda text: text.replace("Format: ", "Format: ").replace(
                '">\n##FORMAT=<ID=GT', "\n##FORMAT=<ID=GT", 1
            ),
            "not closed by '>'",
        ),
        (
            lambda text: text.replace("\tT1\n", "\tT1\tX9\n").replace(":100\n", ":100\t0/0:1,0:1\n"),
            "X9 are not in the sample manifest",
        ),
        (lambda text: text.replace("##fileformat=VCFv4.2\n", ""), "not a VCF"),
        (lambda text: text.split("#CHROM")[0], "no #CHROM header line"),
    ],
    ids=["broken-header", "unknown-sample", "no-fileformat", "no-records-header"],
)
def test_broken_vcfs_are_refused_whole(warehouse: Path, tmp_path: Path, mangle: object, reason: str) -> None:
    with_samples(warehouse, tmp_path, ["T1"])
    before = fingerprint(warehouse)
    vcf = tmp_path / "bad.vcf"
    vcf.write_text(mangle(vcf_text([HOTSPOT, MULTI])))  # type: ignore[operator]
    with pytest.raises(FileRejected, match=reason):
        load_source(warehouse, "vcf", vcf)
    assert fingerprint(warehouse) == before


def test_a_truncated_compressed_vcf_is_refused_whole(warehouse: Path, tmp_path: Path) -> None:
    with_samples(warehouse, tmp_path, ["T1"])
    data = gzip.compress(vcf_text([HOTSPOT, MULTI] * 200).encode())
    vcf = tmp_path / "cut.vcf.gz"
    vcf.write_bytes(data[: len(data) // 2])
    before = fingerprint(warehouse)
    with pytest.raises(FileRejected, match="truncated"):
        load_source(warehouse, "vcf", vcf)
    assert fingerprint(warehouse) == before


@pytest.mark.parametrize(
    ("name", "samples", "records", "calls"),
    [
        ("mutect2_tumor_normal.vep106.grch37.vcf", ["A25", "N1"], 1428, 2105),
        ("pindel_indels.vep84.grch37.vcf", ["NORMAL", "TUMOR"], 31, None),
        (
            "TCGA-AB-2968-03.laml.vcf",
            ["TCGA-AB-2968-03A-01D-0739-09", "TCGA-AB-2968-11A-01D-0739-09"],
            20,
            None,
        ),
        ("gdc_csq71_header.vcf.gz", [], 4, 0),
    ],
)
def test_third_party_vcfs_load(
    warehouse: Path, tmp_path: Path, name: str, samples: list[str], records: int, calls: int | None
) -> None:
    gdc = name.startswith("gdc")
    if samples:
        with_samples(warehouse, tmp_path, samples)
    report = load_source(warehouse, "vcf", THIRD_PARTY / "vcf" / name, assembly="GRCh38" if gdc else None)
    assert (report.rows_read, report.rows_rejected) == (records, 0)
    assert scalar(warehouse, "SELECT count(*) FROM variant") >= records
    if calls is not None:
        assert scalar(warehouse, "SELECT count(*) FROM variant_call") == calls
    if name != "TCGA-AB-2968-03.laml.vcf":  # the only unannotated one
        assert scalar(warehouse, "SELECT count(*) FROM variant_annotation WHERE is_selected") > 0


def test_the_same_calls_as_vcf_and_as_maf_are_the_same_variants(warehouse: Path, tmp_path: Path) -> None:
    with_samples(warehouse, tmp_path, ["TCGA-AB-2968-03A-01D-0739-09", "TCGA-AB-2968-11A-01D-0739-09"])
    load_source(warehouse, "vcf", THIRD_PARTY / "vcf" / "TCGA-AB-2968-03.laml.vcf")
    report = load_source(warehouse, "maf", THIRD_PARTY / "maf" / "TCGA-AB-2968-03.laml.maf")
    assert report.tables["variant"]["inserted"] == 0  # every MAF row is a variant the VCF already gave
    assert report.tables["variant_call"] == {"inserted": 20, "superseded": 20, "unchanged": 0}


@pytest.mark.parametrize(
    ("path", "rows"),
    [("maf/tcga_laml.maf.gz", 2207), ("cbioportal_study_es_0/data_mutations_extended.maf", None)],
)
def test_third_party_mafs_load(warehouse: Path, tmp_path: Path, path: str, rows: int | None) -> None:
    frame = pl.read_csv(
        gzip.decompress((THIRD_PARTY / path).read_bytes()) if path.endswith(".gz") else THIRD_PARTY / path,
        separator="\t", comment_prefix="#", infer_schema=False, quote_char=None,
    )  # fmt: skip
    barcodes = sorted(frame.get_column("Tumor_Sample_Barcode").unique().to_list())
    with_samples(warehouse, tmp_path, barcodes)
    report = load_source(warehouse, "maf", THIRD_PARTY / path, max_reject_fraction=0.2)
    assert report.rows_read == (rows or frame.height)
    assert report.rows_read == report.rows_loaded + report.rows_rejected
    assert scalar(warehouse, "SELECT count(DISTINCT sample_id) FROM variant_call") > 0


def test_a_maf_read_in_slices_loads_what_one_slice_would(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large MAFs are transformed 250,000 rows at a time and merged once: with slices of 100 rows, a
    sample's calls span slices and the warehouse ends the same, line numbers included."""
    import shutil

    from etl.sources import maf

    path = THIRD_PARTY / "maf" / "tcga_laml.maf.gz"
    frame = pl.read_csv(gzip.decompress(path.read_bytes()), separator="\t", comment_prefix="#",
                        infer_schema=False, quote_char=None)  # fmt: skip
    with_samples(warehouse, tmp_path, sorted(frame.get_column("Tumor_Sample_Barcode").unique().to_list()))
    sliced = Path(shutil.copy(warehouse, tmp_path / "sliced.duckdb"))
    whole = load_source(warehouse, "maf", path, max_reject_fraction=0.2)
    monkeypatch.setattr(maf, "BATCH_ROWS", 100)
    in_slices = load_source(sliced, "maf", path, max_reject_fraction=0.2)
    assert (in_slices.rows_read, in_slices.rows_rejected) == (whole.rows_read, whole.rows_rejected)
    assert in_slices.tables == whole.tables
    # By natural key: surrogate variant ids follow insertion order, which DISTINCT does not fix.
    calls = (
        "SELECT c.sample_id, v.chrom, v.pos, v.ref, v.alt, c.vaf, c.depth, c.alt_depth, c.filter, "
        "c.source_line FROM variant_call AS c JOIN variant AS v USING (variant_id) ORDER BY ALL"
    )
    assert query(sliced, calls) == query(warehouse, calls)
    rejects = "SELECT line, column_name, rule FROM rejected_record ORDER BY ALL"
    assert query(sliced, rejects) == query(warehouse, rejects)


def test_a_seg_with_non_igv_column_names_loads(warehouse: Path, tmp_path: Path) -> None:
    with_samples(warehouse, tmp_path, ["TCGA-AB-3009"])
    report = load_source(warehouse, "seg", THIRD_PARTY / "seg" / "TCGA.AB.3009.hg19.seg.txt")
    assert (report.rows_read, report.rows_rejected) == (818, 0)
    assert scalar(warehouse, "SELECT count(*) FROM copy_number_segment") == 818


def test_a_seg_whose_num_mark_says_na_loads_with_the_count_unknown(warehouse: Path, tmp_path: Path) -> None:
    """cBioPortal allows NA for num.mark (the marker count is optional): the segment loads, the count is
    NULL; text in the other numeric columns is still a 'number' problem of its line."""
    with_samples(warehouse, tmp_path, ["SEG-NA-1"])
    seg = tmp_path / "na.seg"
    seg.write_text(
        "ID\tchrom\tloc.start\tloc.end\tnum.mark\tseg.mean\n"
        "SEG-NA-1\t7\t50304716\t50405101\tNA\t-0.9\n"
        "SEG-NA-1\t7\t50405102\t50500000\t12\t0.01\n"
        "SEG-NA-1\t9\t100\tNA\t5\t0.2\n"
    )
    report = load_source(warehouse, "seg", seg, max_reject_fraction=0.5)
    assert (report.rows_read, report.rows_rejected) == (3, 1)
    assert query(warehouse, "SELECT line, column_name, rule FROM rejected_record WHERE value = 'NA'") == [
        (4, "loc.end", "number")
    ]
    counts = (
        "SELECT num_markers FROM copy_number_segment JOIN sample USING (sample_id) "
        "WHERE sample_key = 'SEG-NA-1'"
    )
    assert sorted(query(warehouse, counts), key=str) == [(12,), (None,)]


CNV_HEADER = (
    "sample_id\tgene\tfirst_exon\tlast_exon\tassembly\tchrom\tstart\tend\tcall\tcopy_number\tratio\tmethod"
)


def test_a_second_method_confirms_the_ngs_call_and_segments_give_exon_calls(
    warehouse: Path, tmp_path: Path
) -> None:
    with_samples(warehouse, tmp_path, ["T1"])
    # IKZF1 exons 4-7 on GRCh37 span 50444231-50459561: an NGS call by range, MLPA by exons.
    calls = tmp_path / "cnv.tsv"
    calls.write_text(
        f"{CNV_HEADER}\n"
        "T1\tIKZF1\t\t\tGRCh37\t7\t50444000\t50460000\tdeletion\t1\t0.5\tNGS\n"
        "T1\tIKZF1\t4\t7\t\t\t\t\tdeletion\t\t0.52\tMLPA\n"
    )
    report = load_source(warehouse, "cnv", calls)
    assert report.tables["copy_number_call"]["confirmations"] == 1
    rows = query(
        warehouse,
        "SELECT method, first_exon, last_exon, confirms_copy_number_call_id IS NOT NULL "
        "FROM copy_number_call "
        "ORDER BY method",
    )
    assert rows == [("MLPA", 4, 7, True), ("NGS", 4, 7, False)]
    seg = tmp_path / "acgh.seg"
    seg.write_text(
        "ID\tchrom\tloc.start\tloc.end\tnum.mark\tseg.mean\n"
        "T1\t7\t1000\t50400000\t500\t0.02\n"
        "T1\t7\t50400001\t50462000\t40\t-0.95\n"
        "T1\t7\t50462001\t150000000\t900\t-0.01\n"
    )
    load_source(warehouse, "seg", seg)
    derived = query(
        warehouse,
        "SELECT method, first_exon, last_exon, call_type, confirms_copy_number_call_id IS NOT NULL "
        "FROM copy_number_call WHERE from_segment",
    )
    assert derived == [("aCGH", 4, 7, "deletion", True)]


def test_copy_number_rows_with_unknown_genes_or_exons_are_quarantined(
    warehouse: Path, tmp_path: Path
) -> None:
    with_samples(warehouse, tmp_path, ["T1"])
    calls = tmp_path / "cnv.tsv"
    calls.write_text(
        f"{CNV_HEADER}\n"
        "T1\tIKZF1\t1\t8\t\t\t\t\tdeletion\t1\t0.5\tNGS\n"
        "T1\tIKZF9\t1\t2\t\t\t\t\tdeletion\t1\t0.5\tNGS\n"
        "T1\tPTEN\t2\t12\t\t\t\t\tdeletion\t1\t0.5\tNGS\n"
        "T2\tNRAS\t1\t2\t\t\t\t\tgain\t3\t1.5\tNGS\n"
    )
    load_source(warehouse, "cnv", calls, max_reject_fraction=1)
    assert query(warehouse, "SELECT line, column_name, rule FROM rejected_record ORDER BY line") == [
        (3, "gene", "known_gene"), (4, "last_exon", "exon_in_gene"), (5, "sample_id", "known_sample"),
    ]  # fmt: skip


MRD_HEADER = (
    "trial_group\tpatient_id\tsample_id\ttime_point\tdays_from_diagnosis\tmethod\ttarget\tvalue\tunit\t"
    "limit_of_detection\tquantitative_range_low\tqualitative_result"
)


def test_mrd_values_are_normalised_to_fractions_with_the_original_kept(
    warehouse: Path, tmp_path: Path
) -> None:
    mrd = tmp_path / "mrd.tsv"
    mrd.write_text(
        f"{MRD_HEADER}\n"
        "GRAALL\tG03-00001\t\tMRD1\t35\tASO-PCR\tTRG Vg9-Jg1.3\t3.2E-3\tfraction\t1E-5\t1E-4\tpositive\n"
        "GRAALL\tG03-00002\t\tMRD1\t36\tASO-PCR\tIGH VH3-JH4\t0.32\tpercent\t0.001\t0.01\tpositive\n"
        "GRAALL\tG03-00001\t\tMRD2\t90\tddPCR\tTRG Vg9-Jg1.3\t-4.5\tlog10\t-5\t-4\tpositive\n"
        "GRAALL\tG03-00002\t\tMRD2\t91\tMFC\tLAIP\t120\tcells/1e6\t\t\tpositive\n"
        "GRAALL\tG03-00002\t\tMRD3\t180\tASO-PCR\tIGH VH3-JH4\t\tfraction\t\t1E-4\tPNQ\n"
    )
    report = load_source(warehouse, "mrd", mrd)
    assert report.rows_rejected == 0
    rows = query(
        warehouse,
        "SELECT time_point, value_fraction, value_original, unit_original, limit_of_detection, "
        "qualitative_result "
        "FROM mrd_measurement ORDER BY source_line",
    )
    assert rows[0] == ("MRD1", pytest.approx(3.2e-3), "3.2E-3", "fraction", pytest.approx(1e-5), "positive")
    assert rows[1][1] == pytest.approx(3.2e-3) and rows[1][4] == pytest.approx(1e-5)  # percent
    assert [r[1] for r in rows[2:4]] == [pytest.approx(10**-4.5), pytest.approx(1.2e-4)]  # log10, per million
    assert rows[4][1] is None and rows[4][5] == "positive_not_quantifiable"


def test_mrd_values_out_of_range_or_in_unknown_units_are_quarantined(warehouse: Path, tmp_path: Path) -> None:
    mrd = tmp_path / "mrd.tsv"
    mrd.write_text(
        f"{MRD_HEADER}\n"
        "GRAALL\tG03-00001\t\tMRD1\t35\tASO-PCR\tTRG\t150\tpercent\t\t\tpositive\n"
        "GRAALL\tG03-00002\t\tMRD1\t35\tASO-PCR\tTRG\t5\tcopies/ug\t\t\tpositive\n"
        "GRAALL\tG03-00009\t\tMRD1\t35\tASO-PCR\tTRG\t1E-3\tfraction\t\t\tpositive\n"
    )
    load_source(warehouse, "mrd", mrd, max_reject_fraction=1)
    assert query(warehouse, "SELECT line, column_name, value, rule FROM rejected_record ORDER BY line") == [
        (2, "value", "150", "fraction_range"), (3, "unit", "copies/ug", "code:unit"),
        (4, "patient_id", "G03-00009", "known_patient"),
    ]  # fmt: skip


def test_a_sample_id_cannot_change_patient(warehouse: Path, tmp_path: Path) -> None:
    load_source(warehouse, "samples", write_sample_manifest(tmp_path / "m1.tsv", ["S1", "S2"]))
    moved = write_sample_manifest(tmp_path / "m2.tsv", ["S1"], patient="G03-00002")
    report = load_source(warehouse, "samples", moved, max_reject_fraction=1)
    assert report.rows_rejected == 1
    assert query(warehouse, "SELECT rule FROM rejected_record") == [("sample_unchanged",)]
    unknown = write_sample_manifest(tmp_path / "m3.tsv", ["S3"], assembly="GRCh38")
    unknown.write_text(unknown.read_text().replace("TALL80", "PANEL99"))
    load_source(warehouse, "samples", unknown, max_reject_fraction=1)
    assert query(warehouse, "SELECT rule FROM rejected_record ORDER BY rule") == [
        ("known_assay",),
        ("sample_unchanged",),
    ]


def test_every_genomic_run_keeps_lineage(warehouse: Path, tmp_path: Path) -> None:
    with_samples(warehouse, tmp_path, ["T1"])
    vcf = tmp_path / "calls.vcf"
    vcf.write_text(vcf_text([HOTSPOT]))
    report = load_source(warehouse, "vcf", vcf)
    lineage = query(
        warehouse,
        "SELECT f.file_name, f.kind, c.source_line, c.etl_run_id FROM variant_call c "
        "JOIN source_file f USING (source_file_id)",
    )
    assert lineage == [("calls.vcf", "vcf", 10, report.run_id)]
    assert json.loads(
        str(scalar(warehouse, "SELECT counts_json FROM etl_run WHERE etl_run_id = $r", {"r": report.run_id}))
    )


def test_ikzf1_alterations_are_classed_in_sql(warehouse: Path, tmp_path: Path) -> None:
    load_source(warehouse, "samples", write_sample_manifest(tmp_path / "m1.tsv", ["T1"]))
    load_source(warehouse, "samples", write_sample_manifest(tmp_path / "m2.tsv", ["T2"], patient="G03-00002"))
    other_missense = (
        HOTSPOT.replace("p.Asn159Ser|159|N/S", "p.Ala300Val|300|A/V")
        .replace("50450292", "50467650")
        .replace("5/8", "8/8")
    )
    vcf = tmp_path / "calls.vcf"
    vcf.write_text(
        vcf_text([HOTSPOT.replace("\t0/1:60,40:100", "\t0/1:60,40:100\t0/0:100,0:100")], ("T1", "T2"))
    )
    load_source(warehouse, "vcf", vcf)
    assert view_rows(warehouse, "ikzf1_alteration", "mutation_class, mutation_exon, alteration_type") == [
        ("hotspot_missense", 5, "mutation")
    ]
    # Patient 2: an intragenic deletion confirmed by MLPA, and an IKZF1 missense away from the hotspot.
    cnv = tmp_path / "cnv.tsv"
    cnv.write_text(
        f"{CNV_HEADER}\nT2\tIKZF1\t4\t7\t\t\t\t\tdeletion\t1\t0.5\tNGS\nT2\tIKZF1\t4\t7\t\t\t\t\tdeletion\t\t0.5\tMLPA\n"
    )
    load_source(warehouse, "cnv", cnv)
    other = tmp_path / "other.vcf"
    other.write_text(vcf_text([other_missense], ("T2",)))
    load_source(warehouse, "vcf", other)
    rows = view_rows(
        warehouse, "ikzf1_alteration",
        "mutation_class, mutation_pathogenic, deletion_class, deletion_confirmed_by, alteration_type, "
        "has_both",
    )  # fmt: skip
    assert rows == [
        ("hotspot_missense", True, None, None, "mutation", False),
        ("other_missense", False, "intragenic_4_7", "MLPA", "deletion", False),
    ]
    # Data showing both loads, and the view says so.
    both = tmp_path / "both.tsv"
    both.write_text(f"{CNV_HEADER}\nT1\tIKZF1\t1\t8\t\t\t\t\tdeletion\t1\t0.5\tNGS\n")
    load_source(warehouse, "cnv", both)
    flagged = view_rows(warehouse, "ikzf1_alteration", "deletion_class, alteration_type", "has_both")
    assert flagged == [("pan_genic", "both")]


def test_mrd_positivity_is_decided_in_sql_at_each_methods_threshold(warehouse: Path, tmp_path: Path) -> None:
    mrd = tmp_path / "mrd.tsv"
    mrd.write_text(
        f"{MRD_HEADER}\n"
        "GRAALL\tG03-00001\t\tMRD1\t35\tASO-PCR\tTRG\t0.01\tpercent\t\t\tpositive\n"
        "GRAALL\tG03-00002\t\tMRD1\t35\tASO-PCR\tTRG\t\tfraction\t\t1E-4\tPNQ\n"
        "GRAALL\tG03-00001\t\tC2\t82\tMFC\tLAIP\t0.05\tpercent\t\t\tpositive\n"
        "GRAALL\tG03-00002\t\tC2\t82\tMFC\tLAIP\t\t\t\t\tnot done\n"
    )
    load_source(warehouse, "mrd", mrd)
    rows = view_rows(warehouse, "mrd_result", "time_point, method, threshold, is_positive")
    # 0.01% = 1e-4 is positive by PCR; PNQ below a 1e-4 range is negative; 0.05% is below the MFC 0.1%.
    assert rows == [("C2", "MFC", 1e-3, False), ("C2", "MFC", 1e-3, None), ("MRD1", "ASO-PCR", 1e-4, False),
                    ("MRD1", "ASO-PCR", 1e-4, True)]  # fmt: skip


def test_snpeff_ann_annotations_are_read_from_their_header(warehouse: Path, tmp_path: Path) -> None:
    with_samples(warehouse, tmp_path, ["T1"])
    ann_header = (
        "##INFO=<ID=ANN,Number=.,Type=String,Description=\"Functional annotations: 'Allele | Annotation | "
        "Annotation_Impact | Gene_Name | Gene_ID | Feature_Type | Feature_ID | Transcript_BioType | Rank | "
        "HGVS.c | HGVS.p | cDNA.pos / cDNA.length | CDS.pos / CDS.length | AA.pos / AA.length | Distance | "
        "ERRORS / WARNINGS / INFO' \">"
    )
    record = (
        "7\t50450292\t.\tA\tG\t.\tPASS\tANN=G|missense_variant|MODERATE|IKZF1|ENSG00000185811|transcript|"
        "ENST00000331340.8|protein_coding|5/8|c.476A>G|p.Asn159Ser|500/6000|476/1560|159/519||\tGT:AD:DP\t0/1:60,40:100"
    )
    text = (
        vcf_text([record])
        .replace(next(line for line in vcf_text([]).splitlines() if "ID=CSQ" in line), ann_header)
        .replace('##VEP="v106"', '##SnpEffVersion="5.1d (build 2022-04-19)"')
    )
    vcf = tmp_path / "snpeff.vcf"
    vcf.write_text(text)
    load_source(warehouse, "vcf", vcf)
    assert query(
        warehouse,
        "SELECT annotation_source, exon_number, exon_count, protein_position, selection_rule "
        "FROM variant_annotation",
    ) == [("SnpEff 5.1d", 5, 8, 159, "reference_transcript")]
