-- mrd_result@v1 rendered for Spark by queries/spark.py (do not edit: --write)
WITH thresholds(method, threshold) AS (
  SELECT
    *
  FROM VALUES
    ('ASO-PCR', 1e-4),
    ('ddPCR', 1e-4),
    ('NGS-IGTCR', 1e-4),
    ('MFC', 1e-3),
    ('LSC-MFC', 1e-3) AS _values
)
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
  t.threshold,
  CASE
    WHEN m.qualitative_result IN ('not_done', 'indeterminate')
    THEN NULL
    WHEN NOT m.value_fraction IS NULL
    THEN m.value_fraction >= t.threshold
    WHEN m.qualitative_result = 'negative'
    THEN FALSE
    WHEN m.qualitative_result = 'positive_not_quantifiable'
    AND m.quantitative_range_low <= t.threshold
    THEN FALSE
  END AS is_positive
FROM mrd_measurement AS m
JOIN thresholds AS t
  USING (method)
WHERE
  m.superseded_by_run_id IS NULL
