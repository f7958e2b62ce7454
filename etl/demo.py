"""`cgdw demo`: a warehouse built end to end from SYNTHETIC source files.

synth -> db upgrade -> load every file in dependency order -> views apply -> summary and the analyses of a
letter: `--study tall` (default) the seed letter's Table 1 and its OS / CIR analysis; `--study aml` the
second letter's (HOVON-SAKK 102): Table 1 by MFC-MRD after cycle 2, OS / EFS / CIR from the assessment by
MFC- and LSC-MRD, and the arms compared in ELN intermediate-I.
Uses the documented demo pseudonymisation key; re-running on the same database is a no-op per file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console

from etl.analysis.labels import warehouse_labels
from etl.analysis.outcomes import OutcomeResult, analyse_outcomes
from etl.analysis.table1 import Table1, build_table1
from etl.analysis.table1_spec import load_spec
from etl.errors import CgdwError
from etl.load.framework import LoadReport, Progress
from etl.output import (
    frame_to_table,
    labelled_outcomes,
    labelled_table1,
    outcomes_renderables,
    table1_renderables,
)
from etl.privacy import DEMO_PSEUDONYM_KEY
from etl.sources.registry import KINDS, dependency_order, load_source
from etl.views import ViewsReport, apply_views
from etl.warehouse import open_for_read, query_frame
from schema import database

# The multivariable model of the seed letter (Table 1, hazard ratios).
SEED_COVARIATES = ("age", "log_wbc", "prednisone_good", "classifier_high")
STUDIES = ("tall", "aml")
# The AML letter: HOVON-SAKK 102 patients only (a warehouse may hold the T-ALL demo too), 4-year estimates.
AML_PATIENTS = "protocol_code = 'HOVON-102'"
AML_HORIZON = 4.0


def demo_sources(
    files: dict[str, Path], key: bytes = DEMO_PSEUDONYM_KEY.encode()
) -> list[tuple[str, Path, dict[str, Any]]]:
    """(kind, file, options) of every synthetic file, in the registry's dependency order: trial exports
    create the patients, the lab and the sample manifest refer to them, calls and MRD refer to the samples.
    The AML cohort has a trial export (layout hovon102) and MRD results only."""
    if "hovon102" in files:
        by_kind: dict[str, list[tuple[Path, dict[str, Any]]]] = {
            "clinical": [(files["hovon102"], {"layout": "hovon102"})],
            "mrd": [(files["mrd"], {})],
        }
    else:
        by_kind = {
            "clinical": [(files["graall"], {"layout": "graall"}), (files["fralle"], {"layout": "fralle"})],
            "vcf": [(path, {}) for path in sorted(files["vcf"].glob("*.vcf"))],
            **{kind: [(files[kind], {})] for kind in ("lab", "samples", "maf", "cnv", "seg", "mrd")},
        }
    return [
        (kind, path, {**options, "secret": key} if KINDS[kind].layout_driven else options)
        for kind in dependency_order()
        for path, options in by_kind.get(kind, [])
    ]


@dataclass
class DemoSummary:
    db_path: Path
    workdir: Path
    study: str = "tall"
    reports: list[LoadReport] = field(default_factory=list)
    patients_per_protocol: pl.DataFrame = field(default_factory=pl.DataFrame)
    ikzf1: pl.DataFrame = field(default_factory=pl.DataFrame)
    views: ViewsReport | None = None
    table1: Table1 | None = None
    outcomes: list[OutcomeResult] = field(default_factory=list)


def run_demo(
    db_path: Path,
    workdir: Path | None = None,
    seed: int = 1,
    patients: int | None = None,
    progress: Progress | None = None,
    study: str = "tall",
) -> DemoSummary:
    """Build the demo warehouse of a study (tall: 476 patients, the seed letter; aml: 800, HOVON-SAKK 102)
    and run its letter's analyses."""
    if study not in STUDIES:
        raise CgdwError(f"unknown study {study!r}: choose one of {', '.join(STUDIES)}")
    say = progress or (lambda _phase: None)
    default_dir = "cgdw-demo-data" if study == "tall" else "cgdw-demo-aml-data"
    workdir = workdir or db_path.resolve().parent / default_dir
    say(f"writing synthetic source files to {workdir}")
    sized: dict[str, Any] = {} if patients is None else {"patients": patients}  # else the letter's size
    if study == "aml":
        from etl.synth.aml import write_synthetic_aml_cohort

        cohort = write_synthetic_aml_cohort(workdir, seed=seed, **sized)
    else:
        from etl.synth import write_synthetic_cohort

        cohort = write_synthetic_cohort(workdir, seed=seed, **sized)
    say("migrating the schema")
    database.upgrade(db_path)
    summary = DemoSummary(db_path=db_path, workdir=workdir, study=study)
    for kind, path, options in demo_sources(cohort.files):

        def file_progress(phase: str, name: str = path.name) -> None:
            say(f"{name}: {phase}")

        command = f"cgdw demo (load {kind} {path.name})"
        summary.reports.append(
            load_source(db_path, kind, path, command=command, progress=file_progress, **options)
        )
    say("applying the views")
    summary.views = apply_views(db_path, command="cgdw demo (views apply)")
    summary.patients_per_protocol = patients_per_protocol(db_path)
    say("Table 1 and outcomes")
    if study == "aml":
        summary.table1, summary.outcomes = aml_letter(db_path)
        return summary
    summary.ikzf1 = ikzf1_alterations(db_path)
    summary.table1 = build_table1(db_path, by="ikzf1_status")
    summary.outcomes = [
        analyse_outcomes(db_path, endpoint, "ikzf1_status", adjust=SEED_COVARIATES).result
        for endpoint in ("os", "cir")
    ]
    return summary


