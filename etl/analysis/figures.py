"""Figures drawn from the warehouse: the oncoplot of Figure 1C (curves come from `OutcomeAnalysis.plot`)."""

from __future__ import annotations

from pathlib import Path

from etl.analysis.cohort import read_cohort
from etl.analysis.plots import plot_oncoplot
from etl.errors import CgdwError
from etl.warehouse import open_for_read, query_frame

# The alterations the seed letter discusses, IKZF1 first (Figure 1C).
FIGURE_1C_GENES = ["IKZF1", "NOTCH1", "FBXW7", "PTEN", "KRAS", "NRAS", "EZH2", "ASXL1", "ETV6", "DNMT3A"]


def write_oncoplot(
    db_path: Path,
    out: Path,
    by: str = "ikzf1_status",
    genes: list[str] | None = None,
    cohort: str = "cohort_patient",
) -> Path:
    """Patients x genes of `patient_gene_alteration`, split by a grouping column of the cohort view."""
    chosen = genes or FIGURE_1C_GENES
    groups = read_cohort(db_path, cohort, ["patient_id", by]).drop_nulls(by)
    with open_for_read(db_path) as con:
        alterations = query_frame(
            con,
            "SELECT patient_id, gene, status FROM patient_gene_alteration WHERE list_contains($genes, gene)",
            {"genes": chosen},
        )
    unknown = sorted(set(chosen) - set(alterations["gene"].unique().to_list()))
    if unknown:
        raise CgdwError(f"no panel gene named {', '.join(unknown)} in the warehouse")
    frame = alterations.join(groups, on="patient_id", how="inner")
    title = f"Alterations at diagnosis by {by} ({groups.height} patients)"
    # Groups left to right in cohort order (Alt before GL), as the figure shows them.
    frame = frame.sort(by, "patient_id")
    return plot_oncoplot(frame, out, group_column=by, genes=chosen, title=title)
