-- cohort_patient@v1 rendered for Spark by queries/spark.py (do not edit: --write)
WITH markers AS (
  SELECT
    r.patient_id,
    BOOL_OR(r.result = 'positive') FILTER(WHERE
      r.marker_code = 'TLX1') AS tlx1,
    BOOL_OR(r.result = 'positive') FILTER(WHERE
      r.marker_code = 'TLX3') AS tlx3,
    BOOL_OR(r.result = 'positive') FILTER(WHERE
      r.marker_code = 'SIL-TAL1') AS sil_tal1,
    BOOL_OR(r.result = 'positive') FILTER(WHERE
      r.marker_code = 'CALM-AF10') AS calm_af10,
    BOOL_OR(r.result = 'positive') FILTER(WHERE
      r.marker_code = 'HOXA' AND r.result <> 'not_done') AS hoxa,
    COUNT(DISTINCT r.marker_code) FILTER(WHERE
      m.is_subgroup AND r.result IN ('positive', 'negative')) = (
      SELECT
        COUNT(*)
      FROM oncogenetic_marker
      WHERE
        is_subgroup
    ) AS subgroups_evaluated,
    COUNT(*) FILTER(WHERE
      m.is_subgroup AND r.result = 'positive') AS subgroups_positive
  FROM oncogenetic_result AS r
  JOIN oncogenetic_marker AS m
    USING (marker_code)
  WHERE
    r.superseded_by_run_id IS NULL
  GROUP BY
    r.patient_id
), genes AS (
  /* true = altered, false = sequenced and not altered, NULL = not sequenced */
  SELECT
    patient_id,
    BOOL_OR(is_mutated) FILTER(WHERE
      gene = 'NOTCH1' AND is_sequenced) AS notch1,
    BOOL_OR(is_mutated) FILTER(WHERE
      gene = 'FBXW7' AND is_sequenced) AS fbxw7,
    BOOL_OR(is_mutated) FILTER(WHERE
      gene = 'KRAS' AND is_sequenced) AS kras,
    BOOL_OR(is_mutated) FILTER(WHERE
      gene = 'NRAS' AND is_sequenced) AS nras,
    BOOL_OR(is_mutated OR is_deleted) FILTER(WHERE
      gene = 'PTEN' AND is_sequenced) AS pten,
    BOOL_OR(is_mutated) FILTER(WHERE
      gene = 'EZH2' AND is_sequenced) AS ezh2,
    BOOL_OR(is_mutated) FILTER(WHERE
      gene = 'ASXL1' AND is_sequenced) AS asxl1,
    BOOL_OR(is_mutated) FILTER(WHERE
      gene = 'ETV6' AND is_sequenced) AS etv6,
    BOOL_OR(is_mutated) FILTER(WHERE
      gene = 'DNMT3A' AND is_sequenced) AS dnmt3a,
    BOOL_OR(is_sequenced) FILTER(WHERE
      gene = 'IKZF1') AS ikzf1_sequenced
  FROM patient_gene_alteration_v1
  WHERE
    gene IN (
      'NOTCH1',
      'FBXW7',
      'KRAS',
      'NRAS',
      'PTEN',
      'EZH2',
      'ASXL1',
      'ETV6',
      'DNMT3A',
      'IKZF1'
    )
  GROUP BY
    patient_id
), classified AS (
  SELECT
    *,
    (
      notch1 OR fbxw7
    ) AS notch1_fbxw7, /* three-valued logic gives NULL exactly when an unsequenced gene could change the answer */
    (
      kras OR nras
    ) AS ras,
    NOT (
      (
        notch1 OR fbxw7
      ) AND NOT (
        kras OR nras
      ) AND NOT pten
    ) AS classifier_high
  FROM genes
), mrd1 AS (
  SELECT
    patient_id,
    BOOL_OR(is_positive) AS mrd1_positive
  FROM mrd_result_v1
  WHERE
    time_point = 'MRD1'
  GROUP BY
    patient_id
)
SELECT
  p.patient_id,
  p.patient_key,
  p.trial_group,
  e.protocol_code,
  pr.population,
  pr.population = 'adult' AS is_adult,
  e.diagnosis_year,
  e.sex,
  e.sex = 'M' AS is_male,
  e.age_at_diagnosis_years AS age,
  b.wbc_g_per_l,
  LN(NULLIF(b.wbc_g_per_l, 0)) AS log_wbc,
  b.cns_involvement,
  i.etp_status,
  ts.tcr_group,
  ts.tcr_group = 'immature' AS tcr_immature,
  ts.tcr_group = 'cortical' AS tcr_cortical,
  ts.tcr_group = 'mature_ab' AS tcr_mature_ab,
  ts.tcr_group = 'mature_gd' AS tcr_mature_gd,
  CASE WHEN k.subgroups_evaluated THEN COALESCE(k.tlx1, FALSE) END AS onc_tlx1,
  CASE WHEN k.subgroups_evaluated THEN COALESCE(k.tlx3, FALSE) END AS onc_tlx3,
  CASE WHEN k.subgroups_evaluated THEN COALESCE(k.sil_tal1, FALSE) END AS onc_sil_tal1,
  CASE WHEN k.subgroups_evaluated THEN COALESCE(k.calm_af10, FALSE) END AS onc_calm_af10,
  CASE WHEN k.subgroups_evaluated THEN k.subgroups_positive = 0 END AS onc_none,
  k.hoxa,
  c.notch1_fbxw7 AS notch1_fbxw7_mutated,
  c.ras AS ras_mutated,
  c.pten AS pten_altered,
  c.classifier_high,
  CASE c.classifier_high WHEN TRUE THEN 'high' WHEN FALSE THEN 'low' END AS classifier,
  c.ezh2 AS ezh2_mutated,
  c.asxl1 AS asxl1_mutated,
  c.etv6 AS etv6_mutated,
  c.dnmt3a AS dnmt3a_mutated,
  t.complete_remission,
  CASE t.prednisone_response WHEN 'good' THEN TRUE WHEN 'poor' THEN FALSE END AS prednisone_good,
  r.mrd1_positive,
  CASE WHEN t.complete_remission THEN t.hsct_in_cr1 END AS hsct_in_cr1,
  CASE WHEN x.is_altered THEN 'Alt' WHEN c.ikzf1_sequenced THEN 'GL' END AS ikzf1_status,
  CASE WHEN x.is_altered THEN TRUE WHEN c.ikzf1_sequenced THEN FALSE END AS ikzf1_alt,
  x.alteration_type AS ikzf1_alteration_type,
  x.deletion_class AS ikzf1_deletion_class,
  x.mutation_class AS ikzf1_mutation_class,
  CAST(n.os_days AS DOUBLE) / CAST(365.25 AS DOUBLE) AS os_years,
  n.os_status,
  CAST(n.efs_days AS DOUBLE) / CAST(365.25 AS DOUBLE) AS efs_years,
  n.efs_status,
  CAST(n.cir_days AS DOUBLE) / CAST(365.25 AS DOUBLE) AS cir_years,
  n.cir_status
FROM patient AS p
JOIN enrolment AS e
  ON e.patient_id = p.patient_id AND e.superseded_by_run_id IS NULL
JOIN protocol AS pr
  ON pr.protocol_code = e.protocol_code
LEFT JOIN baseline AS b
  ON b.patient_id = p.patient_id AND b.superseded_by_run_id IS NULL
LEFT JOIN immunophenotype AS i
  ON i.patient_id = p.patient_id AND i.superseded_by_run_id IS NULL
LEFT JOIN tcr_status AS ts
  ON ts.tcr_status_code = i.tcr_status_code
LEFT JOIN markers AS k
  ON k.patient_id = p.patient_id
LEFT JOIN classified AS c
  ON c.patient_id = p.patient_id
LEFT JOIN treatment_response AS t
  ON t.patient_id = p.patient_id AND t.superseded_by_run_id IS NULL
LEFT JOIN mrd1 AS r
  ON r.patient_id = p.patient_id
LEFT JOIN ikzf1_alteration_v1 AS x
  ON x.patient_id = p.patient_id AND x.is_altered
LEFT JOIN endpoint_v1 AS n
  ON n.patient_id = p.patient_id
WHERE
  e.consent_status = 'given'
