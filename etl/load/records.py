"""Pandera schemas of the canonical records, one per source layout family, validated lazily (every failure
at once). Each check's name is the rule id written to `rejected_record`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from schema.vocabulary import (
    ASSEMBLIES,
    CN_METHODS,
    CN_TYPES,
    CONSENT,
    DEATH_CAUSES,
    MRD_METHODS,
    MRD_QUALITATIVE,
    RESPONSE,
    SAMPLE_TYPES,
    SEX,
    TISSUES,
)

# What each named cross-field rule means, for the quarantine message.
RULE_EXPLANATIONS = {
    "cr_date_iff_cr": "a CR date is given exactly when complete remission is yes",
    "hsct_in_first_cr": "a transplant in first CR needs CR, a transplant date, and a date not before CR",
    "relapse_after_cr": "a relapse needs a complete remission before it",
    "second_relapse_after_first": "a second relapse comes after a first one",
    "death_date_iff_dead": "a death date is given exactly when the patient is dead",
    "death_after_other_events": "death cannot precede remission, transplant or relapse",
    "last_contact_after_events": "the last contact cannot precede remission, transplant or relapse",
    "no_contact_after_death": "the last contact cannot be after death",
    "one_row_per_patient": "the patient appears on more than one line",
    "one_row_per_measurement": "the same patient, time point, method and target appear on more than one line",
    "unit_with_value": "a value, limit of detection or quantitative range needs its unit",
    "value_or_result": "a result needs a value or a qualitative result",
    "result_agrees_with_value": (
        "'negative' with a detected level (at or above the limit of detection, above 0 without one), or "
        "'positive' with a level not detected"
    ),
    "fraction_range": "the value, normalised to a fraction, must lie between 0 and 1",
    "exon_order": "the first exon cannot come after the last",
    "range_order": "the start cannot come after the end",
    "exons_or_range": "a call needs an exon range or a genomic range (chrom, start, end, assembly)",
    "one_call_per_method": "the same sample, gene and method appear on more than one line",
}

WBC_PLAUSIBLE_MIN = 0.1  # x10^9/L: lower values are a unit error (a x10^9/L value in a /mm3 column)
WBC_PLAUSIBLE_MAX = 2000.0


def _rule(data: PolarsData, expr: pl.Expr) -> pl.LazyFrame:
    return data.lazyframe.select(expr.fill_null(True))


def _not_before(column: str, *earlier: str) -> pl.Expr:
    return pl.all_horizontal([pl.col(column) >= pl.col(e) for e in earlier])


class ClinicalRecordV1(pa.DataFrameModel):
    """One patient of a trial export, harmonised: codes translated, units converted, days from diagnosis.

    Sex, age and the diagnosis year may be NULL (a layout that makes them required quarantines an empty
    cell before this schema). The diagnosis list is open: a layout's closed code list names the canonical
    diagnoses, an open one keeps the source's own code. Days may be fractional (months x 30.4375). The
    cross-field rules of one fact are not here: they withhold that fact only (CLINICAL_FACT_RULES)."""

    source_patient_id: str = pa.Field(unique=True)
    protocol_code: str
    sex: str = pa.Field(nullable=True, isin=SEX)
    age_years: float = pa.Field(nullable=True, ge=0, lt=110)
    diagnosis: str
    diagnosis_year: int = pa.Field(nullable=True, ge=1970, le=2100)
    wbc_g_per_l: float = pa.Field(nullable=True, ge=WBC_PLAUSIBLE_MIN, le=WBC_PLAUSIBLE_MAX)
    cns_involvement: bool = pa.Field(nullable=True)
    mediastinal_mass: bool = pa.Field(nullable=True)
    prednisone_response: str = pa.Field(nullable=True, isin=RESPONSE)
    complete_remission: bool
    cr_day: float = pa.Field(nullable=True, ge=0)
    hsct_in_cr1: bool = pa.Field(nullable=True)
    hsct_day: float = pa.Field(nullable=True, ge=0)
    relapse_day: float = pa.Field(nullable=True, ge=0)
    second_relapse_day: float = pa.Field(nullable=True, ge=0)
    vital_status: str = pa.Field(isin=("alive", "dead"))
    death_day: float = pa.Field(nullable=True, ge=0)
    death_cause: str = pa.Field(nullable=True, isin=DEATH_CAUSES)
    last_contact_day: float = pa.Field(ge=0)
    consent_status: str = pa.Field(isin=CONSENT)

    # The vital rules reject the line: they concern OS itself, and which date is wrong is not known.
    @pa.check("death_day", name="death_date_iff_dead")
    def death_date_iff_dead(cls, data: PolarsData) -> pl.LazyFrame:
        return _rule(data, (pl.col("vital_status") == "dead") == pl.col("death_day").is_not_null())

    @pa.check("death_day", name="death_after_other_events")
    def death_after_other_events(cls, data: PolarsData) -> pl.LazyFrame:
        return _rule(
            data, _not_before("death_day", "cr_day", "hsct_day", "relapse_day", "second_relapse_day")
        )

    @pa.check("last_contact_day", name="last_contact_after_events")
    def last_contact_after_events(cls, data: PolarsData) -> pl.LazyFrame:
        return _rule(
            data, _not_before("last_contact_day", "cr_day", "hsct_day", "relapse_day", "second_relapse_day")
        )

    @pa.check("last_contact_day", name="no_contact_after_death")
    def no_contact_after_death(cls, data: PolarsData) -> pl.LazyFrame:
        return _rule(data, pl.col("last_contact_day") <= pl.col("death_day"))

    class Config:
        strict = False  # the line number column rides along


@dataclass(frozen=True)
class FactRule:
    """A cross-field rule about one fact of a patient: a line that breaks it loads without that fact (the
    `withholds` fields are set NULL) and the fact is quarantined, named by the `reported` field's column."""

    name: str
    broken: pl.Expr  # over the canonical records; NULL means the rule holds
    withholds: tuple[str, ...]
    reported: str
    withheld: str  # what the quarantine message says is left out


