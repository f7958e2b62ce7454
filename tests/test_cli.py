"""The `cgdw` command as a user meets it: help everywhere, one-line errors with exit codes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.synth import SynthResult
from queries import load_definitions
from tests.helpers import ALIVE, TEST_KEY, cgdw, write_graall

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
    assert loaded.returncode == 10, loaded.stderr  # loaded, with a row quarantined: its own exit code
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


# --- help: every command shows an example that parses ----------------------------------------------------


def _commands() -> list[tuple[str, Any]]:
    import typer

    def walk(command: Any, path: list[str]) -> list[tuple[str, Any]]:
        if hasattr(command, "commands"):
            return [found for name, sub in command.commands.items() for found in walk(sub, [*path, name])]
        return [(" ".join(path), command)]

    return walk(typer.main.get_command(app), [])


def test_every_command_help_has_an_example_that_parses() -> None:
    """The `Example:` line of each --help names the command and only options it has (click parses it)."""
    import shlex

    commands = _commands()
    assert len(commands) > 25
    for name, command in commands:
        examples = [line for line in (command.help or "").splitlines() if line.strip().startswith("Example:")]
        assert examples, f"cgdw {name} --help has no example"
        words = shlex.split(examples[0].split("Example:", 1)[1])
        words = words[: next((i for i, w in enumerate(words) if w in ("&&", ">", "|")), len(words))]
        assert words[: 1 + len(name.split())] == ["cgdw", *name.split()], (name, words)
        command.make_context(f"cgdw {name}", words[1 + len(name.split()) :])


def test_help_shows_no_value_for_flags() -> None:
    """A flag takes no value: its --help line shows no `<bool>`, as a value option shows its type."""
    result = cgdw("load", "vcf", "--help", env={"COLUMNS": "120"})
    assert result.returncode == 0
    assert "<bool>" not in result.stdout and "--pass-only" in result.stdout and "<float>" in result.stdout


# --- loads that say what happened, even under --quiet ----------------------------------------------------


def test_a_quiet_load_with_quarantined_rows_says_so_in_one_line_and_exits_10(tmp_path: Path) -> None:
    """Cron mails what a job prints: a quiet load that quarantined rows prints one line, on stderr."""
    db = tmp_path / "w.duckdb"
    cgdw("db", "upgrade", "--db", str(db))
    export = write_graall(
        tmp_path / "g.csv", ALIVE, ALIVE.replace("G03-00001;GRAALL-2003;M", "G03-00002;GRAALL-2003;Z")
    )
    quiet = cgdw(
        "load", "clinical", str(export), "-p", "graall", "--db", str(db), "-q", "--max-reject-fraction", "0.5"
    )
    assert quiet.returncode == 10 and quiet.stdout == ""
    assert quiet.stderr == f"warning: {export}: 1 rows quarantined: `cgdw rejects 1`\n"


def test_load_takes_several_files_one_run_each_published_once(tmp_path: Path) -> None:
    """`cgdw load clinical a.csv b.csv`: each file its own run; a rejected file does not stop the others and
    makes the exit code 3; readers see all of it from one publication."""
    db = tmp_path / "w.duckdb"
    cgdw("db", "upgrade", "--db", str(db))
    first = write_graall(tmp_path / "graall_2024-01-01.csv", ALIVE)
    bad = tmp_path / "graall_2024-02-01.csv"
    bad.write_text("NOM;PRENOM\nDupont;Jean\n", encoding="latin-1")
    second = write_graall(tmp_path / "graall_2024-03-01.csv", ALIVE, ALIVE.replace("G03-00001", "G03-00009"))

    result = cgdw("load", "clinical", str(first), str(bad), str(second), "-p", "graall", "--db", str(db))

    assert result.returncode == 3, result.stderr
    assert f"{bad}: file rejected, nothing loaded" in result.stderr
    runs = cgdw("runs", "--db", str(db), "--format", "csv").stdout  # read from the published copy
    assert runs.count("graall_2024-01-01.csv") == 1 and runs.count("graall_2024-03-01.csv") == 1, runs
    from tests.helpers import scalar

    assert scalar(db, "SELECT count(*) FROM publication") == 2  # at `db upgrade`, and once for the load


def test_pipeline_quiet_prints_one_line_when_it_exits_non_zero(tmp_path: Path) -> None:
    from tests.helpers import command, environment, write_config

    site = tmp_path / "site"
    write_config(site, "max_reject_fraction: 0.5")  # the bad row is quarantined, the file loaded
    cgdw("db", "upgrade", "--db", str(site / "warehouse.duckdb"))
    bad_sex = ALIVE.replace("G03-00001;GRAALL-2003;M", "G03-00002;GRAALL-2003;Z")
    write_graall(site / "drop" / "graall" / "graall_2024.csv", ALIVE, bad_sex)
    result = subprocess.run(
        [*command(site), "--quiet"],
        capture_output=True,
        text=True,
        env=environment(),
    )
    assert result.returncode == 10 and result.stdout == ""  # it used to print nothing at all
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: pipeline on ") and "log: " in lines[0], lines


# --- results that fit the terminal, and pipes -------------------------------------------------------------


def test_query_shows_1000_rows_by_default_and_says_when_rows_were_left_out(warehouse: Path) -> None:
    sql = "SELECT * FROM range(1500) AS t(n)"
    shown = cgdw("query", sql, "--db", str(warehouse))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["n", *(str(n) for n in range(1000))]  # into a pipe: CSV
    assert shown.stderr == "first 1,000 rows shown, more left out: --limit N for more, --limit 0 for all\n"
    every = cgdw("query", sql, "--limit", "0", "--db", str(warehouse))
    assert len(every.stdout.splitlines()) == 1501 and every.stderr == ""
    exact = cgdw("query", "SELECT * FROM range(5)", "--limit", "5", "--db", str(warehouse))
    assert exact.stderr == ""  # nothing left out: no line


def test_a_wide_result_keeps_every_header_and_value_on_a_narrow_terminal(warehouse: Path) -> None:
    """49 columns on 80: the grid used to squeeze them to nothing; now one block per row (psql's \\x)."""
    import io

    import polars as pl
    from rich.console import Console

    from etl.output import expanded_table

    frame = pl.DataFrame({f"column_{i:02d}": [f"value_{i}"] for i in range(49)})
    buffer = io.StringIO()
    Console(file=buffer, width=80).print(expanded_table(frame))
    text = buffer.getvalue()
    assert "-[ row 1 ]-" in text
    for i in range(49):
        assert f"column_{i:02d}" in text and f"value_{i}" in text
    wide = cgdw("query", "SELECT * FROM cohort_patient LIMIT 2", "--format", "table", "--db", str(warehouse))
    header = wide.stdout.splitlines()[1]
    assert "patient_key" in header and "cir_status" in header and "…" not in wide.stdout  # not cut at 80


def test_p_values_are_printed_in_one_style_everywhere(warehouse: Path) -> None:
    """<.001, or two significant digits without a leading zero: in Table 1, the HR table, the test line."""
    import re

    db = ["--db", str(warehouse)]
    texts = [
        cgdw("table1", "--spec", "seed_tall", "--format", "md", *db).stdout,
        cgdw("outcomes", "--endpoint", "os", "--adjust", "age,log_wbc", "--format", "md", *db).stdout,
        cgdw("outcomes", "--endpoint", "cir", "--format", "md", *db).stdout,
    ]
    statements = [m for text in texts for m in re.findall(r"P [=<] \S+", text)]
    assert statements, texts
    for statement in statements:
        assert re.fullmatch(r"P (< \.001|= (\.\d{1,3}|1))", statement.rstrip(".,")), statement
    cells = re.findall(r"\| (<?\.?\d[\d.]*|<\.001) \|$", "\n".join(texts), flags=re.MULTILINE)
    assert not [c for c in cells if c.startswith("0.")], cells


def test_a_load_imports_neither_sqlalchemy_nor_the_analyses(db_path: Path, cohort: SynthResult) -> None:
    """Start-up is part of every load (issue 16): the load path, its summary and its views hint import no
    SQLAlchemy, sqlglot or lifelines (0.3 s of SQLAlchemy came back through the views hint once)."""
    import os
    import sys

    env = {**os.environ, "CGDW_PSEUDONYM_KEY": TEST_KEY}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "etl", "load", "clinical", str(cohort.files["graall"]),
         "--protocol", "graall", "--db", str(db_path)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "loaded" in done.stdout + done.stderr
    assert "pandera" in imported  # the trace is real: the validation library is there
    assert not {"sqlalchemy", "sqlglot", "lifelines", "alembic"} & imported
