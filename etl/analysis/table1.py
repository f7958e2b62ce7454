"""`cgdw table1`: the seed letter's Table 1 (patient characteristics by IKZF1 status) from a cohort view.

Counts are n of the evaluable patients (the non-NULL values of the row's column) per group and in total;
continuous rows are median (range); the 5-year outcome rows are Kaplan-Meier / Aalen-Johansen estimates
with 95% CIs. Tests (stated per row): two groups: Fisher's exact test, two-sided, for counts and the
Wilcoxon rank-sum test (normal approximation with continuity correction, as R's `wilcox.test` uses with
ties or n >= 50) for continuous rows; more groups: Pearson's chi-square and Kruskal-Wallis. Outcome rows
carry the log-rank (OS, EFS) or Gray's (CIR) test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from etl.analysis.cohort import (
    ENDPOINTS,
    DeclaredAttribute,
    Source,
    attrition,
    cohort_columns,
    declared_attributes,
    format_p,
    group_label,
    group_order,
    read_cohort,
    select_cohort,
)
from etl.analysis.html import frame_html
from etl.analysis.table1_spec import RowKind, Table1Row, default_rows, load_spec
from etl.errors import CgdwError
from queries.mrd import is_status_column

# The seed letter's Table 1 (etl/analysis/specs/seed_tall.toml): what `cgdw table1 --spec seed_tall` prints.
SEED_TABLE1_ROWS: tuple[Table1Row, ...] = load_spec("seed_tall").rows

FISHER = "Fisher's exact test, two-sided"
CHI_SQUARE = "Pearson's chi-square test"
WILCOXON = "Wilcoxon rank-sum test (normal approximation, continuity correction)"
KRUSKAL = "Kruskal-Wallis test"
WELCH = "Welch two-sample t-test"
ANOVA = "one-way analysis of variance"
SHORT_TEST_NAMES = {
    FISHER: "Fisher",
    CHI_SQUARE: "chi-square",
    WILCOXON: "Wilcoxon",
    KRUSKAL: "Kruskal-Wallis",
    WELCH: "t-test",
    ANOVA: "ANOVA",
}


@dataclass
class Cell:
    """One group's (or the total's) value of one row; only the fields of the row's kind are set."""

    n: int | None = None
    denom: int | None = None
    median: float | None = None
    mean: float | None = None
    sd: float | None = None
    min: float | None = None
    max: float | None = None
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    suppressed: str | None = None  # e.g. "<5" when --min-cell hid a small count (or "x" an estimate)
    denom_suppressed: bool | None = None  # True when --min-cell hid the denominator too

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class RowResult:
    id: str
    label: str
    kind: RowKind
    groups: dict[str, Cell]
    total: Cell
    p_value: float | None
    test: str | None
    events: dict[str, int] = field(default_factory=dict)  # estimate rows: events per group, not printed


@dataclass
class Table1:
    cohort: str
    by: str
    groups: list[str]
    rows: list[RowResult]
    patients: int
    excluded_no_group: int
    horizon_years: float
    notes: list[str] = field(default_factory=list)
    where: str | None = None  # the patients the table is restricted to (--where)
    attrition: pl.DataFrame | None = None  # step, rule, patients, dropped (with --attrition)
    mrd_thresholds: dict[str, float] = field(default_factory=dict)  # --mrd-threshold: method -> fraction

    def to_json(self) -> dict[str, Any]:
        """The documented JSON (docs/analysis.md): one object per row, cells keyed by group label."""
        return {
            "cohort": self.cohort,
            "where": self.where,
            **({"mrd_thresholds": self.mrd_thresholds} if self.mrd_thresholds else {}),
            **({"attrition": self.attrition.to_dicts()} if self.attrition is not None else {}),
            "by": self.by,
            "groups": self.groups,
            "patients": self.patients,
            "excluded_no_group": self.excluded_no_group,
            "horizon_years": self.horizon_years,
            "rows": [
                {
                    "id": row.id,
                    "label": row.label,
                    "kind": row.kind,
                    "groups": {name: cell.as_dict() for name, cell in row.groups.items()},
                    "total": row.total.as_dict(),
                    "p_value": row.p_value,
                    "test": row.test,
                }
                for row in self.rows
            ],
            "notes": self.notes,
        }

    def _repr_html_(self) -> str:
        """Jupyter shows the table as `cgdw table1` prints it, with its notes."""
        title = f"Table 1 by {self.by} ({self.cohort}{', ' + self.where if self.where else ''})"
        return frame_html(self.to_frame(), title, self.notes)

    def to_frame(self) -> pl.DataFrame:
        """For people: one text column per group, like the printed table."""
        records = []
        for row in self.rows:
            record: dict[str, str | None] = {"row": row.id, "label": row.label}
            for name, cell in [*row.groups.items(), ("Total", row.total)]:
                record[name] = str(cell.n) if row.id == "total" else format_cell(row.kind, cell)
            record["P"] = format_p(row.p_value)
            record["test"] = SHORT_TEST_NAMES.get(row.test or "", row.test)
            records.append(record)
        return pl.DataFrame(records)


