"""Export of the warehouse as a cBioPortal study, and a checker of the cBioPortal format rules.

    export_cbioportal(db, out_dir, study_id=...)   meta_study.txt, clinical patient / sample files, MAF,
                                                    discrete CNA, SEG, case lists, one meta file per file
    check_cbioportal_study(dir) -> [problems]      headers, required columns, datatypes, value sets,
                                                    case lists and meta files consistent with the data

The export reads the versioned views (`cohort_patient`, `endpoint`), so patients whose consent is
withdrawn are never exported, and the pseudonymous patient key is the PATIENT_ID: no source id leaves the
warehouse. Rows are sorted: the same warehouse gives the same bytes. Documented in docs/cbioportal.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from etl.cbioportal_format import (
    ATTRIBUTE_ID,
    BOOLEAN_VALUES,
    CNA_CODES,
    DFS_FREE,
    DFS_RECURRED,
    GENOME_OF_ASSEMBLY,
    KNOWN_META,
    OS_DECEASED,
    OS_LIVING,
    ClinicalFile,
    days_to_months,
    is_missing,
    read_clinical,
    read_meta,
)
from etl.errors import CgdwError
from etl.warehouse import open_for_read, query_frame

NA = "NA"

# Patient attributes: id -> (display name, description, datatype, priority).
PATIENT_ATTRIBUTES: dict[str, tuple[str, str, str, str]] = {
    "PATIENT_ID": ("Patient Identifier", "Pseudonymous cgdw patient key (HMAC)", "STRING", "1"),
    "TRIAL_GROUP": ("Trial Group", "Cooperative group whose database holds the patient", "STRING", "1"),
    "PROTOCOL": ("Protocol", "Treatment protocol", "STRING", "1"),
    "DIAGNOSIS": ("Diagnosis", "T-ALL, T-LBL, B-ALL, AML, MPAL or other", "STRING", "1"),
    "DIAGNOSIS_YEAR": ("Diagnosis Year", "Year of diagnosis", "NUMBER", "1"),
    "SEX": ("Sex", "Sex", "STRING", "1"),
    "AGE": ("Diagnosis Age", "Age at diagnosis, years", "NUMBER", "1"),
    "COMPLETE_REMISSION": ("Complete Remission", "Complete remission after induction", "BOOLEAN", "1"),
    "IKZF1_STATUS": ("IKZF1 Status", "Alt (altered) or GL (germline); NA if not looked at", "STRING", "1"),
    "OS_STATUS": ("Overall Survival Status", "Overall survival status", "STRING", "1"),
    "OS_MONTHS": ("Overall Survival (Months)", "Overall survival in months since diagnosis", "NUMBER", "1"),
    "DFS_STATUS": ("Disease Free Status", "Relapse after complete remission", "STRING", "1"),
    "DFS_MONTHS": ("Disease Free (Months)", "Months from diagnosis to relapse or last news", "NUMBER", "1"),
}
SAMPLE_ATTRIBUTES: dict[str, tuple[str, str, str, str]] = {
    "PATIENT_ID": ("Patient Identifier", "Pseudonymous cgdw patient key (HMAC)", "STRING", "1"),
    "SAMPLE_ID": ("Sample Identifier", "Sequencing sample id", "STRING", "1"),
    "SAMPLE_TYPE": ("Sample Type", "Primary (diagnosis), Recurrence (relapse), ...", "STRING", "1"),
}
SAMPLE_TYPE_LABELS = {
    "diagnosis": "Primary",
    "relapse": "Recurrence",
    "remission": "Remission",
    "follow_up": "Follow-up",
}
# Consequence (Sequence Ontology, first term) -> MAF Variant_Classification; indels by allele lengths.
CLASSIFICATION = {
    "missense_variant": "Missense_Mutation", "stop_gained": "Nonsense_Mutation",
    "stop_lost": "Nonstop_Mutation",
    "inframe_deletion": "In_Frame_Del", "inframe_insertion": "In_Frame_Ins",
    "splice_acceptor_variant": "Splice_Site", "splice_donor_variant": "Splice_Site",
    "splice_region_variant": "Splice_Region", "start_lost": "Translation_Start_Site",
    "synonymous_variant": "Silent", "intron_variant": "Intron", "3_prime_UTR_variant": "3'UTR",
    "5_prime_UTR_variant": "5'UTR", "downstream_gene_variant": "3'Flank", "upstream_gene_variant": "5'Flank",
    "intergenic_variant": "IGR", "non_coding_transcript_exon_variant": "RNA",
    "protein_altering_variant": "Missense_Mutation",
}  # fmt: skip
VARIANT_CLASSIFICATIONS = frozenset(
    {"Frame_Shift_Del", "Frame_Shift_Ins", "In_Frame_Del", "In_Frame_Ins", "Missense_Mutation",
     "Nonsense_Mutation", "Silent", "Splice_Site", "Translation_Start_Site", "Nonstop_Mutation", "3'UTR",
     "3'Flank", "5'UTR", "5'Flank", "IGR", "Intron", "RNA", "Targeted_Region", "Splice_Region",
     "De_novo_Start_InFrame", "De_novo_Start_OutOfFrame", "Unknown", "Fusion"}
)  # fmt: skip
AMINO_ACIDS = {
    "Ala": "A", "Arg": "R", "Asn": "N", "Asp": "D", "Cys": "C", "Gln": "Q", "Glu": "E", "Gly": "G",
    "His": "H", "Ile": "I", "Leu": "L", "Lys": "K", "Met": "M", "Phe": "F", "Pro": "P", "Ser": "S",
    "Thr": "T", "Trp": "W", "Tyr": "Y", "Val": "V", "Ter": "*", "Sec": "U", "Xaa": "X",
}  # fmt: skip
MAF_COLUMNS = [
    "Hugo_Symbol", "Entrez_Gene_Id", "Center", "NCBI_Build", "Chromosome", "Start_Position", "End_Position",
    "Strand", "Variant_Classification", "Variant_Type", "Reference_Allele", "Tumor_Seq_Allele1",
    "Tumor_Seq_Allele2", "Tumor_Sample_Barcode", "Matched_Norm_Sample_Barcode", "HGVSc", "HGVSp",
    "HGVSp_Short", "Transcript_ID", "Exon_Number", "Consequence", "IMPACT", "Protein_position",
    "Amino_acids", "t_depth", "t_ref_count", "t_alt_count", "FILTER",
]  # fmt: skip
MAF_REQUIRED = ("Hugo_Symbol", "Tumor_Sample_Barcode", "Variant_Classification", "HGVSp_Short")
SEG_HEADER = ["ID", "chrom", "loc.start", "loc.end", "num.mark", "seg.mean"]
DISCRETE_STABLE_IDS = frozenset({"gistic", "cna", "cna_rae", "cna_consensus", "log2CNA", "linear_CNA"})
DIAGNOSIS_CANCER_TYPE = {"T-ALL": "tll", "T-LBL": "tll", "B-ALL": "bll", "AML": "aml", "MPAL": "mpal"}


@dataclass
class ExportSummary:
    out_dir: Path
    study_id: str
    patients: int = 0
    samples: int = 0
    mutations: int = 0
    cna_genes: int = 0
    cna_samples: int = 0
    segments: int = 0
    files: list[str] = field(default_factory=list)


def _short_protein(hgvsp: str | None) -> str | None:
    """p.Asn159Ser -> p.N159S (cBioPortal's HGVSp_Short); the transcript prefix is dropped."""
    if not hgvsp:
        return None
    protein = hgvsp.split(":")[-1]
    return re.sub("|".join(AMINO_ACIDS), lambda m: AMINO_ACIDS[m.group(0)], protein)


def _classification(consequence: str | None, ref: str, alt: str) -> str:
    terms = (consequence or "").split("&")
    if "frameshift_variant" in terms:
        return "Frame_Shift_Ins" if ref == "-" else "Frame_Shift_Del"
    for term in terms:
        if term in CLASSIFICATION:
            return CLASSIFICATION[term]
    return "Unknown"


def _variant_type(ref: str, alt: str) -> str:
    if ref == "-":
        return "INS"
    if alt == "-":
        return "DEL"
    return {1: "SNP", 2: "DNP", 3: "TNP"}.get(len(ref), "ONP") if len(ref) == len(alt) else "ONP"


def _end(pos: int, ref: str) -> int:
    # MAF: an insertion spans the two bases around it; otherwise the reference bases.
    return pos + 1 if ref == "-" else pos + len(ref) - 1


def _text(value: Any) -> str:
    if value is None:
        return NA
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _write_clinical(
    path: Path, attributes: dict[str, tuple[str, str, str, str]], rows: Sequence[Sequence[Any]]
) -> None:
    ids = list(attributes)
    lines = ["#" + "\t".join(attributes[a][i] for a in ids) for i in range(4)]
    lines.append("\t".join(ids))
    lines.extend("\t".join(_text(v) for v in row) for row in rows)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_meta(path: Path, entries: dict[str, str]) -> None:
    path.write_text("".join(f"{k}: {v}\n" for k, v in entries.items()), encoding="utf-8")


def _write_table(path: Path, header: list[str], rows: Sequence[Sequence[Any]]) -> None:
    lines = ["\t".join(header)]
    lines.extend("\t".join(_text(v) if v is not None else "" for v in row) for row in rows)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def export_cbioportal(
    db_path: Path, out_dir: Path, *, study_id: str = "cgdw", name: str | None = None
) -> ExportSummary:
    """Write the warehouse's cohort as a cBioPortal study in `out_dir` (created; existing study files of
    the same names are overwritten)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", study_id):
        raise CgdwError(f"--study-id must be letters, digits and '_' (cBioPortal stable ids): {study_id!r}")
    with open_for_read(db_path) as con:
        views = {n for (n,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "cohort_patient" not in views:
            raise CgdwError(f"{db_path}: the views are not applied: run `cgdw views apply` first")
        patients = query_frame(
            con,
            """
            SELECT c.patient_key, c.trial_group, c.protocol_code, e.diagnosis, c.diagnosis_year, c.sex, c.age,
                   c.complete_remission, c.ikzf1_status, n.os_status, n.os_days, n.first_relapse_day
            FROM cohort_patient AS c
            JOIN enrolment AS e ON e.patient_id = c.patient_id AND e.superseded_by_run_id IS NULL
            LEFT JOIN endpoint AS n ON n.patient_id = c.patient_id
            ORDER BY c.patient_key
            """,
        )
        # Tumour samples only: a germline (normal) sample is not a case in cBioPortal.
        samples = query_frame(
            con,
            """
            SELECT s.sample_id, s.sample_key, c.patient_key, s.sample_type, a.assembly,
                   a.gene_panel_id IS NOT NULL AS sequenced
            FROM sample AS s JOIN cohort_patient AS c USING (patient_id)
            LEFT JOIN sequencing_assay AS a USING (sequencing_assay_id)
            WHERE s.sample_type <> 'germline'
            ORDER BY s.sample_key
            """,
        )
        con.register("cgdw_export_samples", samples.to_arrow())
        mutations = query_frame(
            con,
            """
            SELECT a.gene_symbol, v.assembly, v.chrom, v.pos, v.ref, v.alt, s.sample_key, a.hgvsc, a.hgvsp,
                   a.transcript_accession, a.exon_number, a.exon_count, a.consequence, a.impact,
                   a.protein_position, a.amino_acids, c.depth, c.alt_depth, c.vaf, c.filter
            FROM variant_call AS c
            JOIN cgdw_export_samples AS s USING (sample_id)
            JOIN variant AS v USING (variant_id)
            JOIN variant_annotation AS a ON a.variant_id = c.variant_id AND a.is_selected
            WHERE c.superseded_by_run_id IS NULL AND c.filter = 'PASS'
            -- one annotation per call: VEP, then SnpEff, then MAF; then by gene and transcript
            QUALIFY row_number() OVER (
                PARTITION BY c.variant_call_id
                ORDER BY CASE WHEN a.annotation_source LIKE 'VEP%' THEN 1
                              WHEN a.annotation_source LIKE 'SnpEff%' THEN 2 ELSE 3 END,
                         a.gene_symbol, a.transcript_accession
            ) = 1
            ORDER BY s.sample_key, v.chrom, v.pos, v.ref, v.alt
            """,
        )
        # Primary gene-level state per sample and gene: the most severe current call (not a confirmation).
        cna = query_frame(
            con,
            """
            SELECT s.sample_key, g.symbol AS gene, c.call_type
            FROM copy_number_call AS c
            JOIN cgdw_export_samples AS s USING (sample_id)
            JOIN gene AS g USING (gene_id)
            WHERE c.superseded_by_run_id IS NULL AND c.confirms_copy_number_call_id IS NULL
            QUALIFY row_number() OVER (
                PARTITION BY c.sample_id, c.gene_id
                ORDER BY CASE c.call_type WHEN 'homozygous_deletion' THEN 1 WHEN 'deletion' THEN 2
                    WHEN 'amplification' THEN 3 WHEN 'gain' THEN 4 ELSE 5 END
            ) = 1
            """,
        )
        # Genes assessed for a sample without a call: those on its assay's panel (0 = assessed, neutral).
        panel = query_frame(
            con,
            """
            SELECT s.sample_key, g.symbol AS gene
            FROM cgdw_export_samples AS s
            JOIN sample AS k USING (sample_id)
            JOIN sequencing_assay AS a USING (sequencing_assay_id)
            JOIN gene_panel_gene AS pg USING (gene_panel_id)
            JOIN gene AS g USING (gene_id)
            """,
        )
        segments = query_frame(
            con,
            """
            SELECT s.sample_key, g.assembly, g.chrom, g.start, g."end", g.num_markers, g.seg_mean
            FROM copy_number_segment AS g JOIN cgdw_export_samples AS s USING (sample_id)
            WHERE g.superseded_by_run_id IS NULL
            ORDER BY s.sample_key, g.chrom, g.start, g."end"
            """,
        )
        con.unregister("cgdw_export_samples")
    assemblies = set(mutations.get_column("assembly")) | set(segments.get_column("assembly"))
    assemblies |= set(samples.get_column("assembly").drop_nulls())
    if len(assemblies) > 1:
        raise CgdwError(
            f"the exported samples are on several assemblies ({', '.join(sorted(assemblies))}); a "
            "cBioPortal study has one reference genome"
        )
    genome = GENOME_OF_ASSEMBLY[assemblies.pop()] if assemblies else "hg19"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "case_lists").mkdir(exist_ok=True)
    summary = ExportSummary(out_dir=out_dir, study_id=study_id)
    diagnoses = set(patients.get_column("diagnosis"))
    cancer_types = {DIAGNOSIS_CANCER_TYPE.get(d, "mixed") for d in diagnoses}
    _write_meta(
        out_dir / "meta_study.txt",
        {
            "type_of_cancer": cancer_types.pop() if len(cancer_types) == 1 else "mixed",
            "cancer_study_identifier": study_id,
            "name": name or f"cgdw warehouse export ({study_id})",
            "description": "Pseudonymised export of the cgdw clinical-genomics warehouse",
            "add_global_case_list": "false",
            "reference_genome": genome,
        },
    )
    summary.files.append("meta_study.txt")

    # Clinical: patients. OS and DFS times are months from diagnosis (days / 30.4375, 2 decimals).
    patient_rows = []
    for p in patients.iter_rows(named=True):
        os_known = p["os_status"] is not None and p["os_days"] is not None
        relapsed = p["first_relapse_day"] is not None
        # DFS only for patients who reached CR: a recurrence is the first relapse, else disease free at
        # the OS end (death or last news).
        in_cr = p["complete_remission"] is True
        dfs_status = (DFS_RECURRED if relapsed else DFS_FREE) if in_cr and (relapsed or os_known) else None
        dfs_day = (p["first_relapse_day"] if relapsed else p["os_days"]) if dfs_status else None
        patient_rows.append(
            [
                p["patient_key"], p["trial_group"], p["protocol_code"], p["diagnosis"], p["diagnosis_year"],
                {"M": "Male", "F": "Female"}.get(p["sex"]), p["age"], p["complete_remission"],
                p["ikzf1_status"], (OS_DECEASED if p["os_status"] == 1 else OS_LIVING) if os_known else None,
                days_to_months(p["os_days"]) if os_known else None, dfs_status,
                days_to_months(dfs_day) if dfs_day is not None else None,
            ]
        )  # fmt: skip
    _write_clinical(out_dir / "data_clinical_patient.txt", PATIENT_ATTRIBUTES, patient_rows)
    summary.patients = len(patient_rows)
    sample_rows = [
        [s["patient_key"], s["sample_key"], SAMPLE_TYPE_LABELS.get(s["sample_type"], s["sample_type"])]
        for s in samples.iter_rows(named=True)
    ]
    _write_clinical(out_dir / "data_clinical_sample.txt", SAMPLE_ATTRIBUTES, sample_rows)
    summary.samples = len(sample_rows)
    for kind, datatype in (("patient", "PATIENT_ATTRIBUTES"), ("sample", "SAMPLE_ATTRIBUTES")):
        _write_meta(
            out_dir / f"meta_clinical_{kind}.txt",
            {
                "cancer_study_identifier": study_id,
                "genetic_alteration_type": "CLINICAL",
                "datatype": datatype,
                "data_filename": f"data_clinical_{kind}.txt",
            },
        )
        summary.files += [f"meta_clinical_{kind}.txt", f"data_clinical_{kind}.txt"]

    # Mutations (PASS calls of tumour samples), MAF with the columns cBioPortal reads.
    maf_rows = []
    for m in mutations.iter_rows(named=True):
        ref, alt = m["ref"], m["alt"]
        depth, alt_depth = m["depth"], m["alt_depth"]
        ref_depth = depth - alt_depth if depth is not None and alt_depth is not None else None
        exon = (
            f"{m['exon_number']}/{m['exon_count']}"
            if m["exon_number"] and m["exon_count"]
            else m["exon_number"]
        )
        maf_rows.append(
            [
                m["gene_symbol"], "", "cgdw", m["assembly"], m["chrom"], m["pos"], _end(m["pos"], ref), "+",
                _classification(m["consequence"], ref, alt), _variant_type(ref, alt), ref, ref, alt,
                m["sample_key"], "", m["hgvsc"], m["hgvsp"], _short_protein(m["hgvsp"]),
                m["transcript_accession"], exon, m["consequence"], m["impact"], m["protein_position"],
                m["amino_acids"], depth, ref_depth, alt_depth, m["filter"],
            ]
        )  # fmt: skip
    sequenced = sorted(
        set(samples.filter(pl.col("sequenced")).get_column("sample_key"))
        | set(mutations.get_column("sample_key"))
    )
    if sequenced:
        _write_table(out_dir / "data_mutations.txt", MAF_COLUMNS, maf_rows)
        _write_meta(
            out_dir / "meta_mutations.txt",
            {
                "cancer_study_identifier": study_id,
                "genetic_alteration_type": "MUTATION_EXTENDED",
                "datatype": "MAF",
                "stable_id": "mutations",
                "show_profile_in_analysis_tab": "true",
                "profile_name": "Mutations",
                "profile_description": "PASS somatic calls (VCF and MAF loads) of the cgdw warehouse",
                "data_filename": "data_mutations.txt",
            },
        )
        summary.files += ["meta_mutations.txt", "data_mutations.txt"]
        summary.mutations = len(maf_rows)

    # Discrete CNA: samples with a primary call; -2/-1/0/1/2 from the calls, 0 for a panel gene without a
    # call (assessed, not altered), NA for a gene the sample's assay does not cover.
    cna_samples = sorted(set(cna.get_column("sample_key")))
    cna_genes = sorted(set(cna.get_column("gene")))
    calls = {(r[0], r[1]): CNA_CODES[r[2]] for r in cna.iter_rows()}
    on_panel = set(panel.iter_rows())
    if cna_samples:
        rows = [
            [gene, *(
                str(calls[(s, gene)]) if (s, gene) in calls else ("0" if (s, gene) in on_panel else NA)
                for s in cna_samples
            )]
            for gene in cna_genes
        ]  # fmt: skip
        _write_table(out_dir / "data_cna.txt", ["Hugo_Symbol", *cna_samples], rows)
        _write_meta(
            out_dir / "meta_cna.txt",
            {
                "cancer_study_identifier": study_id,
                "genetic_alteration_type": "COPY_NUMBER_ALTERATION",
                "datatype": "DISCRETE",
                "stable_id": "cna",
                "show_profile_in_analysis_tab": "true",
                "profile_name": "Putative copy-number alterations",
                "profile_description": "Gene-level copy-number calls: -2 homozygous deletion, -1 deletion, "
                "0 neutral, 1 gain, 2 amplification",
                "data_filename": "data_cna.txt",
            },
        )
        summary.files += ["meta_cna.txt", "data_cna.txt"]
        summary.cna_genes, summary.cna_samples = len(cna_genes), len(cna_samples)
    if segments.height:
        seg_rows = segments.select("sample_key", "chrom", "start", "end", "num_markers", "seg_mean").rows()
        _write_table(out_dir / "data_cna.seg", SEG_HEADER, seg_rows)
        _write_meta(
            out_dir / "meta_cna_seg.txt",
            {
                "cancer_study_identifier": study_id,
                "genetic_alteration_type": "COPY_NUMBER_ALTERATION",
                "datatype": "SEG",
                "reference_genome_id": genome,
                "description": "Copy-number segments (log2 ratio)",
                "data_filename": "data_cna.seg",
            },
        )
        summary.files += ["meta_cna_seg.txt", "data_cna.seg"]
        summary.segments = segments.height

    case_lists = [
        ("all", "All samples", "all_cases_in_study", list(samples.get_column("sample_key"))),
        ("sequenced", "Samples sequenced", "all_cases_with_mutation_data", sequenced),
        ("cna", "Samples with copy-number calls", "all_cases_with_cna_data", cna_samples),
    ]  # fmt: skip
    for suffix, title, category, ids in case_lists:
        if not ids:
            continue
        _write_meta(
            out_dir / "case_lists" / f"cases_{suffix}.txt",
            {
                "cancer_study_identifier": study_id,
                "stable_id": f"{study_id}_{suffix}",
                "case_list_name": title,
                "case_list_description": f"{title} ({len(ids)} samples)",
                "case_list_category": category,
                "case_list_ids": "\t".join(sorted(ids)),
            },
        )
        summary.files.append(f"case_lists/cases_{suffix}.txt")
    return summary


# --- format checker ----------------------------------------------------------------------------------


def _check_clinical(clinical: ClinicalFile, required: tuple[str, ...], problems: list[str]) -> None:
    name = clinical.path.name
    for column in required:
        if column not in clinical.columns:
            problems.append(f"{name}: required column {column} missing")
    for column in clinical.columns:
        if not ATTRIBUTE_ID.match(column):
            problems.append(f"{name}: attribute id {column!r} is not upper case letters, digits and '_'")
    for priority, column in zip(clinical.priorities, clinical.columns, strict=True):
        if not priority.strip().lstrip("-").isdigit():
            problems.append(f"{name}: priority of {column} is {priority!r}, not an integer")
    for index, column in enumerate(clinical.columns):
        datatype = clinical.datatypes[index]
        status = column.endswith("_STATUS") and f"{column[:-7]}_MONTHS" in clinical.columns
        for line, row in zip(clinical.lines, clinical.rows, strict=True):
            value = row[index]
            if is_missing(value):
                if column in required:
                    problems.append(f"{name} line {line}: {column} is empty")
                continue
            if datatype == "NUMBER":
                try:
                    float(value)
                except ValueError:
                    problems.append(f"{name} line {line}: {column} = {value!r} is not a NUMBER")
            elif datatype == "BOOLEAN" and value.upper() not in BOOLEAN_VALUES:
                problems.append(f"{name} line {line}: {column} = {value!r} is not a BOOLEAN (TRUE/FALSE)")
            if status and not re.match(r"^[01]:", value):
                problems.append(f"{name} line {line}: {column} = {value!r} must start with 0: or 1:")
            if column == "OS_STATUS" and value not in (OS_LIVING, OS_DECEASED):
                problems.append(
                    f"{name} line {line}: OS_STATUS = {value!r}, not {OS_LIVING} or {OS_DECEASED}"
                )
            if column.endswith("_MONTHS") and datatype == "NUMBER" and _negative(value):
                problems.append(f"{name} line {line}: {column} = {value!r} is negative")


def _negative(value: str) -> bool:
    try:
        return float(value) < 0
    except ValueError:
        return False


def _column_values(clinical: ClinicalFile, column: str) -> list[str]:
    if column not in clinical.columns:
        return []
    index = clinical.columns.index(column)
    return [row[index] for row in clinical.rows]


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and rows (with line numbers) of a tab-separated file, `#` comment lines skipped."""
    header: list[str] = []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("#") or not line.strip():
            continue
        if not header:
            header = line.split("\t")
        else:
            rows.append((number, line.split("\t")))
    return header, rows


def check_cbioportal_study(study_dir: Path) -> list[str]:
    """The problems a cBioPortal import would have with this study directory (empty when none): meta files
    (required keys, known types, stable ids, existing data files), clinical headers, required columns and
    datatypes, survival statuses, MAF columns and classifications, discrete CNA values, SEG columns, and
    case lists that reference existing samples only."""
    from etl.errors import FileRejected

    problems: list[str] = []
    study_meta_path = study_dir / "meta_study.txt"
    if not study_meta_path.is_file():
        return [f"{study_dir}: no meta_study.txt"]
    study_meta = read_meta(study_meta_path)
    for key in ("type_of_cancer", "cancer_study_identifier", "name", "description"):
        if not study_meta.get(key):
            problems.append(f"meta_study.txt: {key} missing")
    study_id = study_meta.get("cancer_study_identifier", "")
    metas: dict[tuple[str, str], list[tuple[Path, dict[str, str]]]] = {}
    stable_ids: dict[str, str] = {}
    for meta_path in sorted(study_dir.glob("meta_*.txt")):
        if meta_path == study_meta_path:
            continue
        meta = read_meta(meta_path)
        pair = (meta.get("genetic_alteration_type", ""), meta.get("datatype", ""))
        if pair not in KNOWN_META:
            problems.append(f"{meta_path.name}: unknown genetic_alteration_type/datatype {'/'.join(pair)}")
        if pair != ("CANCER_TYPE", "CANCER_TYPE") and meta.get("cancer_study_identifier") != study_id:
            problems.append(f"{meta_path.name}: cancer_study_identifier is not {study_id!r}")
        data = meta.get("data_filename")
        if not data:
            problems.append(f"{meta_path.name}: data_filename missing")
        elif not (study_dir / data).is_file():
            problems.append(f"{meta_path.name}: data_filename {data} does not exist")
        if pair[0] in ("MUTATION_EXTENDED", "COPY_NUMBER_ALTERATION") and pair[1] != "SEG":
            for key in ("stable_id", "profile_name", "profile_description", "show_profile_in_analysis_tab"):
                if not meta.get(key):
                    problems.append(f"{meta_path.name}: {key} missing")
        if pair == ("MUTATION_EXTENDED", "MAF") and meta.get("stable_id") != "mutations":
            problems.append(f"{meta_path.name}: the MAF stable_id must be 'mutations'")
        if (
            pair == ("COPY_NUMBER_ALTERATION", "DISCRETE")
            and meta.get("stable_id") not in DISCRETE_STABLE_IDS
        ):
            problems.append(f"{meta_path.name}: stable_id {meta.get('stable_id')!r} is not a discrete CNA id")
        if pair == ("COPY_NUMBER_ALTERATION", "SEG") and not meta.get("reference_genome_id"):
            problems.append(f"{meta_path.name}: reference_genome_id missing")
        stable = meta.get("stable_id")
        if stable:
            if stable in stable_ids:
                problems.append(f"{meta_path.name}: stable_id {stable} also in {stable_ids[stable]}")
            stable_ids[stable] = meta_path.name
        if data and (study_dir / data).is_file():
            metas.setdefault(pair, []).append((study_dir / data, meta))

    def clinical_of(pair: tuple[str, str], required: tuple[str, ...]) -> ClinicalFile | None:
        for path, _ in metas.get(pair, []):
            try:
                clinical = read_clinical(path)
            except FileRejected as exc:
                problems.append(f"{path.name}: {exc.reason}")
                return None
            _check_clinical(clinical, required, problems)
            return clinical
        problems.append(f"no meta file for {'/'.join(pair)}")
        return None

    patient_file = clinical_of(("CLINICAL", "PATIENT_ATTRIBUTES"), ("PATIENT_ID",))
    sample_file = clinical_of(("CLINICAL", "SAMPLE_ATTRIBUTES"), ("PATIENT_ID", "SAMPLE_ID"))
    patient_ids = _column_values(patient_file, "PATIENT_ID") if patient_file else []
    sample_ids = _column_values(sample_file, "SAMPLE_ID") if sample_file else []
    for label, ids in (("PATIENT_ID", patient_ids), ("SAMPLE_ID", sample_ids)):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            problems.append(f"{label} on more than one line: {', '.join(twice[:5])}")
    if sample_file and patient_file:
        orphans = sorted(set(_column_values(sample_file, "PATIENT_ID")) - set(patient_ids))
        if orphans:
            problems.append(
                f"{sample_file.path.name}: PATIENT_ID not in the patient file: {', '.join(orphans[:5])}"
            )
    known_samples = set(sample_ids)

    for path, _ in metas.get(("MUTATION_EXTENDED", "MAF"), []):
        header, rows = _read_rows(path)
        missing = [c for c in MAF_REQUIRED if c not in header]
        if missing:
            problems.append(f"{path.name}: required MAF columns missing: {', '.join(missing)}")
            continue
        barcode, classification = header.index("Tumor_Sample_Barcode"), header.index("Variant_Classification")
        for line, row in rows:
            if len(row) != len(header):
                problems.append(f"{path.name} line {line}: {len(row)} fields, the header has {len(header)}")
                continue
            if row[barcode] not in known_samples:
                problems.append(f"{path.name} line {line}: sample {row[barcode]} not in the sample file")
            if row[classification] not in VARIANT_CLASSIFICATIONS:
                problems.append(
                    f"{path.name} line {line}: Variant_Classification {row[classification]!r} unknown"
                )
    for path, _ in metas.get(("COPY_NUMBER_ALTERATION", "DISCRETE"), []):
        header, rows = _read_rows(path)
        if not header or header[0] not in ("Hugo_Symbol", "Entrez_Gene_Id"):
            problems.append(f"{path.name}: the first column must be Hugo_Symbol or Entrez_Gene_Id")
            continue
        first = 2 if "Entrez_Gene_Id" in header[:2] and "Hugo_Symbol" in header[:2] else 1
        columns = header[first:]
        unknown = [c for c in columns if c not in known_samples]
        if unknown:
            problems.append(f"{path.name}: sample columns not in the sample file: {', '.join(unknown[:5])}")
        if len(set(columns)) != len(columns):
            problems.append(f"{path.name}: a sample column appears twice")
        allowed = {"-2", "-1.5", "-1", "0", "1", "2", "NA", ""}
        for line, row in rows:
            if len(row) != len(header):
                problems.append(f"{path.name} line {line}: {len(row)} fields, the header has {len(header)}")
                continue
            bad = [f"{c}={v!r}" for c, v in zip(columns, row[first:], strict=True) if v not in allowed]
            if bad:
                problems.append(
                    f"{path.name} line {line}: values not in -2, -1, 0, 1, 2, NA: {', '.join(bad[:3])}"
                )
    for path, _ in metas.get(("COPY_NUMBER_ALTERATION", "SEG"), []):
        header, rows = _read_rows(path)
        if len(header) != 6:
            problems.append(
                f"{path.name}: a SEG file has 6 columns (ID chrom loc.start loc.end num.mark seg.mean)"
            )
            continue
        for line, row in rows:
            if len(row) != 6:
                problems.append(f"{path.name} line {line}: {len(row)} fields, not 6")
                continue
            if row[0] not in known_samples:
                problems.append(f"{path.name} line {line}: sample {row[0]} not in the sample file")
            try:
                start, end, _ = int(row[2]), int(row[3]), float(row[5])
            except ValueError:
                problems.append(f"{path.name} line {line}: start, end and seg.mean must be numbers")
                continue
            if start > end:
                problems.append(f"{path.name} line {line}: start after end")

    case_dir = study_dir / "case_lists"
    seen_lists: dict[str, str] = {}
    for case_path in sorted(case_dir.glob("*.txt")) if case_dir.is_dir() else []:
        meta = read_meta(case_path)
        where = f"case_lists/{case_path.name}"
        for key in ("cancer_study_identifier", "stable_id", "case_list_name", "case_list_description",
                    "case_list_ids"):  # fmt: skip
            if not meta.get(key):
                problems.append(f"{where}: {key} missing")
        stable = meta.get("stable_id", "")
        if stable and not stable.startswith(f"{study_id}_"):
            problems.append(f"{where}: stable_id {stable} does not start with {study_id}_")
        if stable in seen_lists:
            problems.append(f"{where}: stable_id {stable} also in {seen_lists[stable]}")
        seen_lists[stable] = where
        ids = [i for i in re.split(r"\s+", meta.get("case_list_ids", "")) if i]
        if len(set(ids)) != len(ids):
            problems.append(f"{where}: a sample is listed twice")
        unknown = sorted(set(ids) - known_samples)
        if unknown:
            problems.append(f"{where}: samples not in the sample file: {', '.join(unknown[:5])}")
    return problems
