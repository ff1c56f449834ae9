"""The package version: from the installed metadata when available, else the source default."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__: str = version("horsies")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"
