"""Real public cohorts, written as cBioPortal studies by someone other than cgdw: the proof that cgdw
imports and analyses data as others publish it (issue "Any cohort", part 4).

    python -m tests.published_cohorts OUT_DIR          # OUT_DIR/survival_myeloid, OUT_DIR/kmsurv_bmt

The data come from R itself (`tests/r_reference.py` runs Rscript): no copy of them is kept here, and no
value is edited on the way. Each study is a directory cBioPortal reads: `meta_study.txt`, and
`meta_clinical_patient.txt` naming `data_clinical_patient.txt`, a clinical file with the four `#` header
lines (display names, descriptions, datatypes STRING/NUMBER/BOOLEAN, priorities) and one row per patient.
Missing values are blank cells. Studies carry no sample file: these cohorts have no sample.

Times. cBioPortal times are months; both data sets count days. Months are days / 30.4375 (a twelfth of a
Julian year), written as Python's repr of the float, the shortest text that reads back as the same double
(up to 17 significant digits): months * 30.4375 gives the day back to the last bit or two, nothing is
rounded away and no two distinct days can meet. Survival statuses are cBioPortal's "0:<label>" (censored)
and "1:<label>" (event); the number is what counts.

survival::myeloid -> study `survival_myeloid` (type_of_cancer aml; 646 patients)
    A simulated data set "based on a trial in acute myeloid leukemia" (R survival, ?myeloid; Le-Rademacher
    et al., Clin Trials 2018): randomised arms A/B; every time is in days from study entry.

    ===========  ===================  ======================================================================
    R variable   column               why
    ===========  ===================  ======================================================================
    id           PATIENT_ID           the subject identifier (1-646)
    sex          SEX                  f -> Female, m -> Male: cBioPortal's standard SEX values
    trt          TREATMENT_ARM        A or B as published (no standard cBioPortal attribute)
    futime       OS_MONTHS            futime / 30.4375: time to death or last follow-up
    death        OS_STATUS            1 -> 1:DECEASED, 0 -> 0:LIVING
    crtime       COMPLETE_REMISSION   TRUE when crtime is given, FALSE when NA: the survival package's own
                                      vignette ("survival", section on myeloid) reads an NA crtime as "did
                                      not achieve CR", and rltime as "relapse after CR"
    crtime       CR_MONTHS            crtime / 30.4375, blank when NA
    txtime       TRANSPLANT_MONTHS    txtime / 30.4375 (stem cell transplant), blank when NA (none)
    rltime       RELAPSE_MONTHS       rltime / 30.4375, blank when NA: every relapse as published, including
                                      those of the 20 patients with a relapse time and no CR time (they
                                      stay out of DFS, below, but their relapse time is not lost)
    rltime,      DFS_MONTHS,          for patients in CR only (crtime given), relapse after CR as the DFS
    futime       DFS_STATUS           event: 1:Recurred/Progressed at rltime when relapsed, else
                                      0:DiseaseFree at futime (death censors: cBioPortal's DFS labels are
                                      recurrence and disease-free); blank for patients never in CR, who are
                                      not at risk of relapse. A "1:Recurred/Progressed" DFS is the first
                                      relapse, so CIR (relapse, death in CR competing) follows from it.
    ===========  ===================  ======================================================================

KMsurv::bmt -> study `kmsurv_bmt` (type_of_cancer mixed; 137 patients)
    Klein and Moeschberger, "Survival Analysis" (1997), section 1.3: allogeneic bone-marrow transplants
    for acute leukemia (R KMsurv, ?bmt); times in days from the transplant. bmt has no identifier column:
    PATIENT_ID is the data frame's row name (1-137). type_of_cancer is cBioPortal's "mixed", not aml: 38
    patients have ALL; the disease of each patient is in DISEASE_GROUP. Every column of bmt is kept: those
    with a standard cBioPortal attribute get its name, the others their R name upper-cased, values as
    published (indicators stay 0/1 numbers, times stay days), the R documentation as description.

    ===========  ===================  ======================================================================
    R variable   column               why
    ===========  ===================  ======================================================================
    (row name)   PATIENT_ID           no identifier in bmt
    group        DISEASE_GROUP        1 -> ALL, 2 -> AML low risk, 3 -> AML high risk (R documentation)
    t1           OS_MONTHS            t1 / 30.4375: time to death or on-study time
    d1           OS_STATUS            1 -> 1:DECEASED, 0 -> 0:LIVING
    t2           DFS_MONTHS           t2 / 30.4375: disease-free survival time (relapse, death or end)
    d3           DFS_STATUS           1 -> "1:Relapsed or died", 0 -> "0:Disease free": bmt's DFS event is
                                      relapse or death, so the label says so (the number is what counts)
    d2           RELAPSE              1 -> TRUE, 0 -> FALSE (BOOLEAN): relapsed. Not a dated relapse: a
                                      relapse time exists only as t2 for d2 = 1, and DFS gives it already
    z1           AGE                  patient age in years: cBioPortal's AGE
    z3           SEX                  1 -> Male, 0 -> Female: cBioPortal's SEX
    ta, da, tc,  TA, DA, TC, DC,      acute and chronic GvHD and platelet recovery: times in days and 0/1
    dc, tp, dp   TP, DP               indicators, as published
    z2, z4-z10   Z2, Z4 ... Z10       donor age, donor sex, patient and donor CMV, waiting time (days), FAB,
                                      hospital (1-4), MTX prophylaxis: codes as published
    ===========  ===================  ======================================================================
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.r_reference import run_r

DAYS_PER_MONTH = 365.25 / 12  # 30.4375: cBioPortal months are twelfths of a Julian year
MYELOID_ID = "survival_myeloid"
BMT_ID = "kmsurv_bmt"
OS_STATUS = {0: "0:LIVING", 1: "1:DECEASED"}
MYELOID_DFS_STATUS = {False: "0:DiseaseFree", True: "1:Recurred/Progressed"}
BMT_DFS_STATUS = {0: "0:Disease free", 1: "1:Relapsed or died"}
BMT_GROUPS = {1: "ALL", 2: "AML low risk", 3: "AML high risk"}

Row = dict[str, Any]


@dataclass(frozen=True)
class Attribute:
    """One column of a clinical file: its id and the three `#` lines that describe it (priority 1)."""

    column: str
    name: str
    description: str
    datatype: str = "NUMBER"  # STRING | NUMBER | BOOLEAN


def months(days: float | None) -> str:
    """Days as cBioPortal months, at full precision (the shortest text of the exact double)."""
    return "" if days is None else repr(days / DAYS_PER_MONTH)


def number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def boolean(value: bool | None) -> str:
    return "" if value is None else ("TRUE" if value else "FALSE")


def r_data(dataset: str, package: str) -> list[Row]:
    """An R data set as rows (NA as None), with `row` the data frame's row names. Every number in these
    data sets is a whole number of days, years or a code: that is checked, so JSON's 15 significant digits
    lose nothing."""
    columns = run_r(
        f"""
        lazy <- getNamespaceInfo(asNamespace("{package}"), "lazydata")  # survival's: myeloid is in "cancer"
        if (!exists("{dataset}", envir = lazy)) data(list = "{dataset}", package = "{package}", envir = lazy)
        d <- as.data.frame(get("{dataset}", envir = lazy))
        d[] <- lapply(d, function(v) if (is.factor(v)) as.character(v) else v)
        emit(c(list(row = rownames(d)), as.list(d)))
        """,
        packages=[package],
    )
    names = list(columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    for row in rows:
        for name, value in row.items():
            if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
                raise ValueError(f"{package}::{dataset} {name} = {value!r}: not a whole number")
    return rows


def write_clinical(path: Path, attributes: Sequence[Attribute], rows: Sequence[dict[str, str]]) -> None:
    columns = [a.column for a in attributes]
    lines = [
        "#" + "\t".join(a.name for a in attributes),
        "#" + "\t".join(a.description for a in attributes),
        "#" + "\t".join(a.datatype for a in attributes),
        "#" + "\t".join("1" for _ in attributes),
        "\t".join(columns),
        *("\t".join(row[c] for c in columns) for row in rows),
    ]
    for line in lines:
        if "\n" in line or line.count("\t") != len(columns) - 1:
            raise ValueError(f"{path.name}: a value holds a tab or a newline: {line!r}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_study(
    directory: Path,
    meta: dict[str, str],
    attributes: Sequence[Attribute],
    rows: Sequence[dict[str, str]],
) -> Path:
    """A cBioPortal study directory with a patient clinical file; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    study_id = meta["cancer_study_identifier"]
    (directory / "meta_study.txt").write_text("".join(f"{k}: {v}\n" for k, v in meta.items()))
    (directory / "meta_clinical_patient.txt").write_text(
        f"cancer_study_identifier: {study_id}\n"
        "genetic_alteration_type: CLINICAL\n"
        "datatype: PATIENT_ATTRIBUTES\n"
        "data_filename: data_clinical_patient.txt\n"
    )
    write_clinical(directory / "data_clinical_patient.txt", attributes, rows)
    return directory


