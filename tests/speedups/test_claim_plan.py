"""claim_plan twins: workers.md §16 test vectors, domain checks and invariants."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given, settings

from tests.speedups import strategies as s

INT_MAX = 2**31 - 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((8, 2, None, 0), 2),
        ((8, 2, 5, 4), 1),
        ((1, 2, 5, 0), 1),
        ((8, 2, 3, 7), 0),
        ((0, 2, None, 0), 0),
    ],
)
def test_queue_claim_limit_vectors(impl, args, expected):
    assert impl.claim_plan.queue_claim_limit(*args) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((5, 2, [(10, 9, 50), (5, 0, 1), (2, 0, 100)]), [1, 1, 2]),
        ((3, 4, [(None, 0, 10)]), [3]),
        ((0, 2, [(None, 0, 10), (5, 0, 10)]), [0, 0]),
    ],
)
def test_plan_pass_vectors(impl, args, expected):
    assert impl.claim_plan.plan_pass(*args) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((["low", "high", "mid"], {"low": 100, "high": 1, "mid": 50}), ["high", "mid", "low"]),
        ((["b", "a"], {"a": 10, "b": 10}), ["b", "a"]),
        ((["default"], None), ["default"]),
    ],
)
def test_order_queues_vectors(impl, args, expected):
    assert impl.claim_plan.order_queues(*args) == expected


def test_order_queues_inputs(impl):
    order = impl.claim_plan.order_queues
    assert order((), None) == []
    assert order(("x", "y"), None) == ["x", "y"]
    assert order(["x", "y"], OrderedDict(y=1, x=2, z=0)) == ["y", "x"]
    names = ["a", "b", "c"]
    result = order(names, None)
    assert result == names and result is not names  # always a new list
    assert order(["a", "a", "b"], {"a": 5, "b": 1}) == ["b", "a", "a"]


def test_order_queues_errors(impl):
    order = impl.claim_plan.order_queues
    with pytest.raises(ValueError, match=r"^queue 'b' has no priority$"):
        order(["a", "b"], {"a": 1})
    with pytest.raises(TypeError, match=r"^names\[1\] must be a str, got int$"):
        order(["a", 2], None)
    with pytest.raises(TypeError, match=r"^names must be a sequence, got str$"):
        order("abc", None)
    with pytest.raises(TypeError, match=r"^names must be a sequence, got set$"):
        order({"a"}, None)
    with pytest.raises(TypeError, match=r"^priorities must be a mapping or None, got list$"):
        order(["a"], [("a", 1)])
    with pytest.raises(TypeError, match=r"^priorities\['a'\] must be an int, got bool$"):
        order(["a"], {"a": True})
    with pytest.raises(
        ValueError, match=rf"^priorities\['a'\] must be between 0 and {INT_MAX}, got -5$"
    ):
        order(["a"], {"a": -5})
    # names are all checked before priorities
    with pytest.raises(TypeError, match=r"^names\[1\]"):
        order(["a", None], {})


QUEUE_LIMIT_ARGS = ["remaining", "max_claim_batch", "queue_max_concurrency", "queue_in_flight"]


@pytest.mark.parametrize("position", range(4))
@pytest.mark.parametrize(
    ("bad", "error"),
    [(True, TypeError), (2.0, TypeError), ("1", TypeError), (-1, ValueError), (2**31, ValueError)],
)
def test_queue_claim_limit_domain(impl, position, bad, error):
    args = [8, 2, 5, 0]
    args[position] = bad
    with pytest.raises(error, match=f"^{QUEUE_LIMIT_ARGS[position]} must be "):
        impl.claim_plan.queue_claim_limit(*args)


def test_queue_claim_limit_none(impl):
    assert impl.claim_plan.queue_claim_limit(8, 2, None, 10**6) == 2
    for position in (0, 1, 3):
        args = [8, 2, None, 0]
        args[position] = None
        with pytest.raises(TypeError, match="got NoneType$"):
            impl.claim_plan.queue_claim_limit(*args)


def test_plan_pass_errors(impl):
    plan = impl.claim_plan.plan_pass
    with pytest.raises(TypeError, match=r"^budget must be an int, got bool$"):
        plan(True, 1, [])
    with pytest.raises(ValueError, match=r"^max_claim_batch must be between"):
        plan(1, -1, [])
    with pytest.raises(TypeError, match=r"^queues must be a sequence, got NoneType$"):
        plan(1, 1, None)
    with pytest.raises(TypeError, match=r"^queues\[1\] must be a tuple, got list$"):
        plan(1, 1, [(None, 0, 1), [None, 0, 1]])
    with pytest.raises(ValueError, match=r"^queues\[0\] must have 3 items, got 2$"):
        plan(1, 1, [(None, 0)])
    with pytest.raises(TypeError, match=r"^queues\[0\]\[1\] must be an int, got NoneType$"):
        plan(1, 1, [(None, None, 1)])
    with pytest.raises(ValueError, match=r"^queues\[2\]\[2\] must be between"):
        plan(1, 1, [(None, 0, 1), (1, 0, 1), (1, 0, -1)])
    # every queue is checked before anything is computed, in order
    with pytest.raises(TypeError, match=r"^queues\[0\]\[0\]"):
        plan(1, 1, [(1.5, -1, 1), (None, 0, "x")])
    assert plan(7, 3, []) == []
    assert plan(7, 3, ((None, 0, 1),)) == [1]


@settings(max_examples=500, deadline=None)
@given(args=s.plan_pass_args())
def test_plan_pass_respects_every_limit(impl, args):
    budget, batch, queues = args
    claimed = impl.claim_plan.plan_pass(budget, batch, queues)
    assert len(claimed) == len(queues)
    assert sum(claimed) <= budget
    for n, (cap, in_flight, available) in zip(claimed, queues):
        assert 0 <= n <= min(batch, available)
        if cap is not None:
            assert in_flight + n <= cap or n == 0


@settings(max_examples=500, deadline=None)
@given(args=s.plan_pass_args())
def test_earlier_queues_are_never_starved(impl, args):
    # A queue gets rows only once every queue before it got all it could take:
    # its batch, its cap room and what the database had.
    budget, batch, queues = args
    claimed = impl.claim_plan.plan_pass(budget, batch, queues)
    for i, (n, (cap, in_flight, available)) in enumerate(zip(claimed, queues)):
        room = batch if cap is None else min(batch, max(0, cap - in_flight))
        if n < min(room, available):  # cut short by the budget
            assert sum(claimed[: i + 1]) == budget
            assert all(later == 0 for later in claimed[i + 1 :])


@settings(max_examples=300, deadline=None)
@given(case=s.order_queues_args(valid=True))
def test_order_queues_is_a_stable_priority_sort(impl, case):
    names, priorities = case
    ordered = impl.claim_plan.order_queues(names, priorities)
    assert sorted(ordered) == sorted(names)
    if priorities is None:
        assert ordered == list(names)
        return
    keys = [priorities[name] for name in ordered]
    assert keys == sorted(keys)  # lower priority numbers first
    for a, b in zip(ordered, ordered[1:]):  # ties keep the configuration order
        if priorities[a] == priorities[b]:
            assert names.index(a) <= names.index(b)
