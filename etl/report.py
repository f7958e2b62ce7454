"""`cgdw report`: one self-contained HTML file of the warehouse's analyses, data quality and provenance.

Sections: Table 1; overall survival, event-free survival and cumulative incidence of relapse (curves with
numbers at risk, estimates at the horizon, hazard ratios for the seed letter's covariates); a forest plot
of those hazard ratios; the oncoplot; MRD levels by time point and method; data quality (rows quarantined
per file and rule, rows per kind of source); provenance (view versions, ETL runs and source files: a
summary per kind, the newest in full inside a collapsed <details>, so the file stays small however many
files the warehouse loaded). Columns and groups are named by the attribute dictionary and `--labels`
(etl/analysis/labels.py). The warehouse is named by its file name, never its directory, and so is every
file of a command line; who ran a run is not shown (docs/privacy.md: what leaves the building).

Self-contained means the file opens offline and can be mailed as it is: HTML from the standard library
(`html.escape`, no template engine), inline CSS, figures as inline SVG drawn by the existing plot functions
(text stays text, so a browser can search it), no script, no external link or font. Every value in it is
escaped. For the same warehouse the file is identical apart from the generation time.

A section without data (no MRD, nothing quarantined, views not applied) says so instead of failing; an
unknown `--by` column is an error, as in `cgdw table1`.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from etl import __version__
from etl.analysis.labels import Labels, warehouse_labels
from etl.errors import CgdwError
from etl.output import labelled_outcomes, labelled_table1, output_file
from etl.warehouse import fetch_value, open_for_read, query_frame, relation_columns, require_warehouse

if TYPE_CHECKING:
    from etl.analysis.forest_plot import ForestRow
    from etl.analysis.outcomes import HazardRatio, OutcomeResult
    from etl.analysis.style import FigureStyle

# The covariates of the seed letter's multivariable models (as in the README's `cgdw outcomes` example).
SEED_COVARIATES = ("age", "log_wbc", "prednisone_good", "classifier_high")
COHORT = "cohort_patient"
# Runs and files listed one by one in the provenance (the newest); the rest are counted per kind.
LISTED_RUNS = 100

_CSS = """
:root { --ink: #1f2328; --muted: #59636e; --rule: #d0d7de; --band: #f6f8fa; --accent: #0072B2; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 14px/1.45 -apple-system, "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px 64px; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--rule); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p, li { max-width: 80ch; }
.meta { color: var(--muted); margin: 2px 0; }
.meta code, td code { font-size: 12px; }
nav ol { columns: 2; margin: 8px 0 0; padding-left: 20px; }
nav a { color: var(--accent); text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 6px; font-size: 13px; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { background: var(--band); text-align: left; font-weight: 600; border-bottom: 2px solid var(--rule); }
td.num, th.num { text-align: right; }
td.cell { text-align: center; white-space: nowrap; }
tbody tr:nth-child(even) > * { background: #fbfcfd; }
tbody th { background: none; font-weight: 500; border-bottom: 1px solid var(--rule); white-space: nowrap; }
td.hash { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 11.5px; }
figure { margin: 12px 0 16px; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; max-width: 90ch; }
details { margin: 8px 0; } summary { cursor: pointer; color: var(--accent); }
.notes { color: var(--muted); font-size: 12.5px; padding-left: 18px; }
.empty { color: var(--muted); font-style: italic; background: var(--band); padding: 8px 12px;
  border-left: 3px solid var(--rule); }
.scroll { overflow-x: auto; }
footer { margin-top: 48px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule);
  padding-top: 8px; }
@media print { main { max-width: none; padding: 0; } h2 { break-before: page; }
  figure { break-inside: avoid; } }
"""


def _e(value: object) -> str:
    """Escaped text of a cell: None is empty (NULL shown as nothing, as the terminal tables do)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _empty(message: str) -> str:
    return f'<p class="empty">{_e(message)}</p>'


def _notes(notes: Iterable[str]) -> str:
    items = "".join(f"<li>{_e(note)}</li>" for note in notes)
    return f'<ul class="notes">{items}</ul>' if items else ""


def frame_html(frame: pl.DataFrame, caption: str | None = None, table_id: str | None = None) -> str:
    """A polars frame as an HTML table: numeric columns right-aligned, every value escaped."""
    numeric = [frame.schema[c].is_numeric() for c in frame.columns]
    head = "".join(
        f'<th scope="col"{" class=num" if is_num else ""}>{_e(c)}</th>'
        for c, is_num in zip(frame.columns, numeric, strict=True)
    )
    body = []
    for row in frame.iter_rows():
        cells = []
        for column, value, is_num in zip(frame.columns, row, numeric, strict=True):
            css = "num" if is_num else ("hash" if column in ("sha256", "sql_sha256") else "")
            cells.append(f"<td{f' class={css}' if css else ''}>{_e(value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    ident = f' id="{_e(table_id)}"' if table_id else ""
    title = f"<caption>{_e(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table{ident}>{title}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


# --- figures -----------------------------------------------------------------------------------------------

_XML_PROLOGUE = re.compile(r"^.*?(?=<svg\b)", re.S)
_SVG_ID = re.compile(r'\bid="([^"]+)"')
# Matplotlib's RDF block (creator, date, licence URIs): no use on a page, and it names outside URLs.
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def inline_svg(svg_text: str, prefix: str) -> str:
    """An SVG file's text as an element for an HTML page: without the XML prologue, DOCTYPE and metadata, with
    every id (and every reference to it) prefixed, because ids are global to the page while matplotlib
    only makes them unique within one figure (clip paths, markers)."""
    element = _SVG_METADATA.sub("", _XML_PROLOGUE.sub("", svg_text, count=1), count=1).strip()
    ids = set(_SVG_ID.findall(element))
    if ids:
        # One pass over every id and reference: id="X", url(#X) and xlink:href="#X".
        names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
        pattern = re.compile(r'(\bid="|#)(' + names + r')(?=["\)])')
        element = pattern.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", element)
    return element


def _figure(draw: Callable[[Path], Path], prefix: str, caption: str, workdir: Path) -> str:
    """Draw one figure to an SVG file in `workdir` with an existing plot function, and inline it."""
    path = draw(workdir / f"{prefix}.svg")
    svg = inline_svg(path.read_text(encoding="utf-8"), prefix)
    return f'<figure id="figure-{prefix}">{svg}<figcaption>{_e(caption)}</figcaption></figure>'


# --- sections -----------------------------------------------------------------------------------------------


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{_e(title)}</h2>{body}</section>'


def _guarded(render: Callable[[], str], what: str) -> str:
    """A section's body, or why it could not be drawn (a warehouse without views or without data): the
    rest of the report is still worth having."""
    try:
        return render()
    except CgdwError as exc:
        return _empty(f"{what} not available: {exc}")


PATIENT_LEVEL_LEFT_OUT = (
    "Left out with --min-cell: this figure shows patients one by one, which small-cell suppression cannot "
    "make safe."
)


def _table1_section(
    db_path: Path,
    by: str,
    horizon: float,
    min_cell: int | None,
    where: str | None,
    cohort: str = COHORT,
    labels: Labels | None = None,
) -> str:
    from etl.analysis.cohort import format_p
    from etl.analysis.table1 import SHORT_TEST_NAMES, build_table1, format_cell

    filtered = where is not None or cohort != COHORT
    table = build_table1(
        db_path,
        by=by,
        cohort=cohort,
        horizon=horizon,
        min_cell=min_cell,
        where=where,
        with_attrition=filtered,
    )
    table = labelled_table1(table, labels or Labels())
    sizes = {group: cell.n for group, cell in table.rows[0].groups.items()} if table.rows else {}
    head = ['<th scope="col">Characteristic</th>']
    head += [f'<th scope="col" class="cell">{_e(g)} (n={_e(sizes.get(g))})</th>' for g in table.groups]
    head += [
        f'<th scope="col" class="cell">Total (n={table.patients})</th>',
        '<th scope="col" class="num">P</th>',
    ]
    head.append('<th scope="col">Test</th>')
    rows = []
    for row in table.rows:
        cells = [f'<th scope="row">{_e(row.label)}</th>']
        for group, cell in [*row.groups.items(), ("Total", row.total)]:
            text = str(cell.n) if row.id == "total" else format_cell(row.kind, cell)
            cells.append(f'<td class="cell" data-row="{_e(row.id)}" data-group="{_e(group)}">{_e(text)}</td>')
        cells.append(
            f'<td class="num" data-row="{_e(row.id)}" data-group="P">{_e(format_p(row.p_value))}</td>'
        )
        cells.append(f"<td>{_e(SHORT_TEST_NAMES.get(row.test or '', row.test))}</td>")
        rows.append(f'<tr data-row="{_e(row.id)}">{"".join(cells)}</tr>')
    flow = ""
    if table.attrition is not None:
        flow = frame_html(table.attrition, "Patients, rule by rule (attrition)", table_id="attrition")
    notes = [*table.notes]
    if table.excluded_no_group:
        notes.append(f"{table.excluded_no_group} patients without {table.by} are not in the table.")
    caption = f"Patient characteristics by {table.by} ({cohort}, {table.patients:,} patients)"
    return flow + (
        f'<div class="scroll"><table id="table1"><caption>{_e(caption)}</caption>'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{_notes(notes)}"
    )


def _outcome_section(
    db_path: Path,
    endpoint: str,
    by: str,
    horizon: float,
    workdir: Path,
    min_cell: int | None,
    where: str | None,
    cohort: str = COHORT,
    labels: Labels | None = None,
    style: FigureStyle | None = None,
    fits: dict[str, OutcomeResult] | None = None,
) -> str:
    """One endpoint's curves, estimates and hazard ratios; its (labelled) result goes into `fits`, for the
    forest plot."""
    from etl.analysis.outcomes import analyse_outcomes, suppress_small_counts
    from etl.analysis.survival_plot import plot_outcomes
    from etl.output import outcomes_parts

    labels = labels or Labels()
    fitted = analyse_outcomes(
        db_path, endpoint, by, cohort=cohort, horizon=horizon, adjust=SEED_COVARIATES, where=where
    )
    result = fitted.result if min_cell is None else suppress_small_counts(fitted.result, min_cell)
    result = labelled_outcomes(result, labels)
    if fits is not None:
        fits[endpoint] = result
    header, test, ratio_title, notes = outcomes_parts(result)
    curve = "Kaplan-Meier" if endpoint != "cir" else "Aalen-Johansen cumulative incidence"
    ticks = ", censoring ticks (+)" if style is None or style.censor_marks else ""
    figure = _figure(
        lambda out: plot_outcomes(fitted, out, min_cell=min_cell, labels=labels, style=style),
        endpoint,
        f"{curve} curves by {labels.name(by)} with 95% CI bands{ticks} and numbers at risk per year.",
        workdir,
    )
    ratios = result.hazard_ratio_frame()
    covariates = ", ".join(labels.name(c) for c in SEED_COVARIATES)
    ratio_table = (
        frame_html(ratios, f"{ratio_title}, univariable and adjusted for {covariates}")
        if ratios.height
        else _empty("No hazard ratio could be estimated (a covariate is constant or missing).")
    )
    return (
        figure
        + frame_html(result.estimates_frame(), header, table_id=f"{endpoint}-estimates")
        + f"<p>{_e(test)}</p>"
        + ratio_table
        + _notes(notes)
    )


def _forest_section(fits: dict[str, OutcomeResult], workdir: Path, style: FigureStyle | None) -> str:
    """Every hazard ratio of the outcome sections in one figure (those that could be fitted)."""
    from etl.analysis.forest_plot import plot_forest

    rows: list[ForestRow] = []
    for endpoint, result in fits.items():
        kind = "subdistribution HR, Fine-Gray" if endpoint == "cir" else "HR, Cox"
        for model in ("univariable", "multivariable"):
            rows += [
                _forest_row(f"{result.description.capitalize()}: {model} ({kind})", h)
                for h in result.hazard_ratios
                if h.model == model
            ]
    if not rows:
        return _empty("No hazard ratio could be estimated.")
    return _figure(
        lambda out: plot_forest(rows, out, title="Hazard ratios (95% CI)", style=style),
        "forest",
        "Hazard ratios of the outcome sections above, with their 95% CI on a log scale; the line marks 1 "
        "(no difference). Univariable: the grouping alone; multivariable: adjusted for the covariates "
        "listed.",
        workdir,
    )


def _forest_row(group: str, h: HazardRatio) -> ForestRow:
    from etl.analysis.forest_plot import ForestRow

    return ForestRow(group, h.covariate, h.hr, h.lower, h.upper, h.p_value)


def _oncoplot_section(
    db_path: Path,
    by: str,
    workdir: Path,
    where: str | None,
    cohort: str = COHORT,
    labels: Labels | None = None,
) -> str:
    from etl.analysis.oncoplot import FIGURE_1C_GENES, write_oncoplot

    caption = (
        f"Alterations at diagnosis of {', '.join(FIGURE_1C_GENES)} (patient_gene_alteration), patients "
        f"split by {by}; not sequenced is not wild type. Right: % altered among the sequenced, per group."
    )
    return _figure(
        lambda out: write_oncoplot(db_path, out, by=by, cohort=cohort, where=where, labels=labels),
        "oncoplot",
        caption,
        workdir,
    )


def _mrd_section(
    db_path: Path, workdir: Path, min_cell: int | None, where: str | None, cohort: str = COHORT
) -> str:
    from etl.analysis.cohort import read_cohort, select_cohort
    from etl.analysis.mrd_plot import mrd_summary, plot_mrd_distribution, read_mrd, suppress_mrd_summary

    selection = select_cohort(cohort, where)
    chosen = (
        read_cohort(db_path, selection.view, ["patient_id"], where=selection.where)["patient_id"]
        if selection.where
        else None
    )
    measurements = read_mrd(db_path, chosen)
    if measurements.is_empty():
        return _empty("No MRD measurement in the warehouse (`cgdw load mrd`).")
    if min_cell is not None:
        summary = suppress_mrd_summary(mrd_summary(measurements), min_cell).rename(
            {"time_point": "time point"}
        )
        return _empty(PATIENT_LEVEL_LEFT_OUT) + frame_html(
            summary, "MRD measurements per time point and method", table_id="mrd-summary"
        )
    caption = (
        "Quantified MRD levels (mrd_result view, current measurements) per time point and method, coloured "
        "by positivity at the method's threshold (dashed line); boxes: median and quartiles. Measurements "
        "without a level (negative, positive not quantifiable, not done) are counted under each column."
    )
    figure = _figure(lambda out: plot_mrd_distribution(measurements, out), "mrd", caption, workdir)
    summary = mrd_summary(measurements).rename({"time_point": "time point"})
    return figure + frame_html(summary, "MRD measurements per time point and method", table_id="mrd-summary")


def _quality_section(db_path: Path) -> str:
    with open_for_read(db_path) as con:
        rejected = query_frame(
            con,
            """
            SELECT f.file_name AS file, f.kind, q.etl_run_id AS run, q.rule,
                   count(DISTINCT q.line) AS "rows quarantined", count(*) AS problems,
                   string_agg(DISTINCT q.column_name, ', ' ORDER BY q.column_name) AS columns
            FROM rejected_record AS q JOIN source_file AS f USING (source_file_id)
            GROUP BY ALL ORDER BY run, file, rule
            """,
        )
        runs = query_frame(
            con,
            """
            SELECT r.etl_run_id AS run,
                   coalesce(f.file_name, regexp_replace(r.command, '([^ ]*/)+', '', 'g'))
                       AS "file or command",
                   f.kind,
                   r.status, r.rows_read AS "rows read", r.rows_loaded AS "rows loaded",
                   r.rows_rejected AS "rows rejected"
            FROM etl_run AS r LEFT JOIN source_file AS f USING (etl_run_id)
            ORDER BY r.etl_run_id
            """,
        )
    parts = ["<h3>Rows quarantined, per file and rule</h3>"]
    if rejected.is_empty():
        parts.append(_empty("No row was quarantined: every row read passed validation."))
    else:
        parts.append(frame_html(rejected, table_id="rejects"))
        parts.append(
            _notes(
                ["One row can fail several rules; `cgdw rejects RUN` lists line, column, value and message."]
            )
        )
    parts.append("<h3>Rows per kind of source</h3>")
    if runs.is_empty():
        parts.append(_empty("No ETL run recorded."))
        return "".join(parts)
    per_kind = (
        runs.filter(pl.col("kind").is_not_null())
        .group_by("kind")
        .agg(
            pl.len().alias("files"),
            pl.col("rows read").sum(),
            pl.col("rows loaded").sum(),
            pl.col("rows rejected").sum(),
        )
        .sort("kind")
    )
    parts.append(frame_html(per_kind, table_id="kind-rows"))
    parts.append(_folded(runs, "run-rows", "ETL run", "`cgdw runs --limit 0`"))
    return "".join(parts)


def _folded(frame: pl.DataFrame, table_id: str, what: str, everything: str) -> str:
    """The newest LISTED_RUNS rows of `frame` (sorted oldest first) in a collapsed <details>, with how
    many are not listed and where they all are."""
    shown = frame.tail(LISTED_RUNS)
    left = frame.height - shown.height
    summary = f"{frame.height:,} {what}s: show {'the newest ' + str(shown.height) if left else 'them'}"
    note = [f"{left:,} older {what}s are not listed here: {everything} lists every one."] if left else []
    listed = frame_html(shown, table_id=table_id) + _notes(note)
    return f"<details><summary>{_e(summary)}</summary>{listed}</details>"


def _provenance_section(db_path: Path) -> str:
    with open_for_read(db_path) as con:
        views = query_frame(
            con,
            """
            SELECT name AS view, version, sql_sha256, etl_run_id AS run,
                   strftime(applied_at, '%Y-%m-%d %H:%M:%S') AS "released (UTC)",
                   strftime(retired_at, '%Y-%m-%d %H:%M:%S') AS "retired (UTC)"
            FROM view_version ORDER BY name, version
            """,
        )
        runs = query_frame(
            con,
            """
            SELECT etl_run_id AS run, regexp_replace(command, '([^ ]*/)+', '', 'g') AS command,
                   code_version AS "code version",
                   strftime(started_at, '%Y-%m-%d %H:%M:%S') AS "started (UTC)",
                   strftime(finished_at, '%Y-%m-%d %H:%M:%S') AS "finished (UTC)", status
            FROM etl_run ORDER BY etl_run_id
            """,
        )
        files = query_frame(
            con,
            """
            SELECT source_file_id AS file, etl_run_id AS run, file_name AS name, kind, layout,
                   trial_group AS "trial group", size_bytes AS "size (bytes)", sha256
            FROM source_file ORDER BY source_file_id
            """,
        )
    per_kind = (
        files.group_by("kind")
        .agg(
            pl.len().alias("files"),
            pl.col("size (bytes)").sum().alias("bytes"),
            pl.col("run").min().alias("first run"),
            pl.col("run").max().alias("last run"),
        )
        .sort("kind")
    )
    return "".join(
        [
            "<h3>View versions</h3>",
            frame_html(views, table_id="view-versions") if views.height else _empty("No view released yet."),
            _notes(["sql_sha256: SHA-256 of the view's SELECT when it was released (docs/analysis.md)."]),
            "<h3>Source files per kind</h3>",
            frame_html(per_kind, table_id="files-per-kind") if files.height
            else _empty("No source file loaded."),
            "<h3>ETL runs</h3>",
            _folded(runs, "etl-runs", "ETL run", "`cgdw runs --limit 0`") if runs.height
            else _empty("No ETL run recorded."),
            "<h3>Source files</h3>",
            _folded(files, "source-files", "source file", "the manifest of any `cgdw export`") if files.height
            else _empty("No source file loaded."),
        ]
    )  # fmt: skip


def _check_by(db_path: Path, by: str, where: str | None, cohort: str = COHORT) -> int | None:
    """The number of patients of the cohort (a view or a named definition, and --where), after checking
    that `by` is one of its columns; None when the view does not exist yet (the analysis sections then say
    to apply the views)."""
    from etl.analysis.cohort import read_cohort, select_cohort

    selection = select_cohort(cohort, where)
    with open_for_read(db_path) as con:
        columns = relation_columns(con, selection.view)
    if not columns:
        return None
    if by not in columns:
        raise CgdwError(
            f"{selection.view} has no column {by!r} to group by; its columns: {', '.join(columns)}"
        )
    return read_cohort(db_path, selection.view, ["patient_id"], where=selection.where).height


def build_report(
    db_path: Path,
    by: str = "ikzf1_status",
    horizon: float = 5.0,
    generated_at: dt.datetime | None = None,
    min_cell: int | None = None,
    where: str | None = None,
    cohort: str = COHORT,
    labels: str | None = None,
    style: FigureStyle | None = None,
    progress: Callable[[str], None] | None = None,
    sections_done: Callable[[int, int], None] | None = None,
) -> str:
    """The report as HTML text (see the module docstring); `generated_at` defaults to now (UTC). With
    `min_cell`, small cells are suppressed in every table (as `table1 --min-cell` and `outcomes --min-cell`
    do), numbers at risk below it print as "<min_cell", and the patient-level figures (oncoplot, MRD
    levels) are left out. `labels` (KEY=LABEL,...) names columns and groups on top of the attribute
    dictionary; `style` sets the figures' censor ticks and font size; `progress` and `sections_done`
    follow the work."""
    require_warehouse(db_path)
    if horizon <= 0:
        raise CgdwError(f"the horizon must be a positive number of years, got {horizon}")
    say = progress or (lambda _phase: None)
    done = sections_done or (lambda _done, _total: None)
    say("reading the cohort")
    patients = _check_by(db_path, by, where, cohort)
    named = warehouse_labels(db_path, labels)
    when = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    fits: dict[str, OutcomeResult] = {}
    with tempfile.TemporaryDirectory(prefix="cgdw-report-") as tmp:
        workdir = Path(tmp)

        def outcome(endpoint: str) -> Callable[[], str]:
            return lambda: _outcome_section(
                db_path, endpoint, by, horizon, workdir, min_cell, where, cohort, named, style, fits
            )

        # (anchor, heading, body, what it is when it cannot be drawn); bodies are lazy so one failing
        # analysis leaves the others in the report.
        analyses: list[tuple[str, str, Callable[[], str], str]] = [
            ("table1", f"Table 1: patient characteristics by {named.name(by)}",
             lambda: _table1_section(db_path, by, horizon, min_cell, where, cohort, named), "Table 1"),
            ("os", "Overall survival", outcome("os"), "OS"),
            ("efs", "Event-free survival", outcome("efs"), "EFS"),
            ("cir", "Cumulative incidence of relapse", outcome("cir"), "CIR"),
            ("forest", "Hazard ratios (forest plot)", lambda: _forest_section(fits, workdir, style),
             "The forest plot"),
            ("oncoplot", "Alterations at diagnosis (oncoplot)",
             lambda: _empty(PATIENT_LEVEL_LEFT_OUT) if min_cell
             else _oncoplot_section(db_path, by, workdir, where, cohort, named), "Oncoplot"),
            ("mrd", "MRD by time point and method",
             lambda: _mrd_section(db_path, workdir, min_cell, where, cohort), "MRD"),
        ]  # fmt: skip
        total = len(analyses) + 2
        sections = []
        for index, (ident, title, render, what) in enumerate(analyses):
            done(index, total)
            say(title)
            sections.append((ident, title, _guarded(render, what)))
    done(len(analyses), total)
    say("data quality and provenance")
    sections.append(("quality", "Data quality", _quality_section(db_path)))
    sections.append(("provenance", "Provenance", _provenance_section(db_path)))
    done(total, total)
    with open_for_read(db_path) as con:
        run = fetch_value(con, "SELECT max(etl_run_id) FROM etl_run WHERE finished_at IS NOT NULL")
    return _page(db_path, named.name(by), horizon, when, patients, sections, where, cohort, run)


def _page(
    db_path: Path,
    by: str,
    horizon: float,
    when: str,
    patients: int | None,
    sections: Sequence[tuple[str, str, str]],
    where: str | None = None,
    cohort_ref: str = COHORT,
    run: int | None = None,
) -> str:
    selected = f" where {where}" if where else ""
    cohort = (
        f"{patients:,} patients in {cohort_ref}{selected}"
        if patients is not None
        else "cohort views not applied"
    )
    toc = "".join(f'<li><a href="#{ident}">{_e(title)}</a></li>' for ident, title, _ in sections)
    body = "".join(_section(ident, title, content) for ident, title, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="cgdw {_e(__version__)}">
<title>cgdw report: {_e(db_path.name)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>Clinical-genomics warehouse report</h1>
<p class="meta">Warehouse <code>{_e(db_path.name)}</code> &middot; {_e(cohort)} &middot; grouped by
{_e(by)} &middot; estimates at {horizon:g} years</p>
<p class="meta">Generated {_e(when)} by cgdw {_e(__version__)} from the warehouse as published after ETL
run {_e(run)}.
A warehouse built by <code>cgdw demo</code> or <code>cgdw synth</code> holds SYNTHETIC patients.</p>
<nav><ol>{toc}</ol></nav>
</header>
{body}
<footer>Self-contained file: no script, no network access; figures are inline SVG. Methods:
docs/analysis.md of cgdw.</footer>
</main>
</body>
</html>
"""


def write_report(
    db_path: Path,
    out: Path,
    by: str = "ikzf1_status",
    horizon: float = 5.0,
    min_cell: int | None = None,
    where: str | None = None,
    cohort: str = COHORT,
    labels: str | None = None,
    style: FigureStyle | None = None,
    progress: Callable[[str], None] | None = None,
    sections_done: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the HTML report of the warehouse at `db_path` to `out` (parents created) and return `out`;
    `cohort` (a view or a named cohort definition) and `where` restrict every section to their patients."""
    output_file(out)
    text = build_report(
        db_path, by=by, horizon=horizon, min_cell=min_cell, where=where, cohort=cohort, labels=labels,
        style=style, progress=progress, sections_done=sections_done,
    )  # fmt: skip
    out.write_text(text, encoding="utf-8")
    return out
