-- mrd_result@v3 rendered for Spark by queries/spark.py (do not edit: --write)
SELECT
  m.patient_id,
  m.time_point,
  m.day,
  m.method,
  m.target,
  m.value_fraction,
  m.qualitative_result,
  m.limit_of_detection,
  m.quantitative_range_low,
  m.threshold,
  m.positive_at,
  CASE
    WHEN m.qualitative_result IN ('not_done', 'indeterminate')
    THEN NULL
    WHEN m.value_fraction < m.limit_of_detection
    THEN FALSE
    WHEN NOT m.value_fraction IS NULL AND m.positive_at = '>'
    THEN m.value_fraction > m.threshold
    WHEN NOT m.value_fraction IS NULL
    THEN m.value_fraction >= m.threshold
    WHEN m.qualitative_result = 'negative'
    THEN FALSE
    WHEN m.qualitative_result IN ('positive', 'positive_not_quantifiable')
    AND m.positive_at = '>'
    AND m.threshold = 0
    THEN TRUE
    WHEN m.qualitative_result = 'positive_not_quantifiable'
    AND m.quantitative_range_low <= m.threshold
    THEN FALSE
  END AS is_positive
FROM (
  SELECT
    x.*,
    COALESCE(s.threshold, d.threshold) AS threshold,
    COALESCE(s.positive_at, d.positive_at) AS positive_at
  FROM mrd_measurement AS x
  LEFT JOIN mrd_threshold AS s
    ON s.method = x.method AND s.time_point = x.time_point
  LEFT JOIN mrd_threshold AS d
    ON d.method = x.method AND d.time_point = '*'
  WHERE
    x.superseded_by_run_id IS NULL
    AND x.patient_id IN (
      SELECT
        e.patient_id
      FROM enrolment AS e
      WHERE
        e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
    )
) AS m
