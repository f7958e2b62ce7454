"""The normalized cgdw schema, as SQLAlchemy models.

These models are the documentation of record (docs/schema.md is generated from them) and the source the
hand-written Alembic migrations were rendered from. DuckDB specifics (see shared/stack-notes.md):
keys come from sequences, constraints are declared in CREATE TABLE (DuckDB cannot add them later), and
fact tables carry no explicit index (an indexed DuckDB table cannot ALTER a column; hash joins do not
need them). The `ForeignKey`s below are the schema's relations, documented and checked by `cgdw db check`
(schema/integrity.py), but since migration 0003 not FOREIGN KEY constraints in the database: DuckDB 2.0
opens a file with foreign keys slower after every checkpoint, so a warehouse grew slower with every load.

Versioned fact tables (`VersionedFact`): trial exports are full snapshots, so a newer export never
overwrites a row. The changed row gets `superseded_by_run_id` set and the new value is inserted; the
current state is `superseded_by_run_id IS NULL`. Every fact row carries its lineage: the run that wrote
it, the source file and the line in that file.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from schema.vocabulary import (  # noqa: F401 (re-exported: the models' code lists)
    ASSEMBLIES,
    ATTRIBUTE_ENTITIES,
    ATTRIBUTE_TYPES,
    AUDIT_TABLES,
    CN_METHODS,
    CN_TYPES,
    CONSENT,
    DEATH_CAUSES,
    DIAGNOSES,
    EVENT_TYPES,
    MARKER_RESULTS,
    MRD_METHODS,
    MRD_QUALITATIVE,
    REPORTED_ENDPOINTS,
    RESPONSE,
    RUN_KINDS,
    RUN_STATUS,
    SAMPLE_TYPES,
    SEX,
    TCR_GROUPS,
    TISSUES,
)

# The tables loads write rows into by the hundred thousand: their primary keys (from sequences) are
# checked by `cgdw db check`, not indexed in the database (migration 0014: the indexes cost more than
# the loads).
CHECKED_KEY_TABLES = (
    "attribute_value", "baseline", "copy_number_call", "copy_number_segment", "enrolment", "immunophenotype",
    "mrd_measurement", "oncogenetic_result", "outcome_event", "rejected_record", "reported_endpoint",
    "treatment_response", "variant_annotation", "variant_call",
)  # fmt: skip


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "pk": "pk_%(table_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        }
    )


def surrogate_key(table: str) -> Mapped[int]:
    """An integer primary key fed by its own sequence (DuckDB has no SERIAL/IDENTITY that works here)."""
    sa.Sequence(f"seq_{table}", metadata=Base.metadata)
    return mapped_column(sa.Integer, primary_key=True, server_default=sa.text(f"nextval('seq_{table}')"))


def codes(column: str, values: tuple[str, ...], name: str | None = None) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name or f"{column}_code")


# --- ETL audit ------------------------------------------------------------------------------------


class EtlRun(Base):
    """One ETL run: one load of one source file, one views apply, one consent change or one purge, committed
    as one transaction (etl/ledger.py)."""

    __tablename__ = "etl_run"
    etl_run_id: Mapped[int] = surrogate_key("etl_run")
    command: Mapped[str] = mapped_column(sa.Text, doc="the cgdw command line that started the run")
    run_by: Mapped[str] = mapped_column(sa.Text, doc="operating-system user who ran it")
    code_version: Mapped[str] = mapped_column(sa.Text, doc="cgdw version (and git commit when known)")
    started_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, doc="UTC start time")
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime, doc="UTC end time")
    status: Mapped[str] = mapped_column(sa.Text, doc="running | succeeded | failed")
    rows_read: Mapped[int] = mapped_column(sa.Integer, server_default="0", doc="data rows read from source")
    rows_loaded: Mapped[int] = mapped_column(
        sa.Integer, server_default="0", doc="rows that passed validation"
    )
    rows_rejected: Mapped[int] = mapped_column(sa.Integer, server_default="0", doc="rows quarantined")
    counts_json: Mapped[str | None] = mapped_column(
        sa.Text, doc="JSON: per table rows inserted / superseded / unchanged, warnings"
    )
    kind: Mapped[str] = mapped_column(sa.Text, doc="what the run did: load | views_apply | consent | purge")
    __table_args__ = (
        codes("status", RUN_STATUS),
        codes("kind", RUN_KINDS),
        sa.CheckConstraint("rows_read = rows_loaded + rows_rejected", name="rows_add_up"),
    )


class SourceFile(Base):
    """A source file as loaded: hash, size, kind and layout. Loading the same bytes twice is a no-op."""

    __tablename__ = "source_file"
    source_file_id: Mapped[int] = surrogate_key("source_file")
    etl_run_id: Mapped[int] = mapped_column(sa.ForeignKey("etl_run.etl_run_id"), doc="run that loaded it")
    path: Mapped[str] = mapped_column(sa.Text, doc="path as given on the command line")
    file_name: Mapped[str] = mapped_column(sa.Text)
    sha256: Mapped[str] = mapped_column(sa.String(64), doc="hex SHA-256 of the bytes")
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    kind: Mapped[str] = mapped_column(sa.Text, doc="source kind: clinical, lab, vcf, maf, seg, cnv, mrd, ...")
    layout: Mapped[str] = mapped_column(sa.Text, doc="layout name (etl/sources/layouts/*.toml) or format")
    trial_group: Mapped[str | None] = mapped_column(sa.Text, doc="GRAALL, FRALLE, ... when the file has one")
    snapshot_date: Mapped[dt.date | None] = mapped_column(
        sa.Date, doc="the day the source system exported the file, when known: an older snapshot is refused"
    )
    __table_args__ = (sa.UniqueConstraint("sha256", "kind"),)


class RejectedRecord(Base):
    """Quarantine: one row per failed rule per source row, with the raw record kept whole."""

    __tablename__ = "rejected_record"
    rejected_record_id: Mapped[int] = surrogate_key("rejected_record")
    etl_run_id: Mapped[int] = mapped_column(sa.ForeignKey("etl_run.etl_run_id"))
    source_file_id: Mapped[int] = mapped_column(sa.ForeignKey("source_file.source_file_id"))
    line: Mapped[int] = mapped_column(sa.Integer, doc="line (or sheet row) in the source file, header = 1")
    column_name: Mapped[str | None] = mapped_column(sa.Text, doc="source column that failed")
    value: Mapped[str | None] = mapped_column(sa.Text, doc="the raw value as read")
    rule: Mapped[str] = mapped_column(sa.Text, doc="rule id, e.g. code:sexe, date, range, unique")
    message: Mapped[str] = mapped_column(sa.Text, doc="readable explanation")
    raw_record: Mapped[str] = mapped_column(sa.Text, doc="JSON object of the whole raw row")


class ViewVersion(Base):
    """The view registry: one row per released version of a SQL view (queries/views/NAME/vN.sql).

    A released version is immutable: `cgdw views apply` refuses SQL whose checksum differs from the one
    recorded here. The view exists in the warehouse as NAME_vN; NAME points at the latest version.
    """

    __tablename__ = "view_version"
    name: Mapped[str] = mapped_column(sa.Text, primary_key=True, doc="view name, e.g. cohort_patient")
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True, doc="N of NAME_vN")
    sql_sha256: Mapped[str] = mapped_column(sa.String(64), doc="hex SHA-256 of the view's SELECT")
    etl_run_id: Mapped[int] = mapped_column(sa.ForeignKey("etl_run.etl_run_id"), doc="run that released it")
    applied_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, doc="UTC time of release")
    retired_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime, doc="UTC time it was retired")
    generated_sql: Mapped[str | None] = mapped_column(
        sa.Text,
        doc="the SELECT of a version generated from the data dictionary (patient_attribute, "
        "sample_attribute); NULL for a version shipped as queries/views/NAME/vN.sql",
    )
    __table_args__ = (sa.CheckConstraint("version >= 1", name="version_positive"),)


class CohortRelease(Base):
    """The released versions of the named cohort definitions (queries/cohorts/NAME/vN.toml): like a view
    version, a released one is immutable: `cgdw views apply` refuses a file whose rules no longer give the
    released checksum (a change of rules is a new version)."""

    __tablename__ = "cohort_release"
    name: Mapped[str] = mapped_column(sa.Text, primary_key=True, doc="cohort name, e.g. adults_in_cr")
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True, doc="N of NAME@vN")
    rules_sha256: Mapped[str] = mapped_column(sa.String(64), doc="hex SHA-256 of the view and the rules")
    etl_run_id: Mapped[int] = mapped_column(sa.ForeignKey("etl_run.etl_run_id"), doc="run that released it")
    released_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, doc="UTC time of release")
    __table_args__ = (sa.CheckConstraint("version >= 1", name="version_positive"),)


class ViewMaterialization(Base):
    """A view version stored as a table, so that analyses of a large cohort need not recompute it.

    `cgdw views apply` (re)builds NAME_vN_materialized from the view when a run that changes data
    committed after the last build. Readers use the table only while no such run followed it, else the
    view itself: a materialisation is never read stale.
    """

    __tablename__ = "view_materialization"
    name: Mapped[str] = mapped_column(sa.Text, primary_key=True, doc="view name, e.g. cohort_patient")
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True, doc="N of NAME_vN")
    table_name: Mapped[str] = mapped_column(sa.Text, doc="the table holding the rows: NAME_vN_materialized")
    etl_run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("etl_run.etl_run_id"), doc="views apply run that built it"
    )
    built_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, doc="UTC time of the build")
    row_count: Mapped[int] = mapped_column(sa.BigInteger, doc="rows in the table")


class KeyFingerprint(Base):
    """Which pseudonymisation secret built this warehouse: a keyed fingerprint of it, never the secret.

    A load or consent change with another secret would give every patient a new key (the cohort doubled);
    it is refused instead (etl/privacy.py `check_key`). Rotating the secret is a rebuild (docs/privacy.md).
    """

    __tablename__ = "key_fingerprint"
    fingerprint: Mapped[str] = mapped_column(
        sa.String(64), primary_key=True, doc="hex HMAC-SHA256(secret, 'cgdw-key-fingerprint')"
    )
    recorded_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, doc="UTC time of the first keyed write")


class Publication(Base):
    """One publication: the read-only copy that readers open (`<name>.published.duckdb` beside the warehouse)
    was replaced by a copy of the warehouse as it stood after run `etl_run_id` (etl/warehouse.py,
    docs/concurrency.md). Recorded after the copy is in place, so the copy itself holds the rows before it.
    """

    __tablename__ = "publication"
    publication_id: Mapped[int] = surrogate_key("publication")
    published_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, doc="UTC time the copy was put in place")
    etl_run_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("etl_run.etl_run_id"), doc="the newest finished run the copy holds (none before a run)"
    )
    schema_revision: Mapped[str] = mapped_column(sa.Text, doc="Alembic revision of the copy")
    storage_version: Mapped[str | None] = mapped_column(
        sa.Text, doc="DuckDB storage version written (v1.4.0: DuckDB 1.4 opens it); NULL: this DuckDB's own"
    )
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger, doc="size of the copy")
    seconds: Mapped[float] = mapped_column(sa.Double, doc="time the copy took, for the data manager")


class PurgedPatient(Base):
    """A tombstone per purged patient, so that a later trial, lab, sample or MRD file cannot load them again.

    The tombstone is SHA-256 of 'cgdw-purged:' and the patient key, not the key itself: the audit holds
    nothing that a key from an extract can be matched with, while a loader, which computes the key of each
    row it reads, can.
    """

    __tablename__ = "purged_patient"
    tombstone: Mapped[str] = mapped_column(
        sa.String(64), primary_key=True, doc="hex SHA-256 of 'cgdw-purged:' || patient_key"
    )
    etl_run_id: Mapped[int] = mapped_column(sa.ForeignKey("etl_run.etl_run_id"), doc="the purge run")
    purged_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, doc="UTC time of the purge")


# --- Reference -------------------------------------------------------------------------------------


class Protocol(Base):
    """A treatment protocol (clinical trial). Seeded by the migrations."""

    __tablename__ = "protocol"
    protocol_code: Mapped[str] = mapped_column(sa.Text, primary_key=True, doc="e.g. GRAALL-2005")
    trial_group: Mapped[str] = mapped_column(sa.Text, doc="cooperative group whose database exports it")
    population: Mapped[str] = mapped_column(sa.Text, doc="adult | pediatric | all")
    disease: Mapped[str] = mapped_column(sa.Text, doc="target disease, e.g. ALL, AML")
    registry_id: Mapped[str | None] = mapped_column(sa.Text, doc="ClinicalTrials.gov / EudraCT id")
    title: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (codes("population", ("adult", "pediatric", "all")),)


class MrdThreshold(Base):
    """The positivity threshold of an MRD method (reference data, seeded by the migrations, each row with
    its published source). A row for one time point overrides the method's row for every time point
    ('*'), where a protocol sets its own. `mrd_result` (v3) and the generated `patient_mrd` view read it;
    an analysis can override it (`--mrd-threshold METHOD=VALUE`, docs/mrd.md)."""

    __tablename__ = "mrd_threshold"
    method: Mapped[str] = mapped_column(
        sa.Text, primary_key=True, doc="ASO-PCR | ddPCR | MFC | LSC-MFC | NGS-IGTCR"
    )
    time_point: Mapped[str] = mapped_column(
        sa.Text, primary_key=True, server_default="*", doc="protocol time point, or * for every time point"
    )
    threshold: Mapped[float] = mapped_column(sa.Double, doc="as a fraction of cells")
    positive_at: Mapped[str] = mapped_column(
        sa.Text, doc=">= (at or above the threshold is positive) or > (above it: 0 means any detectable)"
    )
    source: Mapped[str] = mapped_column(sa.Text, doc="where the threshold is published")
    __table_args__ = (
        codes("method", MRD_METHODS),
        codes("positive_at", (">=", ">")),
        sa.CheckConstraint("threshold >= 0 AND threshold <= 1", name="fraction_range"),
    )


class Gene(Base):
    __tablename__ = "gene"
    gene_id: Mapped[int] = surrogate_key("gene")
    symbol: Mapped[str] = mapped_column(sa.Text, unique=True, doc="HGNC symbol")
    hgnc_id: Mapped[str | None] = mapped_column(sa.Text)
    chrom: Mapped[str | None] = mapped_column(sa.Text, doc="chromosome without 'chr'")


class Transcript(Base):
    __tablename__ = "transcript"
    transcript_id: Mapped[int] = surrogate_key("transcript")
    gene_id: Mapped[int] = mapped_column(sa.ForeignKey("gene.gene_id"))
    accession: Mapped[str] = mapped_column(sa.Text, unique=True, doc="versionless ENST / NM accession")
    refseq_accession: Mapped[str | None] = mapped_column(sa.Text, doc="matching RefSeq (MANE) accession")
    is_canonical: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    is_mane_select: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())


class Exon(Base):
    __tablename__ = "exon"
    exon_id: Mapped[int] = surrogate_key("exon")
    transcript_id: Mapped[int] = mapped_column(sa.ForeignKey("transcript.transcript_id"))
    assembly: Mapped[str] = mapped_column(sa.Text)
    exon_number: Mapped[int] = mapped_column(sa.Integer)
    chrom: Mapped[str] = mapped_column(sa.Text)
    strand: Mapped[str] = mapped_column(sa.Text, doc="+ or -")
    start: Mapped[int] = mapped_column(sa.BigInteger, doc="1-based inclusive")
    end: Mapped[int] = mapped_column(sa.BigInteger, doc="1-based inclusive")
    source: Mapped[str] = mapped_column(sa.Text, doc="annotation and release the coordinates come from")
    __table_args__ = (
        sa.UniqueConstraint("transcript_id", "assembly", "exon_number"),
        codes("strand", ("+", "-")),
        codes("assembly", ASSEMBLIES),
        sa.CheckConstraint('start <= "end"', name="start_le_end"),
    )


class GenePanel(Base):
    __tablename__ = "gene_panel"
    gene_panel_id: Mapped[int] = surrogate_key("gene_panel")
    name: Mapped[str] = mapped_column(sa.Text)
    version: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (sa.UniqueConstraint("name", "version"),)


class GenePanelGene(Base):
    """Genes covered by a panel: a gene off the panel is 'not sequenced', not 'wild type'."""

    __tablename__ = "gene_panel_gene"
    gene_panel_id: Mapped[int] = mapped_column(sa.ForeignKey("gene_panel.gene_panel_id"), primary_key=True)
    gene_id: Mapped[int] = mapped_column(sa.ForeignKey("gene.gene_id"), primary_key=True)


class TcrStatus(Base):
    """TCR status (immunogenotype) codes and the four Table 1 groups they fall in."""

    __tablename__ = "tcr_status"
    tcr_status_code: Mapped[str] = mapped_column(sa.Text, primary_key=True, doc="IM0, IMD, IMG, IMB, ...")
    label: Mapped[str] = mapped_column(sa.Text)
    tcr_group: Mapped[str] = mapped_column(sa.Text, doc="immature | cortical | mature_ab | mature_gd")
    __table_args__ = (codes("tcr_group", TCR_GROUPS),)


class OncogeneticMarker(Base):
    """Oncogenetic markers tested by the reference laboratory (RQ-PCR / FISH)."""

    __tablename__ = "oncogenetic_marker"
    marker_code: Mapped[str] = mapped_column(sa.Text, primary_key=True, doc="TLX1, TLX3, SIL-TAL1, ...")
    label: Mapped[str] = mapped_column(sa.Text)
    is_subgroup: Mapped[bool] = mapped_column(
        sa.Boolean, doc="part of the mutually exclusive oncogenetic subgroups of Table 1 (HOXA is not)"
    )


# --- Clinical --------------------------------------------------------------------------------------


class Patient(Base):
    """Patient identity only: the pseudonymous key never changes, so every fact table can point at it."""

    __tablename__ = "patient"
    patient_id: Mapped[int] = surrogate_key("patient")
    patient_key: Mapped[str] = mapped_column(
        sa.Text, unique=True, doc="HMAC-SHA256 of trial group + source patient id (key kept outside the DB)"
    )
    trial_group: Mapped[str] = mapped_column(
        sa.Text, doc="cooperative group whose database holds the patient"
    )
    created_run_id: Mapped[int] = mapped_column(sa.ForeignKey("etl_run.etl_run_id"))
    source_file_id: Mapped[int] = mapped_column(sa.ForeignKey("source_file.source_file_id"))


class VersionedFact:
    """Lineage and snapshot versioning shared by every fact table."""

    @declared_attr
    def etl_run_id(cls) -> Mapped[int]:
        return mapped_column(sa.ForeignKey("etl_run.etl_run_id"), doc="run that wrote this row")

    @declared_attr
    def source_file_id(cls) -> Mapped[int]:
        return mapped_column(sa.ForeignKey("source_file.source_file_id"), doc="file the row came from")

    @declared_attr
    def source_line(cls) -> Mapped[int]:
        return mapped_column(sa.Integer, doc="line (or sheet row) in that file, header = 1")

    @declared_attr
    def superseded_by_run_id(cls) -> Mapped[int | None]:
        return mapped_column(
            sa.ForeignKey("etl_run.etl_run_id"),
            nullable=True,
            doc="run whose newer snapshot replaced this row; NULL = current",
        )


class Enrolment(VersionedFact, Base):
    """The trial registration record: protocol, diagnosis, demographics at diagnosis, consent."""

    __tablename__ = "enrolment"
    enrolment_id: Mapped[int] = surrogate_key("enrolment")
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.patient_id"))
    protocol_code: Mapped[str] = mapped_column(sa.ForeignKey("protocol.protocol_code"))
    diagnosis: Mapped[str] = mapped_column(
        sa.Text,
        doc="T-ALL, T-LBL, B-ALL, AML, MPAL, other, or the source's own code when it is outside that list "
        "(kept and flagged by the load, never rejected: the list is open)",
    )
    diagnosis_year: Mapped[int | None] = mapped_column(
        sa.Integer, doc="year only: dates are not stored; NULL when the source gives none"
    )
    sex: Mapped[str | None] = mapped_column(sa.Text, doc="M | F; NULL when the source gives none")
    age_at_diagnosis_years: Mapped[float | None] = mapped_column(
        sa.Double, doc="NULL when the source gives none"
    )
    consent_status: Mapped[str] = mapped_column(sa.Text, doc="given | withdrawn")
    __table_args__ = (
        codes("sex", SEX),
        codes("consent_status", CONSENT),
        sa.CheckConstraint("age_at_diagnosis_years >= 0 AND age_at_diagnosis_years < 110", name="age_range"),
        sa.CheckConstraint("diagnosis_year BETWEEN 1970 AND 2100", name="year_range"),
    )


class Baseline(VersionedFact, Base):
    """Clinical presentation at diagnosis. NULL = not evaluated."""

    __tablename__ = "baseline"
    baseline_id: Mapped[int] = surrogate_key("baseline")
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.patient_id"))
    wbc_g_per_l: Mapped[float | None] = mapped_column(sa.Double, doc="white blood cells, x10^9/L")
    cns_involvement: Mapped[bool | None] = mapped_column(sa.Boolean)
    mediastinal_mass: Mapped[bool | None] = mapped_column(sa.Boolean)
    __table_args__ = (sa.CheckConstraint("wbc_g_per_l >= 0 AND wbc_g_per_l <= 2000", name="wbc_range"),)


class Immunophenotype(VersionedFact, Base):
    """Reference-laboratory immunophenotype: ETP classification and TCR status. NULL = not evaluable."""

    __tablename__ = "immunophenotype"
    immunophenotype_id: Mapped[int] = surrogate_key("immunophenotype")
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.patient_id"))
    etp_status: Mapped[bool | None] = mapped_column(sa.Boolean, doc="early T-cell precursor ALL")
    tcr_status_code: Mapped[str | None] = mapped_column(sa.ForeignKey("tcr_status.tcr_status_code"))


class OncogeneticResult(VersionedFact, Base):
    __tablename__ = "oncogenetic_result"
    oncogenetic_result_id: Mapped[int] = surrogate_key("oncogenetic_result")
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.patient_id"))
    marker_code: Mapped[str] = mapped_column(sa.ForeignKey("oncogenetic_marker.marker_code"))
    result: Mapped[str] = mapped_column(sa.Text, doc="positive | negative | not_done")
    method: Mapped[str | None] = mapped_column(sa.Text, doc="RQ-PCR, FISH, ...")
    __table_args__ = (codes("result", MARKER_RESULTS),)


class TreatmentResponse(VersionedFact, Base):
    __tablename__ = "treatment_response"
    treatment_response_id: Mapped[int] = surrogate_key("treatment_response")
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.patient_id"))
    complete_remission: Mapped[bool] = mapped_column(sa.Boolean, doc="CR after induction")
    cr_day: Mapped[float | None] = mapped_column(
        sa.Double, doc="days from diagnosis to CR (fractional when the source sent months)"
    )
    prednisone_response: Mapped[str | None] = mapped_column(
        sa.Text, doc="good (< 1000 blasts/uL after the 7-day pre-phase) | poor; NULL = not evaluated"
    )
    hsct_in_cr1: Mapped[bool | None] = mapped_column(sa.Boolean, doc="allogeneic HSCT in first CR")
    hsct_day: Mapped[float | None] = mapped_column(sa.Double, doc="days from diagnosis to HSCT")
    __table_args__ = (
        codes("prednisone_response", RESPONSE),
        sa.CheckConstraint("cr_day >= 0 AND hsct_day >= 0", name="days_not_negative"),
        sa.CheckConstraint("complete_remission OR cr_day IS NULL", name="cr_day_needs_cr"),
    )


class OutcomeEvent(VersionedFact, Base):
    """Relapses, death and last follow-up as day offsets from diagnosis (event_seq numbers relapses)."""

    __tablename__ = "outcome_event"
    outcome_event_id: Mapped[int] = surrogate_key("outcome_event")
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.patient_id"))
    event_type: Mapped[str] = mapped_column(sa.Text, doc="relapse | death | last_follow_up")
    event_seq: Mapped[int] = mapped_column(sa.Integer, doc="1 = first relapse, 2 = second; 1 otherwise")
    day: Mapped[float] = mapped_column(
        sa.Double, doc="days from diagnosis; fractional when the source sent months (months x 30.4375)"
    )
    cause: Mapped[str | None] = mapped_column(
        sa.Text, doc="death cause: leukemia, toxicity, infection, other"
    )
    in_cr: Mapped[bool | None] = mapped_column(
        sa.Boolean, doc="for deaths: patient in first CR (reached CR, no relapse before death)"
    )
    __table_args__ = (
        codes("event_type", EVENT_TYPES),
        codes("cause", DEATH_CAUSES),
        sa.CheckConstraint("day >= 0", name="day_not_negative"),
        sa.CheckConstraint("event_seq >= 1", name="seq_positive"),
    )


class ReportedEndpoint(VersionedFact, Base):
    """An endpoint as the source reports it, ready-made (cBioPortal EFS_*, DFS_*, PFS_*): its own time and
    status, for studies that give no CR or relapse to derive it from. The endpoint view prefers it."""

    __tablename__ = "reported_endpoint"
    reported_endpoint_id: Mapped[int] = surrogate_key("reported_endpoint")
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.patient_id"))
    endpoint: Mapped[str] = mapped_column(sa.Text, doc="efs | dfs | pfs")
    day: Mapped[float] = mapped_column(sa.Double, doc="days from diagnosis to the event or censoring")
    event: Mapped[bool] = mapped_column(sa.Boolean, doc="true = event, false = censored")
    __table_args__ = (
        codes("endpoint", REPORTED_ENDPOINTS),
        sa.CheckConstraint("day >= 0", name="day_not_negative"),
    )


# --- Declared attributes ---------------------------------------------------------------------------


class Attribute(Base):
    """The data dictionary: every attribute a layout declares, or a study import keeps, beyond the canonical
    fields. The attribute's name is its column in the generated patient_attribute / sample_attribute
    views (docs/attributes.md)."""

    __tablename__ = "attribute"
    attribute_name: Mapped[str] = mapped_column(
        sa.Text, primary_key=True, doc="snake_case, e.g. treatment_arm"
    )
    entity: Mapped[str] = mapped_column(sa.Text, doc="patient | sample: what one value describes")
    label: Mapped[str] = mapped_column(sa.Text, doc="display name")
    description: Mapped[str | None] = mapped_column(sa.Text)
    data_type: Mapped[str] = mapped_column(
        sa.Text, doc="categorical | boolean | number | integer | day (offset from diagnosis) | text"
    )
    unit: Mapped[str | None] = mapped_column(sa.Text, doc="unit of a number, e.g. x10^9/L")
    levels: Mapped[str | None] = mapped_column(
        sa.Text, doc='categorical: JSON list of {"code", "label"} in display order'
    )
    time_point: Mapped[str | None] = mapped_column(sa.Text, doc="protocol time point, e.g. D29")
    source: Mapped[str] = mapped_column(sa.Text, doc="layout or study that declared it")
    source_column: Mapped[str] = mapped_column(sa.Text, doc="column it is read from")
    etl_run_id: Mapped[int] = mapped_column(sa.ForeignKey("etl_run.etl_run_id"), doc="run that declared it")
    __table_args__ = (
        codes("entity", ATTRIBUTE_ENTITIES),
        codes("data_type", ATTRIBUTE_TYPES),
        sa.CheckConstraint("regexp_full_match(attribute_name, '[a-z][a-z0-9_]*')", name="snake_case"),
    )


class AttributeValue(VersionedFact, Base):
    """One value of a declared attribute for a patient (sample_id NULL) or one of their samples; typed:
    categorical codes and text in value_text, numbers, integers and days in value_number, booleans in
    value_boolean. A missing value has no row."""

    __tablename__ = "attribute_value"
    attribute_value_id: Mapped[int] = surrogate_key("attribute_value")
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.patient_id"))
    sample_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sample.sample_id"))
    attribute_name: Mapped[str] = mapped_column(sa.ForeignKey("attribute.attribute_name"))
    value_text: Mapped[str | None] = mapped_column(sa.Text)
    value_number: Mapped[float | None] = mapped_column(sa.Double)
    value_boolean: Mapped[bool | None] = mapped_column(sa.Boolean)
    __table_args__ = (
        sa.CheckConstraint(
            "(value_text IS NOT NULL)::INTEGER + (value_number IS NOT NULL)::INTEGER "
            "+ (value_boolean IS NOT NULL)::INTEGER = 1",
            name="one_value",
        ),
    )


# --- Genomic and MRD (loaders come with the genomics issue) ------------------------------------------


class SequencingAssay(Base):
    __tablename__ = "sequencing_assay"
    sequencing_assay_id: Mapped[int] = surrogate_key("sequencing_assay")
    name: Mapped[str] = mapped_column(sa.Text, doc="e.g. T-ALL 80-gene capture")
    version: Mapped[str] = mapped_column(sa.Text)
    gene_panel_id: Mapped[int | None] = mapped_column(sa.ForeignKey("gene_panel.gene_panel_id"))
    assembly: Mapped[str] = mapped_column(sa.Text)
    __table_args__ = (sa.UniqueConstraint("name", "version"), codes("assembly", ASSEMBLIES))


class Sample(Base):
    __tablename__ = "sample"
    sample_id: Mapped[int] = surrogate_key("sample")
    sample_key: Mapped[str] = mapped_column(sa.Text, unique=True, doc="sequencing-lab sample id")
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.patient_id"))
    sample_type: Mapped[str] = mapped_column(sa.Text)
    tissue: Mapped[str | None] = mapped_column(sa.Text)
    collection_day: Mapped[int | None] = mapped_column(sa.Integer, doc="days from diagnosis")
    sequencing_assay_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("sequencing_assay.sequencing_assay_id")
    )
    pipeline_version: Mapped[str | None] = mapped_column(sa.Text)
    etl_run_id: Mapped[int] = mapped_column(sa.ForeignKey("etl_run.etl_run_id"))
    source_file_id: Mapped[int] = mapped_column(sa.ForeignKey("source_file.source_file_id"))
    source_line: Mapped[int] = mapped_column(sa.Integer)
    __table_args__ = (codes("sample_type", SAMPLE_TYPES), codes("tissue", TISSUES))


class Variant(Base):
    """A small variant, stored once per (assembly, chrom, pos, ref, alt), normalised and biallelic."""

    __tablename__ = "variant"
    variant_id: Mapped[int] = surrogate_key("variant")
    assembly: Mapped[str] = mapped_column(sa.Text)
    chrom: Mapped[str] = mapped_column(sa.Text)
    pos: Mapped[int] = mapped_column(sa.BigInteger)
    ref: Mapped[str] = mapped_column(sa.Text)
    alt: Mapped[str] = mapped_column(sa.Text)
    __table_args__ = (
        sa.UniqueConstraint("assembly", "chrom", "pos", "ref", "alt"),
        codes("assembly", ASSEMBLIES),
        sa.CheckConstraint("pos >= 1", name="pos_positive"),
    )


class VariantAnnotation(Base):
    """Consequence of a variant on one transcript (VEP CSQ, SnpEff ANN or MAF), stored once per source.

    `is_selected` marks the one transcript per variant and gene that analyses use, chosen
    deterministically (`selection_rule`: MANE Select, else the reference canonical transcript, else the
    annotator's canonical flag, else the lowest accession)."""

    __tablename__ = "variant_annotation"
    variant_annotation_id: Mapped[int] = surrogate_key("variant_annotation")
    variant_id: Mapped[int] = mapped_column(sa.ForeignKey("variant.variant_id"))
    gene_symbol: Mapped[str | None] = mapped_column(sa.Text)
    transcript_accession: Mapped[str] = mapped_column(sa.Text, doc="as annotated, with version")
    consequence: Mapped[str | None] = mapped_column(sa.Text, doc="Sequence Ontology terms, '&'-joined")
    impact: Mapped[str | None] = mapped_column(sa.Text, doc="HIGH, MODERATE, LOW, MODIFIER")
    hgvsc: Mapped[str | None] = mapped_column(sa.Text)
    hgvsp: Mapped[str | None] = mapped_column(sa.Text)
    exon_number: Mapped[int | None] = mapped_column(sa.Integer, doc="exon hit (5 of '5/8')")
    exon_count: Mapped[int | None] = mapped_column(sa.Integer, doc="exons of the transcript (8 of '5/8')")
    protein_position: Mapped[int | None] = mapped_column(sa.Integer, doc="first amino acid affected")
    amino_acids: Mapped[str | None] = mapped_column(sa.Text, doc="reference/variant amino acids, e.g. N/S")
    is_canonical: Mapped[bool | None] = mapped_column(sa.Boolean, doc="annotator's CANONICAL flag")
    is_mane_select: Mapped[bool | None] = mapped_column(sa.Boolean)
    is_selected: Mapped[bool] = mapped_column(sa.Boolean, doc="the transcript analyses use for this gene")
    selection_rule: Mapped[str | None] = mapped_column(sa.Text, doc="why it was selected")
    annotation_source: Mapped[str] = mapped_column(sa.Text, doc="VEP, SnpEff or MAF, with version")
    etl_run_id: Mapped[int] = mapped_column(sa.ForeignKey("etl_run.etl_run_id"))
    source_file_id: Mapped[int] = mapped_column(sa.ForeignKey("source_file.source_file_id"))
    # Unique, checked by `cgdw db check` rather than by an index that cost more than the loads (0014).
    __table_args__ = (
        {"info": {"checked_unique": [("variant_id", "transcript_accession", "annotation_source")]}},
    )


class VariantCall(VersionedFact, Base):
    """A variant seen in a sample. A newer file for the same sample supersedes the calls it drops."""

    __tablename__ = "variant_call"
    variant_call_id: Mapped[int] = surrogate_key("variant_call")
    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("sample.sample_id"))
    variant_id: Mapped[int] = mapped_column(sa.ForeignKey("variant.variant_id"))
    genotype: Mapped[str | None] = mapped_column(sa.Text, doc="GT as called, e.g. 0/1")
    vaf: Mapped[float | None] = mapped_column(sa.Double, doc="variant allele fraction")
    depth: Mapped[int | None] = mapped_column(sa.Integer)
    alt_depth: Mapped[int | None] = mapped_column(sa.Integer)
    filter: Mapped[str] = mapped_column(sa.Text, doc="PASS or the failed filters, ';'-joined")
    __table_args__ = (
        sa.CheckConstraint("vaf >= 0 AND vaf <= 1", name="vaf_range"),
        sa.CheckConstraint("depth >= 0 AND alt_depth >= 0", name="depth_not_negative"),
    )


