"""Versioned SQL views: `queries/views/NAME/vN.sql`, one SELECT per file, like a dbt or sqlmesh model.

Each file starts with a header of `--` comment lines:

    -- name: cohort_patient
    -- version: 1
    -- depends: patient, enrolment, endpoint_v1        (tables, and other views as NAME_vN)
    -- materialize: table                                (optional: also stored as a table, see below)
    -- attributes: patient, mrd                          (optional: the stable name adds the columns of
                                                            generated views: patient = the declared patient
                                                            attributes, queries/attributes.py; mrd = the MRD
                                                            status per time point and method, queries/mrd.py)
    -- What the view is, in prose (any number of lines).
    -- columns:
    --   patient_id: warehouse patient key
    --   ...

then the SELECT. A view refers to another view by its pinned version (`endpoint_v1`), never by the stable
name, so releasing `endpoint` v2 cannot change what `cohort_patient` v1 returns. The checksum that makes a
released version immutable covers the SELECT only: the header is documentation and may be improved.

`-- materialize: table` asks `cgdw views apply` to store the version's rows as NAME_vN_materialized too,
for views that analyses read whole on large cohorts (cohort_patient). The view stays the definition;
readers use the table only while it is fresh (etl/views.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

VIEWS_DIR = Path(__file__).resolve().parent / "views"
_FILE_NAME = re.compile(r"^v(?P<version>[1-9][0-9]*)\.sql$")
_PINNED = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)_v(?P<version>[1-9][0-9]*)$")
_HEADER_FIELD = re.compile(
    r"^--\s*(?P<key>name|version|depends|materialize|attributes|columns)\s*:\s*(?P<value>.*)$"
)
# `-- attributes:` values -> the generated view the stable name joins.
JOINABLE = {"patient": "patient_attribute", "mrd": "patient_mrd"}
_COLUMN = re.compile(r"^--\s{2,}(?P<column>[a-z_][a-z0-9_]*)\s*:\s*(?P<description>.+)$")


def sql_checksum(sql: str) -> str:
    """Checksum of a SELECT with trailing blanks and a final semicolon ignored."""
    normalized = "\n".join(line.rstrip() for line in sql.strip().rstrip(";").splitlines())
    return hashlib.sha256(normalized.encode()).hexdigest()


class ViewDefinitionError(ValueError):
    """A view file whose header or dependencies are wrong (names the file and line)."""


@dataclass(frozen=True)
class ViewDefinition:
    name: str
    version: int
    description: str
    depends: tuple[str, ...]
    columns: dict[str, str]
    sql: str
    path: Path
    materialize: bool = False
    # Generated views whose latest version the stable name joins (`-- attributes: patient, mrd`).
    joins: tuple[str, ...] = ()

    @property
    def relation(self) -> str:
        """The versioned view in the warehouse: NAME_vN."""
        return f"{self.name}_v{self.version}"

    @property
    def materialized_table(self) -> str:
        """Where `-- materialize: table` stores the rows: NAME_vN_materialized."""
        return f"{self.relation}_materialized"

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    @cached_property
    def sql_sha256(self) -> str:
        return sql_checksum(self.sql)

    @property
    def view_dependencies(self) -> tuple[tuple[str, int], ...]:
        """(name, version) of the views this one reads."""
        found = (_PINNED.match(dep) for dep in self.depends)
        return tuple((m["name"], int(m["version"])) for m in found if m)


def parse_view_file(path: Path) -> ViewDefinition:
    name_in_path, match = path.parent.name, _FILE_NAME.match(path.name)
    if not match:
        raise ViewDefinitionError(f"{path}: a view file is named vN.sql (N = 1, 2, ...)")
    fields: dict[str, str] = {}
    description: list[str] = []
    columns: dict[str, str] = {}
    in_columns = False
    lines = path.read_text(encoding="utf-8").splitlines()
    body_start = len(lines)
    for number, line in enumerate(lines, start=1):
        if not line.startswith("--"):
            body_start = number - 1
            break
        field, column = _HEADER_FIELD.match(line), _COLUMN.match(line)
        if in_columns and column:
            columns[column["column"]] = column["description"].strip()
        elif field:
            fields[field["key"]] = field["value"].strip()
            in_columns = field["key"] == "columns"
        elif in_columns:
            raise ViewDefinitionError(f"{path}:{number}: expected '--   column: description', got {line!r}")
        else:
            description.append(line[2:].strip())
    for key in ("name", "version", "depends", "columns"):
        if key not in fields:
            raise ViewDefinitionError(f"{path}: the header has no '-- {key}:' line")
    if fields["name"] != name_in_path or fields["version"] != match["version"]:
        raise ViewDefinitionError(
            f"{path}: header says {fields['name']} v{fields['version']}, the path says "
            f"{name_in_path} v{match['version']}"
        )
    sql = "\n".join(lines[body_start:]).strip()
    if not sql:
        raise ViewDefinitionError(f"{path}: no SELECT after the header")
    if not columns:
        raise ViewDefinitionError(f"{path}: '-- columns:' lists no column")
    if fields.get("materialize", "table") != "table":
        raise ViewDefinitionError(f"{path}: '-- materialize:' takes one value, table")
    joined = [part.strip() for part in fields.get("attributes", "").split(",") if part.strip()]
    unknown = [part for part in joined if part not in JOINABLE]
    if unknown:
        raise ViewDefinitionError(
            f"{path}: '-- attributes:' takes {' and/or '.join(JOINABLE)}, not {', '.join(unknown)}"
        )
    return ViewDefinition(
        name=fields["name"],
        version=int(fields["version"]),
        description=" ".join(part for part in description if part),
        depends=tuple(dep.strip() for dep in fields["depends"].split(",") if dep.strip()),
        columns=columns,
        sql=sql,
        path=path,
        materialize="materialize" in fields,
        joins=tuple(JOINABLE[part] for part in joined),
    )


def load_definitions(views_dir: Path = VIEWS_DIR) -> list[ViewDefinition]:
    """Every view version shipped, in dependency order (a view after the versions it reads)."""
    definitions = [parse_view_file(path) for path in sorted(views_dir.glob("*/v*.sql"))]
    return dependency_order(definitions)


def dependency_order(definitions: list[ViewDefinition]) -> list[ViewDefinition]:
    by_key = {(d.name, d.version): d for d in definitions}
    for d in definitions:
        for dep in d.view_dependencies:
            if dep not in by_key:
                raise ViewDefinitionError(
                    f"{d.path}: depends on {dep[0]}_v{dep[1]}, which no view file defines"
                )
    ordered: list[ViewDefinition] = []
    state: dict[tuple[str, int], str] = {}

    def visit(d: ViewDefinition, chain: tuple[str, ...]) -> None:
        key = (d.name, d.version)
        if state.get(key) == "done":
            return
        if state.get(key) == "visiting":
            raise ViewDefinitionError(f"circular view dependency: {' -> '.join((*chain, d.relation))}")
        state[key] = "visiting"
        for dep in d.view_dependencies:
            visit(by_key[dep], (*chain, d.relation))
        state[key] = "done"
        ordered.append(d)

    for d in sorted(definitions, key=lambda d: (d.name, d.version)):
        visit(d, ())
    return ordered


def find_definition(name: str, version: int | None = None, views_dir: Path = VIEWS_DIR) -> ViewDefinition:
    """A shipped view version (the latest when version is None)."""
    versions = sorted(
        (d for d in load_definitions(views_dir) if d.name == name), key=lambda d: d.version, reverse=True
    )
    if not versions:
        known = sorted({d.name for d in load_definitions(views_dir)})
        raise ViewDefinitionError(f"no view named {name!r}; views: {', '.join(known)}")
    if version is None:
        return versions[0]
    for d in versions:
        if d.version == version:
            return d
    shipped = ", ".join(f"v{d.version}" for d in reversed(versions))
    raise ViewDefinitionError(f"view {name} has no version {version}; shipped: {shipped}")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'cohort_patient' -> (name, None); 'cohort_patient@v2' or 'cohort_patient_v2' -> (name, 2)."""
    if "@" in ref:
        name, _, version = ref.partition("@")
        if not re.fullmatch(r"v?[1-9][0-9]*", version):
            raise ViewDefinitionError(f"{ref!r}: a version is written NAME@vN, e.g. cohort_patient@v1")
        return name, int(version.lstrip("v"))
    pinned = _PINNED.match(ref)
    if pinned:
        return pinned["name"], int(pinned["version"])
    return ref, None


def view_sql(name: str, version: int = 1) -> str:
    """The SELECT of a shipped view version."""
    return find_definition(name, version).sql
