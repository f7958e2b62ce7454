-- name: cohort_patient
-- version: 3
-- materialize: table
-- attributes: mrd, patient
-- depends: patient, enrolment, protocol, baseline, immunophenotype, tcr_status, oncogenetic_result, oncogenetic_marker, treatment_response, ikzf1_alteration_v3, mrd_result_v3, patient_gene_alteration_v1, endpoint_v3
-- Changes from v2: mrd1_positive from mrd_result@v3 (thresholds from the reference table mrd_threshold;
-- the same 1e-4 for IG/TCR PCR), the time point matched in any case (MRD1, mrd1), and negative only when
-- every target of the assessment was evaluable and negative (v2: when any evaluable one was); and the stable name cohort_patient adds the MRD status
-- of every (time point, method) present (`-- attributes: mrd, patient`: the MRD columns first): mrd_<time point>_<method>_positive,
-- _day and _value from the generated view patient_mrd (queries/mrd.py, docs/mrd.md), e.g. mrd_c2_mfc_positive
-- after cycle 2 by flow cytometry, mrd1_pcr_positive for MRD1 by ASO-PCR, besides the declared patient
-- attributes (docs/attributes.md). cohort_patient_v3 itself has the columns below only.
-- One row per patient with consent: every Table 1 variable of the seed letter, IKZF1 status and the
-- endpoints, as the association (`cgdw table1`) and outcome (`cgdw outcomes`) commands read them.
-- NULL always means "not evaluated", never "no": a Table 1 denominator is the count of non-NULL values.
-- IKZF1 status is Alt when ikzf1_alteration says so, GL when IKZF1 was sequenced (or its copy number
-- assessed) at diagnosis without a pathogenic alteration, NULL when it was not looked at.
-- The N/F-R/P classifier (Trinquand et al., JCO 2013): low risk = NOTCH1 and/or FBXW7 mutated with
-- neither K/N-RAS mutated nor PTEN altered; high risk otherwise. NULL when any of the five genes was not
-- sequenced and the answer would depend on it.
-- Patients whose consent is withdrawn are left out here, so no analysis or extract sees them.
-- columns:
--   patient_id: warehouse patient key (patient.patient_id)
--   patient_key: pseudonymous key (HMAC of group and source id; no identifier)
--   trial_group: cooperative group (GRAALL, FRALLE, ...)
--   protocol_code: treatment protocol, e.g. GRAALL-2005
--   diagnosis: T-ALL, T-LBL, B-ALL, AML, MPAL, other, or the source's own code
--   population: adult | pediatric, from the protocol
--   is_adult: enrolled in an adult protocol (the letter's "Adult (GRAALL) patients"); NULL for all ages
--   diagnosis_year: year of diagnosis
--   sex: M | F
--   is_male: sex = M
--   age: age at diagnosis, years
--   wbc_g_per_l: white blood cells at diagnosis, x10^9/L
--   log_wbc: natural log of wbc_g_per_l (the covariate of the hazard models)
--   cns_involvement: CNS involvement at diagnosis
--   etp_status: early T-cell precursor immunophenotype
--   tcr_group: immature | cortical | mature_ab | mature_gd (TCR status group)
--   tcr_immature: TCR group immature (IM0/delta/gamma); NULL if TCR status unknown
--   tcr_cortical: TCR group cortical (IMB, pre-alpha-beta)
--   tcr_mature_ab: TCR group mature alpha-beta
--   tcr_mature_gd: TCR group mature gamma-delta
--   onc_tlx1: TLX1 positive; NULL unless all four subgroup markers were evaluated
--   onc_tlx3: TLX3 positive (same denominator)
--   onc_sil_tal1: SIL-TAL1 positive (same denominator)
--   onc_calm_af10: CALM-AF10 positive (same denominator)
--   onc_none: none of the four subgroup markers positive (same denominator)
--   hoxa: HOXA positive; NULL if not evaluated
--   notch1_fbxw7_mutated: NOTCH1 or FBXW7 mutated
--   ras_mutated: KRAS or NRAS mutated
--   pten_altered: PTEN mutated or deleted
--   classifier_high: high-risk N/F-R/P classifier
--   classifier: high | low
--   ezh2_mutated: EZH2 mutated
--   asxl1_mutated: ASXL1 mutated
--   etv6_mutated: ETV6 mutated
--   dnmt3a_mutated: DNMT3A mutated
--   complete_remission: CR after induction
--   prednisone_good: good prednisone response; NULL if not evaluated
--   mrd1_positive: MRD1 positive at the threshold of its method (1e-4 by IG/TCR PCR), any method and target; negative when every target is; else NULL
--   hsct_in_cr1: allogeneic HSCT in first CR; NULL for patients never in CR (denominator = CR)
--   hsct_years: time from diagnosis to the HSCT in first CR, years; NULL without one (a time-dependent covariate)
--   ikzf1_status: Alt | GL; NULL if IKZF1 was not looked at
--   ikzf1_alt: ikzf1_status = Alt
--   ikzf1_alteration_type: mutation | deletion | both
--   ikzf1_deletion_class: pan_genic | intragenic_4_7 | other_partial
--   ikzf1_mutation_class: hotspot_missense | other_missense | frameshift | nonsense | splice
--   os_years: overall survival time, years (days / 365.25)
--   os_status: 1 death, 0 censored
--   efs_years: event-free survival time, years (reported by the source when it gives one)
--   efs_status: 1 event (induction failure, relapse, death), 0 censored
--   cir_years: time to relapse or competing event, years; NULL if never in CR
--   cir_status: 0 censored, 1 relapse, 2 death in CR; NULL if never in CR or CR unknown
--   dfs_years: disease-free survival time as the source reports it, years; NULL if not reported
--   dfs_status: 1 recurrence or progression, 0 censored
--   pfs_years: progression-free survival time as the source reports it, years; NULL if not reported
--   pfs_status: 1 progression or death, 0 censored
WITH markers AS (
    SELECT r.patient_id,
        bool_or(r.result = 'positive') FILTER (r.marker_code = 'TLX1') AS tlx1,
        bool_or(r.result = 'positive') FILTER (r.marker_code = 'TLX3') AS tlx3,
        bool_or(r.result = 'positive') FILTER (r.marker_code = 'SIL-TAL1') AS sil_tal1,
        bool_or(r.result = 'positive') FILTER (r.marker_code = 'CALM-AF10') AS calm_af10,
        bool_or(r.result = 'positive') FILTER (r.marker_code = 'HOXA' AND r.result <> 'not_done') AS hoxa,
        count(DISTINCT r.marker_code) FILTER (m.is_subgroup AND r.result IN ('positive', 'negative'))
            = (SELECT count(*) FROM oncogenetic_marker WHERE is_subgroup) AS subgroups_evaluated,
        count(*) FILTER (m.is_subgroup AND r.result = 'positive') AS subgroups_positive
    FROM oncogenetic_result AS r JOIN oncogenetic_marker AS m USING (marker_code)
    WHERE r.superseded_by_run_id IS NULL
    GROUP BY r.patient_id
),
genes AS (
    -- true = altered, false = sequenced and not altered, NULL = not sequenced
    SELECT patient_id,
        bool_or(is_mutated) FILTER (gene = 'NOTCH1' AND is_sequenced) AS notch1,
        bool_or(is_mutated) FILTER (gene = 'FBXW7' AND is_sequenced) AS fbxw7,
        bool_or(is_mutated) FILTER (gene = 'KRAS' AND is_sequenced) AS kras,
        bool_or(is_mutated) FILTER (gene = 'NRAS' AND is_sequenced) AS nras,
        bool_or(is_mutated OR is_deleted) FILTER (gene = 'PTEN' AND is_sequenced) AS pten,
        bool_or(is_mutated) FILTER (gene = 'EZH2' AND is_sequenced) AS ezh2,
        bool_or(is_mutated) FILTER (gene = 'ASXL1' AND is_sequenced) AS asxl1,
        bool_or(is_mutated) FILTER (gene = 'ETV6' AND is_sequenced) AS etv6,
        bool_or(is_mutated) FILTER (gene = 'DNMT3A' AND is_sequenced) AS dnmt3a,
        bool_or(is_sequenced) FILTER (gene = 'IKZF1') AS ikzf1_sequenced
    FROM patient_gene_alteration_v1
    WHERE gene IN ('NOTCH1', 'FBXW7', 'KRAS', 'NRAS', 'PTEN', 'EZH2', 'ASXL1', 'ETV6', 'DNMT3A', 'IKZF1')
    GROUP BY patient_id
),
classified AS (
    SELECT *,
        -- three-valued logic gives NULL exactly when an unsequenced gene could change the answer
        (notch1 OR fbxw7) AS notch1_fbxw7,
        (kras OR nras) AS ras,
        NOT ((notch1 OR fbxw7) AND NOT (kras OR nras) AND NOT pten) AS classifier_high
    FROM genes
),
mrd1 AS (
    -- positive when a target is; negative only when every target was evaluable and negative
    SELECT patient_id,
        CASE WHEN bool_or(is_positive) THEN true WHEN count(*) = count(is_positive) THEN false END
            AS mrd1_positive
    FROM mrd_result_v3
    WHERE lower(time_point) = 'mrd1'
    GROUP BY patient_id
)
SELECT
    p.patient_id,
    p.patient_key,
    p.trial_group,
    e.protocol_code,
    e.diagnosis,
    pr.population,
    CASE pr.population WHEN 'adult' THEN true WHEN 'pediatric' THEN false END AS is_adult,
    e.diagnosis_year,
    e.sex,
    e.sex = 'M' AS is_male,
    e.age_at_diagnosis_years AS age,
    b.wbc_g_per_l,
    ln(nullif(b.wbc_g_per_l, 0)) AS log_wbc,
    b.cns_involvement,
    i.etp_status,
    ts.tcr_group,
    ts.tcr_group = 'immature' AS tcr_immature,
    ts.tcr_group = 'cortical' AS tcr_cortical,
    ts.tcr_group = 'mature_ab' AS tcr_mature_ab,
    ts.tcr_group = 'mature_gd' AS tcr_mature_gd,
    CASE WHEN k.subgroups_evaluated THEN coalesce(k.tlx1, false) END AS onc_tlx1,
    CASE WHEN k.subgroups_evaluated THEN coalesce(k.tlx3, false) END AS onc_tlx3,
    CASE WHEN k.subgroups_evaluated THEN coalesce(k.sil_tal1, false) END AS onc_sil_tal1,
    CASE WHEN k.subgroups_evaluated THEN coalesce(k.calm_af10, false) END AS onc_calm_af10,
    CASE WHEN k.subgroups_evaluated THEN k.subgroups_positive = 0 END AS onc_none,
    k.hoxa,
    c.notch1_fbxw7 AS notch1_fbxw7_mutated,
    c.ras AS ras_mutated,
    c.pten AS pten_altered,
    c.classifier_high,
    CASE c.classifier_high WHEN true THEN 'high' WHEN false THEN 'low' END AS classifier,
    c.ezh2 AS ezh2_mutated,
    c.asxl1 AS asxl1_mutated,
    c.etv6 AS etv6_mutated,
    c.dnmt3a AS dnmt3a_mutated,
    t.complete_remission,
    CASE t.prednisone_response WHEN 'good' THEN true WHEN 'poor' THEN false END AS prednisone_good,
    r.mrd1_positive,
    CASE WHEN t.complete_remission THEN t.hsct_in_cr1 END AS hsct_in_cr1,
    CASE WHEN t.complete_remission AND t.hsct_in_cr1 THEN t.hsct_day / 365.25 END AS hsct_years,
    CASE WHEN x.is_altered THEN 'Alt' WHEN c.ikzf1_sequenced THEN 'GL' END AS ikzf1_status,
    CASE WHEN x.is_altered THEN true WHEN c.ikzf1_sequenced THEN false END AS ikzf1_alt,
    x.alteration_type AS ikzf1_alteration_type,
    x.deletion_class AS ikzf1_deletion_class,
    x.mutation_class AS ikzf1_mutation_class,
    n.os_days / 365.25 AS os_years,
    n.os_status,
    n.efs_days / 365.25 AS efs_years,
    n.efs_status,
    n.cir_days / 365.25 AS cir_years,
    n.cir_status,
    n.dfs_days / 365.25 AS dfs_years,
    n.dfs_status,
    n.pfs_days / 365.25 AS pfs_years,
    n.pfs_status
FROM patient AS p
JOIN enrolment AS e ON e.patient_id = p.patient_id AND e.superseded_by_run_id IS NULL
LEFT JOIN protocol AS pr ON pr.protocol_code = e.protocol_code
LEFT JOIN baseline AS b ON b.patient_id = p.patient_id AND b.superseded_by_run_id IS NULL
LEFT JOIN immunophenotype AS i ON i.patient_id = p.patient_id AND i.superseded_by_run_id IS NULL
LEFT JOIN tcr_status AS ts ON ts.tcr_status_code = i.tcr_status_code
LEFT JOIN markers AS k ON k.patient_id = p.patient_id
LEFT JOIN classified AS c ON c.patient_id = p.patient_id
LEFT JOIN treatment_response AS t ON t.patient_id = p.patient_id AND t.superseded_by_run_id IS NULL
LEFT JOIN mrd1 AS r ON r.patient_id = p.patient_id
LEFT JOIN ikzf1_alteration_v3 AS x ON x.patient_id = p.patient_id AND x.is_altered
LEFT JOIN endpoint_v3 AS n ON n.patient_id = p.patient_id
WHERE e.consent_status = 'given'
