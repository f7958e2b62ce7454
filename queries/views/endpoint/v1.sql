-- name: endpoint
-- version: 1
-- depends: patient, treatment_response, outcome_event
-- Survival endpoints per patient, times in days from diagnosis (the warehouse stores no dates).
-- OS: death from any cause; alive patients are censored at their last follow-up.
-- EFS: first of induction failure, relapse or death from any cause. Induction failure (no complete
-- remission after induction) is an event at day 0, as the GRAALL/FRALLE protocols count it.
-- CIR: the first relapse is the event (a second relapse never moves it); death without relapse after
-- CR is the competing event; patients alive in CR are censored at last follow-up. Named choice for
-- patients never in CR: **excluded** from CIR (cir_status NULL, cir_eligible false), as in the seed
-- letter, whose CIR is among patients in CR; the time origin stays the diagnosis, like OS.
-- A death recorded before the last follow-up day wins (follow-up after death is a data error the
-- loader refuses).
-- columns:
--   patient_id: warehouse patient key (patient.patient_id)
--   complete_remission: CR after induction
--   cr_day: days from diagnosis to CR
--   first_relapse_day: day of the first relapse (NULL if none)
--   death_day: day of death (NULL if alive at last news)
--   last_follow_up_day: day of the last news
--   os_days: days to death or last follow-up
--   os_status: 1 death, 0 censored
--   efs_days: days to the first EFS event or last follow-up (0 for induction failure)
--   efs_status: 1 event, 0 censored
--   efs_event: induction_failure | relapse | death | NULL (censored)
--   cir_eligible: patient counted in CIR (reached CR)
--   cir_days: days to first relapse, death in CR or last follow-up (NULL if not eligible)
--   cir_status: 0 censored, 1 relapse, 2 death without relapse (competing); NULL if not eligible
WITH events AS (
    SELECT patient_id,
        min(day) FILTER (event_type = 'relapse') AS first_relapse_day,
        min(day) FILTER (event_type = 'death') AS death_day,
        max(day) FILTER (event_type = 'last_follow_up') AS last_follow_up_day
    FROM outcome_event
    WHERE superseded_by_run_id IS NULL
    GROUP BY patient_id
),
base AS (
    SELECT p.patient_id, t.complete_remission, t.cr_day, e.first_relapse_day, e.death_day,
        e.last_follow_up_day,
        coalesce(e.death_day, e.last_follow_up_day) AS end_day
    FROM patient AS p
    JOIN treatment_response AS t ON t.patient_id = p.patient_id AND t.superseded_by_run_id IS NULL
    LEFT JOIN events AS e ON e.patient_id = p.patient_id
)
SELECT
    patient_id,
    complete_remission,
    cr_day,
    first_relapse_day,
    death_day,
    last_follow_up_day,
    end_day AS os_days,
    CASE WHEN end_day IS NULL THEN NULL WHEN death_day IS NOT NULL THEN 1 ELSE 0 END AS os_status,
    CASE WHEN NOT complete_remission THEN 0
         ELSE coalesce(least(first_relapse_day, death_day), end_day) END AS efs_days,
    CASE WHEN NOT complete_remission THEN 1
         WHEN end_day IS NULL THEN NULL
         WHEN first_relapse_day IS NOT NULL OR death_day IS NOT NULL THEN 1 ELSE 0 END AS efs_status,
    CASE WHEN NOT complete_remission THEN 'induction_failure'
         WHEN first_relapse_day IS NOT NULL AND first_relapse_day <= coalesce(death_day, first_relapse_day)
             THEN 'relapse'
         WHEN death_day IS NOT NULL THEN 'death' END AS efs_event,
    complete_remission AS cir_eligible,
    CASE WHEN complete_remission THEN coalesce(first_relapse_day, end_day) END AS cir_days,
    CASE WHEN NOT complete_remission OR end_day IS NULL THEN NULL
         WHEN first_relapse_day IS NOT NULL THEN 1
         WHEN death_day IS NOT NULL THEN 2
         ELSE 0 END AS cir_status
FROM base
