-- variant_call_annotation@v1 rendered for Spark by queries/spark.py (do not edit: --write)
SELECT
  variant_call_id,
  sample_id,
  patient_id,
  assembly,
  chrom,
  pos,
  ref,
  alt,
  genotype,
  depth,
  alt_depth,
  vaf,
  filter,
  gene_symbol,
  transcript_accession,
  hgvsc,
  hgvsp,
  exon_number,
  exon_count,
  consequence,
  impact,
  protein_position,
  amino_acids,
  annotation_source
FROM (
  SELECT
    c.variant_call_id,
    c.sample_id,
    s.patient_id,
    v.assembly,
    v.chrom,
    v.pos,
    v.ref,
    v.alt,
    c.genotype,
    c.depth,
    c.alt_depth,
    c.vaf,
    c.filter,
    a.gene_symbol,
    a.transcript_accession,
    a.hgvsc,
    a.hgvsp,
    a.exon_number,
    a.exon_count,
    a.consequence,
    a.impact,
    a.protein_position,
    a.amino_acids,
    a.annotation_source,
    ROW_NUMBER() OVER (
      PARTITION BY c.variant_call_id
      ORDER BY CASE
        WHEN a.annotation_source LIKE 'VEP%'
        THEN 1
        WHEN a.annotation_source LIKE 'SnpEff%'
        THEN 2
        ELSE 3
      END NULLS LAST, a.gene_symbol NULLS LAST, a.transcript_accession NULLS LAST, a.annotation_source NULLS LAST
    ) AS _w
  FROM variant_call AS c
  JOIN sample AS s
    ON s.sample_id = c.sample_id
  JOIN variant AS v
    ON v.variant_id = c.variant_id
  JOIN variant_annotation AS a
    ON a.variant_id = c.variant_id AND a.is_selected
  WHERE
    c.superseded_by_run_id IS NULL
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