# --- survival::myeloid ------------------------------------------------------------------------------------

MYELOID_ATTRIBUTES = (
    Attribute("PATIENT_ID", "Patient Identifier", "Subject identifier (R survival::myeloid id)", "STRING"),
    Attribute("SEX", "Sex", "Female or Male (myeloid sex f/m)", "STRING"),
    Attribute("TREATMENT_ARM", "Treatment Arm", "Randomised treatment arm, A or B (myeloid trt)", "STRING"),
    Attribute("OS_MONTHS", "Overall Survival (Months)",
              "Months from study entry to death or last follow-up (myeloid futime / 30.4375)"),
    Attribute("OS_STATUS", "Overall Survival Status", "1:DECEASED if futime is a death, else 0:LIVING",
              "STRING"),
    Attribute("COMPLETE_REMISSION", "Complete Remission",
              "Complete response reached (myeloid crtime given)", "BOOLEAN"),
    Attribute("CR_MONTHS", "Time to Complete Remission (Months)",
              "Months from study entry to complete response (myeloid crtime / 30.4375)"),
    Attribute("TRANSPLANT_MONTHS", "Time to Transplant (Months)",
              "Months from study entry to stem cell transplant (myeloid txtime / 30.4375)"),
    Attribute("RELAPSE_MONTHS", "Time to Relapse (Months)",
              "Months from study entry to relapse (myeloid rltime / 30.4375), as published"),
    Attribute("DFS_MONTHS", "Disease Free (Months)",
              "Patients in CR: months from study entry to relapse, else to last follow-up or death"),
    Attribute("DFS_STATUS", "Disease Free Status",
              "Patients in CR: 1:Recurred/Progressed if relapsed, else 0:DiseaseFree", "STRING"),
)  # fmt: skip


