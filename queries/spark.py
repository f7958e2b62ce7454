"""The views in Spark SQL: each released DuckDB SELECT rendered for Apache Spark (docs/scale-out.md).

The DuckDB SQL of `queries/views/` stays the one source of truth, with its checksums; Spark runs a
rendering of it: sqlglot (pinned in pyproject.toml) transpiles DuckDB to Spark, and the rewrites below
repair what sqlglot passes through or changes without a warning (each found by comparing the views row
for row on both engines, tests/test_spark.py):

- `x SIMILAR TO 'p'` passes through, and Spark cannot parse it: DuckDB matches the whole string with RE2,
  so it becomes `x RLIKE '^(?:p)$'` (Java's RLIKE finds the pattern anywhere, hence the anchors).
- `string_agg(DISTINCT x, sep ORDER BY x)` becomes LISTAGG(DISTINCT) WITHIN GROUP, which Spark 4.3 crashes
  on beside a COUNT(DISTINCT): it becomes array_join(array_sort(collect_set(x)), sep), NULL over no value
  as string_agg gives (an empty array would join to '').
- `any_value(x)` ignores NULLs in DuckDB; sqlglot writes `ANY_VALUE(x) IGNORE NULLS FILTER (...)`, which
  Spark cannot parse (its grammar puts FILTER first): it becomes Spark's own `any_value(x, true)`.
- `a / b`: DuckDB divides numbers as DOUBLE, by zero as IEEE does (+-Infinity, NaN for 0/0); Spark keeps
  DECIMAL for a decimal literal such as 365.25 (rounded to 6 places) and, in its ANSI mode, fails on a
  zero. Both operands are cast to DOUBLE, and a denominator that is not a non-zero constant is tested
  first: `CASE WHEN b = 0 THEN a * Infinity ELSE a / b END`.

Any other form of string_agg (an order other than its own value, no DISTINCT) has no deterministic Spark
equivalent here and is refused with the view's name, rather than rendered into something else.

The rendering of every shipped version is stored under `queries/spark/NAME/vN.sql` and a test compares
them, so that a sqlglot upgrade cannot change what Spark runs without a diff to review:
`python -m queries.spark --write` writes them again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlglot
from sqlglot import exp

from queries import VIEWS_DIR, ViewDefinition, load_definitions

RENDERED_DIR = Path(__file__).resolve().parent / "spark"


class SparkRenderingError(ValueError):
    """A construct of DuckDB SQL that cgdw cannot render for Spark with the same result."""


def _similar_to(node: exp.SimilarTo) -> exp.Expression:
    pattern = node.expression
    if node.args.get("escape") is not None or not (isinstance(pattern, exp.Literal) and pattern.is_string):
        raise SparkRenderingError(
            f"SIMILAR TO needs a plain string pattern to render for Spark: {node.sql()}"
        )
    anchored = exp.Literal.string(f"^(?:{pattern.this})$")
    return exp.RegexpLike(this=node.this, expression=anchored)


def _string_agg(node: exp.GroupConcat) -> exp.Expression:
    """string_agg(DISTINCT x, sep ORDER BY x) -> NULL over no value, else the sorted values joined."""
    order = node.this
    distinct = order.this if isinstance(order, exp.Order) else order
    keys = order.expressions if isinstance(order, exp.Order) else []
    if not isinstance(distinct, exp.Distinct) or len(distinct.expressions) != 1:
        raise SparkRenderingError(
            f"only string_agg(DISTINCT x, sep ORDER BY x) renders for Spark: {node.sql()}"
        )
    value = distinct.expressions[0]
    if keys and (len(keys) != 1 or keys[0].this != value or keys[0].args.get("desc")):
        raise SparkRenderingError(f"string_agg ordered by anything but its value ascending: {node.sql()}")
    separator = node.args.get("separator") or exp.Literal.string(",")
    joined = exp.func(
        "array_join", exp.func("array_sort", exp.func("collect_set", value.copy())), separator.copy()
    )
    none = exp.EQ(this=exp.Count(this=value.copy()), expression=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=none, true=exp.Null())], default=joined)


def _division(node: exp.Div) -> exp.Expression:
    numerator, denominator = (
        exp.cast(side.copy(), exp.DataType.build("DOUBLE")) for side in (node.this, node.expression)
    )
    divided = exp.Div(this=numerator, expression=denominator)
    constant = node.expression
    if isinstance(constant, exp.Literal) and not constant.is_string and float(constant.this) != 0:
        return divided  # days / 365.25: no zero to handle
    # By zero, IEEE as DuckDB: +-Infinity, NaN for 0/0, NULL for NULL (the numerator times Infinity).
    infinity = exp.cast(exp.Literal.string("Infinity"), exp.DataType.build("DOUBLE"))
    by_zero = exp.EQ(this=denominator.copy(), expression=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=by_zero, true=exp.Mul(this=numerator.copy(), expression=infinity))],
                    default=divided)  # fmt: skip


def _any_value(node: exp.IgnoreNulls) -> exp.Expression:
    if not isinstance(node.this, exp.AnyValue):
        return node
    return exp.Anonymous(this="any_value", expressions=[node.this.this.copy(), exp.true()])


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.IgnoreNulls):
        return _any_value(node)
    if isinstance(node, exp.SimilarTo):
        return _similar_to(node)
    if isinstance(node, exp.GroupConcat):
        return _string_agg(node)
    if isinstance(node, exp.Div):
        return _division(node)
    return node


def render_spark(sql: str, what: str = "query") -> str:
    """A DuckDB SELECT in Spark SQL (the module's rewrites applied), pretty-printed."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
        # Innermost first, so that a rewritten node holds its rewritten operands.
        for node in reversed(list(tree.find_all(exp.SimilarTo, exp.GroupConcat, exp.Div, exp.IgnoreNulls))):
            node.replace(_rewrite(node))
        return tree.sql(dialect="spark", pretty=True, unsupported_level=sqlglot.ErrorLevel.RAISE)
    except (sqlglot.errors.SqlglotError, SparkRenderingError) as exc:
        raise SparkRenderingError(f"{what}: cannot render for Spark: {exc}") from None


def render_view(definition: ViewDefinition) -> str:
    return render_spark(definition.sql, definition.ref)


def rendered_path(definition: ViewDefinition, rendered_dir: Path = RENDERED_DIR) -> Path:
    return rendered_dir / definition.name / f"v{definition.version}.sql"


def write_renderings(views_dir: Path = VIEWS_DIR, rendered_dir: Path = RENDERED_DIR) -> list[Path]:
    written = []
    for definition in load_definitions(views_dir):
        path = rendered_path(definition, rendered_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f"-- {definition.ref} rendered for Spark by queries/spark.py (do not edit: --write)\n"
        path.write_text(header + render_view(definition) + "\n", encoding="utf-8")
        written.append(path)
    return written


def stored_rendering(definition: ViewDefinition, rendered_dir: Path = RENDERED_DIR) -> str | None:
    """The stored Spark SQL of a shipped version (its header line dropped), None if there is none."""
    path = rendered_path(definition, rendered_dir)
    if not path.exists():
        return None
    return path.read_text(encoding="utf-8").split("\n", 1)[1].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="write queries/spark/NAME/vN.sql again")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_renderings():
            print(path.relative_to(RENDERED_DIR.parent))
        return 0
    stale = [d.ref for d in load_definitions() if stored_rendering(d) != render_view(d)]
    print(
        "\n".join(f"{ref}: the stored rendering differs (python -m queries.spark --write)" for ref in stale)
    )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
