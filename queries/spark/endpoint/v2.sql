-- endpoint@v2 rendered for Spark by queries/spark.py (do not edit: --write)
SELECT
  v.*
FROM endpoint_v1 AS v
WHERE
  v.patient_id IN (
    SELECT
      e.patient_id
    FROM enrolment AS e
    WHERE
      e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
  )
