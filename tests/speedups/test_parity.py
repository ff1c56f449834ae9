"""The compiled and pure twins agree: equal results, or equal exception types and messages.

hypothesis explores the input space; a seeded random loop then compares at
least 100 000 generated input sets per claim-planning function (workers.md
§15.3). Finally the seeded benchmark inputs are checked, so the benchmarks
time inputs on which the twins are known to agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import _inputs
from tests.speedups import strategies as s

pytestmark = pytest.mark.compiled

INT_MAX = 2**31 - 1
RANDOM_INPUT_SETS = 100_000
CODEC_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    try:
        return ("returned", fn(*args))
    except Exception as exc:  # the exception is the outcome
        return ("raised", type(exc), str(exc))


def assert_same(c_fn: Callable[..., Any], py_fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    got_c = outcome(c_fn, *args)
    got_py = outcome(py_fn, *args)
    assert got_c == got_py, args
    if got_c[0] == "returned":
        assert type(got_c[1]) is type(got_py[1])
    return got_c


# --- claim planning: hypothesis ------------------------------------------------------------------


@settings(max_examples=1_000, deadline=None)
@given(args=st.tuples(*[s.loose_int(optional=i == 3) for i in range(7)]))
def test_compute_pass_budget(both, args):
    c, py = both
    assert_same(c.budget.compute_pass_budget, py.budget.compute_pass_budget, *args)


@settings(max_examples=1_000, deadline=None)
@given(args=st.tuples(s.loose_int(), s.loose_int(), s.loose_int()))
def test_effective_max_claimed(both, args):
    c, py = both
    assert_same(c.budget.effective_max_claimed, py.budget.effective_max_claimed, *args)


@settings(max_examples=1_000, deadline=None)
@given(args=st.tuples(s.loose_int(), s.loose_int(), s.loose_int(optional=True), s.loose_int()))
def test_queue_claim_limit(both, args):
    c, py = both
    assert_same(c.claim_plan.queue_claim_limit, py.claim_plan.queue_claim_limit, *args)


_queue_entries = st.one_of(
    st.tuples(s.loose_int(optional=True), s.loose_int(), s.loose_int()),
    st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 9)),
    st.lists(st.integers(0, 3), max_size=4),
    st.lists(st.integers(0, 3), max_size=4).map(tuple),
)


@settings(max_examples=1_000, deadline=None)
@given(
    budget=s.loose_int(),
    batch=s.loose_int(),
    queues=st.one_of(
        st.lists(_queue_entries, max_size=8),
        st.lists(_queue_entries, max_size=4).map(tuple),
        st.none(),
        st.text(max_size=3),
    ),
)
def test_plan_pass(both, budget, batch, queues):
    c, py = both
    assert_same(c.claim_plan.plan_pass, py.claim_plan.plan_pass, budget, batch, queues)


@settings(max_examples=1_000, deadline=None)
@given(case=s.order_queues_args(valid=False))
def test_order_queues(both, case):
    c, py = both
    assert_same(c.claim_plan.order_queues, py.claim_plan.order_queues, *case)


# --- claim planning: seeded random comparison (at least 100 000 sets per function) ---------------

_BAD = (-1, INT_MAX + 1, True, False, 1.0, "1", None, -(10**20), 2**64)


def _arg(rnd: random.Random, optional: bool = False) -> Any:
    roll = rnd.random()
    if roll < 0.96:
        pick = rnd.random()
        if pick < 0.6:
            return rnd.randint(0, 64)
        if pick < 0.9:
            return rnd.randint(0, 5_000)
        return rnd.choice((0, INT_MAX, rnd.randint(0, INT_MAX)))
    if optional and roll < 0.98:
        return None
    return rnd.choice(_BAD)


def _queues(rnd: random.Random) -> Any:
    queues: list[Any] = []
    for _ in range(rnd.randint(0, 8)):
        entry: Any = (
            _arg(rnd, optional=True) if rnd.random() < 0.7 else None,
            _arg(rnd),
            _arg(rnd),
        )
        roll = rnd.random()
        if roll < 0.005:
            entry = list(entry)
        elif roll < 0.01:
            entry = entry[:2]
        queues.append(entry)
    return queues


def _names(rnd: random.Random) -> tuple[Any, Any]:
    names = rnd.sample("abcdefghij", rnd.randint(0, 10))
    if rnd.random() < 0.3:
        return names, None
    priorities: dict[str, Any] = {name: rnd.randint(0, 4) for name in names}
    roll = rnd.random()
    if roll < 0.02 and names:
        del priorities[names[0]]
    elif roll < 0.04 and names:
        priorities[names[-1]] = rnd.choice(_BAD)
    return names, priorities


_GENERATORS: dict[str, Callable[[random.Random], tuple[Any, ...]]] = {
    "effective_max_claimed": lambda rnd: (_arg(rnd), _arg(rnd), _arg(rnd)),
    "compute_pass_budget": lambda rnd: (
        _arg(rnd),
        _arg(rnd),
        _arg(rnd),
        _arg(rnd, optional=True),
        _arg(rnd),
        _arg(rnd),
        _arg(rnd),
    ),
    "queue_claim_limit": lambda rnd: (_arg(rnd), _arg(rnd), _arg(rnd, optional=True), _arg(rnd)),
    "plan_pass": lambda rnd: (_arg(rnd), _arg(rnd), _queues(rnd)),
    "order_queues": _names,
}


@pytest.mark.parametrize("name", list(_GENERATORS))
def test_randomized_comparison(both, name):
    c, py = both
    module = "budget" if name in ("effective_max_claimed", "compute_pass_budget") else "claim_plan"
    c_fn = getattr(getattr(c, module), name)
    py_fn = getattr(getattr(py, module), name)
    rnd = random.Random(f"horsies-{name}")
    generate = _GENERATORS[name]
    returned = 0
    for _ in range(RANDOM_INPUT_SETS):
        args = generate(rnd)
        try:
            expected: Any = ("returned", py_fn(*args))
        except Exception as exc:
            expected = ("raised", type(exc), str(exc))
        try:
            got: Any = ("returned", c_fn(*args))
        except Exception as exc:
            got = ("raised", type(exc), str(exc))
        if got != expected:
            pytest.fail(f"{name}{args!r}: c gave {got!r}, py gave {expected!r}")
        returned += got[0] == "returned"
    # most generated sets are in the domain, so the computation itself is compared
    assert returned > RANDOM_INPUT_SETS // 2


# --- codec ---------------------------------------------------------------------------------------


def _codec_outcome(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    try:
        return ("returned", fn(*args))
    except Exception as exc:
        return ("raised", type(exc), str(exc))


def _shaped(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    got = _codec_outcome(fn, *args)
    return got if got[0] == "raised" else ("returned", _shape(got[1]))


def _shape(value: Any) -> Any:
    """Types and reprs of a decoded value, recursively, to compare the twins' results."""
    if type(value) is list:
        return ["list", [_shape(v) for v in value]]
    if type(value) is dict:
        return ["dict", [(k, _shape(v)) for k, v in value.items()]]
    return [type(value).__qualname__, repr(value)]


