"""What figures, tables and the report call columns and values: investigators' words instead of codes.

    --labels "ikzf1_status=IKZF1 status,Alt=IKZF1 altered,GL=Germline,log_wbc=log WBC"

A key is a column name or a value (`ikzf1_status.Alt=...` names the value of one column only, when a code
means different things in two columns). The attribute dictionary of the warehouse labels the declared
attributes and their levels (docs/attributes.md); `--labels` comes on top. Only what is shown changes:
JSON keeps the codes, so that a program never has to read labels back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from etl.errors import CgdwError

if TYPE_CHECKING:
    from etl.spark import Lake

_COLUMN = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class Labels:
    names: dict[str, str] = field(default_factory=dict)  # column or value -> label
    qualified: dict[tuple[str, str], str] = field(default_factory=dict)  # (column, value) -> label

    @classmethod
    def parse(cls, text: str | None) -> Labels:
        """`key=label,key=label`; a comma or an equals sign inside a label is written `\\,` or `\\=`."""
        names: dict[str, str] = {}
        qualified: dict[tuple[str, str], str] = {}
        if not text or not text.strip():
            return cls()
        for item in _split(text, ","):
            key, sep, label = (part.replace("\\,", ",") for part in _split_once(item))
            key, label = key.strip(), label.strip()
            if not sep or not key or not label:
                raise CgdwError(f"--labels: {item.strip()!r} is not KEY=LABEL (e.g. Alt=IKZF1 altered)")
            column, dot, value = key.partition(".")
            if dot and value and _COLUMN.fullmatch(column):  # `0.1=...` is a value with a dot
                qualified[(column, value)] = label
            else:
                names[key] = label
        return cls(names, qualified)

    def __or__(self, other: Labels) -> Labels:
        """These labels, with `other`'s on top (the command line's over the data dictionary's): a value
        `other` names for every column replaces what these name it in one column too."""
        kept = {key: label for key, label in self.qualified.items() if key[1] not in other.names}
        return Labels({**self.names, **other.names}, {**kept, **other.qualified})

    def __bool__(self) -> bool:
        return bool(self.names or self.qualified)

    def name(self, column: str) -> str:
        """A column's label, else the column."""
        return self.names.get(column, column)

    def groups(self, column: str, values: list[object]) -> dict[object, str]:
        """Each value's label, refused when two values would read the same (the groups of a table or a
        figure could no longer be told apart)."""
        named = {value: self.value(column, value) for value in values}
        seen: dict[str, object] = {}
        for value, label in named.items():
            if label in seen:
                raise CgdwError(
                    f"--labels: {column} values {seen[label]!s} and {value!s} would both read {label!r}"
                )
            seen[label] = value
        return named

    def value(self, column: str, value: object) -> str:
        """A value's label (of this column, else of any column), else the value as text."""
        text = "yes" if value is True else "no" if value is False else str(value)
        return self.qualified.get((column, text), self.names.get(text, text))

    def covariate(self, covariate: str) -> str:
        """A model term as the hazard-ratio tables name it: `ikzf1_status=Alt` (a group against the
        reference), `age`, `hsct_years(t)` (time-dependent)."""
        column, sep, value = covariate.partition("=")
        if sep:
            return f"{self.name(column)}: {self.value(column, value)}"
        if covariate.endswith("(t)"):
            return f"{self.name(covariate[:-3])}(t)"
        return self.name(covariate)


def _split(text: str, separator: str) -> list[str]:
    """Split on `separator` not preceded by a backslash."""
    parts, current, escaped = [], "", False
    for char in text:
        if char == separator and not escaped:
            parts.append(current)
            current = ""
            continue
        escaped = char == "\\" and not escaped
        current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def _split_once(item: str) -> tuple[str, str, str]:
    """KEY=LABEL at the first `=` not preceded by a backslash; `\\=` in the label is an equals sign."""
    for index, char in enumerate(item):
        if char == "=" and (index == 0 or item[index - 1] != "\\"):
            return item[:index], "=", item[index + 1 :].replace("\\=", "=")
    return item, "", ""


def dictionary_labels(declared: dict[str, tuple[str, tuple[tuple[str, str], ...]]]) -> Labels:
    """Labels from the attribute dictionary: {attribute: (label, ((code, label), ...))}."""
    names = {name: label for name, (label, _) in declared.items() if label and label != name}
    qualified = {
        (name, code): text for name, (_, levels) in declared.items() for code, text in levels if text != code
    }
    return Labels(names, qualified)


def warehouse_labels(db_path: Path | Lake, text: str | None = None) -> Labels:
    """The attribute dictionary's labels of the warehouse, with `--labels TEXT` on top."""
    from etl.analysis.cohort import declared_attributes

    declared = {name: (d.label, d.levels) for name, d in declared_attributes(db_path).items()}
    return dictionary_labels(declared) | Labels.parse(text)
