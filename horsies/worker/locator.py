"""Finding the app from a locator: `package.module:attr` or `/path/file.py:attr`."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from horsies.app import Horsies


def load_app(locator: str, sys_path_roots: list[str] | None = None) -> Horsies:
    """Import the module a locator names and return its Horsies attribute."""
    from horsies.app import Horsies, import_file

    for root in reversed(sys_path_roots or []):
        if root not in sys.path:
            sys.path.insert(0, root)
    module_part, sep, attr = locator.rpartition(":")
    if not sep or not module_part or not attr:
        raise ValueError(f"app locator must look like 'module:attr' or 'file.py:attr': {locator!r}")
    if module_part.endswith(".py") or os.sep in module_part:
        module = import_file(os.path.realpath(module_part))
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_part)
    app = getattr(module, attr, None)
    if not isinstance(app, Horsies):
        raise ValueError(f"{locator!r} is not a Horsies app (got {type(app).__name__})")
    return app