def format_cell(kind: RowKind, cell: Cell) -> str:
    if kind == "count" and (cell.suppressed or cell.denom_suppressed):
        return f"{cell.suppressed or cell.n}/{'x' if cell.denom_suppressed else cell.denom}"
    if kind == "estimate" and cell.suppressed:
        return cell.suppressed
    if kind == "count":
        if not cell.denom:
            return "0/0"
        return f"{cell.n}/{cell.denom} ({100 * (cell.n or 0) / cell.denom:.0f}%)"
    if kind == "median":
        if cell.median is None:
            return "n/a"
        return f"{cell.median:g}" if cell.min is None else f"{cell.median:g} ({cell.min:g}-{cell.max:g})"
    if kind == "mean":
        return (
            "n/a"
            if cell.mean is None
            else f"{cell.mean:.1f} ({cell.sd:.1f})"
            if cell.sd is not None
            else f"{cell.mean:.1f}"
        )
    if kind in ("section", "categorical"):
        return ""
    if cell.estimate is None:
        return "n/a"
    return f"{100 * cell.estimate:.0f}% ({100 * (cell.lower or 0):.0f}-{100 * (cell.upper or 0):.0f})"


def count_row(row: Table1Row, parts: dict[object, pl.DataFrame]) -> RowResult:
    """`parts`: the cohort split by group once (a filter per row costs seconds at a million patients)."""
    cells: dict[str, Cell] = {}
    table = []
    for value, part in parts.items():
        column = part[row.column]
        if row.denominator == "all":
            column = column.fill_null(False)
        n, denom = int(column.sum() or 0), int(column.count())
        cells[group_label(value)] = Cell(n=n, denom=denom)
        table.append([n, denom - n])
    total = Cell(n=sum(c.n or 0 for c in cells.values()), denom=sum(c.denom or 0 for c in cells.values()))
    p, test = count_test(np.array(table), row.test)
    return RowResult(row.id, row.label, "count", cells, total, p, test)


def count_test(table: np.ndarray, chosen: str | None = None) -> tuple[float | None, str | None]:
    """Fisher's exact test for a 2x2 table, Pearson's chi-square for more groups or levels (or the test a
    spec chose); None when a margin is empty (nothing to test)."""
    table = table[table.sum(axis=1) > 0]
    table = table[:, table.sum(axis=0) > 0] if table.ndim == 2 and table.shape[1] > 2 else table
    if len(table) < 2 or (table.sum(axis=0) == 0).any():
        return None, None
    if chosen not in (None, "fisher", "chi-square"):
        raise CgdwError(f"test {chosen!r} is not one for counts: fisher or chi-square")
    if table.shape == (2, 2) and chosen != "chi-square":
        return float(stats.fisher_exact(table, alternative="two-sided").pvalue), FISHER
    if chosen == "fisher":
        raise CgdwError("Fisher's exact test is offered for 2 groups x 2 values only: use chi-square")
    return float(stats.chi2_contingency(table, correction=False).pvalue), CHI_SQUARE


