"""Source layouts: the declarative mapping of one group's export onto cgdw's canonical records.

A layout is a TOML file in etl/sources/layouts/ (or any .toml path given with --layout or --protocol):
file format, encoding, decimal and date conventions, which source column feeds which canonical field, and
the code lists that translate source codes. Adding a protocol is a layout file and a test, not code.

Optional keys under [layout]: `thousands_separator` (without it, a number holding the mark that is not the
decimal mark is ambiguous and quarantined), `export_date_pattern` (a regular expression over the file name
whose first group, else whole match, is the day the source exported it, in `export_date_format`,
default %Y-%m-%d): an export older than one already loaded is refused (docs/loading.md).

Beyond the canonical fields, a clinical or lab layout may declare (docs/formats/declaring.md):

- `[attributes.NAME]`: a trial's own variable (a risk group, a mutation, a treatment arm), stored typed in
  `attribute_value` and described in the data dictionary `attribute`, so that it becomes a column of
  cohort_patient;
- `[[protocols]]`: the treatment protocols its export names, registered on load when the warehouse does
  not know them yet (a new trial needs no migration);
- `open = true` on a code list whose domain is open (the diagnosis): a code outside its map is kept as
  written and flagged in a warning, never rejected.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from etl.errors import CgdwError
from etl.privacy import identifier_columns
from queries import load_definitions
from queries.mrd import is_status_column

# The packaged layouts sit with the source kinds they describe.
LAYOUT_DIR = Path(__file__).resolve().parents[1] / "sources" / "layouts"

FieldType = Literal["string", "decimal", "integer", "date", "code", "flag", "days", "months"]
# days / months: a time already counted from diagnosis (a source that sends no dates).
FIELD_TYPES: tuple[str, ...] = ("string", "decimal", "integer", "date", "code", "flag", "days", "months")
DAYS_PER_MONTH = 30.4375  # 365.25 / 12: a month is kept as this many days, never rounded to whole days

# Fields whose values are open in the warehouse (no CHECK, no fixed list): only their code lists may be
# open. Any other field keeps a closed list, so that an unknown code is quarantined, never stored.
OPEN_FIELDS = ("diagnosis", "trial_group")

ATTRIBUTE_TYPES = ("categorical", "boolean", "number", "integer", "date", "day", "text")
ATTRIBUTE_KEYS = frozenset(
    {"column", "type", "label", "description", "unit", "scale", "codes", "levels", "time_point", "entity"}
)
ATTRIBUTE_KINDS = ("clinical", "lab")  # the kinds whose loaders store patient attributes
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")
POPULATIONS = ("adult", "pediatric", "all")
PROTOCOL_KEYS = frozenset({"code", "group", "trial_group", "population", "disease", "registry_id", "title"})
CODE_LIST_KEYS = frozenset({"map", "missing", "open"})


@dataclass(frozen=True)
class CodeList:
    name: str
    mapping: dict[str, Any]  # source code as written -> canonical value (str or bool)
    missing: tuple[str, ...]  # source codes meaning "not evaluated / unknown"
    open: bool = False  # a code outside the map is kept as written (and flagged), not rejected

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
class DeclaredAttribute:
    """A trial's own variable, declared in a layout's [attributes.NAME] table."""

    name: str  # snake_case: its column in cohort_patient
    column: str  # source column
    type: str  # one of ATTRIBUTE_TYPES (as the layout writes it)
    label: str
    description: str | None = None
    unit: str | None = None
    scale: float | None = None  # numbers: multiplied on load (a unit conversion)
    codes: CodeList | None = None  # categorical and boolean: source codes -> stored codes
    levels: tuple[tuple[str, str], ...] = ()  # categorical: (code, label), closed, in display order
    time_point: str | None = None
    entity: str = "patient"

    @property
    def data_type(self) -> str:
        """The type the dictionary stores: a source date is stored as days from diagnosis."""
        return "day" if self.type == "date" else self.type


@dataclass(frozen=True)
class DeclaredProtocol:
    """A treatment protocol a layout's export names; registered on load when the warehouse lacks it."""

    code: str
    trial_group: str
    population: str
    disease: str
    registry_id: str | None = None
    title: str | None = None


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
    attributes: dict[str, DeclaredAttribute] = field(default_factory=dict)
    protocols: tuple[DeclaredProtocol, ...] = ()

    @property
    def source_columns(self) -> list[str]:
        """Every column the layout maps: fields, markers and attributes (none is unexpected)."""
        specs = (*self.fields.values(), *self.markers.values())
        return [spec.column for spec in specs] + [a.column for a in self.attributes.values()]

    def source_column(self, canonical: str) -> str | None:
        spec = self.fields.get(canonical) or self.markers.get(canonical)
        return spec.column if spec else None

    @property
    def code_lists(self) -> dict[str, CodeList]:
        """The code lists its fields, markers and attributes use, in the order first used."""
        specs = (*self.fields.values(), *self.markers.values())
        used = [spec.codes for spec in specs] + [a.codes for a in self.attributes.values()]
        return {codes.name: codes for codes in used if codes is not None}

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
        raise CgdwError(f"{path}: invalid layout: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    """A KeyError says only the key: say that it is missing."""
    return f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)


def _code_lists(raw: dict[str, Any]) -> dict[str, CodeList]:
    lists = {}
    for name, spec in raw.get("codes", {}).items():
        unknown = sorted(set(spec) - CODE_LIST_KEYS)
        if unknown:
            raise ValueError(f"code list {name}: unknown keys {', '.join(unknown)}")
        is_open = spec.get("open", False)
        if not isinstance(is_open, bool):
            raise ValueError(f"code list {name}: open is true or false, not {is_open!r}")
        # An open list may translate nothing: every code is then kept as written.
        mapping = spec.get("map", {}) if is_open else spec["map"]
        lists[name] = CodeList(
            name=name,
            mapping={str(k).strip(): v for k, v in mapping.items()},
            missing=tuple(str(m).strip() for m in spec.get("missing", [])),
            open=is_open,
        )
    return lists


def _field_spec(
    name: str, spec: dict[str, Any], code_lists: dict[str, CodeList], default_type: str = "string"
) -> FieldSpec:
    ftype = spec.get("type", default_type)
    if ftype not in FIELD_TYPES:
        raise ValueError(f"field {name}: type {ftype!r} is not one of {', '.join(FIELD_TYPES)}")
    codes = None
    if ftype in ("code", "flag"):
        if spec.get("codes") not in code_lists:
            raise ValueError(f"field {name}: code list {spec.get('codes')!r} is not defined under [codes]")
        codes = code_lists[spec["codes"]]
        if codes.open and (ftype == "flag" or name not in OPEN_FIELDS):
            raise ValueError(
                f"field {name}: code list {codes.name} is open, but only the code lists of "
                f"{', '.join(OPEN_FIELDS)} may be (the values of {name} are a closed list)"
            )
    return FieldSpec(
        name=name,
        column=spec["column"],
        type=ftype,
        codes=codes,
        scale=spec.get("scale"),
        required=bool(spec.get("required", False)),
    )


def _parse_layout(raw: dict[str, Any], path: Path) -> Layout:
    head = raw["layout"]
    code_lists = _code_lists(raw)
    fields = {name: _field_spec(name, spec, code_lists) for name, spec in raw["fields"].items()}
    markers = {
        name: _field_spec(name, spec, code_lists, "code") for name, spec in raw.get("markers", {}).items()
    }
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
        attributes={
            name: _attribute(name, spec, code_lists) for name, spec in raw.get("attributes", {}).items()
        },
        protocols=tuple(_protocol(entry, head.get("trial_group")) for entry in raw.get("protocols", [])),
    )
    _check_separator(layout)
    _check_declarations(layout)
    # A layout may not even name a direct identifier: such a column must never be read.
    leaked = identifier_columns([*layout.source_columns, *layout.ignored_columns])
    if leaked:
        raise ValueError(f"columns {', '.join(leaked)} are direct identifiers and may not be mapped")
    return layout


def _check_separator(layout: Layout) -> None:
    separator = layout.thousands_separator
    if separator is not None and (
        len(separator) != 1 or separator.isdigit() or separator in (layout.decimal_mark, layout.delimiter)
    ):
        raise ValueError(
            f"thousands_separator {separator!r} must be one character, not a digit, the decimal mark "
            "or the delimiter"
        )


# --- declared attributes ----------------------------------------------------------------------------

Problem = Callable[[str], ValueError]  # a message -> the error naming the attribute


@cache
def reserved_attribute_names() -> frozenset[str]:
    """Names an attribute may not take: the columns of every shipped version of the views that the
    declared attributes join (cohort_patient), else the attribute would be left out of it."""
    views = [d for d in load_definitions() if "patient_attribute" in d.joins]
    return frozenset(column for d in views for column in d.columns)


def _attribute(name: str, spec: dict[str, Any], code_lists: dict[str, CodeList]) -> DeclaredAttribute:
    def problem(text: str) -> ValueError:
        return ValueError(f"attribute {name}: {text}")

    if not SNAKE_CASE.match(name):
        raise problem("a name is snake_case (a-z, 0-9 and _, a letter first), e.g. eln_risk")
    if name in reserved_attribute_names():
        raise problem(
            "cohort_patient already has a column of that name (a canonical field): choose another name"
        )
    if is_status_column(name):
        raise problem(
            "names of the form mrd_<time point>_<method>_positive|day|value are the MRD status columns "
            "computed from the MRD results (docs/mrd.md): choose another name"
        )
    unknown = sorted(set(spec) - ATTRIBUTE_KEYS)
    if unknown:
        raise problem(f"unknown keys {', '.join(unknown)} (known: {', '.join(sorted(ATTRIBUTE_KEYS))})")
    if not spec.get("column"):
        raise problem("column (the source column) must be given")
    atype = spec.get("type")
    if atype not in ATTRIBUTE_TYPES:
        raise problem(f"type {atype!r} is not one of {', '.join(ATTRIBUTE_TYPES)}")
    entity = spec.get("entity", "patient")
    if entity != "patient":
        raise problem(f"entity {entity!r}: a layout declares patient attributes only")
    _check_attribute_keys(atype, spec, problem)
    codes = _attribute_codes(atype, spec, code_lists, problem)
    levels = _levels(atype, spec, codes, problem)
    scale = spec.get("scale")
    return DeclaredAttribute(
        name=name,
        column=spec["column"],
        type=atype,
        label=str(spec.get("label", spec["column"])),
        description=spec.get("description"),
        unit=spec.get("unit"),
        scale=float(scale) if scale is not None else None,
        codes=codes,
        levels=levels,
        time_point=spec.get("time_point"),
        entity=entity,
    )


def _check_attribute_keys(atype: str, spec: dict[str, Any], problem: Problem) -> None:
    """Each key says something about some types only: elsewhere it is a mistake, not a no-op."""
    applies = {
        "codes": ("categorical", "boolean"),
        "levels": ("categorical",),
        "scale": ("number", "integer"),
        "unit": ("number", "integer"),
    }
    for key, types in applies.items():
        if key in spec and atype not in types:
            raise problem(f"{key} applies to {' and '.join(types)} attributes, not {atype}")


def _attribute_codes(
    atype: str, spec: dict[str, Any], code_lists: dict[str, CodeList], problem: Problem
) -> CodeList | None:
    if "codes" not in spec:
        return None
    codes = code_lists.get(spec["codes"])
    if codes is None:
        raise problem(f"code list {spec['codes']!r} is not defined under [codes]")
    if codes.open:
        raise problem(f"code list {codes.name} is open, but the levels of a layout's attribute are closed")
    kinds = {type(value) for value in codes.mapping.values()}
    expected = bool if atype == "boolean" else str
    if kinds - {expected}:
        word = "true or false" if atype == "boolean" else "a code (text)"
        raise problem(f"code list {codes.name} must map each source code to {word}")
    return codes


def _levels(
    atype: str, spec: dict[str, Any], codes: CodeList | None, problem: Problem
) -> tuple[tuple[str, str], ...]:
    """A categorical attribute's closed levels: as listed, else the distinct codes its list maps to."""
    if atype != "categorical":
        return ()
    if "levels" not in spec:
        if codes is None:
            raise problem("a categorical attribute needs levels, or codes (a code list under [codes])")
        return tuple((code, code) for code in dict.fromkeys(codes.mapping.values()))
    levels = []
    for level in spec["levels"]:
        if not isinstance(level, dict) or "code" not in level or set(level) - {"code", "label"}:
            raise problem('each level is {code = "...", label = "..."}')
        levels.append((str(level["code"]), str(level.get("label", level["code"]))))
    # Codes match case-insensitively (as every code of a layout): B and b would be one level.
    folded = [code.upper() for code, _ in levels]
    if not levels or len(set(folded)) != len(folded):
        raise problem("levels must list each code once (codes match whatever their case: B and b are one)")
    unknown = sorted({str(v) for v in codes.mapping.values()} - {code for code, _ in levels}) if codes else []
    if unknown:
        raise problem(f"code list {spec['codes']} maps to {', '.join(unknown)}, not among its levels")
    return tuple(levels)


# --- declared protocols -----------------------------------------------------------------------------


def _protocol(entry: dict[str, Any], layout_group: str | None) -> DeclaredProtocol:
    code = str(entry.get("code", "")).strip()
    where = f"protocol {code or '(no code)'}"
    unknown = sorted(set(entry) - PROTOCOL_KEYS)
    if unknown:
        known = ", ".join(sorted(PROTOCOL_KEYS))
        raise ValueError(f"{where}: unknown keys {', '.join(unknown)} (known: {known})")
    group = entry.get("trial_group", entry.get("group", layout_group))
    population = entry.get("population")
    given = {"code": code, "trial_group": group, "disease": entry.get("disease")}
    missing = [key for key, value in given.items() if not value]
    if missing:
        raise ValueError(f"{where}: {', '.join(missing)} must be given")
    if population not in POPULATIONS:
        raise ValueError(f"{where}: population {population!r} is not one of {', '.join(POPULATIONS)}")
    return DeclaredProtocol(
        code=code,
        trial_group=str(group),
        population=population,
        disease=str(entry["disease"]),
        registry_id=entry.get("registry_id"),
        title=entry.get("title"),
    )


def _check_declarations(layout: Layout) -> None:
    """What attributes and protocols a layout may declare, and that each source column means one thing."""
    if layout.attributes and layout.kind not in ATTRIBUTE_KINDS:
        raise ValueError(f"a {layout.kind} layout declares no attributes (only {', '.join(ATTRIBUTE_KINDS)})")
    if layout.protocols and layout.kind != "clinical":
        raise ValueError(f"a {layout.kind} layout declares no protocols (only clinical layouts do)")
    codes = [p.code for p in layout.protocols]
    if len(set(codes)) != len(codes):
        raise ValueError("a protocol is declared twice")
    used: dict[str, str] = {}
    named = [
        *((spec.column, f"field {name}") for name, spec in layout.fields.items()),
        *((spec.column, f"marker {name}") for name, spec in layout.markers.items()),
        *((a.column, f"attribute {name}") for name, a in layout.attributes.items()),
    ]
    for column, what in named:
        if column in used and what.startswith("attribute"):
            raise ValueError(f"{what}: column {column} is already mapped to {used[column]}")
        used.setdefault(column, what)
