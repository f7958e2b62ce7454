"""Association and outcome analyses over the cohort views: Table 1, survival, competing risks, figures."""
