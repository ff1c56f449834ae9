"""Unit tests need no database and no optional extra."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def pgserver_findable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PostgresConfig.embedded() only checks that pgserver can be found; make it
    findable where the `embedded` extra is not installed (wheel tests)."""
    real = importlib.util.find_spec
    if real("pgserver") is not None:
        yield
        return

    def find_spec(name: str, package: str | None = None) -> Any:
        if name == "pgserver":
            return importlib.machinery.ModuleSpec("pgserver", None)
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    yield
