-- name: patient_gene_alteration
-- version: 1
-- depends: patient, sample, sequencing_assay, gene_panel_gene, gene, variant_call, variant_annotation, copy_number_call
-- Patient x gene at diagnosis, for oncoplots and enrichment tests: one row per patient and per gene of
-- the panels the warehouse knows. A gene is sequenced for a patient when a diagnosis sample of that
-- patient was run on an assay whose panel holds the gene; a copy-number call on the gene counts as
-- assessed too. Mutated = a current PASS call on a diagnosis sample whose consequence on the selected
-- transcript changes the protein (missense, nonsense, frameshift, splice site, in-frame indel,
-- start/stop lost). Deleted = a current primary copy-number call (not a second-method confirmation) of
-- deletion or homozygous deletion. A patient with no diagnosis sample on any assay is not_sequenced for
-- every gene: "wild type" is only said of genes that were looked at.
-- columns:
--   patient_id: warehouse patient key (patient.patient_id)
--   gene: HGNC symbol
--   is_sequenced: a diagnosis sample's assay covers the gene (or a copy-number call exists for it)
--   is_mutated: protein-changing PASS call at diagnosis
--   is_deleted: deletion or homozygous deletion at diagnosis
--   status: mutated_and_deleted | mutated | deleted | wild_type | not_sequenced
--   mutation_count: distinct protein-changing variants
--   protein_changes: HGVSp of those variants, comma-separated
WITH panel_gene AS (
    SELECT DISTINCT g.gene_id, g.symbol
    FROM gene_panel_gene AS pg JOIN gene AS g USING (gene_id)
),
patient_panel AS (
    SELECT DISTINCT s.patient_id, a.gene_panel_id
    FROM sample AS s
    JOIN sequencing_assay AS a ON a.sequencing_assay_id = s.sequencing_assay_id
    WHERE s.sample_type = 'diagnosis' AND a.gene_panel_id IS NOT NULL
),
-- patient x gene, grouped on the gene's symbol so that a filter on `gene` reaches the cross join
grid AS (
    SELECT p.patient_id, g.gene_id, g.symbol, bool_or(pg.gene_id IS NOT NULL) AS on_panel
    FROM patient AS p
    CROSS JOIN panel_gene AS g
    LEFT JOIN patient_panel AS pp ON pp.patient_id = p.patient_id
    LEFT JOIN gene_panel_gene AS pg ON pg.gene_panel_id = pp.gene_panel_id AND pg.gene_id = g.gene_id
    GROUP BY p.patient_id, g.gene_id, g.symbol
),
mutated AS (
    SELECT s.patient_id, a.gene_symbol,
        count(DISTINCT c.variant_id) AS mutation_count,
        string_agg(DISTINCT a.hgvsp, ',' ORDER BY a.hgvsp) AS protein_changes
    FROM variant_call AS c
    JOIN sample AS s ON s.sample_id = c.sample_id AND s.sample_type = 'diagnosis'
    JOIN variant_annotation AS a ON a.variant_id = c.variant_id AND a.is_selected
    WHERE c.superseded_by_run_id IS NULL AND c.filter = 'PASS'
      AND regexp_matches(a.consequence, 'missense_variant|stop_gained|frameshift_variant|'
          || 'splice_acceptor_variant|splice_donor_variant|inframe_insertion|inframe_deletion|'
          || 'start_lost|stop_lost|protein_altering_variant')
    GROUP BY ALL
),
deleted AS (
    SELECT DISTINCT s.patient_id, c.gene_id
    FROM copy_number_call AS c
    JOIN sample AS s ON s.sample_id = c.sample_id AND s.sample_type = 'diagnosis'
    WHERE c.superseded_by_run_id IS NULL AND c.confirms_copy_number_call_id IS NULL
      AND c.call_type IN ('deletion', 'homozygous_deletion')
),
assessed_cn AS (
    SELECT DISTINCT s.patient_id, c.gene_id
    FROM copy_number_call AS c
    JOIN sample AS s ON s.sample_id = c.sample_id AND s.sample_type = 'diagnosis'
    WHERE c.superseded_by_run_id IS NULL
)
SELECT
    x.patient_id,
    x.symbol AS gene,
    x.on_panel OR cn.patient_id IS NOT NULL OR m.patient_id IS NOT NULL AS is_sequenced,
    m.patient_id IS NOT NULL AS is_mutated,
    d.patient_id IS NOT NULL AS is_deleted,
    CASE
        WHEN m.patient_id IS NOT NULL AND d.patient_id IS NOT NULL THEN 'mutated_and_deleted'
        WHEN m.patient_id IS NOT NULL THEN 'mutated'
        WHEN d.patient_id IS NOT NULL THEN 'deleted'
        WHEN x.on_panel OR cn.patient_id IS NOT NULL THEN 'wild_type'
        ELSE 'not_sequenced'
    END AS status,
    coalesce(m.mutation_count, 0) AS mutation_count,
    m.protein_changes
FROM grid AS x
LEFT JOIN assessed_cn AS cn ON cn.patient_id = x.patient_id AND cn.gene_id = x.gene_id
LEFT JOIN mutated AS m ON m.patient_id = x.patient_id AND m.gene_symbol = x.symbol
LEFT JOIN deleted AS d ON d.patient_id = x.patient_id AND d.gene_id = x.gene_id
