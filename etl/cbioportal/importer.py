"""Import of a cBioPortal study directory: one ETL run per data file, through the load framework.

    meta_study.txt -> study (identifier, cancer type, reference genome)
    meta_*.txt     -> data files, by genetic_alteration_type / datatype (never by guessing file names)
    patients -> samples -> mutations (MAF loader) -> discrete CNA -> SEG (SEG loader)

Every file is its own transaction with the usual validation, quarantine, lineage and sha256 no-op. The
patients of a study form the trial group `cBioPortal:<cancer_study_identifier>`, pseudonymised with the
warehouse's HMAC key like every other source: the study's PATIENT_ID is never stored. cBioPortal times
are months from diagnosis; they become day offsets, days = round(months * 30.4375). The mapping and the
decisions are in docs/cbioportal.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pandera.polars as pa
import polars as pl

from etl.cbioportal.format import (
    ASSEMBLY_OF_GENOME,
    CNA_CALL_TYPES,
    CNA_MISSING,
    DFS_STATUS,
    DISCRETE_CNA_META,
    MUTATION_META,
    OS_STATUS,
    PATIENT_META,
    SAMPLE_META,
    SEG_META,
    ClinicalFile,
    is_missing,
    months_to_days,
    read_clinical,
    read_meta,
    survival_status,
)
from etl.errors import CgdwError, FileRejected
from etl.load import linking
from etl.load.attributes import (
    AttributeSpec,
    merge_attribute_values,
    register_attributes,
    snake_case,
    typed_values,
)
from etl.load.framework import (
    DEFAULT_MAX_REJECT_FRACTION,
    Batch,
    LoadContext,
    LoadReport,
    Progress,
    SourceLoader,
    run_load,
)
from etl.load.linking import known_samples
from etl.load.readers import LINE
from etl.load.records import RULE_EXPLANATIONS
from etl.load.snapshot import merge_snapshot
from etl.load.transform import ISSUE_SCHEMA, issues_where
from etl.load.validation import schema_issues
from etl.privacy import identifier_columns, load_pseudonym_key, patient_keys
from etl.sources.copy_number import REFERENCE_EXONS, merge_calls
from etl.sources.samples import SampleManifestLoader
from queries.mrd import is_status_column
from schema.models import CN_METHODS, DIAGNOSES

LAYOUT = "cbioportal"
# type_of_cancer (OncoTree code, lower case) -> warehouse diagnosis; anything else is 'other'.
DIAGNOSIS_OF_CANCER_TYPE = {
    "aml": "AML", "laml": "AML", "tll": "T-ALL", "tall": "T-ALL", "t-all": "T-ALL", "tlbl": "T-LBL",
    "bll": "B-ALL", "ball": "B-ALL", "b-all": "B-ALL", "mpal": "MPAL",
}  # fmt: skip
SEX_CODES = {"MALE": "M", "M": "M", "FEMALE": "F", "F": "F"}
# SAMPLE_TYPE values -> warehouse sample types; absent or other values (Metastasis, ...) are 'diagnosis'.
SAMPLE_TYPE_CODES = {
    "PRIMARY": "diagnosis", "PRIMARY TUMOR": "diagnosis", "DIAGNOSIS": "diagnosis",
    "RECURRENCE": "relapse", "RELAPSE": "relapse", "REMISSION": "remission", "FOLLOW-UP": "follow_up",
    "FOLLOW_UP": "follow_up", "GERMLINE": "germline", "NORMAL": "germline",
}  # fmt: skip
# Patient columns the importer maps to canonical facts; every other column is kept as a declared attribute.
PATIENT_ATTRIBUTES = (
    "PATIENT_ID", "OS_STATUS", "OS_MONTHS", "DFS_STATUS", "DFS_MONTHS", "EFS_STATUS", "EFS_MONTHS",
    "PFS_STATUS", "PFS_MONTHS", "SEX", "AGE", "DIAGNOSIS", "DIAGNOSIS_YEAR", "COMPLETE_REMISSION",
)  # fmt: skip
SAMPLE_ATTRIBUTES_READ = ("PATIENT_ID", "SAMPLE_ID", "SAMPLE_TYPE")
PATIENT_STAGE = "cgdw_cbio_patient_stage"
ATTRIBUTE_STAGE = "cgdw_cbio_attribute_stage"
SAMPLES_IN_FILE = "cgdw_cbio_samples_in_file"
WITHDRAWN = (
    "SELECT patient_id FROM enrolment WHERE superseded_by_run_id IS NULL AND consent_status = 'withdrawn'"
)
CNA_STAGE = "cgdw_cbio_cna_stage"
for _name in ("DFS", "EFS", "PFS"):
    RULE_EXPLANATIONS.setdefault(
        f"{_name.lower()}_within_os",
        f"the {_name} time cannot be after the OS time (last news): {_name} withheld",
    )


@dataclass(frozen=True)
class Study:
    """What the meta files say about a study."""

    directory: Path
    study_id: str
    name: str
    type_of_cancer: str
    assembly: str
    files: dict[tuple[str, str], Path]  # (genetic_alteration_type, datatype) -> data file
    warnings: tuple[str, ...] = ()

    @property
    def trial_group(self) -> str:
        return f"cBioPortal:{self.study_id}"

    @property
    def diagnosis(self) -> str:
        return DIAGNOSIS_OF_CANCER_TYPE.get(self.type_of_cancer.lower(), "other")


def read_study(directory: Path) -> Study:
    """The study of a cBioPortal directory, its data files found through the meta files' data_filename."""
    study_meta_path = directory / "meta_study.txt"
    if not study_meta_path.is_file():
        raise CgdwError(f"{directory}: no meta_study.txt: not a cBioPortal study directory")
    study_meta = read_meta(study_meta_path)
    study_id = study_meta.get("cancer_study_identifier", "")
    if not study_id:
        raise FileRejected(study_meta_path, "no cancer_study_identifier")
    genome = study_meta.get("reference_genome", "hg19")  # cBioPortal's default
    if genome.lower() not in ASSEMBLY_OF_GENOME:
        raise FileRejected(study_meta_path, f"reference_genome {genome!r} is not hg19 or hg38")
    files: dict[tuple[str, str], Path] = {}
    warnings: list[str] = []
    referenced = set()
    for meta_path in sorted(directory.glob("meta_*.txt")):
        if meta_path == study_meta_path:
            continue
        meta = read_meta(meta_path)
        pair = (meta.get("genetic_alteration_type", "").upper(), meta.get("datatype", "").upper())
        data_name = meta.get("data_filename")
        if not data_name:
            raise FileRejected(meta_path, "no data_filename")
        data_path = directory / data_name
        referenced.add(data_path.name)
        if not data_path.is_file():
            raise FileRejected(meta_path, f"data_filename {data_name} does not exist in {directory}")
        if pair not in (PATIENT_META, SAMPLE_META, MUTATION_META, DISCRETE_CNA_META, SEG_META):
            warnings.append(f"{meta_path.name}: {'/'.join(pair)} data ({data_name}) is not imported")
            continue
        if pair in files:
            raise FileRejected(meta_path, f"a second {'/'.join(pair)} file ({data_name}); cgdw reads one")
        files[pair] = data_path
    for orphan in sorted(p.name for p in directory.glob("data_*") if p.name not in referenced):
        warnings.append(f"{orphan} has no meta file naming it: not imported (cBioPortal ignores it too)")
    if PATIENT_META not in files:
        raise CgdwError(f"{directory}: no meta file for CLINICAL / PATIENT_ATTRIBUTES: nothing to import")
    return Study(
        directory=directory,
        study_id=study_id,
        name=study_meta.get("name", study_id),
        type_of_cancer=study_meta.get("type_of_cancer", ""),
        assembly=ASSEMBLY_OF_GENOME[genome.lower()],
        files=files,
        warnings=tuple(warnings),
    )


