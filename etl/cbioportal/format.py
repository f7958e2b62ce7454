"""The cBioPortal study format, shared by the importer, the exporter and the format checker of
etl/cbioportal/: meta files, clinical files with their four `#` header lines, missing values, survival
statuses, discrete copy-number codes and the month <-> day factor.

Documented in docs/cbioportal.md. References: cBioPortal "File Formats" documentation (clinical data,
mutation data, discrete copy-number data, segmented data, case lists).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from etl.errors import FileRejected

# cBioPortal times are months; the warehouse stores days. A month is a twelfth of a Julian year, so
# days = months * 30.4375, kept as it comes (fractional): rounding to whole days merged distinct published
# times and moved the statistics. Exported months have 6 decimals: days -> months -> days is exact to
# 0.0000005 * 30.4375 < 2e-5 days.
DAYS_PER_MONTH = 365.25 / 12
MONTH_DECIMALS = 6

# Values cBioPortal reads as "no value" in clinical files (the TCGA bracketed ones included).
MISSING_VALUES = frozenset(
    {"", "NA", "N/A", "NAN", "[NOT AVAILABLE]", "[NOT APPLICABLE]", "[UNKNOWN]", "[NOT EVALUATED]",
     "[DISCREPANCY]", "[COMPLETED]", "[NOT REPORTED]", "[NULL]", "NULL", "UNKNOWN"}
)  # fmt: skip
DATATYPES = ("STRING", "NUMBER", "BOOLEAN")
BOOLEAN_VALUES = frozenset({"TRUE", "FALSE"})

# Survival statuses: cBioPortal wants "0:..." (censored) / "1:..." (event); the older bare words are read too.
OS_STATUS = {"0:LIVING": False, "1:DECEASED": True, "LIVING": False, "DECEASED": True}
DFS_STATUS = {
    "0:DISEASEFREE": False,
    "1:RECURRED/PROGRESSED": True,
    "1:RECURRED": True,
    "1:PROGRESSED": True,
    "DISEASEFREE": False,
    "DISEASE FREE": False,
    "RECURRED/PROGRESSED": True,
    "RECURRED": True,
    "PROGRESSED": True,
}
OS_LIVING, OS_DECEASED = "0:LIVING", "1:DECEASED"
DFS_FREE, DFS_RECURRED = "0:DiseaseFree", "1:Recurred/Progressed"

# Discrete copy-number codes (GISTIC-style) and the warehouse's call types.
CNA_CALL_TYPES = {
    -2: "homozygous_deletion",
    -1: "deletion",
    0: "neutral",
    1: "gain",
    2: "amplification",
}
CNA_CODES = {call_type: code for code, call_type in CNA_CALL_TYPES.items()}
CNA_MISSING = frozenset({"", "NA", "NAN"})

# The (genetic_alteration_type, datatype) pairs of the meta files the importer understands.
PATIENT_META = ("CLINICAL", "PATIENT_ATTRIBUTES")
SAMPLE_META = ("CLINICAL", "SAMPLE_ATTRIBUTES")
MUTATION_META = ("MUTATION_EXTENDED", "MAF")
DISCRETE_CNA_META = ("COPY_NUMBER_ALTERATION", "DISCRETE")
SEG_META = ("COPY_NUMBER_ALTERATION", "SEG")
# Pairs cBioPortal knows (the checker accepts them; the importer skips them with a warning).
KNOWN_META = frozenset(
    {
        PATIENT_META, SAMPLE_META, ("CLINICAL", "MIXED_ATTRIBUTES"), ("CLINICAL", "TIMELINE"),
        MUTATION_META, DISCRETE_CNA_META, SEG_META, ("COPY_NUMBER_ALTERATION", "CONTINUOUS"),
        ("COPY_NUMBER_ALTERATION", "LOG2-VALUE"), ("MRNA_EXPRESSION", "CONTINUOUS"),
        ("MRNA_EXPRESSION", "Z-SCORE"), ("MRNA_EXPRESSION", "DISCRETE"), ("METHYLATION", "CONTINUOUS"),
        ("PROTEIN_LEVEL", "LOG2-VALUE"), ("PROTEIN_LEVEL", "Z-SCORE"), ("STRUCTURAL_VARIANT", "SV"),
        ("GENE_PANEL_MATRIX", "GENE_PANEL_MATRIX"), ("CANCER_TYPE", "CANCER_TYPE"),
        ("GENERIC_ASSAY", "LIMIT-VALUE"), ("GENERIC_ASSAY", "CATEGORICAL"), ("GENERIC_ASSAY", "BINARY"),
        ("GENESET_SCORE", "GSVA-SCORE"), ("GENESET_SCORE", "P-VALUE"), ("MUTSIG", "Q-VALUE"),
        ("GISTIC_GENES_AMP", "Q-VALUE"), ("GISTIC_GENES_DEL", "Q-VALUE"),
    }
)  # fmt: skip
ASSEMBLY_OF_GENOME = {"hg19": "GRCh37", "grch37": "GRCh37", "hg38": "GRCh38", "grch38": "GRCh38"}
GENOME_OF_ASSEMBLY = {"GRCh37": "hg19", "GRCh38": "hg38"}
ATTRIBUTE_ID = re.compile(r"^[A-Z][A-Z0-9_]*$")


def is_missing(value: str | None) -> bool:
    return value is None or value.strip().upper() in MISSING_VALUES


def months_to_days(months: float) -> float:
    return months * DAYS_PER_MONTH


def survival_status(value: str, words: dict[str, bool]) -> bool | None:
    """A survival status: "0:<any label>" censored, "1:<any label>" event (cBioPortal reads the number);
    the older bare words of `words` too. None when it is neither."""
    text = value.strip().upper()
    numbered = re.match(r"^([01])\s*:", text)
    if numbered:
        return numbered[1] == "1"
    return words.get(text)


def days_to_months(days: float) -> float:
    return round(days / DAYS_PER_MONTH, MONTH_DECIMALS)


def read_meta(path: Path) -> dict[str, str]:
    """`key: value` lines of a meta file (or the header block of a case list)."""
    meta: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first line
    except (OSError, UnicodeDecodeError) as exc:
        raise FileRejected(path, f"unreadable meta file: {exc}") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise FileRejected(path, f"line {number}: not a 'key: value' line: {line!r}")
        meta[key.strip()] = value.strip()
    return meta


@dataclass
class ClinicalFile:
    """A clinical file: the attribute metadata of its four `#` lines, the header and the data rows (text),
    each with its line number in the file."""

    path: Path
    display_names: list[str]
    descriptions: list[str]
    datatypes: list[str]
    priorities: list[str]
    columns: list[str]
    rows: list[list[str]]
    lines: list[int]

    def datatype(self, column: str) -> str:
        return self.datatypes[self.columns.index(column)]


def read_clinical(path: Path) -> ClinicalFile:
    """Parse a clinical file; a file-level problem (missing `#` lines, ragged rows, bad datatype names,
    duplicated columns) raises FileRejected, as the cBioPortal importer would refuse the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first line
    except UnicodeDecodeError as exc:
        raise FileRejected(path, f"not valid UTF-8 at byte {exc.start}") from exc
    except OSError as exc:
        raise FileRejected(path, f"cannot read: {exc.strerror}") from exc
    lines = text.replace("\r\n", "\n").split("\n")
    meta = [line[1:].split("\t") for line in lines[:4] if line.startswith("#")]
    if len(meta) != 4:
        raise FileRejected(
            path,
            "a clinical file starts with four '#' lines (display names, descriptions, datatypes, "
            f"priorities); found {len(meta)}",
        )
    if len(lines) < 5 or not lines[4].strip():
        raise FileRejected(path, "no header row (line 5) after the four '#' lines")
    columns = lines[4].split("\t")
    for number, fields in enumerate(meta, start=1):
        if len(fields) != len(columns):
            raise FileRejected(
                path, f"line {number} has {len(fields)} fields, the header (line 5) has {len(columns)}"
            )
    datatypes = [value.strip().upper() for value in meta[2]]
    bad = [f"{c}={d!r}" for c, d in zip(columns, meta[2], strict=True) if d.strip().upper() not in DATATYPES]
    if bad:
        raise FileRejected(path, f"line 3: datatypes must be {', '.join(DATATYPES)}; found {', '.join(bad)}")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise FileRejected(path, f"duplicated columns: {', '.join(duplicated)}")
    rows, numbers = [], []
    for number, line in enumerate(lines[5:], start=6):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != len(columns):
            raise FileRejected(path, f"line {number} has {len(fields)} fields, the header has {len(columns)}")
        rows.append([field.strip() for field in fields])
        numbers.append(number)
    if not rows:
        raise FileRejected(path, "the file has a header but no data rows")
    return ClinicalFile(path, meta[0], meta[1], datatypes, meta[3], columns, rows, numbers)
