"""The package version: a literal, so that `import horsies` need not read package metadata.

Keep it equal to ``version`` in pyproject.toml (tests/unit/test_import_cost.py checks).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
