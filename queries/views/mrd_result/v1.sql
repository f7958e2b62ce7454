-- name: mrd_result
-- version: 1
-- depends: mrd_measurement
-- Current MRD measurements with positivity at the method's threshold, decided here in SQL from the
-- normalised value and the qualitative result (the loader stores no positivity). Thresholds: 1e-4 for
-- IG/TCR PCR, ddPCR and NGS (MRD1 of GRAALL/FRALLE), 0.1% (1e-3) for AML flow cytometry (MFC, HOVON) and,
-- as cgdw's documented default, for LSC flow too. A value at or above the threshold is positive; a
-- quantified value below it, or "negative", is negative; "positive not quantifiable" (below the
-- quantitative range) is negative when that range starts at or below the threshold, else unknown;
-- "not done" and "indeterminate" are unknown (NULL), never negative.
-- columns:
--   patient_id: warehouse patient key
--   time_point: protocol time point (MRD1 = post-induction in GRAALL/FRALLE)
--   day: days from diagnosis
--   method: ASO-PCR | ddPCR | MFC | LSC-MFC | NGS-IGTCR
--   target: rearrangement or marker followed
--   value_fraction: level as a fraction of cells
--   qualitative_result: positive | positive_not_quantifiable | negative | not_done | indeterminate
--   limit_of_detection: as a fraction
--   quantitative_range_low: as a fraction
--   threshold: positivity threshold of the method, as a fraction
--   is_positive: at or above the threshold; NULL when it cannot be told
WITH thresholds (method, threshold) AS (
    VALUES ('ASO-PCR', 1e-4), ('ddPCR', 1e-4), ('NGS-IGTCR', 1e-4), ('MFC', 1e-3), ('LSC-MFC', 1e-3)
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
        WHEN m.qualitative_result IN ('not_done', 'indeterminate') THEN NULL
        WHEN m.value_fraction IS NOT NULL THEN m.value_fraction >= t.threshold
        WHEN m.qualitative_result = 'negative' THEN false
        WHEN m.qualitative_result = 'positive_not_quantifiable' AND m.quantitative_range_low <= t.threshold THEN false
    END AS is_positive
FROM mrd_measurement AS m
JOIN thresholds AS t USING (method)
WHERE m.superseded_by_run_id IS NULL