class CopyNumberSegment(VersionedFact, Base):
    """A segment of a SEG file (log2 ratio over a genomic range)."""

    __tablename__ = "copy_number_segment"
    copy_number_segment_id: Mapped[int] = surrogate_key("copy_number_segment")
    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("sample.sample_id"))
    assembly: Mapped[str] = mapped_column(sa.Text)
    chrom: Mapped[str] = mapped_column(sa.Text)
    start: Mapped[int] = mapped_column(sa.BigInteger)
    end: Mapped[int] = mapped_column(sa.BigInteger)
    num_markers: Mapped[int | None] = mapped_column(sa.Integer)
    seg_mean: Mapped[float] = mapped_column(sa.Double, doc="log2 copy ratio")
    __table_args__ = (
        codes("assembly", ASSEMBLIES),
        sa.CheckConstraint('start <= "end"', name="start_le_end"),
    )


class CopyNumberCall(VersionedFact, Base):
    """A per-gene copy-number call over an exon range; a second method confirms, it is not a new call."""

    __tablename__ = "copy_number_call"
    copy_number_call_id: Mapped[int] = surrogate_key("copy_number_call")
    sample_id: Mapped[int] = mapped_column(sa.ForeignKey("sample.sample_id"))
    gene_id: Mapped[int] = mapped_column(sa.ForeignKey("gene.gene_id"))
    assembly: Mapped[str | None] = mapped_column(sa.Text)
    chrom: Mapped[str | None] = mapped_column(sa.Text)
    start: Mapped[int | None] = mapped_column(sa.BigInteger)
    end: Mapped[int | None] = mapped_column(sa.BigInteger)
    first_exon: Mapped[int | None] = mapped_column(sa.Integer)
    last_exon: Mapped[int | None] = mapped_column(sa.Integer)
    call_type: Mapped[str] = mapped_column(sa.Text)
    copy_number: Mapped[float | None] = mapped_column(sa.Double)
    ratio: Mapped[float | None] = mapped_column(sa.Double, doc="copy ratio (MLPA probe ratio, 2^log2)")
    method: Mapped[str] = mapped_column(sa.Text)
    from_segment: Mapped[bool] = mapped_column(
        sa.Boolean, doc="derived by intersecting SEG segments with exon coordinates"
    )
    confirms_copy_number_call_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("copy_number_call.copy_number_call_id"), doc="the NGS call this one confirms"
    )
    __table_args__ = (
        codes("call_type", CN_TYPES),
        codes("method", CN_METHODS),
        sa.CheckConstraint("first_exon <= last_exon", name="exon_order"),
        sa.CheckConstraint("copy_number >= 0 AND ratio >= 0", name="not_negative"),
    )


