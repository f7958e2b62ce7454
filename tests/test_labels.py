"""Investigators' words instead of codes (--labels, the attribute dictionary) and the figure options
(--no-censor-marks, --figure-size, --font-size, % axes, thousands separators)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from etl.analysis.labels import Labels, dictionary_labels
from etl.analysis.survival_plot import AtRiskTable
from etl.errors import CgdwError
from tests.helpers import cgdw


def test_labels_name_columns_values_and_model_terms() -> None:
    labels = Labels.parse(
        "ikzf1_status=IKZF1 status, Alt=IKZF1 altered,GL=Germline,log_wbc=log WBC (x10\\=9/L)"
    )
    assert labels.name("ikzf1_status") == "IKZF1 status" and labels.name("age") == "age"
    assert labels.value("ikzf1_status", "Alt") == "IKZF1 altered" and labels.value("x", "other") == "other"
    assert labels.covariate("ikzf1_status=Alt") == "IKZF1 status: IKZF1 altered"
    assert labels.covariate("log_wbc") == "log WBC (x10=9/L)"
    assert labels.covariate("hsct_years(t)") == "hsct_years(t)"
    one_column = Labels.parse("sex.M=Male,M=Molecular\\, other")
    assert one_column.value("sex", "M") == "Male" and one_column.value("arm", "M") == "Molecular, other"
    with pytest.raises(CgdwError, match="is not KEY=LABEL"):
        Labels.parse("Alt")


def test_the_attribute_dictionary_labels_and_the_command_line_wins() -> None:
    declared = {"treatment_arm": ("Randomised arm", (("A", "Standard"), ("B", "Clofarabine")))}
    labels = dictionary_labels(declared) | Labels.parse("B=Clofarabine arm")
    assert labels.covariate("treatment_arm=A") == "Randomised arm: Standard"
    assert (
        labels.value("treatment_arm", "B") == "Clofarabine arm"
    )  # the command line's, over the dictionary's
    assert Labels.parse("treatment_arm.B=Clo").value("treatment_arm", "B") == "Clo"


def test_numbers_at_risk_have_thousands_separators() -> None:
    table = AtRiskTable(times=[0.0, 1.0], counts={"a": [123456, 999]}, min_cell=5)
    assert [table.text("a", j) for j in (0, 1)] == ["123,456", "999"]


def test_tables_show_labels_and_json_keeps_codes(warehouse: Path) -> None:
    db = ["--db", str(warehouse)]
    labels = ["--labels", "ikzf1_status=IKZF1 status,Alt=IKZF1 altered,GL=Germline"]
    md = cgdw("table1", "--spec", "seed_tall", *labels, "--format", "md", *db).stdout
    assert "| IKZF1 altered | Germline | Total |" in md and "Table 1 by IKZF1 status" in md
    outcomes = cgdw("outcomes", *labels, "--format", "md", *db).stdout
    assert "| IKZF1 altered |" in outcomes and "IKZF1 status: IKZF1 altered" in outcomes
    document = json.loads(cgdw("outcomes", *labels, "--format", "json", *db).stdout)
    assert [g["group"] for g in document["groups"]] == ["Alt", "GL"] and document["by"] == "ikzf1_status"


def test_figure_options_reach_the_figure(warehouse: Path, tmp_path: Path) -> None:
    """Labels in the legend and at-risk rows, a % axis, no censor ticks on request, size and font size."""
    db = ["--db", str(warehouse)]
    plain, options = tmp_path / "plain.svg", tmp_path / "options.svg"
    assert cgdw("outcomes", "--plot", str(plain), *db).returncode == 0
    chosen = cgdw(
        "outcomes", "--plot", str(options), "--labels", "Alt=IKZF1 altered,GL=Germline", "--no-censor-marks",
        "--figure-size", "7x5", "--font-size", "12", *db,
    )  # fmt: skip
    assert chosen.returncode == 0, chosen.stderr
    before, after = plain.read_text(), options.read_text()
    assert "100%" in before and "ikzf1_status Alt (n=26)" in before
    assert "IKZF1 altered (n=26)" in after and "Germline (n=450)" in after
    assert re.search(r'<svg[^>]*width="504pt" height="360pt"', after)  # 7 x 5 inches
    plus = re.compile(r'id="(m[0-9a-f]+)" d="M -2\.75 0 ')  # the "+" marker of the censor ticks
    ticks = plus.findall(before)
    assert sum(before.count(f'xlink:href="#{tick}"') for tick in ticks) >= 5 and not plus.search(after)
    assert "font-size: 12px" in after or "font-size: 12" in after
    bad = cgdw("outcomes", "--plot", str(options), "--figure-size", "7by5", *db)
    assert bad.returncode == 1 and "--figure-size '7by5': give WIDTHxHEIGHT" in bad.stderr


def test_labels_that_would_merge_two_groups_are_refused_and_dots_in_values_are_values() -> None:
    with pytest.raises(CgdwError, match="values Alt and GL would both read 'same'"):
        Labels.parse("Alt=same,GL=same").groups("ikzf1_status", ["Alt", "GL"])
    assert Labels.parse("0.1=a tenth").value("dose", "0.1") == "a tenth"


def test_markdown_headers_escape_a_bar_in_a_label() -> None:
    import polars as pl

    from etl.output import frame_to_markdown

    text = frame_to_markdown(pl.DataFrame({"IKZF1 | altered": ["1"], "b": ["2"]}))
    header, rule = text.splitlines()[:2]
    assert header.count(" | ") == rule.count("|") - 2 and "IKZF1 \\| altered" in header


def test_json_never_holds_nan_or_infinity() -> None:
    from etl.output import _json

    text = _json({"hr": float("inf"), "lower": float("-inf"), "p": float("nan"), "n": [1.5, float("inf")]})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"not JSON: {c}")) == {
        "hr": None,
        "lower": None,
        "p": None,
        "n": [1.5, None],
    }


def test_a_bad_font_size_is_refused_before_the_report_is_built(warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = cgdw("report", "--out", str(out), "--font-size", "1000", "--db", str(warehouse))
    assert result.returncode == 1 and "--font-size 1000: give a size in points from 4 to 30" in result.stderr
    assert not out.exists()
    assert (
        cgdw("table1", "--format", "docx", "--out", str(tmp_path / "t.md"), "--db", str(warehouse)).returncode
        == 2
    )


def test_the_oncoplot_names_its_groups_in_their_order(warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "onc.svg"
    labels = "ikzf1_status=IKZF1,Alt=Zeta altered,GL=Alpha germline"  # labels that sort the other way
    result = cgdw("plot", "oncoplot", "--out", str(out), "--labels", labels, "--db", str(warehouse))
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert "Alterations at diagnosis by IKZF1 (476 patients)" in svg
    assert svg.index("Zeta altered") < svg.index("Alpha germline")  # Alt first, as without labels
