"""SEG ETL: copy-number segments (IGV SEG, or the Sample/Chromosome/Start/End/Num_Probes/Segment_Mean
variant), stored as segments and intersected with the reference exons to give per-gene, per-exon calls.

A segment at or below the loss threshold (log2 ratio) over a gene's exons makes a deletion of those exons
(a deep deletion at or below the deep threshold), at or above the gain threshold a gain. The calls are
marked `from_segment` and confirm an NGS call of the same sample and gene when there is one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from etl.errors import CgdwError, FileRejected, one_line
from etl.load.framework import Batch, LoadContext, SourceLoader
from etl.load.linking import known_samples, unknown_sample_issues
from etl.load.readers import LINE, reject_cr_only_line_ends, reject_duplicated_columns
from etl.load.snapshot import merge_snapshot
from etl.load.transform import finite, issues_where
from etl.load.validation import schema_issues
from etl.sources.copy_number import REFERENCE_EXONS, merge_calls
from etl.sources.variants import normalise_chrom
from schema.vocabulary import CN_METHODS

# Accepted header names of each SEG column (IGV's first).
SEG_COLUMNS = {
    "sample_key": ("ID", "Sample", "sample", "ID_REF"),
    "chrom": ("chrom", "Chromosome", "chromosome", "chr"),
    "start": ("loc.start", "Start", "start"),
    "end": ("loc.end", "End", "end"),
    "num_markers": ("num.mark", "Num_Probes", "num_probes", "num.markers"),
    "seg_mean": ("seg.mean", "Segment_Mean", "seg_mean", "log2"),
}
LOSS_LOG2 = -0.3
DEEP_LOSS_LOG2 = -1.3
GAIN_LOG2 = 0.3
STAGE = "cgdw_seg_stage"
SEGMENT_COLUMNS = ["assembly", "chrom", "start", "end", "num_markers", "seg_mean"]
SEGMENT_SELECT = ", ".join(f'"{c}"' for c in SEGMENT_COLUMNS)  # "end" is an SQL keyword


class SegmentV1(pa.DataFrameModel):
    chrom: str
    start: int = pa.Field(ge=1)
    end: int = pa.Field(ge=1)
    num_markers: int = pa.Field(nullable=True, ge=0)
    seg_mean: float

    @pa.check("end", name="range_order")
    def range_order(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("start") <= pl.col("end")).fill_null(True))

    class Config:
        strict = False


NUMERIC_COLUMNS = ("start", "end", "num_markers", "seg_mean")
# Optional columns may say they do not know: `NA` (cBioPortal's SEG files allow it for num.mark).
OPTIONAL_MISSING: dict[str, frozenset[str]] = {"num_markers": frozenset({"NA"})}


def number_issues(raw: pl.DataFrame, records: pl.DataFrame, found: dict[str, str | None]) -> pl.DataFrame:
    """'number' issues for numeric cells that hold text, NaN or infinity."""
    parts = []
    for canonical in NUMERIC_COLUMNS:
        name = found.get(canonical)
        if name is None:
            continue
        frame = raw.select(LINE, pl.col(name).alias("value"), records.get_column(canonical).alias("parsed"))
        value = pl.col("value")
        missing = value.is_in(list(OPTIONAL_MISSING.get(canonical, ())))
        failed = value.is_not_null() & ~missing & pl.col("parsed").is_null()
        parts.append(
            issues_where(frame, failed, name, value, "number", pl.format("'{}' is not a number", value))
        )
    return pl.concat(parts)


class SegLoader(SourceLoader):
    kind = "seg"

    def __init__(self, assembly: str | None = None, method: str = "aCGH") -> None:
        if method not in CN_METHODS:
            raise CgdwError(f"--method must be one of {', '.join(CN_METHODS)}, not {method!r}")
        self.layout_name = "seg"
        self.assembly_option = assembly
        self.method = method

    def batches(self, path: Path) -> Iterator[Batch]:
        reject_cr_only_line_ends(path)
        try:
            raw = pl.read_csv(path, separator="\t", infer_schema=False, quote_char=None, raise_if_empty=True)
        except (OSError, pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
            raise FileRejected(path, f"not a tab-separated SEG file: {one_line(exc)}") from exc
        reject_duplicated_columns(path, raw)
        found: dict[str, str | None] = {}
        for canonical, names in SEG_COLUMNS.items():
            name = next((n for n in names if n in raw.columns), None)
            if name is None and canonical != "num_markers":
                raise FileRejected(
                    path, f"no {canonical} column (one of {', '.join(names)}) in {raw.columns}"
                )
            found[canonical] = name
        self.sample_column = found["sample_key"] or "ID"
        raw = raw.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))
        records = raw.select(
            LINE,
            *(
                (pl.col(name) if name else pl.lit(None, pl.String)).alias(canonical)
                for canonical, name in found.items()
            ),
        ).with_columns(
            normalise_chrom(pl.col("chrom")).alias("chrom"),
            pl.col("start").cast(pl.Int64, strict=False),
            pl.col("end").cast(pl.Int64, strict=False),
            pl.col("num_markers").cast(pl.Float64, strict=False).cast(pl.Int64, strict=False),
            finite(pl.col("seg_mean").cast(pl.Float64, strict=False)),
        )
        # A value that is there but no (finite) number is 'number', not the schema's 'required'; the
        # framework keeps the first issue per line and column.
        issues = pl.concat(
            [
                number_issues(raw, records, found),
                schema_issues(records, raw, SegmentV1, lambda field: found.get(field) or field),
            ]
        )
        yield Batch(raw=raw, records=records, issues=issues)

    def reference_issues(self, con: duckdb.DuckDBPyConnection, batch: Batch) -> pl.DataFrame:
        keys = batch.records.get_column("sample_key").drop_nulls().unique().to_list()
        records = batch.records.join(known_samples(con, keys), on="sample_key", how="left")
        no_assembly = pl.col("sample_id").is_not_null() & pl.col("assay_assembly").is_null()
        issues = [unknown_sample_issues(records, self.sample_column)]
        if self.assembly_option is None:
            issues.append(
                issues_where(
                    records, no_assembly, self.sample_column, pl.col("sample_key"), "known_assembly",
                    pl.lit("the sample's assay names no assembly: pass --assembly"),
                )
            )  # fmt: skip
        return pl.concat(issues)

    def write(self, con: duckdb.DuckDBPyConnection, batch: Batch, ctx: LoadContext) -> dict[str, Any]:
        keys = batch.records.get_column("sample_key").unique().to_list()
        records = batch.records.join(known_samples(con, keys), on="sample_key").with_columns(
            pl.coalesce(pl.lit(self.assembly_option), pl.col("assay_assembly")).alias("assembly")
        )
        con.register(STAGE, records.rename({LINE: "source_line"}).to_arrow())
        samples = f"SELECT DISTINCT sample_id FROM {STAGE}"
        counts: dict[str, Any] = {
            "copy_number_segment": merge_snapshot(
                con, "copy_number_segment", SEGMENT_COLUMNS,
                f"SELECT sample_id, {SEGMENT_SELECT}, source_line FROM {STAGE}",
                samples, ctx.run_id, ctx.source_file_id, scope="sample_id",
            ).as_dict()
        }  # fmt: skip
        calls = f"""
            WITH exons AS ({REFERENCE_EXONS}),
            hits AS (
                SELECT s.sample_id, e.gene_id, s.assembly, s.seg_mean, s.source_line, e.exon_number,
                       CASE WHEN s.seg_mean <= {DEEP_LOSS_LOG2} THEN 'homozygous_deletion'
                            WHEN s.seg_mean <= {LOSS_LOG2} THEN 'deletion'
                            WHEN s.seg_mean >= {GAIN_LOG2} THEN 'gain' END AS call_type
                FROM {STAGE} AS s JOIN exons AS e ON e.assembly = s.assembly AND e.chrom = s.chrom
                 AND e.start <= s."end" AND s.start <= e."end"
            )
            SELECT sample_id, gene_id, any_value(assembly) AS assembly, NULL::VARCHAR AS chrom,
                   NULL::BIGINT AS start, NULL::BIGINT AS "end", min(exon_number) AS first_exon,
                   max(exon_number) AS last_exon, call_type, NULL::DOUBLE AS copy_number,
                   round(pow(2, avg(seg_mean)), 4) AS ratio, '{self.method}' AS method,
                   true AS from_segment,
                   min(source_line) AS source_line
            FROM hits WHERE call_type IS NOT NULL
            GROUP BY sample_id, gene_id, call_type
        """
        counts["copy_number_call"] = merge_calls(con, calls, samples, ctx, from_segment=True)
        con.unregister(STAGE)
        return counts
