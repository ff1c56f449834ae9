"""WorkerConfig: how one worker runs (the app's AppConfig holds the rest)."""

from __future__ import annotations

import logging
import os

import msgspec


def _cpu_count() -> int:
    return os.cpu_count() or 1


class WorkerConfig(msgspec.Struct, kw_only=True, frozen=True):
    app_locator: str
    queues: list[str] | None = None
    processes: int = msgspec.field(default_factory=_cpu_count)
    max_claim_batch: int = 2
    max_claim_per_worker: int = 0
    # Most tasks in one run of a child (runs.md §1); 1 turns runs off.
    max_run_size: int = 256
    imports: list[str] = msgspec.field(default_factory=list)
    sys_path_roots: list[str] = msgspec.field(default_factory=list)
    loglevel: int = logging.INFO
    shutdown_timeout_s: float | None = None

    def __post_init__(self) -> None:
        for name, low in (("processes", 1), ("max_claim_batch", 1), ("max_claim_per_worker", 0),
                          ("max_run_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"WorkerConfig.{name} must be an int >= {low}, got {value!r}")
        if self.shutdown_timeout_s is not None and self.shutdown_timeout_s <= 0:
            raise ValueError("WorkerConfig.shutdown_timeout_s must be > 0 when set")