def clinical_frame(clinical: ClinicalFile) -> pl.DataFrame:
    """The rows as text (NULL for cBioPortal's missing values) with `_line`."""
    columns = {name: [None if is_missing(row[i]) else row[i] for row in clinical.rows]
               for i, name in enumerate(clinical.columns)}  # fmt: skip
    frame = pl.DataFrame(columns, schema=dict.fromkeys(clinical.columns, pl.String))
    return frame.with_columns(pl.Series(LINE, clinical.lines, dtype=pl.Int64))


def _check_columns(clinical: ClinicalFile, required: tuple[str, ...]) -> None:
    leaked = identifier_columns(clinical.columns)
    if leaked:
        raise FileRejected(
            clinical.path, f"columns {', '.join(leaked)} look like direct identifiers: remove them"
        )
    missing = [c for c in required if c not in clinical.columns]
    if missing:
        raise FileRejected(clinical.path, f"missing required columns: {', '.join(missing)}")


def _issue(line: int, column: str, value: str | None, rule: str, message: str) -> tuple[Any, ...]:
    return (line, column, value, rule, message)


def datatype_issues(raw: pl.DataFrame, clinical: ClinicalFile) -> list[tuple[Any, ...]]:
    """Values that contradict their column's declared datatype (NUMBER, BOOLEAN)."""
    issues = []
    for column, datatype in zip(clinical.columns, clinical.datatypes, strict=True):
        if datatype == "STRING":
            continue
        for line, value in raw.select(LINE, column).iter_rows():
            if value is None:
                continue
            if datatype == "NUMBER" and _number(value) is None:
                issues.append(
                    _issue(line, column, value, "datatype:NUMBER", f"{column} = {value!r}: not a number")
                )
            if datatype == "BOOLEAN" and value.upper() not in ("TRUE", "FALSE"):
                message = f"{column} = {value!r}: not TRUE/FALSE"
                issues.append(_issue(line, column, value, "datatype:BOOLEAN", message))
    return issues


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


class CbioPatientV1(pa.DataFrameModel):
    """One patient of a cBioPortal patient file, in warehouse terms."""

    source_patient_id: str = pa.Field(unique=True)
    os_dead: bool = pa.Field(nullable=True)
    os_day: float = pa.Field(nullable=True, ge=0)
    dfs_event: bool = pa.Field(nullable=True)
    dfs_day: float = pa.Field(nullable=True, ge=0)
    efs_event: bool = pa.Field(nullable=True)
    efs_day: float = pa.Field(nullable=True, ge=0)
    pfs_event: bool = pa.Field(nullable=True)
    pfs_day: float = pa.Field(nullable=True, ge=0)
    sex: str = pa.Field(nullable=True, isin=["M", "F"])
    age_years: float = pa.Field(nullable=True, ge=0, lt=110)
    diagnosis: str
    diagnosis_year: int = pa.Field(nullable=True, ge=1970, le=2100)
    complete_remission: bool = pa.Field(nullable=True)

    class Config:
        strict = False


