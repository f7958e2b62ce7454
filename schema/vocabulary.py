"""The code lists of the schema (CHECK constraints in schema/models.py), in a module of their own: the
loaders validate against them without importing SQLAlchemy (0.3 s of a load's start-up)."""

from __future__ import annotations

SEX = ("M", "F")
DIAGNOSES = ("T-ALL", "T-LBL", "B-ALL", "AML", "MPAL", "other")
CONSENT = ("given", "withdrawn")
RESPONSE = ("good", "poor")
EVENT_TYPES = ("relapse", "death", "last_follow_up")
DEATH_CAUSES = ("leukemia", "toxicity", "infection", "other")
MARKER_RESULTS = ("positive", "negative", "not_done")
TCR_GROUPS = ("immature", "cortical", "mature_ab", "mature_gd")
# The data manager's tables: what was loaded, when, by whom, what was quarantined. Not on the analysts'
# surface (etl/surface.py): the quarantine keeps raw source rows, file names can carry patient numbers.
AUDIT_TABLES = (
    "etl_run", "source_file", "rejected_record", "view_version", "view_materialization", "purged_patient",
    "key_fingerprint", "cohort_release", "publication",
)  # fmt: skip
RUN_STATUS = ("running", "succeeded", "failed")
# What a run did (etl/ledger.py); only views_apply changes no data.
RUN_KINDS = ("load", "views_apply", "consent", "purge")
ASSEMBLIES = ("GRCh37", "GRCh38")
SAMPLE_TYPES = ("diagnosis", "remission", "relapse", "germline", "follow_up")
TISSUES = ("bone_marrow", "peripheral_blood", "lymph_node", "other")
CN_TYPES = ("deletion", "homozygous_deletion", "gain", "amplification", "neutral")
CN_METHODS = ("NGS", "MLPA", "aCGH", "SNP_array")
MRD_METHODS = ("ASO-PCR", "ddPCR", "MFC", "LSC-MFC", "NGS-IGTCR")
MRD_QUALITATIVE = ("positive", "positive_not_quantifiable", "negative", "not_done", "indeterminate")
# Declared attributes (the data dictionary, `attribute`): what a value is and what it describes.
ATTRIBUTE_TYPES = ("categorical", "boolean", "number", "integer", "day", "text")
ATTRIBUTE_ENTITIES = ("patient", "sample")
# Endpoints a source reports ready-made (cBioPortal EFS_*, DFS_*, PFS_*), beside the ones cgdw derives.
REPORTED_ENDPOINTS = ("efs", "dfs", "pfs")
