"""Source layouts: the declarative mapping of one group's export onto cgdw's canonical records.

A layout is a TOML file in etl/sources/layouts/ (or any .toml path given with --layout or --protocol):
file format, encoding, decimal and date conventions, which source column feeds which canonical field, and
the code lists that translate source codes. Adding a protocol is a layout file and a test, not code.

Optional keys under [layout]: `thousands_separator` (without it, a number holding the mark that is not the
decimal mark is ambiguous and quarantined), `export_date_pattern` (a regular expression over the file name
whose first group, else whole match, is the day the source exported it, in `export_date_format`,
default %Y-%m-%d): an export older than one already loaded is refused (docs/loading.md).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from etl.errors import CgdwError
from etl.privacy import identifier_columns

# The packaged layouts sit with the source kinds they describe.
LAYOUT_DIR = Path(__file__).resolve().parents[1] / "sources" / "layouts"

FieldType = Literal["string", "decimal", "integer", "date", "code", "flag"]
FIELD_TYPES: tuple[str, ...] = ("string", "decimal", "integer", "date", "code", "flag")


@dataclass(frozen=True)
class CodeList:
    name: str
    mapping: dict[str, Any]  # source code as written -> canonical value (str or bool)
    missing: tuple[str, ...]  # source codes meaning "not evaluated / unknown"

    @property
    def lookup(self) -> dict[str, Any]:
        """Upper-cased source code -> canonical value: codes match case-insensitively."""
        return {code.upper(): value for code, value in self.mapping.items()}

    def allowed(self) -> str:
        return ", ".join([*self.mapping, *self.missing])


@dataclass(frozen=True)
class FieldSpec:
    name: str  # canonical field
    column: str  # source column
    type: FieldType
    codes: CodeList | None = None
    scale: float | None = None
    required: bool = False


@dataclass(frozen=True)
class Layout:
    name: str
    kind: str
    description: str
    file_format: Literal["csv", "xlsx"]
    fields: dict[str, FieldSpec]
    markers: dict[str, FieldSpec] = field(default_factory=dict)
    trial_group: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    decimal_comma: bool = False
    thousands_separator: str | None = None  # None: a number holding the other mark is ambiguous
    date_format: str = "%Y-%m-%d"
    sheet: str | None = None
    ignored_columns: frozenset[str] = frozenset()
    export_date_pattern: re.Pattern[str] | None = None  # over the file name: first group, else the match
    export_date_format: str = "%Y-%m-%d"
    path: Path | None = None

    @property
    def source_columns(self) -> list[str]:
        return [spec.column for spec in (*self.fields.values(), *self.markers.values())]

    def source_column(self, canonical: str) -> str | None:
        spec = self.fields.get(canonical) or self.markers.get(canonical)
        return spec.column if spec else None

    @property
    def decimal_mark(self) -> str:
        return "," if self.decimal_comma else "."

    @property
    def date_format_label(self) -> str:
        return _format_label(self.date_format)

    @property
    def export_date_format_label(self) -> str:
        return _format_label(self.export_date_format)


def _format_label(date_format: str) -> str:
    return date_format.replace("%d", "dd").replace("%m", "mm").replace("%Y", "yyyy")


def available_layouts(kind: str | None = None) -> list[str]:
    names = sorted(p.stem for p in LAYOUT_DIR.glob("*.toml"))
    return [n for n in names if kind is None or load_layout(n).kind == kind]


def load_layout(name_or_path: str | Path) -> Layout:
    """A packaged layout by name (graall, fralle, lab) or a TOML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = LAYOUT_DIR / f"{name_or_path}.toml"
        if not path.exists():
            known = ", ".join(available_layouts())
            raise CgdwError(f"unknown layout {name_or_path!r}: known layouts are {known}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CgdwError(f"{path}: cannot read layout: {exc}") from exc
    try:
        return _parse_layout(raw, path)
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise CgdwError(f"{path}: invalid layout: {exc}") from exc


def _parse_layout(raw: dict[str, Any], path: Path) -> Layout:
    head = raw["layout"]
    code_lists = {
        name: CodeList(
            name=name,
            mapping={str(k).strip(): v for k, v in spec["map"].items()},
            missing=tuple(str(m).strip() for m in spec.get("missing", [])),
        )
        for name, spec in raw.get("codes", {}).items()
    }

    def field_spec(name: str, spec: dict[str, Any], default_type: str = "string") -> FieldSpec:
        ftype = spec.get("type", default_type)
        if ftype not in FIELD_TYPES:
            raise ValueError(f"field {name}: type {ftype!r} is not one of {', '.join(FIELD_TYPES)}")
        codes = None
        if ftype in ("code", "flag"):
            if spec.get("codes") not in code_lists:
                raise ValueError(
                    f"field {name}: code list {spec.get('codes')!r} is not defined under [codes]"
                )
            codes = code_lists[spec["codes"]]
        return FieldSpec(
            name=name,
            column=spec["column"],
            type=ftype,
            codes=codes,
            scale=spec.get("scale"),
            required=bool(spec.get("required", False)),
        )

    fields = {name: field_spec(name, spec) for name, spec in raw["fields"].items()}
    markers = {name: field_spec(name, spec, "code") for name, spec in raw.get("markers", {}).items()}
    pattern = head.get("export_date_pattern")
    layout = Layout(
        name=head["name"],
        kind=head["kind"],
        description=head.get("description", ""),
        file_format=head["file_format"],
        fields=fields,
        markers=markers,
        trial_group=head.get("trial_group"),
        delimiter=head.get("delimiter", ","),
        encoding=head.get("encoding", "utf-8"),
        decimal_comma=bool(head.get("decimal_comma", False)),
        thousands_separator=head.get("thousands_separator"),
        date_format=head.get("date_format", "%Y-%m-%d"),
        sheet=head.get("sheet"),
        ignored_columns=frozenset(head.get("ignored_columns", [])),
        export_date_pattern=re.compile(pattern) if pattern is not None else None,
        export_date_format=head.get("export_date_format", "%Y-%m-%d"),
        path=path,
    )
    separator = layout.thousands_separator
    if separator is not None and (
        len(separator) != 1 or separator.isdigit() or separator in (layout.decimal_mark, layout.delimiter)
    ):
        raise ValueError(
            f"thousands_separator {separator!r} must be one character, not a digit, the decimal mark "
            "or the delimiter"
        )
    # A layout may not even name a direct identifier: such a column must never be read.
    leaked = identifier_columns([*layout.source_columns, *layout.ignored_columns])
    if leaked:
        raise ValueError(f"columns {', '.join(leaked)} are direct identifiers and may not be mapped")
    return layout