def categorical_rows(
    row: Table1Row, parts: dict[object, pl.DataFrame], declared: tuple[tuple[str, str], ...] = ()
) -> list[RowResult]:
    """A heading with the test over the groups x levels table, then one count row per level (n/evaluated).
    `declared`: the levels (code, label) the data dictionary gives the column, in their order; a value
    outside them follows, sorted."""
    values = {value: _levels_of(row, part[row.column]) for value, part in parts.items()}
    present = pl.concat(list(values.values())).drop_nulls() if values else pl.Series([], dtype=pl.String)
    found = sorted(present.unique().to_list(), key=str)
    labels = dict(declared) if not row.bins else {}
    if row.bins:
        levels = _bin_labels(row.bins)
    else:
        levels = [code for code in labels if code in found] + [v for v in found if v not in labels]
    table = np.array([[int((v == level).sum()) for level in levels] for v in values.values()])
    p, test = count_test(table, row.test) if len(levels) > 1 else (None, None)
    heading = RowResult(
        row.id, row.label, "categorical", {group_label(g): Cell() for g in parts}, Cell(), p, test
    )
    results = [heading]
    for level in levels:
        cells = {}
        for group, v in values.items():
            evaluated = v.drop_nulls()
            cells[group_label(group)] = Cell(n=int((evaluated == level).sum()), denom=evaluated.len())
        total = Cell(n=sum(c.n or 0 for c in cells.values()), denom=sum(c.denom or 0 for c in cells.values()))
        shown = labels.get(level, level)
        results.append(RowResult(f"{row.id}={level}", f"  {shown}", "count", cells, total, None, None))
    return results


def _levels_of(row: Table1Row, column: pl.Series) -> pl.Series:
    """A column's values as level labels: as they are, or binned when the row has bins."""
    if not row.bins:
        return column.cast(pl.String)
    labels = _bin_labels(row.bins)
    numbers = column.cast(pl.Float64)
    index = pl.Series(np.searchsorted(np.array(row.bins), numbers.fill_null(np.nan).to_numpy(), side="right"))
    binned = pl.Series([labels[i] for i in index.to_list()], dtype=pl.String)
    return pl.select(pl.when(numbers.is_null()).then(None).otherwise(binned)).to_series()


def _bin_labels(bins: tuple[float, ...]) -> list[str]:
    edges = list(bins)
    return [
        f"< {edges[0]:g}",
        *(f"{a:g} to < {b:g}" for a, b in itertools.pairwise(edges)),
        f">= {edges[-1]:g}",
    ]


def mean_row(row: Table1Row, parts: dict[object, pl.DataFrame]) -> RowResult:
    """Mean (SD); Welch's t-test for two groups, one-way ANOVA for more."""
    samples, cells = [], {}
    for value, part in parts.items():
        values = part[row.column].drop_nulls().to_numpy().astype(float)
        samples.append(values)
        cells[group_label(value)] = _mean_cell(values)
    total = _mean_cell(np.concatenate(samples) if samples else np.array([]))
    usable = [sample for sample in samples if len(sample) > 1]
    if row.test not in (None, "t-test", "anova"):
        raise CgdwError(f"test {row.test!r} is not one for means: t-test or anova")
    if len(usable) < 2:
        return RowResult(row.id, row.label, "mean", cells, total, None, None)
    if len(usable) == 2:
        return RowResult(row.id, row.label, "mean", cells, total,
                         float(stats.ttest_ind(*usable, equal_var=False).pvalue), WELCH)  # fmt: skip
    return RowResult(row.id, row.label, "mean", cells, total, float(stats.f_oneway(*usable).pvalue), ANOVA)


def _mean_cell(values: np.ndarray) -> Cell:
    if not len(values):
        return Cell()
    return Cell(mean=float(values.mean()), sd=float(values.std(ddof=1)) if len(values) > 1 else None)


