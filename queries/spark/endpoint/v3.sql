-- endpoint@v3 rendered for Spark by queries/spark.py (do not edit: --write)
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
), reported AS (
  /* one current row per patient and endpoint (the loaders merge snapshots by patient) */
  SELECT
    patient_id,
    ANY_VALUE(day, TRUE) FILTER(WHERE
      endpoint = 'efs') AS efs_day,
    ANY_VALUE(event, TRUE) FILTER(WHERE
      endpoint = 'efs') AS efs_event,
    ANY_VALUE(day, TRUE) FILTER(WHERE
      endpoint = 'dfs') AS dfs_day,
    ANY_VALUE(event, TRUE) FILTER(WHERE
      endpoint = 'dfs') AS dfs_event,
    ANY_VALUE(day, TRUE) FILTER(WHERE
      endpoint = 'pfs') AS pfs_day,
    ANY_VALUE(event, TRUE) FILTER(WHERE
      endpoint = 'pfs') AS pfs_event
  FROM reported_endpoint
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
  JOIN enrolment AS n
    ON n.patient_id = p.patient_id
    AND n.superseded_by_run_id IS NULL
    AND n.consent_status = 'given'
  LEFT JOIN treatment_response AS t
    ON t.patient_id = p.patient_id AND t.superseded_by_run_id IS NULL
  LEFT JOIN events AS e
    ON e.patient_id = p.patient_id
), derived AS (
  SELECT
    *,
    CASE
      WHEN complete_remission IS NULL
      THEN NULL
      WHEN NOT complete_remission
      THEN 0
      ELSE COALESCE(LEAST(first_relapse_day, death_day), end_day)
    END AS derived_efs_days, /* CR unknown: no EFS is derived (a NULL would otherwise fall through to the ELSE branches) */
    CASE
      WHEN complete_remission IS NULL
      THEN NULL
      WHEN NOT complete_remission
      THEN 1
      WHEN end_day IS NULL
      THEN NULL
      WHEN NOT first_relapse_day IS NULL OR NOT death_day IS NULL
      THEN 1
      ELSE 0
    END AS derived_efs_status,
    CASE
      WHEN complete_remission IS NULL
      THEN NULL
      WHEN NOT complete_remission
      THEN 'induction_failure'
      WHEN NOT first_relapse_day IS NULL
      AND first_relapse_day <= COALESCE(death_day, first_relapse_day)
      THEN 'relapse'
      WHEN NOT death_day IS NULL
      THEN 'death'
    END AS derived_efs_event
  FROM base
)
SELECT
  d.patient_id,
  d.complete_remission,
  d.cr_day,
  d.first_relapse_day,
  d.death_day,
  d.last_follow_up_day,
  d.end_day AS os_days,
  CASE WHEN d.end_day IS NULL THEN NULL WHEN NOT d.death_day IS NULL THEN 1 ELSE 0 END AS os_status,
  CASE WHEN NOT r.efs_day IS NULL THEN r.efs_day ELSE d.derived_efs_days END AS efs_days,
  CASE
    WHEN NOT r.efs_day IS NULL
    THEN CAST(r.efs_event AS INT)
    ELSE d.derived_efs_status
  END AS efs_status,
  CASE
    WHEN NOT r.efs_day IS NULL
    THEN CASE WHEN r.efs_event THEN 'reported' END
    ELSE d.derived_efs_event
  END AS efs_event,
  CASE
    WHEN NOT r.efs_day IS NULL
    THEN 'reported'
    WHEN NOT d.derived_efs_status IS NULL
    THEN 'derived'
  END AS efs_source,
  d.complete_remission AS cir_eligible,
  CASE WHEN d.complete_remission THEN COALESCE(d.first_relapse_day, d.end_day) END AS cir_days,
  CASE
    WHEN d.complete_remission IS NULL OR NOT d.complete_remission OR d.end_day IS NULL
    THEN NULL
    WHEN NOT d.first_relapse_day IS NULL
    THEN 1
    WHEN NOT d.death_day IS NULL
    THEN 2
    ELSE 0
  END AS cir_status,
  r.dfs_day AS dfs_days,
  CAST(r.dfs_event AS INT) AS dfs_status,
  r.pfs_day AS pfs_days,
  CAST(r.pfs_event AS INT) AS pfs_status
FROM derived AS d
LEFT JOIN reported AS r
  ON r.patient_id = d.patient_id
