"""Reading an analysis cohort (a view with one row per patient) out of the warehouse."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from etl.errors import CgdwError
from etl.materialized import latest_live_version, relation_to_read, stored_with_joins
from etl.spark import Lake, SparkQueryError, lake_session
from etl.sqlguard import predicate_columns, safe_predicate
from etl.surface import CONSENTED, SCHEMA, surface_relations
from etl.warehouse import open_for_read, query_frame, relation_columns
from queries import find_definition, parse_ref
from queries.cohorts import CohortDefinition, CohortDefinitionError, find_cohort
from queries.mrd import SOURCE as MRD_SOURCE
from queries.mrd import (
    MrdNamingError,
    ThresholdRow,
    mrd_pairs,
    parse_threshold_override,
    reads_thresholds,
    rethresholded_sql,
)

# The endpoints of the cohort views: (time column, status column, what is estimated). Here rather than in
# outcomes.py, so that Table 1 can name its columns before it imports the survival libraries.
ENDPOINTS: dict[str, tuple[str, str, str]] = {
    "os": ("os_years", "os_status", "overall survival"),
    "efs": ("efs_years", "efs_status", "event-free survival"),
    "cir": ("cir_years", "cir_status", "cumulative incidence of relapse"),
    # As the source reports them (cohort_patient v2): a study's own definition, not derived by cgdw.
    "dfs": ("dfs_years", "dfs_status", "disease-free survival (as reported)"),
    "pfs": ("pfs_years", "pfs_status", "progression-free survival (as reported)"),
}

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")

# What the analyses read: a warehouse file (DuckDB), or a lake on Spark (`--engine spark --lake DIR`).
Source = Path | Lake


def _identifier(name: str, what: str) -> str:
    """Names go into SQL text, so only plain lower-case identifiers are accepted."""
    if not _IDENTIFIER.match(name):
        raise CgdwError(f"{what} {name!r} is not a plain column or view name (a-z, 0-9, _)")
    return f'"{name}"'


@dataclass(frozen=True)
class CohortSelection:
    """The patients an analysis reads: a cohort view, or a named cohort definition (queries/cohorts/), and
    an extra `--where` filter."""

    view: str
    where: str | None = None  # every filter at once, the definition's rules and --where
    definition: CohortDefinition | None = None
    extra: str | None = None  # the --where part
    # --mrd-threshold METHOD=VALUE: MRD positivity decided again at these thresholds (fractions)
    mrd_thresholds: tuple[tuple[str, float], ...] = ()

    @property
    def sentence(self) -> str:
        """The description as a note of an output."""
        return self.description[0].upper() + self.description[1:] + "."

    @property
    def description(self) -> str:
        """What the outputs say about the patients (None-free: the whole view when nothing filters)."""
        named = (
            f"cohort {self.definition.ref} (rules sha256 {self.definition.sha256[:12]}): "
            if self.definition
            else ""
        )
        thresholds = "; ".join(
            f"{method} MRD positive {'above 0' if value == 0 else f'at >= {value:g}'}"
            for method, value in self.mrd_thresholds
        )
        return (
            f"{named}patients of {self.view}"
            + (f" where {self.where}" if self.where else "")
            + (f" (--mrd-threshold: {thresholds})" if thresholds else "")
        )


def select_cohort(
    cohort: str, where: str | None = None, mrd_thresholds: list[str] | None = None
) -> CohortSelection:
    """`--cohort` names a view, or a cohort definition as NAME or NAME@vN (queries/cohorts/); `--where`
    adds a filter; `--mrd-threshold METHOD=VALUE` (repeatable) decides MRD positivity at another threshold
    (queries/mrd.py). A definition takes no name of a view (tests/test_cohort_selection.py checks it)."""
    thresholds: dict[str, float] = {}
    for text in mrd_thresholds or []:
        try:
            method, value = parse_threshold_override(text)
        except ValueError as exc:
            raise CgdwError(str(exc)) from None
        if method in thresholds:
            raise CgdwError(f"--mrd-threshold gives {method} twice")
        thresholds[method] = value
    name, version = parse_ref(cohort)
    try:
        definition = find_cohort(name, version)
    except CohortDefinitionError as exc:
        raise CgdwError(str(exc)) from None
    overrides = tuple(sorted(thresholds.items()))
    if definition is None:
        return CohortSelection(view=cohort, where=where, extra=where, mrd_thresholds=overrides)
    combined = " AND ".join(f"({part})" for part in (definition.where, where) if part) or None
    return CohortSelection(
        view=definition.view, where=combined, definition=definition, extra=where, mrd_thresholds=overrides
    )


def attrition(db_path: Source, selection: CohortSelection) -> pl.DataFrame:
    """CONSORT-style counts: the patients of the view, then after each inclusion rule in order (a cohort
    definition's rules, then --where): patients left and dropped."""
    rules = [(r.label, r.where) for r in selection.definition.rules] if selection.definition else []
    if selection.extra:
        rules.append(("--where", selection.extra))
    steps: list[tuple[str, str | None]] = [("All patients (consent given)", None)]
    applied: list[str] = []
    for label, where in rules:
        applied.append(f"({where})")
        steps.append((label, " AND ".join(applied)))
    rows = []
    before: int | None = None
    for label, condition in steps:
        left = read_cohort(
            db_path, selection.view, ["patient_id"], where=condition, mrd_thresholds=selection.mrd_thresholds
        ).height
        rows.append({"step": label, "rule": condition and condition.split(" AND ")[-1], "patients": left,
                     "dropped": None if before is None else before - left})  # fmt: skip
        before = left
    return pl.DataFrame(rows, schema={"step": pl.String, "rule": pl.String, "patients": pl.Int64,
                                      "dropped": pl.Int64})  # fmt: skip


@dataclass(frozen=True)
class DeclaredAttribute:
    """What the data dictionary (table attribute) says of a patient attribute: its label and, for a
    categorical one, its levels (code, label) in display order."""

    label: str
    levels: tuple[tuple[str, str], ...] = ()


def declared_attributes(db_path: Source) -> dict[str, DeclaredAttribute]:
    """The declared patient attributes by name (docs/attributes.md)."""
    if isinstance(db_path, Lake):
        rows = lake_session(db_path).frame(
            "SELECT attribute_name, label, levels FROM attribute WHERE entity = 'patient'", "the dictionary"
        )
        return declared_from_rows(rows.rows())
    with open_for_read(db_path) as con:
        return read_declared_attributes(con)


def read_declared_attributes(
    con: duckdb.DuckDBPyConnection, entity: str | None = "patient"
) -> dict[str, DeclaredAttribute]:
    """`declared_attributes` through an open connection; `entity=None` for sample attributes too."""
    rows = con.execute(
        "SELECT attribute_name, label, levels FROM attribute WHERE $entity IS NULL OR entity = $entity",
        {"entity": entity},
    ).fetchall()
    return declared_from_rows(rows)


def declared_from_rows(rows: list[tuple[Any, ...]]) -> dict[str, DeclaredAttribute]:
    declared = {}
    for name, label, levels in rows:
        codes = tuple((str(v["code"]), str(v.get("label") or v["code"])) for v in json.loads(levels or "[]"))
        declared[name] = DeclaredAttribute(label or name, codes)
    return declared


def cohort_columns(db_path: Source, view: str) -> list[str]:
    """The columns of a cohort view on the analysts' surface (empty when it is not there)."""
    _identifier(view, "cohort view")
    if isinstance(db_path, Lake):
        return lake_session(db_path).relation_columns(view)
    with open_for_read(db_path) as con:
        return relation_columns(con, view, SCHEMA)


def read_cohort(
    db_path: Source,
    view: str,
    columns: list[str],
    where: str | None = None,
    mrd_thresholds: tuple[tuple[str, float], ...] = (),
) -> pl.DataFrame:
    """The given columns of a cohort view, one row per patient, read through the analysts' surface
    (consented patients only, etl/surface.py); unknown names are reported with the list of what exists
    (run `cgdw views apply` if the view itself is missing). Reads the view's materialised table instead
    while it is fresh (etl/materialized.py), with the same consent filter. `where` restricts the patients:
    a predicate over the view's columns only, checked as `cgdw export --where` is (etl/sqlguard.py).
    `mrd_thresholds` ((method, fraction), ...) decides the MRD positivity columns again at those
    thresholds, before the filter (queries/mrd.py)."""
    _identifier(view, "cohort view")  # refuses anything but a plain name
    wanted = list(dict.fromkeys(columns))
    if isinstance(db_path, Lake):
        return read_lake_cohort(db_path, view, wanted, where, mrd_thresholds)
    with open_for_read(db_path) as con:
        if view not in surface_relations(con):
            raise CgdwError(
                f"{db_path} has no view {view!r} on the analysts' surface: run "
                f"`cgdw views apply --db {db_path}` first (`cgdw views list` names the views)"
            )
        available = relation_columns(con, view, SCHEMA)
        missing = [c for c in wanted if c not in available]
        if missing:
            raise CgdwError(f"{view} has no column {', '.join(missing)}; its columns: {', '.join(available)}")
        select = ", ".join(_identifier(c, "column") for c in wanted)
        condition = safe_predicate(where, available) if where else None
        read = set(wanted) | (predicate_columns(condition) if condition else set())
        # Rows in one order whatever DuckDB's threads do: every run hands the analyses the same input.
        order = " ORDER BY patient_id" if "patient_id" in available else ""
        if mrd_thresholds:
            relation = _rethresholded(con, view, available, dict(mrd_thresholds))
            filtered = f" WHERE {condition}" if condition else ""
            return _filtered(con, f"SELECT {select} FROM {relation}{filtered}{order}", where)
        stored = relation_to_read(con, view)
        # The stored copy is of the pinned version: a stable name's generated columns (declared attributes,
        # MRD status) are not in it, but joined to it they give the stable view's rows.
        source = None
        if stored != view and read <= set(relation_columns(con, stored)):
            source = f'"{stored}"'
        elif stored != view:
            joined = stored_with_joins(con, view)
            source = f"({joined}) AS stored" if joined is not None else None
        if source is None:
            filtered = f" WHERE {condition}" if condition else ""
            return _filtered(con, f'SELECT {select} FROM {SCHEMA}."{view}"{filtered}{order}', where)
        # A fresh materialised copy: the same rows, a table scan instead of the joins.
        conditions = [f"patient_id IN ({CONSENTED})"] if "patient_id" in available else []
        conditions += [f"({condition})"] if condition else []
        filtered = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return _filtered(con, f"SELECT {select} FROM {source}{filtered}{order}", where)


def read_lake_cohort(
    lake: Lake,
    view: str,
    columns: list[str],
    where: str | None = None,
    mrd_thresholds: tuple[tuple[str, float], ...] = (),
    *,
    grouped: bool = False,
) -> pl.DataFrame:
    """`read_cohort` on Spark: the same SELECT, over a lake (consented patients only: the export keeps no
    other). `grouped` has Spark count the patients per distinct row of the columns and hands back as many
    copies of each row, sorted: the same rows, whatever their number, cross the wire once per pattern
    (outcomes: time, status, group)."""
    if mrd_thresholds:
        raise CgdwError(
            "--mrd-threshold decides MRD positivity again from the warehouse's MRD pairs and thresholds: "
            "with --engine spark it is not available yet; run it on the warehouse (--engine duckdb)"
        )
    _identifier(view, "cohort view")
    session = lake_session(lake)
    available = session.relation_columns(view)
    if not available:
        raise CgdwError(
            f"{lake.path} has no view {view!r}: `cgdw views list` names the views; a view applied after "
            "the export is in the lake once it is exported again"
        )
    missing = [c for c in columns if c not in available]
    if missing:
        raise CgdwError(f"{view} has no column {', '.join(missing)}; its columns: {', '.join(available)}")
    select = ", ".join(_identifier(c, "column") for c in columns)
    condition = safe_predicate(where, available) if where else None
    filtered = f" WHERE {condition}" if condition else ""
    if grouped:
        sql = f'SELECT {select}, count(*) AS "__patients" FROM "{view}"{filtered} GROUP BY {select}'
    else:
        order = " ORDER BY patient_id" if "patient_id" in available else ""
        sql = f'SELECT {select} FROM "{view}"{filtered}{order}'
    try:
        frame = session.frame(sql, f"the cohort of {view}")
    except SparkQueryError as exc:  # e.g. a filter comparing values of another type
        if where is None:
            raise
        raise CgdwError(f"--where {where!r} failed: {exc}") from None
    if not grouped:
        return frame
    copies = np.repeat(np.arange(frame.height), frame["__patients"].to_numpy())
    return frame.drop("__patients")[copies].sort(columns, nulls_last=True)


def _rethresholded(
    con: duckdb.DuckDBPyConnection, view: str, available: list[str], overrides: dict[str, float]
) -> str:
    """The cohort view with its MRD positivity decided at the overridden thresholds (a subquery)."""
    name, pinned = parse_ref(view)
    version = pinned if pinned is not None else latest_live_version(con, name)
    if version is None or not reads_thresholds(name, version):
        raise CgdwError(
            f"--mrd-threshold decides positivity again for views that read table mrd_threshold "
            f"(cohort_patient v3 and later); {view} fixes its thresholds in its own SQL"
        )
    pairs = mrd_pairs(con)
    present = {p.method for p in pairs}
    absent = [m for m in overrides if m not in present]
    if absent:
        raise CgdwError(
            f"--mrd-threshold {', '.join(absent)}: the warehouse holds no MRD result by that method "
            f"(methods present: {', '.join(sorted(present)) or 'none'})"
        )
    rows = [
        ThresholdRow(*row)
        for row in con.execute(
            "SELECT method, time_point, threshold, positive_at, source FROM mrd_threshold"
        ).fetchall()
    ]
    source, source_version = MRD_SOURCE.rsplit("_v", 1)
    rule = find_definition(source, int(source_version)).sql  # mrd_result v3: the one positivity rule
    try:
        return rethresholded_sql(f'{SCHEMA}."{view}"', available, pairs, rows, overrides, rule)
    except MrdNamingError as exc:  # two spellings of a time point, or nothing the threshold would change
        raise CgdwError(str(exc)) from None


def _filtered(con: duckdb.DuckDBPyConnection, sql: str, where: str | None) -> pl.DataFrame:
    try:
        return query_frame(con, sql)
    except duckdb.Error as exc:  # e.g. a value the filter compares that is not of the column's type
        if where is None:
            raise
        raise CgdwError(f"--where {where!r} failed: {str(exc).splitlines()[0]}") from None


def group_order(values: pl.Series) -> list[object]:
    """Groups in a stable order: booleans true first (exposed before unexposed), else sorted."""
    present = values.drop_nulls().unique().to_list()
    if values.dtype == pl.Boolean:
        return sorted(present, reverse=True)
    return sorted(present, key=str)


def group_label(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def format_p(p: float | None) -> str:
    """The one style of P values in tables, figures and text (docs/analysis.md): as journals print them,
    <.001, else two significant digits without the leading zero (.049, .12, 1). JSON keeps the number."""
    if p is None or math.isnan(p):
        return ""
    if p < 0.001:
        return "<.001"
    text = f"{float(f'{p:.2g}'):g}"
    return text[1:] if text.startswith("0.") else text


def p_statement(p: float | None) -> str:
    """`format_p` in a sentence: "P < .001", "P = .049"."""
    text = format_p(p)
    return f"P < {text[1:]}" if text.startswith("<") else f"P = {text or 'not computed'}"
