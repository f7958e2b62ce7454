"""Synthetic T-ALL cohort calibrated on the seed letter (IKZF1 in T-ALL, Table 1), written as raw exports.

`write_synthetic_cohort` writes the GRAALL csv, the FRALLE xlsx and the reference-lab tsv exactly in the
layouts of etl/sources/layouts/, the sequencing files (sample manifest, GRAALL VCFs, FRALLE MAF, copy-number
calls, aCGH segments) and the MRD results, plus truth.parquet (every latent value, one row per patient)
and a README saying the data is synthetic. With `dirty=True` it also injects the problems listed in
dirty_manifest.json. Deterministic for a seed: numpy's default_rng only, one independent stream per
stage (the genomic and MRD ones come from SeedSequence(seed, spawn_key=(7,)), so adding them left the
clinical files unchanged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from etl.load.layout import load_layout
from etl.synth import dirty as dirty_mode
from etl.synth import dirty_genomic
from etl.synth.calibration import PUBLISHED_PATIENTS, plan_cohort
from etl.synth.cohort import build_cohort
from etl.synth.genomic import write_genomic_files
from etl.synth.mrd import MRD_FILE, mrd_table
from etl.synth.outcomes import simulate_outcomes
from etl.synth.writers import (
    README_FILE,
    SOURCE_FILES,
    TRUTH_FILE,
    source_table,
    write_readme,
    write_table,
)

__all__ = ["SynthResult", "write_synthetic_cohort"]


@dataclass(frozen=True)
class SynthResult:
    out_dir: Path
    seed: int
    n_patients: int
    dirty: bool
    # "graall", "fralle", "lab", "samples", "vcf" (a folder of batch VCFs), "maf", "cnv", "seg", "mrd",
    # "truth", "readme", and "dirty_manifest" when dirty
    files: dict[str, Path]
    n_problems: int = 0


def write_synthetic_cohort(
    out_dir: Path,
    seed: int = 1,
    patients: int = PUBLISHED_PATIENTS,
    dirty: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> SynthResult:
    """Write a synthetic cohort of `patients` T-ALL patients (476 = the published cohort) into out_dir.
    `progress(step, done, total)` follows the steps (a bar in `cgdw synth`)."""
    say = progress or (lambda _step, _done, _total: None)
    steps = 6 if dirty else 5
    say("planning the cohort", 0, steps)
    plan = plan_cohort(patients)
    cohort_seed, outcome_seed, writer_seed, dirty_seed = np.random.SeedSequence(seed).spawn(4)
    cohort = build_cohort(plan, np.random.default_rng(cohort_seed))
    say("simulating outcomes", 1, steps)
    truth = simulate_outcomes(cohort, plan, np.random.default_rng(outcome_seed))

    out_dir.mkdir(parents=True, exist_ok=True)
    say("laying out the trial exports", 2, steps)
    writer_rng = np.random.default_rng(writer_seed)
    tables = {key: source_table(truth, load_layout(key), writer_rng) for key in SOURCE_FILES}
    files = {key: out_dir / name for key, name in SOURCE_FILES.items()}
    say("writing the VCF, MAF, copy-number and MRD files", 3, steps)
    genomics = write_genomic_files(out_dir, truth, seed)
    truth = genomics.truth
    files |= genomics.files
    tables["mrd"], files["mrd"] = mrd_table(truth, genomics.mrd_rng), out_dir / MRD_FILE
    problems: list[dirty_mode.Problem] = []
    if dirty:
        say("adding the documented data problems", 4, steps)
        problems = dirty_mode.inject(out_dir, truth, tables, np.random.default_rng(dirty_seed))
        untrusted = set(truth["source_patient_id"]) & {p.value for p in problems}
        problems += dirty_genomic.inject(out_dir, tables["mrd"], genomics, untrusted)
        files["dirty_manifest"] = out_dir / dirty_mode.MANIFEST_FILE
        dirty_mode.write_manifest(files["dirty_manifest"], problems)
    say("writing the trial exports", steps - 1, steps)
    for key, table in tables.items():
        write_table(table, files[key])
    files["truth"] = out_dir / TRUTH_FILE
    truth.write_parquet(files["truth"])
    files["readme"] = out_dir / README_FILE
    write_readme(files["readme"], seed, patients, files, dirty)
    say("done", steps, steps)
    return SynthResult(out_dir, seed, patients, dirty, files, len(problems))
