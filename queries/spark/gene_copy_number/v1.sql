-- gene_copy_number@v1 rendered for Spark by queries/spark.py (do not edit: --write)
SELECT
  sample_id,
  patient_id,
  gene_id,
  gene,
  call_type,
  method,
  copy_number_call_id
FROM (
  SELECT
    c.sample_id,
    s.patient_id,
    c.gene_id,
    g.symbol AS gene,
    c.call_type,
    c.method,
    c.copy_number_call_id,
    ROW_NUMBER() OVER (
      PARTITION BY c.sample_id, c.gene_id
      ORDER BY CASE c.call_type
        WHEN 'homozygous_deletion'
        THEN 1
        WHEN 'deletion'
        THEN 2
        WHEN 'amplification'
        THEN 3
        WHEN 'gain'
        THEN 4
        ELSE 5
      END NULLS LAST, c.copy_number_call_id NULLS LAST
    ) AS _w
  FROM copy_number_call AS c
  JOIN sample AS s
    ON s.sample_id = c.sample_id
  JOIN gene AS g
    ON g.gene_id = c.gene_id
  WHERE
    c.superseded_by_run_id IS NULL
    AND c.confirms_copy_number_call_id IS NULL
    AND s.patient_id IN (
      SELECT
        e.patient_id
      FROM enrolment AS e
      WHERE
        e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
    )
) AS _t
WHERE
  _w = 1