def aml_letter(db_path: Path) -> tuple[Table1, list[OutcomeResult]]:
    """The AML letter's analyses: Table 1 by MFC-MRD after cycle 2 (spec hovon102); OS, EFS and CIR from
    each patient's C2 assessment by MFC-MRD and by LSC-MRD status (a landmark: no guarantee time); EFS and
    OS by arm in ELN intermediate-I, from diagnosis."""
    spec = load_spec("hovon102")
    table1 = build_table1(
        db_path, by="mrd_c2_mfc_positive", rows=spec.rows, where=AML_PATIENTS, horizon=AML_HORIZON
    )
    outcomes = [
        analyse_outcomes(
            db_path, endpoint, f"mrd_c2_{method}_positive", where=AML_PATIENTS, horizon=AML_HORIZON,
            landmark_column=f"mrd_c2_{method}_day",
        ).result
        for method in ("mfc", "lsc")
        for endpoint in ("os", "efs", "cir")
    ]  # fmt: skip
    outcomes += [
        analyse_outcomes(
            db_path, endpoint, "treatment_arm", reference="A", horizon=AML_HORIZON,
            where=f"{AML_PATIENTS} AND eln2010_risk = 'int1'",
        ).result
        for endpoint in ("efs", "os")
    ]  # fmt: skip
    return table1, outcomes


def ikzf1_alterations(db_path: Path) -> pl.DataFrame:
    """IKZF1-altered patients per protocol and kind of alteration (queries/views/ikzf1_alteration)."""
    with open_for_read(db_path) as con:
        return query_frame(
            con,
            """
            SELECT e.protocol_code AS protocol, x.alteration_type, count(*) AS patients
            FROM ikzf1_alteration AS x
            JOIN enrolment AS e ON e.patient_id = x.patient_id AND e.superseded_by_run_id IS NULL
            WHERE x.is_altered GROUP BY ALL ORDER BY ALL
            """,
        )


def patients_per_protocol(db_path: Path) -> pl.DataFrame:
    with open_for_read(db_path) as con:
        return query_frame(
            con,
            """
            SELECT e.protocol_code AS protocol, count(*) AS patients
            FROM enrolment AS e WHERE e.superseded_by_run_id IS NULL
            GROUP BY ALL ORDER BY protocol
            """,
        )


def print_summary(summary: DemoSummary, console: Console) -> None:
    console.print(
        f"Demo warehouse {summary.db_path} built from SYNTHETIC data in {summary.workdir}", markup=False
    )
    files = pl.DataFrame(
        [
            (
                r.path.name,
                r.kind,
                "already loaded" if r.noop else str(r.run_id),
                r.rows_read,
                r.rows_loaded,
                r.rows_rejected,
            )
            for r in summary.reports
        ],
        schema=["file", "kind", "run", "rows_read", "rows_loaded", "rows_rejected"],
        orient="row",
    )
    console.print(frame_to_table(files, title="Files loaded"))
    table = frame_to_table(summary.patients_per_protocol, title="Patients per protocol")
    table.caption = f"{summary.patients_per_protocol.get_column('patients').sum()} patients in all"
    console.print(table)
    if summary.study == "tall":
        altered = frame_to_table(summary.ikzf1, title="IKZF1-altered patients")
        altered.caption = f"{summary.ikzf1.get_column('patients').sum()} in all"
        console.print(altered)
    if summary.views is not None:
        console.print(summary.views.summary(), markup=False)
    labels = warehouse_labels(summary.db_path)  # the attribute dictionary's names (HOVON 102's arms)
    table1 = labelled_table1(summary.table1, labels) if summary.table1 is not None else None
    parts = [*(table1_renderables(table1) if table1 is not None else [])]
    for result in summary.outcomes:
        parts += outcomes_renderables(labelled_outcomes(result, labels))
    for part in parts:
        console.print(part, markup=False, highlight=False)
