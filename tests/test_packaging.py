"""An installed cgdw (a wheel, not this checkout) has every file it reads at run time: each data file of
the packages is matched by a package-data pattern of pyproject.toml."""

from __future__ import annotations

import tomllib

from tests.helpers import REPO

CODE = {".py", ".pyc"}


def test_every_data_file_of_the_packages_is_shipped_in_the_wheel() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = config["package-data"]
    unshipped = []
    for package in ("etl", "schema", "queries"):
        root = REPO / package
        for path in root.rglob("*"):
            if path.is_dir() or path.suffix in CODE or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(root)
            if not any(relative.match(pattern) for pattern in patterns.get(package, [])):
                unshipped.append(str(path.relative_to(REPO)))
    assert unshipped == [], f"add to [tool.setuptools.package-data] in pyproject.toml: {unshipped}"