def clinical_fact_rules(mapped: Collection[str]) -> list[FactRule]:
    """The per-fact rules of a trial record, in the order they are applied: each sees the facts the
    rules before it withheld (a CR date withheld for a patient never in CR, then that patient's relapse).
    `mapped` are the layout's canonical fields: a missing date is a problem only where a layout has one."""
    cr, transplanted = pl.col("complete_remission"), pl.col("hsct_in_cr1").fill_null(False)
    cr_dated = "cr_day" in mapped or "cr_date" in mapped
    hsct_dated = "hsct_day" in mapped or "hsct_date" in mapped
    has = {name: pl.col(name).is_not_null() for name in ("cr_day", "hsct_day", "relapse_day")}
    hsct_date_agrees = (transplanted == has["hsct_day"]) if hsct_dated else (transplanted | ~has["hsct_day"])
    return [
        FactRule(
            "cr_date_iff_cr",
            (has["cr_day"] & ~cr) | (cr & ~has["cr_day"] & pl.lit(cr_dated)),
            ("cr_day",),
            "cr_day",
            "the CR date is not loaded (the response loads without it)",
        ),
        FactRule(
            "hsct_in_first_cr",
            ~(hsct_date_agrees & (~transplanted | cr) & _not_before("hsct_day", "cr_day")),
            ("hsct_in_cr1", "hsct_day"),
            "hsct_day",
            "the transplant (in first CR, and its date) is not loaded",
        ),
        FactRule(
            "relapse_after_cr",
            has["relapse_day"] & ~(cr & _not_before("relapse_day", "cr_day")),
            ("relapse_day",),
            "relapse_day",
            "the relapse is not loaded",
        ),
        FactRule(
            "second_relapse_after_first",
            pl.col("second_relapse_day").is_not_null()
            & ~(pl.col("second_relapse_day") > pl.col("relapse_day")).fill_null(False),
            ("second_relapse_day",),
            "second_relapse_day",
            "the second relapse is not loaded",
        ),
    ]


