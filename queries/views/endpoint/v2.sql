-- name: endpoint
-- version: 2
-- depends: endpoint_v1, enrolment
-- Survival endpoints per patient, exactly as endpoint@v1 (see its header for the definitions), for the
-- patients with consent only (current enrolment consent_status = 'given', as in cohort_patient): `cgdw
-- consent withdraw` takes a patient out of the stable name endpoint at once, before `cgdw purge` deletes
-- their rows. endpoint_v1 stays as released (immutable) and shows them until the purge.
-- columns:
--   patient_id: warehouse patient key (patient.patient_id)
--   complete_remission: CR after induction
--   cr_day: days from diagnosis to CR
--   first_relapse_day: day of the first relapse (NULL if none)
--   death_day: day of death (NULL if alive at last news)
--   last_follow_up_day: day of the last news
--   os_days: days to death or last follow-up
--   os_status: 1 death, 0 censored
--   efs_days: days to the first EFS event or last follow-up (0 for induction failure)
--   efs_status: 1 event, 0 censored
--   efs_event: induction_failure | relapse | death | NULL (censored)
--   cir_eligible: patient counted in CIR (reached CR)
--   cir_days: days to first relapse, death in CR or last follow-up (NULL if not eligible)
--   cir_status: 0 censored, 1 relapse, 2 death without relapse (competing); NULL if not eligible
SELECT v.*
FROM endpoint_v1 AS v
WHERE v.patient_id IN (
    SELECT e.patient_id FROM enrolment AS e
    WHERE e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
)
