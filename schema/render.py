"""Render `op.create_table(...)` code for tables of the models, to paste into a hand-written migration.

Alembic autogenerate cannot reflect DuckDB (shared/stack-notes.md), so migrations are written by hand;
this renders the CREATE TABLE part from the models so that it cannot drift from them:

    python -m schema.render variant_call copy_number_call
"""

from __future__ import annotations

import sys

from alembic.autogenerate import render_python_code
from alembic.operations import ops

from schema.models import Base


def render(table_names: list[str]) -> str:
    tables = [t for t in Base.metadata.sorted_tables if t.name in table_names]
    missing = set(table_names) - {t.name for t in tables}
    if missing:
        raise SystemExit(f"no such tables in schema/models.py: {', '.join(sorted(missing))}")
    sequences = "\n".join(
        f'    op.execute("CREATE SEQUENCE seq_{t.name}")'
        for t in tables
        if f"seq_{t.name}" in Base.metadata._sequences
    )
    code = render_python_code(ops.UpgradeOps(ops=[ops.CreateTableOp.from_table(t) for t in tables]))
    # Relations stay in the models but are not created as FOREIGN KEY constraints (see migration 0003).
    body = "\n".join(
        line
        for line in code.splitlines()
        if "Alembic - please adjust" not in line
        and "end Alembic" not in line
        and "sa.ForeignKeyConstraint(" not in line
    )
    return f"{sequences}\n{body}\n"


if __name__ == "__main__":
    print(render(sys.argv[1:]), end="")
