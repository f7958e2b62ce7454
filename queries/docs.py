"""The data dictionary of the views, generated from their headers.

python -m queries.docs > docs/views.md
"""

from __future__ import annotations

from queries import load_definitions


def render() -> str:
    definitions = load_definitions()
    lines = [
        "# Views: the data dictionary",
        "",
        "Generated from the headers of `queries/views/NAME/vN.sql` by `python -m queries.docs`; a test",
        "keeps it current. Apply them with `cgdw views apply`: each version is the view `NAME_vN`, and",
        "`NAME` selects from the latest version. A released version never changes (`cgdw views list` shows",
        "the state of each). Views read other views by pinned version.",
        "",
        "| view | version | reads |",
        "|---|---|---|",
    ]
    for d in definitions:
        reads = ", ".join(f"`{dep}`" for dep in d.depends)
        lines.append(f"| [`{d.name}`](#{d.relation}) | {d.version} | {reads} |")
    for d in sorted(definitions, key=lambda d: (d.name, d.version)):
        lines += ["", f"## {d.relation}", "", d.description]
        if d.materialize:
            lines += [
                "",
                f"Materialised: `cgdw views apply` also stores the rows as `{d.materialized_table}`, which",
                "`cgdw table1`, `outcomes` and `report` read while no load has committed since.",
            ]
        lines += ["", "| column | description |", "|---|---|"]
        lines += [f"| `{column}` | {text.replace('|', '/')} |" for column, text in d.columns.items()]
        lines += [
            "",
            f"SQL: [`queries/views/{d.name}/v{d.version}.sql`](../queries/views/{d.name}/v{d.version}.sql)",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
