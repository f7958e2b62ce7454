-- patient_gene_alteration@v1 rendered for Spark by queries/spark.py (do not edit: --write)
WITH panel_gene AS (
  SELECT DISTINCT
    g.gene_id,
    g.symbol
  FROM gene_panel_gene AS pg
  JOIN gene AS g
    USING (gene_id)
), patient_panel AS (
  SELECT DISTINCT
    s.patient_id,
    a.gene_panel_id
  FROM sample AS s
  JOIN sequencing_assay AS a
    ON a.sequencing_assay_id = s.sequencing_assay_id
  WHERE
    s.sample_type = 'diagnosis' AND NOT a.gene_panel_id IS NULL
), grid /* patient x gene, grouped on the gene's symbol so that a filter on `gene` reaches the cross join */ AS (
  SELECT
    p.patient_id,
    g.gene_id,
    g.symbol,
    BOOL_OR(NOT pg.gene_id IS NULL) AS on_panel
  FROM patient AS p
  CROSS JOIN panel_gene AS g
  LEFT JOIN patient_panel AS pp
    ON pp.patient_id = p.patient_id
  LEFT JOIN gene_panel_gene AS pg
    ON pg.gene_panel_id = pp.gene_panel_id AND pg.gene_id = g.gene_id
  GROUP BY
    p.patient_id,
    g.gene_id,
    g.symbol
), mutated AS (
  SELECT
    s.patient_id,
    a.gene_symbol,
    COUNT(DISTINCT c.variant_id) AS mutation_count,
    CASE
      WHEN COUNT(a.hgvsp) = 0
      THEN NULL
      ELSE ARRAY_JOIN(ARRAY_SORT(COLLECT_SET(a.hgvsp)), ',')
    END AS protein_changes
  FROM variant_call AS c
  JOIN sample AS s
    ON s.sample_id = c.sample_id AND s.sample_type = 'diagnosis'
  JOIN variant_annotation AS a
    ON a.variant_id = c.variant_id AND a.is_selected
  WHERE
    c.superseded_by_run_id IS NULL
    AND c.filter = 'PASS'
    AND a.consequence RLIKE 'missense_variant|stop_gained|frameshift_variant|' || 'splice_acceptor_variant|splice_donor_variant|inframe_insertion|inframe_deletion|' || 'start_lost|stop_lost|protein_altering_variant'
  GROUP BY ALL
), deleted AS (
  SELECT DISTINCT
    s.patient_id,
    c.gene_id
  FROM copy_number_call AS c
  JOIN sample AS s
    ON s.sample_id = c.sample_id AND s.sample_type = 'diagnosis'
  WHERE
    c.superseded_by_run_id IS NULL
    AND c.confirms_copy_number_call_id IS NULL
    AND c.call_type IN ('deletion', 'homozygous_deletion')
), assessed_cn AS (
  SELECT DISTINCT
    s.patient_id,
    c.gene_id
  FROM copy_number_call AS c
  JOIN sample AS s
    ON s.sample_id = c.sample_id AND s.sample_type = 'diagnosis'
  WHERE
    c.superseded_by_run_id IS NULL
)
SELECT
  x.patient_id,
  x.symbol AS gene,
  x.on_panel OR NOT cn.patient_id IS NULL OR NOT m.patient_id IS NULL AS is_sequenced,
  NOT m.patient_id IS NULL AS is_mutated,
  NOT d.patient_id IS NULL AS is_deleted,
  CASE
    WHEN NOT m.patient_id IS NULL AND NOT d.patient_id IS NULL
    THEN 'mutated_and_deleted'
    WHEN NOT m.patient_id IS NULL
    THEN 'mutated'
    WHEN NOT d.patient_id IS NULL
    THEN 'deleted'
    WHEN x.on_panel OR NOT cn.patient_id IS NULL
    THEN 'wild_type'
    ELSE 'not_sequenced'
  END AS status,
  COALESCE(m.mutation_count, 0) AS mutation_count,
  m.protein_changes
FROM grid AS x
LEFT JOIN assessed_cn AS cn
  ON cn.patient_id = x.patient_id AND cn.gene_id = x.gene_id
LEFT JOIN mutated AS m
  ON m.patient_id = x.patient_id AND m.gene_symbol = x.symbol
LEFT JOIN deleted AS d
  ON d.patient_id = x.patient_id AND d.gene_id = x.gene_id
