"""Trial-record ETL: a cooperative group's patient export (layouts graall, fralle, hovon_aml, ...) into
enrolment, baseline, treatment_response and outcome_event, as day offsets from diagnosis (no dates are
stored), plus the layout's declared attributes (attribute, attribute_value) and protocols (protocol).

Times come as dates (counted from the diagnosis date) or, from a source that sends no dates, as days or
months since diagnosis. A cross-field rule about one fact (a relapse without a CR) withholds that fact
only: the patient and their other facts load (records.clinical_fact_rules, docs/formats/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl.errors import CgdwError
from etl.load import linking
from etl.load.framework import Batch, LoadContext
from etl.load.layout import CodeList, DeclaredProtocol, Layout
from etl.load.readers import LINE
from etl.load.records import RULE_EXPLANATIONS, ClinicalRecordV1, FactRule, clinical_fact_rules
from etl.load.snapshot import merge_snapshot
from etl.load.tabular import TabularLoader
from etl.load.transform import RELATIVE_TYPES, days_between, issues_where, parse_field, quoted, unlisted_codes
from etl.warehouse import fetch_value, query_frame
from schema.vocabulary import DIAGNOSES

# Each time since diagnosis and the date field it is counted from, when the layout gives dates.
TIME_FIELDS = {
    "cr_day": "cr_date",
    "hsct_day": "hsct_date",
    "relapse_day": "relapse_date",
    "second_relapse_day": "second_relapse_date",
    "death_day": "death_date",
    "last_contact_day": "last_contact_date",
}
# Derived canonical fields and the layout field they are computed from (for messages in source terms).
DERIVED_FROM = {"diagnosis_year": "diagnosis_date", **TIME_FIELDS}

STAGE = "cgdw_clinical_stage"
WITHDRAWN = "cgdw_withdrawn_patients"

# The canonical fields a clinical layout may map, with their type after parsing.
CANONICAL_FIELDS: dict[str, pl.DataType] = {
    "source_patient_id": pl.String(),
    "protocol_code": pl.String(),
    "sex": pl.String(),
    "age_years": pl.Float64(),
    "diagnosis_date": pl.Date(),
    "diagnosis_year": pl.Int64(),
    "diagnosis": pl.String(),
    "complete_remission": pl.Boolean(),
    "vital_status": pl.String(),
    "last_contact_date": pl.Date(),
    "consent_status": pl.String(),
    "wbc_g_per_l": pl.Float64(),
    "cns_involvement": pl.Boolean(),
    "mediastinal_mass": pl.Boolean(),
    "prednisone_response": pl.String(),
    "cr_date": pl.Date(),
    "hsct_in_cr1": pl.Boolean(),
    "hsct_date": pl.Date(),
    "relapse_date": pl.Date(),
    "second_relapse_date": pl.Date(),
    "death_date": pl.Date(),
    "death_cause": pl.String(),
    **dict.fromkeys(TIME_FIELDS, pl.Float64()),
}
# The fields every clinical layout maps (sex and age may still be optional values: required = false),
# and the last contact, as a date or a time since diagnosis: OS is measured to it.
REQUIRED_FIELDS = (
    "source_patient_id", "protocol_code", "sex", "age_years", "diagnosis", "complete_remission",
    "vital_status", "consent_status",
)  # fmt: skip


def _time(name: str) -> pl.Expr:
    """A time since diagnosis: as the layout gives it, else from its date and the diagnosis date."""
    return pl.coalesce(pl.col(name), days_between(TIME_FIELDS[name], "diagnosis_date")).alias(name)


def harmonise(fields: pl.DataFrame) -> pl.DataFrame:
    """Canonical clinical records: absolute dates become days from diagnosis, the diagnosis date a year."""
    year = pl.col("diagnosis_date").dt.year().cast(pl.Int64)
    return fields.select(
        pl.col(LINE),
        "source_patient_id",
        "protocol_code",
        "sex",
        "age_years",
        "diagnosis",
        pl.coalesce(year, pl.col("diagnosis_year")).alias("diagnosis_year"),
        "wbc_g_per_l",
        "cns_involvement",
        "mediastinal_mass",
        "prednisone_response",
        "complete_remission",
        _time("cr_day"),
        "hsct_in_cr1",
        _time("hsct_day"),
        _time("relapse_day"),
        _time("second_relapse_day"),
        "vital_status",
        _time("death_day"),
        "death_cause",
        _time("last_contact_day"),
        "consent_status",
    )


def layout_problems(layout: Layout) -> list[str]:
    """Why a layout does not fit clinical records (empty: it fits)."""
    mapped = layout.fields
    problems = []
    unknown = sorted(set(mapped) - set(CANONICAL_FIELDS))
    if unknown:
        problems.append(f"unknown fields {', '.join(unknown)}")
    missing = [name for name in REQUIRED_FIELDS if name not in mapped]
    if "last_contact_date" not in mapped and "last_contact_day" not in mapped:
        missing.append("last_contact_date (or last_contact_day)")
    if missing:
        problems.append(f"required fields not mapped: {', '.join(missing)}")
    for time, date in TIME_FIELDS.items():
        if time in mapped and date in mapped:
            problems.append(f"{date} and {time} are one time: map one of them")
    for name, spec in mapped.items():
        relative = spec.type in RELATIVE_TYPES
        if name in TIME_FIELDS and not relative:
            problems.append(f"{name} is a time since diagnosis: type days or months, not {spec.type}")
        if relative and name not in TIME_FIELDS:
            problems.append(
                f"{name}: type {spec.type} is for the times since diagnosis ({', '.join(TIME_FIELDS)})"
            )
    dated = [name for name in mapped if name in TIME_FIELDS.values()]
    dated += [f"attribute {a.name}" for a in layout.attributes.values() if a.type == "date"]
    if dated and "diagnosis_date" not in mapped:
        problems.append(f"{', '.join(dated)} need diagnosis_date: days are counted from it")
    if "diagnosis_date" in mapped and "diagnosis_year" in mapped:
        problems.append("diagnosis_year is the year of diagnosis_date: map one of them")
    diagnosis = mapped.get("diagnosis")
    if diagnosis is not None and diagnosis.codes is not None:
        problems += _diagnosis_problems(diagnosis.codes)
    return problems


def _diagnosis_problems(codes: CodeList) -> list[str]:
    """A diagnosis code list translates to the canonical diagnoses; a source's own code is kept by an
    open list, not mapped to a name of its own."""
    others = sorted({str(v) for v in codes.mapping.values()} - set(DIAGNOSES))
    if not others:
        return []
    return [
        f"code list {codes.name} maps to {', '.join(others)}, not a canonical diagnosis "
        f"({', '.join(DIAGNOSES)}): map to one of them, or leave the code out of an open list (open = true "
        "keeps it as written)"
    ]


class ClinicalLoader(TabularLoader):
    kind = "clinical"
    schema = ClinicalRecordV1

    def __init__(self, layout: Layout, secret: bytes) -> None:
        super().__init__(layout, secret)
        if not layout.trial_group:
            raise CgdwError(f"clinical layout {layout.name!r} must name its trial_group")
        problems = layout_problems(layout)
        if problems:
            raise CgdwError(f"layout {layout.name!r} does not fit clinical records: {'; '.join(problems)}")
        self.fact_rules = clinical_fact_rules(layout.fields)
        self.protocols_added = 0

    def source_column(self, field: str) -> str:
        layout = self.layout
        return layout.source_column(field) or layout.source_column(DERIVED_FROM.get(field, "")) or field

    def harmonise(self, fields: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
        # A layout may leave optional fields out (its source does not collect them): they are NULL.
        fields = fields.with_columns(
            pl.lit(None, dtype).alias(name)
            for name, dtype in CANONICAL_FIELDS.items()
            if name not in fields.columns
        )
        return harmonise(fields)

    def prepare(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        super().prepare(con, path)
        self.protocols_added = sum(self._register_protocol(con, p) for p in self.layout.protocols)

    def _register_protocol(self, con: duckdb.DuckDBPyConnection, declared: DeclaredProtocol) -> bool:
        """Add a declared protocol the warehouse does not know (a new trial needs no migration); one it
        knows stays as it is, seeded or registered before, and a different declaration is reported."""
        values: dict[str, object] = {
            "code": declared.code, "group": declared.trial_group, "population": declared.population,
            "disease": declared.disease, "registry": declared.registry_id, "title": declared.title,
        }  # fmt: skip
        added = fetch_value(
            con,
            """
            INSERT INTO protocol (protocol_code, trial_group, population, disease, registry_id, title)
            SELECT $code, $group, $population, $disease, $registry, $title
            WHERE NOT EXISTS (SELECT 1 FROM protocol WHERE protocol_code = $code)
            """,
            values,
        )
        if added:
            return True
        known = con.execute(
            "SELECT trial_group, population, disease FROM protocol WHERE protocol_code = $code",
            {"code": declared.code},
        ).fetchone()
        if known != (declared.trial_group, declared.population, declared.disease):
            self.warnings.append(
                f"protocol {declared.code} is in the warehouse as {' / '.join(map(str, known or ()))}; the "
                f"layout declares {declared.trial_group} / {declared.population} / {declared.disease}: the "
                "warehouse's stays"
            )
        return False

    def checked(self, batch: Batch) -> Batch:
        # Without a diagnosis date no day offset exists: report the date, not every offset after it.
        origin = self.source_column("diagnosis_date")
        undated = batch.issues.filter(pl.col("column") == origin).get_column(LINE)
        offsets = [self.source_column(name) for name in TIME_FIELDS]
        cascade = pl.col(LINE).is_in(undated.implode()) & pl.col("column").is_in(offsets)
        batch.issues = batch.issues.filter(~cascade)
        self.warnings.extend(unlisted_codes(batch.raw, self.layout))
        return self._withhold_facts(batch)

    def _withhold_facts(self, batch: Batch) -> Batch:
        """Apply the per-fact rules in order: a line that breaks one loads without that fact, which is
        quarantined (Batch.fact_issues) with the rule and the source value."""
        records, issues = batch.records, [batch.fact_issues]
        for rule in self.fact_rules:
            broken = rule.broken.fill_null(False)
            issues.append(self._fact_issues(records.select(LINE, broken.alias("broken")), batch.raw, rule))
            records = records.with_columns(
                pl.when(broken).then(None).otherwise(pl.col(name)).alias(name) for name in rule.withholds
            )
        batch.records, batch.fact_issues = records, pl.concat(issues)
        return batch

    def _fact_issues(self, broken: pl.DataFrame, raw: pl.DataFrame, rule: FactRule) -> pl.DataFrame:
        # Named by the first of the rule's fields that the layout maps (a transplant without a date column
        # is named by its flag).
        fields = [rule.reported, *rule.withholds]
        column = next((c for c in map(self.source_column, fields) if c in raw.columns), rule.reported)
        value = pl.col(column) if column in raw.columns else pl.lit(None, pl.String)
        lines = broken.join(raw.select(LINE, value.alias("value")), on=LINE, how="left")
        shown = pl.coalesce(pl.format("'{}'", quoted(pl.col("value"))), pl.lit("empty"))
        why = f"{RULE_EXPLANATIONS[rule.name]}; {rule.withheld}, the patient's other facts load"
        message = pl.format(f"{column} = {{}}: {why}", shown)
        return issues_where(lines, pl.col("broken"), column, pl.col("value"), rule.name, message)

    def attribute_origin(self) -> pl.Expr | None:
        diagnosis = self.layout.fields.get("diagnosis_date")  # required by a `date` attribute
        return parse_field(diagnosis, self.layout) if diagnosis is not None else None

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        known = [code for (code,) in con.execute("SELECT protocol_code FROM protocol").fetchall()]
        column = self.source_column("protocol_code")
        unknown = pl.col("protocol_code").is_not_null() & ~pl.col("protocol_code").is_in(known)
        return issues_where(
            batch.records,
            unknown,
            column,
            pl.col("protocol_code"),
            "known_protocol",
            pl.format("protocol {} is not in the protocol reference table", pl.col("protocol_code")),
        )

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        records = batch.records
        assert self.trial_group is not None
        keyed = linking.with_patient_key(records, self.secret, pl.lit(self.trial_group))
        linking.stage(con, STAGE, keyed.rename({LINE: "source_line"}))
        new_patients = linking.create_missing_patients(con, STAGE, self.trial_group, ctx)
        # Every patient exists now: resolve their ids once, for the six merges below.
        resolved = linking.with_patient_id(con, keyed).rename({LINE: "source_line"})
        source = linking.stage(con, STAGE, resolved)
        in_file = f"SELECT patient_id FROM ({source})"

        def merge(table: str, columns: dict[str, str]) -> dict[str, int]:
            """Merge into `table` its columns (name -> expression over the stage)."""
            select = ", ".join(f"{expr} AS {name}" for name, expr in columns.items())
            sql = f"SELECT patient_id, {select}, source_line FROM ({source})"
            return merge_snapshot(
                con, table, list(columns), sql, in_file, ctx.run_id, ctx.source_file_id
            ).as_dict()

        def same_names(*names: str) -> dict[str, str]:
            return {name: name for name in names}

        counts: dict[str, Any] = {"patient": {"inserted": new_patients}}
        if self.layout.protocols:
            counts["protocol"] = {"inserted": self.protocols_added}
        # A withdrawal recorded in the warehouse stands until `cgdw consent restore`: an export that still
        # says 'given' must not bring the patient back. The set is read once, before the merge supersedes
        # rows, and kept as a frame so that both merge statements see the same patients.
        withdrawn = query_frame(
            con,
            "SELECT patient_id FROM enrolment "
            "WHERE superseded_by_run_id IS NULL AND consent_status = 'withdrawn'",
        )
        con.register(WITHDRAWN, withdrawn.to_arrow())
        kept = fetch_value(
            con,
            f"SELECT count(*) FROM ({source}) WHERE consent_status IS DISTINCT FROM 'withdrawn' "
            f"AND patient_id IN (SELECT patient_id FROM {WITHDRAWN})",
        )
        if kept:
            self.warnings.append(
                f"{kept} patients whose consent was withdrawn in cgdw are not 'withdrawn' in this export: "
                "the withdrawal stands (if they consent again, record it with `cgdw consent restore`)"
            )
        counts["enrolment"] = merge(
            "enrolment",
            {
                **same_names("protocol_code", "diagnosis", "diagnosis_year", "sex"),
                "age_at_diagnosis_years": "age_years",
                "consent_status": f"CASE WHEN patient_id IN (SELECT patient_id FROM {WITHDRAWN}) "
                "THEN 'withdrawn' ELSE consent_status END",
            },
        )
        con.unregister(WITHDRAWN)
        counts["baseline"] = merge(
            "baseline", same_names("wbc_g_per_l", "cns_involvement", "mediastinal_mass")
        )
        counts["treatment_response"] = merge(
            "treatment_response",
            same_names("complete_remission", "cr_day", "prednisone_response", "hsct_in_cr1", "hsct_day"),
        )
        events = f"""
            SELECT patient_id, 'relapse' AS event_type, 1 AS event_seq, relapse_day AS day,
                   NULL AS cause, NULL::BOOLEAN AS in_cr, source_line
            FROM ({source}) WHERE relapse_day IS NOT NULL
            UNION ALL
            SELECT patient_id, 'relapse', 2, second_relapse_day, NULL, NULL, source_line
            FROM ({source}) WHERE second_relapse_day IS NOT NULL
            UNION ALL
            SELECT patient_id, 'death', 1, death_day, death_cause,
                   complete_remission AND relapse_day IS NULL, source_line
            FROM ({source}) WHERE death_day IS NOT NULL
            UNION ALL
            SELECT patient_id, 'last_follow_up', 1, last_contact_day, NULL, NULL, source_line
            FROM ({source})
        """
        counts["outcome_event"] = merge_snapshot(
            con,
            "outcome_event",
            ["event_type", "event_seq", "day", "cause", "in_cr"],
            events,
            in_file,
            ctx.run_id,
            ctx.source_file_id,
        ).as_dict()
        counts |= self.merge_attributes(con, batch, source, in_file, ctx)
        return counts

    def finish(self, con: duckdb.DuckDBPyConnection, ctx: LoadContext) -> dict[str, Any]:
        in_file = f"SELECT patient_id FROM {STAGE}"  # registered by write, with patient ids resolved
        absent = [
            key
            for (key,) in con.execute(
                f"""
                SELECT p.patient_key FROM patient AS p
                WHERE p.trial_group = $group AND p.patient_id NOT IN ({in_file}) ORDER BY p.patient_key
                """,
                {"group": self.trial_group},
            ).fetchall()
        ]
        if absent:
            # Which ones, for the data manager to ask the trial office: their keys, never their numbers.
            self.audit["absent_patients"] = absent
            self.warnings.append(
                f"{len(absent)} {self.trial_group} patients already in the warehouse are not in this "
                "snapshot (absent or rejected): their rows are kept unchanged (their patient keys: "
                "absent_patients in the run's counts_json)"
            )
        return {}
