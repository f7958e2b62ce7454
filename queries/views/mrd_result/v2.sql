-- name: mrd_result
-- version: 2
-- depends: mrd_result_v1, enrolment
-- Current MRD measurements with positivity at the method's threshold, exactly as mrd_result@v1 (see its
-- header for the definitions), for the patients with consent only (current enrolment consent_status =
-- 'given', as in cohort_patient): `cgdw consent withdraw` takes a patient out of the stable name
-- mrd_result at once, before `cgdw purge` deletes their rows. mrd_result_v1 stays as released
-- (immutable) and shows them until the purge.
-- columns:
--   patient_id: warehouse patient key
--   time_point: protocol time point (MRD1 = post-induction in GRAALL/FRALLE)
--   day: days from diagnosis
--   method: ASO-PCR | ddPCR | MFC | LSC-MFC | NGS-IGTCR
--   target: rearrangement or marker followed
--   value_fraction: level as a fraction of cells
--   qualitative_result: positive | positive_not_quantifiable | negative | not_done | indeterminate
--   limit_of_detection: as a fraction
--   quantitative_range_low: as a fraction
--   threshold: positivity threshold of the method, as a fraction
--   is_positive: at or above the threshold; NULL when it cannot be told
SELECT v.*
FROM mrd_result_v1 AS v
WHERE v.patient_id IN (
    SELECT e.patient_id FROM enrolment AS e
    WHERE e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
)
