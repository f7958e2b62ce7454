"""`cgdw report`: one self-contained HTML file, checked the way a reader meets it, in a real browser.

The report of the synthetic cohort is rendered by headless Chromium (Debian `chromium`, installed by
`.ci/install-chromium`): the DOM after rendering must hold the Table 1 values, the figures must be there,
and a screenshot of the page must show something (not a blank page). A missing browser is a failure, not
a skip: the report's rendering is part of what the suite promises.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.image as mpimg
import numpy as np
import pytest

from etl.report import inline_svg, write_report
from schema import database
from tests.helpers import TEST_KEY, load_cohort

if TYPE_CHECKING:
    from etl.synth import SynthResult

CHROMIUM_TIMEOUT_SECONDS = 120


def chromium() -> str:
    """The browser, or a failure that says how to install it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run `bash .ci/install-chromium` (Debian package chromium)")
    return path


def run_chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on a local file: no sandbox (containers run it as root), no GPU, a throwaway
    profile so runs never share state, and a timeout so a hung browser cannot hang the suite."""
    return subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
            f"--user-data-dir={profile}", *args, page.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip


class CellCollector(HTMLParser):
    """Text of every element carrying data-row and data-group (the Table 1 cells), and element counts."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}
        self.counts: dict[str, int] = {}
        self._open: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        named = dict(attrs)
        if tag == "td" and named.get("data-row") and named.get("data-group"):
            self._open = (str(named["data-row"]), str(named["data-group"]))
            self.cells[self._open] = ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.cells[self._open] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._open = None


@pytest.fixture(scope="module")
def report(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(warehouse, tmp_path_factory.mktemp("report") / "report.html")


def test_the_report_is_one_self_contained_file(report: Path) -> None:
    """It opens offline: no script, no stylesheet link, nothing fetched from a server."""
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text and "<link" not in text and "<iframe" not in text
    fetched = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, flags=re.I)
    assert fetched == [], "the report must not load anything from the network"
    assert "url(http" not in text and "@import" not in text
    for section in ("table1", "os", "efs", "cir", "forest", "oncoplot", "mrd", "quality", "provenance"):
        assert f'<section id="{section}">' in text


