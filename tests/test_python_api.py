"""The Python API (docs/python.md): a notebook gets what the command line prints, from the same functions,
through the analysts' surface, and renders it as HTML."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from etl.api import Warehouse
from etl.consent import PatientRef, withdraw_consent
from etl.errors import CgdwError
from etl.output import OutputFormat, render_outcomes
from tests.helpers import TEST_KEY, cgdw, scalar


def same(a: object, b: object) -> bool:
    """Equal documents, numbers to 1e-12 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12)
    return a == b


def test_the_cohort_is_a_polars_frame_of_consented_patients(warehouse: Path, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    shutil.copy(warehouse, db)
    wh = Warehouse(db)
    before = wh.cohort(["patient_id", "patient_key", "age", "ikzf1_status"])
    assert isinstance(before, pl.DataFrame) and before.height == 476
    subject = before.row(0, named=True)

    withdraw_consent(db, PatientRef(patient_key=subject["patient_key"]), secret=TEST_KEY.encode())

    after = wh.cohort(["patient_id", "age"], where="age >= 0")
    assert after.height == 475 and subject["patient_id"] not in after["patient_id"].to_list()
    assert wh.query("SELECT count(*) AS n FROM cohort_patient")["n"].to_list() == [475]
    pandas = wh.cohort_pandas(["age", "ikzf1_status"])
    assert (
        len(pandas) == 475
        and pandas["ikzf1_status"].isna().sum()
        == after.height - wh.cohort(["ikzf1_status"], where="ikzf1_status IS NOT NULL").height
    )


def test_table1_and_outcomes_equal_what_the_command_line_prints(warehouse: Path) -> None:
    wh = Warehouse(warehouse)
    table = wh.table1(by="ikzf1_status", spec="seed_tall", where="age >= 10")
    printed = cgdw(
        "table1", "--spec", "seed_tall", "--where", "age >= 10", "--format", "json", "--db", str(warehouse)
    )
    # Equal to the last digit but one: numpy's sums may differ in the last bit from one process to another
    # (SIMD over differently aligned arrays), seen once in a P value of Gray's test.
    assert same(table.to_json(), json.loads(printed.stdout))

    fitted = wh.outcomes("cir", by="ikzf1_status", adjust=["age", "log_wbc"])
    printed = cgdw(
        "outcomes", "--endpoint", "cir", "--adjust", "age,log_wbc", "--format", "json", "--db", str(warehouse)
    )
    assert same(json.loads(render_outcomes(fitted.result, OutputFormat.json)), json.loads(printed.stdout))
    landmark = wh.outcomes("os", by="mrd1_pcr_positive", landmark="mrd1_pcr_day")
    assert landmark.result.landmark_column == "mrd1_pcr_day"


def test_results_render_as_html_in_a_notebook(warehouse: Path, tmp_path: Path) -> None:
    wh = Warehouse(warehouse)
    table = wh.table1(by="ikzf1_status", spec="seed_tall")
    html = table._repr_html_()
    assert html.startswith("<table><caption><b>Table 1 by ikzf1_status") and "<th>Alt</th>" in html
    from etl.analysis.html import frame_html

    escaped = frame_html(pl.DataFrame({"group": ["<b>Alt</b>"]}), "a & b", ["P < .001"])
    assert "&lt;b&gt;Alt&lt;/b&gt;" in escaped and "a &amp; b" in escaped and "P &lt; .001" in escaped
    fitted = wh.outcomes("os")
    shown = fitted._repr_html_()
    assert (
        "<caption><b>Hazard ratios</b>" in shown
        and "log-rank test: statistic" in shown
        and "P &lt; .001" in shown
    )
    figure = fitted.plot(tmp_path / "os.png")
    assert (tmp_path / "os.png").stat().st_size > 10_000 and figure.axes
    assert "cgdw warehouse</b> cohort.duckdb" in wh._repr_html_()


def test_it_reads_the_published_copy_and_writes_nothing(warehouse: Path) -> None:
    wh = Warehouse(warehouse)
    assert wh.reads.name == "cohort.published.duckdb"
    status = wh.status()  # the copy only: the warehouse file is never opened by a reader
    assert status.warehouse_run is None and status.published_run == scalar(
        warehouse, "SELECT max(etl_run_id) FROM etl_run"
    )
    with pytest.raises(CgdwError):
        wh.query("DELETE FROM patient")
    with pytest.raises(CgdwError, match="no warehouse at"):
        Warehouse(warehouse.with_name("missing.duckdb"))


def test_the_examples_of_docs_python_md_run(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Python block of docs/python.md, on the synthetic warehouse, as a reader of the page runs it."""
    import re

    page = (Path(__file__).parents[1] / "docs" / "python.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(block.replace('"warehouse.duckdb"', repr(str(warehouse))), namespace)
    assert (tmp_path / "os.svg").exists()
