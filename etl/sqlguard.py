"""What SQL an analyst may hand to cgdw: a row filter over a view's columns (`export --where`) and a single
read-only SELECT (`cgdw query`). Parsed with sqlglot; anything else is refused with the reason.

The parser is the first guard, not the only one: `cgdw query` also runs on a read-only connection with
DuckDB's external access disabled, so even a SELECT cannot read or write files.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from etl.errors import CgdwError


class UnsafeSql(CgdwError):
    """SQL that is not what the command accepts (a second statement, a write, a subquery...)."""

    exit_code = 2


# The node types a row filter is made of: columns, constants, comparisons, boolean logic, arithmetic and a
# few pure functions. Subqueries, table references, and any other function are refused.
_PREDICATE_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Tuple,
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In,
    exp.Between, exp.Like, exp.ILike, exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod,
    exp.Cast, exp.DataType, exp.Lower, exp.Upper, exp.Abs, exp.Round, exp.Coalesce, exp.Length,
)  # fmt: skip


def safe_predicate(predicate: str, columns: list[str]) -> str:
    """The predicate rewritten by sqlglot (identifiers quoted), if it is a filter over `columns` only."""
    try:
        statements = sqlglot.parse(f"SELECT 1 FROM v WHERE {predicate}", read="duckdb")
    except ParseError as exc:
        raise UnsafeSql(f"--where {predicate!r} is not a valid SQL predicate: {_first_line(exc)}") from None
    select = statements[0] if len(statements) == 1 else None
    if (
        not isinstance(select, exp.Select)
        or select.args.get("where") is None
        or _has_more_than_a_where(select)
    ):
        raise UnsafeSql(f"--where {predicate!r}: a single row filter is expected, not another statement")
    condition = select.args["where"].this
    known = set(columns)
    for node in condition.walk():
        if not isinstance(node, _PREDICATE_NODES):
            raise UnsafeSql(
                f"--where {predicate!r}: {node.sql(dialect='duckdb')!r} is not allowed in a filter "
                "(only the view's columns, constants, comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, IS NULL, "
                "arithmetic and lower/upper/abs/round/coalesce/length)"
            )
        if isinstance(node, exp.Column):
            if node.table:
                raise UnsafeSql(f"--where {predicate!r}: {node.sql()!r} names another table")
            if node.name not in known:
                raise UnsafeSql(f"--where {predicate!r}: no column {node.name!r} in the view")
        if isinstance(node, exp.In) and node.args.get("query") is not None:
            raise UnsafeSql(f"--where {predicate!r}: IN (SELECT ...) reads another table")
        if isinstance(node, _COMPARISONS) and any(
            isinstance(side, _COMPARISONS) for side in node.iter_expressions()
        ):
            # `a > 2 = true`: DuckDB refuses a chained comparison, Spark reads it its own way; the filter
            # means the same on both engines or is refused on both.
            raise UnsafeSql(
                f"--where {predicate!r}: {node.sql(dialect='duckdb')!r} chains comparisons: "
                "put one in parentheses or join them with AND"
            )
    return condition.sql(dialect="duckdb", identify=True)


_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def predicate_columns(predicate: str) -> set[str]:
    """The columns a predicate (already accepted by `safe_predicate`) reads."""
    parsed = sqlglot.parse_one(f"SELECT 1 FROM v WHERE {predicate}", read="duckdb")
    return {node.name for node in parsed.find_all(exp.Column)}


def _has_more_than_a_where(select: exp.Select) -> bool:
    extra = ("joins", "group", "having", "order", "limit", "offset", "qualify", "with", "windows")
    from_ = select.args.get("from") or select.args.get("from_")
    only_v = from_ is not None and isinstance(from_.this, exp.Table) and from_.this.name == "v"
    return not only_v or any(select.args.get(key) for key in extra)


def safe_select(sql: str, relations: set[str] | None = None, taken: set[str] | None = None) -> str:
    """`sql` if it is exactly one SELECT (CTEs, UNION and the like included) that writes nothing, and,
    with `relations`, reads only those (unqualified, or in schema `analyst`; names compared as DuckDB
    does, without case), its own CTEs and information_schema. A CTE may not take a name of `taken` (every
    relation of the warehouse): inside its own body, and outside its scope, that name is the warehouse's
    relation, not the CTE. Table functions (read_csv, query_table, duckdb_tables...) other than range and
    generate_series are refused."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as exc:
        raise UnsafeSql(f"not valid SQL: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise UnsafeSql(f"one SELECT statement is expected, got {len(statements)} statements")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise UnsafeSql(f"only SELECT queries are run, not {statement.key.upper()}")
    for node in statement.walk():
        if isinstance(
            node, (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Command)
        ):
            raise UnsafeSql(f"only SELECT queries are run: {node.key.upper()} found")
    if relations is not None:
        _check_relations(statement, {r.lower() for r in relations}, {r.lower() for r in taken or set()})
    return sql


_GENERATORS = (exp.GenerateSeries,)  # range() and generate_series(): numbers, no data


def _check_relations(statement: exp.Query, relations: set[str], taken: set[str]) -> None:
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    for name in sorted(ctes & taken):
        raise UnsafeSql(
            f"a CTE may not be named {name!r}, the name of a relation of the warehouse: rename it"
        )
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            if isinstance(table.this, _GENERATORS):
                continue
            function = table.this.sql(dialect="duckdb").split("(")[0].lower()
            raise UnsafeSql(f"{function}(...) is not available in cgdw query: it reads outside the views")
        schema, catalog = table.args.get("db"), table.args.get("catalog")
        schema_name = schema.name.lower() if schema is not None else None
        name = table.name.lower()
        if catalog is None and schema_name == "information_schema":
            continue  # names and types of relations, no data
        if catalog is None and schema_name is None and name in ctes:
            continue
        if catalog is None and schema_name in (None, "analyst") and name in relations:
            continue
        if not relations:
            raise UnsafeSql("the warehouse has no analyst views yet: run `cgdw views apply` first")
        raise UnsafeSql(
            f"{table.sql(dialect='duckdb')} is not on the analysts' surface: cgdw query reads consented "
            "patients only, through the views and tables of schema analyst "
            "(SELECT table_name FROM information_schema.tables WHERE table_schema = 'analyst' lists them)"
        )


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
