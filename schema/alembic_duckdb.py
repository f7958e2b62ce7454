"""Alembic's implementation for DuckDB: duckdb-engine ships none, and defining the class registers it.

Imported by the migration environment and by `current_revision`, never at `cgdw` start-up.
"""

from __future__ import annotations

from alembic.ddl.impl import DefaultImpl


class DuckDBImpl(DefaultImpl):
    """DuckDB runs DDL inside transactions: a migration that fails half-way leaves nothing behind."""

    __dialect__ = "duckdb"
    transactional_ddl = True