# cBioPortal column each canonical field comes from (quarantine messages name what the user can fix).
PATIENT_SOURCE = {
    "source_patient_id": "PATIENT_ID", "os_dead": "OS_STATUS", "os_day": "OS_MONTHS",
    "dfs_event": "DFS_STATUS", "dfs_day": "DFS_MONTHS", "efs_event": "EFS_STATUS", "efs_day": "EFS_MONTHS",
    "pfs_event": "PFS_STATUS", "pfs_day": "PFS_MONTHS", "sex": "SEX", "age_years": "AGE",
    "diagnosis": "DIAGNOSIS", "diagnosis_year": "DIAGNOSIS_YEAR", "complete_remission": "COMPLETE_REMISSION",
}  # fmt: skip
# Endpoints a study reports ready-made (PREFIX_STATUS + PREFIX_MONTHS), stored in reported_endpoint.
REPORTED = ("dfs", "efs", "pfs")
# A STRING column with more distinct values than this is free text, not categories.
MAX_LEVELS = 50
# Column names of the generated attribute views: an attribute may not take one.
RESERVED_NAMES = frozenset({"patient_id", "sample_id", "patient_key"})
# Calendar dates as exports write them (ISO, day/month/year, year/month/day), whole value only.
DATE_LIKE = r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})([ T].*)?$"
ATTRIBUTE_TYPE = {"NUMBER": "number", "BOOLEAN": "boolean"}


def attribute_specs(
    clinical: ClinicalFile, raw: pl.DataFrame, canonical: tuple[str, ...], entity: str
) -> tuple[list[AttributeSpec], list[str]]:
    """Every column that is not canonical, as a declared attribute: the name in snake_case, the display
    name, description and datatype of the 4-line header. A STRING column is categorical (its levels are the
    values present, sorted) unless it has more than MAX_LEVELS of them: then it is kept as text. Returns
    the specs and what to tell the user."""
    specs, notes = [], []
    names: dict[str, str] = {}
    for column in clinical.columns:
        if column in canonical:
            continue
        try:
            name = snake_case(column)
        except ValueError:
            raise FileRejected(
                clinical.path, f"column {column!r} gives no attribute name (letters, digits, _): rename it"
            ) from None
        if name in RESERVED_NAMES:
            raise FileRejected(
                clinical.path, f"column {column} would be attribute {name}, a key of the warehouse: rename it"
            )
        if is_status_column(name):
            raise FileRejected(
                clinical.path,
                f"column {column} would be attribute {name}, the name of an MRD status column computed from "
                "MRD results (docs/mrd.md): rename it",
            )
        dated = _date_like(raw.get_column(column))
        if dated is not None:
            raise FileRejected(
                clinical.path,
                f"column {column} holds calendar dates ({dated!r}): cgdw never stores an absolute date; send "
                "the time since diagnosis instead (e.g. a _MONTHS or _DAYS column) or remove the column",
            )
        if name in names:
            raise FileRejected(
                clinical.path, f"columns {names[name]} and {column} both become attribute {name}"
            )
        names[name] = column
        datatype = clinical.datatype(column)
        data_type = ATTRIBUTE_TYPE.get(datatype, "categorical")
        levels: tuple[tuple[str, str], ...] = ()
        if data_type == "categorical":
            values = raw.get_column(column).drop_nulls().str.strip_chars().unique().sort().to_list()
            if len(values) > MAX_LEVELS:
                data_type = "text"
                notes.append(f"{column}: {len(values)} distinct values, kept as text ({name})")
            else:
                levels = tuple((v, v) for v in values)
        index = clinical.columns.index(column)
        specs.append(
            AttributeSpec(
                name=name, source_column=column, data_type=data_type, entity=entity,
                label=clinical.display_names[index] or column,
                description=clinical.descriptions[index] or None, levels=levels,
            )
        )  # fmt: skip
    return specs, notes


def _date_like(values: pl.Series) -> str | None:
    """The first value of a column that is a calendar date, if any."""
    present = values.drop_nulls().str.strip_chars()
    dated = present.filter(present.str.contains(DATE_LIKE))
    return dated[0] if dated.len() else None


