"""Publication figures: survival curves with numbers at risk (etl/analysis/survival_plot.py) and oncoplots
(etl/analysis/oncoplot.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib as mpl
import matplotlib.image as mpimg
import numpy as np
import polars as pl
import pytest

from etl.analysis.oncoplot import (
    DELETED,
    MUTATED,
    MUTATED_AND_DELETED,
    NOT_SEQUENCED,
    WILD_TYPE,
    oncoplot_matrix,
    plot_oncoplot,
)
from etl.analysis.survival_plot import AtRiskTable, StepCurve, plot_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALT, GL = "IKZF1 Alt (n=26)", "IKZF1 GL (n=450)"


def survival_curves() -> tuple[list[StepCurve], AtRiskTable]:
    """Two Kaplan-Meier-like curves and their numbers at risk, as in Figure 1C of the letter."""
    alt = StepCurve(
        label=ALT,
        time=np.array([0.0, 0.4, 0.9, 1.6, 2.5, 4.0]),
        estimate=np.array([1.0, 0.92, 0.81, 0.65, 0.5, 0.42]),
        lower=np.array([1.0, 0.8, 0.65, 0.46, 0.31, 0.23]),
        upper=np.array([1.0, 0.98, 0.92, 0.8, 0.67, 0.6]),
        censor_times=np.array([1.2, 3.1, 5.5]),
    )
    gl = StepCurve(
        label=GL,
        time=np.array([0.0, 0.3, 0.8, 1.5, 2.2, 3.5, 5.0]),
        estimate=np.array([1.0, 0.97, 0.93, 0.88, 0.84, 0.8, 0.78]),
        lower=np.array([1.0, 0.95, 0.9, 0.85, 0.8, 0.76, 0.73]),
        upper=np.array([1.0, 0.99, 0.95, 0.91, 0.87, 0.84, 0.82]),
        censor_times=np.array([0.5, 2.0, 4.4, 6.0]),
    )
    at_risk = AtRiskTable(
        times=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        counts={ALT: [26, 21, 15, 11, 8, 5, 1], GL: [450, 431, 402, 371, 333, 287, 112]},
    )
    return [alt, gl], at_risk


def draw_survival(out: Path) -> Path:
    curves, at_risk = survival_curves()
    return plot_curves(
        curves,
        at_risk,
        out,
        title="Overall survival",
        ylabel="Overall survival (%)",
        annotation="Log-rank P = .001",
    )


def svg_texts(path: Path) -> list[str]:
    """Every <text> of an SVG, as it would be read (text stays text because svg.fonttype is 'none')."""
    root = ET.parse(path).getroot()
    return ["".join(element.itertext()).strip() for element in root.iter("{http://www.w3.org/2000/svg}text")]


def alterations_frame() -> pl.DataFrame:
    """Six patients, three genes. NOTCH1 is altered in 4 patients, FBXW7 in 2, PTEN in 1.

    Rows come in alphabetical gene order so that frequency ordering is not a by-product of the input.
    Patient 2 has no PTEN row at all (not sequenced for it).
    """
    rows = [
        # patient, gene, status, group
        (1, "FBXW7", "wild_type", "Alt"),
        (1, "NOTCH1", "mutated_and_deleted", "Alt"),
        (1, "PTEN", "wild_type", "Alt"),
        (2, "FBXW7", "mutated", "Alt"),
        (2, "NOTCH1", "wild_type", "Alt"),
        (3, "FBXW7", "deleted", "Alt"),
        (3, "NOTCH1", "mutated", "Alt"),
        (3, "PTEN", "wild_type", "Alt"),
        (4, "FBXW7", "wild_type", "Alt"),
        (4, "NOTCH1", "wild_type", "Alt"),
        (4, "PTEN", "mutated", "Alt"),
        (5, "FBXW7", "wild_type", "GL"),
        (5, "NOTCH1", "deleted", "GL"),
        (5, "PTEN", "wild_type", "GL"),
        (6, "FBXW7", "wild_type", "GL"),
        (6, "NOTCH1", "mutated", "GL"),
        (6, "PTEN", "not_sequenced", "GL"),
    ]
    return pl.DataFrame(rows, schema=["patient_id", "gene", "status", "ikzf1_status"], orient="row")


# --- survival / cumulative incidence curves ------------------------------------------------------------


def test_png_is_a_real_png_of_publication_size(tmp_path: Path) -> None:
    out = draw_survival(tmp_path / "os.png")

    assert out.read_bytes()[:8] == PNG_SIGNATURE
    pixels = mpimg.imread(out)
    height, width = pixels.shape[:2]
    # About 5.7 in wide at 200 dpi; taller than wide because of the at-risk table.
    assert 1050 < width < 1250
    assert 900 < height < 1500
    assert pixels[..., :3].std() > 0.05, "the image should not be blank"


def test_svg_output_is_byte_identical_across_renders(tmp_path: Path) -> None:
    first = draw_survival(tmp_path / "first.svg").read_bytes()
    second = draw_survival(tmp_path / "second.svg").read_bytes()

    assert first == second
    assert b"<dc:date>" not in first


def test_svg_keeps_at_risk_numbers_group_labels_and_annotation_as_text(tmp_path: Path) -> None:
    texts = svg_texts(draw_survival(tmp_path / "os.svg"))

    _, at_risk = survival_curves()
    for label, counts in at_risk.counts.items():
        assert texts.count(label) >= 2, f"{label} should appear in the legend and as an at-risk row"
        for count in counts:
            assert str(count) in texts
    assert "No. at risk" in texts
    assert "Log-rank P = .001" in texts
    assert "Overall survival" in texts


def test_x_ticks_are_the_at_risk_times_up_to_the_horizon(tmp_path: Path) -> None:
    curves, at_risk = survival_curves()
    out = plot_curves(
        curves, at_risk, tmp_path / "os.svg", title="OS", ylabel="OS (%)", horizon=4, annotation=None
    )
    texts = svg_texts(out)

    # Columns after the 4-year horizon are dropped: the 5-year count 287 is not drawn.
    assert "333" in texts
    assert "287" not in texts
    assert {"0", "1", "2", "3", "4"} <= set(texts)


def test_cumulative_incidence_without_bands_or_percent(tmp_path: Path) -> None:
    curve = StepCurve("Relapse", np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.1, 0.25]))
    at_risk = AtRiskTable([0.0, 1.0, 2.0, 3.0], {"Relapse": [40, 31, 20, 9]})
    out = plot_curves(
        [curve], at_risk, tmp_path / "cir.png", title="CIR", ylabel="Cumulative incidence", percent=False
    )
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_plotting_leaves_global_matplotlib_settings_alone(tmp_path: Path) -> None:
    before = (mpl.rcParams["svg.fonttype"], mpl.rcParams["svg.hashsalt"], mpl.rcParams["font.size"])
    draw_survival(tmp_path / "os.svg")
    after = (mpl.rcParams["svg.fonttype"], mpl.rcParams["svg.hashsalt"], mpl.rcParams["font.size"])

    assert after == before


@pytest.mark.parametrize("name", ["figure.pdf", "figure", "figure.jpg"])
def test_only_png_and_svg_are_written(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        draw_survival(tmp_path / name)
    assert not (tmp_path / name).exists()


def test_step_curve_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="estimate has 2 values but time has 3"):
        StepCurve("A", np.array([0.0, 1.0, 2.0]), np.array([1.0, 0.9]))
    with pytest.raises(ValueError, match="both lower and upper"):
        StepCurve("A", np.array([0.0, 1.0]), np.array([1.0, 0.9]), lower=np.array([1.0, 0.8]))
    with pytest.raises(ValueError, match="start at 0"):
        StepCurve("A", np.array([0.5, 1.0]), np.array([1.0, 0.9]))
    with pytest.raises(ValueError, match="empty"):
        StepCurve("A", np.array([]), np.array([]))


def test_at_risk_rows_must_match_the_curves(tmp_path: Path) -> None:
    curves, _ = survival_curves()
    with pytest.raises(ValueError, match="3 counts for 2 times"):
        AtRiskTable([0.0, 1.0], {ALT: [26, 20, 10]})
    with pytest.raises(ValueError, match="missing"):
        plot_curves(curves, AtRiskTable([0.0], {ALT: [26]}), tmp_path / "x.png", title="t", ylabel="y")
    with pytest.raises(ValueError, match="at least one curve"):
        plot_curves([], AtRiskTable([0.0], {ALT: [26]}), tmp_path / "x.png", title="t", ylabel="y")


def test_percent_expects_proportions(tmp_path: Path) -> None:
    curve = StepCurve("A", np.array([0.0, 1.0]), np.array([100.0, 80.0]))
    with pytest.raises(ValueError, match=r"proportions in \[0, 1\]"):
        plot_curves([curve], AtRiskTable([0.0], {"A": [10]}), tmp_path / "x.png", title="t", ylabel="y")


# --- oncoplot ------------------------------------------------------------------------------------------


def test_oncoplot_matrix_orders_genes_by_alteration_frequency() -> None:
    result = oncoplot_matrix(alterations_frame(), "ikzf1_status")

    assert result.genes == ["NOTCH1", "FBXW7", "PTEN"]


def test_oncoplot_matrix_memo_sorts_patients_within_groups() -> None:
    result = oncoplot_matrix(alterations_frame(), "ikzf1_status")

    # Groups in order of first appearance. Within Alt: NOTCH1 carriers first (3 before 1 because 3 also
    # has FBXW7), then the FBXW7-only patient 2, then PTEN-only 4. In GL both carry only NOTCH1: the tie is
    # broken by status code (deletion, 3, before mutation, 2), then by patient id.
    assert result.groups == {"Alt": [3, 1, 2, 4], "GL": [5, 6]}
    assert result.matrix.shape == (3, 6)
    assert result.matrix[:, 0].tolist() == [MUTATED, DELETED, WILD_TYPE]  # patient 3
    assert result.matrix[:, 1].tolist() == [MUTATED_AND_DELETED, WILD_TYPE, WILD_TYPE]  # patient 1
    # Patient 2 has no PTEN row: shown as not sequenced, not as wild type.
    assert result.matrix[2, 2] == NOT_SEQUENCED


def test_percent_altered_counts_only_sequenced_patients() -> None:
    percents = oncoplot_matrix(alterations_frame(), "ikzf1_status").percent_altered()

    assert percents["Alt"].tolist() == pytest.approx([50.0, 50.0, 100 / 3])  # PTEN: 1 of 3 sequenced
    assert percents["GL"].tolist() == pytest.approx([100.0, 0.0, 0.0])  # PTEN: 0 of 1 sequenced


def test_explicit_gene_list_sets_the_rows() -> None:
    result = oncoplot_matrix(alterations_frame(), "ikzf1_status", genes=["PTEN", "NOTCH1"])

    assert result.genes == ["PTEN", "NOTCH1"]
    assert result.groups["Alt"][0] == 4  # PTEN carrier first now
    with pytest.raises(ValueError, match=r"not found.*\['TP53'\]"):
        oncoplot_matrix(alterations_frame(), "ikzf1_status", genes=["NOTCH1", "TP53"])


def test_unknown_status_is_rejected(tmp_path: Path) -> None:
    frame = alterations_frame().with_columns(
        pl.when(pl.col("patient_id") == 4)
        .then(pl.lit("amplified"))
        .otherwise(pl.col("status"))
        .alias("status")
    )
    with pytest.raises(ValueError, match=r"unknown status value\(s\) \['amplified'\]"):
        plot_oncoplot(frame, tmp_path / "onco.png", group_column="ikzf1_status")


def test_bad_oncoplot_inputs_are_rejected() -> None:
    frame = alterations_frame()
    with pytest.raises(ValueError, match="empty"):
        oncoplot_matrix(frame.clear(), "ikzf1_status")
    with pytest.raises(ValueError, match="lacks column"):
        oncoplot_matrix(frame, "group")
    with pytest.raises(ValueError, match="repeat a patient x gene pair"):
        oncoplot_matrix(pl.concat([frame, frame.head(1)]), "ikzf1_status")
    moved = frame.with_columns(
        pl.when((pl.col("patient_id") == 1) & (pl.col("gene") == "PTEN"))
        .then(pl.lit("GL"))
        .otherwise(pl.col("ikzf1_status"))
        .alias("ikzf1_status")
    )
    with pytest.raises(ValueError, match="more than one"):
        oncoplot_matrix(moved, "ikzf1_status")


def test_oncoplot_svg_has_genes_groups_and_percentages(tmp_path: Path) -> None:
    out = plot_oncoplot(alterations_frame(), tmp_path / "onco.svg", group_column="ikzf1_status", title="T")
    texts = svg_texts(out)

    assert {"NOTCH1", "FBXW7", "PTEN", "Alt", "GL", "100%", "33%"} <= set(texts)
    # Group labels are two lines (name, then size), each its own <text>.
    assert {"(n = 4)", "(n = 2)", "Patients (n = 6)"} <= set(texts)


def test_oncoplot_of_100000_patients_renders(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    patients, genes = 100_000, ["NOTCH1", "FBXW7", "PHF6", "PTEN", "NRAS", "JAK3"]
    statuses = np.array(list(("wild_type", "mutated", "deleted", "mutated_and_deleted", "not_sequenced")))
    frame = pl.DataFrame(
        {
            "patient_id": np.tile(np.arange(patients), len(genes)),
            "gene": np.repeat(genes, patients),
            "status": statuses[rng.choice(5, size=patients * len(genes), p=[0.75, 0.12, 0.05, 0.03, 0.05])],
            "group": np.tile(np.where(rng.random(patients) < 0.06, "Alt", "GL"), len(genes)),
        }
    )
    out = plot_oncoplot(frame, tmp_path / "big.png")

    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert mpimg.imread(out).shape[1] == 1800


def test_the_mrd_summary_hides_small_counts_and_the_count_that_would_give_one_back() -> None:
    """positive + negative + unknown = measurements: one hidden count of the four would come back by
    subtraction, so measurements is hidden too; the % positive goes with a hidden positive count."""
    from etl.analysis.mrd_plot import suppress_mrd_summary

    summary = pl.DataFrame(
        {"time_point": ["MRD1", "C2"], "method": ["ASO-PCR", "MFC"], "measurements": [40, 60],
         "quantified": [38, 60], "positive": [3, 20], "negative": [30, 30], "unknown": [7, 10],
         "threshold": ["0.0001", "0.001"], "% positive (evaluable)": ["9%", "40%"]}
    )  # fmt: skip
    hidden = suppress_mrd_summary(summary, 5).to_dicts()
    assert hidden[0]["positive"] == "<5" and hidden[0]["measurements"] == "x"
    assert hidden[0]["% positive (evaluable)"] == "x" and hidden[0]["negative"] == "30"
    assert hidden[1]["positive"] == "20" and hidden[1]["measurements"] == "60"


def test_a_long_curve_is_drawn_from_the_points_each_pixel_column_needs() -> None:
    """A million patients give ~10^5 steps (2.8 MB of SVG per curve): only the first and last point of
    each of 2,000 columns are drawn, which leaves the step function unchanged at every column edge."""
    from etl.analysis.survival_plot import DRAWN_COLUMNS, _visible_steps

    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(0, 5, 100_000))
    y = np.cumprod(1 - rng.uniform(0, 1e-5, x.size))
    keep = _visible_steps(x, 5.0)
    assert keep.size <= 2 * DRAWN_COLUMNS + 2 and keep[0] == 0 and keep[-1] == x.size - 1
    edges = np.linspace(0, 5, DRAWN_COLUMNS + 1)[1:-1]
    full = y[np.searchsorted(x, edges, side="right") - 1]
    drawn = y[keep][np.searchsorted(x[keep], edges, side="right") - 1]
    assert np.array_equal(full, drawn)
    short = np.sort(rng.uniform(0, 5, 300))
    assert np.array_equal(_visible_steps(short, 5.0), np.arange(300))