def median_row(row: Table1Row, parts: dict[object, pl.DataFrame]) -> RowResult:
    samples, cells = [], {}
    for value, part in parts.items():
        values = part[row.column].drop_nulls().to_numpy().astype(float)
        samples.append(values)
        cells[group_label(value)] = median_cell(values)
    total = median_cell(np.concatenate(samples) if samples else np.array([]))
    usable = [s for s in samples if len(s)]
    if row.test not in (None, "wilcoxon", "kruskal"):
        raise CgdwError(f"test {row.test!r} is not one for medians: wilcoxon or kruskal")
    p: float | None
    if len(usable) < 2:
        p, test = None, None
    elif len(usable) == 2 and row.test != "kruskal":
        result = stats.mannwhitneyu(
            *usable, alternative="two-sided", method="asymptotic", use_continuity=True
        )
        p, test = float(result.pvalue), WILCOXON
    else:
        p, test = float(stats.kruskal(*usable).pvalue), KRUSKAL
    return RowResult(row.id, row.label, "median", cells, total, p, test)


def median_cell(values: np.ndarray) -> Cell:
    if not len(values):
        return Cell()
    return Cell(median=float(np.median(values)), min=float(values.min()), max=float(values.max()))


def total_row(row: Table1Row, parts: dict[object, pl.DataFrame]) -> RowResult:
    n = sum(part.height for part in parts.values())
    cells = {group_label(v): Cell(n=part.height, denom=n) for v, part in parts.items()}
    return RowResult(row.id, row.label, "count", cells, Cell(n=n, denom=n), None, None)


def estimate_row(row: Table1Row, frame: pl.DataFrame, cohort: str, by: str, horizon: float) -> RowResult:
    from etl.analysis.outcomes import OutcomeAnalysis

    analysis = OutcomeAnalysis(row.column, by, horizon=horizon, hazard_ratios=False, cohort=cohort)
    time, status, _ = ENDPOINTS[row.column]
    usable = frame.filter(
        pl.col(by).is_not_null() & pl.col(time).is_not_null() & pl.col(status).is_not_null()
    )
    if usable.is_empty():
        # A cohort without that endpoint (a published study with no CR: no CIR): the row says n/a.
        groups = group_order(frame.filter(pl.col(by).is_not_null())[by])
        empty = {group_label(v): Cell(n=0) for v in groups}
        return RowResult(row.id, row.label, "estimate", empty, Cell(n=0), None, None)
    result = analysis.fit(frame).result
    cells = {g.group: Cell(estimate=g.estimate, lower=g.lower, upper=g.upper, n=g.n) for g in result.groups}
    overall = result.overall
    total = Cell(estimate=overall.estimate, lower=overall.lower, upper=overall.upper, n=overall.n)
    events = {g.group: g.events or 0 for g in [*result.groups, overall]}
    return RowResult(
        row.id, row.label, "estimate", cells, total, result.test.p_value, result.test.name, events
    )


def table1_rows(
    db_path: Source, cohort: str = "cohort_patient", spec: str | Path | None = None, by: str | None = None
) -> tuple[Table1Row, ...]:
    """The rows of a spec (a packaged name or a path), else a Table 1 of every column of the cohort but
    the grouping one."""
    if spec is not None:
        return load_spec(spec).rows
    view = select_cohort(cohort).view
    frame = read_cohort(db_path, view, [c for c in cohort_columns(db_path, view) if c != by])
    levels = {c: frame[c].n_unique() for c in frame.columns if frame.schema[c] == pl.String}
    labels = {name: a.label for name, a in declared_attributes(db_path).items()}
    return default_rows(dict(frame.schema), levels, labels)


