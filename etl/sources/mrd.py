"""MRD ETL (layout mrd): results of every method in one long format into mrd_measurement.

Values come in the laboratory's unit (fraction, percent, log10, cells per million) and are normalised
to a fraction of cells; the value and unit as sent are kept. Positivity at a threshold is not decided
here: it is computed in SQL from the normalised value and the qualitative result.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.load import linking
from etl.load.framework import Batch, LoadContext
from etl.load.readers import LINE
from etl.load.records import MrdMeasurementV1
from etl.load.snapshot import merge_snapshot
from etl.load.tabular import TabularLoader
from etl.load.transform import issues_where, unlisted_codes
from etl.warehouse import query_frame
from queries.mrd import MrdNamingError, time_point_stem

STAGE = "cgdw_mrd_stage"
HELD = "cgdw_mrd_held_back"
COLUMNS = [
    "sample_id", "time_point", "day", "method", "target", "value_fraction", "value_original", "unit_original",
    "limit_of_detection", "quantitative_range_low", "qualitative_result",
]  # fmt: skip
# mrd_measurement columns from the staged records (levels as fractions).
SELECT_COLUMNS = (
    ", ".join(COLUMNS)
    .replace("limit_of_detection", "lod_fraction AS limit_of_detection")
    .replace("quantitative_range_low", "range_low_fraction AS quantitative_range_low")
)


SIGNIFICANT_DIGITS = 12


def decimal_rounded(x: pl.Expr) -> pl.Expr:
    """x to 12 significant digits, as the double nearest that decimal: an integer divided by an exact power
    of ten. 0.01% and 100 per million then give exactly the double of 1e-4 (0.01 / 100 and 100 * 1e-6 are
    not), so a level sent at the threshold is at the threshold whatever its unit. Levels below 1e-11 (whose
    power of ten is not exact) or above 1e11 are kept as computed."""
    digits = (SIGNIFICANT_DIGITS - 1) - x.abs().log10().floor()
    scale = pl.lit(10.0).pow(digits)
    exact = (x != 0) & (digits >= 0) & (digits <= 22)
    return pl.when(exact).then((x * scale).round(0) / scale).otherwise(x)


def to_fraction(value: pl.Expr, unit: pl.Expr) -> pl.Expr:
    """A level in `unit` as a fraction of cells (1e-4 = 0.01% = -4 log10 = 100 per million)."""
    return decimal_rounded(
        pl.when(unit == "fraction")
        .then(value)
        .when(unit == "percent")
        .then(value / 100)
        .when(unit == "log10")
        .then(pl.lit(10.0).pow(value))
        .when(unit == "per_million")
        .then(value / 1e6)
    )


class MrdLoader(TabularLoader):
    kind = "mrd"
    schema = MrdMeasurementV1
    staged: pl.DataFrame  # the batch's records with patient and sample resolved (reference_issues)

    def source_column(self, field: str) -> str:
        as_sent = {
            "value_fraction": "value",
            "lod_fraction": "limit_of_detection",
            "range_low_fraction": "quantitative_range_low",
        }
        return super().source_column(as_sent.get(field, field))

    def harmonise(self, fields: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
        return fields.with_columns(
            to_fraction(pl.col("value"), pl.col("unit")).alias("value_fraction"),
            to_fraction(pl.col("limit_of_detection"), pl.col("unit")).alias("lod_fraction"),
            to_fraction(pl.col("quantitative_range_low"), pl.col("unit")).alias("range_low_fraction"),
            raw.get_column(self.source_column("value")).alias("value_original"),
            raw.get_column(self.source_column("unit")).alias("unit_original"),
        )

    def batches(self, path: Path) -> Iterator[Batch]:
        for batch in super().batches(path):
            # A trial group outside the list is kept (its patients must still exist): flagged, not refused.
            self.warnings.extend(unlisted_codes(batch.raw, self.layout))
            yield batch

    def _resolved(self, con: duckdb.DuckDBPyConnection, records: pl.DataFrame) -> pl.DataFrame:
        """The records with their patient and sample resolved, once per batch (reference checks and write
        both read them: joining the 64-character keys again cost a second a million rows)."""
        keyed = linking.with_patient_key(records, self.secret, pl.col("trial_group"))
        con.register(STAGE, keyed.to_arrow())
        try:
            return query_frame(
                con,
                f"""
                SELECT s.*, p.patient_id, k.sample_id, k.patient_id AS sample_patient_id
                FROM {STAGE} AS s
                LEFT JOIN patient AS p USING (patient_key)
                LEFT JOIN sample AS k ON k.sample_key = s.sample_key
                """,
            )
        finally:
            con.unregister(STAGE)

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        records = batch.records.filter(
            pl.col("trial_group").is_not_null() & pl.col("source_patient_id").is_not_null()
        )
        staged = self.staged = self._resolved(con, records)
        unknown_sample = (
            pl.col("sample_key").is_not_null()
            & pl.col("patient_id").is_not_null()
            & (pl.col("sample_id").is_null() | (pl.col("sample_patient_id") != pl.col("patient_id")))
        )
        return pl.concat(
            [
                self._time_point_issues(con, records),
                linking.missing_patient_issues(
                    staged, pl.col("patient_id").is_null(), self.source_column("source_patient_id")
                ),
                issues_where(
                    staged,
                    unknown_sample,
                    self.source_column("sample_key"),
                    pl.col("sample_key"),
                    "known_sample",
                    pl.format(
                        "sample {} is not a sample of this patient in the warehouse", pl.col("sample_key")
                    ),
                ),
            ]
        )

    def _time_point_issues(self, con: duckdb.DuckDBPyConnection, records: pl.DataFrame) -> pl.DataFrame:
        """A time point names columns of cohort_patient (mrd_c2_mfc_positive, queries/mrd.py): one that gives
        no name, or a second spelling of one (c2 beside C2, here or in the warehouse), is quarantined:
        which spelling is right is not guessed."""
        current = [
            tp for (tp,) in con.execute(
                "SELECT DISTINCT time_point FROM mrd_measurement WHERE superseded_by_run_id IS NULL"
            ).fetchall()
        ]  # fmt: skip
        sent = records.get_column("time_point").drop_nulls().unique().to_list()
        stems: dict[str, str | None] = {}
        for time_point in {*current, *sent}:
            try:
                stems[time_point] = time_point_stem(time_point)
            except MrdNamingError:
                stems[time_point] = None
        spellings: dict[str, set[str]] = {}
        for time_point in {*current, *sent}:
            if stems[time_point] is not None:
                spellings.setdefault(str(stems[time_point]), set()).add(time_point)
        problems = {}
        for time_point in sent:
            stem = stems[time_point]
            others = sorted(spellings.get(str(stem), set()) - {time_point})
            if stem is None:
                problems[time_point] = f"time point {time_point!r} gives no column name (it needs a-z or 0-9)"
            elif time_point in current or not others:
                continue  # the warehouse's spelling, or the only one
            else:
                where = "in the warehouse" if set(others) & set(current) else "in this file"
                problems[time_point] = (
                    f"time point {time_point!r} is also written {', '.join(map(repr, others))} {where}: both "
                    f"would name the columns {stem}_*; load one spelling"
                )
        column = self.source_column("time_point")
        return issues_where(
            records,
            pl.col("time_point").is_in(list(problems)),
            column,
            pl.col("time_point"),
            "time_point_name",
            pl.col("time_point").replace_strict(problems, default=None, return_dtype=pl.String),
        )

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        # The lines that load are among those resolved by reference_issues (a patient and trial group).
        kept = self.staged.join(batch.records.select(LINE), on=LINE, how="semi")
        con.register(STAGE, kept.rename({LINE: "source_line"}).to_arrow())
        source = f"SELECT * FROM {STAGE}"
        # A snapshot per patient, time point and method: labs send MRD one assessment at a time, so a file
        # of C3 results leaves the patient's C2 results as they are; a corrected C2 file by MFC supersedes
        # the C2 MFC targets it no longer holds. An assessment with a quarantined line is held back (its
        # old rows stay current: the line may be the correction), and so is every assessment of a patient
        # whose quarantined line does not say which assessment it is.
        held = self._held_back(con, batch.rejected_records)
        counts = merge_snapshot(
            con,
            "mrd_measurement",
            COLUMNS,
            f"SELECT patient_id, {SELECT_COLUMNS}, source_line FROM ({source})",
            f"SELECT patient_id FROM ({source})",
            ctx.run_id,
            ctx.source_file_id,
            scope_filter=(
                f"EXISTS (SELECT 1 FROM ({source}) AS k WHERE k.patient_id = t.patient_id "
                "AND k.time_point = t.time_point AND k.method = t.method) "
                f"AND NOT EXISTS (SELECT 1 FROM {HELD} AS h WHERE h.patient_id = t.patient_id "
                "AND (h.time_point IS NULL OR h.method IS NULL "
                "OR (h.time_point = t.time_point AND h.method = t.method)))"
            ),
        )
        con.unregister(HELD)
        return {"mrd_measurement": counts.as_dict() | ({"held_back": held} if held else {})}

    def _held_back(self, con: duckdb.DuckDBPyConnection, rejected: pl.DataFrame) -> int:
        """Register HELD: (patient_id, time_point, method) of the quarantined lines whose patient is known;
        returns how many assessments (or whole patients) are held back."""
        columns = {"patient_id": pl.Int64, "time_point": pl.String, "method": pl.String}
        held = pl.DataFrame(schema=columns)
        if rejected.height and {"trial_group", "source_patient_id"} <= set(rejected.columns):
            readable = rejected.filter(
                pl.col("trial_group").is_not_null() & pl.col("source_patient_id").is_not_null()
            )
            keyed = linking.with_patient_key(readable, self.secret, pl.col("trial_group"))
            keys = f"{HELD}_keys"  # not STAGE: the file's own records stay registered under that name
            linking.stage(con, keys, keyed.select("patient_key", "time_point", "method"))
            held = query_frame(
                con,
                f"SELECT DISTINCT p.patient_id, s.time_point, s.method FROM {keys} AS s "
                "JOIN patient AS p USING (patient_key)",
            ).cast(columns)  # type: ignore[arg-type]
            con.unregister(keys)
        con.register(HELD, held.to_arrow())
        return held.height
