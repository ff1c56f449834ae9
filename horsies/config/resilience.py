"""Worker retry/backoff on database errors (app-and-config.md §6.3, workers.md §12)."""

from __future__ import annotations

import random

import msgspec

from horsies.config._check import Collector
from horsies.errors import ErrorCode

__all__ = ["MIN_BACKOFF_MS", "WorkerResilienceConfig"]

MIN_BACKOFF_MS = 100.0
_JITTER = 0.25


class WorkerResilienceConfig(msgspec.Struct, kw_only=True, frozen=True):
    """How a worker retries its own database work and how often it polls."""

    db_retry_initial_ms: int = 500
    db_retry_max_ms: int = 30_000
    db_retry_max_attempts: int = 0
    notify_poll_interval_ms: int = 5_000

    def __post_init__(self) -> None:
        checks = Collector("WorkerResilienceConfig", ErrorCode.CONFIG_INVALID_RESILIENCE)
        initial_ok = checks.check_int("db_retry_initial_ms", self.db_retry_initial_ms, 100, 60_000)
        max_ok = checks.check_int("db_retry_max_ms", self.db_retry_max_ms, 500, 300_000)
        checks.check_int("db_retry_max_attempts", self.db_retry_max_attempts, 0, 10_000)
        checks.check_int("notify_poll_interval_ms", self.notify_poll_interval_ms, 1_000, 300_000)
        if initial_ok and max_ok and self.db_retry_max_ms < self.db_retry_initial_ms:
            checks.add(
                "db_retry_max_ms must be >= db_retry_initial_ms",
                notes=[
                    f"db_retry_initial_ms = {self.db_retry_initial_ms}",
                    f"db_retry_max_ms = {self.db_retry_max_ms}",
                ],
            )
        checks.raise_if_any()

    def retry_allowed(self, n: int) -> bool:
        """Whether the ``n``-th consecutive failure (1-based) may be retried."""
        return self.db_retry_max_attempts == 0 or n <= self.db_retry_max_attempts

    def backoff_ms(self, n: int, *, rng: random.Random | None = None) -> float:
        """Delay before retrying after the ``n``-th consecutive failure (n >= 1).

        ``base = min(max, initial * 2**(n-1))``, jittered by ±25 %, at least 100 ms.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1 (got {n})")
        # Cap the exponent before multiplying: n can grow without bound when
        # db_retry_max_attempts is 0.
        doublings = min(n - 1, 32)
        base = float(min(self.db_retry_max_ms, self.db_retry_initial_ms * 2**doublings))
        spread = _JITTER * base
        uniform = (rng or random).uniform
        return max(MIN_BACKOFF_MS, base + uniform(-spread, spread))