def build_table1(
    db_path: Source,
    by: str = "ikzf1_status",
    cohort: str = "cohort_patient",
    rows: tuple[Table1Row, ...] = SEED_TABLE1_ROWS,
    horizon: float = 5.0,
    min_cell: int | None = None,
    where: str | None = None,
    with_attrition: bool = False,
    mrd_thresholds: list[str] | None = None,
) -> Table1:
    """`min_cell`: small-cell suppression for tables that leave the building (see `suppress_small_cells`);
    `where`: the patients of the cohort the table describes (a predicate over its columns);
    `mrd_thresholds`: METHOD=VALUE texts deciding MRD positivity at another threshold (queries/mrd.py)."""
    # One read of the cohort view for every row, the outcome rows included.
    endpoint_columns = [c for r in rows if r.kind == "estimate" for c in ENDPOINTS[r.column][:2]]
    read = [r.column for r in rows if r.kind not in ("estimate", "section") and r.column]
    selection = select_cohort(cohort, where, mrd_thresholds)
    # An MRD column of a time point and method the warehouse holds no result of (yet) is not a typo of
    # the spec: its row shows nobody evaluated, and a note says so.
    mrd_columns = {c for c in read if is_status_column(c) and c != by}
    present = set(cohort_columns(db_path, selection.view)) if mrd_columns else set()  # (opens the file)
    unassessed = sorted(mrd_columns - present)
    columns = [c for c in [by, *read, *endpoint_columns] if c not in unassessed]
    frame = read_cohort(
        db_path, selection.view, columns, where=selection.where, mrd_thresholds=selection.mrd_thresholds
    )
    frame = frame.with_columns(
        pl.lit(None, dtype=pl.Boolean if c.endswith("_positive") else pl.Float64).alias(c) for c in unassessed
    )
    grouped = frame.filter(pl.col(by).is_not_null())
    if grouped.is_empty():
        raise CgdwError(
            f"{selection.description}: none has a value of {by} ({frame.height} "
            "patients, all NULL): choose --by "
            'a column the cohort has (`cgdw query "DESCRIBE cohort_patient"` lists them)'
        )
    groups = group_order(grouped[by])
    parts = {value: grouped.filter(pl.col(by) == value) for value in groups}
    declared = declared_attributes(db_path) if any(r.kind == "categorical" for r in rows) else {}
    results: list[RowResult] = []
    for row in rows:
        if row.id == "total":
            results.append(total_row(row, parts))
        elif row.kind == "count":
            results.append(count_row(row, parts))
        elif row.kind == "median":
            results.append(median_row(row, parts))
        elif row.kind == "mean":
            results.append(mean_row(row, parts))
        elif row.kind == "categorical":
            levels = declared.get(row.column, DeclaredAttribute("")).levels
            results.extend(categorical_rows(row, parts, levels))
        elif row.kind == "section":
            results.append(RowResult(row.id, row.label, "section", {group_label(g): Cell() for g in groups},
                                     Cell(), None, None))  # fmt: skip
        else:
            results.append(estimate_row(row, frame, cohort, by, horizon))
    notes = [
        "n/denominator: patients with the characteristic among those evaluated for it "
        "(NULL = not evaluated).",
        f"Tests: counts, {FISHER} (2 groups) or {CHI_SQUARE} (more); medians, {WILCOXON} (2 groups) or "
        f"{KRUSKAL} (more); outcome rows, log-rank (OS) and Gray's test (CIR).",
        "Outcome rows: 5-year Kaplan-Meier OS and Aalen-Johansen CIR (death in CR competing, patients in CR)"
        " with 95% CIs; see `cgdw outcomes` for the methods.",
    ]
    table = Table1(
        cohort=cohort,
        by=by,
        groups=[group_label(v) for v in groups],
        rows=results,
        patients=grouped.height,
        excluded_no_group=frame.height - grouped.height,
        horizon_years=horizon,
        notes=[
            *([selection.sentence] if selection.where or selection.mrd_thresholds else []),
            *([f"No MRD result gives {', '.join(unassessed)}: nobody evaluated."] if unassessed else []),
            *notes,
        ],
        where=selection.where,
        attrition=attrition(db_path, selection) if with_attrition else None,
        mrd_thresholds=dict(selection.mrd_thresholds),
    )
    return table if min_cell is None else suppress_small_cells(table, min_cell)


Key = tuple[int, str]  # (row index among the count rows, column: a group or "Total")


