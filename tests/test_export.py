"""Extracts for analysts (`cgdw export`), their read-only SQL (`cgdw query`) and small-cell suppression.

An extract reads back with identical values in polars, DuckDB and R; the same warehouse and arguments give
the same bytes; filters are predicates over the view's columns and nothing else; no identifier and no
patient who withdrew consent ever leaves.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from etl.analysis.table1 import build_table1
from etl.errors import CgdwError, WarehouseLocked
from etl.export import ExportFormat, export_view, write_data
from etl.query import run_query
from etl.sqlguard import UnsafeSql
from etl.views import apply_views
from schema.database import HEAD_REVISION
from tests.helpers import fingerprint, scalar
from tests.r_reference import run_r


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def parquet_extract(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("extract")
    export_view(warehouse, "cohort_patient", out, ExportFormat.parquet)
    return out


def test_a_parquet_extract_reads_back_identical_in_polars_and_duckdb(
    warehouse: Path, parquet_extract: Path
) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = con.sql("SELECT * FROM cohort_patient ORDER BY ALL").pl()
    # The stable name: the latest version with the declared attributes (docs/attributes.md).
    from_polars = pl.read_parquet(parquet_extract / "cohort_patient.parquet")
    assert from_polars.equals(expected)
    from_duckdb = duckdb.sql(f"SELECT * FROM '{parquet_extract / 'cohort_patient.parquet'}'").pl()
    assert from_duckdb.equals(expected)


def test_a_csv_extract_reads_back_identical_in_r(warehouse: Path, tmp_path: Path) -> None:
    export_view(warehouse, "cohort_patient", tmp_path, ExportFormat.csv)
    csv = tmp_path / "cohort_patient.csv"
    result = run_r(
        f"""
        d <- read.csv({json.dumps(str(csv))}, stringsAsFactors = FALSE)
        exact <- function(x) ifelse(is.na(x), NA, sprintf("%.17g", x))  # every bit of each double
        emit(list(columns = names(d), classes = unname(sapply(d, function(x) class(x)[1])),
                  patient_key = d$patient_key, age = exact(d$age), wbc = exact(d$wbc_g_per_l),
                  os = exact(d$os_years), alt = d$ikzf1_alt, cir_status = d$cir_status))
        """
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = con.sql("SELECT * FROM cohort_patient ORDER BY ALL").pl()
    assert result["columns"] == frame.columns
    assert result["patient_key"] == frame["patient_key"].to_list()
    for column, r_name in (("age", "age"), ("wbc_g_per_l", "wbc"), ("os_years", "os")):
        for ours, theirs in zip(frame[column].to_list(), result[r_name], strict=True):
            assert (ours is None and theirs is None) or ours == float(theirs), column
    assert result["alt"] == frame["ikzf1_alt"].to_list()
    assert result["cir_status"] == frame["cir_status"].to_list()
    classes = dict(zip(result["columns"], result["classes"], strict=True))
    assert classes["ikzf1_alt"] == "logical" and classes["age"] == "numeric"


# Stata, SPSS and SAS transport headers carry the time they were written (pyreadstat sets no other).
REPRODUCIBLE = [ExportFormat.parquet, ExportFormat.csv, ExportFormat.xlsx]


@pytest.mark.parametrize("fmt", REPRODUCIBLE)
def test_the_same_state_and_arguments_give_byte_identical_data_files(
    warehouse: Path, tmp_path: Path, fmt: ExportFormat
) -> None:
    first = export_view(warehouse, "cohort_patient@v1", tmp_path / "a", fmt, where="age >= 18")
    second = export_view(warehouse, "cohort_patient@v1", tmp_path / "b", fmt, where="age >= 18")
    assert sha(first.data_file) == sha(second.data_file)
    assert sha(tmp_path / "a" / "data_dictionary.csv") == sha(tmp_path / "b" / "data_dictionary.csv")


def test_the_manifest_says_what_the_extract_is_and_where_it_comes_from(parquet_extract: Path) -> None:
    manifest = json.loads((parquet_extract / "manifest.json").read_text())
    assert (manifest["view"], manifest["version"], manifest["rows"]) == ("cohort_patient", 3, 476)
    assert manifest["attributes"] == "patient_attribute@v1"  # the declared attributes it adds (none here)
    assert manifest["mrd"] == "patient_mrd@v1"  # and the MRD status per time point and method
    assert len(manifest["sql_sha256"]) == len(manifest["attributes_sql_sha256"]) == 64
    assert len(manifest["mrd_sql_sha256"]) == 64
    # The reference data the SQL reads, and the schema revision it belongs to.
    mfc = {"method": "MFC", "time_point": "*", "threshold": 1e-3, "positive_at": ">="}
    assert mfc in manifest["mrd_thresholds"]
    assert manifest["schema_revision"] == HEAD_REVISION
    for name, checksum in manifest["files"].items():
        assert sha(parquet_extract / name) == checksum
    kinds = {f["kind"] for f in manifest["source_files"]}
    assert {"clinical", "lab", "samples", "vcf", "maf", "cnv", "seg", "mrd"} <= kinds
    assert all(len(f["sha256"]) == 64 for f in manifest["source_files"])


def test_the_data_dictionary_describes_every_column(parquet_extract: Path) -> None:
    dictionary = pl.read_csv(parquet_extract / "data_dictionary.csv")
    assert (
        dictionary["column"].to_list() == pl.read_parquet(parquet_extract / "cohort_patient.parquet").columns
    )
    assert dictionary.filter(pl.col("description").is_null()).is_empty()
    ikzf1 = dictionary.filter(pl.col("column") == "ikzf1_status").row(0, named=True)
    assert ikzf1["observed_values"] == "Alt | GL" and ikzf1["sql"] == "cohort_patient.sql"
    sql = (parquet_extract / "cohort_patient.sql").read_text()
    assert sql.startswith("-- name: cohort_patient\n-- version: 3")
    assert "adds the columns of patient_attribute@v1" in sql
    assert "adds the columns of patient_mrd@v1" in sql
    mrd1 = dictionary.filter(pl.col("column") == "mrd1_pcr_positive").row(0, named=True)
    assert mrd1["description"].startswith("MRD at MRD1 by ASO-PCR: positive at the threshold")


def test_only_views_that_read_the_threshold_table_record_it(warehouse: Path, tmp_path: Path) -> None:
    """mrd_result v1 fixed its thresholds in its SQL: its manifest states none from table mrd_threshold."""
    old = export_view(warehouse, "mrd_result@v1", tmp_path / "v1", ExportFormat.csv).manifest
    new = export_view(warehouse, "mrd_result@v3", tmp_path / "v3", ExportFormat.csv).manifest
    assert "mrd_thresholds" not in old and "mrd_thresholds" in new
    endpoint = export_view(warehouse, "endpoint", tmp_path / "e", ExportFormat.csv).manifest
    assert "mrd_thresholds" not in endpoint


def test_where_filters_rows_and_columns_choose_columns(warehouse: Path, tmp_path: Path) -> None:
    result = export_view(
        warehouse, "cohort_patient", tmp_path, ExportFormat.csv,
        where="ikzf1_status = 'Alt' AND age >= 18", columns=["patient_key", "age", "os_years", "os_status"],
    )  # fmt: skip
    assert result.rows == scalar(
        warehouse, "SELECT count(*) FROM cohort_patient WHERE ikzf1_alt AND age >= 18"
    )
    assert pl.read_csv(result.data_file).columns == ["patient_key", "age", "os_years", "os_status"]


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("1=1; DROP TABLE patient", "not another statement"),
        ("age > (SELECT max(age) FROM enrolment)", "is not allowed in a filter"),
        ("patient_id IN (SELECT patient_id FROM patient)", "reads another table"),
        ("read_csv('/etc/passwd') IS NOT NULL", "is not allowed in a filter"),
        ("enrolment.age > 1", "names another table"),
        ("shoe_size > 40", "no column 'shoe_size'"),
        ("age > 1) UNION SELECT 1 FROM patient WHERE (1=1", "not a valid SQL predicate"),
    ],
)
def test_a_where_that_is_more_than_a_row_filter_is_refused(
    warehouse: Path, tmp_path: Path, where: str, reason: str
) -> None:
    before = fingerprint(warehouse)
    with pytest.raises(UnsafeSql, match=reason):
        export_view(warehouse, "cohort_patient", tmp_path, ExportFormat.csv, where=where)
    assert fingerprint(warehouse) == before and not list(tmp_path.iterdir())


def test_patients_who_withdrew_consent_are_never_exported(warehouse: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(warehouse, db)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "UPDATE enrolment SET consent_status = 'withdrawn' WHERE patient_id IN (1, 2, 3) "
            "AND superseded_by_run_id IS NULL"
        )
    # `endpoint` itself does not filter on consent: the export does.
    result = export_view(db, "endpoint", tmp_path / "out", ExportFormat.parquet)
    exported = pl.read_parquet(result.data_file)["patient_id"].to_list()
    assert result.rows == 473 and not {1, 2, 3} & set(exported)


def test_identifier_columns_are_refused_at_export(db_path: Path, tmp_path: Path) -> None:
    views = Path(shutil.copytree(Path(__file__).parents[1] / "queries" / "views", tmp_path / "views"))
    leak = views / "leak"
    leak.mkdir()
    (leak / "v1.sql").write_text(
        "-- name: leak\n-- version: 1\n-- depends: patient\n-- A view that must never leave.\n-- columns:\n"
        "--   patient_id: key\n--   birth_date: an identifier\n"
        "SELECT patient_id, NULL::DATE AS birth_date FROM patient\n"
    )
    apply_views(db_path, views_dir=views)
    with pytest.raises(CgdwError, match="birth_date look like direct identifiers"):
        export_view(db_path, "leak", tmp_path / "out", ExportFormat.csv)


def test_query_runs_one_select_read_only(warehouse: Path) -> None:
    frame = run_query(
        warehouse, "SELECT ikzf1_status, count(*) AS n FROM cohort_patient GROUP BY 1 ORDER BY 1"
    )
    assert frame.rows() == [("Alt", 26), ("GL", 450)]
    assert run_query(warehouse, "SELECT * FROM patient", limit=3).height == 3


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DELETE FROM patient", "only SELECT queries are run, not DELETE"),
        ("SELECT 1; DROP TABLE patient", "got 2 statements"),
        ("UPDATE enrolment SET sex = 'F'", "not UPDATE"),
        ("COPY patient TO '/tmp/out.csv'", "not COPY"),
        ("ATTACH '/tmp/other.duckdb' AS o", "not ATTACH"),
        ("WITH x AS (DELETE FROM patient RETURNING *) SELECT * FROM x", "DELETE"),
    ],
)
def test_query_refuses_writes_and_second_statements(warehouse: Path, sql: str, reason: str) -> None:
    before = fingerprint(warehouse)
    with pytest.raises(UnsafeSql, match=reason):
        run_query(warehouse, sql)
    assert fingerprint(warehouse) == before


def test_a_select_cannot_read_files(warehouse: Path) -> None:
    """Two guards: the parser refuses table functions, and the connection cgdw query runs on has DuckDB's
    external access off, so a file read would fail there too."""
    with pytest.raises(UnsafeSql, match=r"read_csv\(\.\.\.\) is not available"):
        run_query(warehouse, "SELECT * FROM read_csv('/etc/passwd')")
    from etl.warehouse import read_only_connection

    with (
        read_only_connection(warehouse, external_access=False) as con,
        pytest.raises(duckdb.Error, match="disabled"),
    ):
        con.execute("SELECT * FROM read_csv('/etc/passwd')")


def test_a_reader_during_a_write_gets_a_clear_message(warehouse: Path, tmp_path: Path) -> None:
    db = tmp_path / "busy.duckdb"
    shutil.copy(warehouse, db)
    writer = duckdb.connect(str(db))  # another process would hold the same file lock
    try:
        import subprocess
        import sys

        result = subprocess.run(
            [sys.executable, "-m", "etl", "query", "SELECT 1", "--db", str(db)],
            capture_output=True,
            text=True,
        )
    finally:
        writer.close()
    assert result.returncode == WarehouseLocked.exit_code
    assert "in use by another process" in result.stderr and "Traceback" not in result.stderr


def test_min_cell_suppresses_small_counts_and_ranges(warehouse: Path) -> None:
    table = build_table1(warehouse, min_cell=5).to_json()
    rows = {r["id"]: r for r in table["rows"]}
    assert rows["cns"]["groups"]["Alt"] == {"denom": 26, "suppressed": "<5"}  # 4/26
    assert rows["cns"]["groups"]["GL"] == {"n": 47, "denom": 448}
    assert rows["age"]["groups"]["Alt"].keys() == {"median"}  # no min/max: one patient's value each
    assert any("suppressed" in note for note in table["notes"])
    assert rows["cns"]["p_value"] is None  # computed on the exact counts, it would give the 4 back


# --- errors an analyst makes get a one-line cgdw message, never a raw exception ------------------------


def test_raw_errors_become_one_line_messages(warehouse: Path, tmp_path: Path) -> None:
    """--out onto an existing file, a --where that compares a number with text, csv of a list column."""
    from tests.helpers import cgdw

    a_file = tmp_path / "extract.csv"
    a_file.write_text("not a directory\n")
    onto_file = cgdw("export", "cohort_patient", "--out", str(a_file), "--db", str(warehouse))
    assert onto_file.returncode == 1 and onto_file.stderr.startswith(f"error: --out {a_file} is a file")
    cast = cgdw("export", "cohort_patient", "--out", str(tmp_path / "x"), "--where", "age >= 'old'",
                "--db", str(warehouse))  # fmt: skip
    assert cast.returncode == 1 and cast.stderr.startswith("error: --where \"age >= 'old'\" failed: ")
    for result in (onto_file, cast):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    listed = cgdw("query", "SELECT [1, 2] AS l, {'x': 1} AS s", "-f", "csv", "--db", str(warehouse))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["l,s", '"[1, 2]","{""x"": 1}"']


# --- Stata, SPSS and SAS extracts (issue 15, section 4) ----------------------------------------------------


READERS = [("stata", "read_dta"), ("spss", "read_sav"), ("sas", "read_xpt")]


@pytest.mark.parametrize(("fmt", "reader"), READERS)
def test_stata_spss_and_sas_extracts_open_in_r_with_their_labels(
    warehouse: Path, tmp_path: Path, fmt: str, reader: str
) -> None:
    """R haven reads each file back: the same rows and values as the Parquet extract, every column's
    description as its variable label, and true/false as 1/0 labelled no/yes (not in SAS transport)."""
    extract = export_view(warehouse, "cohort_patient", tmp_path / fmt, ExportFormat(fmt))
    reference = pl.read_parquet(export_view(warehouse, "cohort_patient", tmp_path / "pq").data_file)
    assert extract.data_file.suffix == {"stata": ".dta", "spss": ".sav", "sas": ".xpt"}[fmt]
    assert extract.manifest["files"][extract.data_file.name] == sha(extract.data_file)
    r = run_r(
        f"""
        d <- as.data.frame({reader}("{extract.data_file}"))
        tcr <- as.character(as_factor(d$tcr_group))  # SAS transport writes a missing text as ""
        emit(list(n = nrow(d), columns = names(d), age = sum(d$age, na.rm = TRUE),
                  age_label = attr(d$age, "label"),
                  male = sum(as.numeric(d$is_male), na.rm = TRUE),
                  male_labels = as.list(attr(d$is_male, "labels")),
                  status = sort(unique(as.character(as_factor(d$ikzf1_status)))),
                  tcr = as.list(table(tcr[!is.na(tcr) & tcr != ""])),
                  tcr_levels = levels(as_factor(d$tcr_group)),
                  sex_labels = as.list(attr(d$sex, "labels"))))
        """,
        packages=["haven"],
    )
    assert r["n"] == reference.height and r["columns"] == reference.columns
    assert r["age"] == pytest.approx(reference["age"].sum(), rel=1e-9)
    assert r["age_label"] == "age at diagnosis, years"
    assert r["male"] == reference["is_male"].sum()
    assert (r["male_labels"] or {}) == ({} if fmt == "sas" else {"no": 0, "yes": 1})
    assert set(r["status"]) - {"", "NA"} == set(reference["ikzf1_status"].drop_nulls())
    # A code column the view header lists ("tcr_group: immature | cortical | ..."): coded 1..k with value
    # labels in Stata and SPSS, so that as_factor keeps the header's order; text in SAS transport.
    counts = reference["tcr_group"].value_counts()
    assert r["tcr"] == {row["tcr_group"]: row["count"] for row in counts.drop_nulls().iter_rows(named=True)}
    if fmt == "sas":
        assert not r["sex_labels"]
    else:
        assert r["tcr_levels"] == ["immature", "cortical", "mature_ab", "mature_gd"]
        assert r["sex_labels"] == {"M": 1, "F": 2}


def test_code_columns_are_factors_in_parquet_in_their_declared_order(warehouse: Path, tmp_path: Path) -> None:
    """A dictionary column, unordered (an ordered factor would get polynomial contrasts in an R model), with
    the header's levels in order even when a level is absent; the data dictionary lists them."""
    import pyarrow.parquet as pq

    extract = export_view(warehouse, "cohort_patient", tmp_path / "pq", where="tcr_group <> 'immature'")
    field = pq.read_schema(extract.data_file).field("tcr_group")
    assert str(field.type) == "dictionary<values=string, indices=int32, ordered=0>"
    column = pq.read_table(extract.data_file).column("tcr_group").to_pandas()
    assert column.cat.categories.tolist() == ["immature", "cortical", "mature_ab", "mature_gd"]
    assert not column.cat.ordered and "immature" not in set(column.dropna())
    dictionary = pl.read_csv(tmp_path / "pq" / "data_dictionary.csv").filter(pl.col("column") == "tcr_group")
    assert dictionary["levels"].to_list() == ["immature | cortical | mature_ab | mature_gd"]


