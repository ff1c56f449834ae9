"""The retry decision of a worker (lifecycle-and-schema.md §3.2, retry.md §3, §4.2).

The deadline's part of the decision (a retry must fall before good_until, by
the database's clock) is the cycle statement's: tests/integration/test_cycle.py.
"""

from __future__ import annotations

from typing import Any

import orjson

from horsies.worker.endings import retry_after, retry_delay_seconds
from horsies.worker.recovery import stale_reason


def decide(policy: dict[str, Any] | None, code: str | None, *, retry_count: int = 0,
           options: str | None = None) -> float | None:
    max_retries = 0 if policy is None else policy["max_retries"]
    stored = options if options is not None else orjson.dumps({"retry_policy": policy}).decode()
    return retry_after("t", stored, retry_count, max_retries, code)


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
    assert decide(fixed(5, 7), "X") == 5
    assert decide(fixed(5, 7), "X", retry_count=1) == 7
    assert decide(fixed(5, 7), "X", retry_count=2) is None  # exhausted
    assert decide(fixed(5, 5), "Y") is None  # not listed
    assert decide(fixed(5, 5), "x") is None  # case-sensitive
    assert decide(fixed(5, 5), None) is None
    assert decide(None, "X") is None  # no policy


def test_an_unreadable_stored_policy_schedules_no_retry() -> None:
    assert decide(fixed(5), "X", options="{not json") is None
    assert decide(fixed(5), "X", options='{"retry_policy": {"auto_retry_for": 3}}') is None


def test_exponential_delays_do_not_overflow() -> None:
    policy = {"intervals": [1], "backoff_strategy": "exponential", "jitter": False}
    assert retry_delay_seconds(policy, 10**6) == 2.0**32


def test_reaper_crash_text() -> None:
    assert stale_reason(300_000) == "Worker process crashed (no runner heartbeat for 300000ms = 300.0s)"