def suppress_small_cells(table: Table1, min_cell: int) -> Table1:
    """Small-cell suppression for tables that leave the building: no count below `min_cell` is printed,
    nor can it be worked out from what the table prints (tested by a reader that solves the table's
    equations, tests/test_table1.py). What one table cannot guard against, tables of the same cohort by
    different groupings compared with each other, is said in docs/privacy.md.

    - Groups of fewer than `min_cell` patients are refused: every count in them would be small.
    - Primary: a count of 1 to min_cell - 1 prints as "<k"; a count whose complement in its denominator
      (the patients without the feature) is that small as ">m" (it is more than m); a denominator below
      min_cell hides its cell whole.
    - Rows: a group's count is the row total minus the other groups', so when a group's count is hidden
      the total's is too ("x"), and the other way round.
    - Columns: rows that split one denominator (categories of one variable) never leave a hidden count
      that its bounds and the denominator pin down (two "<5" adding up to 8 are both 4): another count of
      the column is hidden until none is.
    - Denominators: a row's denominator that equals a hidden count of the same column (HSCT among the
      patients in CR) is hidden too, and with it the row total's denominator.
    - P values of rows with a hidden count are not printed (computed on the exact counts, they would give
      them back); estimates whose events, or patients without event, are below min_cell print as "x";
      medians lose their ranges (a minimum or maximum is one patient's value)."""
    if min_cell < 2:
        raise CgdwError(f"--min-cell must be at least 2, got {min_cell}")
    sizes = {group: cell.n or 0 for group, cell in table.rows[0].groups.items()} if table.rows else {}
    small = [group for group, size in sizes.items() if size < min_cell]
    if small:
        raise CgdwError(
            f"--min-cell {min_cell}: {', '.join(small)} of {table.by} have fewer than {min_cell} patients, "
            "so every count in them would be small: group by a variable with larger groups"
        )
    rows = [row for row in table.rows if row.kind == "count" and row.id != "total"]
    columns = [*table.groups, "Total"]

    def cell(key: Key) -> Cell:
        row = rows[key[0]]
        return row.total if key[1] == "Total" else row.groups[key[1]]

    hidden: dict[Key, str] = {}
    hidden_denominators: set[Key] = set()
    for i in range(len(rows)):
        for column in columns:
            n, denom = cell((i, column)).n or 0, cell((i, column)).denom or 0
            if 0 < denom < min_cell:
                hidden[i, column] = f"<{min_cell}"
                hidden_denominators.add((i, column))
            elif 0 < n < min_cell:
                hidden[i, column] = f"<{min_cell}"
            elif 0 < denom - n < min_cell:
                hidden[i, column] = f">{denom - min_cell}"
    blocks = _partitions(rows, columns)
    changed = True
    while changed:
        changed = False
        for i in range(len(rows)):
            groups_hidden = any((i, g) in hidden for g in table.groups)
            if groups_hidden and (i, "Total") not in hidden:
                hidden[i, "Total"], changed = "x", True
            elif (i, "Total") in hidden and not groups_hidden:
                changed |= _hide_smallest(hidden, [(i, g) for g in table.groups], cell)
            if (
                any((i, g) in hidden_denominators for g in table.groups)
                and (i, "Total") not in hidden_denominators
            ):
                hidden_denominators.add((i, "Total"))
                hidden.setdefault((i, "Total"), "x")
                changed = True
        for block in blocks:
            for column in columns:
                line = [(i, column) for i in block]
                if any(key in hidden_denominators for key in line):
                    continue  # the whole the counts add up to is not printed
                if _pinned(line, hidden, cell, min_cell):
                    changed |= _hide_smallest(hidden, line, cell)
        for key in list(hidden):
            value = cell(key).n
            for i in range(len(rows)):
                other = (i, key[1])
                if other not in hidden_denominators and cell(other).denom == value and value:
                    hidden_denominators.add(other)
                    changed = True
    for key, mark in hidden.items():
        cell(key).n, cell(key).suppressed = None, mark
    for key in hidden_denominators:
        cell(key).denom, cell(key).denom_suppressed = None, True
    for i, row in enumerate(rows):
        if any((i, c) in hidden or (i, c) in hidden_denominators for c in columns):
            row.p_value = None
    for heading in (row for row in table.rows if row.kind == "categorical"):
        # The test of a categorical variable is over its levels' counts: hidden if one of them is.
        levels = [row for row in table.rows if row.id.startswith(f"{heading.id}=")]
        if any(c.suppressed or c.denom_suppressed for r in levels for c in [*r.groups.values(), r.total]):
            heading.p_value = None
    for row in table.rows:
        if row.kind == "median":
            for median in [*row.groups.values(), row.total]:
                median.min = median.max = None
        if row.kind == "estimate":
            for group, estimate in [*row.groups.items(), ("Total", row.total)]:
                events = row.events.get(group, 0)
                if 0 < events < min_cell or 0 < (estimate.n or 0) - events < min_cell:
                    estimate.estimate = estimate.lower = estimate.upper = None
                    estimate.suppressed = "x"
    table.notes.append(
        f"Small cells suppressed: counts below {min_cell} are shown as <{min_cell} (or, when the patients "
        f"without the feature are fewer than {min_cell}, as >m: more than m); x hides a count, denominator "
        "or estimate from which a small count could be worked out; P values of rows with a hidden count are "
        "not shown (computed on the exact counts); medians are shown without their ranges."
    )
    flow = table.attrition
    if flow is not None:
        counts = [*flow["patients"].to_list(), *flow["dropped"].drop_nulls().to_list()]
        if any(0 < count < min_cell for count in counts):
            # Each step's count minus the next gives what it dropped: one small count would be derivable
            # from the others, so the whole flow is withheld.
            table.attrition = None
            table.notes.append(f"Attrition withheld: a step leaves or drops fewer than {min_cell} patients.")
    return table


