"""Task retry policies and their delays (retry.md §2, §3).

Unlike the other configuration structs, an invalid ``RetryPolicy`` raises
``ValueError`` (the first problem found), as retry.md specifies.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import msgspec
import msgspec.structs

from horsies.codes import error_code_problem
from horsies.config._check import bool_problem, int_problem, sequence_problem

if TYPE_CHECKING:
    from horsies.codes import BuiltInTaskCode

__all__ = ["BackoffStrategy", "RetryPolicy", "retry_policy_problem"]

BackoffStrategy = Literal["fixed", "exponential"]
_STRATEGIES: tuple[str, ...] = ("fixed", "exponential")
_MAX_RETRIES = 20
_MAX_INTERVALS = 20
_MAX_INTERVAL_SECONDS = 86_400
_JITTER = 0.25
_MIN_DELAY_SECONDS = 1.0


class RetryPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """When and how often a failed task is retried.

    ``auto_retry_for`` holds plain strings and built-in code members (which are
    ``str`` enums); both are matched by their string value. The field is typed
    ``list[str]`` because msgspec cannot decode a union of two str-like types.
    """

    max_retries: int = 3
    intervals: list[int] = msgspec.field(default_factory=lambda: [60, 300, 900])
    backoff_strategy: BackoffStrategy = "fixed"
    jitter: bool = True
    auto_retry_for: list[str]

    def __post_init__(self) -> None:
        problem = retry_policy_problem(self)
        if problem is not None:
            raise ValueError(problem)
        # Any sequence is accepted; lists are what is stored.
        msgspec.structs.force_setattr(self, "intervals", list(self.intervals))
        msgspec.structs.force_setattr(self, "auto_retry_for", list(self.auto_retry_for))

    @classmethod
    def fixed(
        cls,
        intervals: Sequence[int],
        *,
        auto_retry_for: Sequence[str | BuiltInTaskCode],
        jitter: bool = True,
    ) -> RetryPolicy:
        """Fixed delays; ``max_retries = len(intervals)``."""
        problem = sequence_problem("intervals", intervals)
        if problem is not None:
            raise ValueError(problem)
        return cls(
            max_retries=len(intervals),
            intervals=list(intervals),
            backoff_strategy="fixed",
            jitter=jitter,
            auto_retry_for=auto_retry_for,  # type: ignore[arg-type]  # checked in __post_init__
        )

    @classmethod
    def exponential(
        cls,
        base_seconds: int,
        *,
        max_retries: int,
        auto_retry_for: Sequence[str | BuiltInTaskCode],
        jitter: bool = True,
    ) -> RetryPolicy:
        """Doubling delays from ``base_seconds``; ``intervals = [base_seconds]``."""
        return cls(
            max_retries=max_retries,
            intervals=[base_seconds],
            backoff_strategy="exponential",
            jitter=jitter,
            auto_retry_for=auto_retry_for,  # type: ignore[arg-type]  # checked in __post_init__
        )

    def base_delay_for_retry(self, n: int) -> float:
        """Delay in seconds of retry ``n`` (1 = first retry) before jitter."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"retry number must be an int >= 1 (got {n!r})")
        if self.backoff_strategy == "exponential":
            return float(self.intervals[0] * 2 ** (n - 1))
        return float(self.intervals[min(n - 1, len(self.intervals) - 1)])

    def delay_for_retry(self, n: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``n`` (1 = first retry), jitter applied.

        With ``jitter`` the delay ``d`` becomes ``d + uniform(-0.25 d, +0.25 d)``;
        the result is never below 1 second.
        """
        delay = self.base_delay_for_retry(n)
        if self.jitter:
            spread = _JITTER * delay
            delay += (rng or random).uniform(-spread, spread)
        return max(_MIN_DELAY_SECONDS, delay)

    def retries_on(self, error_code: object) -> bool:
        """Whether an attempt that failed with ``error_code`` is listed for retry."""
        if not isinstance(error_code, str):
            return False
        value = _code_value(error_code)
        return any(_code_value(entry) == value for entry in self.auto_retry_for)


def _code_value(code: str) -> str:
    """The plain string of a code (a str enum member compares by its value)."""
    value = getattr(code, "value", code)
    return value if isinstance(value, str) else str(code)


def retry_policy_problem(policy: RetryPolicy) -> str | None:
    """The first reason ``policy`` is invalid, or ``None``.

    Also re-checks a built policy whose lists were mutated in place (``app.check()``).
    """
    for check in (_field_problem, _consistency_problem, _auto_retry_for_problem):
        problem = check(policy)
        if problem is not None:
            return problem
    return None


def _field_problem(policy: RetryPolicy) -> str | None:
    problem = sequence_problem("intervals", policy.intervals)
    if problem is not None:
        return problem
    count = len(policy.intervals)
    if not 1 <= count <= _MAX_INTERVALS:
        return f"intervals must have between 1 and {_MAX_INTERVALS} entries (got {count})"
    for index, interval in enumerate(policy.intervals):
        problem = int_problem(f"intervals[{index}]", interval, 1, _MAX_INTERVAL_SECONDS)
        if problem is not None:
            return problem
    problem = int_problem("max_retries", policy.max_retries, 1, _MAX_RETRIES) or bool_problem(
        "jitter", policy.jitter
    )
    if problem is not None:
        return problem
    if not isinstance(policy.backoff_strategy, str) or policy.backoff_strategy not in _STRATEGIES:
        return (
            f"backoff_strategy must be 'fixed' or 'exponential' (got {policy.backoff_strategy!r})"
        )
    return None


def _consistency_problem(policy: RetryPolicy) -> str | None:
    count = len(policy.intervals)
    if policy.backoff_strategy == "fixed" and count != policy.max_retries:
        return (
            f"intervals has {count} entries but max_retries is {policy.max_retries}: "
            "a fixed policy needs one interval per retry"
        )
    if policy.backoff_strategy == "exponential" and count != 1:
        return (
            f"intervals has {count} entries: an exponential policy needs exactly one "
            "interval, the base delay"
        )
    return None


def _auto_retry_for_problem(policy: RetryPolicy) -> str | None:
    problem = sequence_problem("auto_retry_for", policy.auto_retry_for)
    if problem is not None:
        return problem
    if len(policy.auto_retry_for) == 0:
        return "auto_retry_for must list at least one error code"
    for index, entry in enumerate(policy.auto_retry_for):
        problem = error_code_problem(entry)
        if problem is None:
            continue
        if isinstance(entry, str) and entry.endswith(("Error", "Exception")):
            problem += "; auto_retry_for matches error codes, not exception classes"
        return f"auto_retry_for[{index}]: {problem}"
    return None


