"""The common shape of loaders whose source is a table described by a layout (trial exports, lab,
sample manifest, MRD, copy-number calls): read -> layout transform -> pandera schema, in one batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pandera.polars as pa
import polars as pl

from etl.errors import CgdwError
from etl.framework import Batch, SourceLoader
from etl.layouts import Layout
from etl.readers import read_source
from etl.transform import to_canonical
from etl.validation import schema_issues


class TabularLoader(SourceLoader):
    """A layout-driven loader: subclasses set `kind` and `schema`, and write their tables."""

    schema: ClassVar[type[pa.DataFrameModel]]

    def __init__(self, layout: Layout, secret: bytes) -> None:
        if layout.kind != self.kind:
            raise CgdwError(f"layout {layout.name!r} is a {layout.kind} layout, not a {self.kind} one")
        self.layout = layout
        self.layout_name = layout.name
        self.trial_group = layout.trial_group
        self.secret = secret

    def source_column(self, field: str) -> str:
        """The source column a canonical field comes from (for messages in the user's terms)."""
        return self.layout.source_column(field) or field

    def harmonise(self, fields: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
        """Canonical fields (and the row-aligned raw text) -> the records the schema validates."""
        return fields

    def batches(self, path: Path) -> Iterator[Batch]:
        raw = read_source(path, self.layout)
        fields, issues = to_canonical(raw, self.layout)
        records = self.harmonise(fields, raw)
        checked = schema_issues(records, raw, self.schema, self.source_column)
        yield Batch(raw=raw, records=records, issues=pl.concat([issues, checked]))