def _bounds(cell: Cell, mark: str, min_cell: int) -> tuple[int, int]:
    """What a reader knows of a hidden count from its mark and its denominator."""
    denom = cell.denom or 0
    if mark == f"<{min_cell}":
        return (1, min_cell - 1) if denom >= min_cell else (0, denom)
    if mark.startswith(">"):
        return int(mark[1:]) + 1, denom - 1
    return 0, denom


def _pinned(line: list[Key], hidden: dict[Key, str], cell: Callable[[Key], Cell], min_cell: int) -> bool:
    """Whether the counts of `line` (a partition: they add up to their common denominator) pin a hidden
    one down: its bounds, and the whole minus what is shown and the others' bounds, leave one value."""
    whole = cell(line[0]).denom or 0
    shown = sum(cell(key).n or 0 for key in line if key not in hidden)
    bounds = {key: _bounds(cell(key), hidden[key], min_cell) for key in line if key in hidden}
    rest = whole - shown
    for key, (low, high) in bounds.items():
        others_low = sum(b[0] for k, b in bounds.items() if k != key)
        others_high = sum(b[1] for k, b in bounds.items() if k != key)
        if max(low, rest - others_high) == min(high, rest - others_low):
            return True
    return False


def _hide_smallest(hidden: dict[Key, str], line: list[Key], cell: Callable[[Key], Cell]) -> bool:
    """Hide the smallest non-zero count of `line` still shown, as "x"."""
    candidates = [key for key in line if key not in hidden and (cell(key).n or 0) > 0]
    if not candidates:
        return False
    hidden[min(candidates, key=lambda key: (cell(key).n or 0, key))] = "x"
    return True


def _partitions(rows: list[RowResult], columns: list[str]) -> list[list[int]]:
    """Runs of consecutive count rows whose counts add up to their common denominator in every column
    (categories of one variable), as lists of row indexes."""

    def vector(row: RowResult, attribute: str) -> tuple[int, ...]:
        values = [getattr(row.total if c == "Total" else row.groups[c], attribute) or 0 for c in columns]
        return tuple(values)

    blocks = []
    for start in range(len(rows)):
        denominators = vector(rows[start], "denom")
        sums = [0] * len(columns)
        for end in range(start, len(rows)):
            if vector(rows[end], "denom") != denominators:
                break
            sums = [a + b for a, b in zip(sums, vector(rows[end], "n"), strict=True)]
            if end > start and tuple(sums) == denominators and any(denominators):
                blocks.append(list(range(start, end + 1)))
                break
    return blocks
