-- name: endpoint
-- version: 3
-- depends: patient, enrolment, treatment_response, outcome_event, reported_endpoint
-- Survival endpoints per patient with consent, times in days from diagnosis (fractional when the source
-- sent months). Changes from v2, for cohorts loaded as published (a cBioPortal study, a registry extract):
-- (1) every consented patient has a row: OS needs a death or last-contact time only, not a CR record
-- (v1 and v2 inner-joined treatment_response, so OS was empty without one);
-- (2) when CR after induction is unknown, the derived EFS and CIR are NULL (unknown), never guessed;
-- (3) EFS, DFS and PFS reported ready-made by the source (reported_endpoint) are used as sent: EFS is the
-- reported one when the source gives it, else the derived one (efs_source says which); DFS and PFS exist
-- only when reported.
-- Derived definitions, as v1: OS: death from any cause, alive patients censored at their last follow-up.
-- EFS: first of induction failure (event at day 0), relapse or death from any cause. CIR: the first
-- relapse is the event, death without relapse after CR is the competing event, patients alive in CR are
-- censored at last follow-up; patients never in CR are excluded (cir_eligible false). A death recorded
-- before the last follow-up day wins.
-- columns:
--   patient_id: warehouse patient key (patient.patient_id)
--   complete_remission: CR after induction; NULL when unknown
--   cr_day: days from diagnosis to CR
--   first_relapse_day: day of the first relapse (NULL if none)
--   death_day: day of death (NULL if alive at last news)
--   last_follow_up_day: day of the last news
--   os_days: days to death or last follow-up
--   os_status: 1 death, 0 censored
--   efs_days: days to the first EFS event or last follow-up (0 for induction failure)
--   efs_status: 1 event, 0 censored
--   efs_event: induction_failure | relapse | death | reported (the source's own EFS event) | NULL
--   efs_source: derived | reported | NULL (no EFS)
--   cir_eligible: patient counted in CIR (reached CR); NULL when CR is unknown
--   cir_days: days to first relapse, death in CR or last follow-up (NULL if not eligible)
--   cir_status: 0 censored, 1 relapse, 2 death without relapse (competing); NULL if not eligible
--   dfs_days: disease-free survival time as reported (NULL if the source gives none)
--   dfs_status: 1 recurrence or progression, 0 censored, as reported
--   pfs_days: progression-free survival time as reported
--   pfs_status: 1 progression or death, 0 censored, as reported
WITH events AS (
    SELECT patient_id,
        min(day) FILTER (event_type = 'relapse') AS first_relapse_day,
        min(day) FILTER (event_type = 'death') AS death_day,
        max(day) FILTER (event_type = 'last_follow_up') AS last_follow_up_day
    FROM outcome_event
    WHERE superseded_by_run_id IS NULL
    GROUP BY patient_id
),
reported AS (
    -- one current row per patient and endpoint (the loaders merge snapshots by patient)
    SELECT patient_id,
        any_value(day) FILTER (endpoint = 'efs') AS efs_day,
        any_value(event) FILTER (endpoint = 'efs') AS efs_event,
        any_value(day) FILTER (endpoint = 'dfs') AS dfs_day,
        any_value(event) FILTER (endpoint = 'dfs') AS dfs_event,
        any_value(day) FILTER (endpoint = 'pfs') AS pfs_day,
        any_value(event) FILTER (endpoint = 'pfs') AS pfs_event
    FROM reported_endpoint
    WHERE superseded_by_run_id IS NULL
    GROUP BY patient_id
),
base AS (
    SELECT p.patient_id, t.complete_remission, t.cr_day, e.first_relapse_day, e.death_day,
        e.last_follow_up_day,
        coalesce(e.death_day, e.last_follow_up_day) AS end_day
    FROM patient AS p
    JOIN enrolment AS n ON n.patient_id = p.patient_id AND n.superseded_by_run_id IS NULL
        AND n.consent_status = 'given'
    LEFT JOIN treatment_response AS t ON t.patient_id = p.patient_id AND t.superseded_by_run_id IS NULL
    LEFT JOIN events AS e ON e.patient_id = p.patient_id
),
derived AS (
    SELECT *,
        -- CR unknown: no EFS is derived (a NULL would otherwise fall through to the ELSE branches)
        CASE WHEN complete_remission IS NULL THEN NULL
             WHEN NOT complete_remission THEN 0
             ELSE coalesce(least(first_relapse_day, death_day), end_day) END AS derived_efs_days,
        CASE WHEN complete_remission IS NULL THEN NULL
             WHEN NOT complete_remission THEN 1
             WHEN end_day IS NULL THEN NULL
             WHEN first_relapse_day IS NOT NULL OR death_day IS NOT NULL THEN 1 ELSE 0 END
            AS derived_efs_status,
        CASE WHEN complete_remission IS NULL THEN NULL
             WHEN NOT complete_remission THEN 'induction_failure'
             WHEN first_relapse_day IS NOT NULL AND first_relapse_day <= coalesce(death_day, first_relapse_day)
                 THEN 'relapse'
             WHEN death_day IS NOT NULL THEN 'death' END AS derived_efs_event
    FROM base
)
SELECT
    d.patient_id,
    d.complete_remission,
    d.cr_day,
    d.first_relapse_day,
    d.death_day,
    d.last_follow_up_day,
    d.end_day AS os_days,
    CASE WHEN d.end_day IS NULL THEN NULL WHEN d.death_day IS NOT NULL THEN 1 ELSE 0 END AS os_status,
    CASE WHEN r.efs_day IS NOT NULL THEN r.efs_day ELSE d.derived_efs_days END AS efs_days,
    CASE WHEN r.efs_day IS NOT NULL THEN r.efs_event::INTEGER ELSE d.derived_efs_status END AS efs_status,
    CASE WHEN r.efs_day IS NOT NULL THEN CASE WHEN r.efs_event THEN 'reported' END
         ELSE d.derived_efs_event END AS efs_event,
    CASE WHEN r.efs_day IS NOT NULL THEN 'reported'
         WHEN d.derived_efs_status IS NOT NULL THEN 'derived' END AS efs_source,
    d.complete_remission AS cir_eligible,
    CASE WHEN d.complete_remission THEN coalesce(d.first_relapse_day, d.end_day) END AS cir_days,
    CASE WHEN d.complete_remission IS NULL OR NOT d.complete_remission OR d.end_day IS NULL THEN NULL
         WHEN d.first_relapse_day IS NOT NULL THEN 1
         WHEN d.death_day IS NOT NULL THEN 2
         ELSE 0 END AS cir_status,
    r.dfs_day AS dfs_days,
    r.dfs_event::INTEGER AS dfs_status,
    r.pfs_day AS pfs_days,
    r.pfs_event::INTEGER AS pfs_status
FROM derived AS d
LEFT JOIN reported AS r ON r.patient_id = d.patient_id
