"""RetryPolicy: fields, constructors, validation and delays (retry.md §2, §3)."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from horsies.codes import ContractCode, OperationalErrorCode
from horsies.config import RetryPolicy


def test_defaults() -> None:
    policy = RetryPolicy(auto_retry_for=["UNHANDLED_EXCEPTION"])
    assert policy.max_retries == 3
    assert policy.intervals == [60, 300, 900]
    assert policy.backoff_strategy == "fixed"
    assert policy.jitter is True
    assert policy.auto_retry_for == ["UNHANDLED_EXCEPTION"]


def test_default_intervals_not_shared() -> None:
    a = RetryPolicy(auto_retry_for=["X"])
    b = RetryPolicy(auto_retry_for=["X"])
    assert a.intervals is not b.intervals


def test_struct_rules() -> None:
    policy = RetryPolicy(auto_retry_for=["X"])
    with pytest.raises(AttributeError):
        policy.max_retries = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryPolicy(auto_retry_for=["X"], retries=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        RetryPolicy()  # type: ignore[call-arg]


def test_fixed_constructor() -> None:
    policy = RetryPolicy.fixed([5, 5, 30], auto_retry_for=["LOCK_TIMEOUT"])
    assert policy.max_retries == 3
    assert policy.intervals == [5, 5, 30]
    assert policy.backoff_strategy == "fixed"
    assert policy.jitter is True
    assert RetryPolicy.fixed((7,), auto_retry_for=("A",), jitter=False).jitter is False


def test_exponential_constructor() -> None:
    policy = RetryPolicy.exponential(
        20, max_retries=6, auto_retry_for=["RATE_LIMITED"], jitter=False
    )
    assert policy.max_retries == 6
    assert policy.intervals == [20]
    assert policy.backoff_strategy == "exponential"
    assert policy.jitter is False


def test_sequences_stored_as_lists() -> None:
    policy = RetryPolicy(
        max_retries=2,
        intervals=(1, 2),  # type: ignore[arg-type]
        auto_retry_for=("A", "B"),  # type: ignore[arg-type]
    )
    assert policy.intervals == [1, 2] and isinstance(policy.intervals, list)
    assert policy.auto_retry_for == ["A", "B"] and isinstance(policy.auto_retry_for, list)


def test_builtin_members_kept() -> None:
    policy = RetryPolicy(auto_retry_for=[OperationalErrorCode.WORKER_CRASHED, "CUSTOM", "CUSTOM"])
    assert policy.auto_retry_for[0] is OperationalErrorCode.WORKER_CRASHED
    assert policy.retries_on("WORKER_CRASHED")
    assert policy.retries_on(OperationalErrorCode.WORKER_CRASHED)
    assert policy.retries_on("CUSTOM")
    assert not policy.retries_on("custom")
    assert not policy.retries_on(ContractCode.RETURN_TYPE_MISMATCH)
    assert not policy.retries_on(None)


def test_spec_examples_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=2, intervals=[10, 20, 30], auto_retry_for=["X"])
    with pytest.raises(ValueError, match="exactly one"):
        RetryPolicy(
            intervals=[10, 20],
            backoff_strategy="exponential",
            max_retries=2,
            auto_retry_for=["X"],
        )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_retries": 0, "intervals": [1]}, "max_retries"),
        ({"max_retries": 21, "intervals": [1] * 20}, "max_retries"),
        ({"max_retries": True, "intervals": [1]}, "max_retries"),
        ({"max_retries": "3"}, "max_retries"),
        ({"intervals": []}, "intervals"),
        ({"max_retries": 20, "intervals": [1] * 21}, "intervals"),
        ({"max_retries": 1, "intervals": [0]}, "intervals[0]"),
        ({"max_retries": 1, "intervals": [86_401]}, "intervals[0]"),
        ({"max_retries": 1, "intervals": [True]}, "intervals[0]"),
        ({"max_retries": 1, "intervals": [1.5]}, "intervals[0]"),
        ({"intervals": "123"}, "intervals"),
        ({"intervals": None}, "intervals"),
        ({"backoff_strategy": "linear"}, "backoff_strategy"),
        ({"backoff_strategy": None}, "backoff_strategy"),
        ({"jitter": 1}, "jitter"),
        ({"jitter": None}, "jitter"),
        ({"auto_retry_for": []}, "auto_retry_for"),
        ({"auto_retry_for": "X"}, "auto_retry_for"),
        ({"auto_retry_for": None}, "auto_retry_for"),
        ({"auto_retry_for": [""]}, "auto_retry_for[0]"),
        ({"auto_retry_for": ["ok", "X"]}, "auto_retry_for[0]"),
        ({"auto_retry_for": ["X", 5]}, "auto_retry_for[1]"),
        ({"auto_retry_for": ["9LIVES"]}, "auto_retry_for[0]"),
    ],
)
def test_refused(kwargs: dict[str, Any], field: str) -> None:
    kwargs.setdefault("auto_retry_for", ["X"])
    with pytest.raises(ValueError) as info:
        RetryPolicy(**kwargs)
    assert str(info.value).startswith(field)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": 1, "intervals": [1]},
        {"max_retries": 20, "intervals": [86_400] * 20},
        {"max_retries": 20, "intervals": [5], "backoff_strategy": "exponential"},
        {"auto_retry_for": ["TIMEOUT", "TIMEOUT_ERROR", "A1_B2"]},
    ],
)
def test_accepted_edges(kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("auto_retry_for", ["X"])
    RetryPolicy(**kwargs)


def test_class_name_refused_with_explanation() -> None:
    with pytest.raises(ValueError) as info:
        RetryPolicy(auto_retry_for=["TimeoutError"])
    message = str(info.value)
    assert "auto_retry_for" in message
    assert "error codes, not exception classes" in message
    RetryPolicy(auto_retry_for=["TIMEOUT"])


def test_constructors_validate_too() -> None:
    with pytest.raises(ValueError, match="intervals"):
        RetryPolicy.fixed([], auto_retry_for=["X"])
    with pytest.raises(ValueError, match="auto_retry_for"):
        RetryPolicy.fixed([1], auto_retry_for=[])
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy.exponential(5, max_retries=0, auto_retry_for=["X"])
    with pytest.raises(ValueError, match="intervals"):
        RetryPolicy.exponential(0, max_retries=2, auto_retry_for=["X"])


# --- delays (retry.md §3) ---------------------------------------------------


def test_fixed_delays_without_jitter() -> None:
    policy = RetryPolicy.fixed([60, 300, 900], auto_retry_for=["X"], jitter=False)
    assert [policy.delay_for_retry(n) for n in (1, 2, 3)] == [60.0, 300.0, 900.0]
    # beyond the list the last interval repeats
    assert policy.delay_for_retry(4) == 900.0
    assert isinstance(policy.delay_for_retry(1), float)


def test_exponential_delays_without_jitter() -> None:
    policy = RetryPolicy.exponential(30, max_retries=5, auto_retry_for=["X"], jitter=False)
    assert [policy.delay_for_retry(n) for n in range(1, 6)] == [30, 60, 120, 240, 480]
    assert policy.delay_for_retry(12) == 30 * 2**11  # no upper cap


def test_fixed_delays_with_jitter_bounds() -> None:
    policy = RetryPolicy.fixed([60, 300, 900], auto_retry_for=["X"])
    rng = random.Random(1234)
    bounds = {1: (45, 75), 2: (225, 375), 3: (675, 1125)}
    for n, (lo, hi) in bounds.items():
        samples = [policy.delay_for_retry(n, rng=rng) for _ in range(500)]
        assert all(lo <= s <= hi for s in samples)
        assert len(set(samples)) > 1  # actually randomized
        assert min(samples) < policy.base_delay_for_retry(n) < max(samples)


def test_jitter_uses_global_random_by_default() -> None:
    policy = RetryPolicy.fixed([100], auto_retry_for=["X"])
    assert all(75 <= policy.delay_for_retry(1) <= 125 for _ in range(100))


def test_delay_at_least_one_second() -> None:
    policy = RetryPolicy.fixed([1], auto_retry_for=["X"])

    class Low(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return a

    assert policy.delay_for_retry(1, rng=Low()) == 1.0  # 0.75 s raised to 1 s


@pytest.mark.parametrize("n", [0, -1, True, 1.0])
def test_retry_number_must_be_positive_int(n: Any) -> None:
    policy = RetryPolicy(auto_retry_for=["X"])
    with pytest.raises(ValueError):
        policy.delay_for_retry(n)


def test_msgspec_round_trip() -> None:
    policy = RetryPolicy.exponential(
        20, max_retries=6, auto_retry_for=[OperationalErrorCode.UNHANDLED_EXCEPTION, "X"]
    )
    data = msgspec.json.encode(policy)
    back = msgspec.json.decode(data, type=RetryPolicy)
    assert back.auto_retry_for == ["UNHANDLED_EXCEPTION", "X"]
    assert back.intervals == [20] and back.max_retries == 6
    with pytest.raises(ValueError):
        msgspec.json.decode(data.replace(b'"exponential"', b'"fixed"'), type=RetryPolicy)


def test_retry_policy_problem_rechecks_mutated_policy() -> None:
    from horsies.config import retry_policy_problem

    policy = RetryPolicy(auto_retry_for=["X"])
    assert retry_policy_problem(policy) is None
    policy.auto_retry_for.clear()
    assert retry_policy_problem(policy) == "auto_retry_for must list at least one error code"
