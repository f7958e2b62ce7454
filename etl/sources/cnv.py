"""Copy-number ETL: gene-level calls (layout cnv) of NGS, MLPA, aCGH or SNP arrays into copy_number_call.

Calls carry an exon range, a genomic range, or both; a genomic range is turned into exons by
intersecting it with the exon coordinates of the gene's reference transcript on the call's assembly.
Second methods confirm NGS calls (etl/sources/copy_number.py).
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from etl.load.framework import Batch, LoadContext
from etl.load.linking import unknown_sample_issues
from etl.load.readers import LINE
from etl.load.records import CopyNumberCallV1
from etl.load.tabular import TabularLoader
from etl.load.transform import issues_where
from etl.sources.copy_number import REFERENCE_EXONS, merge_calls
from etl.warehouse import query_frame

STAGE = "cgdw_cnv_stage"


class CopyNumberCallLoader(TabularLoader):
    kind = "cnv"
    schema = CopyNumberCallV1

    def _stage(self, con: duckdb.DuckDBPyConnection, records: pl.DataFrame) -> str:
        con.register(STAGE, records.to_arrow())
        return f"""
            WITH staged AS (
                SELECT s.*, k.sample_id, g.gene_id,
                       coalesce(s.assembly, a.assembly) AS call_assembly
                FROM {STAGE} AS s
                LEFT JOIN sample AS k USING (sample_key)
                LEFT JOIN sequencing_assay AS a USING (sequencing_assay_id)
                LEFT JOIN gene AS g ON g.symbol = s.gene_symbol
            ), exons AS ({REFERENCE_EXONS})
            SELECT staged.*,
                   coalesce(staged.first_exon, (
                       SELECT min(e.exon_number) FROM exons AS e
                       WHERE e.gene_id = staged.gene_id AND e.assembly = staged.call_assembly
                         AND e.chrom = staged.chrom AND e.start <= staged."end" AND staged.start <= e."end"
                   )) AS exon_from,
                   coalesce(staged.last_exon, (
                       SELECT max(e.exon_number) FROM exons AS e
                       WHERE e.gene_id = staged.gene_id AND e.assembly = staged.call_assembly
                         AND e.chrom = staged.chrom AND e.start <= staged."end" AND staged.start <= e."end"
                   )) AS exon_to,
                   (SELECT max(e.exon_number) FROM exons AS e
                    WHERE e.gene_id = staged.gene_id AND e.assembly = staged.call_assembly) AS exon_count
            FROM staged
        """

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        records = batch.records.filter(
            pl.col("sample_key").is_not_null() & pl.col("gene_symbol").is_not_null()
        )
        staged = query_frame(con, f"SELECT * FROM ({self._stage(con, records)})")
        con.unregister(STAGE)
        known = pl.col("sample_id").is_not_null() & pl.col("gene_id").is_not_null()
        return pl.concat(
            [
                unknown_sample_issues(staged, self.source_column("sample_key")),
                issues_where(
                    staged,
                    pl.col("gene_id").is_null(),
                    self.source_column("gene_symbol"),
                    pl.col("gene_symbol"),
                    "known_gene",
                    pl.format("gene {} is not in the gene reference table", pl.col("gene_symbol")),
                ),
                issues_where(
                    staged,
                    known & (pl.col("exon_to") > pl.col("exon_count")),
                    self.source_column("last_exon"),
                    pl.col("last_exon").cast(pl.String),
                    "exon_in_gene",
                    pl.format(
                        "{} has {} exons on {}",
                        pl.col("gene_symbol"),
                        pl.col("exon_count"),
                        pl.col("call_assembly"),
                    ),
                ),
                issues_where(
                    staged,
                    known & pl.col("exon_from").is_null(),
                    self.source_column("start"),
                    pl.col("start").cast(pl.String),
                    "overlaps_exons",
                    pl.format(
                        "the range {}:{}-{} overlaps no exon of {}",
                        pl.col("chrom"),
                        pl.col("start"),
                        pl.col("end"),
                        pl.col("gene_symbol"),
                    ),
                ),
            ]
        )

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        records = batch.records
        source = self._stage(con, records)
        select = f"""
            SELECT sample_id, gene_id, call_assembly AS assembly, chrom, start, "end",
                   exon_from AS first_exon, exon_to AS last_exon, call_type, copy_number, ratio, method,
                   false AS from_segment, {LINE} AS source_line
            FROM ({source})
        """
        samples = f"SELECT sample_id FROM ({source})"
        return {"copy_number_call": merge_calls(con, select, samples, ctx, from_segment=False)}
