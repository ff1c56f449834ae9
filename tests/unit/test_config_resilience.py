"""WorkerResilienceConfig (app-and-config.md §6.3, workers.md §12)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from horsies.config import WorkerResilienceConfig
from horsies.errors import ConfigurationError, ErrorCode, MultipleValidationErrors

RANGES = {
    "db_retry_initial_ms": (100, 60_000),
    "db_retry_max_ms": (500, 300_000),
    "db_retry_max_attempts": (0, 10_000),
    "notify_poll_interval_ms": (1_000, 300_000),
}


def _isolated(field: str, value: Any) -> dict[str, Any]:
    """Keep db_retry_max_ms >= db_retry_initial_ms while probing one field."""
    kwargs: dict[str, Any] = {field: value}
    if field == "db_retry_initial_ms":
        kwargs["db_retry_max_ms"] = 300_000
    if field == "db_retry_max_ms":
        kwargs["db_retry_initial_ms"] = 100
    return kwargs


def test_defaults() -> None:
    config = WorkerResilienceConfig()
    assert config.db_retry_initial_ms == 500
    assert config.db_retry_max_ms == 30_000
    assert config.db_retry_max_attempts == 0
    assert config.notify_poll_interval_ms == 5_000


@pytest.mark.parametrize("field", list(RANGES))
def test_range_edges(field: str) -> None:
    lo, hi = RANGES[field]
    for value in (lo, hi):
        assert getattr(WorkerResilienceConfig(**_isolated(field, value)), field) == value
    for value in (lo - 1, hi + 1):
        with pytest.raises(ConfigurationError) as info:
            WorkerResilienceConfig(**_isolated(field, value))
        assert info.value.code is ErrorCode.CONFIG_INVALID_RESILIENCE
        assert info.value.message == f"{field} must be between {lo} and {hi} (got {value})"


@pytest.mark.parametrize("field", list(RANGES))
@pytest.mark.parametrize("bad", [True, "500", 500.0, None])
def test_type_refusals(field: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        WorkerResilienceConfig(**{field: bad})
    assert info.value.code is ErrorCode.CONFIG_INVALID_RESILIENCE
    assert info.value.message.startswith(f"{field} must be an int")


def test_max_not_below_initial() -> None:
    WorkerResilienceConfig(db_retry_initial_ms=1_000, db_retry_max_ms=1_000)
    with pytest.raises(ConfigurationError) as info:
        WorkerResilienceConfig(db_retry_initial_ms=1_000, db_retry_max_ms=999)
    assert info.value.code is ErrorCode.CONFIG_INVALID_RESILIENCE
    assert info.value.message == "db_retry_max_ms must be >= db_retry_initial_ms"


def test_problems_collected() -> None:
    with pytest.raises(MultipleValidationErrors) as info:
        WorkerResilienceConfig(db_retry_max_attempts=-1, notify_poll_interval_ms=False)
    assert [e.code for e in info.value.errors] == [ErrorCode.CONFIG_INVALID_RESILIENCE] * 2


def test_backoff_bounds() -> None:
    config = WorkerResilienceConfig(db_retry_initial_ms=500, db_retry_max_ms=3_000)
    rng = random.Random(7)
    expected_bases = [500, 1_000, 2_000, 3_000, 3_000]
    for n, base in enumerate(expected_bases, start=1):
        for _ in range(50):
            delay = config.backoff_ms(n, rng=rng)
            assert 0.75 * base <= delay <= 1.25 * base
    # huge n does not overflow and stays at the cap
    assert config.backoff_ms(10_000, rng=rng) <= 1.25 * 3_000


def test_backoff_floor_and_n() -> None:
    config = WorkerResilienceConfig(db_retry_initial_ms=100, db_retry_max_ms=500)

    class Low(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return a

    assert config.backoff_ms(1, rng=Low()) == 100.0  # 75 ms raised to the 100 ms floor
    with pytest.raises(ValueError):
        config.backoff_ms(0)


def test_retry_allowed() -> None:
    assert WorkerResilienceConfig().retry_allowed(1_000_000)
    limited = WorkerResilienceConfig(db_retry_max_attempts=3)
    assert limited.retry_allowed(3)
    assert not limited.retry_allowed(4)