def myeloid_row(r: Row) -> dict[str, str]:
    in_cr = r["crtime"] is not None
    relapsed = r["rltime"] is not None
    return {
        "PATIENT_ID": str(r["id"]),
        "SEX": {"f": "Female", "m": "Male"}[r["sex"]],
        "TREATMENT_ARM": r["trt"],
        "OS_MONTHS": months(r["futime"]),
        "OS_STATUS": OS_STATUS[r["death"]],
        "COMPLETE_REMISSION": boolean(in_cr),
        "CR_MONTHS": months(r["crtime"]),
        "TRANSPLANT_MONTHS": months(r["txtime"]),
        "RELAPSE_MONTHS": months(r["rltime"]),
        "DFS_MONTHS": months((r["rltime"] if relapsed else r["futime"]) if in_cr else None),
        "DFS_STATUS": MYELOID_DFS_STATUS[relapsed] if in_cr else "",
    }


def write_myeloid_study(directory: Path) -> Path:
    """survival::myeloid as the cBioPortal study `survival_myeloid` in `directory`."""
    rows = sorted(r_data("myeloid", "survival"), key=lambda r: r["id"])
    meta = {
        "cancer_study_identifier": MYELOID_ID,
        "type_of_cancer": "aml",
        "name": "Acute myeloid leukemia trial (R survival myeloid)",
        "short_name": "myeloid",
        "description": "Simulated data based on a randomised trial in acute myeloid leukemia (646 patients, "
        "arms A and B), from the R survival package (data set myeloid; Le-Rademacher et al., Clin Trials "
        "2018). Times are days / 30.4375.",
        "reference_genome": "hg19",
    }
    return write_study(directory, meta, MYELOID_ATTRIBUTES, [myeloid_row(r) for r in rows])


# --- KMsurv::bmt ------------------------------------------------------------------------------------------

