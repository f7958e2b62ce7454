"""The load framework: what every source kind shares.

One load = one ETL run = one transaction: read (`readers`) -> layout transform (`layout`, `transform`)
-> pandera validation (`records`, `validation`) -> patient and sample linking (`linking`) -> quarantine and
bulk insert (`framework`) -> snapshot merge (`snapshot`). `tabular` is the common shape of the loaders whose
source is a table described by a layout. Nothing here knows a particular source kind (etl/sources/ does).
"""

# Here rather than in framework.py, so that the command line can show it without importing polars.
DEFAULT_MAX_REJECT_FRACTION = 0.05  # a file with more failing rows than this is rejected whole
# `cgdw load` and `cgdw pipeline run` exit with this when rows were quarantined (the load itself succeeded).
EXIT_QUARANTINED = 10
