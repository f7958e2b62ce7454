"""The views in Spark SQL (queries/spark.py): what runs on Spark is a reviewed rendering of the released
DuckDB SQL. These tests need no Java; tests/test_spark.py runs the renderings on Spark."""

from __future__ import annotations

from pathlib import Path

import pytest

from queries import load_definitions
from queries.spark import SparkRenderingError, render_spark, render_view, stored_rendering
from tests.helpers import query


@pytest.mark.parametrize("definition", load_definitions(), ids=lambda d: d.ref)
def test_every_shipped_view_renders_as_the_stored_rendering(definition) -> None:  # type: ignore[no-untyped-def]
    # A sqlglot upgrade that changes what Spark runs fails here: `python -m queries.spark --write` shows
    # the change as a diff of queries/spark/ to review.
    assert stored_rendering(definition) == render_view(definition)


def test_similar_to_becomes_a_whole_string_regular_expression() -> None:
    rendered = render_spark("SELECT consequence SIMILAR TO '.*splice_(acceptor|donor)_variant.*' AS s FROM a")
    assert "SIMILAR" not in rendered
    assert "consequence RLIKE '^(?:.*splice_(acceptor|donor)_variant.*)$'" in rendered


def test_distinct_ordered_string_agg_becomes_a_sorted_set_null_over_no_value() -> None:
    rendered = render_spark("SELECT string_agg(DISTINCT f.method, ',' ORDER BY f.method) AS m FROM f")
    assert "LISTAGG" not in rendered.upper()
    assert "ARRAY_JOIN(ARRAY_SORT(COLLECT_SET(f.method)), ',')" in rendered
    assert "WHEN COUNT(f.method) = 0" in rendered and "THEN NULL" in rendered


@pytest.mark.parametrize(
    "aggregate",
    [
        "string_agg(x, ',')",  # no DISTINCT: duplicates kept, an order Spark cannot reproduce
        "string_agg(DISTINCT x, ',' ORDER BY y)",  # ordered by another column
        "string_agg(DISTINCT x, ',' ORDER BY x DESC)",
    ],
)
def test_other_string_aggs_are_refused_not_rendered_into_something_else(aggregate: str) -> None:
    with pytest.raises(SparkRenderingError, match="string_agg"):
        render_spark(f"SELECT {aggregate} AS s FROM t", "a test view")


def test_any_value_keeps_ignoring_nulls_under_a_filter() -> None:
    rendered = render_spark("SELECT any_value(day) FILTER (endpoint = 'efs') AS d FROM r GROUP BY patient_id")
    assert "IGNORE NULLS" not in rendered  # Spark's grammar wants it after FILTER: it could not parse this
    assert "ANY_VALUE(day, TRUE) FILTER(WHERE" in rendered


def test_division_is_in_double_as_duckdb_divides() -> None:
    rendered = render_spark("SELECT os_days / 365.25 AS os_years, (a / 2) / 3 AS z FROM n")
    assert "CAST(os_days AS DOUBLE) / CAST(365.25 AS DOUBLE)" in rendered
    assert "CAST(a AS DOUBLE) / CAST(2 AS DOUBLE)" in rendered  # the inner division too
    assert "CASE" not in rendered  # a non-zero constant needs no test


def test_division_by_a_column_is_ieee_by_zero_as_in_duckdb() -> None:
    rendered = " ".join(render_spark("SELECT age / (age - age) AS x FROM c").split())
    assert (
        "WHEN CAST(( age - age ) AS DOUBLE) = 0 THEN CAST(age AS DOUBLE) * CAST('Infinity' AS DOUBLE)"
        in rendered
    )


def test_generated_views_render(warehouse: Path) -> None:
    # patient_attribute, sample_attribute, patient_mrd: SQL the warehouse generated, rendered at run time.
    generated = query(
        warehouse, "SELECT name, generated_sql FROM view_version WHERE generated_sql IS NOT NULL"
    )
    assert {name for name, _ in generated} >= {"patient_attribute", "sample_attribute"}
    for name, sql in generated:
        assert "SELECT" in render_spark(str(sql), str(name))
