-- name: mrd_result
-- version: 3
-- depends: mrd_measurement, mrd_threshold, enrolment
-- Current MRD measurements of the patients with consent, with positivity decided at the threshold of the
-- reference table mrd_threshold (migration 0012, sources in docs/mrd.md) instead of thresholds fixed here:
-- the row of the measurement's method and time point where a protocol sets one, else the method's row for
-- every time point ('*'). Changed from v2: LSC flow (LSC-MFC) has its own threshold, any detectable
-- CD34+CD38- leukemic stem cell (threshold 0, positive above it), no longer the MFC 0.1%; a detected result
-- without a value ("positive", "positive not quantifiable") is positive under such a threshold.
-- Otherwise as v1: a value at (or, for '>', above) the threshold is positive; a quantified value below it
-- or below the limit of detection, or "negative", is negative; "positive not quantifiable" (below the quantitative range) is negative when
-- that range starts at or below the threshold, else unknown; "not done" and "indeterminate" are unknown
-- (NULL), never negative. `--mrd-threshold` runs this same SELECT with other thresholds (queries/mrd.py).
-- columns:
--   patient_id: warehouse patient key
--   time_point: protocol time point (MRD1 = post-induction in GRAALL/FRALLE, C2 = after cycle 2 in HOVON)
--   day: days from diagnosis
--   method: ASO-PCR | ddPCR | MFC | LSC-MFC | NGS-IGTCR
--   target: rearrangement or marker followed
--   value_fraction: level as a fraction of cells
--   qualitative_result: positive | positive_not_quantifiable | negative | not_done | indeterminate
--   limit_of_detection: as a fraction
--   quantitative_range_low: as a fraction
--   threshold: positivity threshold applied, as a fraction
--   positive_at: >= (at or above the threshold) or > (above it)
--   is_positive: positive at the threshold; NULL when it cannot be told
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
    m.threshold,
    m.positive_at,
    CASE
        WHEN m.qualitative_result IN ('not_done', 'indeterminate') THEN NULL
        -- a level below the limit of detection was not detected (matters where any detectable level counts)
        WHEN m.value_fraction < m.limit_of_detection THEN false
        WHEN m.value_fraction IS NOT NULL AND m.positive_at = '>' THEN m.value_fraction > m.threshold
        WHEN m.value_fraction IS NOT NULL THEN m.value_fraction >= m.threshold
        WHEN m.qualitative_result = 'negative' THEN false
        -- detected without a value, where any detectable level is positive
        WHEN m.qualitative_result IN ('positive', 'positive_not_quantifiable')
            AND m.positive_at = '>' AND m.threshold = 0 THEN true
        WHEN m.qualitative_result = 'positive_not_quantifiable' AND m.quantitative_range_low <= m.threshold
            THEN false
    END AS is_positive
FROM (
    SELECT x.*,
        coalesce(s.threshold, d.threshold) AS threshold,
        coalesce(s.positive_at, d.positive_at) AS positive_at
    FROM mrd_measurement AS x
    LEFT JOIN mrd_threshold AS s ON s.method = x.method AND s.time_point = x.time_point
    LEFT JOIN mrd_threshold AS d ON d.method = x.method AND d.time_point = '*'
    WHERE x.superseded_by_run_id IS NULL
        AND x.patient_id IN (
            SELECT e.patient_id FROM enrolment AS e
            WHERE e.superseded_by_run_id IS NULL AND e.consent_status = 'given'
        )
) AS m
