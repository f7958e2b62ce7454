"""The `cgdw` command as a user meets it: help everywhere, one-line errors with exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli import app
from queries import load_definitions
from tests.helpers import ALIVE, cgdw, write_graall

COMMANDS = [
    [], ["db"], ["db", "upgrade"], ["db", "downgrade"], ["db", "current"], ["db", "history"], ["load"],
    ["load", "clinical"], ["load", "lab"], ["load", "samples"], ["load", "vcf"], ["load", "maf"],
    ["load", "cnv"], ["load", "seg"], ["load", "mrd"], ["validate"], ["runs"], ["rejects"], ["synth"],
    ["demo"], ["views"], ["views", "apply"], ["views", "list"], ["views", "show"], ["views", "diff"],
    ["views", "retire"], ["table1"], ["outcomes"], ["plot"], ["plot", "oncoplot"], ["export"], ["query"],
    ["pipeline"], ["pipeline", "run"], ["report"], ["load", "cbioportal"], ["consent"],
    ["consent", "withdraw"], ["consent", "restore"], ["purge"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "cgdw")
def test_every_command_explains_itself(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], prog_name="cgdw")
    assert result.exit_code == 0, result.output
    assert "Usage: cgdw" in result.output and len(result.output.splitlines()) > 5


def test_a_user_error_is_one_line_and_an_exit_code(tmp_path: Path) -> None:
    result = cgdw("runs", "--db", str(tmp_path / "missing.duckdb"))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: no warehouse at")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_rejected_file_exits_3_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    assert cgdw("db", "upgrade", "--db", str(db)).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("NOM;PRENOM\nDupont;Jean\n", encoding="latin-1")
    result = cgdw("load", "clinical", str(bad), "--protocol", "graall", "--db", str(db))
    assert result.returncode == 3
    assert "file rejected, nothing loaded" in result.stderr and "Traceback" not in result.stderr
    debug = cgdw("--debug", "load", "clinical", str(bad), "--protocol", "graall", "--db", str(db))
    assert debug.returncode == 3 and "Traceback" in debug.stderr


def test_the_database_is_db_then_cgdw_db_then_the_current_directory(tmp_path: Path) -> None:
    assert cgdw("db", "upgrade", cwd=tmp_path).returncode == 0
    assert (tmp_path / "cgdw.duckdb").exists()
    from_env = tmp_path / "env.duckdb"
    assert cgdw("db", "upgrade", cwd=tmp_path, env={"CGDW_DB": str(from_env)}).returncode == 0
    assert from_env.exists()
    explicit = tmp_path / "explicit.duckdb"
    assert (
        cgdw("db", "upgrade", "--db", str(explicit), cwd=tmp_path, env={"CGDW_DB": str(from_env)}).returncode
        == 0
    )
    assert explicit.exists()


def test_load_runs_and_rejects_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    cgdw("db", "upgrade", "--db", str(db))
    export = write_graall(
        tmp_path / "g.csv", ALIVE, ALIVE.replace("G03-00001;GRAALL-2003;M", "G03-00002;GRAALL-2003;Z")
    )
    loaded = cgdw(
        "load", "clinical", str(export), "-p", "graall", "--db", str(db), "--max-reject-fraction", "0.5"
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 1 of 2 rows, 1 rejected" in loaded.stdout
    runs = cgdw("runs", "--db", str(db), "--format", "csv")
    assert runs.stdout.splitlines()[1].startswith("1,")
    rejects = cgdw("rejects", "1", "--db", str(db), "--format", "csv")
    assert "g.csv,3,SEXE,Z,code:sexe" in rejects.stdout
    again = cgdw("load", "clinical", str(export), "-p", "graall", "--db", str(db), "--quiet")
    assert again.returncode == 0 and again.stdout == ""


def test_version_and_a_clean_exit_without_noise(tmp_path: Path) -> None:
    result = cgdw("--version")
    assert result.returncode == 0 and result.stdout.startswith("cgdw ") and result.stderr == ""


def test_the_analyses_run_from_the_command_line(warehouse: Path, tmp_path: Path) -> None:
    """Read-only commands on the loaded synthetic cohort: Table 1 as JSON, outcomes with a plot, oncoplot."""
    import json

    table = cgdw("table1", "--spec", "seed_tall", "--db", str(warehouse), "--format", "json")
    assert table.returncode == 0, table.stderr
    rows = {row["id"]: row for row in json.loads(table.stdout)["rows"]}
    assert rows["ras"]["groups"]["Alt"] == {"n": 8, "denom": 26}

    out = tmp_path / "os.md"
    outcomes = cgdw(
        "outcomes", "--endpoint", "os", "--adjust", "age,log_wbc,prednisone_good,classifier_high",
        "--plot", str(tmp_path / "os.png"), "--format", "md", "--out", str(out), "--db", str(warehouse),
    )  # fmt: skip
    assert outcomes.returncode == 0, outcomes.stderr
    assert "| multivariable | ikzf1_status=Alt |" in out.read_text()
    assert (tmp_path / "os.png").read_bytes().startswith(b"\x89PNG")

    plot = cgdw("plot", "oncoplot", "--out", str(tmp_path / "onco.svg"), "--db", str(warehouse))
    assert plot.returncode == 0, plot.stderr
    assert "IKZF1" in (tmp_path / "onco.svg").read_text()

    unknown = cgdw("table1", "--by", "shoe_size", "--db", str(warehouse))
    assert unknown.returncode == 1 and "cohort_patient has no column shoe_size" in unknown.stderr


def test_stdout_holds_only_the_result_so_json_output_parses(warehouse: Path, tmp_path: Path) -> None:
    """`outcomes --plot x.png --format json > f.json` used to write "wrote x.png" into the JSON: messages and
    warnings go to stderr (issue 15)."""
    import json

    db = ["--db", str(warehouse)]
    commands = [
        ["outcomes", "--plot", str(tmp_path / "os.png"), "--format", "json", *db],
        ["outcomes", "--endpoint", "cir", "--landmark", "180", "--format", "json", *db],
        ["table1", "--spec", "seed_tall", "--attrition", "--format", "json", *db],
        ["query", "SELECT ikzf1_status, count(*) FROM cohort_patient GROUP BY 1", "--format", "json", *db],
    ]
    for command in commands:
        shown = cgdw(*command)
        assert shown.returncode == 0, shown.stderr
        json.loads(shown.stdout)  # raises on anything but the result
    assert "wrote " in cgdw(*commands[0]).stderr


def test_views_commands(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    assert cgdw("db", "upgrade", "--db", str(db)).returncode == 0
    applied = cgdw("views", "apply", "--db", str(db))
    assert applied.returncode == 0 and "newly released: " in applied.stdout
    listed = cgdw("views", "list", "--db", str(db), "--format", "csv")
    assert listed.stdout.count(",released,") == len(load_definitions())  # every shipped version
    shown = cgdw("views", "show", "endpoint@v1")
    assert shown.returncode == 0 and shown.stdout.startswith("-- name: endpoint")
    missing = cgdw("views", "show", "endpoint@v9")
    assert missing.returncode == 1 and "view endpoint has no version 9; shipped: v1" in missing.stderr
    refused = cgdw("views", "retire", "mrd_result@v1", "--db", str(db))
    assert (
        refused.returncode == 1
        and "cohort_patient@v1, cohort_patient@v2, mrd_result@v2 read it" in refused.stderr
    )


def test_every_registered_source_kind_has_a_load_command_and_a_loader() -> None:
    from etl.sources.registry import SOURCE_KINDS

    result = CliRunner().invoke(app, ["load", "--help"], prog_name="cgdw")
    for kind in SOURCE_KINDS:
        assert f" {kind.name} " in result.output
        assert kind.loader_class().kind == kind.name


def test_the_registry_lists_kinds_after_the_kinds_they_refer_to() -> None:
    from etl.sources.registry import SOURCE_KINDS, dependency_order

    order = dependency_order()
    assert order == tuple(kind.name for kind in SOURCE_KINDS)
    for kind in SOURCE_KINDS:
        assert all(order.index(other) < order.index(kind.name) for other in kind.refers_to)


@pytest.mark.parametrize(
    "args",
    [
        ["table1", "--by", "os_years"],
        ["table1", "--min-cell", "0"],
        ["outcomes", "--horizon", "nan"],
        ["outcomes", "--by", "patient_key"],
        ["outcomes", "--adjust", "age,age"],
        ["outcomes", "--out", "{tmp}"],
        ["report", "--out", "{tmp}"],
        ["plot", "oncoplot", "--out", "{tmp}/figure.txt"],
        ["export", "cohort_patient", "--out", "{tmp}/file.csv"],
    ],
    ids=lambda args: " ".join(args).replace("{tmp}", "TMP"),
)
def test_mistakes_found_by_a_hostile_tester_get_one_line_messages(
    warehouse: Path, tmp_path: Path, args: list[str]
) -> None:
    """Each of these once printed a library's exception (ValueError, IndexError, DuplicateError,
    ArithmeticError, IsADirectoryError...): now one cgdw line, and an exit code."""
    (tmp_path / "file.csv").write_text("a file, not a directory\n")
    result = cgdw(*(a.format(tmp=tmp_path) for a in args), "--db", str(warehouse))
    assert result.returncode in (1, 2), result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "Error: " not in lines[0].removeprefix("error: ")[:40]


def test_query_results_polars_cannot_hold_are_printed_as_text(warehouse: Path) -> None:
    """Bytes, intervals, unions and dates out of range ('infinity') once ended in a Rust panic and a
    204-line traceback: they print as DuckDB writes them, in every format."""
    sql = (
        "SELECT sha256('x')::BLOB AS b, INTERVAL 1 DAY AS i, 'infinity'::DATE AS d, union_value(a := 1) AS u"
    )
    for fmt in ("table", "csv", "json", "md"):
        result = cgdw("query", sql, "-f", fmt, "--db", str(warehouse))
        assert result.returncode == 0 and "infinity" in result.stdout and "1 day" in result.stdout, (
            result.stderr
        )
