"""Initial schema: audit, reference, clinical, genomic and MRD tables, with reference codes.

Rendered once from schema/models.py (`python -m schema.render`) and frozen: later changes are new revisions.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import csv
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE seq_etl_run")
    op.execute("CREATE SEQUENCE seq_source_file")
    op.execute("CREATE SEQUENCE seq_rejected_record")
    op.execute("CREATE SEQUENCE seq_gene")
    op.execute("CREATE SEQUENCE seq_transcript")
    op.execute("CREATE SEQUENCE seq_exon")
    op.execute("CREATE SEQUENCE seq_gene_panel")
    op.execute("CREATE SEQUENCE seq_patient")
    op.execute("CREATE SEQUENCE seq_enrolment")
    op.execute("CREATE SEQUENCE seq_baseline")
    op.execute("CREATE SEQUENCE seq_immunophenotype")
    op.execute("CREATE SEQUENCE seq_oncogenetic_result")
    op.execute("CREATE SEQUENCE seq_treatment_response")
    op.execute("CREATE SEQUENCE seq_outcome_event")
    op.execute("CREATE SEQUENCE seq_sequencing_assay")
    op.execute("CREATE SEQUENCE seq_sample")
    op.execute("CREATE SEQUENCE seq_variant")
    op.execute("CREATE SEQUENCE seq_variant_annotation")
    op.execute("CREATE SEQUENCE seq_variant_call")
    op.execute("CREATE SEQUENCE seq_copy_number_segment")
    op.execute("CREATE SEQUENCE seq_copy_number_call")
    op.execute("CREATE SEQUENCE seq_mrd_measurement")
    op.create_table(
        "etl_run",
        sa.Column(
            "etl_run_id", sa.Integer(), server_default=sa.text("nextval('seq_etl_run')"), nullable=False
        ),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("run_by", sa.Text(), nullable=False),
        sa.Column("code_version", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("rows_read", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_loaded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("counts_json", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_etl_run_status_code")
        ),
        sa.CheckConstraint("rows_read = rows_loaded + rows_rejected", name=op.f("ck_etl_run_rows_add_up")),
        sa.PrimaryKeyConstraint("etl_run_id", name=op.f("pk_etl_run")),
    )
    op.create_table(
        "gene",
        sa.Column("gene_id", sa.Integer(), server_default=sa.text("nextval('seq_gene')"), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("hgnc_id", sa.Text(), nullable=True),
        sa.Column("chrom", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("gene_id", name=op.f("pk_gene")),
        sa.UniqueConstraint("symbol", name=op.f("uq_gene_symbol")),
    )
    op.create_table(
        "gene_panel",
        sa.Column(
            "gene_panel_id", sa.Integer(), server_default=sa.text("nextval('seq_gene_panel')"), nullable=False
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("gene_panel_id", name=op.f("pk_gene_panel")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_gene_panel_name_version")),
    )
    op.create_table(
        "oncogenetic_marker",
        sa.Column("marker_code", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("is_subgroup", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("marker_code", name=op.f("pk_oncogenetic_marker")),
    )
    op.create_table(
        "protocol",
        sa.Column("protocol_code", sa.Text(), nullable=False),
        sa.Column("trial_group", sa.Text(), nullable=False),
        sa.Column("population", sa.Text(), nullable=False),
        sa.Column("disease", sa.Text(), nullable=False),
        sa.Column("registry_id", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "population IN ('adult', 'pediatric', 'all')", name=op.f("ck_protocol_population_code")
        ),
        sa.PrimaryKeyConstraint("protocol_code", name=op.f("pk_protocol")),
    )
    op.create_table(
        "tcr_status",
        sa.Column("tcr_status_code", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("tcr_group", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "tcr_group IN ('immature', 'cortical', 'mature_ab', 'mature_gd')",
            name=op.f("ck_tcr_status_tcr_group_code"),
        ),
        sa.PrimaryKeyConstraint("tcr_status_code", name=op.f("pk_tcr_status")),
    )
    op.create_table(
        "variant",
        sa.Column(
            "variant_id", sa.Integer(), server_default=sa.text("nextval('seq_variant')"), nullable=False
        ),
        sa.Column("assembly", sa.Text(), nullable=False),
        sa.Column("chrom", sa.Text(), nullable=False),
        sa.Column("pos", sa.BigInteger(), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("alt", sa.Text(), nullable=False),
        sa.CheckConstraint("assembly IN ('GRCh37', 'GRCh38')", name=op.f("ck_variant_assembly_code")),
        sa.CheckConstraint("pos >= 1", name=op.f("ck_variant_pos_positive")),
        sa.PrimaryKeyConstraint("variant_id", name=op.f("pk_variant")),
        sa.UniqueConstraint(
            "assembly", "chrom", "pos", "ref", "alt", name=op.f("uq_variant_assembly_chrom_pos_ref_alt")
        ),
    )
    op.create_table(
        "gene_panel_gene",
        sa.Column("gene_panel_id", sa.Integer(), nullable=False),
        sa.Column("gene_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["gene_id"], ["gene.gene_id"], name=op.f("fk_gene_panel_gene_gene_id")),
        sa.ForeignKeyConstraint(
            ["gene_panel_id"], ["gene_panel.gene_panel_id"], name=op.f("fk_gene_panel_gene_gene_panel_id")
        ),
        sa.PrimaryKeyConstraint("gene_panel_id", "gene_id", name=op.f("pk_gene_panel_gene")),
    )
    op.create_table(
        "sequencing_assay",
        sa.Column(
            "sequencing_assay_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_sequencing_assay')"),
            nullable=False,
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("gene_panel_id", sa.Integer(), nullable=True),
        sa.Column("assembly", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "assembly IN ('GRCh37', 'GRCh38')", name=op.f("ck_sequencing_assay_assembly_code")
        ),
        sa.ForeignKeyConstraint(
            ["gene_panel_id"], ["gene_panel.gene_panel_id"], name=op.f("fk_sequencing_assay_gene_panel_id")
        ),
        sa.PrimaryKeyConstraint("sequencing_assay_id", name=op.f("pk_sequencing_assay")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_sequencing_assay_name_version")),
    )
    op.create_table(
        "source_file",
        sa.Column(
            "source_file_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_source_file')"),
            nullable=False,
        ),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("layout", sa.Text(), nullable=False),
        sa.Column("trial_group", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_source_file_etl_run_id")
        ),
        sa.PrimaryKeyConstraint("source_file_id", name=op.f("pk_source_file")),
        sa.UniqueConstraint("sha256", "kind", name=op.f("uq_source_file_sha256_kind")),
    )
    op.create_table(
        "transcript",
        sa.Column(
            "transcript_id", sa.Integer(), server_default=sa.text("nextval('seq_transcript')"), nullable=False
        ),
        sa.Column("gene_id", sa.Integer(), nullable=False),
        sa.Column("accession", sa.Text(), nullable=False),
        sa.Column("refseq_accession", sa.Text(), nullable=True),
        sa.Column("is_canonical", sa.Boolean(), server_default=sa.text("0"), nullable=False),
        sa.Column("is_mane_select", sa.Boolean(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["gene_id"], ["gene.gene_id"], name=op.f("fk_transcript_gene_id")),
        sa.PrimaryKeyConstraint("transcript_id", name=op.f("pk_transcript")),
        sa.UniqueConstraint("accession", name=op.f("uq_transcript_accession")),
    )
    op.create_table(
        "exon",
        sa.Column("exon_id", sa.Integer(), server_default=sa.text("nextval('seq_exon')"), nullable=False),
        sa.Column("transcript_id", sa.Integer(), nullable=False),
        sa.Column("assembly", sa.Text(), nullable=False),
        sa.Column("exon_number", sa.Integer(), nullable=False),
        sa.Column("chrom", sa.Text(), nullable=False),
        sa.Column("strand", sa.Text(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.CheckConstraint("assembly IN ('GRCh37', 'GRCh38')", name=op.f("ck_exon_assembly_code")),
        sa.CheckConstraint("strand IN ('+', '-')", name=op.f("ck_exon_strand_code")),
        sa.CheckConstraint('start <= "end"', name=op.f("ck_exon_start_le_end")),
        sa.ForeignKeyConstraint(
            ["transcript_id"], ["transcript.transcript_id"], name=op.f("fk_exon_transcript_id")
        ),
        sa.PrimaryKeyConstraint("exon_id", name=op.f("pk_exon")),
        sa.UniqueConstraint(
            "transcript_id",
            "assembly",
            "exon_number",
            name=op.f("uq_exon_transcript_id_assembly_exon_number"),
        ),
    )
    op.create_table(
        "patient",
        sa.Column(
            "patient_id", sa.Integer(), server_default=sa.text("nextval('seq_patient')"), nullable=False
        ),
        sa.Column("patient_key", sa.Text(), nullable=False),
        sa.Column("trial_group", sa.Text(), nullable=False),
        sa.Column("created_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_patient_created_run_id")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"], ["source_file.source_file_id"], name=op.f("fk_patient_source_file_id")
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_patient")),
        sa.UniqueConstraint("patient_key", name=op.f("uq_patient_patient_key")),
    )
    op.create_table(
        "rejected_record",
        sa.Column(
            "rejected_record_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_rejected_record')"),
            nullable=False,
        ),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("column_name", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raw_record", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_rejected_record_etl_run_id")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"], ["source_file.source_file_id"], name=op.f("fk_rejected_record_source_file_id")
        ),
        sa.PrimaryKeyConstraint("rejected_record_id", name=op.f("pk_rejected_record")),
    )
    op.create_table(
        "variant_annotation",
        sa.Column(
            "variant_annotation_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_variant_annotation')"),
            nullable=False,
        ),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("gene_symbol", sa.Text(), nullable=True),
        sa.Column("transcript_accession", sa.Text(), nullable=False),
        sa.Column("consequence", sa.Text(), nullable=True),
        sa.Column("impact", sa.Text(), nullable=True),
        sa.Column("hgvsc", sa.Text(), nullable=True),
        sa.Column("hgvsp", sa.Text(), nullable=True),
        sa.Column("exon_number", sa.Integer(), nullable=True),
        sa.Column("exon_count", sa.Integer(), nullable=True),
        sa.Column("protein_position", sa.Integer(), nullable=True),
        sa.Column("amino_acids", sa.Text(), nullable=True),
        sa.Column("is_canonical", sa.Boolean(), nullable=True),
        sa.Column("is_mane_select", sa.Boolean(), nullable=True),
        sa.Column("is_selected", sa.Boolean(), nullable=False),
        sa.Column("selection_rule", sa.Text(), nullable=True),
        sa.Column("annotation_source", sa.Text(), nullable=False),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_variant_annotation_etl_run_id")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"],
            ["source_file.source_file_id"],
            name=op.f("fk_variant_annotation_source_file_id"),
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["variant.variant_id"], name=op.f("fk_variant_annotation_variant_id")
        ),
        sa.PrimaryKeyConstraint("variant_annotation_id", name=op.f("pk_variant_annotation")),
        sa.UniqueConstraint(
            "variant_id",
            "transcript_accession",
            "annotation_source",
            name=op.f("uq_variant_annotation_variant_id_transcript_accession_annotation_source"),
        ),
    )
    op.create_table(
        "baseline",
        sa.Column(
            "baseline_id", sa.Integer(), server_default=sa.text("nextval('seq_baseline')"), nullable=False
        ),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("wbc_g_per_l", sa.Double(), nullable=True),
        sa.Column("cns_involvement", sa.Boolean(), nullable=True),
        sa.Column("mediastinal_mass", sa.Boolean(), nullable=True),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("superseded_by_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("wbc_g_per_l >= 0 AND wbc_g_per_l <= 2000", name=op.f("ck_baseline_wbc_range")),
        sa.ForeignKeyConstraint(["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_baseline_etl_run_id")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.patient_id"], name=op.f("fk_baseline_patient_id")),
        sa.ForeignKeyConstraint(
            ["source_file_id"], ["source_file.source_file_id"], name=op.f("fk_baseline_source_file_id")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_baseline_superseded_by_run_id")
        ),
        sa.PrimaryKeyConstraint("baseline_id", name=op.f("pk_baseline")),
    )
    op.create_table(
        "enrolment",
        sa.Column(
            "enrolment_id", sa.Integer(), server_default=sa.text("nextval('seq_enrolment')"), nullable=False
        ),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("protocol_code", sa.Text(), nullable=False),
        sa.Column("diagnosis", sa.Text(), nullable=False),
        sa.Column("diagnosis_year", sa.Integer(), nullable=False),
        sa.Column("sex", sa.Text(), nullable=False),
        sa.Column("age_at_diagnosis_years", sa.Double(), nullable=False),
        sa.Column("consent_status", sa.Text(), nullable=False),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("superseded_by_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "consent_status IN ('given', 'withdrawn')", name=op.f("ck_enrolment_consent_status_code")
        ),
        sa.CheckConstraint(
            "diagnosis IN ('T-ALL', 'T-LBL', 'B-ALL', 'AML', 'MPAL', 'other')",
            name=op.f("ck_enrolment_diagnosis_code"),
        ),
        sa.CheckConstraint("sex IN ('M', 'F')", name=op.f("ck_enrolment_sex_code")),
        sa.CheckConstraint(
            "age_at_diagnosis_years >= 0 AND age_at_diagnosis_years < 110",
            name=op.f("ck_enrolment_age_range"),
        ),
        sa.CheckConstraint("diagnosis_year BETWEEN 1970 AND 2100", name=op.f("ck_enrolment_year_range")),
        sa.ForeignKeyConstraint(["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_enrolment_etl_run_id")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.patient_id"], name=op.f("fk_enrolment_patient_id")),
        sa.ForeignKeyConstraint(
            ["protocol_code"], ["protocol.protocol_code"], name=op.f("fk_enrolment_protocol_code")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"], ["source_file.source_file_id"], name=op.f("fk_enrolment_source_file_id")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_enrolment_superseded_by_run_id")
        ),
        sa.PrimaryKeyConstraint("enrolment_id", name=op.f("pk_enrolment")),
    )
    op.create_table(
        "immunophenotype",
        sa.Column(
            "immunophenotype_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_immunophenotype')"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("etp_status", sa.Boolean(), nullable=True),
        sa.Column("tcr_status_code", sa.Text(), nullable=True),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("superseded_by_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_immunophenotype_etl_run_id")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.patient_id"], name=op.f("fk_immunophenotype_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"], ["source_file.source_file_id"], name=op.f("fk_immunophenotype_source_file_id")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_run_id"],
            ["etl_run.etl_run_id"],
            name=op.f("fk_immunophenotype_superseded_by_run_id"),
        ),
        sa.ForeignKeyConstraint(
            ["tcr_status_code"],
            ["tcr_status.tcr_status_code"],
            name=op.f("fk_immunophenotype_tcr_status_code"),
        ),
        sa.PrimaryKeyConstraint("immunophenotype_id", name=op.f("pk_immunophenotype")),
    )
    op.create_table(
        "oncogenetic_result",
        sa.Column(
            "oncogenetic_result_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_oncogenetic_result')"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("marker_code", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("superseded_by_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "result IN ('positive', 'negative', 'not_done')", name=op.f("ck_oncogenetic_result_result_code")
        ),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_oncogenetic_result_etl_run_id")
        ),
        sa.ForeignKeyConstraint(
            ["marker_code"],
            ["oncogenetic_marker.marker_code"],
            name=op.f("fk_oncogenetic_result_marker_code"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.patient_id"], name=op.f("fk_oncogenetic_result_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"],
            ["source_file.source_file_id"],
            name=op.f("fk_oncogenetic_result_source_file_id"),
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_run_id"],
            ["etl_run.etl_run_id"],
            name=op.f("fk_oncogenetic_result_superseded_by_run_id"),
        ),
        sa.PrimaryKeyConstraint("oncogenetic_result_id", name=op.f("pk_oncogenetic_result")),
    )
    op.create_table(
        "outcome_event",
        sa.Column(
            "outcome_event_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_outcome_event')"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("in_cr", sa.Boolean(), nullable=True),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("superseded_by_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "cause IN ('leukemia', 'toxicity', 'infection', 'other')",
            name=op.f("ck_outcome_event_cause_code"),
        ),
        sa.CheckConstraint(
            "event_type IN ('relapse', 'death', 'last_follow_up')",
            name=op.f("ck_outcome_event_event_type_code"),
        ),
        sa.CheckConstraint("day >= 0", name=op.f("ck_outcome_event_day_not_negative")),
        sa.CheckConstraint("event_seq >= 1", name=op.f("ck_outcome_event_seq_positive")),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_outcome_event_etl_run_id")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.patient_id"], name=op.f("fk_outcome_event_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"], ["source_file.source_file_id"], name=op.f("fk_outcome_event_source_file_id")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_run_id"],
            ["etl_run.etl_run_id"],
            name=op.f("fk_outcome_event_superseded_by_run_id"),
        ),
        sa.PrimaryKeyConstraint("outcome_event_id", name=op.f("pk_outcome_event")),
    )
    op.create_table(
        "sample",
        sa.Column("sample_id", sa.Integer(), server_default=sa.text("nextval('seq_sample')"), nullable=False),
        sa.Column("sample_key", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("sample_type", sa.Text(), nullable=False),
        sa.Column("tissue", sa.Text(), nullable=True),
        sa.Column("collection_day", sa.Integer(), nullable=True),
        sa.Column("sequencing_assay_id", sa.Integer(), nullable=True),
        sa.Column("pipeline_version", sa.Text(), nullable=True),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "sample_type IN ('diagnosis', 'remission', 'relapse', 'germline', 'follow_up')",
            name=op.f("ck_sample_sample_type_code"),
        ),
        sa.CheckConstraint(
            "tissue IN ('bone_marrow', 'peripheral_blood', 'lymph_node', 'other')",
            name=op.f("ck_sample_tissue_code"),
        ),
        sa.ForeignKeyConstraint(["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_sample_etl_run_id")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.patient_id"], name=op.f("fk_sample_patient_id")),
        sa.ForeignKeyConstraint(
            ["sequencing_assay_id"],
            ["sequencing_assay.sequencing_assay_id"],
            name=op.f("fk_sample_sequencing_assay_id"),
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"], ["source_file.source_file_id"], name=op.f("fk_sample_source_file_id")
        ),
        sa.PrimaryKeyConstraint("sample_id", name=op.f("pk_sample")),
        sa.UniqueConstraint("sample_key", name=op.f("uq_sample_sample_key")),
    )
    op.create_table(
        "treatment_response",
        sa.Column(
            "treatment_response_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_treatment_response')"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("complete_remission", sa.Boolean(), nullable=False),
        sa.Column("cr_day", sa.Integer(), nullable=True),
        sa.Column("prednisone_response", sa.Text(), nullable=True),
        sa.Column("hsct_in_cr1", sa.Boolean(), nullable=True),
        sa.Column("hsct_day", sa.Integer(), nullable=True),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("superseded_by_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "prednisone_response IN ('good', 'poor')",
            name=op.f("ck_treatment_response_prednisone_response_code"),
        ),
        sa.CheckConstraint(
            "complete_remission OR cr_day IS NULL", name=op.f("ck_treatment_response_cr_day_needs_cr")
        ),
        sa.CheckConstraint(
            "cr_day >= 0 AND hsct_day >= 0", name=op.f("ck_treatment_response_days_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_treatment_response_etl_run_id")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.patient_id"], name=op.f("fk_treatment_response_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"],
            ["source_file.source_file_id"],
            name=op.f("fk_treatment_response_source_file_id"),
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_run_id"],
            ["etl_run.etl_run_id"],
            name=op.f("fk_treatment_response_superseded_by_run_id"),
        ),
        sa.PrimaryKeyConstraint("treatment_response_id", name=op.f("pk_treatment_response")),
    )
    op.create_table(
        "copy_number_call",
        sa.Column(
            "copy_number_call_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_copy_number_call')"),
            nullable=False,
        ),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("gene_id", sa.Integer(), nullable=False),
        sa.Column("assembly", sa.Text(), nullable=True),
        sa.Column("chrom", sa.Text(), nullable=True),
        sa.Column("start", sa.BigInteger(), nullable=True),
        sa.Column("end", sa.BigInteger(), nullable=True),
        sa.Column("first_exon", sa.Integer(), nullable=True),
        sa.Column("last_exon", sa.Integer(), nullable=True),
        sa.Column("call_type", sa.Text(), nullable=False),
        sa.Column("copy_number", sa.Double(), nullable=True),
        sa.Column("ratio", sa.Double(), nullable=True),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("from_segment", sa.Boolean(), nullable=False),
        sa.Column("confirms_copy_number_call_id", sa.Integer(), nullable=True),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("superseded_by_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "call_type IN ('deletion', 'homozygous_deletion', 'gain', 'amplification', 'neutral')",
            name=op.f("ck_copy_number_call_call_type_code"),
        ),
        sa.CheckConstraint(
            "method IN ('NGS', 'MLPA', 'aCGH', 'SNP_array')", name=op.f("ck_copy_number_call_method_code")
        ),
        sa.CheckConstraint("copy_number >= 0 AND ratio >= 0", name=op.f("ck_copy_number_call_not_negative")),
        sa.CheckConstraint("first_exon <= last_exon", name=op.f("ck_copy_number_call_exon_order")),
        sa.ForeignKeyConstraint(
            ["confirms_copy_number_call_id"],
            ["copy_number_call.copy_number_call_id"],
            name=op.f("fk_copy_number_call_confirms_copy_number_call_id"),
        ),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_copy_number_call_etl_run_id")
        ),
        sa.ForeignKeyConstraint(["gene_id"], ["gene.gene_id"], name=op.f("fk_copy_number_call_gene_id")),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.sample_id"], name=op.f("fk_copy_number_call_sample_id")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"],
            ["source_file.source_file_id"],
            name=op.f("fk_copy_number_call_source_file_id"),
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_run_id"],
            ["etl_run.etl_run_id"],
            name=op.f("fk_copy_number_call_superseded_by_run_id"),
        ),
        sa.PrimaryKeyConstraint("copy_number_call_id", name=op.f("pk_copy_number_call")),
    )
    op.create_table(
        "copy_number_segment",
        sa.Column(
            "copy_number_segment_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_copy_number_segment')"),
            nullable=False,
        ),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("assembly", sa.Text(), nullable=False),
        sa.Column("chrom", sa.Text(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("num_markers", sa.Integer(), nullable=True),
        sa.Column("seg_mean", sa.Double(), nullable=False),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("superseded_by_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "assembly IN ('GRCh37', 'GRCh38')", name=op.f("ck_copy_number_segment_assembly_code")
        ),
        sa.CheckConstraint('start <= "end"', name=op.f("ck_copy_number_segment_start_le_end")),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_copy_number_segment_etl_run_id")
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.sample_id"], name=op.f("fk_copy_number_segment_sample_id")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"],
            ["source_file.source_file_id"],
            name=op.f("fk_copy_number_segment_source_file_id"),
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_run_id"],
            ["etl_run.etl_run_id"],
            name=op.f("fk_copy_number_segment_superseded_by_run_id"),
        ),
        sa.PrimaryKeyConstraint("copy_number_segment_id", name=op.f("pk_copy_number_segment")),
    )
    op.create_table(
        "mrd_measurement",
        sa.Column(
            "mrd_measurement_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_mrd_measurement')"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("time_point", sa.Text(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=True),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("value_fraction", sa.Double(), nullable=True),
        sa.Column("value_original", sa.Text(), nullable=True),
        sa.Column("unit_original", sa.Text(), nullable=True),
        sa.Column("limit_of_detection", sa.Double(), nullable=True),
        sa.Column("quantitative_range_low", sa.Double(), nullable=True),
        sa.Column("qualitative_result", sa.Text(), nullable=True),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("superseded_by_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "method IN ('ASO-PCR', 'ddPCR', 'MFC', 'LSC-MFC', 'NGS-IGTCR')",
            name=op.f("ck_mrd_measurement_method_code"),
        ),
        sa.CheckConstraint(
            "qualitative_result IN ('positive', 'positive_not_quantifiable', 'negative', 'not_done', 'indeterminate')",
            name=op.f("ck_mrd_measurement_qualitative_result_code"),
        ),
        sa.CheckConstraint(
            "value_fraction >= 0 AND value_fraction <= 1", name=op.f("ck_mrd_measurement_fraction_range")
        ),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_mrd_measurement_etl_run_id")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.patient_id"], name=op.f("fk_mrd_measurement_patient_id")
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["sample.sample_id"], name=op.f("fk_mrd_measurement_sample_id")
        ),
        sa.ForeignKeyConstraint(
            ["source_file_id"], ["source_file.source_file_id"], name=op.f("fk_mrd_measurement_source_file_id")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_run_id"],
            ["etl_run.etl_run_id"],
            name=op.f("fk_mrd_measurement_superseded_by_run_id"),
        ),
        sa.PrimaryKeyConstraint("mrd_measurement_id", name=op.f("pk_mrd_measurement")),
    )
    op.create_table(
        "variant_call",
        sa.Column(
            "variant_call_id",
            sa.Integer(),
            server_default=sa.text("nextval('seq_variant_call')"),
            nullable=False,
        ),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("genotype", sa.Text(), nullable=True),
        sa.Column("vaf", sa.Double(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=True),
        sa.Column("alt_depth", sa.Integer(), nullable=True),
        sa.Column("filter", sa.Text(), nullable=False),
        sa.Column("etl_run_id", sa.Integer(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("superseded_by_run_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("depth >= 0 AND alt_depth >= 0", name=op.f("ck_variant_call_depth_not_negative")),
        sa.CheckConstraint("vaf >= 0 AND vaf <= 1", name=op.f("ck_variant_call_vaf_range")),
        sa.ForeignKeyConstraint(
            ["etl_run_id"], ["etl_run.etl_run_id"], name=op.f("fk_variant_call_etl_run_id")
        ),
        sa.ForeignKeyConstraint(["sample_id"], ["sample.sample_id"], name=op.f("fk_variant_call_sample_id")),
        sa.ForeignKeyConstraint(
            ["source_file_id"], ["source_file.source_file_id"], name=op.f("fk_variant_call_source_file_id")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_run_id"],
            ["etl_run.etl_run_id"],
            name=op.f("fk_variant_call_superseded_by_run_id"),
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["variant.variant_id"], name=op.f("fk_variant_call_variant_id")
        ),
        sa.PrimaryKeyConstraint("variant_call_id", name=op.f("pk_variant_call")),
    )
    _seed_reference_codes()
    _seed_reference_genes()


def downgrade() -> None:
    op.drop_table("variant_call")
    op.drop_table("mrd_measurement")
    op.drop_table("copy_number_segment")
    op.drop_table("copy_number_call")
    op.drop_table("treatment_response")
    op.drop_table("sample")
    op.drop_table("outcome_event")
    op.drop_table("oncogenetic_result")
    op.drop_table("immunophenotype")
    op.drop_table("enrolment")
    op.drop_table("baseline")
    op.drop_table("variant_annotation")
    op.drop_table("rejected_record")
    op.drop_table("patient")
    op.drop_table("exon")
    op.drop_table("transcript")
    op.drop_table("source_file")
    op.drop_table("sequencing_assay")
    op.drop_table("gene_panel_gene")
    op.drop_table("variant")
    op.drop_table("tcr_status")
    op.drop_table("protocol")
    op.drop_table("oncogenetic_marker")
    op.drop_table("gene_panel")
    op.drop_table("gene")
    op.drop_table("etl_run")
    op.execute("DROP SEQUENCE seq_etl_run")
    op.execute("DROP SEQUENCE seq_source_file")
    op.execute("DROP SEQUENCE seq_rejected_record")
    op.execute("DROP SEQUENCE seq_gene")
    op.execute("DROP SEQUENCE seq_transcript")
    op.execute("DROP SEQUENCE seq_exon")
    op.execute("DROP SEQUENCE seq_gene_panel")
    op.execute("DROP SEQUENCE seq_patient")
    op.execute("DROP SEQUENCE seq_enrolment")
    op.execute("DROP SEQUENCE seq_baseline")
    op.execute("DROP SEQUENCE seq_immunophenotype")
    op.execute("DROP SEQUENCE seq_oncogenetic_result")
    op.execute("DROP SEQUENCE seq_treatment_response")
    op.execute("DROP SEQUENCE seq_outcome_event")
    op.execute("DROP SEQUENCE seq_sequencing_assay")
    op.execute("DROP SEQUENCE seq_sample")
    op.execute("DROP SEQUENCE seq_variant")
    op.execute("DROP SEQUENCE seq_variant_annotation")
    op.execute("DROP SEQUENCE seq_variant_call")
    op.execute("DROP SEQUENCE seq_copy_number_segment")
    op.execute("DROP SEQUENCE seq_copy_number_call")
    op.execute("DROP SEQUENCE seq_mrd_measurement")


PROTOCOLS = [
    (
        "GRAALL-2003",
        "GRAALL",
        "adult",
        "ALL",
        "NCT00222027",
        "GRAALL-2003 pediatric-inspired therapy, Ph- ALL",
    ),
    ("GRAALL-2005", "GRAALL", "adult", "ALL", "NCT00327678", "GRAALL-2005 randomized trial, Ph- ALL"),
    ("FRALLE-2000", "FRALLE", "pediatric", "ALL", None, "FRALLE-2000 pediatric ALL protocol"),
    ("HOVON-102", "HOVON-SAKK", "adult", "AML", "NTR2187", "HOVON 102 / SAKK 30/09 clofarabine in AML"),
]

TCR_STATUS = [
    ("IM0", "Immature IM0 (no TCR rearrangement)", "immature"),
    ("IMD", "Immature IMdelta", "immature"),
    ("IMG", "Immature IMgamma", "immature"),
    ("IMB", "Cortical IMbeta", "cortical"),
    ("PREAB", "Cortical pre-alpha-beta", "cortical"),
    ("TCRAB", "Mature TCR alpha-beta", "mature_ab"),
    ("TCRGD", "Mature TCR gamma-delta", "mature_gd"),
]

ONCOGENETIC_MARKERS = [
    ("TLX1", "TLX1 (HOX11) expression / t(10;14)", True),
    ("TLX3", "TLX3 (HOX11L2) expression / t(5;14)", True),
    ("SIL-TAL1", "SIL-TAL1 (STIL-TAL1) deletion", True),
    ("CALM-AF10", "CALM-AF10 (PICALM-MLLT10) fusion", True),
    ("HOXA", "HOXA cluster overexpression", False),
]


def _seed_reference_codes() -> None:
    protocol = sa.table(
        "protocol",
        *(
            sa.column(c)
            for c in ("protocol_code", "trial_group", "population", "disease", "registry_id", "title")
        ),
    )
    tcr = sa.table("tcr_status", sa.column("tcr_status_code"), sa.column("label"), sa.column("tcr_group"))
    marker = sa.table(
        "oncogenetic_marker", sa.column("marker_code"), sa.column("label"), sa.column("is_subgroup")
    )
    op.bulk_insert(protocol, [dict(zip(protocol.c.keys(), row, strict=True)) for row in PROTOCOLS])
    op.bulk_insert(tcr, [dict(zip(tcr.c.keys(), row, strict=True)) for row in TCR_STATUS])
    op.bulk_insert(marker, [dict(zip(marker.c.keys(), row, strict=True)) for row in ONCOGENETIC_MARKERS])


DATA = Path(__file__).resolve().parents[1] / "data"
# The capture panel of the seed letter's cohort and its assays (the GRCh38 one for re-analyses).
PANEL = (
    "T-ALL 80-gene capture",
    "1",
    "80-gene T-ALL pan-exon capture panel (gene list: data/0001_panel_tall80.txt)",
)
ASSAYS = [("TALL80", "1", "GRCh37"), ("TALL80", "2", "GRCh38")]


def _seed_reference_genes() -> None:
    """Panel genes, their MANE Select transcripts and exon coordinates on GRCh37 and GRCh38.

    Sources per exon row in data/0001_exons.tsv (column `source`); see docs/reference-data.md."""
    symbols = [
        line.strip()
        for line in (DATA / "0001_panel_tall80.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    with open(DATA / "0001_exons.tsv", newline="") as handle:
        exons = list(csv.DictReader(handle, delimiter="\t"))
    chrom_of = {row["gene"]: row["chrom"] for row in exons}
    gene = sa.table("gene", sa.column("symbol"), sa.column("chrom"))
    op.bulk_insert(gene, [{"symbol": s, "chrom": chrom_of.get(s)} for s in symbols])
    bind = op.get_bind()
    transcripts = {(row["gene"], row["transcript"], row["refseq"]) for row in exons}
    for symbol, accession, refseq in sorted(transcripts):
        bind.execute(
            sa.text(
                "INSERT INTO transcript (gene_id, accession, refseq_accession, is_canonical, is_mane_select) "
                "SELECT gene_id, :accession, :refseq, true, true FROM gene WHERE symbol = :symbol"
            ),
            {"accession": accession, "refseq": refseq, "symbol": symbol},
        )
    bind.execute(
        sa.text(
            'INSERT INTO exon (transcript_id, assembly, exon_number, chrom, strand, start, "end", source) '
            "SELECT transcript_id, :assembly, :exon_number, :chrom, :strand, :start, :end, :source "
            "FROM transcript WHERE accession = :transcript"
        ),
        [
            {
                **row,
                "exon_number": int(row["exon_number"]),
                "start": int(row["start"]),
                "end": int(row["end"]),
            }
            for row in exons
        ],
    )
    bind.execute(
        sa.text("INSERT INTO gene_panel (name, version, description) VALUES (:name, :version, :description)"),
        dict(zip(("name", "version", "description"), PANEL, strict=True)),
    )
    bind.execute(
        sa.text(
            "INSERT INTO gene_panel_gene (gene_panel_id, gene_id) SELECT p.gene_panel_id, g.gene_id "
            "FROM gene_panel AS p, gene AS g WHERE p.name = :name AND p.version = :version"
        ),
        {"name": PANEL[0], "version": PANEL[1]},
    )
    for name, version, assembly in ASSAYS:
        bind.execute(
            sa.text(
                "INSERT INTO sequencing_assay (name, version, gene_panel_id, assembly) "
                "SELECT :name, :version, gene_panel_id, :assembly FROM gene_panel WHERE name = :panel"
            ),
            {"name": name, "version": version, "assembly": assembly, "panel": PANEL[0]},
        )
