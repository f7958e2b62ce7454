-- endpoint@v1 rendered for Spark by queries/spark.py (do not edit: --write)
WITH events AS (
  SELECT
    patient_id,
    MIN(day) FILTER(WHERE
      event_type = 'relapse') AS first_relapse_day,
    MIN(day) FILTER(WHERE
      event_type = 'death') AS death_day,
    MAX(day) FILTER(WHERE
      event_type = 'last_follow_up') AS last_follow_up_day
  FROM outcome_event
  WHERE
    superseded_by_run_id IS NULL
  GROUP BY
    patient_id
), base AS (
  SELECT
    p.patient_id,
    t.complete_remission,
    t.cr_day,
    e.first_relapse_day,
    e.death_day,
    e.last_follow_up_day,
    COALESCE(e.death_day, e.last_follow_up_day) AS end_day
  FROM patient AS p
  JOIN treatment_response AS t
    ON t.patient_id = p.patient_id AND t.superseded_by_run_id IS NULL
  LEFT JOIN events AS e
    ON e.patient_id = p.patient_id
)
SELECT
  patient_id,
  complete_remission,
  cr_day,
  first_relapse_day,
  death_day,
  last_follow_up_day,
  end_day AS os_days,
  CASE WHEN end_day IS NULL THEN NULL WHEN NOT death_day IS NULL THEN 1 ELSE 0 END AS os_status,
  CASE
    WHEN NOT complete_remission
    THEN 0
    ELSE COALESCE(LEAST(first_relapse_day, death_day), end_day)
  END AS efs_days,
  CASE
    WHEN NOT complete_remission
    THEN 1
    WHEN end_day IS NULL
    THEN NULL
    WHEN NOT first_relapse_day IS NULL OR NOT death_day IS NULL
    THEN 1
    ELSE 0
  END AS efs_status,
  CASE
    WHEN NOT complete_remission
    THEN 'induction_failure'
    WHEN NOT first_relapse_day IS NULL
    AND first_relapse_day <= COALESCE(death_day, first_relapse_day)
    THEN 'relapse'
    WHEN NOT death_day IS NULL
    THEN 'death'
  END AS efs_event,
  complete_remission AS cir_eligible,
  CASE WHEN complete_remission THEN COALESCE(first_relapse_day, end_day) END AS cir_days,
  CASE
    WHEN NOT complete_remission OR end_day IS NULL
    THEN NULL
    WHEN NOT first_relapse_day IS NULL
    THEN 1
    WHEN NOT death_day IS NULL
    THEN 2
    ELSE 0
  END AS cir_status
FROM base