class MrdMeasurement(VersionedFact, Base):
    """A measurable-residual-disease result, normalised to a fraction with the original kept."""

    __tablename__ = "mrd_measurement"
    mrd_measurement_id: Mapped[int] = surrogate_key("mrd_measurement")
    patient_id: Mapped[int] = mapped_column(sa.ForeignKey("patient.patient_id"))
    sample_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sample.sample_id"))
    time_point: Mapped[str] = mapped_column(sa.Text, doc="protocol time point, e.g. MRD1")
    day: Mapped[int | None] = mapped_column(sa.Integer, doc="days from diagnosis")
    method: Mapped[str] = mapped_column(sa.Text)
    target: Mapped[str | None] = mapped_column(sa.Text, doc="rearrangement / marker followed")
    value_fraction: Mapped[float | None] = mapped_column(sa.Double, doc="normalised value, 0..1")
    value_original: Mapped[str | None] = mapped_column(sa.Text, doc="value as sent")
    unit_original: Mapped[str | None] = mapped_column(sa.Text, doc="unit as sent")
    limit_of_detection: Mapped[float | None] = mapped_column(sa.Double, doc="as a fraction")
    quantitative_range_low: Mapped[float | None] = mapped_column(sa.Double, doc="as a fraction")
    qualitative_result: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (
        codes("method", MRD_METHODS),
        codes("qualitative_result", MRD_QUALITATIVE),
        sa.CheckConstraint("value_fraction >= 0 AND value_fraction <= 1", name="fraction_range"),
    )
