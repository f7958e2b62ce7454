"""Table 1 specs: which rows a Table 1 has, as a TOML file (etl/analysis/specs/NAME.toml or any path).

    name = "aml_c2"
    description = "Patient characteristics by MRD status after cycle 2"

    [[rows]]
    id = "total"                # the row's id in outputs (JSON, CSV)
    label = "Total"
    kind = "total"              # total | count | categorical | median | mean | estimate | section

    [[rows]]
    label = "Disease"           # a section heading: a label, nothing else
    kind = "section"

    [[rows]]
    id = "eln"
    label = "ELN 2017 risk"
    kind = "categorical"        # one line per level, the test over the groups x levels table
    column = "eln_risk"

    [[rows]]
    id = "age_bands"
    label = "Age, years"
    kind = "categorical"
    column = "age"
    bins = [40, 60]             # a number binned: < 40, 40 to < 60, >= 60

    [[rows]]
    id = "wbc"
    label = "WBC, x10^9/L"
    kind = "mean"               # mean (SD); median gives median (range)
    column = "wbc_g_per_l"
    test = "t-test"             # fisher | chi-square | wilcoxon | kruskal | t-test | anova

    [[rows]]
    id = "flt3"
    label = "FLT3-ITD"
    kind = "count"              # a true/false column: n/denominator (%)
    column = "flt3_itd"
    denominator = "all"         # NULL counts as no (default "evaluated": NULL is left out)

    [[rows]]
    id = "os5"
    label = "5 y overall survival"
    kind = "estimate"
    endpoint = "os"             # os | efs | cir | dfs | pfs, at --horizon

Without a spec, `default_rows` makes one of every column of the cohort, as R tableone does, so a new
study has a Table 1 on day one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from etl.analysis.cohort import ENDPOINTS
from etl.errors import CgdwError

SPEC_DIR = Path(__file__).resolve().parent / "specs"
RowKind = Literal["count", "median", "mean", "estimate", "categorical", "section"]
KINDS = ("total", "count", "median", "mean", "estimate", "categorical", "section")
TESTS = ("fisher", "chi-square", "wilcoxon", "kruskal", "t-test", "anova")
# Columns a default Table 1 leaves out: keys, and the endpoints (their estimates are rows of their own).
NOT_CHARACTERISTICS = ("patient_id", "patient_key", "log_wbc")
MAX_DEFAULT_LEVELS = 12
ROW_KEYS = frozenset({"id", "label", "kind", "column", "endpoint", "test", "denominator", "bins"})


@dataclass(frozen=True)
class Table1Row:
    id: str  # the row's id in outputs (for the seed: the `row` id of shared/reference/table1_published.tsv)
    label: str
    kind: RowKind
    column: str  # boolean column for counts, numeric for medians, endpoint name for estimates
    test: str | None = None  # one of TESTS; None: the kind's default (Fisher or chi-square, Wilcoxon or KW)
    denominator: Literal["evaluated", "all"] = "evaluated"  # all: NULL counts as "no", not left out
    bins: tuple[float, ...] = ()  # categorical rows of a number: [-inf, b1), [b1, b2), ..., [bn, inf)


@dataclass(frozen=True)
class Table1Spec:
    name: str
    description: str
    rows: tuple[Table1Row, ...]


def load_spec(name_or_path: str | Path) -> Table1Spec:
    """A packaged spec by name (seed_tall) or a TOML file by path; a wrong one names the file and row."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SPEC_DIR / f"{name_or_path}.toml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in SPEC_DIR.glob("*.toml")))
            raise CgdwError(
                f"unknown Table 1 spec {name_or_path!r}: packaged specs are {known}, or give a path"
            )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CgdwError(f"{path}: cannot read the Table 1 spec: {exc}") from None
    rows = tuple(_row(entry, number, path) for number, entry in enumerate(raw.get("rows", []), start=1))
    if not rows:
        raise CgdwError(f"{path}: a Table 1 spec lists its [[rows]]")
    ids = [row.id for row in rows if row.kind != "section"]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise CgdwError(f"{path}: row ids {', '.join(twice)} appear twice")
    return Table1Spec(
        name=str(raw.get("name", path.stem)), description=str(raw.get("description", "")), rows=rows
    )


def _row(entry: dict[str, Any], number: int, path: Path) -> Table1Row:
    where = f"{path}: row {number}"
    unknown = sorted(
        set(entry) - {"id", "label", "kind", "column", "endpoint", "test", "denominator", "bins"}
    )
    if unknown:
        raise CgdwError(f"{where}: unknown keys {', '.join(unknown)}")
    kind = entry.get("kind", "count")
    if kind not in KINDS:
        raise CgdwError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    label = str(entry.get("label", entry.get("column", "")))
    if kind == "section":
        return Table1Row(id=f"section:{label}", label=label, kind="section", column="")
    if kind == "total":
        return Table1Row(id=str(entry.get("id", "total")), label=label or "Total", kind="count", column="")
    column = str(entry.get("endpoint" if kind == "estimate" else "column", ""))
    if not column:
        raise CgdwError(f"{where}: a {kind} row names its {'endpoint' if kind == 'estimate' else 'column'}")
    if kind == "estimate" and column not in ENDPOINTS:
        raise CgdwError(f"{where}: endpoint {column!r} is not one of {', '.join(ENDPOINTS)}")
    test = entry.get("test")
    if test is not None and test not in TESTS:
        raise CgdwError(f"{where}: test {test!r} is not one of {', '.join(TESTS)}")
    denominator = entry.get("denominator", "evaluated")
    if denominator not in ("evaluated", "all"):
        raise CgdwError(f"{where}: denominator is evaluated or all, not {denominator!r}")
    bins = tuple(float(b) for b in entry.get("bins", []))
    if bins and (kind != "categorical" or list(bins) != sorted(set(bins))):
        raise CgdwError(f"{where}: bins (increasing numbers) are for categorical rows of a number")
    return Table1Row(
        id=str(entry.get("id", column)), label=label, kind=kind, column=column, test=test,
        denominator=denominator, bins=bins,
    )  # fmt: skip


def default_rows(
    schema: dict[str, pl.DataType], levels: dict[str, int], labels: dict[str, str] | None = None
) -> tuple[Table1Row, ...]:
    """A Table 1 of every column of the cohort (tableone's default): true/false columns as counts, text
    with at most MAX_DEFAULT_LEVELS values as categorical, numbers as median (range), then the estimates
    of the endpoints the cohort has. `levels`: distinct values per text column; `labels`: a row label per
    column (the declared attributes' labels), else the column's name."""
    labels = labels or {}
    endpoint_columns = {c for time, status, _ in ENDPOINTS.values() for c in (time, status)}
    rows = [Table1Row("total", "Total", "count", "")]
    for column, dtype in schema.items():
        if column in NOT_CHARACTERISTICS or column in endpoint_columns or column.endswith("_years"):
            continue
        label = labels.get(column, column)
        if dtype == pl.Boolean:
            rows.append(Table1Row(column, label, "count", column))
        elif dtype.is_numeric():
            rows.append(Table1Row(column, label, "median", column))
        elif dtype == pl.String and 1 < levels.get(column, 0) <= MAX_DEFAULT_LEVELS:
            rows.append(Table1Row(column, label, "categorical", column))
    for endpoint, (time, status, description) in ENDPOINTS.items():
        if time in schema and status in schema:
            rows.append(Table1Row(f"{endpoint}5", description, "estimate", endpoint))
    return tuple(rows)
