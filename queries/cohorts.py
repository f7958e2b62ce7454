"""Named cohort definitions: `queries/cohorts/NAME/vN.toml`, versioned like the views.

A cohort definition names the patients an analysis is about, as ATLAS cohort definitions do: a cohort view
and inclusion rules applied in order, each a predicate over the view's columns (checked like `--where`).

    name = "adults_in_cr"
    version = 1
    description = "Adults who reached complete remission after induction"
    view = "cohort_patient"

    [[rules]]
    label = "Adults (18 years or more at diagnosis)"
    where = "age >= 18"

    [[rules]]
    label = "Complete remission after induction"
    where = "complete_remission"

`--cohort NAME` (or NAME@vN) on every analysis reads the view restricted to the patients every rule keeps;
the attrition table (`table1 --attrition`) counts, rule by rule, the patients left and dropped. A version's
rules are identified by a checksum (`sha256`, over the view and the rules, not the prose), recorded in the
outputs and extracts that use it: a change of rules is a new version file, never an edit.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

COHORTS_DIR = Path(__file__).resolve().parent / "cohorts"
_FILE_NAME = re.compile(r"^v(?P<version>[1-9][0-9]*)\.toml$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class CohortDefinitionError(ValueError):
    """A cohort definition file that is wrong (names the file)."""


@dataclass(frozen=True)
class CohortRule:
    label: str
    where: str


@dataclass(frozen=True)
class CohortDefinition:
    name: str
    version: int
    description: str
    view: str
    rules: tuple[CohortRule, ...]
    path: Path

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def sha256(self) -> str:
        """Checksum of what selects the patients: the view and the rules in order (not the prose)."""
        content = {"view": self.view, "rules": [r.where for r in self.rules]}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    @property
    def where(self) -> str | None:
        """Every rule at once: the patients the cohort holds."""
        if not self.rules:
            return None
        return " AND ".join(f"({rule.where})" for rule in self.rules)


def parse_cohort_file(path: Path) -> CohortDefinition:
    match = _FILE_NAME.match(path.name)
    if not match:
        raise CohortDefinitionError(f"{path}: a cohort definition file is named vN.toml (N = 1, 2, ...)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CohortDefinitionError(f"{path}: cannot read the cohort definition: {exc}") from None
    unknown = sorted(set(raw) - {"name", "version", "description", "view", "rules"})
    if unknown:
        raise CohortDefinitionError(f"{path}: unknown keys {', '.join(unknown)}")
    name, version = raw.get("name"), raw.get("version")
    if name != path.parent.name or version != int(match["version"]):
        raise CohortDefinitionError(
            f"{path}: the file says {name} v{version}, the path says {path.parent.name} v{match['version']}"
        )
    if not isinstance(name, str) or not _NAME.match(name):
        raise CohortDefinitionError(f"{path}: a cohort name is snake_case (a-z, 0-9, _)")
    rules = []
    for number, rule in enumerate(raw.get("rules", []), start=1):
        if not isinstance(rule, dict) or set(rule) != {"label", "where"}:
            raise CohortDefinitionError(f"{path}: rule {number} needs a label and a where, nothing else")
        rules.append(CohortRule(label=str(rule["label"]), where=str(rule["where"])))
    view = raw.get("view", "cohort_patient")
    if not isinstance(view, str) or not _NAME.match(view):
        raise CohortDefinitionError(f"{path}: view {view!r} is not a view name")
    return CohortDefinition(
        name=name,
        version=version,
        description=str(raw.get("description", "")),
        view=view,
        rules=tuple(rules),
        path=path,
    )


def load_cohorts(cohorts_dir: Path = COHORTS_DIR) -> list[CohortDefinition]:
    """Every shipped cohort definition, by name then version."""
    return [parse_cohort_file(path) for path in sorted(cohorts_dir.glob("*/v*.toml"))]


def find_cohort(
    name: str, version: int | None = None, cohorts_dir: Path = COHORTS_DIR
) -> CohortDefinition | None:
    """A shipped definition (the latest version when `version` is None); None when no cohort has that name."""
    versions = sorted((c for c in load_cohorts(cohorts_dir) if c.name == name), key=lambda c: c.version)
    if not versions:
        return None
    if version is None:
        return versions[-1]
    for definition in versions:
        if definition.version == version:
            return definition
    shipped = ", ".join(f"v{c.version}" for c in versions)
    raise CohortDefinitionError(f"cohort {name} has no version {version}; shipped: {shipped}")
