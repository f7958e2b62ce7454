-- ikzf1_alteration@v1 rendered for Spark by queries/spark.py (do not edit: --write)
WITH ikzf1 AS (
  SELECT
    g.gene_id,
    MAX(x.exon_number) AS exon_count
  FROM gene AS g
  JOIN transcript AS t
    ON t.gene_id = g.gene_id AND t.is_mane_select
  JOIN exon AS x
    ON x.transcript_id = t.transcript_id
  WHERE
    g.symbol = 'IKZF1'
  GROUP BY
    g.gene_id
), mutation AS (
  SELECT DISTINCT
    s.patient_id,
    c.variant_id,
    a.exon_number,
    a.hgvsp,
    CASE
      WHEN a.consequence LIKE '%frameshift_variant%'
      THEN 'frameshift'
      WHEN a.consequence LIKE '%stop_gained%'
      THEN 'nonsense'
      WHEN a.consequence RLIKE '^(?:.*(splice_acceptor|splice_donor|splice_region)_variant.*)$'
      THEN 'splice'
      WHEN a.consequence LIKE '%missense_variant%'
      AND a.protein_position = 159
      AND a.amino_acids IN ('N/S', 'N/T')
      THEN 'hotspot_missense'
      WHEN a.consequence LIKE '%missense_variant%'
      THEN 'other_missense'
    END AS mutation_class
  FROM variant_call AS c
  JOIN sample AS s
    ON s.sample_id = c.sample_id AND s.sample_type IN ('diagnosis', 'relapse')
  JOIN variant_annotation AS a
    ON a.variant_id = c.variant_id AND a.is_selected AND a.gene_symbol = 'IKZF1'
  WHERE
    c.superseded_by_run_id IS NULL AND c.filter = 'PASS'
), classed AS (
  SELECT
    *,
    mutation_class = 'hotspot_missense'
    OR (
      mutation_class IN ('frameshift', 'nonsense', 'splice')
      AND exon_number BETWEEN 3 AND 8
    ) AS pathogenic,
    CASE mutation_class
      WHEN 'hotspot_missense'
      THEN 1
      WHEN 'frameshift'
      THEN 2
      WHEN 'nonsense'
      THEN 3
      WHEN 'splice'
      THEN 4
      ELSE 5
    END AS severity
  FROM mutation
  WHERE
    NOT mutation_class IS NULL
), top_mutation AS (
  SELECT
    patient_id,
    mutation_class,
    exon_number,
    hgvsp,
    pathogenic
  FROM (
    SELECT
      patient_id,
      mutation_class,
      exon_number,
      hgvsp,
      pathogenic,
      ROW_NUMBER() OVER (
        PARTITION BY patient_id
        ORDER BY pathogenic DESC, severity NULLS LAST, variant_id NULLS LAST
      ) AS _w
    FROM classed
  ) AS _t
  WHERE
    _w = 1
), deletion AS (
  SELECT
    patient_id,
    first_exon,
    last_exon,
    deletion_class,
    confirmed_by
  FROM (
    SELECT
      s.patient_id,
      c.first_exon,
      c.last_exon,
      CASE
        WHEN c.first_exon = 1 AND c.last_exon = k.exon_count
        THEN 'pan_genic'
        WHEN c.first_exon = 4 AND c.last_exon = 7
        THEN 'intragenic_4_7'
        ELSE 'other_partial'
      END AS deletion_class,
      (
        SELECT
          CASE
            WHEN COUNT(f.method) = 0
            THEN NULL
            ELSE ARRAY_JOIN(ARRAY_SORT(COLLECT_SET(f.method)), ',')
          END
        FROM copy_number_call AS f
        WHERE
          f.confirms_copy_number_call_id = c.copy_number_call_id
          AND f.superseded_by_run_id IS NULL
      ) AS confirmed_by,
      ROW_NUMBER() OVER (
        PARTITION BY s.patient_id
        ORDER BY c.last_exon - c.first_exon DESC, c.copy_number_call_id NULLS LAST
      ) AS _w
    FROM copy_number_call AS c
    JOIN ikzf1 AS k
      ON k.gene_id = c.gene_id
    JOIN sample AS s
      ON s.sample_id = c.sample_id AND s.sample_type IN ('diagnosis', 'relapse')
    WHERE
      c.superseded_by_run_id IS NULL
      AND c.confirms_copy_number_call_id IS NULL
      AND c.call_type IN ('deletion', 'homozygous_deletion')
  ) AS _t
  WHERE
    _w = 1
)
SELECT
  p.patient_id,
  m.mutation_class,
  m.exon_number AS mutation_exon,
  m.hgvsp AS protein_change,
  COALESCE(m.pathogenic, FALSE) AS mutation_pathogenic,
  d.deletion_class,
  d.first_exon AS deletion_first_exon,
  d.last_exon AS deletion_last_exon,
  d.confirmed_by AS deletion_confirmed_by,
  CASE
    WHEN m.pathogenic AND NOT d.patient_id IS NULL
    THEN 'both'
    WHEN m.pathogenic
    THEN 'mutation'
    WHEN NOT d.patient_id IS NULL
    THEN 'deletion'
  END AS alteration_type,
  COALESCE(m.pathogenic, FALSE) OR NOT d.patient_id IS NULL AS is_altered,
  COALESCE(m.pathogenic, FALSE) AND NOT d.patient_id IS NULL AS has_both
FROM patient AS p
LEFT JOIN top_mutation AS m
  ON m.patient_id = p.patient_id
LEFT JOIN deletion AS d
  ON d.patient_id = p.patient_id
WHERE
  NOT m.patient_id IS NULL OR NOT d.patient_id IS NULL
