"""Small helpers the tests share: reading the warehouse the way an analyst would."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from queries import view_sql
from schema.models import Base

TABLES = tuple(Base.metadata.tables)  # every table of the schema


def query(db_path: Path, sql: str, params: dict[str, object] | None = None) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def scalar(db_path: Path, sql: str, params: dict[str, object] | None = None) -> object:
    return query(db_path, sql, params)[0][0]


def fingerprint(db_path: Path) -> dict[str, str]:
    """A checksum of every row of every table: equal fingerprints mean an unchanged database."""
    result = {}
    with duckdb.connect(str(db_path), read_only=True) as con:
        for table in TABLES:
            rows = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            result[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return result


def view_rows(db_path: Path, name: str, columns: str = "*", where: str = "true") -> list[tuple[object, ...]]:
    return query(db_path, f"SELECT {columns} FROM ({view_sql(name)}) WHERE {where} ORDER BY ALL")
