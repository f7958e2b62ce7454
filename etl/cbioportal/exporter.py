"""Export of the warehouse as a cBioPortal study: `export_cbioportal(db, out_dir, study_id=...)`.

One query and one writer per file: meta_study.txt, the clinical patient and sample files, the MAF, the
discrete CNA file, the SEG file and the case lists, each with its meta file. The selection rules are
versioned views like the other read-side rules (`variant_call_annotation`: one annotation per call;
`gene_copy_number`: the most severe call per sample and gene), and every file is read through views that
hold consented patients only (`cohort_patient`, `endpoint`). The pseudonymous patient key is the
PATIENT_ID: no source id leaves the warehouse. Rows are sorted: the same warehouse gives the same bytes.
The written study is checked against the format rules (etl/cbioportal/checker.py) and the problems come
back in the summary. Documented in docs/cbioportal.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.cbioportal.checker import check_cbioportal_study
from etl.cbioportal.format import (
    CNA_CODES,
    DFS_FREE,
    DFS_RECURRED,
    GENOME_OF_ASSEMBLY,
    OS_DECEASED,
    OS_LIVING,
    days_to_months,
)
from etl.errors import CgdwError
from etl.output import output_directory
from etl.warehouse import open_for_read, query_frame, relation_columns

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
    "EFS_STATUS": ("Event Free Survival Status", "Event-free survival status", "STRING", "1"),
    "EFS_MONTHS": (
        "Event Free Survival (Months)",
        "Months from diagnosis to the first EFS event",
        "NUMBER",
        "1",
    ),
    "PFS_STATUS": ("Progression Free Status", "Progression-free survival status, as reported", "STRING", "1"),
    "PFS_MONTHS": (
        "Progress Free Survival (Months)",
        "Progression-free survival, as reported",
        "NUMBER",
        "1",
    ),
}
# A declared attribute's type -> cBioPortal datatype (docs/attributes.md).
DATATYPE_OF = {"number": "NUMBER", "integer": "NUMBER", "day": "NUMBER", "boolean": "BOOLEAN"}
EVENT_STATUS = {"EFS": ("0:No Event", "1:Event"), "PFS": ("0:Censored", "1:Progressed")}
DFS_EVENT = "1:Event"  # a reported DFS event that is not the relapse (a death, for a study that counts it)
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
SEG_HEADER = ["ID", "chrom", "loc.start", "loc.end", "num.mark", "seg.mean"]
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
    problems: list[str] = field(default_factory=list)  # what the format checker found in the written study

    def summary(self) -> str:
        return (
            f"wrote {self.out_dir}: {self.patients} patients, {self.samples} samples, {self.mutations} "
            f"mutations, {self.cna_genes} CNA genes x {self.cna_samples} samples, {self.segments} segments"
        )


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


def _write_meta(path: Path, entries: dict[str, str]) -> None:
    path.write_text("".join(f"{k}: {v}\n" for k, v in entries.items()), encoding="utf-8")


def _write_table(path: Path, header: list[str], rows: Sequence[Sequence[Any]]) -> None:
    lines = ["\t".join(header)]
    lines.extend("\t".join(_text(v) if v is not None else "" for v in row) for row in rows)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class StudyData:
    """What the study's files are written from, read from the views in one read-only session."""

    study_id: str
    name: str
    patients: pl.DataFrame
    samples: pl.DataFrame
    mutations: pl.DataFrame
    cna: pl.DataFrame
    panel: pl.DataFrame
    segments: pl.DataFrame
    # Declared attributes exported as columns: attribute name -> (column id, the 4 header fields).
    patient_attributes: dict[str, tuple[str, tuple[str, str, str, str]]] = field(default_factory=dict)
    sample_attributes: dict[str, tuple[str, tuple[str, str, str, str]]] = field(default_factory=dict)

    @property
    def genome(self) -> str:
        assemblies = set(self.mutations.get_column("assembly")) | set(self.segments.get_column("assembly"))
        assemblies |= set(self.samples.get_column("assembly").drop_nulls())
        if len(assemblies) > 1:
            raise CgdwError(
                f"the exported samples are on several assemblies ({', '.join(sorted(assemblies))}); a "
                "cBioPortal study has one reference genome"
            )
        return GENOME_OF_ASSEMBLY[assemblies.pop()] if assemblies else "hg19"

    @property
    def sequenced(self) -> list[str]:
        """Samples with mutation data: on a panel, or with a call."""
        return sorted(
            set(self.samples.filter(pl.col("sequenced")).get_column("sample_key"))
            | set(self.mutations.get_column("sample_key"))
        )


