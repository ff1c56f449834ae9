"""The worker: `horsies worker` or, inside a program, `Worker(app, config)`.

The names load on first use: worker children import `horsies.worker.child`
through this package and must not pay for the main process's machinery
(psycopg, asyncio).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from horsies.worker.config import WorkerConfig
    from horsies.worker.main import Worker, spawn_children
    from horsies.worker.run import run_worker

__all__ = ["Worker", "WorkerConfig", "run_worker", "spawn_children"]

_HOMES = {
    "Worker": "horsies.worker.main",
    "WorkerConfig": "horsies.worker.config",
    "run_worker": "horsies.worker.run",
    "spawn_children": "horsies.worker.main",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value
