-- name: variant_call_annotation
-- version: 1
-- depends: variant_call, variant, variant_annotation, sample, enrolment
-- Current variant calls, one row per call, each with the one annotation that extracts show (the cBioPortal
-- MAF among them): among the annotations of the selected transcript (variant_annotation.is_selected), VEP
-- first, then SnpEff, then a MAF's own; ties broken by gene, transcript and annotation source (complete:
-- those three are unique per variant). Calls without a selected annotation are not shown. Patients with
-- consent only (current enrolment consent_status = 'given', as in cohort_patient).
-- columns:
--   variant_call_id: the call (variant_call.variant_call_id)
--   sample_id: warehouse sample key
--   patient_id: warehouse patient key
--   assembly: GRCh37 | GRCh38
--   chrom: chromosome, without 'chr'
--   pos: 1-based start of the normalised, minimal allele (indels with a '-' allele, as variant stores them)
--   ref: reference allele
--   alt: alternate allele
--   genotype: GT as called
--   depth: read depth
--   alt_depth: reads supporting the alternate allele
--   vaf: variant allele fraction
--   filter: FILTER as called (PASS or the failed filters)
--   gene_symbol: HGNC symbol of the annotation
--   transcript_accession: transcript, with version
--   hgvsc: HGVS coding change
--   hgvsp: HGVS protein change
--   exon_number: exon hit
--   exon_count: exons of the transcript
--   consequence: Sequence Ontology terms, '&'-joined
--   impact: HIGH, MODERATE, LOW or MODIFIER
--   protein_position: first amino acid affected
--   amino_acids: reference/variant amino acids, e.g. N/S
--   annotation_source: VEP, SnpEff or MAF, with version
SELECT c.variant_call_id, c.sample_id, s.patient_id, v.assembly, v.chrom, v.pos, v.ref, v.alt, c.genotype,
       c.depth, c.alt_depth, c.vaf, c.filter, a.gene_symbol, a.transcript_accession, a.hgvsc, a.hgvsp,
       a.exon_number, a.exon_count, a.consequence, a.impact, a.protein_position, a.amino_acids,
       a.annotation_source
FROM variant_call AS c
JOIN sample AS s ON s.sample_id = c.sample_id
JOIN variant AS v ON v.variant_id = c.variant_id
JOIN variant_annotation AS a ON a.variant_id = c.variant_id AND a.is_selected
WHERE c.superseded_by_run_id IS NULL
  AND s.patient_id IN (
      SELECT e.patient_id FROM enrolment AS e
      WHERE e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
  )
QUALIFY row_number() OVER (
    PARTITION BY c.variant_call_id
    ORDER BY CASE WHEN a.annotation_source LIKE 'VEP%' THEN 1
                  WHEN a.annotation_source LIKE 'SnpEff%' THEN 2 ELSE 3 END,
             a.gene_symbol, a.transcript_accession, a.annotation_source
) = 1
