-- name: ikzf1_alteration
-- version: 3
-- depends: patient, sample, variant_call, variant_annotation, copy_number_call, gene, transcript, exon, enrolment
-- IKZF1 alterations per patient, as ikzf1_alteration@v1 (definitions below), with two changes:
-- (1) the mutation shown is picked with a complete tie-break: of the patient's IKZF1 calls, the most
-- pathogenic, then most severe, then lowest variant_id, then by annotation (VEP, then SnpEff, then a MAF's
-- own; then source and transcript, unique per variant). v1 and v2 stopped at variant_id, so when a variant
-- had two selected annotations (a VEP and a MAF one) the exon and protein change shown depended on the
-- scan order and the number of threads. (2) Patients with consent only (current enrolment consent_status
-- = 'given'), as v2. The alteration status itself (is_altered) is the same in every version.
-- The definitions, as the seed letter gives them. A mutation is a current PASS call on a
-- diagnosis or relapse sample, classed on the selected IKZF1 transcript: hotspot missense p.N159S/T
-- (exon 5), other missense, frameshift, nonsense, splice. Pathogenic = hotspot missense, or frameshift /
-- nonsense / splice in exons 3-8. A deletion is a current primary copy-number call (not a confirmation)
-- of IKZF1 losing exons: pan-genic (all exons of the reference transcript, 1-8), intragenic 4-7, or
-- other partial. One row per patient with at least one IKZF1 mutation or deletion; `has_both` flags a
-- patient with both (the letter saw none; such data loads and is reported here).
-- columns:
--   patient_id: warehouse patient key (patient.patient_id)
--   mutation_class: hotspot_missense | other_missense | frameshift | nonsense | splice (most severe); NULL if none
--   mutation_exon: exon of that mutation on the selected transcript
--   protein_change: HGVSp of that mutation
--   mutation_pathogenic: the mutation makes the patient IKZF1-altered
--   deletion_class: pan_genic | intragenic_4_7 | other_partial; NULL if no deletion
--   deletion_first_exon: first deleted exon
--   deletion_last_exon: last deleted exon
--   deletion_confirmed_by: second methods that confirmed the deletion (e.g. MLPA,aCGH), NULL if none
--   alteration_type: mutation | deletion | both (pathogenic mutations and deletions only); NULL if neither
--   is_altered: IKZF1 status Alt (a pathogenic mutation or a deletion)
--   has_both: both a pathogenic mutation and a deletion
WITH ikzf1 AS (
    SELECT g.gene_id, max(x.exon_number) AS exon_count
    FROM gene AS g
    JOIN transcript AS t ON t.gene_id = g.gene_id AND t.is_mane_select
    JOIN exon AS x ON x.transcript_id = t.transcript_id
    WHERE g.symbol = 'IKZF1'
    GROUP BY g.gene_id
),
mutation AS (
    SELECT DISTINCT s.patient_id, c.variant_id, a.exon_number, a.hgvsp, a.annotation_source,
        a.transcript_accession,
        CASE WHEN a.annotation_source LIKE 'VEP%' THEN 1 WHEN a.annotation_source LIKE 'SnpEff%' THEN 2
             ELSE 3 END AS source_rank,
        CASE
            WHEN a.consequence LIKE '%frameshift_variant%' THEN 'frameshift'
            WHEN a.consequence LIKE '%stop_gained%' THEN 'nonsense'
            WHEN a.consequence SIMILAR TO '.*(splice_acceptor|splice_donor|splice_region)_variant.*' THEN 'splice'
            WHEN a.consequence LIKE '%missense_variant%' AND a.protein_position = 159
                 AND a.amino_acids IN ('N/S', 'N/T') THEN 'hotspot_missense'
            WHEN a.consequence LIKE '%missense_variant%' THEN 'other_missense'
        END AS mutation_class
    FROM variant_call AS c
    JOIN sample AS s ON s.sample_id = c.sample_id AND s.sample_type IN ('diagnosis', 'relapse')
    JOIN variant_annotation AS a ON a.variant_id = c.variant_id AND a.is_selected AND a.gene_symbol = 'IKZF1'
    WHERE c.superseded_by_run_id IS NULL AND c.filter = 'PASS'
),
classed AS (
    SELECT *,
        mutation_class = 'hotspot_missense'
        OR (mutation_class IN ('frameshift', 'nonsense', 'splice') AND exon_number BETWEEN 3 AND 8) AS pathogenic,
        CASE mutation_class WHEN 'hotspot_missense' THEN 1 WHEN 'frameshift' THEN 2 WHEN 'nonsense' THEN 3
             WHEN 'splice' THEN 4 ELSE 5 END AS severity
    FROM mutation WHERE mutation_class IS NOT NULL
),
top_mutation AS (
    SELECT patient_id, mutation_class, exon_number, hgvsp, pathogenic
    FROM classed
    QUALIFY row_number() OVER (
        PARTITION BY patient_id
        ORDER BY pathogenic DESC, severity, variant_id, source_rank, annotation_source, transcript_accession
    ) = 1
),
deletion AS (
    SELECT s.patient_id, c.first_exon, c.last_exon,
        CASE WHEN c.first_exon = 1 AND c.last_exon = k.exon_count THEN 'pan_genic'
             WHEN c.first_exon = 4 AND c.last_exon = 7 THEN 'intragenic_4_7'
             ELSE 'other_partial' END AS deletion_class,
        (SELECT string_agg(DISTINCT f.method, ',' ORDER BY f.method) FROM copy_number_call AS f
         WHERE f.confirms_copy_number_call_id = c.copy_number_call_id AND f.superseded_by_run_id IS NULL
        ) AS confirmed_by
    FROM copy_number_call AS c
    JOIN ikzf1 AS k ON k.gene_id = c.gene_id
    JOIN sample AS s ON s.sample_id = c.sample_id AND s.sample_type IN ('diagnosis', 'relapse')
    WHERE c.superseded_by_run_id IS NULL AND c.confirms_copy_number_call_id IS NULL
      AND c.call_type IN ('deletion', 'homozygous_deletion')
    QUALIFY row_number() OVER (
        PARTITION BY s.patient_id ORDER BY c.last_exon - c.first_exon DESC, c.copy_number_call_id
    ) = 1
)
SELECT
    p.patient_id,
    m.mutation_class,
    m.exon_number AS mutation_exon,
    m.hgvsp AS protein_change,
    coalesce(m.pathogenic, false) AS mutation_pathogenic,
    d.deletion_class,
    d.first_exon AS deletion_first_exon,
    d.last_exon AS deletion_last_exon,
    d.confirmed_by AS deletion_confirmed_by,
    CASE WHEN m.pathogenic AND d.patient_id IS NOT NULL THEN 'both'
         WHEN m.pathogenic THEN 'mutation'
         WHEN d.patient_id IS NOT NULL THEN 'deletion' END AS alteration_type,
    coalesce(m.pathogenic, false) OR d.patient_id IS NOT NULL AS is_altered,
    coalesce(m.pathogenic, false) AND d.patient_id IS NOT NULL AS has_both
FROM patient AS p
LEFT JOIN top_mutation AS m ON m.patient_id = p.patient_id
LEFT JOIN deletion AS d ON d.patient_id = p.patient_id
WHERE (m.patient_id IS NOT NULL OR d.patient_id IS NOT NULL)
  AND p.patient_id IN (
      SELECT e.patient_id FROM enrolment AS e
      WHERE e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
  )
