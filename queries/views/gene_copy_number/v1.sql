-- name: gene_copy_number
-- version: 1
-- depends: copy_number_call, gene, sample, enrolment
-- Gene-level copy-number state per sample: of the current primary calls of a sample and gene (not the
-- confirmations by a second method), the most severe: homozygous deletion, then deletion, amplification,
-- gain, neutral; ties broken by the call's id (complete). Patients with consent only (current enrolment
-- consent_status = 'given', as in cohort_patient). cBioPortal's discrete CNA file is written from it.
-- columns:
--   sample_id: warehouse sample key
--   patient_id: warehouse patient key
--   gene_id: warehouse gene key
--   gene: HGNC symbol
--   call_type: homozygous_deletion | deletion | amplification | gain | neutral
--   method: NGS | MLPA | aCGH | SNP_array (of the call shown)
--   copy_number_call_id: the call shown (copy_number_call.copy_number_call_id)
SELECT c.sample_id, s.patient_id, c.gene_id, g.symbol AS gene, c.call_type, c.method, c.copy_number_call_id
FROM copy_number_call AS c
JOIN sample AS s ON s.sample_id = c.sample_id
JOIN gene AS g ON g.gene_id = c.gene_id
WHERE c.superseded_by_run_id IS NULL AND c.confirms_copy_number_call_id IS NULL
  AND s.patient_id IN (
      SELECT e.patient_id FROM enrolment AS e
      WHERE e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
  )
QUALIFY row_number() OVER (
    PARTITION BY c.sample_id, c.gene_id
    ORDER BY CASE c.call_type WHEN 'homozygous_deletion' THEN 1 WHEN 'deletion' THEN 2
                 WHEN 'amplification' THEN 3 WHEN 'gain' THEN 4 ELSE 5 END,
             c.copy_number_call_id
) = 1
