"""budget twins: workers.md §16 test vectors, domain checks and invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.speedups import strategies as s

INT_MAX = 2**31 - 1

PASS_BUDGET_VECTORS = [
    ((8, 0, 0, None, 0, 0, 0), 8),
    ((8, 0, 0, None, 5, 2, 0), 1),
    ((4, 0, 0, 20, 1, 0, 19), 1),
    ((4, 0, 0, 20, 0, 0, 25), 0),
    ((4, 4, 0, None, 4, 0, 0), 4),
    ((4, 4, 0, None, 2, 7, 0), 1),
    ((4, 4, 3, None, 0, 2, 0), 1),
    ((8, 0, 3, None, 0, 0, 0), 3),
    ((4, 0, 0, None, 6, 0, 0), 0),
]

PASS_BUDGET_ARGS = [
    "processes",
    "prefetch_buffer",
    "max_claim_per_worker",
    "cluster_wide_cap",
    "local_running",
    "local_claimed",
    "global_in_flight",
]


@pytest.mark.parametrize(("args", "expected"), PASS_BUDGET_VECTORS)
def test_compute_pass_budget_vectors(impl, args, expected):
    assert impl.budget.compute_pass_budget(*args) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [((8, 0, 0), 8), ((8, 4, 0), 12), ((8, 4, 5), 5), ((8, 0, 3), 3), ((0, 0, 0), 0)],
)
def test_effective_max_claimed(impl, args, expected):
    assert impl.budget.effective_max_claimed(*args) == expected


def test_keyword_arguments(impl):
    assert (
        impl.budget.compute_pass_budget(
            processes=8,
            prefetch_buffer=0,
            max_claim_per_worker=0,
            cluster_wide_cap=None,
            local_running=5,
            local_claimed=2,
            global_in_flight=0,
        )
        == 1
    )
    assert (
        impl.budget.effective_max_claimed(processes=2, prefetch_buffer=1, max_claim_per_worker=0)
        == 3
    )


def test_results_are_plain_ints(impl):
    from enum import IntEnum

    class Four(IntEnum):
        FOUR = 4

    result = impl.budget.effective_max_claimed(1, 0, Four.FOUR)
    assert result == 4 and type(result) is int
    assert type(impl.budget.compute_pass_budget(Four.FOUR, 0, 0, None, 0, 0, 0)) is int


BAD_VALUES = [
    (True, TypeError, "must be an int, got bool"),
    (False, TypeError, "must be an int, got bool"),
    (1.0, TypeError, "must be an int, got float"),
    ("3", TypeError, "must be an int, got str"),
    (-1, ValueError, f"must be between 0 and {INT_MAX}, got -1"),
    (INT_MAX + 1, ValueError, f"must be between 0 and {INT_MAX}, got {INT_MAX + 1}"),
    (2**64, ValueError, f"must be between 0 and {INT_MAX}, got {2**64}"),
    (-(2**70), ValueError, f"must be between 0 and {INT_MAX}, got {-(2**70)}"),
]


@pytest.mark.parametrize("position", range(7))
@pytest.mark.parametrize(("bad", "error", "text"), BAD_VALUES)
def test_compute_pass_budget_domain(impl, position, bad, error, text):
    args = [4, 1, 0, 10, 0, 0, 0]
    args[position] = bad
    with pytest.raises(error) as info:
        impl.budget.compute_pass_budget(*args)
    assert str(info.value) == f"{PASS_BUDGET_ARGS[position]} {text}"


@pytest.mark.parametrize("position", [0, 1, 2, 4, 5, 6])
def test_none_only_for_the_cluster_cap(impl, position):
    args = [4, 1, 0, None, 0, 0, 0]
    args[position] = None
    with pytest.raises(
        TypeError, match=f"^{PASS_BUDGET_ARGS[position]} must be an int, got NoneType$"
    ):
        impl.budget.compute_pass_budget(*args)


def test_domain_bounds_are_inclusive(impl):
    assert impl.budget.compute_pass_budget(INT_MAX, 0, 0, INT_MAX, 0, 0, 0) == INT_MAX
    assert impl.budget.compute_pass_budget(0, 0, 0, 0, 0, 0, 0) == 0
    assert impl.budget.effective_max_claimed(INT_MAX, INT_MAX, 0) == 2 * INT_MAX


def test_checks_run_in_argument_order(impl):
    # The first bad argument is reported, whatever comes after it.
    with pytest.raises(ValueError, match="^prefetch_buffer "):
        impl.budget.compute_pass_budget(1, -1, True, None, "x", 0, 0)
    with pytest.raises(TypeError, match="^processes "):
        impl.budget.compute_pass_budget(None, -1, 0, None, 0, 0, 0)
    with pytest.raises(TypeError, match="^local_running "):
        impl.budget.compute_pass_budget(1, 0, 0, None, 1.5, -3, 0)
    with pytest.raises(ValueError, match="^max_claim_per_worker "):
        impl.budget.effective_max_claimed(1, 0, -1)


@settings(max_examples=500, deadline=None)
@given(args=s.pass_budget_args())
def test_budget_never_exceeds_any_cap(impl, args):
    processes, prefetch, per_worker, cap, running, claimed, in_flight = args
    budget = impl.budget.compute_pass_budget(*args)
    ceiling = impl.budget.effective_max_claimed(processes, prefetch, per_worker)
    assert budget >= 0
    # the per-worker claim ceiling is a hard ceiling
    assert budget == 0 or claimed + budget <= ceiling
    if prefetch == 0:  # hard cap: running + claimed never exceed the processes
        assert budget == 0 or running + claimed + budget <= processes
    else:  # soft cap: running + new claims stay within processes + prefetch
        assert budget == 0 or running + budget <= processes + prefetch
    if cap is not None:
        assert budget == 0 or in_flight + budget <= cap
    # and the budget is the largest value with these properties
    local = processes - running - claimed if prefetch == 0 else processes + prefetch - running
    limits = [local, ceiling - claimed] + ([cap - in_flight] if cap is not None else [])
    assert budget == max(0, min(limits))


@settings(max_examples=300, deadline=None)
@given(args=s.pass_budget_args(), extra=st.integers(0, 8))
def test_budget_is_monotonic_in_load(impl, args, extra):
    # More running or claimed tasks never raise the budget.
    processes, prefetch, per_worker, cap, running, claimed, in_flight = args
    budget = impl.budget.compute_pass_budget(*args)
    busier_running = impl.budget.compute_pass_budget(
        processes, prefetch, per_worker, cap, running + extra, claimed, in_flight
    )
    busier_claimed = impl.budget.compute_pass_budget(
        processes, prefetch, per_worker, cap, running, claimed + extra, in_flight
    )
    assert busier_running <= budget and busier_claimed <= budget