def export_cbioportal(
    db_path: Path, out_dir: Path, *, study_id: str = "cgdw", name: str | None = None
) -> ExportSummary:
    """Write the warehouse's cohort as a cBioPortal study in `out_dir` (created; existing study files of
    the same names are overwritten), then check it against the format rules."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", study_id):
        raise CgdwError(f"--study-id must be letters, digits and '_' (cBioPortal stable ids): {study_id!r}")
    data = read_study_data(db_path, study_id, name or f"cgdw warehouse export ({study_id})")
    genome = data.genome
    output_directory(out_dir)
    (out_dir / "case_lists").mkdir(exist_ok=True)
    summary = ExportSummary(out_dir=out_dir, study_id=study_id)
    _write_study(out_dir, data, genome, summary)
    _write_patients(out_dir, data, summary)
    _write_samples(out_dir, data, summary)
    _write_mutations(out_dir, data, summary)
    _write_discrete_cna(out_dir, data, summary)
    _write_segments(out_dir, data, genome, summary)
    _write_case_lists(out_dir, data, summary)
    summary.problems = check_cbioportal_study(out_dir)
    return summary


# --- reading -------------------------------------------------------------------------------------------


def read_study_data(db_path: Path, study_id: str, name: str) -> StudyData:
    with open_for_read(db_path) as con:
        views = {n for (n,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        missing = sorted({"cohort_patient", "variant_call_annotation", "gene_copy_number"} - views)
        if missing:
            raise CgdwError(
                f"{db_path}: the views are not applied ({', '.join(missing)}): run `cgdw views apply`"
            )
        declared = {
            entity: _declared_attributes(con, entity, set(fixed))
            for entity, fixed in (("patient", PATIENT_ATTRIBUTES), ("sample", SAMPLE_ATTRIBUTES))
        }
        samples = _sample_rows(con, list(declared["sample"]))
        con.register("cgdw_export_samples", samples.to_arrow())
        try:
            return StudyData(
                study_id=study_id,
                name=name,
                patients=_patient_rows(con, list(declared["patient"])),
                patient_attributes=declared["patient"],
                sample_attributes=declared["sample"],
                samples=samples,
                mutations=_mutation_rows(con),
                cna=_copy_number_rows(con),
                panel=_panel_rows(con),
                segments=_segment_rows(con),
            )
        finally:
            con.unregister("cgdw_export_samples")


def _declared_attributes(
    con: duckdb.DuckDBPyConnection, entity: str, taken: set[str]
) -> dict[str, tuple[str, tuple[str, str, str, str]]]:
    """The declared attributes of the latest generated view, as clinical columns: the name upper-cased
    (treatment_arm -> TREATMENT_ARM, as an import reads it back), label, description, datatype. One whose
    column id is a fixed column of the file (TRIAL_GROUP) is left out: the fixed one says it."""
    view = f"{entity}_attribute"
    present = set(relation_columns(con, view))
    declared = {}
    for name, label, description, data_type, unit in con.execute(
        "SELECT attribute_name, label, description, data_type, unit FROM attribute WHERE entity = $entity "
        "ORDER BY attribute_name",
        {"entity": entity},
    ).fetchall():
        column = name.upper()
        if name not in present or column in taken:
            continue
        text = (description or label) + (f" ({unit})" if unit else "")
        declared[name] = (column, (label, text, DATATYPE_OF.get(data_type, "STRING"), "1"))
    return declared


def _attribute_columns(names: list[str]) -> str:
    return "".join(f', a."{name}"' for name in names)


def _patient_rows(con: duckdb.DuckDBPyConnection, attributes: list[str]) -> pl.DataFrame:
    return query_frame(
        con,
        f"""
        SELECT c.patient_key, c.trial_group, c.protocol_code, e.diagnosis, c.diagnosis_year, c.sex, c.age,
               c.complete_remission, c.ikzf1_status, n.os_status, n.os_days, n.first_relapse_day,
               n.dfs_days, n.dfs_status, n.efs_days, n.efs_status, n.pfs_days, n.pfs_status
               {_attribute_columns(attributes)}
        FROM cohort_patient AS c
        JOIN enrolment AS e ON e.patient_id = c.patient_id AND e.superseded_by_run_id IS NULL
        LEFT JOIN endpoint AS n ON n.patient_id = c.patient_id
        LEFT JOIN patient_attribute AS a ON a.patient_id = c.patient_id
        ORDER BY c.patient_key
        """,
    )


def _sample_rows(con: duckdb.DuckDBPyConnection, attributes: list[str]) -> pl.DataFrame:
    # Tumour samples only: a germline (normal) sample is not a case in cBioPortal.
    return query_frame(
        con,
        f"""
        SELECT s.sample_id, s.sample_key, c.patient_key, s.sample_type, a_s.assembly,
               a_s.gene_panel_id IS NOT NULL AS sequenced {_attribute_columns(attributes)}
        FROM sample AS s JOIN cohort_patient AS c USING (patient_id)
        LEFT JOIN sequencing_assay AS a_s USING (sequencing_assay_id)
        LEFT JOIN sample_attribute AS a ON a.sample_id = s.sample_id
        WHERE s.sample_type <> 'germline'
        ORDER BY s.sample_key
        """,
    )


def _mutation_rows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    # PASS calls of the exported samples, with the annotation view variant_call_annotation picks.
    return query_frame(
        con,
        """
        SELECT m.gene_symbol, m.assembly, m.chrom, m.pos, m.ref, m.alt, s.sample_key, m.hgvsc, m.hgvsp,
               m.transcript_accession, m.exon_number, m.exon_count, m.consequence, m.impact,
               m.protein_position, m.amino_acids, m.depth, m.alt_depth, m.vaf, m.filter
        FROM variant_call_annotation AS m JOIN cgdw_export_samples AS s USING (sample_id)
        WHERE m.filter = 'PASS'
        ORDER BY s.sample_key, m.chrom, m.pos, m.ref, m.alt
        """,
    )


def _copy_number_rows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query_frame(
        con,
        """
        SELECT s.sample_key, g.gene, g.call_type
        FROM gene_copy_number AS g JOIN cgdw_export_samples AS s USING (sample_id)
        """,
    )


def _panel_rows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    # Genes assessed for a sample without a call: those on its assay's panel (0 = assessed, neutral).
    return query_frame(
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


def _segment_rows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query_frame(
        con,
        """
        SELECT s.sample_key, g.assembly, g.chrom, g.start, g."end", g.num_markers, g.seg_mean
        FROM copy_number_segment AS g JOIN cgdw_export_samples AS s USING (sample_id)
        WHERE g.superseded_by_run_id IS NULL
        ORDER BY s.sample_key, g.chrom, g.start, g."end"
        """,
    )


# --- writing: one writer per file ------------------------------------------------------------------------


def _write_study(out_dir: Path, data: StudyData, genome: str, summary: ExportSummary) -> None:
    cancer_types = {DIAGNOSIS_CANCER_TYPE.get(d, "mixed") for d in set(data.patients.get_column("diagnosis"))}
    _write_meta(
        out_dir / "meta_study.txt",
        {
            "type_of_cancer": cancer_types.pop() if len(cancer_types) == 1 else "mixed",
            "cancer_study_identifier": data.study_id,
            "name": data.name,
            "description": "Pseudonymised export of the cgdw clinical-genomics warehouse",
            "add_global_case_list": "false",
            "reference_genome": genome,
        },
    )
    summary.files.append("meta_study.txt")


def _write_patients(out_dir: Path, data: StudyData, summary: ExportSummary) -> None:
    """OS and DFS times are months from diagnosis (days / 30.4375, 2 decimals)."""
    rows = []
    for p in data.patients.iter_rows(named=True):
        os_known = p["os_status"] is not None and p["os_days"] is not None
        relapsed = p["first_relapse_day"] is not None
        dfs_status: str | None
        if p["dfs_days"] is not None:  # as the source reported it; a recurrence only when it is the relapse
            recurred = relapsed and p["first_relapse_day"] == p["dfs_days"]
            dfs_status = DFS_FREE if p["dfs_status"] == 0 else DFS_RECURRED if recurred else DFS_EVENT
            dfs_day = p["dfs_days"]
        else:
            # DFS only for patients who reached CR: a recurrence is the first relapse, else disease free at
            # the OS end (death or last news).
            in_cr = p["complete_remission"] is True
            dfs_status = (
                (DFS_RECURRED if relapsed else DFS_FREE) if in_cr and (relapsed or os_known) else None
            )
            dfs_day = (p["first_relapse_day"] if relapsed else p["os_days"]) if dfs_status else None
        rows.append(
            [
                p["patient_key"], p["trial_group"], p["protocol_code"], p["diagnosis"], p["diagnosis_year"],
                {"M": "Male", "F": "Female"}.get(p["sex"]), p["age"], p["complete_remission"],
                p["ikzf1_status"], (OS_DECEASED if p["os_status"] == 1 else OS_LIVING) if os_known else None,
                days_to_months(p["os_days"]) if os_known else None, dfs_status,
                days_to_months(dfs_day) if dfs_day is not None else None,
                *_event(p, "efs", "EFS"), *_event(p, "pfs", "PFS"),
                *(p[name] for name in data.patient_attributes),
            ]
        )  # fmt: skip
    header = {**PATIENT_ATTRIBUTES, **dict(data.patient_attributes.values())}
    _write_clinical_file(out_dir, data, "patient", header, rows, summary)
    summary.patients = len(rows)


def _event(p: dict[str, Any], endpoint: str, prefix: str) -> tuple[str | None, float | None]:
    """STATUS and MONTHS of an endpoint the warehouse knows (EFS reported or derived, PFS reported)."""
    days, status = p[f"{endpoint}_days"], p[f"{endpoint}_status"]
    if days is None or status is None:
        return None, None
    return EVENT_STATUS[prefix][int(status)], days_to_months(days)


def _write_samples(out_dir: Path, data: StudyData, summary: ExportSummary) -> None:
    rows = [
        [
            s["patient_key"], s["sample_key"], SAMPLE_TYPE_LABELS.get(s["sample_type"], s["sample_type"]),
            *(s[name] for name in data.sample_attributes),
        ]
        for s in data.samples.iter_rows(named=True)
    ]  # fmt: skip
    header = {**SAMPLE_ATTRIBUTES, **dict(data.sample_attributes.values())}
    _write_clinical_file(out_dir, data, "sample", header, rows, summary)
    summary.samples = len(rows)


def _write_clinical_file(
    out_dir: Path,
    data: StudyData,
    kind: str,
    attributes: dict[str, tuple[str, str, str, str]],
    rows: Sequence[Sequence[Any]],
    summary: ExportSummary,
) -> None:
    ids = list(attributes)
    lines = ["#" + "\t".join(attributes[a][i] for a in ids) for i in range(4)]
    lines.append("\t".join(ids))
    lines.extend("\t".join(_text(v) for v in row) for row in rows)
    (out_dir / f"data_clinical_{kind}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _write_meta(
        out_dir / f"meta_clinical_{kind}.txt",
        {
            "cancer_study_identifier": data.study_id,
            "genetic_alteration_type": "CLINICAL",
            "datatype": f"{kind.upper()}_ATTRIBUTES",
            "data_filename": f"data_clinical_{kind}.txt",
        },
    )
    summary.files += [f"meta_clinical_{kind}.txt", f"data_clinical_{kind}.txt"]


def _write_mutations(out_dir: Path, data: StudyData, summary: ExportSummary) -> None:
    """PASS calls of tumour samples, as a MAF with the columns cBioPortal reads."""
    if not data.sequenced:
        return
    rows = []
    for m in data.mutations.iter_rows(named=True):
        ref, alt = m["ref"], m["alt"]
        depth, alt_depth = m["depth"], m["alt_depth"]
        ref_depth = depth - alt_depth if depth is not None and alt_depth is not None else None
        exon = (
            f"{m['exon_number']}/{m['exon_count']}"
            if m["exon_number"] and m["exon_count"]
            else m["exon_number"]
        )
        rows.append(
            [
                m["gene_symbol"], "", "cgdw", m["assembly"], m["chrom"], m["pos"], _end(m["pos"], ref), "+",
                _classification(m["consequence"], ref, alt), _variant_type(ref, alt), ref, ref, alt,
                m["sample_key"], "", m["hgvsc"], m["hgvsp"], _short_protein(m["hgvsp"]),
                m["transcript_accession"], exon, m["consequence"], m["impact"], m["protein_position"],
                m["amino_acids"], depth, ref_depth, alt_depth, m["filter"],
            ]
        )  # fmt: skip
    _write_table(out_dir / "data_mutations.txt", MAF_COLUMNS, rows)
    _write_meta(
        out_dir / "meta_mutations.txt",
        {
            "cancer_study_identifier": data.study_id,
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
    summary.mutations = len(rows)


def _write_discrete_cna(out_dir: Path, data: StudyData, summary: ExportSummary) -> None:
    """Samples with a primary call; -2/-1/0/1/2 from the calls, 0 for a panel gene without a call
    (assessed, not altered), NA for a gene the sample's assay does not cover."""
    samples = sorted(set(data.cna.get_column("sample_key")))
    if not samples:
        return
    genes = sorted(set(data.cna.get_column("gene")))
    calls = {(r[0], r[1]): CNA_CODES[r[2]] for r in data.cna.iter_rows()}
    on_panel = set(data.panel.iter_rows())
    rows = [
        [gene, *(
            str(calls[(s, gene)]) if (s, gene) in calls else ("0" if (s, gene) in on_panel else NA)
            for s in samples
        )]
        for gene in genes
    ]  # fmt: skip
    _write_table(out_dir / "data_cna.txt", ["Hugo_Symbol", *samples], rows)
    _write_meta(
        out_dir / "meta_cna.txt",
        {
            "cancer_study_identifier": data.study_id,
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
    summary.cna_genes, summary.cna_samples = len(genes), len(samples)


def _write_segments(out_dir: Path, data: StudyData, genome: str, summary: ExportSummary) -> None:
    if not data.segments.height:
        return
    rows = data.segments.select("sample_key", "chrom", "start", "end", "num_markers", "seg_mean").rows()
    _write_table(out_dir / "data_cna.seg", SEG_HEADER, rows)
    _write_meta(
        out_dir / "meta_cna_seg.txt",
        {
            "cancer_study_identifier": data.study_id,
            "genetic_alteration_type": "COPY_NUMBER_ALTERATION",
            "datatype": "SEG",
            "reference_genome_id": genome,
            "description": "Copy-number segments (log2 ratio)",
            "data_filename": "data_cna.seg",
        },
    )
    summary.files += ["meta_cna_seg.txt", "data_cna.seg"]
    summary.segments = data.segments.height


def _write_case_lists(out_dir: Path, data: StudyData, summary: ExportSummary) -> None:
    case_lists = [
        ("all", "All samples", "all_cases_in_study", list(data.samples.get_column("sample_key"))),
        ("sequenced", "Samples sequenced", "all_cases_with_mutation_data", data.sequenced),
        ("cna", "Samples with copy-number calls", "all_cases_with_cna_data",
         sorted(set(data.cna.get_column("sample_key")))),
    ]  # fmt: skip
    for suffix, title, category, ids in case_lists:
        if not ids:
            continue
        _write_meta(
            out_dir / "case_lists" / f"cases_{suffix}.txt",
            {
                "cancer_study_identifier": data.study_id,
                "stable_id": f"{data.study_id}_{suffix}",
                "case_list_name": title,
                "case_list_description": f"{title} ({len(ids)} samples)",
                "case_list_category": category,
                "case_list_ids": "\t".join(sorted(ids)),
            },
        )
        summary.files.append(f"case_lists/cases_{suffix}.txt")
