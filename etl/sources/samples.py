"""Sample-manifest ETL (layout samples): sequencing sample ids -> patients and assays.

A sample id is an identity: once loaded it keeps its patient and attributes. A manifest that states
other values for a known sample id is quarantined (rule sample_unchanged), never applied silently.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from etl.load import linking
from etl.load.framework import Batch, LoadContext
from etl.load.readers import LINE
from etl.load.records import SampleManifestV1
from etl.load.tabular import TabularLoader
from etl.load.transform import empty_issues, issues_where
from etl.warehouse import fetch_value, query_frame

STAGE = "cgdw_sample_stage"
ATTRIBUTES = ("sample_type", "tissue", "collection_day", "pipeline_version")


class SampleManifestLoader(TabularLoader):
    kind = "samples"
    schema = SampleManifestV1

    def _stage(self, con: duckdb.DuckDBPyConnection, records: pl.DataFrame) -> str:
        """Register the records; return a SELECT with their patient_id and sequencing_assay_id."""
        keyed = linking.with_patient_key(records, self.secret, pl.col("trial_group"))
        linking.stage(con, STAGE, keyed)
        return f"""
            SELECT s.*, p.patient_id, a.sequencing_assay_id
            FROM {STAGE} AS s
            LEFT JOIN patient AS p USING (patient_key)
            LEFT JOIN sequencing_assay AS a
              ON a.name = s.assay_name AND a.version = s.assay_version AND a.assembly = s.assembly
        """

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        records = batch.records.filter(
            pl.col("trial_group").is_not_null() & pl.col("sample_key").is_not_null()
        )
        if records.is_empty():
            return empty_issues()
        staged = query_frame(
            con,
            f"""
            SELECT s.{LINE}, s.sample_key, s.source_patient_id, s.trial_group, s.assay_name, s.assay_version,
                   s.assembly, s.patient_id IS NULL AS unknown_patient,
                   s.sequencing_assay_id IS NULL AS unknown_assay,
                   k.sample_id IS NOT NULL AND (
                       k.patient_id IS DISTINCT FROM s.patient_id
                       OR k.sequencing_assay_id IS DISTINCT FROM s.sequencing_assay_id
                       OR {" OR ".join(f"k.{c} IS DISTINCT FROM s.{c}" for c in ATTRIBUTES)}
                   ) AS changed
            FROM ({self._stage(con, records)}) AS s LEFT JOIN sample AS k USING (sample_key)
            """,
        )
        con.unregister(STAGE)
        return pl.concat(
            [
                linking.missing_patient_issues(
                    staged, pl.col("unknown_patient"), self.source_column("source_patient_id")
                ),
                issues_where(
                    staged,
                    pl.col("unknown_assay"),
                    self.source_column("assay_name"),
                    pl.col("assay_name"),
                    "known_assay",
                    pl.format(
                        "no assay {} version {} on {} in the sequencing_assay reference table",
                        *(
                            pl.col(c).fill_null("(empty)")
                            for c in ("assay_name", "assay_version", "assembly")
                        ),
                    ),
                ),
                issues_where(
                    staged,
                    pl.col("changed"),
                    self.source_column("sample_key"),
                    pl.col("sample_key"),
                    "sample_unchanged",
                    pl.format(
                        "sample {} is already in the warehouse with another patient or other "
                        "attributes; a sample id cannot change meaning",
                        pl.col("sample_key"),
                    ),
                ),
            ]
        )

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        records = batch.records
        source = self._stage(con, records)
        columns = ["sample_key", "patient_id", "sequencing_assay_id", *ATTRIBUTES]
        inserted = fetch_value(
            con,
            f"""
            INSERT INTO sample ({", ".join(columns)}, etl_run_id, source_file_id, source_line)
            SELECT {", ".join(f"s.{c}" for c in columns)}, $run, $file, s.{LINE} FROM ({source}) AS s
            WHERE NOT EXISTS (SELECT 1 FROM sample AS k WHERE k.sample_key = s.sample_key)
            """,
            {"run": ctx.run_id, "file": ctx.source_file_id},
        )
        return {"sample": {"inserted": inserted, "unchanged": records.height - inserted}}
