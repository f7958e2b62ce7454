-- name: patient_gene_alteration
-- version: 2
-- depends: patient_gene_alteration_v1, enrolment
-- Patient x gene at diagnosis, exactly as patient_gene_alteration@v1 (see its header for the
-- definitions), for the patients with consent only (current enrolment consent_status = 'given', as in
-- cohort_patient): `cgdw consent withdraw` takes a patient out of the stable name
-- patient_gene_alteration at once, before `cgdw purge` deletes their rows. patient_gene_alteration_v1
-- stays as released (immutable) and shows them until the purge.
-- columns:
--   patient_id: warehouse patient key (patient.patient_id)
--   gene: HGNC symbol
--   is_sequenced: a diagnosis sample's assay covers the gene (or a copy-number call exists for it)
--   is_mutated: protein-changing PASS call at diagnosis
--   is_deleted: deletion or homozygous deletion at diagnosis
--   status: mutated_and_deleted | mutated | deleted | wild_type | not_sequenced
--   mutation_count: distinct protein-changing variants
--   protein_changes: HGVSp of those variants, comma-separated
SELECT v.*
FROM patient_gene_alteration_v1 AS v
WHERE v.patient_id IN (
    SELECT e.patient_id FROM enrolment AS e
    WHERE e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
)
