"""The retry decision of the result writer (lifecycle-and-schema.md §3.2, retry.md §3, §4.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from horsies.worker.completer import next_retry_at, retry_delay_seconds
from horsies.worker.recovery import stale_reason

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def row(policy: dict[str, Any] | None, *, retry_count: int = 0,
        good_until: datetime | None = None) -> dict[str, Any]:
    return {"max_retries": 0 if policy is None else policy["max_retries"],
            "retry_count": retry_count, "good_until": good_until, "db_now": NOW,
            "task_options": orjson.dumps({"retry_policy": policy}).decode()}


def fixed(*intervals: int, codes: tuple[str, ...] = ("X",)) -> dict[str, Any]:
    return {"max_retries": len(intervals), "intervals": list(intervals),
            "backoff_strategy": "fixed", "jitter": False, "auto_retry_for": list(codes)}


def test_fixed_and_exponential_delays() -> None:
    assert [retry_delay_seconds(fixed(60, 300, 900), n) for n in (1, 2, 3, 4)] == [
        60, 300, 900, 900]
    exp = {"intervals": [30], "backoff_strategy": "exponential", "jitter": False}
    assert [retry_delay_seconds(exp, n) for n in range(1, 6)] == [30, 60, 120, 240, 480]


def test_jitter_stays_within_a_quarter_and_at_least_one_second() -> None:
    policy = fixed(60) | {"jitter": True}
    assert all(45 <= retry_delay_seconds(policy, 1) <= 75 for _ in range(500))
    assert all(retry_delay_seconds(fixed(1) | {"jitter": True}, 1) >= 1.0 for _ in range(500))


def test_retry_when_listed_and_retries_remain() -> None:
    assert next_retry_at(row(fixed(5, 5)), "X") == NOW + timedelta(seconds=5)
    assert next_retry_at(row(fixed(5, 5), retry_count=2), "X") is None  # exhausted
    assert next_retry_at(row(fixed(5, 5)), "Y") is None  # not listed
    assert next_retry_at(row(fixed(5, 5)), "x") is None  # case-sensitive
    assert next_retry_at(row(fixed(5, 5)), None) is None
    assert next_retry_at(row(None), "X") is None  # no policy


@pytest.mark.parametrize(("deadline_s", "retried"), [(None, True), (6, True), (5, False),
                                                     (3, False), (0, False), (-1, False)])
def test_good_until_caps_retries(deadline_s: int | None, retried: bool) -> None:
    deadline = None if deadline_s is None else NOW + timedelta(seconds=deadline_s)
    assert (next_retry_at(row(fixed(5), good_until=deadline), "X") is not None) is retried


def test_reaper_crash_text() -> None:
    assert stale_reason(300_000) == "Worker process crashed (no runner heartbeat for 300000ms = 300.0s)"