def _encode_both(c_codec: Any, py_codec: Any, value: Any, path: str = "value") -> tuple[Any, ...]:
    got_c = _codec_outcome(c_codec.encode, value, path)
    got_py = _codec_outcome(py_codec.encode, value, path)
    assert got_c[0] == got_py[0], (got_c, got_py)
    if got_c[0] == "raised":
        assert got_c == got_py
        return got_c
    assert orjson.dumps(got_c[1]) == orjson.dumps(got_py[1])  # byte-identical text
    assert got_c[1] == got_py[1]
    return got_c


def _decode_both(c_codec: Any, py_codec: Any, tree: Any) -> tuple[Any, ...]:
    got_c = _codec_outcome(c_codec.decode, tree)
    got_py = _codec_outcome(py_codec.decode, tree)
    if got_c[0] == "raised" or got_py[0] == "raised":
        assert got_c == got_py
        return got_c
    assert _shape(got_c[1]) == _shape(got_py[1])
    return got_c


@CODEC_SETTINGS
@given(value=s.codec_values(valid=False))
def test_codec_encode_and_decode(both, value):
    c, py = both
    c_codec, py_codec = c.codec(), py.codec()
    encoded = _encode_both(c_codec, py_codec, value)
    if encoded[0] == "returned":
        tree = orjson.loads(orjson.dumps(encoded[1]))
        _decode_both(c_codec, py_codec, tree)


