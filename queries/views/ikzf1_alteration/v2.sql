-- name: ikzf1_alteration
-- version: 2
-- depends: ikzf1_alteration_v1, enrolment
-- IKZF1 alterations per patient, exactly as ikzf1_alteration@v1 (see its header for the definitions),
-- for the patients with consent only (current enrolment consent_status = 'given', as in cohort_patient):
-- `cgdw consent withdraw` takes a patient out of the stable name ikzf1_alteration at once, before `cgdw
-- purge` deletes their rows. ikzf1_alteration_v1 stays as released (immutable) and shows them until the
-- purge.
-- columns:
--   patient_id: warehouse patient key (patient.patient_id)
--   mutation_class: hotspot_missense | other_missense | frameshift | nonsense | splice (most severe); NULL if none
--   mutation_exon: exon of that mutation on the selected transcript
--   protein_change: HGVSp of that mutation
--   mutation_pathogenic: the mutation makes the patient IKZF1-altered
--   deletion_class: pan_genic | intragenic_4_7 | other_partial; NULL if no deletion
--   deletion_first_exon: first deleted exon
--   deletion_last_exon: last deleted exon
--   deletion_confirmed_by: second methods that confirmed the deletion (e.g. MLPA,aCGH), NULL if none
--   alteration_type: mutation | deletion | both (pathogenic mutations and deletions only); NULL if neither
--   is_altered: IKZF1 status Alt (a pathogenic mutation or a deletion)
--   has_both: both a pathogenic mutation and a deletion
SELECT v.*
FROM ikzf1_alteration_v1 AS v
WHERE v.patient_id IN (
    SELECT e.patient_id FROM enrolment AS e
    WHERE e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
)