class CbioPatientLoader(SourceLoader):
    """data_clinical_patient: patients, outcome events (OS, DFS), reported endpoints (DFS, EFS, PFS),
    enrolment, CR when given, and every other column as a declared attribute."""

    kind = "cbioportal_patient"

    secret: bytes

    def __init__(self, study: Study, secret: bytes) -> None:
        self.study = study
        self.secret = secret
        self.layout_name = LAYOUT
        self.trial_group = study.trial_group
        self.attributes: list[AttributeSpec] = []
        self.purged: set[str] = set()

    def batches(self, path: Path) -> Iterator[Batch]:
        clinical = read_clinical(path)
        _check_columns(clinical, ("PATIENT_ID",))
        raw = clinical_frame(clinical)
        self.attributes, notes = attribute_specs(clinical, raw, PATIENT_ATTRIBUTES, "patient")
        self.warnings.extend(notes)
        # A value an attribute cannot hold withholds that value only; a canonical column's, the line.
        issues = [i for i in datatype_issues(raw, clinical) if i[1] in PATIENT_ATTRIBUTES]
        get = {c: raw.get_column(c).to_list() if c in raw.columns else [None] * raw.height
               for c in PATIENT_ATTRIBUTES}  # fmt: skip
        lines = raw.get_column(LINE).to_list()
        rows = []
        for i, line in enumerate(lines):

            def code(column: str, codes: dict[str, Any], rule: str, i: int = i, line: int = line) -> Any:
                value = get[column][i]
                if value is None:
                    return None
                if value.upper() not in codes:
                    allowed = ", ".join(sorted({k for k in codes if ":" in k} or set(codes)))
                    message = f"{column} = {value!r}: not one of {allowed}"
                    issues.append(_issue(line, column, value, rule, message))
                    return None
                return codes[value.upper()]

            def status(column: str, words: dict[str, bool], i: int = i, line: int = line) -> bool | None:
                value = get[column][i]
                if value is None:
                    return None
                parsed = survival_status(value, words)
                if parsed is None:
                    message = f"{column} = {value!r}: a status is 0:<label> (censored) or 1:<label> (event)"
                    issues.append(_issue(line, column, value, f"code:{column.lower()}", message))
                return parsed

            def number(column: str, i: int = i, line: int = line) -> float | None:
                value = get[column][i]
                parsed = _number(value)
                # A column declared NUMBER was reported by datatype_issues already.
                if value is not None and parsed is None and clinical.datatype(column) != "NUMBER":
                    issues.append(
                        _issue(line, column, value, "number", f"{column} = {value!r}: not a number")
                    )
                return parsed

            def day(column: str) -> float | None:
                months = number(column)
                return None if months is None else months_to_days(months)

            dfs_status = get["DFS_STATUS"][i]
            diagnosis = get["DIAGNOSIS"][i]
            year = number("DIAGNOSIS_YEAR")
            rows.append(
                {
                    LINE: line,
                    "source_patient_id": get["PATIENT_ID"][i],
                    "os_dead": status("OS_STATUS", OS_STATUS),
                    "os_day": day("OS_MONTHS"),
                    "dfs_event": status("DFS_STATUS", DFS_STATUS),
                    "dfs_day": day("DFS_MONTHS"),
                    # Only cBioPortal's own recurrence labels say the DFS event is a relapse (a study may
                    # count deaths as DFS events: "1:Relapsed or died" is not a relapse).
                    "dfs_recurrence": dfs_status is not None and DFS_STATUS.get(dfs_status.strip().upper()),
                    "efs_event": status("EFS_STATUS", {}),
                    "efs_day": day("EFS_MONTHS"),
                    "pfs_event": status("PFS_STATUS", {}),
                    "pfs_day": day("PFS_MONTHS"),
                    "sex": code("SEX", SEX_CODES, "code:sex"),
                    "age_years": number("AGE"),
                    "diagnosis": _diagnosis(diagnosis) if diagnosis is not None else self.study.diagnosis,
                    "diagnosis_year": None if year is None or year != int(year) else int(year),
                    "complete_remission": code(
                        "COMPLETE_REMISSION", {"TRUE": True, "FALSE": False}, "code:boolean"
                    ),
                }
            )
        records = pl.DataFrame(
            rows,
            schema={LINE: pl.Int64, "source_patient_id": pl.String, "os_dead": pl.Boolean,
                    "os_day": pl.Float64, "dfs_event": pl.Boolean, "dfs_day": pl.Float64,
                    "dfs_recurrence": pl.Boolean, "efs_event": pl.Boolean, "efs_day": pl.Float64,
                    "pfs_event": pl.Boolean, "pfs_day": pl.Float64, "sex": pl.String,
                    "age_years": pl.Float64, "diagnosis": pl.String, "diagnosis_year": pl.Int64,
                    "complete_remission": pl.Boolean},
        )  # fmt: skip
        checked = schema_issues(records, raw, CbioPatientV1, lambda f: PATIENT_SOURCE.get(f, f))
        parse = pl.DataFrame(issues, schema=ISSUE_SCHEMA, orient="row")
        records, endpoint_issues = _withhold_endpoints_after_os(records, raw)
        records, relapse_issues = _withhold_relapse_without_cr(records, raw)
        values, value_issues = typed_values(raw, self.attributes, ["PATIENT_ID"])
        self._report_columns(records, raw)
        batch = Batch(
            raw=raw,
            records=records,
            issues=pl.concat([parse, checked]),
            parts={"attributes": values},
            fact_issues=pl.concat([endpoint_issues, relapse_issues, value_issues]),
        )
        yield _without_purged_patients(batch, self.study.trial_group, self.secret, self.purged, self.warnings)

    def prepare(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.purged = purged_tombstones(con)

    def _report_columns(self, records: pl.DataFrame, raw: pl.DataFrame) -> None:
        for prefix in ("OS", *(e.upper() for e in REPORTED)):
            status, months = f"{prefix}_STATUS", f"{prefix}_MONTHS"
            if months not in raw.columns:
                continue
            timeless = raw.filter(
                pl.col(months).is_not_null()
                & (pl.col(status).is_null() if status in raw.columns else pl.lit(True))
            ).height
            if timeless:
                self.warnings.append(
                    f"{timeless} patients have {months} without {status}: without a status the time is "
                    f"neither an event nor a censoring, so {prefix} is not stored for them"
                )
        untimed = records.filter(
            (pl.col("os_dead").is_not_null() & pl.col("os_day").is_null())
            | (pl.col("dfs_event").is_not_null() & pl.col("dfs_day").is_null())
        ).height
        if untimed:
            self.warnings.append(
                f"{untimed} patients have an OS or DFS status without its months: that event is not "
                "stored (an event needs a day)"
            )
        unknown = [
            f"{records.filter(pl.col(field).is_null()).height} without {PATIENT_SOURCE[field]}"
            for field in ("sex", "age_years", "diagnosis_year")
            if records.filter(pl.col(field).is_null()).height
        ]
        if unknown:
            self.warnings.append(
                f"patients {', '.join(unknown)}: in the cohort views with that value unknown (NULL)"
            )
        other = records.filter(~pl.col("diagnosis").is_in(list(DIAGNOSES)))
        if other.height:
            counts = other.group_by("diagnosis").len().sort("diagnosis")
            listed = ", ".join(f"{d} ({n})" for d, n in counts.iter_rows())
            self.warnings.append(
                f"diagnoses outside cgdw's list ({', '.join(DIAGNOSES)}) kept as given: {listed}"
            )
        if self.attributes:
            names = ", ".join(f"{a.source_column} -> {a.name}" for a in self.attributes)
            self.warnings.append(f"{len(self.attributes)} columns kept as attributes: {names}")

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        self.warnings.extend(self.study.warnings)
        protocol = self.study.trial_group
        con.execute(
            """
            INSERT INTO protocol (protocol_code, trial_group, population, disease, registry_id, title)
            SELECT $code, $code, 'all', $disease, NULL, $title
            WHERE NOT EXISTS (SELECT 1 FROM protocol WHERE protocol_code = $code)
            """,
            {"code": protocol, "disease": self.study.type_of_cancer or "unknown", "title": self.study.name},
        )
        keyed = linking.with_patient_key(batch.records, self.secret, pl.lit(self.study.trial_group))
        source = linking.stage(con, PATIENT_STAGE, keyed.rename({LINE: "source_line"}))
        counts: dict[str, Any] = {
            "patient": {
                "inserted": linking.create_missing_patients(con, PATIENT_STAGE, self.study.trial_group, ctx)
            }
        }
        in_file = f"SELECT patient_id FROM ({source})"
        counts["enrolment"] = merge_snapshot(
            con, "enrolment",
            ["protocol_code", "diagnosis", "diagnosis_year", "sex", "age_at_diagnosis_years",
             "consent_status"],
            # A published study gives no consent: 'given', except that a withdrawal recorded in cgdw
            # stands until `cgdw consent restore` (a re-import never undoes it).
            f"""SELECT patient_id, '{protocol}' AS protocol_code, diagnosis, diagnosis_year, sex,
                       age_years AS age_at_diagnosis_years,
                       CASE WHEN patient_id IN ({WITHDRAWN}) THEN 'withdrawn' ELSE 'given' END
                           AS consent_status,
                       source_line
                FROM ({source})""",
            in_file, ctx.run_id, ctx.source_file_id,
        ).as_dict()  # fmt: skip
        counts["treatment_response"] = merge_snapshot(
            con, "treatment_response",
            ["complete_remission", "cr_day", "prednisone_response", "hsct_in_cr1", "hsct_day"],
            f"""SELECT patient_id, complete_remission, NULL::DOUBLE AS cr_day,
                       NULL::VARCHAR AS prednisone_response, NULL::BOOLEAN AS hsct_in_cr1,
                       NULL::DOUBLE AS hsct_day, source_line
                FROM ({source}) WHERE complete_remission IS NOT NULL""",
            in_file, ctx.run_id, ctx.source_file_id,
        ).as_dict()  # fmt: skip
        # OS: death at OS_MONTHS when deceased; the last news is OS_MONTHS in both cases (a dead patient's
        # last news is the death). DFS: a recurrence (cBioPortal's label) is the first relapse, at DFS_MONTHS.
        events = f"""
            SELECT patient_id, 'death' AS event_type, 1 AS event_seq, os_day AS day, NULL AS cause,
                   NULL::BOOLEAN AS in_cr, source_line
            FROM ({source}) WHERE os_dead AND os_day IS NOT NULL
            UNION ALL
            SELECT patient_id, 'last_follow_up', 1, os_day, NULL, NULL, source_line
            FROM ({source}) WHERE os_dead IS NOT NULL AND os_day IS NOT NULL
            UNION ALL
            SELECT patient_id, 'relapse', 1, dfs_day, NULL, NULL, source_line
            FROM ({source}) WHERE dfs_event AND dfs_recurrence AND dfs_day IS NOT NULL
        """
        counts["outcome_event"] = merge_snapshot(
            con, "outcome_event", ["event_type", "event_seq", "day", "cause", "in_cr"], events, in_file,
            ctx.run_id, ctx.source_file_id,
        ).as_dict()  # fmt: skip
        reported = " UNION ALL ".join(
            f"""SELECT patient_id, '{e}' AS endpoint, {e}_day AS day, {e}_event AS event, source_line
                FROM ({source}) WHERE {e}_event IS NOT NULL AND {e}_day IS NOT NULL"""
            for e in REPORTED
        )
        counts["reported_endpoint"] = merge_snapshot(
            con, "reported_endpoint", ["endpoint", "day", "event"], reported, in_file, ctx.run_id,
            ctx.source_file_id,
        ).as_dict()  # fmt: skip
        counts["attribute_value"] = self._write_attributes(con, batch, ctx, in_file)
        con.unregister(PATIENT_STAGE)
        return counts

    def _write_attributes(
        self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext, in_file: str
    ) -> dict[str, Any]:
        source = f"cBioPortal study {self.study.study_id}"
        new = register_attributes(con, self.attributes, source, ctx.run_id, ctx.path)
        values = batch.parts["attributes"].rename({"PATIENT_ID": "source_patient_id", LINE: "source_line"})
        keyed = linking.with_patient_key(values, self.secret, pl.lit(self.study.trial_group))
        staged = linking.stage(con, ATTRIBUTE_STAGE, keyed)
        merged = merge_attribute_values(
            con,
            f"""SELECT patient_id, NULL::INTEGER AS sample_id, attribute_name, value_text, value_number,
                       value_boolean, source_line FROM ({staged})""",
            in_file, [a.name for a in self.attributes], ctx.run_id, ctx.source_file_id,
        )  # fmt: skip
        con.unregister(ATTRIBUTE_STAGE)
        return {**merged.as_dict(), "attributes_declared": len(new)}


def _diagnosis(value: str) -> str:
    """A canonical diagnosis whatever its case (aml -> AML); any other code as given (the list is open)."""
    canonical = {d.upper(): d for d in DIAGNOSES}
    return canonical.get(value.strip().upper(), value.strip())


def _without_purged_patients(
    batch: Batch, trial_group: str, secret: bytes, purged: set[str], warnings: list[str]
) -> Batch:
    """The batch without the rows of purged patients (their keys made only when some patient was purged)."""
    if not purged:
        return batch
    keys = patient_keys(secret, pl.lit(trial_group), pl.col("PATIENT_ID")).alias("patient_key")
    return linking.without_purged_patients(batch, batch.raw.select(LINE, keys), purged, warnings)


def purged_tombstones(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {t for (t,) in con.execute("SELECT tombstone FROM purged_patient").fetchall()}


def _withhold_relapse_without_cr(
    records: pl.DataFrame, raw: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A DFS recurrence of a patient whose COMPLETE_REMISSION is FALSE is not a relapse (a patient never in
    CR is refractory, not relapsed): that relapse is withheld (rule relapse_after_cr), the rest loads."""
    failed = (~pl.col("complete_remission") & pl.col("dfs_event") & pl.col("dfs_recurrence")).fill_null(False)
    dfs = pl.col("DFS_STATUS")
    given = dfs if "DFS_STATUS" in raw.columns else pl.lit(None, pl.String).alias("DFS_STATUS")
    why = f"{RULE_EXPLANATIONS['relapse_after_cr']} (COMPLETE_REMISSION is FALSE): the relapse is withheld"
    issues = issues_where(
        records.join(raw.select(LINE, given), on=LINE, how="left"), failed, "DFS_STATUS", dfs,
        "relapse_after_cr", pl.format("DFS_STATUS = '{}': " + why, dfs),
    )  # fmt: skip
    recurrence = pl.when(failed).then(False).otherwise(pl.col("dfs_recurrence")).alias("dfs_recurrence")
    return records.with_columns(recurrence), issues


def _withhold_endpoints_after_os(
    records: pl.DataFrame, raw: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A DFS, EFS or PFS time after the OS time (the last news) is withheld, that endpoint only: the
    patient's OS and other facts load (rule `<endpoint>_within_os`)."""
    problems = []
    for endpoint in REPORTED:
        late = pl.col(f"{endpoint}_day") > pl.col("os_day")
        column = f"{endpoint.upper()}_MONTHS"
        rule = f"{endpoint}_within_os"
        months = raw.select(
            LINE, pl.col(column) if column in raw.columns else pl.lit(None, pl.String).alias(column)
        )
        problems.append(
            issues_where(
                records.join(months, on=LINE, how="left"), late.fill_null(False), column, pl.col(column),
                rule, pl.format(f"{column} = '{{}}': {RULE_EXPLANATIONS[rule]}", pl.col(column)),
            )
        )  # fmt: skip
        records = records.with_columns(
            pl.when(late.fill_null(False)).then(None).otherwise(pl.col(c)).alias(c)
            for c in (f"{endpoint}_day", f"{endpoint}_event")
        )
    return records, pl.concat(problems)


class CbioSampleLoader(SampleManifestLoader):
    """data_clinical_sample: samples -> patients of the study and the study's assay (the sample-manifest
    loader's checks and writes: known patient, sample_unchanged)."""

    kind = "cbioportal_sample"
    SOURCE: ClassVar[dict[str, str]] = {
        "sample_key": "SAMPLE_ID", "source_patient_id": "PATIENT_ID", "sample_type": "SAMPLE_TYPE",
        "trial_group": "PATIENT_ID", "assay_name": "SAMPLE_ID",
    }  # fmt: skip

    dated = False  # a study is one snapshot, with no export date to compare

    def __init__(self, study: Study, secret: bytes) -> None:  # no layout: the format is fixed
        self.study = study
        self.secret = secret
        self.layout_name = LAYOUT
        self.trial_group = study.trial_group
        self.attributes: list[AttributeSpec] = []

    def export_date(self, path: Path) -> dt.date | None:
        return None

    @property
    def assay(self) -> tuple[str, str]:
        return f"cBioPortal:{self.study.study_id}", self.study.assembly

    def source_column(self, field: str) -> str:
        return self.SOURCE.get(field, field)

    def prepare(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.purged = purged_tombstones(con)
        # The study's samples were profiled by whatever the study says (gene panels are not imported): one
        # assay per study and assembly, without a gene panel, so no gene is called wild type by default.
        con.execute(
            """
            INSERT INTO sequencing_assay (name, version, gene_panel_id, assembly)
            SELECT $name, $version, NULL, $version
            WHERE NOT EXISTS (SELECT 1 FROM sequencing_assay WHERE name = $name AND version = $version)
            """,
            {"name": self.assay[0], "version": self.assay[1]},
        )

    def batches(self, path: Path) -> Iterator[Batch]:
        clinical = read_clinical(path)
        _check_columns(clinical, ("PATIENT_ID", "SAMPLE_ID"))
        raw = clinical_frame(clinical)
        issues = pl.DataFrame(datatype_issues(raw, clinical), schema=ISSUE_SCHEMA, orient="row")
        sample_type = (
            pl.col("SAMPLE_TYPE").str.to_uppercase().replace_strict(SAMPLE_TYPE_CODES, default="diagnosis")
            if "SAMPLE_TYPE" in raw.columns
            else pl.lit("diagnosis")
        )
        records = raw.select(
            LINE,
            pl.col("SAMPLE_ID").alias("sample_key"),
            pl.lit(self.study.trial_group).alias("trial_group"),
            pl.col("PATIENT_ID").alias("source_patient_id"),
            sample_type.fill_null("diagnosis").alias("sample_type"),
            pl.lit(None, pl.String).alias("tissue"),
            pl.lit(None, pl.Int64).alias("collection_day"),
            pl.lit(self.assay[0]).alias("assay_name"),
            pl.lit(self.assay[1]).alias("assay_version"),
            pl.lit(self.study.assembly).alias("assembly"),
            pl.lit(None, pl.String).alias("pipeline_version"),
        )
        checked = schema_issues(records, raw, CbioSampleV1, self.source_column)
        self.attributes, notes = attribute_specs(clinical, raw, SAMPLE_ATTRIBUTES_READ, "sample")
        self.warnings.extend(notes)
        if self.attributes:
            names = ", ".join(f"{a.source_column} -> {a.name}" for a in self.attributes)
            self.warnings.append(f"{len(self.attributes)} sample columns kept as attributes: {names}")
        same = raw.filter(pl.col("SAMPLE_ID") == pl.col("PATIENT_ID")).height
        if same:
            # The sample key is stored as given (MAF and SEG files name samples by it), so here it is the
            # study's patient id: said, not hidden (docs/cbioportal.md).
            self.warnings.append(
                f"{same} samples have a SAMPLE_ID equal to their PATIENT_ID: the sample key is stored as "
                "given, so the study's patient id is stored as that sample's key"
            )
        if "SAMPLE_TYPE" in raw.columns:
            other = raw.filter(
                pl.col("SAMPLE_TYPE").is_not_null()
                & ~pl.col("SAMPLE_TYPE").str.to_uppercase().is_in(list(SAMPLE_TYPE_CODES))
            ).height
            if other:
                self.warnings.append(
                    f"{other} samples have a SAMPLE_TYPE cgdw does not know: stored as diagnosis"
                )
        values, value_issues = typed_values(raw, self.attributes, ["SAMPLE_ID"])
        attribute_lines = issues.filter(pl.col("column").is_in([a.source_column for a in self.attributes]))
        batch = Batch(
            raw=raw,
            records=records,
            issues=pl.concat([issues.join(attribute_lines, on=[LINE, "column"], how="anti"), checked]),
            parts={"attributes": values},
            fact_issues=value_issues,
        )
        yield _without_purged_patients(batch, self.study.trial_group, self.secret, self.purged, self.warnings)

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        counts = super().write(con, batch, ctx)
        source = f"cBioPortal study {self.study.study_id}"
        new = register_attributes(con, self.attributes, source, ctx.run_id, ctx.path)
        values = batch.parts["attributes"].rename({"SAMPLE_ID": "sample_key", LINE: "source_line"})
        con.register(ATTRIBUTE_STAGE, values.to_arrow())
        con.register(SAMPLES_IN_FILE, batch.records.select("sample_key").to_arrow())
        staged = f"""SELECT s.patient_id, s.sample_id, v.attribute_name, v.value_text, v.value_number,
                            v.value_boolean, v.source_line
                     FROM {ATTRIBUTE_STAGE} AS v JOIN sample AS s USING (sample_key)"""
        # The snapshot covers every sample of the file, also one whose values are all blank now.
        in_file = f"SELECT DISTINCT s.patient_id FROM {SAMPLES_IN_FILE} JOIN sample AS s USING (sample_key)"
        merged = merge_attribute_values(
            con, staged, in_file, [a.name for a in self.attributes], ctx.run_id, ctx.source_file_id,
            entity="sample",
        )  # fmt: skip
        con.unregister(ATTRIBUTE_STAGE)
        con.unregister(SAMPLES_IN_FILE)
        return {**counts, "attribute_value": {**merged.as_dict(), "attributes_declared": len(new)}}


class CbioSampleV1(pa.DataFrameModel):
    sample_key: str = pa.Field(unique=True)
    source_patient_id: str

    class Config:
        strict = False


class CbioDiscreteCnaLoader(SourceLoader):
    """data_cna (discrete, GISTIC-style): one gene-level copy_number_call per sample and gene with a value
    of -2, -1, 1 or 2; 0 (neutral) and NA / blank (not assessed) store nothing."""

    kind = "cbioportal_cna"

    def __init__(self, study: Study, method: str = "NGS") -> None:
        if method not in CN_METHODS:
            raise CgdwError(f"the CNA method must be one of {', '.join(CN_METHODS)}, not {method!r}")
        self.study = study
        self.method = method
        self.layout_name = LAYOUT
        self.sample_columns: list[str] = []

    def batches(self, path: Path) -> Iterator[Batch]:
        try:
            raw = pl.read_csv(path, separator="\t", infer_schema=False, quote_char=None, raise_if_empty=True)
        except (OSError, pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
            raise FileRejected(path, f"not a tab-separated discrete CNA file: {exc}") from exc
        if "Hugo_Symbol" not in raw.columns:
            raise FileRejected(path, "no Hugo_Symbol column: cgdw keys genes by HGNC symbol")
        samples = [c for c in raw.columns if c not in ("Hugo_Symbol", "Entrez_Gene_Id", "Cytoband")]
        if not samples:
            raise FileRejected(path, "no sample columns")
        self.sample_columns = samples
        if raw.is_empty():
            raise FileRejected(path, "the file has a header but no data rows")
        raw = raw.with_columns(pl.all().str.strip_chars().replace("", None)).with_row_index(LINE, offset=2)
        raw = raw.with_columns(pl.col(LINE).cast(pl.Int64))
        long = raw.unpivot(
            index=[LINE, "Hugo_Symbol"], on=samples, variable_name="sample_key", value_name="value"
        )
        assessed = pl.col("value").is_not_null() & ~pl.col("value").str.to_uppercase().is_in(
            list(CNA_MISSING)
        )
        long = long.filter(assessed)
        long = long.with_columns(pl.col("value").cast(pl.Float64, strict=False).alias("number")).with_columns(
            pl.when(pl.col("number").is_in([float(c) for c in CNA_CALL_TYPES]))
            .then(pl.col("number").cast(pl.Int64))
            .alias("code")
        )
        bad_value = long.filter(pl.col("code").is_null()).select(
            LINE, pl.col("sample_key").alias("column"), "value", pl.lit("code:discrete_cna").alias("rule"),
            pl.format("{} = '{}': discrete CNA values are -2, -1, 0, 1, 2 or NA", pl.col("sample_key"),
                      pl.col("value")).alias("message"),
        )  # fmt: skip
        no_gene = raw.filter(pl.col("Hugo_Symbol").is_null()).select(
            LINE, pl.lit("Hugo_Symbol").alias("column"), pl.lit(None, pl.String).alias("value"),
            pl.lit("required").alias("rule"), pl.lit("Hugo_Symbol is empty but required").alias("message"),
        )  # fmt: skip
        gene = pl.col("Hugo_Symbol")
        twice = raw.filter(gene.is_not_null() & gene.is_duplicated()).select(
            LINE, pl.lit("Hugo_Symbol").alias("column"), pl.col("Hugo_Symbol").alias("value"),
            pl.lit("unique").alias("rule"),
            pl.format("Hugo_Symbol = '{}' is on more than one line", pl.col("Hugo_Symbol")).alias("message"),
        )  # fmt: skip
        # 0 (neutral) is not stored: a neutral call would pass for the primary call that a SEG deletion of
        # the same gene "confirms" (etl/sources/copy_number.py confirm_calls), hiding it from the views.
        records = long.filter(pl.col("code").is_not_null() & (pl.col("code") != 0)).select(
            LINE, pl.col("Hugo_Symbol").alias("gene_symbol"), "sample_key",
            pl.col("code").replace_strict(CNA_CALL_TYPES, return_dtype=pl.String).alias("call_type"),
        )  # fmt: skip
        issues = pl.concat([no_gene, twice, bad_value]).cast(ISSUE_SCHEMA)  # type: ignore[arg-type]
        yield Batch(raw=raw, records=records, issues=issues)

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        records = batch.records
        known = known_samples(con, self.sample_columns)
        unknown = sorted(set(self.sample_columns) - set(known.get_column("sample_key").to_list()))
        if unknown:
            shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            self.warnings.append(
                f"{len(unknown)} sample columns are not in the warehouse, not loaded: {shown}"
            )
        records = records.join(known, on="sample_key")
        # Genes outside cgdw's reference (e.g. breast-cancer genes in a leukaemia warehouse) are added by
        # symbol only, as the MAF loader keeps any Hugo_Symbol: a call is never dropped for its gene.
        symbols = records.get_column("gene_symbol").unique().sort().to_list()
        present = {s for (s,) in con.execute("SELECT symbol FROM gene").fetchall()}
        new_genes = [s for s in symbols if s not in present]
        if new_genes:
            con.executemany("INSERT INTO gene (symbol) VALUES (?)", [[s] for s in new_genes])
            shown = ", ".join(new_genes[:10]) + (" ..." if len(new_genes) > 10 else "")
            self.warnings.append(
                f"{len(new_genes)} genes not in the reference were added by symbol only (no exons): {shown}"
            )
        con.register(CNA_STAGE, records.rename({LINE: "source_line"}).to_arrow())
        samples = f"SELECT DISTINCT sample_id FROM {CNA_STAGE}"
        # Whole gene = every exon of the reference transcript when cgdw has them on the sample's assembly;
        # otherwise a gene-level call without a range.
        calls = f"""
            WITH exons AS ({REFERENCE_EXONS}),
            genes AS (
                SELECT gene_id, assembly, any_value(chrom) AS chrom, min(start) AS start, max("end") AS "end",
                       min(exon_number) AS first_exon, max(exon_number) AS last_exon
                FROM exons GROUP BY gene_id, assembly
            )
            SELECT s.sample_id, g.gene_id, s.assay_assembly AS assembly, x.chrom, x.start, x."end",
                   x.first_exon, x.last_exon, s.call_type, NULL::DOUBLE AS copy_number, NULL::DOUBLE AS ratio,
                   '{self.method}' AS method, false AS from_segment, s.source_line
            FROM {CNA_STAGE} AS s JOIN gene AS g ON g.symbol = s.gene_symbol
            LEFT JOIN genes AS x ON x.gene_id = g.gene_id AND x.assembly = s.assay_assembly
        """
        counts: dict[str, Any] = {"gene": {"inserted": len(new_genes)}}
        counts["copy_number_call"] = merge_calls(con, calls, samples, ctx, from_segment=False)
        con.unregister(CNA_STAGE)
        return counts


@dataclass
class StudyImport:
    """The runs of one study import, in load order."""

    study: Study
    reports: list[LoadReport] = field(default_factory=list)


def load_cbioportal_study(
    db_path: Path,
    study_dir: Path,
    *,
    key_file: Path | None = None,
    secret: bytes | None = None,
    max_reject_fraction: float = DEFAULT_MAX_REJECT_FRACTION,
    cna_method: str = "NGS",
    seg_method: str = "aCGH",
    command: str | None = None,
    progress: Progress | None = None,
) -> list[LoadReport]:
    """Import a cBioPortal study directory: one ETL run per data file, in dependency order. A rejected
    file stops the import there (the files before it stay loaded; re-running skips them by sha256)."""
    from etl.sources.maf import MafLoader
    from etl.sources.seg import SegLoader

    if not 0 <= max_reject_fraction <= 1:
        raise CgdwError(f"--max-reject-fraction must be between 0 and 1, not {max_reject_fraction}")
    study = read_study(study_dir)
    key = secret or load_pseudonym_key(key_file)
    options: dict[str, Any] = {
        "max_reject_fraction": max_reject_fraction,
        "command": command,
        "progress": progress,
    }
    steps: list[tuple[tuple[str, str], SourceLoader]] = [
        (PATIENT_META, CbioPatientLoader(study, key)),
        (SAMPLE_META, CbioSampleLoader(study, key)),
        (MUTATION_META, MafLoader(assembly=study.assembly)),
        (DISCRETE_CNA_META, CbioDiscreteCnaLoader(study, method=cna_method)),
        (SEG_META, SegLoader(assembly=study.assembly, method=seg_method)),
    ]
    reports = []
    for pair, loader in steps:
        if pair in study.files:
            reports.append(run_load(db_path, loader, study.files[pair], **options))
    return reports
