"""`cgdw export VIEW[@vN]`: an analysis-ready extract with its data dictionary and provenance manifest.

The extract directory holds
- `NAME_vN.parquet|csv|xlsx`: the rows, sorted, so the same warehouse state and arguments give
  byte-identical data files; or `.dta|.sav|.xpt` (Stata, SPSS, SAS transport) with variable labels, whose
  headers carry the time they were written;
- `data_dictionary.csv`: column, type, description (from the view's header), observed values (distinct
  values of a code column, or the range), missing count, the SQL file;
- `NAME_vN.sql`: the view's SQL as released;
- `manifest.json`: view, version and SQL checksum, the filter, columns, row count, data file checksums, the
  ETL runs and source files (sha256) the warehouse held, cgdw version, time.

Privacy holds at export, not only at load: identifier-like column names are refused, and the rows are read
through the analysts' surface (etl/surface.py), so patients whose consent is withdrawn are left out of
every view version, whatever the version's own SQL does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from etl import __version__
from etl.analysis.cohort import declared_from_rows
from etl.errors import CgdwError
from etl.output import output_directory
from etl.privacy import identifier_columns
from etl.spark import Lake, SparkQueryError, lake_session
from etl.sqlguard import safe_predicate
from etl.surface import SCHEMA, surface_relations
from etl.warehouse import fetch_value, open_for_read, query_frame
from queries import ViewDefinitionError, find_definition, parse_ref
from queries.cohorts import CohortDefinition, CohortDefinitionError, find_cohort
from queries.mrd import pairs_in_sql, reads_thresholds

# A fixed timestamp inside the xlsx package, so that the same data gives the same bytes.
XLSX_TIMESTAMP = dt.datetime(2000, 1, 1)
# Text columns with at most this many distinct values get them listed as "allowed values".
MAX_LISTED_VALUES = 20


class ExportFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"
    xlsx = "xlsx"
    # For statisticians' packages, with variable labels (pyreadstat): Stata .dta, SPSS .sav, SAS transport.
    stata = "stata"
    spss = "spss"
    sas = "sas"

    @property
    def suffix(self) -> str:
        return {"stata": "dta", "spss": "sav", "sas": "xpt"}.get(self.value, self.value)


# (longest column name, longest variable label) each format holds; a longer name is refused, never cut.
LABELLED_LIMITS = {ExportFormat.stata: (32, 80), ExportFormat.spss: (64, 256), ExportFormat.sas: (32, 40)}
BOOLEAN_LABELS: dict[int | float, str] = {0: "no", 1: "yes"}
# A view header's description that starts with the column's codes: "sex: M | F", "tcr_group: immature |
# cortical | mature_ab | mature_gd (TCR status group)".
HEADER_CODES = re.compile(r"[\w+\-]+(?: \| [\w+\-]+)+(?=$|[ ,;:(])")


@dataclass
class ExportResult:
    out_dir: Path
    data_file: Path
    rows: int
    manifest: dict[str, Any]

    def summary(self) -> str:
        return (
            f"exported {self.rows} rows of {self.manifest['view']}@v{self.manifest['version']} to "
            f"{self.data_file} (+ data_dictionary.csv, manifest.json)"
        )


FILE_KEYS = ("etl_run_id", "kind", "file_name", "sha256")  # a loaded file, in an extract's manifest


class _Catalog(ABC):
    """What an extract reads besides its rows, from the warehouse (the registry, the data dictionary, the
    ledger's files) or from a lake's manifest and tables: one export, two engines, the same extract."""

    name: str  # the warehouse's file name, the only part of its path an extract records

    @abstractmethod
    def versions(self, name: str) -> list[tuple[int, str, bool, str | None]]:
        """(version, SQL checksum, retired, generated SELECT) of a view, newest first."""

    @abstractmethod
    def has(self, relation: str) -> bool:
        """Whether the analysts may read `relation` (a view or table on the surface, or in the lake)."""

    @abstractmethod
    def types(self, relation: str) -> dict[str, str]:
        """Column -> the warehouse's type name."""

    @abstractmethod
    def relation(self, name: str) -> str:
        """How the rows' SELECT names an analysts' relation."""

    @abstractmethod
    def frame(self, sql: str) -> pl.DataFrame:
        """A SELECT in DuckDB SQL over the analysts' relations (named by `relation`)."""

    @abstractmethod
    def sorted_rows(self, sql: str) -> pl.DataFrame:
        """`frame` sorted by every column, ascending, NULLs last (DuckDB's ORDER BY ALL)."""

    @abstractmethod
    def mrd_sql(self) -> list[str]:
        """The SELECT of every patient_mrd version released (they name the MRD status columns)."""

    @abstractmethod
    def run_facts(self) -> tuple[str, int | None, list[dict[str, Any]]]:
        """(schema revision, newest finished run, the files loaded by succeeded runs)."""


class _WarehouseCatalog(_Catalog):
    def __init__(self, con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
        self.con, self.name = con, db_path.name

    def versions(self, name: str) -> list[tuple[int, str, bool, str | None]]:
        return self.con.execute(
            "SELECT version, sql_sha256, retired_at IS NOT NULL, generated_sql FROM view_version "
            "WHERE name = $name ORDER BY version DESC",
            {"name": name},
        ).fetchall()

    def has(self, relation: str) -> bool:
        return relation in surface_relations(self.con)

    def types(self, relation: str) -> dict[str, str]:
        return {row[0]: row[1] for row in self.con.execute(f'DESCRIBE {SCHEMA}."{relation}"').fetchall()}

    def relation(self, name: str) -> str:
        return f'{SCHEMA}."{name}"'  # the surface: consented patients only, whatever the version does

    def frame(self, sql: str) -> pl.DataFrame:
        return query_frame(self.con, sql)

    def sorted_rows(self, sql: str) -> pl.DataFrame:
        try:
            return self.frame(sql + " ORDER BY ALL")
        except duckdb.Error as exc:  # e.g. a value the filter compares that is not of the column's type
            raise _FilterFailed(str(exc).splitlines()[0]) from None

    def mrd_sql(self) -> list[str]:
        rows = self.con.execute(
            "SELECT generated_sql FROM view_version WHERE name = 'patient_mrd'"
        ).fetchall()
        return [sql for (sql,) in rows if sql]

    def run_facts(self) -> tuple[str, int | None, list[dict[str, Any]]]:
        revision = fetch_value(self.con, "SELECT version_num FROM main.alembic_version")
        last = fetch_value(self.con, "SELECT max(etl_run_id) FROM main.etl_run WHERE finished_at IS NOT NULL")
        files = self.con.execute(
            "SELECT r.etl_run_id, f.kind, f.file_name, f.sha256 FROM main.etl_run AS r "
            "JOIN main.source_file AS f USING (etl_run_id) WHERE r.status = 'succeeded' "
            "ORDER BY r.etl_run_id, f.source_file_id"
        ).fetchall()
        return revision, last, [dict(zip(FILE_KEYS, row, strict=True)) for row in files]


class _LakeCatalog(_Catalog):
    """A lake on Spark (`--engine spark`): rows from Spark, the rest from the manifest the export wrote."""

    def __init__(self, lake: Lake) -> None:
        self.session = lake_session(lake)
        self.manifest = self.session.manifest
        self.name = str(self.manifest.get("warehouse", lake.path.name))

    def versions(self, name: str) -> list[tuple[int, str, bool, str | None]]:
        live = [v for v in self.manifest["views"]["versions"] if v["name"] == name]
        return [(v["version"], v["sql_sha256"], False, v["generated_sql"]) for v in reversed(live)]

    def has(self, relation: str) -> bool:
        return self.session.has(relation)

    def types(self, relation: str) -> dict[str, str]:
        columns = (
            self.manifest["views"]["columns"].get(relation) or self.manifest["tables"][relation]["columns"]
        )
        return dict(columns)

    def relation(self, name: str) -> str:
        return f'"{name}"'  # the lake holds consented patients only

    def frame(self, sql: str) -> pl.DataFrame:
        return self.session.frame(sql, "the extract")

    def sorted_rows(self, sql: str) -> pl.DataFrame:
        try:
            frame = self.frame(sql)
        except SparkQueryError as exc:  # e.g. a value of another type in the filter
            raise _FilterFailed(str(exc)) from None
        return frame.sort(frame.columns, nulls_last=True)

    def mrd_sql(self) -> list[str]:
        return list(self.manifest["views"]["patient_mrd_sql"])

    def run_facts(self) -> tuple[str, int | None, list[dict[str, Any]]]:
        files = [{key: row[key] for key in FILE_KEYS} for row in self.manifest["source_files"]]
        return self.manifest["schema_revision"], self.manifest["last_run"], files


class _FilterFailed(Exception):
    """The rows' SELECT failed on a --where (the first line of the engine's message)."""


def resolve_view(catalog: _Catalog, ref: str) -> tuple[str, int, str]:
    """(name, version, released SQL checksum) of a live released view version; NAME means the latest."""
    name, version = parse_ref(ref)
    rows = catalog.versions(name)
    if not rows:
        raise CgdwError(
            f"no released view {name!r} in the warehouse: run `cgdw views apply` (see `cgdw views list`)"
        )
    live = [(v, sha) for v, sha, retired, _ in rows if not retired]
    if version is None:
        if not live:
            raise CgdwError(f"every version of {name} is retired")
        return name, live[0][0], live[0][1]
    for v, sha, retired, _ in rows:
        if v == version:
            if retired:
                raise CgdwError(f"{name}@v{version} is retired; live versions: {[v for v, _ in live]}")
            return name, v, sha
    raise CgdwError(
        f"{name} has no released version {version}; released: {', '.join(f'v{v}' for v, *_ in rows)}"
    )


def _definition_text(catalog: _Catalog, name: str, version: int) -> str:
    """The SQL of a released version: its file, or the SELECT recorded for a generated version."""
    generated = [sql for v, _, _, sql in catalog.versions(name) if v == version]
    if generated and generated[0] is not None:
        header = f"-- name: {name}\n-- version: {version}\n-- generated from the data dictionary\n"
        return header + generated[0] + "\n"
    return find_definition(name, version).path.read_text(encoding="utf-8")


# The manifest key of each generated view a stable name joins.
JOINED_KEYS = {"patient_attribute": "attributes", "patient_mrd": "mrd"}


def _joined_views(catalog: _Catalog, ref: str, name: str, version: int) -> list[tuple[str, str, str, str]]:
    """(manifest key, VIEW@vN, its checksum, its SELECT) of each generated view that `ref` joins when it is
    the stable name of a view whose latest version says `-- attributes: ...`; none for a pinned NAME@vN,
    which has its own columns only."""
    if parse_ref(ref)[1] is not None:
        return []
    try:
        joins = find_definition(name, version).joins
    except ViewDefinitionError:
        return []
    found = []
    for view in joins:
        live = [(v, sha, sql) for v, sha, retired, sql in catalog.versions(view) if not retired]
        if live:
            latest, sha, sql = live[0]
            found.append((JOINED_KEYS[view], f"{view}@v{latest}", sha, sql or ""))
    return found


def _cohort_definition(ref: str) -> CohortDefinition | None:
    name, version = parse_ref(ref)
    try:
        return find_cohort(name, version)
    except CohortDefinitionError as exc:
        raise CgdwError(str(exc)) from None


def export_view(
    db_path: Path | Lake,
    ref: str,
    out_dir: Path,
    fmt: ExportFormat = ExportFormat.parquet,
    where: str | None = None,
    columns: list[str] | None = None,
) -> ExportResult:
    """An extract of a view (NAME or NAME@vN), or of a named cohort definition (queries/cohorts/): its
    view restricted by its rules, recorded in the manifest with the rules' checksum. From the warehouse
    file, or from a lake on Spark (`--engine spark`): the same extract."""
    if isinstance(db_path, Lake):
        return _export(_LakeCatalog(db_path), ref, out_dir, fmt, where, columns)
    with open_for_read(db_path) as con:
        return _export(_WarehouseCatalog(con, db_path), ref, out_dir, fmt, where, columns)


def _export(
    catalog: _Catalog,
    ref: str,
    out_dir: Path,
    fmt: ExportFormat,
    where: str | None,
    columns: list[str] | None,
) -> ExportResult:
    definition = _cohort_definition(ref)
    if definition is not None:
        ref = definition.view
        where = " AND ".join(f"({part})" for part in (definition.where, where) if part) or None
    name, version, sql_sha256 = resolve_view(catalog, ref)
    relation = f"{name}_v{version}"
    joined = _joined_views(catalog, ref, name, version)
    if joined:
        # The stable name of a view with `-- attributes: ...`: the version and the latest version of
        # each generated view it joins (etl/views.py), all in the manifest.
        relation = name
    if not catalog.has(relation):
        raise CgdwError(f"{relation} is not on the analysts' surface yet: run `cgdw views apply` first")
    # Read through the surface: consented patients only, whatever the view version itself does.
    types = catalog.types(relation)
    chosen = columns or list(types)
    unknown = [c for c in chosen if c not in types]
    if unknown:
        raise CgdwError(f"{relation} has no column {', '.join(unknown)}; its columns: {', '.join(types)}")
    leaked = identifier_columns(chosen)
    if leaked:
        raise CgdwError(
            f"columns {', '.join(leaked)} look like direct identifiers: identifiers are never exported"
        )
    select = ", ".join(f'"{c}"' for c in chosen)
    sql = f"SELECT {select} FROM {catalog.relation(relation)}"
    if where:
        sql += f" WHERE {safe_predicate(where, list(types))}"
    try:
        frame = catalog.sorted_rows(sql)
    except _FilterFailed as exc:
        raise CgdwError(f"--where {where!r} failed: {exc}") from None
    definition_text = _definition_text(catalog, name, version)
    for _, view_ref, _, generated_sql in joined:
        definition_text += (
            f"\n-- The stable name {name} adds the columns of {view_ref}, a generated view:\n"
            + "\n".join(f"-- {line}" for line in generated_sql.splitlines())
            + "\n"
        )
    dictionary_rows = catalog.frame(
        "SELECT attribute_name, label, unit, description, source, entity, levels "
        f"FROM {catalog.relation('attribute')}"
    ).sort("attribute_name", "entity")
    descriptions = column_descriptions(dictionary_rows, catalog.mrd_sql(), name, version)
    levels = column_levels(frame, descriptions, declared_levels(dictionary_rows))
    dictionary = data_dictionary(
        frame, {c: types[c] for c in chosen}, descriptions, f"{relation}.sql", levels
    )
    # Reference data the released SQL reads: a threshold changed by a migration changes the rows.
    thresholds = (
        catalog.frame(
            f"SELECT method, time_point, threshold, positive_at FROM {catalog.relation('mrd_threshold')}"
        )
        .sort("method", "time_point", "threshold", "positive_at", nulls_last=True)
        .to_dicts()
        if reads_thresholds(name, version)
        else None
    )
    revision, published_run, source_files = catalog.run_facts()
    output_directory(out_dir)
    data_file = out_dir / f"{relation}.{fmt.suffix}"
    labels = {row["column"]: row["description"] for row in dictionary.iter_rows(named=True)}
    write_data(frame, data_file, fmt, labels, levels)
    dictionary.write_csv(out_dir / "data_dictionary.csv")
    (out_dir / f"{relation}.sql").write_text(definition_text, encoding="utf-8")
    manifest = {
        "view": name,
        "version": version,
        "sql_sha256": sql_sha256,
        **{key: view_ref for key, view_ref, _, _ in joined},
        **{f"{key}_sql_sha256": sha for key, _, sha, _ in joined},
        **({"cohort": definition.ref, "cohort_sha256": definition.sha256} if definition else {}),
        "where": where,
        "schema_revision": revision,
        **({"mrd_thresholds": thresholds} if thresholds is not None else {}),
        "columns": chosen,
        "rows": frame.height,
        "files": {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in (data_file, out_dir / "data_dictionary.csv", out_dir / f"{relation}.sql")
        },
        "consent": "patients whose consent is withdrawn are excluded",
        "source_files": source_files,
        "cgdw_version": __version__,
        "warehouse": catalog.name,  # the name only: a server's directories are nobody's business
        "warehouse_run": published_run,  # the newest run the extract's copy of the warehouse holds
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return ExportResult(out_dir=out_dir, data_file=data_file, rows=frame.height, manifest=manifest)


Levels = dict[str, list[tuple[str, str]]]  # column -> (code, label) in order


def write_data(
    frame: pl.DataFrame,
    path: Path,
    fmt: ExportFormat,
    labels: dict[str, str] | None = None,
    levels: Levels | None = None,
) -> None:
    """The rows in `fmt`. Columns with `levels` are categorical: a dictionary (factor) column in Parquet,
    with the levels in their order; integer codes 1..k with value labels in Stata and SPSS."""
    levels = levels or {}
    if fmt in LABELLED_LIMITS:
        write_labelled(frame, path, fmt, labels or {}, levels)
    elif fmt is ExportFormat.parquet:
        write_parquet(frame, path, levels)
    elif fmt is ExportFormat.csv:
        # TRUE/FALSE and NA: what R's read.csv and pandas read as logicals and missing values.
        booleans = [c for c, dtype in frame.schema.items() if dtype == pl.Boolean]
        frame.with_columns(
            pl.col(c).replace_strict({True: "TRUE", False: "FALSE"}, return_dtype=pl.String) for c in booleans
        ).write_csv(path, null_value="NA")
    else:
        import xlsxwriter

        with xlsxwriter.Workbook(path) as workbook:
            workbook.set_properties({"created": XLSX_TIMESTAMP})
            frame.write_excel(workbook, worksheet="data", autofit=False)


def write_parquet(frame: pl.DataFrame, path: Path, levels: Levels) -> None:
    """Parquet with categorical columns as dictionary columns whose dictionary is the levels in order,
    unordered: R's arrow::read_parquet gives a factor (an ordered one would get polynomial contrasts in
    a model), pandas a Categorical. One row group: the same rows, the same bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = frame.to_arrow()
    for column, pairs in levels.items():
        codes = [code for code, _ in pairs]
        indices = frame[column].replace_strict(
            {code: i for i, code in enumerate(codes)}, return_dtype=pl.Int32
        )
        factor = pa.DictionaryArray.from_arrays(
            indices.to_arrow(), pa.array(codes, pa.string()), ordered=False
        )
        table = table.set_column(table.schema.get_field_index(column), column, factor)
    pq.write_table(
        table, path, compression="zstd", row_group_size=max(frame.height, 1), write_statistics=True
    )


def write_labelled(
    frame: pl.DataFrame, path: Path, fmt: ExportFormat, labels: dict[str, str], levels: Levels
) -> None:
    """Stata, SPSS or SAS transport through pyreadstat: each column's description as its variable label
    (cut to the format's length, ending with "..."), true/false as 1/0 with value labels no/yes (none of
    the three has a logical type), categorical columns as codes 1..k with their levels as value labels
    (SAS transport has no value labels: they stay text there). A column name the format cannot hold is
    refused, never renamed."""
    import pyreadstat

    longest_name, longest_label = LABELLED_LIMITS[fmt]
    too_long = [c for c in frame.columns if len(c) > longest_name]
    if too_long:
        raise CgdwError(
            f"{fmt.value} holds column names of {longest_name} characters at most: {', '.join(too_long)}; "
            "choose the columns with --columns, or export parquet or csv"
        )
    booleans = [c for c, dtype in frame.schema.items() if dtype == pl.Boolean]
    coded = {} if fmt is ExportFormat.sas else levels
    data = frame.with_columns(
        *(pl.col(c).cast(pl.Int8) for c in booleans),
        *(
            pl.col(c).replace_strict({code: i for i, (code, _) in enumerate(pairs, 1)}, return_dtype=pl.Int16)
            for c, pairs in coded.items()
        ),
    ).to_pandas()

    def cut(text: str) -> str:
        return text if len(text) <= longest_label else text[: longest_label - 3].rstrip() + "..."

    column_labels: list[str | None] = [cut(labels.get(c, "")) for c in frame.columns]
    value_labels: dict[str, dict[int | float, str]] = {c: BOOLEAN_LABELS for c in booleans}
    value_labels |= {c: {i: label for i, (_, label) in enumerate(pairs, 1)} for c, pairs in coded.items()}
    if fmt is ExportFormat.stata:
        pyreadstat.write_dta(data, str(path), column_labels=column_labels, variable_value_labels=value_labels)
    elif fmt is ExportFormat.spss:
        pyreadstat.write_sav(data, str(path), column_labels=column_labels, variable_value_labels=value_labels)
    else:  # SAS transport (version 8) has no value labels: the data dictionary gives them
        pyreadstat.write_xport(data, str(path), column_labels=column_labels, file_format_version=8)


def column_descriptions(
    dictionary: pl.DataFrame, mrd_sql: list[str], name: str, version: int
) -> dict[str, str]:
    """What each column is: the view file's header, the data dictionary (table attribute) for declared
    attributes, and the naming of the MRD status columns (queries/mrd.py) of the released patient_mrd."""
    try:
        described = dict(find_definition(name, version).columns)
    except ViewDefinitionError:  # a generated version: its columns are all attributes
        described = {}
    for row in dictionary.iter_rows(named=True):
        label, unit, description = row["label"], row["unit"], row["description"]
        text = label + (f" ({unit})" if unit else "") + (f": {description}" if description else "")
        described.setdefault(row["attribute_name"], f"{text} [declared attribute, from {row['source']}]")
    for pair in sorted({pair for sql in mrd_sql for pair in pairs_in_sql(sql)}, key=repr):
        for column, text in pair.column_descriptions().items():
            described.setdefault(column, f"{text} [generated, patient_mrd]")
    return described


def declared_levels(dictionary: pl.DataFrame) -> Levels:
    """The levels (code, label) of every categorical attribute the data dictionary declares."""
    rows = dictionary.select("attribute_name", "label", "levels").rows()
    return {
        name: list(attribute.levels)
        for name, attribute in declared_from_rows(rows).items()
        if attribute.levels
    }


def column_levels(frame: pl.DataFrame, descriptions: dict[str, str], declared: Levels) -> Levels:
    """The text columns whose codes are known, with their (code, label) in order: from the data dictionary
    (declared attributes), else from a view header's description that starts with them ("sex: M | F").
    Only when every value present is one of them: a column is never recoded by a guess."""
    levels: Levels = {}
    for column, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        pairs = declared.get(column)
        if pairs is None and (listed := HEADER_CODES.match(descriptions.get(column, ""))):
            pairs = [(code, code) for code in listed.group(0).split(" | ")]
        if pairs and set(frame[column].drop_nulls().unique().to_list()) <= {code for code, _ in pairs}:
            levels[column] = pairs
    return levels


def data_dictionary(
    frame: pl.DataFrame,
    types: dict[str, str],
    descriptions: dict[str, str],
    sql_file: str,
    levels: Levels | None = None,
) -> pl.DataFrame:
    """One row per column; `levels` lists a categorical column's codes in order (Stata and SPSS code them
    1..k in that order), with their labels where the data dictionary gives others."""
    levels = levels or {}
    rows = []
    for column, sql_type in types.items():
        values = frame[column]
        allowed = ""
        if values.dtype == pl.String and values.n_unique() <= MAX_LISTED_VALUES:
            allowed = " | ".join(sorted(v for v in values.unique().to_list() if v is not None))
        elif values.dtype == pl.Boolean:
            allowed = "true | false"
        elif values.dtype.is_numeric() and values.drop_nulls().len():
            allowed = f"{values.min()!s} .. {values.max()!s}"
        rows.append(
            {
                "column": column,
                "type": sql_type,
                "description": descriptions.get(column, ""),
                "observed_values": allowed,
                "levels": " | ".join(
                    code if label == code else f"{code}={label}" for code, label in levels.get(column, [])
                ),
                "missing": values.null_count(),
                "sql": sql_file,
            }
        )
    return pl.DataFrame(rows)