# Other columns of bmt, upper-cased, with the R documentation (?KMsurv::bmt) as description.
BMT_OTHER = {
    "ta": "Time To Acute Graft-Versus-Host Disease (days)",
    "da": "Acute GVHD Indicator 1-Developed Acute GVHD 0-Never Developed Acute GVHD",
    "tc": "Time To Chronic Graft-Versus-Host Disease (days)",
    "dc": "Chronic GVHD Indicator 1-Developed Chronic GVHD 0-Never Developed Chronic GVHD",
    "tp": "Time To Platelet Recovery (days)",
    "dp": "Platelet Recovery Indicator 1-Platelets Returned To Normal, 0-Platelets Never Returned to Normal",
    "z2": "Donor Age In Years",
    "z4": "Donor Sex: 1-Male, 0-Female",
    "z5": "Patient CMV Status: 1-CMV Positive, 0-CMV Negative",
    "z6": "Donor CMV Status: 1-CMV Positive, 0-CMV Negative",
    "z7": "Waiting Time to Transplant In Days",
    "z8": "FAB: 1-FAB Grade 4 Or 5 and AML, 0-Otherwise",
    "z9": "Hospital: 1-The Ohio State University, 2-Alferd, 3-St. Vincent, 4-Hahnemann",
    "z10": "MTX Used as a Graft-Versus-Host- Prophylactic: 1-Yes 0-No",
}
BMT_ATTRIBUTES = (
    Attribute("PATIENT_ID", "Patient Identifier", "Row name of R KMsurv::bmt (bmt has no identifier)",
              "STRING"),
    Attribute("DISEASE_GROUP", "Disease Group", "ALL, AML low risk or AML high risk (bmt group 1, 2, 3)",
              "STRING"),
    Attribute("OS_MONTHS", "Overall Survival (Months)",
              "Months from transplant to death or end of study (bmt t1 / 30.4375)"),
    Attribute("OS_STATUS", "Overall Survival Status", "1:DECEASED if dead (bmt d1 = 1), else 0:LIVING",
              "STRING"),
    Attribute("DFS_MONTHS", "Disease Free (Months)",
              "Months from transplant to relapse, death or end of study (bmt t2 / 30.4375)"),
    Attribute("DFS_STATUS", "Disease Free Status",
              "1:Relapsed or died (bmt d3 = 1), else 0:Disease free", "STRING"),
    Attribute("RELAPSE", "Relapse", "Relapsed (bmt d2 = 1)", "BOOLEAN"),
    Attribute("AGE", "Age", "Patient Age In Years (bmt z1)"),
    Attribute("SEX", "Sex", "Patient sex, Male or Female (bmt z3: 1-Male, 0-Female)", "STRING"),
    *(Attribute(name.upper(), name.upper(), f"{text} (bmt {name})") for name, text in BMT_OTHER.items()),
)  # fmt: skip


def bmt_row(r: Row) -> dict[str, str]:
    row = {
        "PATIENT_ID": r["row"],
        "DISEASE_GROUP": BMT_GROUPS[r["group"]],
        "OS_MONTHS": months(r["t1"]),
        "OS_STATUS": OS_STATUS[r["d1"]],
        "DFS_MONTHS": months(r["t2"]),
        "DFS_STATUS": BMT_DFS_STATUS[r["d3"]],
        "RELAPSE": boolean({0: False, 1: True}[r["d2"]]),
        "AGE": number(r["z1"]),
        "SEX": {1: "Male", 0: "Female"}[r["z3"]],
    }
    row.update({name.upper(): number(r[name]) for name in BMT_OTHER})
    return row


def write_bmt_study(directory: Path) -> Path:
    """KMsurv::bmt as the cBioPortal study `kmsurv_bmt` in `directory`."""
    rows = r_data("bmt", "KMsurv")
    used = {"row", "group", "t1", "d1", "t2", "d3", "d2", "z1", "z3", *BMT_OTHER}
    if set(rows[0]) != used:  # every column of bmt has its place, and only those
        raise ValueError(f"KMsurv::bmt columns changed: {sorted(set(rows[0]) ^ used)}")
    meta = {
        "cancer_study_identifier": BMT_ID,
        "type_of_cancer": "mixed",
        "name": "Bone marrow transplants for acute leukemia (R KMsurv bmt)",
        "short_name": "bmt",
        "description": "137 allogeneic bone marrow transplants for acute leukemia (ALL, AML low risk, AML "
        "high risk), Klein and Moeschberger, Survival Analysis (1997), section 1.3, from the R KMsurv "
        "package (data set bmt). Times are days / 30.4375.",
        "reference_genome": "hg19",
    }
    return write_study(directory, meta, BMT_ATTRIBUTES, [bmt_row(r) for r in rows])


STUDIES: dict[str, Callable[[Path], Path]] = {MYELOID_ID: write_myeloid_study, BMT_ID: write_bmt_study}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the studies into (one folder each)")
    parser.add_argument("--study", choices=sorted(STUDIES), action="append", help="only these studies")
    args = parser.parse_args(argv)
    for study_id in args.study or STUDIES:
        print(STUDIES[study_id](args.out / study_id))


if __name__ == "__main__":
    main()
