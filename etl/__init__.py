"""cgdw: clinical-genomics data warehouse ETL (loaders, validation, CLI)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cgdw")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