class LabRecordV1(pa.DataFrameModel):
    """One patient of a reference-laboratory export: immunophenotype and oncogenetic markers."""

    trial_group: str
    source_patient_id: str
    tcr_status: str = pa.Field(nullable=True)
    etp_status: bool = pa.Field(nullable=True)
    oncogenetics_method: str = pa.Field(nullable=True)

    @pa.check("source_patient_id", name="one_row_per_patient")
    def one_row_per_patient(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(~pl.struct("trial_group", "source_patient_id").is_duplicated())

    class Config:
        strict = False


class SampleManifestV1(pa.DataFrameModel):
    """One sequenced sample: who it belongs to, what it is, how it was sequenced."""

    sample_key: str = pa.Field(unique=True)
    trial_group: str
    source_patient_id: str
    sample_type: str = pa.Field(isin=SAMPLE_TYPES)
    tissue: str = pa.Field(nullable=True, isin=TISSUES)
    collection_day: int = pa.Field(nullable=True, ge=-60)  # diagnostic samples may precede the diagnosis date
    assay_name: str
    assay_version: str
    assembly: str = pa.Field(isin=ASSEMBLIES)
    pipeline_version: str = pa.Field(nullable=True)

    class Config:
        strict = False


class MrdMeasurementV1(pa.DataFrameModel):
    """One MRD result, with its value normalised to a fraction of cells (the original kept aside)."""

    trial_group: str
    source_patient_id: str
    sample_key: str = pa.Field(nullable=True)
    time_point: str
    day: int = pa.Field(nullable=True, ge=0)
    method: str = pa.Field(isin=MRD_METHODS)
    target: str = pa.Field(nullable=True)
    value: float = pa.Field(nullable=True)
    unit: str = pa.Field(nullable=True)
    value_fraction: float = pa.Field(nullable=True)
    limit_of_detection: float = pa.Field(nullable=True)
    quantitative_range_low: float = pa.Field(nullable=True)
    lod_fraction: float = pa.Field(nullable=True, ge=0, le=1)
    range_low_fraction: float = pa.Field(nullable=True, ge=0, le=1)
    qualitative_result: str = pa.Field(nullable=True, isin=MRD_QUALITATIVE)

    @pa.check("value_fraction", name="fraction_range")
    def fraction_range(cls, data: PolarsData) -> pl.LazyFrame:
        return _rule(data, (pl.col("value_fraction") >= 0) & (pl.col("value_fraction") <= 1))

    @pa.check("unit", name="unit_with_value")
    def unit_with_value(cls, data: PolarsData) -> pl.LazyFrame:
        levels = pl.col("value").is_not_null() | pl.col("limit_of_detection").is_not_null()
        return _rule(
            data, ~(levels | pl.col("quantitative_range_low").is_not_null()) | pl.col("unit").is_not_null()
        )

    @pa.check("qualitative_result", name="value_or_result")
    def value_or_result(cls, data: PolarsData) -> pl.LazyFrame:
        return _rule(data, pl.col("value").is_not_null() | pl.col("qualitative_result").is_not_null())

    @pa.check("qualitative_result", name="result_agrees_with_value")
    def result_agrees_with_value(cls, data: PolarsData) -> pl.LazyFrame:
        """ "negative" with a level at or above the limit of detection, or "positive" (quantifiable or not)
        with a level of 0, contradict themselves: neither is guessed right."""
        result, level, lod = pl.col("qualitative_result"), pl.col("value_fraction"), pl.col("lod_fraction")
        # Without a limit of detection, any level above 0 is a detection.
        detected = pl.when(lod.is_null()).then(level > 0).otherwise(level >= lod)
        negative_detected = (result == "negative") & detected
        positive_absent = result.is_in(["positive", "positive_not_quantifiable"]) & ~detected
        return _rule(data, ~(negative_detected.fill_null(False) | positive_absent.fill_null(False)))

    @pa.check("time_point", name="one_row_per_measurement")
    def one_row_per_measurement(cls, data: PolarsData) -> pl.LazyFrame:
        key = pl.struct("trial_group", "source_patient_id", "time_point", "method", "target")
        return data.lazyframe.select(~key.is_duplicated())

    class Config:
        strict = False


class CopyNumberCallV1(pa.DataFrameModel):
    """One gene-level copy-number call of one method on one sample."""

    sample_key: str
    gene_symbol: str
    first_exon: int = pa.Field(nullable=True, ge=1)
    last_exon: int = pa.Field(nullable=True, ge=1)
    assembly: str = pa.Field(nullable=True, isin=ASSEMBLIES)
    chrom: str = pa.Field(nullable=True)
    start: int = pa.Field(nullable=True, ge=1)
    end: int = pa.Field(nullable=True, ge=1)
    call_type: str = pa.Field(isin=CN_TYPES)
    copy_number: float = pa.Field(nullable=True, ge=0)
    ratio: float = pa.Field(nullable=True, ge=0)
    method: str = pa.Field(isin=CN_METHODS)

    @pa.check("last_exon", name="exon_order")
    def exon_order(cls, data: PolarsData) -> pl.LazyFrame:
        return _rule(data, pl.col("first_exon") <= pl.col("last_exon"))

    @pa.check("end", name="range_order")
    def range_order(cls, data: PolarsData) -> pl.LazyFrame:
        return _rule(data, pl.col("start") <= pl.col("end"))

    @pa.check("first_exon", name="exons_or_range")
    def exons_or_range(cls, data: PolarsData) -> pl.LazyFrame:
        exons = pl.col("first_exon").is_not_null() & pl.col("last_exon").is_not_null()
        genomic = pl.all_horizontal(pl.col(c).is_not_null() for c in ("assembly", "chrom", "start", "end"))
        return _rule(data, exons | genomic)

    @pa.check("method", name="one_call_per_method")
    def one_call_per_method(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(~pl.struct("sample_key", "gene_symbol", "method").is_duplicated())

    class Config:
        strict = False