def test_the_report_names_the_warehouse_without_its_directory(report: Path, warehouse: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert f"<code>{warehouse.name}</code>" in text and str(warehouse.parent) not in text
    run = text.split("as published after ETL\nrun ", 1)[1].split(".", 1)[0]
    assert run.isdigit() and int(run) > 1


def test_provenance_is_a_summary_per_kind_with_the_newest_runs_folded(report: Path) -> None:
    """At a million patients the report listed 7,500 runs and files one by one (10 MB at 100,000): now a
    count per kind, and the newest 100 inside collapsed <details>."""
    text = report.read_text(encoding="utf-8")
    provenance = text.split('<section id="provenance">', 1)[1]
    assert 'id="files-per-kind"' in provenance and provenance.count("<details><summary>") == 2
    assert "<summary>14 ETL runs: show them</summary>" in provenance or "ETL runs: show" in provenance


def test_the_forest_plot_shows_every_hazard_ratio_of_the_outcome_sections(report: Path) -> None:
    forest = report.read_text(encoding="utf-8").split('<section id="forest">', 1)[1].split("</section>", 1)[0]
    assert "<svg" in forest and "Hazard ratio (95% CI), log scale" in forest
    for heading in ("Overall survival: univariable", "Event-free survival: multivariable",
                    "Cumulative incidence of relapse: multivariable"):  # fmt: skip
        assert heading in forest
    assert forest.count(">ikzf1_status=Alt<") == 6  # OS, EFS, CIR x univariable, multivariable


def test_labels_name_groups_and_columns_in_the_report(warehouse: Path, tmp_path: Path) -> None:
    labels = "ikzf1_status=IKZF1 status,Alt=IKZF1 altered,GL=Germline,log_wbc=log WBC"
    text = write_report(warehouse, tmp_path / "r.html", labels=labels).read_text(encoding="utf-8")
    assert "Table 1: patient characteristics by IKZF1 status" in text
    assert "IKZF1 altered (n=26)" in text and "Germline (n=450)" in text  # Table 1 and the curves
    assert "IKZF1 status: IKZF1 altered" in text and "adjusted for age, log WBC" in text
    assert "ikzf1_status=Alt" not in text


def test_chromium_renders_the_tables_and_figures(report: Path, tmp_path: Path) -> None:
    """The DOM after rendering holds the Table 1 values of the synthetic cohort and the figures."""
    rendered = run_chromium(report, tmp_path / "profile", "--dump-dom")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    dom = CellCollector()
    dom.feed(rendered.stdout)

    # Values of the seed letter's Table 1 as the synthetic cohort reproduces them (tests/test_table1.py).
    assert dom.cells["total", "Alt"] == "26" and dom.cells["total", "GL"] == "450"
    assert dom.cells["ras", "Alt"].startswith("8/26")
    assert dom.cells["mrd1_pos", "Alt"].startswith("12/18")
    assert dom.cells["ras", "P"] == ".0026"
    assert "log-rank test" in rendered.stdout and "Gray's test" in rendered.stdout
    # OS and CIR curves, the oncoplot and the MRD figure, inline.
    assert dom.counts.get("svg", 0) + dom.counts.get("img", 0) >= 4
    for text in ("No. at risk", "IKZF1", "Positivity threshold", "MRD1"):
        assert text in rendered.stdout
    # Provenance: every view version and source file with its checksum.
    assert "cohort_patient" in rendered.stdout and "mrd_results.tsv" in rendered.stdout


def test_the_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    """What a reader sees: a page with ink on it (tables and curves), not white nor a browser error."""
    shot = tmp_path / "report.png"
    result = run_chromium(report, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,3000")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3]  # floats in [0, 1]; drop alpha
    assert pixels.shape[:2] == (3000, 1200)
    ink = (pixels.mean(axis=2) < 0.9).mean()  # share of visibly non-white pixels
    assert pixels.std() > 0.05, "the page is uniform: nothing rendered"
    assert 0.02 < ink < 0.6, f"{ink:.1%} of the page is ink"
    colored = (np.ptp(pixels, axis=2) > 0.25).mean()  # the curves' Okabe-Ito colours, not only text
    assert colored > 0.001


def test_the_command_writes_the_report(warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "etl", "report", "--out", str(out), "--horizon", "3", "--db", str(warehouse)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "CGDW_PSEUDONYM_KEY": TEST_KEY},
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr.strip() == f"wrote {out}"  # stdout holds results only
    assert "3-y estimate (95% CI)" in out.read_text(encoding="utf-8")


def test_a_warehouse_without_views_still_gets_a_report(tmp_path: Path, dirty_cohort: SynthResult) -> None:
    """Sections without data say why; data quality lists what the loads quarantined, per file and rule."""
    db = tmp_path / "dirty.duckdb"
    database.upgrade(db)
    load_cohort(db, dirty_cohort, kinds=("clinical", "lab"))
    text = write_report(db, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Table 1 not available" in text and "cgdw views apply" in text
    assert "MRD not available" in text
    rejects = text[text.index('id="rejects"') :]
    assert "graall_export.csv" in rejects and "code:sexe" in rejects and "known_patient" in rejects


def test_figure_ids_stay_unique_on_one_page() -> None:
    """Matplotlib's ids are unique within one SVG only; each inlined figure gets its own prefix."""
    svg = (
        '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg xmlns="http://www.w3.org/2000/svg">'
        '<metadata>x</metadata><defs><clipPath id="p1"><rect/></clipPath></defs>'
        '<g clip-path="url(#p1)"><use xlink:href="#p1"/></g></svg>'
    )
    element = inline_svg(svg, "os")
    assert element.startswith("<svg") and "<metadata" not in element
    assert 'id="os-p1"' in element and "url(#os-p1)" in element and 'xlink:href="#os-p1"' in element


def test_with_min_cell_the_report_suppresses_small_cells_and_leaves_out_patient_level_figures(
    warehouse: Path,
) -> None:
    from etl.report import build_report

    html = build_report(warehouse, min_cell=5)
    assert (
        'data-row="cns" data-group="Alt">&lt;5/26<' in html
        and 'data-row="cns" data-group="Total">x/474<' in html
    )
    assert html.count("Left out with --min-cell") == 2  # the oncoplot and the MRD levels
    assert "Small cells suppressed" in html
