"""Referential integrity and unique keys, checked rather than enforced.

The relations declared in schema/models.py are not FOREIGN KEY constraints in the database (migration
0003 explains the DuckDB 2.0 cost that made us drop them). Loaders resolve every reference by joining on
the referenced table, so an orphan cannot come from a load; `cgdw db check` proves it on a warehouse by
counting, for every declared relation, the rows whose reference points at no row. Likewise the primary
keys of the bulk fact tables (schema.models.CHECKED_KEY_TABLES) and the keys a model declares in
`info["checked_unique"]`, whose indexes cost more than the loads (migration 0014): sequences and loaders
make them unique, and `cgdw db check` counts the keys that repeat.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import sqlalchemy as sa

from schema.models import CHECKED_KEY_TABLES, Base


@dataclass(frozen=True)
class Relation:
    table: str
    column: str
    parent: str
    parent_column: str

    def orphan_sql(self) -> str:
        return (
            f'SELECT count(*) FROM "{self.table}" AS child WHERE child."{self.column}" IS NOT NULL '
            f'AND NOT EXISTS (SELECT 1 FROM "{self.parent}" AS parent '
            f'WHERE parent."{self.parent_column}" = child."{self.column}")'
        )


@dataclass(frozen=True)
class Orphans:
    relation: Relation
    rows: int


def relations() -> list[Relation]:
    """Every relation the models declare, in a stable order."""
    found = [
        Relation(table.name, fk.parent.name, fk.column.table.name, fk.column.name)
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_keys
        if isinstance(fk.column.table, sa.Table)
    ]
    return sorted(found, key=lambda r: (r.table, r.column))


@dataclass(frozen=True)
class CheckedKey:
    table: str
    columns: tuple[str, ...]

    def repeated_sql(self) -> str:
        listed = ", ".join(f'"{c}"' for c in self.columns)
        return f'SELECT count(*) FROM (SELECT {listed} FROM "{self.table}" GROUP BY ALL HAVING count(*) > 1)'


def checked_keys() -> list[CheckedKey]:
    """Every unique key the database does not enforce: the primary keys of CHECKED_KEY_TABLES and the
    keys the models declare in `info["checked_unique"]`."""
    keys = []
    for table in Base.metadata.sorted_tables:
        if table.name in CHECKED_KEY_TABLES:
            keys.append(CheckedKey(table.name, tuple(c.name for c in table.primary_key.columns)))
        keys.extend(
            CheckedKey(table.name, tuple(columns)) for columns in table.info.get("checked_unique", [])
        )
    return keys


def find_repeated_keys(con: duckdb.DuckDBPyConnection) -> list[tuple[CheckedKey, int]]:
    """The checked keys that repeat, with how many key values repeat (empty: every key is unique)."""
    found = [(key, int(con.execute(key.repeated_sql()).fetchall()[0][0])) for key in checked_keys()]
    return [(key, repeated) for key, repeated in found if repeated]


def find_orphans(con: duckdb.DuckDBPyConnection) -> list[Orphans]:
    """The relations that have rows pointing at nothing (an empty list: the warehouse is consistent)."""
    result = []
    for relation in relations():
        rows = con.execute(relation.orphan_sql()).fetchall()[0][0]
        if rows:
            result.append(Orphans(relation, int(rows)))
    return result