@CODEC_SETTINGS
@given(value=s.codec_values(valid=True))
def test_codec_round_trip_is_stable(both, value):
    # Encoding what was decoded gives the same text again, in both twins.
    c, py = both
    for codec in (c.codec(), py.codec()):
        first = orjson.dumps(codec.encode(value))
        again = orjson.dumps(codec.encode(codec.decode(orjson.loads(first))))
        if b'"__pydantic_model__"' in first:
            # pydantic's JSON rules normalise some values on the way back (a zero UTC
            # offset is written "Z" or "+00:00" depending on the tzinfo class), so
            # the text is stable from the first round trip on.
            first = again
            again = orjson.dumps(codec.encode(codec.decode(orjson.loads(first))))
        assert again == first


@CODEC_SETTINGS
@given(tree=s.json_trees())
def test_codec_decode_any_tree(both, tree):
    c, py = both
    _decode_both(c.codec(), py.codec(), tree)
    assert _shaped(c.codec().decode_kwargs, tree) == _shaped(py.codec().decode_kwargs, tree)
    assert _shaped(c.codec().decode_args, tree) == _shaped(py.codec().decode_args, tree)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    args=st.lists(s.codec_values(valid=False, max_leaves=8), max_size=4),
    names=st.lists(st.text(max_size=6), max_size=4),
)
def test_codec_arguments(both, args, names):
    c, py = both
    c_codec, py_codec = c.codec(), py.codec()
    assert _codec_outcome(c_codec.encode_args, tuple(args)) == _codec_outcome(
        py_codec.encode_args, tuple(args)
    )
    kwargs = dict(zip(names, args))
    got_c = _codec_outcome(c_codec.encode_kwargs, kwargs)
    assert got_c == _codec_outcome(py_codec.encode_kwargs, kwargs)
    if got_c[0] == "returned":
        tree = orjson.loads(orjson.dumps(got_c[1]))
        assert _shaped(c_codec.decode_kwargs, tree) == _shaped(py_codec.decode_kwargs, tree)


def test_codec_deep_and_cyclic_values(both):
    c, py = both
    c_codec, py_codec = c.codec(), py.codec()
    for depth in (200, 253, 254, 255, 400):
        deep: Any = 1
        for _ in range(depth):
            deep = [deep]
        _encode_both(c_codec, py_codec, deep)
        _decode_both(c_codec, py_codec, deep)
        mixed: Any = 1
        for i in range(depth // 2):
            mixed = s.Node(mixed) if i % 2 else {"k": mixed}
        _encode_both(c_codec, py_codec, mixed)
    loop: list[Any] = []
    loop.append({"a": s.Node(1, [loop])})
    _encode_both(c_codec, py_codec, loop)


# --- the benchmark inputs ------------------------------------------------------------------------


@pytest.mark.parametrize("size", _inputs.SIZES)
def test_benchmark_inputs_agree(both, size):
    c, py = both
    for args in _inputs.budget_cases(size):
        assert_same(c.budget.compute_pass_budget, py.budget.compute_pass_budget, *args)
        assert_same(c.budget.effective_max_claimed, py.budget.effective_max_claimed, *args[:3])
    assert_same(c.claim_plan.plan_pass, py.claim_plan.plan_pass, *_inputs.plan_case(size))
    assert_same(c.claim_plan.order_queues, py.claim_plan.order_queues, *_inputs.order_case(size))
    c_codec, py_codec = c.bench_codec(), py.bench_codec()
    for payload in (_inputs.json_rows(size), _inputs.typed_rows(size)):
        encoded = _encode_both(c_codec, py_codec, payload)
        assert encoded[0] == "returned"
        decoded = _decode_both(c_codec, py_codec, orjson.loads(orjson.dumps(encoded[1])))
        assert decoded[0] == "returned"
