"""What the copy-number sources share (gene-level calls, SEG segments, cBioPortal discrete CNA): the
reference exons calls are placed on, and the merge of calls into copy_number_call with their confirmations.

A call by a second method (MLPA, aCGH, SNP array) on a sample and gene that has an NGS call over
overlapping exons is recorded as the confirmation of that NGS call (confirms_copy_number_call_id), not as
a call of its own.
"""

from __future__ import annotations

from typing import Any

import duckdb

from etl.load.framework import LoadContext
from etl.load.snapshot import merge_snapshot
from etl.warehouse import fetch_value

CALL_COLUMNS = [
    "gene_id", "assembly", "chrom", "start", "end", "first_exon", "last_exon", "call_type", "copy_number",
    "ratio", "method", "from_segment",
]  # fmt: skip

# Exons of each gene's reference transcript (MANE Select, else canonical), per assembly.
REFERENCE_EXONS = """
    SELECT g.gene_id, g.symbol, x.assembly, x.chrom, x.exon_number, x.start, x."end"
    FROM gene AS g
    JOIN transcript AS t ON t.gene_id = g.gene_id AND (t.is_mane_select OR t.is_canonical)
    JOIN exon AS x ON x.transcript_id = t.transcript_id
    QUALIFY dense_rank() OVER (PARTITION BY g.gene_id ORDER BY t.is_mane_select DESC, t.accession) = 1
"""


def merge_calls(
    con: duckdb.DuckDBPyConnection, calls_sql: str, samples_sql: str, ctx: LoadContext, *, from_segment: bool
) -> dict[str, Any]:
    """Snapshot-merge the calls of these samples (CALL_COLUMNS + source_line) into copy_number_call, then
    link confirmations. Calls derived from segments and direct calls are separate snapshots of a sample."""
    counts = merge_snapshot(
        con, "copy_number_call", CALL_COLUMNS, calls_sql, samples_sql, ctx.run_id, ctx.source_file_id,
        scope="sample_id", scope_filter="t.from_segment" if from_segment else "NOT t.from_segment",
    )  # fmt: skip
    return {**counts.as_dict(), "confirmations": confirm_calls(con, samples_sql)}


def confirm_calls(con: duckdb.DuckDBPyConnection, samples_sql: str) -> int:
    """Link each current non-NGS call of these samples to the current NGS call it confirms."""
    return int(
        fetch_value(
            con,
            f"""
            UPDATE copy_number_call AS c SET confirms_copy_number_call_id = (
                SELECT min(n.copy_number_call_id) FROM copy_number_call AS n
                WHERE n.superseded_by_run_id IS NULL AND n.method = 'NGS' AND n.sample_id = c.sample_id
                  AND n.gene_id = c.gene_id AND n.first_exon <= c.last_exon AND c.first_exon <= n.last_exon
            )
            WHERE c.superseded_by_run_id IS NULL AND c.method <> 'NGS' AND c.sample_id IN ({samples_sql})
            """,
        )
    )
