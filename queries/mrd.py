"""MRD status per (time point, method): the generated view `patient_mrd`, and thresholds an analysis sets.

`mrd_result` v3 decides the positivity of each measurement at the threshold of table `mrd_threshold`
(reference data, one row per method, or per method and time point where a protocol sets its own). Which
(time point, method) pairs exist depends on the data (MRD1 by ASO-PCR in GRAALL, C2 by MFC and LSC-MFC in
HOVON 102, ...), so the wide per-patient view is generated like `patient_attribute`: `cgdw views apply`
releases a new `patient_mrd` version when the pairs present change, and the stable `cohort_patient`
(v3, `-- attributes: mrd, patient`) joins it. Per pair three columns, named from the time point and the
method (docs/mrd.md):

    mrd_c2_mfc_positive   positive when a target is; negative only when every target was evaluable and
                          negative; else NULL (not done, indeterminate, below a range above the threshold)
    mrd_c2_mfc_day        day of the assessment: the earliest of its evaluable results, days from diagnosis
    mrd_c2_mfc_value      highest level of its evaluable results, as a fraction of cells

A time point that already starts with "mrd" is not prefixed again: MRD1 by ASO-PCR gives mrd1_pcr_*.

An analysis may set another threshold for a method (`--mrd-threshold MFC=0.01%`): the same SQL of
mrd_result v3 runs with a `mrd_threshold` CTE holding the changed rows (`threshold_cte`), so the rule that
decides positivity is written once, in queries/views/mrd_result/v3.sql.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

import duckdb

from queries import load_definitions

# The short name of each method in column names.
METHOD_NAMES = {"ASO-PCR": "pcr", "ddPCR": "ddpcr", "MFC": "mfc", "LSC-MFC": "lsc", "NGS-IGTCR": "ngs"}
VIEW_NAME = "patient_mrd"
SOURCE = "mrd_result_v3"  # the pinned version the generated view reads
# (suffix, SQL type, what the column says)
STATUS_COLUMNS = (
    ("positive", "BOOLEAN", "positive at the threshold of table mrd_threshold (any target); negative when "
     "every target is; NULL if a target could not be evaluated and none is positive"),
    ("day", "INTEGER", "day of the assessment (its evaluable results), days from diagnosis"),
    ("value", "DOUBLE", "highest level of its evaluable results, as a fraction of cells"),
)  # fmt: skip


def status_sql(where: str) -> str:
    """Positivity of one assessment over its rows (targets) of mrd_result: positive when any is, negative
    only when every one was evaluable and negative, else NULL (a target not done is not a negative)."""
    return (
        f"CASE WHEN bool_or(is_positive) FILTER ({where}) THEN true "
        f"WHEN count(*) FILTER ({where}) = count(is_positive) FILTER ({where}) "
        f"AND count(*) FILTER ({where}) > 0 THEN false END"
    )


def _aggregate(suffix: str, where: str) -> str:
    evaluable = f"{where} AND is_positive IS NOT NULL"
    if suffix == "positive":
        return status_sql(where)
    return f"{'min(day)' if suffix == 'day' else 'max(value_fraction)'} FILTER ({evaluable})"


_NOT_NAME = re.compile(r"[^a-z0-9]+")
_NUMBER = re.compile(r"^[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?$")


class MrdNamingError(ValueError):
    """Two (time point, method) pairs that would give one column name, or an unknown method."""


_STATUS_COLUMN = re.compile(
    rf"^mrd[a-z0-9_]*_({'|'.join(METHOD_NAMES.values())})_({'|'.join(s for s, _, _ in STATUS_COLUMNS)})$"
)


def reads_thresholds(name: str, version: int) -> bool:
    """Whether NAME@vN decides MRD positivity from table mrd_threshold, itself or through the views it
    reads or joins (mrd_result v3, patient_mrd, cohort_patient v3); v1 and v2 fixed theirs in SQL."""
    definitions = {(d.name, d.version): d for d in load_definitions()}

    def reads(key: tuple[str, int]) -> bool:
        if key[0] == VIEW_NAME:
            return True
        d = definitions.get(key)
        if d is None:
            return False
        return "mrd_threshold" in d.depends or VIEW_NAME in d.joins or any(map(reads, d.view_dependencies))

    return reads((name, version))


def is_status_column(name: str) -> bool:
    """Whether `name` has the form of a generated MRD column (mrd_c2_mfc_positive): a declared attribute
    may not take it, or one name would mean two things."""
    return bool(_STATUS_COLUMN.match(name))


def time_point_stem(time_point: str) -> str:
    """The start of a time point's column names: 'C2' -> mrd_c2, 'MRD1' -> mrd1, 'Day 33' -> mrd_day_33.
    Two spellings with one stem (C2, c2) would share columns: the MRD loader quarantines the second."""
    point = _NOT_NAME.sub("_", time_point.lower()).strip("_")
    if not point:
        raise MrdNamingError(f"MRD time point {time_point!r} gives no column name (it needs a-z or 0-9)")
    return point if point.startswith("mrd") else f"mrd_{point}"


def column_prefix(time_point: str, method: str) -> str:
    """mrd_<time point>_<method>, e.g. ('C2', 'MFC') -> mrd_c2_mfc, ('MRD1', 'ASO-PCR') -> mrd1_pcr."""
    if method not in METHOD_NAMES:
        raise MrdNamingError(f"MRD method {method!r} is not one of {', '.join(METHOD_NAMES)}")
    return f"{time_point_stem(time_point)}_{METHOD_NAMES[method]}"


@dataclass(frozen=True)
class MrdPair:
    time_point: str
    method: str

    @property
    def prefix(self) -> str:
        return column_prefix(self.time_point, self.method)

    def column_descriptions(self) -> dict[str, str]:
        """Each column of the pair, with what it says."""
        what = f"MRD at {self.time_point} by {self.method}"
        return {f"{self.prefix}_{suffix}": f"{what}: {text}" for suffix, _, text in STATUS_COLUMNS}


def mrd_pairs(con: duckdb.DuckDBPyConnection) -> list[MrdPair]:
    """The (time point, method) pairs of the current MRD results of consented patients (none before
    mrd_result v3 is applied)."""
    applied = con.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = 'main' AND table_name = $name",
        {"name": SOURCE},
    ).fetchall()
    if not applied:
        return []
    rows = con.execute(f'SELECT DISTINCT time_point, method FROM "{SOURCE}"').fetchall()
    return [MrdPair(time_point, method) for time_point, method in rows]


_PAIR_FILTER = re.compile(r"time_point = '((?:[^']|'')*)' AND method = '([^']*)'")


def pairs_in_sql(sql: str) -> list[MrdPair]:
    """The pairs a released patient_mrd SELECT has columns for (its columns, whatever the data holds now)."""
    found = {MrdPair(tp.replace("''", "'"), method) for tp, method in _PAIR_FILTER.findall(sql)}
    return sorted(found, key=lambda p: (p.prefix, p.time_point, p.method))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def checked_pairs(pairs: list[MrdPair]) -> list[MrdPair]:
    """The pairs in column order; two pairs that give one name (C2 and c2) are refused, naming both."""
    by_prefix: dict[str, MrdPair] = {}
    for pair in sorted(set(pairs), key=lambda p: (p.prefix, p.time_point, p.method)):
        taken = by_prefix.setdefault(pair.prefix, pair)
        if taken != pair:
            raise MrdNamingError(
                f"MRD time points {taken.time_point!r} ({taken.method}) and {pair.time_point!r} "
                f"({pair.method}) both give the columns {pair.prefix}_*: load one spelling of the time point"
            )
    return list(by_prefix.values())


def patient_mrd_sql(pairs: list[MrdPair], source: str = SOURCE) -> str:
    """The SELECT of the wide MRD view: one row per patient with an MRD result, three columns per pair."""
    selects = ["    patient_id"]
    for pair in checked_pairs(pairs):
        where = f"time_point = {_literal(pair.time_point)} AND method = {_literal(pair.method)}"
        selects += [
            f'    CAST({_aggregate(suffix, where)} AS {sql_type}) AS "{pair.prefix}_{suffix}"'
            for suffix, sql_type, _ in STATUS_COLUMNS
        ]
    body = ",\n".join(selects)
    return f"SELECT\n{body}\nFROM {source}\nGROUP BY patient_id"


@dataclass(frozen=True)
class ThresholdRow:
    method: str
    time_point: str  # "*": every time point without a row of its own
    threshold: float  # a fraction of cells
    positive_at: str  # ">=" or ">"
    source: str


def parse_threshold_override(text: str) -> tuple[str, float]:
    """METHOD=VALUE, the value a fraction (1e-4) or a percentage (0.01%): (method, fraction)."""
    method, sep, value = text.partition("=")
    method, value = method.strip(), value.strip()
    if not sep or method not in METHOD_NAMES:
        raise ValueError(
            f"--mrd-threshold {text!r}: expected METHOD=VALUE with METHOD one of {', '.join(METHOD_NAMES)} "
            "and VALUE a fraction (1e-4) or a percentage (0.01%)"
        )
    percent = value.endswith("%")
    if not _NUMBER.match(value.removesuffix("%")):
        raise ValueError(f"--mrd-threshold {text!r}: {value!r} is not a number")
    # In decimal: 0.07% is then exactly the double of 0.0007, as the loader stores a level sent in percent.
    try:
        exact = Decimal(value.removesuffix("%")) / (100 if percent else 1)
    except ArithmeticError:  # an exponent beyond what a decimal holds
        exact = Decimal(2)
    fraction = float(exact)
    if exact and not fraction:
        raise ValueError(f"--mrd-threshold {text!r}: {value} is below any level a laboratory measures")
    if not (math.isfinite(fraction) and 0 <= fraction <= 1):
        raise ValueError(f"--mrd-threshold {text!r}: a threshold is a fraction of cells, 0 to 1 (0% to 100%)")
    return method, fraction


def overridden(rows: list[ThresholdRow], overrides: dict[str, float]) -> list[ThresholdRow]:
    """The threshold table with each overridden method at one threshold for every time point: positive at
    or above it, or, for 0, at any detectable level (a quantified 0 is not positive)."""
    kept = [r for r in rows if r.method not in overrides]
    given = [
        ThresholdRow(method, "*", value, ">" if value == 0 else ">=", f"--mrd-threshold {method}={value:g}")
        for method, value in sorted(overrides.items())
    ]
    return kept + given


def threshold_cte(rows: list[ThresholdRow]) -> str:
    """`WITH mrd_threshold AS (...)` holding the rows: put before mrd_result v3's SELECT, it stands in for
    the table."""
    values = ",\n    ".join(
        f"({_literal(r.method)}, {_literal(r.time_point)}, CAST({r.threshold!r} AS DOUBLE), "
        f"{_literal(r.positive_at)}, {_literal(r.source)})"
        for r in rows
    )
    return (
        "WITH mrd_threshold (method, time_point, threshold, positive_at, source) AS (\n"
        f"    VALUES\n    {values}\n)\n"
    )


# Columns of cohort_patient that summarise one time point over every method (the seed letter's MRD1).
TIME_POINT_SUMMARIES = {"mrd1_positive": "MRD1"}


def rethresholded_sql(
    cohort: str,
    cohort_columns: list[str],
    pairs: list[MrdPair],
    rows: list[ThresholdRow],
    overrides: dict[str, float],
    mrd_result_sql: str,
) -> str:
    """A subquery with the rows of `cohort` whose MRD positivity columns are decided again at the
    overridden thresholds: the pairs of the overridden methods, and the time-point summaries
    (mrd1_positive) of the time points they have. The SELECT of mrd_result v3 runs under a CTE that stands
    in for table mrd_threshold, so positivity follows the one rule of that view."""
    changed = [p for p in checked_pairs(pairs) if p.method in overrides]
    # _day and _value too: which results are evaluable can change with the threshold (a PNQ result).
    selects: dict[str, str] = {}
    for pair in changed:
        where = f"time_point = {_literal(pair.time_point)} AND method = {_literal(pair.method)}"
        for suffix, sql_type, _ in STATUS_COLUMNS:
            column = f"{pair.prefix}_{suffix}"
            if column in cohort_columns:
                selects[column] = f"CAST({_aggregate(suffix, where)} AS {sql_type})"
    points = {p.time_point.lower() for p in changed}
    for column, time_point in TIME_POINT_SUMMARIES.items():
        if time_point.lower() in points and column in cohort_columns:
            selects[column] = status_sql(f"lower(time_point) = {_literal(time_point.lower())}")
    if not selects:
        raise MrdNamingError(
            f"--mrd-threshold {', '.join(sorted(overrides))}: {cohort} has no MRD status column of that "
            "method (mrd_<time point>_<method>_positive): the threshold would change nothing"
        )
    results = f"({threshold_cte(overridden(rows, overrides))}{mrd_result_sql}) AS r"
    columns = ", ".join(f'{sql} AS "{column}"' for column, sql in selects.items())
    statuses = f"(SELECT patient_id, {columns} FROM {results} GROUP BY patient_id) AS o"
    replacing = ", ".join(f'o."{c}" AS "{c}"' for c in selects)
    return (
        f"(SELECT c.* REPLACE ({replacing}) FROM {cohort} AS c LEFT JOIN {statuses} USING (patient_id)) AS c"
    )
