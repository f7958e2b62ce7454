"""The cBioPortal format rules a study must pass: `check_cbioportal_study(dir) -> [problems]`.

One check per file type, as cBioPortal's own validator is organised: meta files (required keys, known
types, stable ids, existing data files), clinical headers, required columns and datatypes, survival
statuses, MAF columns and classifications, discrete CNA values, SEG columns, and case lists that reference
existing samples only. The exporter runs it on every study it writes (etl/cbioportal/exporter.py); tests
run it on cBioPortal's own test study.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from etl.cbioportal.format import (
    ATTRIBUTE_ID,
    BOOLEAN_VALUES,
    KNOWN_META,
    OS_DECEASED,
    OS_LIVING,
    ClinicalFile,
    is_missing,
    read_clinical,
    read_meta,
)
from etl.errors import FileRejected

MAF_REQUIRED = ("Hugo_Symbol", "Tumor_Sample_Barcode", "Variant_Classification", "HGVSp_Short")
DISCRETE_STABLE_IDS = frozenset({"gistic", "cna", "cna_rae", "cna_consensus", "log2CNA", "linear_CNA"})
DISCRETE_VALUES = frozenset({"-2", "-1.5", "-1", "0", "1", "2", "NA", ""})
VARIANT_CLASSIFICATIONS = frozenset(
    {"Frame_Shift_Del", "Frame_Shift_Ins", "In_Frame_Del", "In_Frame_Ins", "Missense_Mutation",
     "Nonsense_Mutation", "Silent", "Splice_Site", "Translation_Start_Site", "Nonstop_Mutation", "3'UTR",
     "3'Flank", "5'UTR", "5'Flank", "IGR", "Intron", "RNA", "Targeted_Region", "Splice_Region",
     "De_novo_Start_InFrame", "De_novo_Start_OutOfFrame", "Unknown", "Fusion"}
)  # fmt: skip
CASE_LIST_KEYS = ("cancer_study_identifier", "stable_id", "case_list_name", "case_list_description",
                  "case_list_ids")  # fmt: skip


@dataclass
class StudyFiles:
    """What the checks share: the study directory, its data files by (alteration type, datatype), the
    sample ids of its sample file, and the problems found so far."""

    directory: Path
    study_id: str = ""
    data: dict[tuple[str, str], list[Path]] = field(default_factory=dict)
    samples: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def check_cbioportal_study(study_dir: Path) -> list[str]:
    """The problems a cBioPortal import would have with this study directory (empty when none)."""
    study = StudyFiles(study_dir)
    if not (study_dir / "meta_study.txt").is_file():
        return [f"{study_dir}: no meta_study.txt"]
    _check_meta_files(study)
    _check_clinical_files(study)
    for path in study.data.get(("MUTATION_EXTENDED", "MAF"), []):
        _check_maf(path, study)
    for path in study.data.get(("COPY_NUMBER_ALTERATION", "DISCRETE"), []):
        _check_discrete_cna(path, study)
    for path in study.data.get(("COPY_NUMBER_ALTERATION", "SEG"), []):
        _check_seg(path, study)
    _check_case_lists(study)
    return study.problems


def _check_meta_files(study: StudyFiles) -> None:
    problems = study.problems
    study_meta_path = study.directory / "meta_study.txt"
    study_meta = read_meta(study_meta_path)
    for key in ("type_of_cancer", "cancer_study_identifier", "name", "description"):
        if not study_meta.get(key):
            problems.append(f"meta_study.txt: {key} missing")
    study.study_id = study_meta.get("cancer_study_identifier", "")
    stable_ids: dict[str, str] = {}
    for meta_path in sorted(study.directory.glob("meta_*.txt")):
        if meta_path == study_meta_path:
            continue
        meta = read_meta(meta_path)
        name = meta_path.name
        pair = (meta.get("genetic_alteration_type", ""), meta.get("datatype", ""))
        if pair not in KNOWN_META:
            problems.append(f"{name}: unknown genetic_alteration_type/datatype {'/'.join(pair)}")
        if pair != ("CANCER_TYPE", "CANCER_TYPE") and meta.get("cancer_study_identifier") != study.study_id:
            problems.append(f"{name}: cancer_study_identifier is not {study.study_id!r}")
        data = meta.get("data_filename")
        if not data:
            problems.append(f"{name}: data_filename missing")
        elif not (study.directory / data).is_file():
            problems.append(f"{name}: data_filename {data} does not exist")
        if pair[0] in ("MUTATION_EXTENDED", "COPY_NUMBER_ALTERATION") and pair[1] != "SEG":
            for key in ("stable_id", "profile_name", "profile_description", "show_profile_in_analysis_tab"):
                if not meta.get(key):
                    problems.append(f"{name}: {key} missing")
        if pair == ("MUTATION_EXTENDED", "MAF") and meta.get("stable_id") != "mutations":
            problems.append(f"{name}: the MAF stable_id must be 'mutations'")
        if (
            pair == ("COPY_NUMBER_ALTERATION", "DISCRETE")
            and meta.get("stable_id") not in DISCRETE_STABLE_IDS
        ):
            problems.append(f"{name}: stable_id {meta.get('stable_id')!r} is not a discrete CNA id")
        if pair == ("COPY_NUMBER_ALTERATION", "SEG") and not meta.get("reference_genome_id"):
            problems.append(f"{name}: reference_genome_id missing")
        stable = meta.get("stable_id")
        if stable:
            if stable in stable_ids:
                problems.append(f"{name}: stable_id {stable} also in {stable_ids[stable]}")
            stable_ids[stable] = name
        if data and (study.directory / data).is_file():
            study.data.setdefault(pair, []).append(study.directory / data)


def _check_clinical_files(study: StudyFiles) -> None:
    problems = study.problems
    patient_file = _clinical_file(study, ("CLINICAL", "PATIENT_ATTRIBUTES"), ("PATIENT_ID",))
    sample_file = _clinical_file(study, ("CLINICAL", "SAMPLE_ATTRIBUTES"), ("PATIENT_ID", "SAMPLE_ID"))
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
    study.samples = set(sample_ids)


def _clinical_file(
    study: StudyFiles, pair: tuple[str, str], required: tuple[str, ...]
) -> ClinicalFile | None:
    for path in study.data.get(pair, []):
        try:
            clinical = read_clinical(path)
        except FileRejected as exc:
            study.problems.append(f"{path.name}: {exc.reason}")
            return None
        _check_clinical(clinical, required, study.problems)
        return clinical
    study.problems.append(f"no meta file for {'/'.join(pair)}")
    return None


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


def _check_maf(path: Path, study: StudyFiles) -> None:
    header, rows = _read_rows(path)
    missing = [c for c in MAF_REQUIRED if c not in header]
    if missing:
        study.problems.append(f"{path.name}: required MAF columns missing: {', '.join(missing)}")
        return
    barcode, classification = header.index("Tumor_Sample_Barcode"), header.index("Variant_Classification")
    for line, row in rows:
        if len(row) != len(header):
            study.problems.append(f"{path.name} line {line}: {len(row)} fields, the header has {len(header)}")
            continue
        if row[barcode] not in study.samples:
            study.problems.append(f"{path.name} line {line}: sample {row[barcode]} not in the sample file")
        if row[classification] not in VARIANT_CLASSIFICATIONS:
            study.problems.append(
                f"{path.name} line {line}: Variant_Classification {row[classification]!r} unknown"
            )


def _check_discrete_cna(path: Path, study: StudyFiles) -> None:
    problems = study.problems
    header, rows = _read_rows(path)
    if not header or header[0] not in ("Hugo_Symbol", "Entrez_Gene_Id"):
        problems.append(f"{path.name}: the first column must be Hugo_Symbol or Entrez_Gene_Id")
        return
    first = 2 if "Entrez_Gene_Id" in header[:2] and "Hugo_Symbol" in header[:2] else 1
    columns = header[first:]
    unknown = [c for c in columns if c not in study.samples]
    if unknown:
        problems.append(f"{path.name}: sample columns not in the sample file: {', '.join(unknown[:5])}")
    if len(set(columns)) != len(columns):
        problems.append(f"{path.name}: a sample column appears twice")
    for line, row in rows:
        if len(row) != len(header):
            problems.append(f"{path.name} line {line}: {len(row)} fields, the header has {len(header)}")
            continue
        bad = [f"{c}={v!r}" for c, v in zip(columns, row[first:], strict=True) if v not in DISCRETE_VALUES]
        if bad:
            problems.append(
                f"{path.name} line {line}: values not in -2, -1, 0, 1, 2, NA: {', '.join(bad[:3])}"
            )


def _check_seg(path: Path, study: StudyFiles) -> None:
    problems = study.problems
    header, rows = _read_rows(path)
    if len(header) != 6:
        problems.append(
            f"{path.name}: a SEG file has 6 columns (ID chrom loc.start loc.end num.mark seg.mean)"
        )
        return
    for line, row in rows:
        if len(row) != 6:
            problems.append(f"{path.name} line {line}: {len(row)} fields, not 6")
            continue
        if row[0] not in study.samples:
            problems.append(f"{path.name} line {line}: sample {row[0]} not in the sample file")
        try:
            start, end, _ = int(row[2]), int(row[3]), float(row[5])
        except ValueError:
            problems.append(f"{path.name} line {line}: start, end and seg.mean must be numbers")
            continue
        if start > end:
            problems.append(f"{path.name} line {line}: start after end")


def _check_case_lists(study: StudyFiles) -> None:
    problems = study.problems
    case_dir = study.directory / "case_lists"
    seen_lists: dict[str, str] = {}
    for case_path in sorted(case_dir.glob("*.txt")) if case_dir.is_dir() else []:
        meta = read_meta(case_path)
        where = f"case_lists/{case_path.name}"
        for key in CASE_LIST_KEYS:
            if not meta.get(key):
                problems.append(f"{where}: {key} missing")
        stable = meta.get("stable_id", "")
        if stable and not stable.startswith(f"{study.study_id}_"):
            problems.append(f"{where}: stable_id {stable} does not start with {study.study_id}_")
        if stable in seen_lists:
            problems.append(f"{where}: stable_id {stable} also in {seen_lists[stable]}")
        seen_lists[stable] = where
        ids = [i for i in re.split(r"\s+", meta.get("case_list_ids", "")) if i]
        if len(set(ids)) != len(ids):
            problems.append(f"{where}: a sample is listed twice")
        unknown = sorted(set(ids) - study.samples)
        if unknown:
            problems.append(f"{where}: samples not in the sample file: {', '.join(unknown[:5])}")


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
