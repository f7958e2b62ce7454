"""cgdw from Python (a notebook, a script): what the `cgdw` readers do, as functions returning objects.

    from etl.api import Warehouse

    wh = Warehouse("warehouse.duckdb")                  # read-only, on the published copy
    cohort = wh.cohort(["age", "sex", "ikzf1_status"], where="age >= 18")   # a polars DataFrame
    wh.table1(by="ikzf1_status", spec="seed_tall")       # Table1: shown as a table in Jupyter
    os_ = wh.outcomes("os", by="ikzf1_status", adjust=["age", "log_wbc"])   # fitted OutcomeAnalysis
    os_.result.hazard_ratios; os_.plot("os.png")         # the figure, shown in Jupyter too

Everything reads the analysts' surface (consented patients only, etl/surface.py), through the same
functions as the command line, so a notebook and `cgdw table1` give the same numbers. Nothing here can
write the warehouse. docs/python.md is the guide.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from etl.analysis.cohort import cohort_columns, read_cohort, select_cohort
from etl.analysis.outcomes import analyse_outcomes, landmark_arguments
from etl.analysis.table1 import Table1, build_table1, table1_rows
from etl.errors import CgdwError
from etl.query import query_with_limit
from etl.warehouse import PublishedState, published_state, readable_path, require_warehouse

if TYPE_CHECKING:
    import pandas as pd

    from etl.analysis.outcomes import OutcomeAnalysis


class Warehouse:
    """A cgdw warehouse opened for reading. Each call opens the published copy read-only and closes it
    before returning, so a notebook left open never holds a load back (docs/concurrency.md)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        require_warehouse(self.path)

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r})"

    def _repr_html_(self) -> str:
        state = self.status()
        run = f"run {state.published_run}" if state.published else "not published yet"
        return f"<b>cgdw warehouse</b> {escape(self.path.name)} ({escape(run)})"

    def status(self) -> PublishedState:
        """Which run the published copy (what this API reads) holds, and when it was published. The
        warehouse file itself is never opened: that would keep a load waiting."""
        return published_state(self.path, warehouse=False)

    @property
    def reads(self) -> Path:
        """The file the calls read: the published copy, or the warehouse before its first publication."""
        return readable_path(self.path)

    def columns(self, view: str = "cohort_patient") -> list[str]:
        """The columns of a cohort view of the analysts' surface."""
        found = cohort_columns(self.path, view)
        if not found:
            raise CgdwError(
                f"{view} is not on the analysts' surface: run `cgdw views apply --db {self.path}`"
            )
        return found

    def cohort(
        self,
        columns: Sequence[str] | None = None,
        *,
        view: str = "cohort_patient",
        where: str | None = None,
        mrd_thresholds: Sequence[str] = (),
    ) -> pl.DataFrame:
        """One row per consented patient: the given columns (all by default) of a cohort view or a named
        cohort definition (queries/cohorts/), the patients `where` selects (a predicate over its columns,
        as `cgdw export --where`). `mrd_thresholds` ("MFC=0.05%", ...) decides the MRD status columns at
        other thresholds (docs/mrd.md)."""
        selection = select_cohort(view, where, list(mrd_thresholds))
        chosen = list(columns) if columns is not None else self.columns(selection.view)
        return read_cohort(
            self.path, selection.view, chosen, where=selection.where, mrd_thresholds=selection.mrd_thresholds
        )

    def cohort_pandas(self, columns: Sequence[str] | None = None, **options: object) -> pd.DataFrame:
        """`cohort` as a pandas DataFrame (nullable dtypes: a missing value stays missing, never 0)."""
        return self.cohort(columns, **options).to_pandas(use_pyarrow_extension_array=True)  # type: ignore[arg-type]

    def query(self, sql: str, limit: int = 0) -> pl.DataFrame:
        """One SELECT over the analysts' surface, as `cgdw query` runs it (limit 0: every row)."""
        frame, _ = query_with_limit(self.path, sql, limit)
        return frame

    def table1(
        self,
        by: str = "ikzf1_status",
        *,
        spec: str | Path | None = None,
        cohort: str = "cohort_patient",
        where: str | None = None,
        horizon: float = 5.0,
        min_cell: int | None = None,
        attrition: bool = False,
        mrd_thresholds: Sequence[str] = (),
    ) -> Table1:
        """Table 1, as `cgdw table1` builds it (rows from `spec`, else every column of the cohort)."""
        return build_table1(
            self.path,
            by=by,
            cohort=cohort,
            rows=table1_rows(self.path, cohort, spec, by=by),
            horizon=horizon,
            min_cell=min_cell,
            where=where,
            with_attrition=attrition,
            mrd_thresholds=list(mrd_thresholds) or None,
        )

    def outcomes(
        self,
        endpoint: str = "os",
        by: str = "ikzf1_status",
        *,
        adjust: Sequence[str] = (),
        reference: str | None = None,
        cohort: str = "cohort_patient",
        where: str | None = None,
        horizon: float = 5.0,
        landmark: str | float | None = None,
        time_dependent: str | None = None,
        mrd_thresholds: Sequence[str] = (),
    ) -> OutcomeAnalysis:
        """The fitted outcome analysis `cgdw outcomes` prints: `.result` (estimates, test, hazard ratios,
        `.to_json()`), `.data` (the patients used), `.plot()`. `landmark` is a day (82) or a column of
        days (mrd_c2_mfc_day)."""
        return analyse_outcomes(
            self.path,
            endpoint,
            by,
            cohort=cohort,
            horizon=horizon,
            adjust=tuple(adjust),
            reference=reference,
            where=where,
            time_dependent=time_dependent,
            mrd_thresholds=list(mrd_thresholds) or None,
            **landmark_arguments(None if landmark is None else str(landmark)),
        )
