"""--dirty problems of the genomic and MRD files (same manifest entries as etl.synth.dirty).

Two MRD rows are appended for real patients at a new time point (MRD3): a percentage of 150 (a
fraction of 1.5) and an unknown unit. Four copies of a GRAALL VCF batch (the first one without the
duplicated patient of the GRAALL export) go to dirty/: three to refuse whole (CSQ header line cut, gzip
stream cut in half, a sample column missing from samples.tsv) and one whose single bad record (VEP
GIVEN_REF differing from USED_REF) must be rejected on its own.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl

from etl.synth.dirty import DIRTY_DIR, MAX_PROBLEM_SHARE, Problem
from etl.synth.genomic import Genomics
from etl.synth.mrd import MRD_FILE
from etl.synth.vcf import CSQ_HEADER, NO_CALL
from etl.synth.writers import SourceTable

UNKNOWN_SAMPLE = "S9999999-DX"  # above every generated sample number
CSQ_GIVEN_REF = 25  # field index of GIVEN_REF in a CSQ entry
# (column at fault, values written, problem)
MRD_PROBLEMS: tuple[tuple[str, dict[str, str], str], ...] = (
    ("value", {"value": "150", "unit": "percent"}, "MRD level of 150% (a fraction of 1.5) is out of range"),
    ("unit", {"value": "350", "unit": "copies/ug"}, "unknown MRD unit"),
)
MRD3_DELAY = 180  # days after MRD1


def _mrd(table: SourceTable, untrusted: set[str], rng: np.random.Generator) -> list[Problem]:
    frame = table.frame
    if len(MRD_PROBLEMS) >= MAX_PROBLEM_SHARE * (frame.height + len(MRD_PROBLEMS)):
        raise ValueError("mrd_results.tsv is too small for dirty mode: use at least 300 patients")
    mrd1 = frame.filter((pl.col("time_point") == "MRD1") & ~pl.col("patient_id").is_in(sorted(untrusted)))
    problems = []
    for row_index, (column, written, problem) in zip(
        rng.choice(mrd1.height, size=len(MRD_PROBLEMS), replace=False), MRD_PROBLEMS, strict=True
    ):
        row = dict(mrd1.row(int(row_index), named=True))
        day = row["days_from_diagnosis"]
        row |= {
            "time_point": "MRD3",
            "days_from_diagnosis": None if day is None else str(int(day) + MRD3_DELAY),
            **written,
            "limit_of_detection": None,
            "quantitative_range_low": None,
            "qualitative_result": "positive",
        }
        table.extra_rows.append(row)
        line = table.line_of(frame.height + len(table.extra_rows) - 1)
        problems.append(Problem(MRD_FILE, line, column, written[column], problem, "row_rejected"))
    return problems


def _vcf_copies(folder: Path, batch: Path, rng: np.random.Generator) -> list[Problem]:
    lines = batch.read_text(encoding="utf-8").splitlines()
    chrom_line = next(i for i, line in enumerate(lines) if line.startswith("#CHROM"))
    problems = []

    def refused(name: str, line: int, column: str | None, value: str, problem: str) -> None:
        problems.append(Problem(f"{DIRTY_DIR}/{name}", line, column, value, problem, "file_refused"))

    name = "vcf_broken_header.vcf"
    csq = lines.index(CSQ_HEADER)
    broken = [*lines[:csq], CSQ_HEADER.removesuffix('">'), *lines[csq + 1 :]]
    (folder / name).write_text("\n".join(broken) + "\n", encoding="utf-8")
    refused(name, csq + 1, None, "CSQ", 'the CSQ ##INFO header line lost its closing ">"')

    name = "vcf_truncated.vcf.gz"
    packed = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)
    (folder / name).write_bytes(packed[: len(packed) // 2])
    refused(name, 1, None, "", "gzip-compressed VCF cut in half")

    name = "vcf_unknown_sample.vcf"
    extra = [f"{lines[chrom_line]}\t{UNKNOWN_SAMPLE}"]
    for line in lines[chrom_line + 1 :]:
        n_alt = line.split("\t", 5)[4].count(",") + 1
        depth = int(rng.integers(120, 900))
        zeros = ",".join(["0"] * n_alt)
        extra.append(
            f"{line}\t0/0:{depth},{zeros}:{depth}:{zeros}" if rng.random() > 0.01 else f"{line}\t{NO_CALL}"
        )
    (folder / name).write_text("\n".join([*lines[:chrom_line], *extra]) + "\n", encoding="utf-8")
    refused(name, chrom_line + 1, UNKNOWN_SAMPLE, UNKNOWN_SAMPLE, "sample column absent from samples.tsv")

    # One single-allele SNV record whose VEP GIVEN_REF is not the reference base VEP used.
    name = "vcf_ref_mismatch.vcf"
    snvs = [i for i in range(chrom_line + 1, len(lines)) if _single_snv(lines[i])]
    target = snvs[int(rng.integers(0, len(snvs)))]
    fields = lines[target].split("\t")
    ref = fields[3]
    given = "ACGT"[("ACGT".index(ref) + 1) % 4]
    info = fields[7].split(";CSQ=")
    entries = [entry.split("|") for entry in info[1].split(",")]
    for entry in entries:
        entry[CSQ_GIVEN_REF] = given
    fields[7] = f"{info[0]};CSQ={','.join('|'.join(entry) for entry in entries)}"
    mismatched = [*lines[:target], "\t".join(fields), *lines[target + 1 :]]
    (folder / name).write_text("\n".join(mismatched) + "\n", encoding="utf-8")
    problem = f"VEP GIVEN_REF {given} differs from USED_REF {ref}: REF is not the reference base"
    problems.append(Problem(f"{DIRTY_DIR}/{name}", target + 1, "REF", ref, problem, "row_rejected"))
    return problems


def _single_snv(line: str) -> bool:
    fields = line.split("\t", 7)
    return len(fields[3]) == 1 and len(fields[4]) == 1 and fields[6] == "PASS"


def inject(out_dir: Path, mrd: SourceTable, genomics: Genomics, untrusted: set[str]) -> list[Problem]:
    """Append the MRD row problems to the table (written afterwards) and write the dirty VCF copies now.

    `untrusted` are real patients whose clinical rows are themselves rejected (the duplicated id): their
    samples and results are rejected too, so the problems here are put on other patients.
    """
    folder = out_dir / DIRTY_DIR
    folder.mkdir(exist_ok=True)
    rng = genomics.dirty_rng
    truth = genomics.truth.filter(pl.col("source_patient_id").is_in(sorted(untrusted)))
    avoid = {s for s in (*truth["dx_sample_id"], *truth["gl_sample_id"]) if s is not None}
    batch = next(p for p in genomics.vcf_paths if avoid.isdisjoint(_sample_columns(p)))
    return _mrd(mrd, untrusted, rng) + _vcf_copies(folder, batch, rng)


def _sample_columns(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return next(line for line in handle if line.startswith("#CHROM")).rstrip("\n").split("\t")[9:]
