"""cBioPortal studies, both ways: `importer` (a study directory into the warehouse, through the source
loaders), `exporter` (the warehouse as a study), `checker` (the format rules an export must pass) and
`format` (the file format they share)."""
