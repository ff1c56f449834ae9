"""Hypothesis strategies for the twin tests, and the sample classes they use.

The classes live here, at module level of an importable module
(``tests.speedups.strategies``), because the codec rebuilds them by name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import OrderedDict, deque, namedtuple
from enum import Enum, Flag, IntEnum, IntFlag, StrEnum
from typing import Any

import msgspec
import pydantic
from hypothesis import strategies as st

from horsies._speedups._api import MARKER_KEYS
from horsies.codes import ContractCode, OperationalErrorCode, OutcomeCode
from horsies.task_result import SubWorkflowError, TaskError, TaskResult

INT_MAX = 2**31 - 1
# The codec's own marker keys, plus keys of the reserved __horsies prefix.
RESERVED_KEYS = sorted(MARKER_KEYS) + ["__horsies_workflow_ctx__", "__horsies"]

# --- sample classes --------------------------------------------------------------


class Color(Enum):
    RED = 1
    GREEN = 2
    CRIMSON = 1  # an alias of RED


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Mode(StrEnum):
    FAST = "fast"
    SLOW = "slow"


class Perm(Flag):
    R = 4
    W = 2
    X = 1


class Bits(IntFlag):
    A = 1
    B = 2


class Shape(Enum):
    POINT = (0, 0)
    LINE = (1, 0)


class MyStr(str):
    def __str__(self) -> str:  # must not be used: the content is what counts
        return "overridden"


class MyInt(int):
    pass


class MyFloat(float):
    pass


@dataclasses.dataclass
class Item:
    sku: str
    qty: int = 1


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: Any
    b: Any = None


@dataclasses.dataclass
class WithLate:
    a: int
    doubled: int = dataclasses.field(init=False, default=0)
    note: Any = dataclasses.field(init=False, default=None)

    def __post_init__(self) -> None:
        self.doubled = self.a * 2


@dataclasses.dataclass
class Node:
    value: Any
    children: list[Any] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(eq=False)
class Checked:
    """A dataclass whose constructor refuses some values."""

    n: int

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError("n must not be negative")


@dataclasses.dataclass
class ReservedField:
    __date__: int = 0


class Outer:
    @dataclasses.dataclass
    class Inner:
        x: Any

    class Kind(Enum):
        A = "a"


class Vec(msgspec.Struct):
    x: Any
    y: Any = 0


class Labeled(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    extra: Any = None


class Model(pydantic.BaseModel):
    name: str
    when: dt.datetime
    tags: list[str] = []


class Loose(pydantic.BaseModel):
    value: Any = None


Pair = namedtuple("Pair", "a b")


# --- claim planning ---------------------------------------------------------------

_small = st.integers(0, 64)
_domain = st.one_of(_small, st.integers(0, INT_MAX), st.sampled_from([0, 1, INT_MAX]))


def pass_budget_args() -> st.SearchStrategy[tuple[Any, ...]]:
    """Valid argument tuples of compute_pass_budget."""
    return st.tuples(
        st.integers(0, 64),
        st.one_of(st.just(0), st.integers(0, 16)),
        st.one_of(st.just(0), st.integers(0, 96)),
        st.one_of(st.none(), st.integers(0, 200)),
        st.integers(0, 80),
        st.integers(0, 100),
        st.integers(0, 250),
    )


def plan_pass_args() -> st.SearchStrategy[tuple[Any, ...]]:
    """Valid (budget, max_claim_batch, queues) of plan_pass."""
    queue = st.tuples(
        st.one_of(st.none(), st.integers(0, 60)), st.integers(0, 80), st.integers(0, 200)
    )
    return st.tuples(st.integers(0, 200), st.integers(0, 50), st.lists(queue, max_size=12))


def order_queues_args(valid: bool = True) -> st.SearchStrategy[tuple[Any, Any]]:
    """(names, priorities) of order_queues; with `valid=False`, also broken ones."""
    names = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=3), unique=True, max_size=10)

    @st.composite
    def build(draw: Any) -> tuple[Any, Any]:
        queue_names = draw(names)
        if draw(st.booleans()):
            return queue_names, None
        priorities = {name: draw(st.integers(0, 5)) for name in queue_names}
        if not valid:
            mutation = draw(st.integers(0, 6))
            if mutation == 1 and queue_names:
                priorities.pop(queue_names[0])
            elif mutation == 2 and queue_names:
                priorities[queue_names[-1]] = draw(loose_int())
            elif mutation == 3:
                queue_names = [*queue_names, draw(st.one_of(st.integers(), st.none()))]
            elif mutation == 4:
                return "".join(queue_names), None
            elif mutation == 5:
                return queue_names, list(priorities.items())
        return queue_names, priorities

    return build()


def loose_int(optional: bool = False) -> st.SearchStrategy[Any]:
    """Mostly valid claim-planning integers, sometimes out of the domain."""
    bad = st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=INT_MAX + 1),
        st.booleans(),
        st.floats(allow_nan=False, max_value=100, min_value=0),
        st.text(max_size=2),
        st.none(),
        st.sampled_from([Level.LOW, Level.HIGH]),
    )
    good = st.one_of(_domain, st.none()) if optional else _domain
    return st.one_of(good, good, good, bad)


# --- codec values ------------------------------------------------------------------

_offsets = st.one_of(
    st.none(),
    st.just(dt.timezone.utc),
    # Whole seconds: ISO 8601 text (fromisoformat) drops the sub-second part of an
    # offset, so an offset with microseconds cannot come back as it went out.
    st.builds(
        dt.timezone,
        st.integers(-(23 * 3600 + 59 * 60), 23 * 3600 + 59 * 60).map(
            lambda seconds: dt.timedelta(seconds=seconds)),
    ),
)
_plain_ints = st.integers(-(2**63), 2**64 - 1)
_plain_floats = st.floats(allow_nan=False, allow_infinity=False)
_texts = st.text(max_size=12)


def _scalars(valid: bool) -> st.SearchStrategy[Any]:
    good = st.one_of(
        st.none(),
        st.booleans(),
        _plain_ints,
        st.integers(-5, 5),
        _plain_floats,
        _texts,
        st.datetimes(timezones=_offsets),
        st.dates(),
        st.times(timezones=_offsets),
        st.timedeltas(),
        st.uuids(),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.sampled_from(
            [
                Color.RED,
                Color.GREEN,
                Color.CRIMSON,
                Level.LOW,
                Level.HIGH,
                Mode.FAST,
                Perm.R,
                Perm.R | Perm.W,
                Perm.R | Perm.W | Perm.X,
                Perm(0),
                Bits.A,
                Bits.A | Bits.B,
                Shape.LINE,
                Outer.Kind.A,
                OperationalErrorCode.BROKER_ERROR,
            ]
        ),
        st.builds(MyStr, _texts),
        st.builds(MyInt, st.integers(-100, 100)),
        st.builds(MyFloat, _plain_floats),
        st.just(range(3)),
    )
    if valid:
        return good
    bad = st.one_of(
        st.integers(min_value=2**64),
        st.integers(max_value=-(2**63) - 1),
        st.sampled_from([float("nan"), float("inf"), float("-inf"), MyFloat("nan")]),
        st.sampled_from(["a\udc80b", "\ud800", MyStr("x\udfff")]),
        st.sampled_from(
            [b"bytes", bytearray(b"x"), {1, 2}, frozenset(), object(), len, int, memoryview(b"")]
        ),
    )
    return st.one_of(good, good, good, bad)


def _keys(valid: bool) -> st.SearchStrategy[Any]:
    keys = st.one_of(_texts, _texts, st.text(alphabet="_ab", max_size=4))
    if valid:
        # hypothesis also draws string constants it finds in the code under test
        return keys.filter(lambda k: k not in RESERVED_KEYS and not k.startswith("__horsies"))
    return st.one_of(
        keys,
        keys,
        st.sampled_from(RESERVED_KEYS),
        st.integers(-2, 2),
        st.booleans(),
        st.none(),
        st.sampled_from(["1", "True", "None", "a\udc80"]),
        st.just(Color.RED),
    )


def _containers(children: st.SearchStrategy[Any], valid: bool) -> st.SearchStrategy[Any]:
    keys = _keys(valid)
    errors = st.one_of(
        st.none(),
        st.sampled_from(list(OperationalErrorCode)),
        st.sampled_from(list(OutcomeCode)),
        st.just(ContractCode.PYDANTIC_HYDRATION_ERROR),
        st.sampled_from(["CARD_DECLINED", "X"]),
    )
    exceptions = st.one_of(
        st.none(),
        st.builds(ValueError, _texts),
        st.builds(KeyError, _texts),
        st.dictionaries(_texts, children, max_size=2),
    )
    task_error = st.builds(
        TaskError,
        error_code=errors,
        message=st.one_of(st.none(), _texts),
        data=children,
        exception=exceptions,
    )
    sub_error = st.builds(
        SubWorkflowError,
        error_code=st.just(OutcomeCode.SUBWORKFLOW_FAILED),
        message=_texts,
        data=children,
        sub_workflow_id=_texts,
        sub_workflow_summary=children,
    )
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
        st.dictionaries(keys, children, max_size=3).map(OrderedDict),
        st.lists(children, max_size=3).map(deque),
        st.builds(Pair, children, children),
        st.builds(Item, _texts, children),
        st.builds(Frozen, children, children),
        st.builds(Node, children, st.lists(children, max_size=3)),
        st.builds(Outer.Inner, children),
        st.builds(Vec, children, children),
        st.builds(Labeled, name=_texts, extra=children),
        st.builds(
            Loose,
            value=st.one_of(
                st.none(),
                st.integers(-(10**6), 10**6),
                _texts,
                st.lists(st.integers(-(10**6), 10**6), max_size=3),
            ),
        ),
        st.builds(
            Model,
            name=_texts,
            when=st.datetimes(timezones=_offsets),
            tags=st.lists(_texts, max_size=2),
        ),
        st.builds(lambda v: TaskResult(ok=v), children),
        st.builds(lambda e: TaskResult(err=e), st.one_of(task_error, sub_error)),
        task_error,
    )


def codec_values(valid: bool = True, max_leaves: int = 24) -> st.SearchStrategy[Any]:
    """Nested values of every supported type; with `valid=False`, also refused ones."""
    return st.recursive(
        _scalars(valid), lambda children: _containers(children, valid), max_leaves=max_leaves
    )


# --- JSON trees for the decoder, tagged forms well formed or not ---------------------

_MODULE = __name__


def _json_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), _plain_floats, _texts
    )


def _tagged(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    flag = st.sampled_from([True] * 8 + [False, 1, None, "true"])
    any_json = st.one_of(_json_scalars(), children)
    modules = st.sampled_from([_MODULE, _MODULE, "no.such.module", "dataclasses", "", 7])
    qualnames = st.sampled_from(
        [
            "Item",
            "Frozen",
            "WithLate",
            "Node",
            "Checked",
            "Outer.Inner",
            "Outer.Kind",
            "Color",
            "Perm",
            "Vec",
            "Labeled",
            "Model",
            "Loose",
            "Missing",
            "Outer.Missing",
            "INT_MAX",
            "Pair",
        ]
    )

    def form(marker: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        extras = st.dictionaries(
            st.sampled_from(["extra", "value", "__date__", "name"]), any_json, max_size=1
        )
        base = st.fixed_dictionaries({marker: flag, **fields})
        return st.one_of(base, st.builds(lambda b, e: {**b, **e}, base, extras))

    iso = st.one_of(
        _texts,
        st.integers(),
        st.datetimes(timezones=_offsets).map(dt.datetime.isoformat),
        st.dates().map(dt.date.isoformat),
        st.times().map(dt.time.isoformat),
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
        st.decimals(allow_nan=True).map(str),
    )
    field_data = st.dictionaries(
        st.sampled_from(
            [
                "sku",
                "qty",
                "a",
                "b",
                "x",
                "y",
                "n",
                "name",
                "extra",
                "value",
                "children",
                "doubled",
                "note",
            ]
        ),
        any_json,
        max_size=4,
    )
    code = st.one_of(
        st.none(),
        _texts,
        st.integers(),
        st.fixed_dictionaries(
            {"__builtin_task_code__": st.sampled_from(["BROKER_ERROR", "NOPE", 3])}
        ),
    )
    task_error = form(
        "__task_error__",
        error_code=code,
        message=st.one_of(st.none(), _texts, st.integers()),
        data=any_json,
    )
    return st.one_of(
        form("__datetime__", value=iso),
        form("__date__", value=iso),
        form("__time__", value=iso),
        form("__uuid__", value=iso),
        form("__decimal__", value=iso),
        form(
            "__timedelta__",
            days=st.integers(-(10**9), 10**9),
            seconds=st.integers(-10, 10**5),
            microseconds=st.one_of(st.integers(0, 10**6), st.booleans()),
        ),
        form(
            "__enum__",
            module=modules,
            qualname=qualnames,
            name=st.sampled_from(["RED", "GREEN", "CRIMSON", "A", "R", "NOPE", 1]),
        ),
        form(
            "__enum__",
            module=modules,
            qualname=qualnames,
            value=st.one_of(st.integers(-1, 8), _texts),
        ),
        form(
            "__dataclass__",
            module=modules,
            qualname=qualnames,
            data=st.one_of(field_data, any_json),
        ),
        form(
            "__msgspec_struct__",
            module=modules,
            qualname=qualnames,
            data=st.one_of(field_data, any_json),
        ),
        form(
            "__pydantic_model__",
            module=modules,
            qualname=qualnames,
            data=st.one_of(field_data, st.fixed_dictionaries({"name": _texts, "when": iso})),
        ),
        form("__task_result__", ok=any_json, err=st.one_of(st.none(), task_error, any_json)),
        task_error,
        st.fixed_dictionaries({"__builtin_task_code__": st.just("BROKER_ERROR")}),
    )


def json_trees() -> st.SearchStrategy[Any]:
    """JSON trees mixing plain values with well-formed and malformed tagged forms."""
    return st.recursive(
        _json_scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(_texts, children, max_size=4),
            _tagged(children),
        ),
        max_leaves=16,
    )
