"""The oncoplot of Figure 1C: co-occurring alterations at diagnosis, patients split by a grouping column.

`write_oncoplot` reads `patient_gene_alteration` and the cohort view; `oncoplot_matrix` is what the figure
shows before drawing (tests and other code inspect it); `plot_oncoplot` draws it.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from etl.analysis.cohort import read_cohort, select_cohort
from etl.analysis.labels import Labels
from etl.analysis.style import PNG_DPI, figure_rc, format_for, save_figure
from etl.errors import CgdwError
from etl.warehouse import open_for_read, query_frame

# Integer codes of the oncoplot matrix. Everything >= MUTATED counts as altered.
NOT_SEQUENCED = 0
WILD_TYPE = 1
MUTATED = 2
DELETED = 3
MUTATED_AND_DELETED = 4
STATUS_CODES: dict[str, int] = {
    "not_sequenced": NOT_SEQUENCED,
    "wild_type": WILD_TYPE,
    "mutated": MUTATED,
    "deleted": DELETED,
    "mutated_and_deleted": MUTATED_AND_DELETED,
}
STATUS_COLORS: dict[str, str] = {
    "not_sequenced": "#BDBDBD",  # mid grey: visibly "no data", unlike the near-white wild type
    "wild_type": "#EFEFEF",
    "mutated": "#D55E00",
    "deleted": "#0072B2",
    "mutated_and_deleted": "#000000",  # both hits: the strongest mark, distinct from either single one
}
_STATUS_LABELS: dict[str, str] = {
    "mutated": "Mutation",
    "deleted": "Deletion",
    "mutated_and_deleted": "Mutation + deletion",
    "wild_type": "Wild type",
    "not_sequenced": "Not sequenced",
}


class OncoplotMatrix(NamedTuple):
    """What an oncoplot shows, before drawing: also the structure tests and other code can inspect.

    `matrix[g, p]` is the `STATUS_CODES` value of gene `genes[g]` in the p-th patient, the patients being
    those of `groups` concatenated in order (each group's list already memo-sorted).
    """

    genes: list[str]
    groups: dict[str, list[int]]
    matrix: np.ndarray

    def group_slices(self) -> dict[str, slice]:
        """Column range of each group in `matrix`."""
        slices, start = {}, 0
        for group, patients in self.groups.items():
            slices[group] = slice(start, start + len(patients))
            start += len(patients)
        return slices

    def percent_altered(self) -> dict[str, np.ndarray]:
        """Per group, % of patients altered in each gene among those sequenced for it (NaN if none were)."""
        result = {}
        for group, columns in self.group_slices().items():
            block = self.matrix[:, columns]
            tested = np.count_nonzero(block != NOT_SEQUENCED, axis=1)
            altered = np.count_nonzero(block >= MUTATED, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                result[group] = np.where(tested > 0, 100.0 * altered / tested, np.nan)
        return result


def oncoplot_matrix(
    alterations: pl.DataFrame, group_column: str = "group", genes: list[str] | None = None
) -> OncoplotMatrix:
    """Order genes and patients for an oncoplot and build the integer status matrix.

    Genes are ordered by the number of altered patients (descending, ties by name) unless `genes` gives
    the order (genes of the frame not in the list are left out). Groups keep their order of first
    appearance in the frame. Within a group, patients are memo-sorted: lexicographically on alteration
    presence across the ordered genes (altered first), so that the top gene's carriers come first, then the
    second gene's, and so on; ties by status, then patient id, so the order is deterministic. A patient
    without a row for some gene counts as not sequenced for it.
    """
    frame = _checked_alterations(alterations, group_column)

    if genes is not None:
        if not genes:
            raise ValueError("genes is an empty list; pass None to use every gene of the frame")
        if len(set(genes)) != len(genes):
            raise ValueError(f"genes has duplicates: {genes}")
        present = set(frame["gene"].unique().to_list())
        absent = [gene for gene in genes if gene not in present]
        if absent:
            raise ValueError(f"genes not found in the alterations frame: {absent}")
        ordered = list(genes)
    else:
        counts = (
            frame.group_by("gene")
            .agg((pl.col("code") >= MUTATED).sum().alias("altered"))
            .sort(["altered", "gene"], descending=[True, False])
        )
        ordered = counts["gene"].to_list()

    # Patients come from the whole frame, so one with no rows for the chosen genes still shows (as no data).
    patients = frame.select("patient_id", "_group").unique(maintain_order=True).with_row_index("column")
    gene_index = pl.DataFrame({"gene": ordered}).with_row_index("row")
    cells = frame.join(gene_index, on="gene").join(patients.select("patient_id", "column"), on="patient_id")
    matrix = np.full((len(ordered), patients.height), NOT_SEQUENCED, dtype=np.int8)
    matrix[cells["row"].to_numpy(), cells["column"].to_numpy()] = cells["code"].to_numpy()

    patient_ids = patients["patient_id"].to_numpy()
    group_of = patients["_group"].to_numpy()
    altered = matrix >= MUTATED
    groups: dict[str, list[int]] = {}
    order_parts = []
    for group in patients["_group"].unique(maintain_order=True).to_list():
        columns = np.flatnonzero(group_of == group)
        # np.lexsort: the LAST key is the primary one, hence the reversed gene order.
        keys: list[np.ndarray] = [patient_ids[columns]]
        keys += [-matrix[g, columns] for g in reversed(range(len(ordered)))]
        keys += [~altered[g, columns] for g in reversed(range(len(ordered)))]
        sorted_columns = columns[np.lexsort(keys)]
        groups[group] = patient_ids[sorted_columns].tolist()
        order_parts.append(sorted_columns)
    return OncoplotMatrix(genes=ordered, groups=groups, matrix=matrix[:, np.concatenate(order_parts)])


def _checked_alterations(alterations: pl.DataFrame, group_column: str) -> pl.DataFrame:
    """Validated copy with columns patient_id, gene, status, code and _group (the group as a string)."""
    required = ["patient_id", "gene", "status", group_column]
    missing = [column for column in required if column not in alterations.columns]
    if missing:
        raise ValueError(f"alterations frame lacks column(s) {missing}; it has {alterations.columns}")
    if alterations.height == 0:
        raise ValueError("alterations frame is empty: nothing to plot")
    if not alterations.schema["patient_id"].is_integer():
        raise ValueError(f"patient_id must be an integer column, got {alterations.schema['patient_id']}")
    nulls = [column for column in required if alterations[column].null_count()]
    if nulls:
        raise ValueError(f"alterations frame has missing values in column(s) {nulls}")
    frame = alterations.select(
        pl.col("patient_id").cast(pl.Int64),
        pl.col("gene").cast(pl.String),
        pl.col("status").cast(pl.String),
        pl.col(group_column).cast(pl.String).alias("_group"),
    )
    unknown = sorted(set(frame["status"].unique().to_list()) - set(STATUS_CODES))
    if unknown:
        raise ValueError(f"unknown status value(s) {unknown}; expected one of {sorted(STATUS_CODES)}")
    duplicated = frame.filter(pl.struct("patient_id", "gene").is_duplicated())
    if duplicated.height:
        first = duplicated.row(0, named=True)
        raise ValueError(
            f"{duplicated.height} rows repeat a patient x gene pair, "
            f"e.g. patient {first['patient_id']} gene {first['gene']}"
        )
    groups_per_patient = frame.group_by("patient_id").agg(pl.col("_group").n_unique().alias("n"))
    ambiguous = groups_per_patient.filter(pl.col("n") > 1)["patient_id"].sort().to_list()
    if ambiguous:
        raise ValueError(f"patients in more than one {group_column!r} group: {ambiguous[:10]}")
    return frame.with_columns(
        pl.col("status").replace_strict(STATUS_CODES, return_dtype=pl.Int8).alias("code")
    )


def plot_oncoplot(
    alterations: pl.DataFrame,
    out: Path,
    *,
    group_column: str = "group",
    genes: list[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw an oncoplot: genes as rows, patients as columns split by group, one colour per status.

    Layout and ordering come from `oncoplot_matrix`. The cells are a single `imshow` of the integer matrix
    mapped to colours (not one rectangle per cell), averaged down along x beyond `_MAX_IMAGE_COLUMNS`
    patients, so 100,000 patients draw as fast as 500. Groups are separated by a gap and
    labelled above with their size; the % of sequenced patients altered in each gene is listed per group at
    the right. Writes PNG or SVG according to the suffix of `out` and returns `out`.
    """
    fmt = format_for(out)
    data = oncoplot_matrix(alterations, group_column, genes)
    n_genes, n_patients = data.matrix.shape
    slices = data.group_slices()

    image, spans = _oncoplot_image(data)
    width_columns = image.shape[1]

    with figure_rc():
        fig = Figure(figsize=(9.0, 0.28 * n_genes + 1.9), dpi=PNG_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(1, 2, width_ratios=[9.0, 0.55 * len(slices)], wspace=0.01)
        ax = fig.add_subplot(grid[0, 0])
        side = fig.add_subplot(grid[0, 1], sharey=ax)

        # One image for all cells, never one rectangle per cell: as fast for 100,000 patients as for 50.
        ax.imshow(image, aspect="auto", interpolation="nearest")
        # White rules between genes (and between patients when few enough to tell apart) as in maftools.
        if n_genes > 1:
            ax.hlines(np.arange(n_genes - 1) + 0.5, -0.5, width_columns - 0.5, colors="white", linewidth=1.5)
        if n_patients <= 200:
            edges = [start + k + 0.5 for start, stop in spans.values() for k in range(stop - start - 1)]
            ax.vlines(edges, -0.5, n_genes - 0.5, colors="white", linewidth=0.6)

        ax.set_yticks(range(n_genes), data.genes, fontstyle="italic")
        ax.set_xticks([])
        ax.tick_params(axis="y", length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel(f"Patients (n = {n_patients:,})")

        above = blended_transform_factory(ax.transData, ax.transAxes)
        for group, columns in slices.items():
            left, right = spans[group][0] - 0.5, spans[group][1] - 0.5
            ax.plot([left, right], [1.015, 1.015], transform=above, color="0.25", lw=1.2, clip_on=False)
            ax.text(
                (left + right) / 2,
                1.035,
                # Two lines keep the label close to the width of a small group.
                f"{group}\n(n = {columns.stop - columns.start:,})",
                transform=above,
                ha="center",
                va="bottom",
                fontweight="bold",
            )

        side.set_axis_off()
        side.set_xlim(0, len(slices))
        top = blended_transform_factory(side.transData, side.transAxes)
        for k, (group, percents) in enumerate(data.percent_altered().items()):
            side.text(k + 0.5, 1.035, group, transform=top, ha="center", va="bottom", fontweight="bold")
            for row, value in enumerate(percents):
                text = "–" if np.isnan(value) else f"{value:.0f}%"
                side.text(k + 0.5, row, text, ha="center", va="center", fontsize=8.5)
        side.text(len(slices) / 2, 1.11, "% altered", transform=top, ha="center", va="bottom", fontsize=8)

        handles = [
            Patch(facecolor=STATUS_COLORS[s], edgecolor="0.55", linewidth=0.5, label=_STATUS_LABELS[s])
            for s in ("mutated", "deleted", "mutated_and_deleted", "wild_type", "not_sequenced")
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
        if title:
            fig.suptitle(title, fontweight="bold", fontsize=10)
        save_figure(fig, out, fmt)
    return out


# Above this many columns the image is averaged down horizontally (see `_oncoplot_image`).
_MAX_IMAGE_COLUMNS = 800


def _oncoplot_image(data: OncoplotMatrix) -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """RGBA image of the oncoplot (groups separated by transparent gaps) and each group's column span.

    With more patients than `_MAX_IMAGE_COLUMNS`, consecutive (memo-sorted, so similar) patients of a group
    are averaged into one column: a bin where 20% of patients carry a mutation shows as a pale mutation
    colour. Averaging here, along x only, is what keeps rare alterations visible without the vertical
    bleeding between gene rows that an image-resampling filter would cause.
    """
    statuses = sorted(STATUS_CODES, key=STATUS_CODES.__getitem__)
    lookup = np.array([to_rgba(STATUS_COLORS[s]) for s in statuses], dtype=np.float32)
    n_genes, n_patients = data.matrix.shape
    factor = max(1, int(np.ceil(n_patients / _MAX_IMAGE_COLUMNS)))
    blocks: list[np.ndarray] = []
    for columns in data.group_slices().values():
        rgba = lookup[data.matrix[:, columns]]
        if factor > 1:
            starts = np.arange(0, rgba.shape[1], factor)
            sizes = np.diff(np.append(starts, rgba.shape[1]))
            rgba = np.add.reduceat(rgba, starts, axis=1) / sizes[None, :, None]
        blocks.append(rgba)
    # Gap between groups: ~2% of the width whatever the cohort size.
    total = sum(block.shape[1] for block in blocks)
    gap = np.zeros((n_genes, max(1, round(0.02 * total)), 4), dtype=np.float32)
    spans: dict[str, tuple[int, int]] = {}
    pieces: list[np.ndarray] = []
    position = 0
    for index, (group, block) in enumerate(zip(data.groups, blocks, strict=True)):
        if index:
            pieces.append(gap)
            position += gap.shape[1]
        spans[group] = (position, position + block.shape[1])
        pieces.append(block)
        position += block.shape[1]
    return np.concatenate(pieces, axis=1), spans


# The alterations the seed letter discusses, IKZF1 first (Figure 1C).
FIGURE_1C_GENES = ["IKZF1", "NOTCH1", "FBXW7", "PTEN", "KRAS", "NRAS", "EZH2", "ASXL1", "ETV6", "DNMT3A"]


def write_oncoplot(
    db_path: Path,
    out: Path,
    by: str = "ikzf1_status",
    genes: list[str] | None = None,
    cohort: str = "cohort_patient",
    where: str | None = None,
    labels: Labels | None = None,
) -> Path:
    """Patients x genes of `patient_gene_alteration`, split by a grouping column of the cohort view (of the
    patients `where` selects), its name and groups as `labels` say."""
    chosen = genes or FIGURE_1C_GENES
    selection = select_cohort(cohort, where)
    groups = read_cohort(db_path, selection.view, ["patient_id", by], where=selection.where).drop_nulls(by)
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
    labels = labels or Labels()
    title = f"Alterations at diagnosis by {labels.name(by)} ({groups.height:,} patients)"
    # Groups left to right in cohort order (Alt before GL), as the figure shows them.
    frame = frame.sort(by, "patient_id")
    named = labels.groups(by, frame[by].unique(maintain_order=True).to_list())
    frame = frame.with_columns(pl.col(by).replace_strict(named, return_dtype=pl.String))
    return plot_oncoplot(frame, out, group_column=by, genes=chosen, title=title)
