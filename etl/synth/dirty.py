"""Injected problems for --dirty: bad rows appended to the clean exports, and whole files to refuse.

Every problem is listed in dirty_manifest.json as {"file", "line", "column", "value", "problem",
"expect"}; lines count the header as line 1 (sheet row numbers for the xlsx). Row problems sit on extra
fake patients appended after the clean rows, except the duplicate patient, which repeats a real id with
different values (both rows are expected rejected). The clean rows are byte-identical to a clean run.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from etl.load.layout import load_layout
from etl.synth.cohort import ID_PREFIX, ID_RESERVE, id_digits
from etl.synth.writers import SOURCE_FILES, SourceTable, write_table

MANIFEST_FILE = "dirty_manifest.json"
DIRTY_DIR = "dirty"
MAX_PROBLEM_SHARE = 0.05
REFUSED_FILE_ROWS = 200
# Per export: fake rows appended, and rows expected rejected (the duplicate also rejects its original).
ROW_PROBLEMS = {"graall": (6, 7), "fralle": (4, 4), "lab": (3, 3)}
# Made-up identity values for the file that must be refused whole (no real person).
SURNAMES = (
    "Martin",
    "Bernard",
    "Lefèvre",
    "Moreau",
    "Girard",
    "Rousseau",
    "Faure",
    "Mercier",
    "Blanc",
    "Guérin",
)
FIRST_NAMES = ("Élodie", "Julien", "Camille", "Théo", "Léa", "Hugo", "Chloé", "Lucas", "Inès", "Noé")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: str | None
    value: str
    problem: str
    expect: Literal["row_rejected", "file_refused"]


class _Injector:
    """Appends fake patients to one export and records where each problem landed."""

    def __init__(
        self, table: SourceTable, file: str, max_number: dict[str, int], rng: np.random.Generator
    ) -> None:
        self.table = table
        self.file = file
        self.max_number = max_number
        self.rng = rng
        self.problems: list[Problem] = []

    def fake_id(self, trial: str, protocol: str, k: int) -> str:
        """Ids from the reserved top of the numbering (G05-99001, FR2000-9901, ...): never a clean patient."""
        digits = id_digits(trial, self.max_number[trial])
        return f"{ID_PREFIX[protocol]}{10**digits - ID_RESERVE[trial] + k:0{digits}d}"

    def template(self, where: pl.Expr | None = None) -> dict[str, Any]:
        frame = self.table.frame if where is None else self.table.frame.filter(where)
        return dict(frame.row(int(self.rng.integers(0, frame.height)), named=True))

    def append(self, row: dict[str, Any], column: str | None, value: str, problem: str) -> None:
        self.table.extra_rows.append(row)
        line = self.table.line_of(self.table.frame.height + len(self.table.extra_rows) - 1)
        self.problems.append(Problem(self.file, line, column, value, problem, "row_rejected"))


def _graall(table: SourceTable, max_number: dict[str, int], rng: np.random.Generator) -> list[Problem]:
    inj = _Injector(table, SOURCE_FILES["graall"], max_number, rng)
    cases: list[tuple[str, str, str, str]] = [
        ("GRAALL-2005", "AGE_DIAG", "187,0", "impossible age at diagnosis"),
        ("GRAALL-2005", "AGE_DIAG", "-3", "negative age at diagnosis"),
        ("GRAALL-2005", "GB_MM3", "74,1", "WBC given in x10^9/L in the per-mm3 column (0.0741 x10^9/L)"),
        ("GRAALL-2003", "DATE_DIAG", "31/02/2004", "impossible date"),
        ("GRAALL-2005", "SEXE", "X", "unknown sex code"),
    ]
    for k, (protocol, column, value, problem) in enumerate(cases, start=1):
        row = inj.template(pl.col("PROTOCOLE").str.strip_chars().str.to_uppercase() == protocol)
        row["NUM_PATIENT"] = inj.fake_id("GRAALL", protocol, k)
        row[column] = value
        inj.append(row, column, value, problem)
    # The duplicate repeats a real patient with other values: neither row can be trusted.
    original = int(rng.integers(0, table.frame.height))
    row = dict(table.frame.row(original, named=True))
    row["SEXE"] = "F" if row["SEXE"].strip().upper() == "M" else "M"
    row["AGE_DIAG"] = "41,7"
    patient = row["NUM_PATIENT"]
    problem = "duplicate patient id with different values"
    inj.problems.append(
        Problem(inj.file, table.line_of(original), "NUM_PATIENT", patient, problem, "row_rejected")
    )
    inj.append(row, "NUM_PATIENT", patient, problem)
    return inj.problems


def _fralle(table: SourceTable, max_number: dict[str, int], rng: np.random.Generator) -> list[Problem]:
    inj = _Injector(table, SOURCE_FILES["fralle"], max_number, rng)
    protocol = "FRALLE-2000"

    def yes(column: str) -> pl.Expr:
        return pl.col(column).str.strip_chars().str.to_lowercase() == "yes"

    row = inj.template()
    row["patient_id"], row["age_at_diagnosis"] = inj.fake_id("FRALLE", protocol, 1), "twelve"
    inj.append(row, "age_at_diagnosis", "twelve", "age given as text")

    row = inj.template(yes("complete_remission"))
    row["patient_id"] = inj.fake_id("FRALLE", protocol, 2)
    relapse: dt.date = row["diagnosis_date"] - dt.timedelta(days=45)
    row["relapse_date"] = relapse
    inj.append(row, "relapse_date", relapse.isoformat(), "relapse date before diagnosis date")

    row = inj.template()
    row["patient_id"], row["complete_remission"] = inj.fake_id("FRALLE", protocol, 3), "maybe"
    inj.append(row, "complete_remission", "maybe", "unknown complete remission code")

    row = inj.template(pl.col("death_date").is_not_null())
    row["patient_id"] = inj.fake_id("FRALLE", protocol, 4)
    last_contact: dt.date = row["death_date"] + dt.timedelta(days=90)
    row["last_contact_date"] = last_contact
    inj.append(
        row, "last_contact_date", last_contact.isoformat(), "last contact after death for a dead patient"
    )
    return inj.problems


def _lab(
    table: SourceTable, truth: pl.DataFrame, max_number: dict[str, int], rng: np.random.Generator
) -> list[Problem]:
    inj = _Injector(table, SOURCE_FILES["lab"], max_number, rng)
    # Real patients without a clean lab row, so that the only row for them is the bad one.
    absent = truth.filter(~pl.col("in_lab_export")).select("trial_group", "source_patient_id").rows()
    if len(absent) < 2:
        raise ValueError("dirty mode needs two patients without a lab row: use more patients")
    chosen = [absent[i] for i in rng.choice(len(absent), size=2, replace=False)]
    blank = dict.fromkeys(table.frame.columns)

    def row(trial: str, patient: str, **values: str) -> dict[str, Any]:
        base = {**blank, "trial_group": trial, "patient_id": patient, "oncogenetics_method": "RQ-PCR"}
        base.update({m: "NEG" for m in ("TLX1", "TLX3", "SIL-TAL1", "CALM-AF10", "HOXA")})
        return {**base, **values}

    inj.append(
        row(*chosen[0], tcr_status="IMX", etp_status="NON-ETP"),
        "tcr_status",
        "IMX",
        "unknown TCR status code",
    )
    orphan = inj.fake_id("GRAALL", "GRAALL-2005", 900)
    inj.append(
        row("GRAALL", orphan, tcr_status="IMB"), "patient_id", orphan, "patient id present in no trial export"
    )
    inj.append(row(*chosen[1], TLX3="POSITIVE?"), "TLX3", "POSITIVE?", "unknown marker result code")
    return inj.problems


def _refused_files(
    out_dir: Path, truth: pl.DataFrame, graall: SourceTable, fralle: SourceTable, rng: np.random.Generator
) -> list[Problem]:
    """Whole files the loader must refuse; the first rows of the clean exports are enough to show it."""
    folder = out_dir / DIRTY_DIR
    folder.mkdir(exist_ok=True)
    problems: list[Problem] = []

    def refused(name: str, line: int, column: str | None, value: str, problem: str) -> None:
        problems.append(Problem(f"{DIRTY_DIR}/{name}", line, column, value, problem, "file_refused"))

    rows = graall.frame.head(REFUSED_FILE_ROWS)
    n = rows.height
    adults = truth.filter(pl.col("trial_group") == "GRAALL").sort("source_patient_id").head(n)
    age_days = (pl.col("age") * 365.25).cast(pl.Int64)
    birth = adults.select((pl.col("diagnosis_date") - pl.duration(days=age_days)).dt.strftime("%d/%m/%Y"))
    with_ids = rows.with_columns(
        NOM=pl.Series([SURNAMES[i] for i in rng.integers(0, len(SURNAMES), n)]),
        PRENOM=pl.Series([FIRST_NAMES[i] for i in rng.integers(0, len(FIRST_NAMES), n)]),
        DATE_NAISSANCE=birth.to_series(),
    )
    name = "graall_export_identifiers.csv"
    write_table(SourceTable(graall.layout, with_ids), folder / name)
    refused(name, 1, "NOM", "NOM", "direct identifiers (NOM, PRENOM, DATE_NAISSANCE) in a trial export")

    name = "fralle_missing_column.xlsx"
    kept = fralle.frame.head(REFUSED_FILE_ROWS).drop("vital_status")
    text_dates = {column: mask[: kept.height] for column, mask in fralle.text_dates.items()}
    write_table(SourceTable(fralle.layout, kept, text_dates), folder / name)
    refused(name, 1, "vital_status", "", "required column vital_status is missing")

    name = "graall_export_utf8.csv"
    text = rows.write_csv(separator=graall.layout.delimiter, line_terminator="\n")
    (folder / name).write_bytes(text.encode("utf-8"))
    # Point at the first accented code: read as Latin-1 it is mojibake.
    accented = rows["STATUT_VITAL"].str.contains("É").arg_true()
    first = int(accented[0]) if accented.len() else 0
    mojibake = rows["STATUT_VITAL"][first].encode("utf-8").decode("latin-1")
    problem = "UTF-8 file where the layout declares Latin-1"
    refused(name, graall.line_of(first), "STATUT_VITAL", mojibake, problem)

    name = "lab_empty.tsv"
    lab = load_layout("lab")
    (folder / name).write_text(lab.delimiter.join(lab.source_columns) + "\n", encoding=lab.encoding)
    refused(name, 1, None, "", "header only, no data rows")
    return problems


def inject(
    out_dir: Path, truth: pl.DataFrame, tables: dict[str, SourceTable], rng: np.random.Generator
) -> list[Problem]:
    """Append the row problems to the tables (written afterwards) and write the refused files now."""
    for key, (extra, bad) in ROW_PROBLEMS.items():
        if bad >= MAX_PROBLEM_SHARE * (tables[key].frame.height + extra):
            raise ValueError(f"{SOURCE_FILES[key]} is too small for dirty mode: use at least 300 patients")
    numbers = truth.select(
        "trial_group", pl.col("source_patient_id").str.extract(r"(\d+)$").cast(pl.Int64).alias("number")
    )
    max_number = {
        trial: int(np.max(numbers.filter(pl.col("trial_group") == trial)["number"].to_numpy(), initial=0))
        for trial in ID_RESERVE
    }
    problems = (
        _graall(tables["graall"], max_number, rng)
        + _fralle(tables["fralle"], max_number, rng)
        + _lab(tables["lab"], truth, max_number, rng)
    )
    return problems + _refused_files(out_dir, truth, tables["graall"], tables["fralle"], rng)


def write_manifest(path: Path, problems: list[Problem]) -> None:
    entries = [p.__dict__ for p in problems]
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
