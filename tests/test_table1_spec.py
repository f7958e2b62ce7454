"""Table 1 from a spec (`cgdw table1 --spec FILE`), and a Table 1 of every column when none is given:
categorical rows with a test over groups x levels, binned numbers, means with Welch's t-test, a chosen
test, NULL counted as "no" on request, section headings. Tests checked against R on the same data."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from etl.analysis.cohort import read_cohort
from etl.analysis.table1 import SEED_TABLE1_ROWS, build_table1, table1_rows
from etl.analysis.table1_spec import load_spec
from etl.errors import CgdwError
from tests.helpers import SHARED, cgdw, scalar
from tests.r_reference import run_r

SPEC = """
name = "mine"

[[rows]]
kind = "total"

[[rows]]
label = "At diagnosis"
kind = "section"

[[rows]]
id = "tcr"
label = "TCR group"
kind = "categorical"
column = "tcr_group"

[[rows]]
id = "age_bands"
label = "Age, years"
kind = "categorical"
column = "age"
bins = [18, 40]

[[rows]]
id = "wbc_mean"
label = "WBC, mean (SD)"
kind = "mean"
column = "wbc_g_per_l"

[[rows]]
id = "cns_all"
label = "CNS involvement (unknown = no)"
kind = "count"
column = "cns_involvement"
denominator = "all"
test = "chi-square"
"""


@pytest.fixture(scope="module")
def table(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    path = tmp_path_factory.mktemp("spec") / "mine.toml"
    path.write_text(SPEC)
    return build_table1(warehouse, by="ikzf1_status", rows=load_spec(path).rows)


def rows_of(table: object) -> dict[str, object]:
    return {row.id: row for row in table.rows}  # type: ignore[attr-defined]


def test_the_seed_spec_has_the_published_rows() -> None:
    """etl/analysis/specs/seed_tall.toml holds the rows of the published table (its exact counts are
    tests/test_table1.py's), then the four genes the letter names in its text."""
    lines = (SHARED / "reference" / "table1_published.tsv").read_text().splitlines()
    published = [line.split("\t")[0] for line in lines if line and not line.startswith(("#", "row\t"))]
    ids = [row.id for row in load_spec("seed_tall").rows]
    assert load_spec("seed_tall").rows == SEED_TABLE1_ROWS
    assert [i for i in ids if i in published] == [p for p in published if p in ids]
    assert set(published) <= set(ids) and ids[-4:] == ["ezh2", "asxl1", "etv6", "dnmt3a"]


def test_a_categorical_row_counts_each_level_among_the_evaluated(warehouse: Path, table: object) -> None:
    rows = rows_of(table)
    cortical = rows["tcr=cortical"]
    alt = scalar(
        warehouse, "SELECT count(*) FROM cohort_patient WHERE ikzf1_status = 'Alt' AND tcr_group = 'cortical'"
    )
    evaluated = scalar(warehouse, "SELECT count(tcr_group) FROM cohort_patient WHERE ikzf1_status = 'Alt'")
    assert (cortical.groups["Alt"].n, cortical.groups["Alt"].denom) == (alt, evaluated)  # type: ignore[attr-defined]
    assert [r for r in rows if r.startswith("age_bands=")] == [
        "age_bands=< 18", "age_bands=18 to < 40", "age_bands=>= 40",
    ]  # fmt: skip
    assert rows["section:At diagnosis"].kind == "section"  # type: ignore[attr-defined]
    cns = rows["cns_all"]
    assert cns.total.denom == scalar(
        warehouse, "SELECT count(*) FROM cohort_patient WHERE ikzf1_status IS NOT NULL"
    )  # type: ignore[attr-defined]


def test_the_tests_equal_r(warehouse: Path, table: object) -> None:
    rows = rows_of(table)
    frame = read_cohort(
        warehouse, "cohort_patient", ["ikzf1_status", "tcr_group", "wbc_g_per_l", "cns_involvement"]
    )
    r = run_r(
        """
        d <- d[!is.na(d$ikzf1_status), ]
        cns <- ifelse(is.na(d$cns_involvement), FALSE, d$cns_involvement == "true")
        emit(list(
          tcr = chisq.test(table(d$ikzf1_status, d$tcr_group), correct = FALSE)$p.value,
          wbc = t.test(wbc_g_per_l ~ ikzf1_status, data = d)$p.value,
          cns = chisq.test(table(d$ikzf1_status, cns), correct = FALSE)$p.value))
        """,
        {"d": frame.with_columns(pl.col("cns_involvement").cast(pl.String))},
    )
    assert rows["tcr"].p_value == pytest.approx(r["tcr"], rel=1e-6)  # type: ignore[attr-defined]
    assert rows["wbc_mean"].p_value == pytest.approx(r["wbc"], rel=1e-6)  # type: ignore[attr-defined]
    assert rows["cns_all"].p_value == pytest.approx(r["cns"], rel=1e-6)  # type: ignore[attr-defined]


def test_without_a_spec_every_column_but_the_grouping_one_is_a_row(warehouse: Path) -> None:
    rows = table1_rows(warehouse, by="sex")
    kinds = {row.id: row.kind for row in rows}
    assert kinds["is_male"] == "count" and kinds["age"] == "median" and kinds["tcr_group"] == "categorical"
    assert "sex" not in kinds and "patient_key" not in kinds and "os_years" not in kinds
    assert kinds["os5"] == "estimate"
    shown = cgdw("table1", "--by", "sex", "--format", "md", "--db", str(warehouse))
    assert shown.returncode == 0, shown.stderr
    assert "tcr_group=cortical" in shown.stdout


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ('kind = "pie"\ncolumn = "age"', "kind 'pie' is not one of"),
        ('kind = "count"', "a count row names its column"),
        ('kind = "estimate"\nendpoint = "rfs"', "endpoint 'rfs' is not one of"),
        ('kind = "median"\ncolumn = "age"\ntest = "z"', "test 'z' is not one of"),
        ('kind = "median"\ncolumn = "age"\nbins = [1]', "bins (increasing numbers) are for categorical"),
        ('kind = "count"\ncolumn = "age"\ncolour = "red"', "unknown keys colour"),
    ],
)
def test_a_wrong_spec_names_its_file_and_row(tmp_path: Path, row: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'[[rows]]\nkind = "total"\n\n[[rows]]\n{row}\n')
    with pytest.raises(
        CgdwError, match=r"bad.toml: row 2: " + problem.replace("(", r"\(").replace(")", r"\)")
    ):
        load_spec(path)