def test_a_value_outside_the_listed_codes_leaves_the_column_as_text(tmp_path: Path) -> None:
    """Never recoded by a guess: one value the header does not list, and the column stays text."""
    from etl.export import column_levels

    frame = pl.DataFrame({"sex": ["M", "F", "X"], "arm": ["A", "B", None]})
    descriptions = {"sex": "M | F", "arm": "the arm"}
    declared = {"arm": [("A", "standard"), ("B", "clofarabine")]}
    assert column_levels(frame, descriptions, declared) == {"arm": [("A", "standard"), ("B", "clofarabine")]}
    write_data(
        frame, tmp_path / "x.sav", ExportFormat.spss, levels=column_levels(frame, descriptions, declared)
    )
    import pyreadstat

    data, meta = pyreadstat.read_sav(str(tmp_path / "x.sav"))
    assert data["sex"].tolist() == ["M", "F", "X"] and meta.variable_value_labels["arm"] == {
        1.0: "standard",
        2.0: "clofarabine",
    }


def test_a_column_name_too_long_for_the_format_is_refused_not_cut(tmp_path: Path) -> None:
    long_name = "a_declared_attribute_with_a_long_name"
    frame = pl.DataFrame({"patient_id": [1], long_name: [True]})
    with pytest.raises(CgdwError, match=f"stata holds column names of 32 characters at most: {long_name}"):
        write_data(frame, tmp_path / "x.dta", ExportFormat.stata)
    write_data(frame, tmp_path / "x.sav", ExportFormat.spss)  # SPSS holds 64
