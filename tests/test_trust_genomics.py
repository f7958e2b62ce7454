"""VCF and MAF inputs that used to load wrong or not at all, each with what a user now sees: calls without
GT or AD, annotation entries that do not match their header, lowercase bases, duplicate records, MAF
classifications and builds, lines cut short, blank lines, and samples of purged patients."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from etl.errors import FileRejected
from etl.load.framework import run_load
from etl.sources.registry import load_source
from etl.sources.vcf import VcfLoader
from tests.helpers import (
    ALIVE,
    DEAD,
    fingerprint,
    query,
    record_purged_sample,
    scalar,
    write_graall,
    write_sample_manifest,
)

CSQ_FORMAT = (
    "Allele|Consequence|IMPACT|SYMBOL|Feature_type|Feature|EXON|HGVSp|Protein_position|Amino_acids|CANONICAL|"
    "MANE_SELECT"
)
CSQ = (
    "CSQ=G|missense_variant|MODERATE|IKZF1|Transcript|ENST00000331340.8|5/8|p.Asn159Ser|159|N/S|YES|"
    "NM_006060.6"
)
ANN_HEADER = (
    "##INFO=<ID=ANN,Number=.,Type=String,Description=\"Functional annotations: 'Allele | Annotation | "
    "Annotation_Impact | Gene_Name | Gene_ID | Feature_Type | Feature_ID | Transcript_BioType | Rank | "
    "HGVS.c | HGVS.p | cDNA.pos / cDNA.length | CDS.pos / CDS.length | AA.pos / AA.length | Distance | "
    "ERRORS / WARNINGS / INFO' \">"
)
ANN = (
    "ANN=G|missense_variant|MODERATE|IKZF1|ENSG00000185811|transcript|ENST00000331340.8|protein_coding|5/8|"
    "c.476A>G|p.Asn159Ser|500/6000|476/1560|159/519||"
)
FORMAT_LINES = {
    "GT": '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    "AD": '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
    "DP": '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    "AF": '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fractions">',
}


def vcf_header(
    samples: tuple[str, ...] = ("T1",), formats: tuple[str, ...] = ("GT", "AD", "DP"),
    meta: tuple[str, ...] = ("##reference=GRCh37",), info: str | None = None,
) -> list[str]:  # fmt: skip
    info = info or (
        '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. '
        f'Format: {CSQ_FORMAT}">'
    )
    columns = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]
    return [
        "##fileformat=VCFv4.2", *meta, "##contig=<ID=7,length=159138663>", '##VEP="v106"', info,
        *(FORMAT_LINES[f] for f in formats), "\t".join(columns),
    ]  # fmt: skip


def write_vcf(path: Path, records: list[str], end: str = "\n", **header: object) -> Path:
    path.write_text("\n".join([*vcf_header(**header), *records]) + end)  # type: ignore[arg-type]
    return path


def first_record_line(**header: object) -> int:
    return len(vcf_header(**header)) + 1  # type: ignore[arg-type]


def record(pos: int = 50450292, ref: str = "A", alt: str = "G", info: str = CSQ, *calls: str) -> str:
    """A VCF record; `calls` are FORMAT then one value per sample (GT:AD:DP 0/1:60,40:100 by default)."""
    return "\t".join([
        "7", str(pos), ".", ref, alt, ".", "PASS", info, *(calls or ("GT:AD:DP", "0/1:60,40:100")),
    ])  # fmt: skip


@pytest.fixture
def warehouse(db_path: Path, tmp_path: Path) -> Path:
    """Two GRAALL patients; G03-00001 has the sequencing samples T1 and T2 (GRCh37)."""
    load_source(db_path, "clinical", write_graall(tmp_path / "graall.csv", ALIVE, DEAD), layout="graall")
    load_source(db_path, "samples", write_sample_manifest(tmp_path / "manifest.tsv", ["T1", "T2"]))
    return db_path


CALLS = (
    "SELECT s.sample_key, v.chrom, v.pos, v.ref, v.alt, c.genotype, c.vaf, c.depth, c.alt_depth, c.filter "
    "FROM variant_call c JOIN variant v USING (variant_id) JOIN sample s USING (sample_id) "
    "WHERE c.superseded_by_run_id IS NULL ORDER BY ALL"
)
REJECTS = "SELECT line, column_name, value, rule, message FROM rejected_record ORDER BY line, column_name"


# --- 1. calls without GT or AD ---------------------------------------------------------------------------


def test_a_tumour_only_vcf_with_only_dp_and_af_stores_the_calls_af_supports(
    warehouse: Path, tmp_path: Path
) -> None:
    """Tumour-only callers often write FORMAT DP:AF. A sample whose AF is above 0 carries the allele: its
    call is stored with no genotype (none was written), the VAF from AF and the depth from DP. A sample
    with AF 0 carries nothing."""
    vcf = write_vcf(
        tmp_path / "tumour_only.vcf", [record(50450292, "A", "G", CSQ, "DP:AF", "100:0.3", "80:0")],
        samples=("T1", "T2"), formats=("DP", "AF"),
    )  # fmt: skip
    report = load_source(warehouse, "vcf", vcf)
    assert (report.rows_read, report.rows_rejected) == (1, 0)
    assert query(warehouse, CALLS) == [("T1", "7", 50450292, "A", "G", None, 0.3, 100, None, "PASS")]


def test_without_a_genotype_the_read_counts_decide_who_carries_the_allele(
    warehouse: Path, tmp_path: Path
) -> None:
    """FORMAT AD:DP:AF without GT: a sample with alt reads (AD) carries the allele. A sample with no alt
    read does not, even with an AF above 0 (Mutect2's AF is an estimate, never 0): the reads decide."""
    vcf = write_vcf(
        tmp_path / "no_gt.vcf",
        [record(50450292, "A", "G", CSQ, "AD:DP:AF", "60,40:100:0.4", "100,0:100:0.01")],
        samples=("T1", "T2"), formats=("AD", "DP", "AF"),
    )  # fmt: skip
    load_source(warehouse, "vcf", vcf)
    assert query(warehouse, CALLS) == [("T1", "7", 50450292, "A", "G", None, 0.4, 100, 40, "PASS")]


def test_a_record_whose_format_cannot_tell_a_carrier_is_quarantined(warehouse: Path, tmp_path: Path) -> None:
    """A record whose samples give neither GT, AD nor AF (here only DP) cannot say who carries its allele:
    it is quarantined (rule carrier_evidence), not counted as loaded with no call."""
    vcf = write_vcf(
        tmp_path / "dp_only_record.vcf",
        [record(), record(50450300, "C", "T", ".", "DP", "120")],
    )
    report = load_source(warehouse, "vcf", vcf, max_reject_fraction=0.5)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (2, 1, 1)
    [(line, column, value, rule, message)] = query(warehouse, REJECTS)
    assert (line, column, value, rule) == (first_record_line() + 1, "FORMAT", "DP", "carrier_evidence")
    assert "no GT, AD or AF" in message


def test_a_vcf_whose_header_declares_no_gt_ad_or_af_is_refused(warehouse: Path, tmp_path: Path) -> None:
    """When the ##FORMAT lines declare none of GT, AD and AF, no record can ever say who carries a variant:
    the file is refused whole, the database unchanged."""
    before = fingerprint(warehouse)
    vcf = write_vcf(tmp_path / "dp_only.vcf", [record(50450292, "A", "G", CSQ, "DP", "100")], formats=("DP",))
    with pytest.raises(FileRejected, match=r"declare none of GT, AD, AF \(only DP\)"):
        load_source(warehouse, "vcf", vcf)
    assert fingerprint(warehouse) == before


# --- 2. annotation entries that do not match their header ------------------------------------------------


@pytest.mark.parametrize(
    ("info", "header", "rule", "counts"),
    [
        (CSQ + "|extra", None, "fields:CSQ", "13 fields, the ##INFO CSQ header declares 12"),
        (CSQ.rpartition("|")[0], None, "fields:CSQ", "11 fields, the ##INFO CSQ header declares 12"),
        (ANN + "|extra", ANN_HEADER, "fields:ANN", "17 fields, the ##INFO ANN header declares 16"),
    ],
    ids=["csq-more", "csq-fewer", "ann-more"],
)
def test_an_annotation_entry_that_does_not_match_its_header_is_quarantined(
    warehouse: Path, tmp_path: Path, info: str, header: str | None, rule: str, counts: str
) -> None:
    """Annotation fields are read by their position in the header's Format list: an entry with more or
    fewer fields cannot be read without guessing which field moved. Its record is quarantined."""
    vcf = write_vcf(tmp_path / "ann.vcf", [record(info=info), record(50450300, "C", "T")], info=header)
    report = load_source(warehouse, "vcf", vcf, max_reject_fraction=0.5)
    assert report.rows_rejected == 1
    [(line, column, value, found_rule, message)] = query(warehouse, REJECTS)
    assert (line, column, found_rule) == (first_record_line(), rule.partition(":")[2], rule)
    assert value == info.partition("=")[2] and counts in message


# --- 3. lowercase bases ---------------------------------------------------------------------------------


def test_lowercase_bases_load_as_their_uppercase_twin(warehouse: Path, tmp_path: Path) -> None:
    """VCF bases are case-insensitive: a lowercase record is stored upper case (a documented
    normalisation), the same variant, annotation and call as its uppercase twin."""
    lower = write_vcf(tmp_path / "lower.vcf", [record(50450292, "a", "g", CSQ.replace("CSQ=G", "CSQ=g"))])
    report = load_source(warehouse, "vcf", lower)
    assert report.rows_rejected == 0
    stored = query(warehouse, CALLS)
    annotation = "SELECT transcript_accession, consequence FROM variant_annotation WHERE is_selected"
    assert stored == [("T1", "7", 50450292, "A", "G", "0/1", 0.4, 100, 40, "PASS")]
    assert query(warehouse, annotation) == [("ENST00000331340.8", "missense_variant")]
    upper = load_source(warehouse, "vcf", write_vcf(tmp_path / "upper.vcf", [record()]))
    assert upper.tables["variant"]["inserted"] == 0 and upper.tables["variant_call"]["unchanged"] == 1


# --- 4. duplicate records -------------------------------------------------------------------------------


def test_a_vcf_record_given_twice_is_loaded_once_and_the_later_line_quarantined(
    warehouse: Path, tmp_path: Path
) -> None:
    """The same CHROM, POS, REF and ALT twice would give the sample two current calls of one variant: the
    later line is quarantined (rule unique) with a message naming the first."""
    first = first_record_line()
    vcf = write_vcf(tmp_path / "twice.vcf", [record(), record(50450300, "C", "T"), record()])
    report = load_source(warehouse, "vcf", vcf, max_reject_fraction=0.5)
    assert (report.rows_read, report.rows_rejected) == (3, 1)
    [(line, column, _value, rule, message)] = query(warehouse, REJECTS)
    assert (line, column, rule) == (first + 2, "ALT", "unique")
    assert message == f"variant 7:50450292 A>G is already on line {first}"
    assert scalar(warehouse, "SELECT count(*) FROM variant_call WHERE superseded_by_run_id IS NULL") == 2


def test_a_duplicate_in_a_later_batch_is_found_too(warehouse: Path, tmp_path: Path) -> None:
    """VCFs are read in batches of records: a duplicate of a record of an earlier batch is found the same."""
    first = first_record_line()
    vcf = write_vcf(tmp_path / "twice.vcf", [record(), record(50450300, "C", "T"), record()])
    report = run_load(warehouse, VcfLoader(batch_records=1), vcf, max_reject_fraction=0.5)
    assert report.rows_rejected == 1
    assert query(warehouse, "SELECT line, rule, message FROM rejected_record") == [
        (first + 2, "unique", f"variant 7:50450292 A>G is already on line {first}")
    ]


MAF_COLUMNS = [
    "Hugo_Symbol", "Chromosome", "Start_Position", "Reference_Allele", "Tumor_Seq_Allele2",
    "Tumor_Sample_Barcode", "Variant_Classification", "NCBI_Build", "t_depth", "t_alt_count", "FILTER",
]  # fmt: skip
MAF_ROW = {
    "Hugo_Symbol": "IKZF1", "Chromosome": "7", "Start_Position": "50450292", "Reference_Allele": "A",
    "Tumor_Seq_Allele2": "G", "Tumor_Sample_Barcode": "T1", "Variant_Classification": "Missense_Mutation",
    "NCBI_Build": "GRCh37", "t_depth": "100", "t_alt_count": "40", "FILTER": "PASS",
}  # fmt: skip


def maf_line(columns: list[str], **values: str) -> str:
    row = {**MAF_ROW, **values}
    return "\t".join(row.get(c, "") for c in columns)


def write_maf(path: Path, *rows: dict[str, str], columns: list[str] = MAF_COLUMNS, end: str = "\n") -> Path:
    """A MAF with a version comment (line 1), the header (line 2) and `rows` from line 3."""
    lines = ["#version 2.4", "\t".join(columns), *(maf_line(columns, **row) for row in rows)]
    path.write_text("\n".join(lines) + end)
    return path


def test_a_maf_row_given_twice_for_a_sample_is_quarantined(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same sample and variant twice in a MAF: the later row is quarantined (rule unique), naming the
    first; the same variant in another sample is not a duplicate. Large MAFs are read in slices: a
    duplicate in a later slice is found the same."""
    from etl.sources import maf

    monkeypatch.setattr(maf, "BATCH_ROWS", 1)
    path = write_maf(tmp_path / "twice.maf", {}, {"Tumor_Sample_Barcode": "T2"}, {"t_depth": "90"})
    report = load_source(warehouse, "maf", path, max_reject_fraction=0.5)
    assert (report.rows_read, report.rows_rejected) == (3, 1)
    assert query(warehouse, "SELECT line, column_name, rule, message FROM rejected_record") == [
        (5, "Tumor_Seq_Allele2", "unique", "sample T1, variant 7:50450292 A>G is already on line 3")
    ]
    assert [row[0] for row in query(warehouse, CALLS)] == ["T1", "T2"]


# --- 5. MAF Variant_Classification -----------------------------------------------------------------------


def test_without_a_consequence_column_the_consequence_comes_from_variant_classification(
    warehouse: Path, tmp_path: Path
) -> None:
    """A MAF with no Consequence column (maftools, TCGA): the Sequence Ontology term and impact are derived
    from Variant_Classification, by the mapping of etl/sources/maf.py (vcf2maf's, read backwards)."""
    rows = [
        {"Start_Position": "50450292", "Variant_Classification": "Missense_Mutation"},
        {"Start_Position": "50450300", "Variant_Classification": "Splice_Region"},
        {"Start_Position": "50450310", "Variant_Classification": "Targeted_Region"},
        {"Start_Position": "50450320", "Variant_Classification": "De_novo_Start_OutOfFrame"},
    ]
    load_source(warehouse, "maf", write_maf(tmp_path / "no_consequence.maf", *rows))
    assert query(
        warehouse,
        "SELECT v.pos, a.consequence, a.impact FROM variant_annotation a JOIN variant v USING (variant_id) "
        "ORDER BY v.pos",
    ) == [
        (50450292, "missense_variant", "MODERATE"),
        (50450300, "splice_region_variant", "LOW"),
        (50450310, "sequence_variant", "MODIFIER"),
        (50450320, "5_prime_UTR_premature_start_codon_gain_variant", "MODIFIER"),
    ]


def test_a_variant_classification_outside_the_standard_set_is_quarantined(
    warehouse: Path, tmp_path: Path
) -> None:
    """Variant_Classification takes the GDC / cBioPortal values; any other is quarantined (rule
    code:Variant_Classification) with the accepted values, not loaded with no consequence."""
    rows = [{}, {"Start_Position": "50450300", "Variant_Classification": "Missense"}]
    report = load_source(warehouse, "maf", write_maf(tmp_path / "odd.maf", *rows), max_reject_fraction=0.5)
    assert report.rows_rejected == 1
    [(line, column, value, rule, message)] = query(warehouse, REJECTS)
    assert (line, column, value, rule) == (
        4,
        "Variant_Classification",
        "Missense",
        "code:Variant_Classification",
    )
    assert message.startswith("'Missense' is not a Variant_Classification code (allowed: ")
    assert "Missense_Mutation" in message and "Splice_Region" in message


# --- 6. --assembly against what the file says ------------------------------------------------------------


def test_assembly_option_contradicting_a_maf_ncbi_build_refuses_the_file(
    warehouse: Path, tmp_path: Path
) -> None:
    """--assembly GRCh38 on a MAF whose NCBI_Build says 37: one of them is wrong, and cgdw cannot tell
    which. The file is refused, naming the column, the value and the option."""
    before = fingerprint(warehouse)
    path = write_maf(tmp_path / "b37.maf", {"NCBI_Build": "37"})
    with pytest.raises(FileRejected, match=r"NCBI_Build '37' \(line 3\) says GRCh37, --assembly says GRCh38"):
        load_source(warehouse, "maf", path, assembly="GRCh38")
    assert fingerprint(warehouse) == before


def test_assembly_option_agreeing_with_the_maf_or_filling_an_empty_build_loads(
    warehouse: Path, tmp_path: Path
) -> None:
    """--assembly that agrees with NCBI_Build (hg19 is GRCh37), or fills an empty one, loads."""
    path = write_maf(
        tmp_path / "b37.maf", {"NCBI_Build": "hg19"}, {"Start_Position": "50450300", "NCBI_Build": ""}
    )
    report = load_source(warehouse, "maf", path, assembly="GRCh37")
    assert report.rows_rejected == 0
    assert query(warehouse, "SELECT DISTINCT assembly FROM variant") == [("GRCh37",)]


@pytest.mark.parametrize(
    ("meta", "named"),
    [
        (("##reference=GRCh37",), "##reference=GRCh37"),
        (("##reference=file:///refs/human_g1k_v37.fasta",), "##reference=file:///refs/human_g1k_v37.fasta"),
        (("##assembly=hg19",), "##assembly=hg19"),
        (("##contig=<ID=1,length=249250621,assembly=b37>",), "##contig=<ID=1,length=249250621,assembly=b37>"),
    ],
    ids=["reference", "g1k-fasta", "assembly", "contig-assembly"],
)
def test_assembly_option_contradicting_the_vcf_header_refuses_the_file(
    warehouse: Path, tmp_path: Path, meta: tuple[str, ...], named: str
) -> None:
    """A VCF header that names GRCh37 loaded with --assembly GRCh38 is refused, naming the header line and
    the option."""
    before = fingerprint(warehouse)
    vcf = write_vcf(tmp_path / "b37.vcf", [record()], meta=meta)
    with pytest.raises(
        FileRejected, match=re.escape(f"the header's {named} says GRCh37, --assembly says GRCh38")
    ):
        load_source(warehouse, "vcf", vcf, assembly="GRCh38")
    assert fingerprint(warehouse) == before


def test_assembly_option_contradicting_the_samples_assay_refuses_a_vcf(
    warehouse: Path, tmp_path: Path
) -> None:
    """The same for the sample manifest: --assembly GRCh38 on a VCF whose samples were sequenced on a GRCh37
    assay (and whose header says nothing) is refused, not loaded on the option's word."""
    before = fingerprint(warehouse)
    vcf = write_vcf(tmp_path / "silent_header.vcf", [record()], meta=())
    with pytest.raises(FileRejected, match="sample T1's assay says GRCh37, --assembly says GRCh38"):
        load_source(warehouse, "vcf", vcf, assembly="GRCh38")
    assert fingerprint(warehouse) == before


# --- 7. MAF lines cut short, and an empty FILTER ---------------------------------------------------------


def test_a_maf_line_cut_short_is_quarantined_not_padded_with_empty_values(
    warehouse: Path, tmp_path: Path
) -> None:
    """A line with fewer fields than the header would load with depth, alt count and VAF empty and FILTER
    PASS. It is quarantined (rule fields), naming the first missing column; the other rows load."""
    path = write_maf(tmp_path / "short.maf", {}, {"Start_Position": "50450300"})
    lines = path.read_text().splitlines()
    lines[3] = "\t".join(lines[3].split("\t")[:8])
    path.write_text("\n".join(lines) + "\n")
    report = load_source(warehouse, "maf", path, max_reject_fraction=0.5)
    assert (report.rows_read, report.rows_rejected) == (2, 1)
    assert query(warehouse, REJECTS) == [
        (4, "t_depth", None, "fields", "line 4 has 8 fields, the header has 11")
    ]


def test_a_maf_cut_inside_its_last_line_is_refused_whole(warehouse: Path, tmp_path: Path) -> None:
    """A file that ends inside a line (no final newline, the last line short) was cut in transfer: it is
    refused whole, as a truncated VCF is."""
    path = write_maf(tmp_path / "cut.maf", {}, {"Start_Position": "50450300"})
    path.write_bytes(path.read_bytes().rstrip(b"\n").rpartition(b"\t")[0].rpartition(b"\t")[0])
    before = fingerprint(warehouse)
    with pytest.raises(FileRejected, match=r"line 4 has 9 fields, the header has 11: the file ends inside"):
        load_source(warehouse, "maf", path)
    assert fingerprint(warehouse) == before


def test_an_empty_maf_filter_is_stored_as_unknown_not_pass(warehouse: Path, tmp_path: Path) -> None:
    """A MAF with a FILTER column and an empty FILTER cell does not say the call passed: it is stored '.'
    (the VCF value for 'no filter status'). A MAF with no FILTER column lists the calls its producer kept,
    by the MAF convention: those are PASS."""
    path = write_maf(
        tmp_path / "filters.maf", {"FILTER": ""}, {"Start_Position": "50450300", "FILTER": "PASS"}
    )
    load_source(warehouse, "maf", path)
    assert [(row[2], row[-1]) for row in query(warehouse, CALLS)] == [(50450292, "."), (50450300, "PASS")]
    no_filter = write_maf(
        tmp_path / "no_filter.maf", {"Tumor_Sample_Barcode": "T2"}, columns=MAF_COLUMNS[:-1]
    )
    load_source(warehouse, "maf", no_filter)
    assert [(row[0], row[-1]) for row in query(warehouse, CALLS) if row[0] == "T2"] == [("T2", "PASS")]


# --- 8. blank lines in a VCF -----------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["\n\n", "\n\n\n", "\r\n\r\n", "\n   \n"])
def test_blank_lines_at_the_end_of_a_vcf_are_ignored(warehouse: Path, tmp_path: Path, end: str) -> None:
    """An editor or a `cat` often leaves a blank line at the end: it is not a record and changes nothing."""
    vcf = write_vcf(tmp_path / "trailing.vcf", [record(), record(50450300, "C", "T")], end=end)
    report = load_source(warehouse, "vcf", vcf)
    assert (report.rows_read, report.rows_rejected) == (2, 0)
    assert len(query(warehouse, CALLS)) == 2


@pytest.mark.parametrize("batch_records", [100_000, 1, 2])
def test_a_blank_line_between_vcf_records_is_quarantined_with_its_line(
    warehouse: Path, tmp_path: Path, batch_records: int
) -> None:
    """A blank line between records is not VCF: it is quarantined (rule blank_line) under its own line
    number, and every record around it loads at its own line, whatever the batch size."""
    first = first_record_line()
    records = [record(), "", record(50450300, "C", "T"), record(50450310, "G", "A")]
    vcf = write_vcf(tmp_path / "blank.vcf", records)
    report = run_load(warehouse, VcfLoader(batch_records=batch_records), vcf, max_reject_fraction=0.5)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (4, 3, 1)
    assert query(warehouse, "SELECT line, rule, message FROM rejected_record") == [
        (first + 1, "blank_line", f"line {first + 1} is blank: a VCF has no blank lines between records")
    ]
    assert query(warehouse, "SELECT source_line FROM variant_call ORDER BY 1") == [
        (first,),
        (first + 2,),
        (first + 3,),
    ]


def test_a_maf_follows_the_same_rule_for_blank_lines(warehouse: Path, tmp_path: Path) -> None:
    """MAF too: blank lines at the end are ignored; one between rows is quarantined (rule blank_line), not
    read as a row of empty values."""
    path = write_maf(tmp_path / "blank.maf", {}, {"Start_Position": "50450300"}, end="\n\n\n")
    lines = path.read_text().split("\n")
    path.write_text("\n".join([*lines[:3], "", *lines[3:]]))
    report = load_source(warehouse, "maf", path, max_reject_fraction=0.5)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 2, 1)
    assert query(warehouse, REJECTS) == [
        (4, None, None, "blank_line", "line 4 is blank: a MAF has no blank lines between records")
    ]
    assert query(warehouse, "SELECT source_line FROM variant_call ORDER BY 1") == [(3,), (5,)]


# --- 9. samples of purged patients ------------------------------------------------------------------------


def test_a_purged_sample_column_is_dropped_and_the_other_samples_load(
    warehouse: Path, tmp_path: Path
) -> None:
    """A re-delivered batch VCF still holds the column of a sample whose patient was purged (the purge kept
    its tombstone): the column is dropped with a warning naming no sample, nothing of it is loaded or
    quarantined, and the batch's other samples load."""
    record_purged_sample(warehouse, "P9")
    vcf = write_vcf(
        tmp_path / "batch.vcf",
        [record(50450292, "A", "G", CSQ, "GT:AD:DP", "0/1:60,40:100", "0/1:50,50:100")],
        samples=("T1", "P9"),
    )
    report = load_source(warehouse, "vcf", vcf)
    assert (report.rows_read, report.rows_rejected) == (1, 0)
    assert report.warnings == [
        "1 sample column of purged patients was not loaded: their consent was withdrawn and their data "
        "purged (cgdw purge)"
    ]
    assert [row[0] for row in query(warehouse, CALLS)] == ["T1"]
    assert "P9" not in str(query(warehouse, "SELECT counts_json FROM etl_run"))


def test_maf_rows_of_a_purged_sample_are_dropped_with_a_warning(warehouse: Path, tmp_path: Path) -> None:
    """The MAF rows of a purged patient's sample are neither loaded nor quarantined, only counted in a
    warning; the other samples' rows load."""
    record_purged_sample(warehouse, "P9")
    path = write_maf(
        tmp_path / "batch.maf", {}, {"Tumor_Sample_Barcode": "P9"}, {"Tumor_Sample_Barcode": "P9"}
    )
    report = load_source(warehouse, "maf", path)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (1, 1, 0)
    assert report.warnings == [
        "2 rows of 1 sample of purged patients were not loaded: their consent was withdrawn and their data "
        "purged (cgdw purge)"
    ]
    assert [row[0] for row in query(warehouse, CALLS)] == ["T1"]
