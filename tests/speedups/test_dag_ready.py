"""dag_ready twins: workflows.md §16.4 pinned values, properties 1-7, differential tests.

Every test runs against both twins (the `impl` fixture) or compares them
(`both`). The properties are checked exhaustively over total <= 6,
min_success in 0..total+1 and ctx_pending in 0..2, for every join and
allow_failed_deps; hypothesis adds larger, huge and ill-typed inputs, and the
batch form over lists, tuples and buffers of several integer formats.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Callable, Iterator, Sequence
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks._inputs import readiness_columns, readiness_rows
from horsies._speedups import _api

Join = _api.Join
Readiness = _api.Readiness
WAIT, RUN, SKIP_IMPOSSIBLE, SKIP_UPSTREAM = (
    Readiness.WAIT,
    Readiness.RUN,
    Readiness.SKIP_IMPOSSIBLE,
    Readiness.SKIP_UPSTREAM,
)
ALL, ANY, QUORUM = Join.ALL, Join.ANY, Join.QUORUM
ARGS = _api.READINESS_ARGS

# Deterministic: the same examples on every run and every machine.
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
BATCHES = settings(PROPERTY, max_examples=100)


# fmt: off
def spec_reference(join, min_success, allow_failed_deps, total, completed, failed, skipped,
                   ctx_pending):
    """The reference implementation of workflows.md §16.4, copied verbatim."""
    if join not in (0, 1, 2):
        raise ValueError("unknown join")
    if total < 1 or min(completed, failed, skipped, ctx_pending, min_success) < 0:
        raise ValueError("counts out of range")
    finished = completed + failed + skipped
    if finished > total:
        raise ValueError("more finished dependencies than dependencies")

    if join == 0:                                   # all
        if finished < total or ctx_pending > 0:
            return 0                                # WAIT
        if (failed + skipped) > 0 and not allow_failed_deps:
            return 3                                # SKIP_UPSTREAM
        return 1                                    # RUN

    need = 1 if join == 1 else (min_success if min_success >= 1 else 1)
    if completed >= need:
        return 0 if ctx_pending > 0 else 1          # WAIT for the context gate, else RUN
    if completed + (total - finished) < need:
        return 2                                    # SKIP_IMPOSSIBLE
    return 0                                        # WAIT
# fmt: on


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """What a call gave: ("returned", value) or ("raised", type, message)."""
    try:
        return ("returned", fn(*args))
    except Exception as exc:  # the exception is the outcome
        return ("raised", type(exc), str(exc))


def assert_same(c_fn: Callable[..., Any], py_fn: Callable[..., Any], *args: Any) -> tuple:
    got_c, got_py = outcome(c_fn, *args), outcome(py_fn, *args)
    assert got_c == got_py, args
    if got_c[0] == "returned":
        assert type(got_c[1]) is type(got_py[1])
    return got_c


# --- the grid of §16.4 --------------------------------------------------------------------


def grid() -> Iterator[tuple[int, int, bool, int, int, int, int, int]]:
    """Every valid input with total <= 6, min_success 0..total+1, ctx_pending 0..2."""
    for total in range(1, 7):
        for completed, failed, skipped in itertools.product(range(total + 1), repeat=3):
            if completed + failed + skipped > total:
                continue
            for join, allow, min_success, ctx in itertools.product(
                Join, (False, True), range(total + 2), range(3)
            ):
                yield (int(join), min_success, allow, total, completed, failed, skipped, ctx)


GRID = list(grid())
_tables: dict[str, dict[tuple, int]] = {}


@pytest.fixture
def table(impl) -> dict[tuple, int]:
    """The twin's result on every grid input (computed once per twin)."""
    if impl.name not in _tables:
        evaluate = impl.dag_ready.evaluate_readiness
        _tables[impl.name] = {args: evaluate(*args) for args in GRID}
    return _tables[impl.name]


def test_grid_size():
    assert len(GRID) == 25_668


# --- pinned values of the reference --------------------------------------------------------

# (join, min_success, allow_failed_deps, total, completed, failed, skipped, ctx_pending)
PINNED = [
    # all: waits for every dependency, then runs or skips
    ((ALL, 0, False, 2, 2, 0, 0, 0), RUN),
    ((ALL, 0, False, 2, 1, 0, 0, 0), WAIT),
    ((ALL, 0, False, 2, 1, 1, 0, 0), SKIP_UPSTREAM),
    ((ALL, 0, False, 2, 1, 0, 1, 0), SKIP_UPSTREAM),
    ((ALL, 0, False, 3, 0, 1, 0, 0), WAIT),  # a failure alone does not decide before the rest
    ((ALL, 0, True, 2, 1, 1, 0, 0), RUN),
    ((ALL, 0, True, 2, 0, 0, 2, 0), RUN),
    ((ALL, 0, True, 3, 0, 2, 0, 0), WAIT),
    ((ALL, 0, False, 2, 2, 0, 0, 1), WAIT),  # the context gate
    ((ALL, 0, False, 2, 1, 1, 0, 1), WAIT),  # the gate holds a skip back too
    ((ALL, 5, False, 1, 1, 0, 0, 0), RUN),  # min_success is not read for all
    # any: runs on the first success, skips once none can succeed
    ((ANY, 0, False, 3, 1, 0, 0, 0), RUN),
    ((ANY, 0, False, 3, 1, 2, 0, 0), RUN),
    ((ANY, 0, False, 3, 0, 2, 0, 0), WAIT),
    ((ANY, 0, False, 3, 0, 2, 1, 0), SKIP_IMPOSSIBLE),
    ((ANY, 0, True, 3, 0, 1, 2, 0), SKIP_IMPOSSIBLE),
    ((ANY, 0, False, 3, 1, 0, 0, 2), WAIT),
    ((ANY, 7, False, 3, 1, 0, 0, 0), RUN),  # min_success is not read for any
    # quorum
    ((QUORUM, 2, False, 3, 1, 1, 0, 0), WAIT),
    ((QUORUM, 2, False, 3, 2, 0, 0, 0), RUN),
    ((QUORUM, 2, False, 3, 2, 1, 0, 0), RUN),
    ((QUORUM, 2, False, 3, 0, 1, 1, 0), SKIP_IMPOSSIBLE),
    ((QUORUM, 2, False, 3, 1, 2, 0, 0), SKIP_IMPOSSIBLE),
    ((QUORUM, 2, True, 3, 0, 2, 0, 0), SKIP_IMPOSSIBLE),
    ((QUORUM, 2, False, 3, 2, 0, 0, 1), WAIT),  # §19.6: two of three, wait for the third
    ((QUORUM, 2, False, 3, 2, 1, 0, 0), RUN),
    ((QUORUM, 3, False, 3, 3, 0, 0, 0), RUN),
    ((QUORUM, 0, False, 3, 1, 0, 0, 0), RUN),  # unset min_success counts as 1
    ((QUORUM, 0, False, 3, 0, 3, 0, 0), SKIP_IMPOSSIBLE),
    ((QUORUM, 4, False, 3, 0, 0, 0, 0), SKIP_IMPOSSIBLE),  # more than there are
    ((QUORUM, 4, False, 3, 3, 0, 0, 0), SKIP_IMPOSSIBLE),
    # beyond 64-bit integers the rule is still exact
    ((ALL, 0, False, 10**30, 10**30, 0, 0, 0), RUN),
    ((ALL, 0, False, 10**30, 10**30 - 1, 0, 0, 0), WAIT),
    ((QUORUM, 10**20, False, 10**30, 10**20 - 1, 0, 0, 0), WAIT),
    ((QUORUM, 10**20, False, 10**30, 10**20, 0, 0, 0), RUN),
    ((QUORUM, 10**20, False, 10**30, 1, 10**30 - 10**20 + 2, 0, 0), SKIP_IMPOSSIBLE),
    ((ANY, 0, False, 2**63, 0, 2**63 - 1, 0, 2**70), WAIT),
    ((ALL, 0, False, 2**61, 2**61 - 1, 0, 1, 0), SKIP_UPSTREAM),
    ((ALL, 0, False, 2**61 + 1, 2**61, 0, 1, 0), SKIP_UPSTREAM),
]


@pytest.mark.parametrize(("args", "expected"), PINNED)
def test_pinned_values(impl, args, expected):
    result = impl.dag_ready.evaluate_readiness(*args)
    assert result == expected and type(result) is int
    assert spec_reference(*args) == expected
    assert impl.dag_ready.evaluate_readiness_many(*[[a] for a in args]) == [expected]


PINNED_ERRORS = [
    ((3, 0, False, 1, 0, 0, 0, 0), "unknown join 3: expected 0 (all), 1 (any) or 2 (quorum)"),
    ((-1, 0, False, 1, 0, 0, 0, 0), "unknown join -1"),
    ((2**64, 0, False, 1, 0, 0, 0, 0), f"unknown join {2**64}"),
    ((9, -1, False, 0, -1, 5, 5, -1), "unknown join 9"),  # the join is checked first
    ((ALL, 0, False, 0, 0, 0, 0, 0), "counts out of range"),
    ((ALL, 0, False, -4, 0, 0, 0, 0), "counts out of range"),
    ((ALL, -1, False, 1, 0, 0, 0, 0), "counts out of range"),  # even where unread
    ((ANY, 0, False, 1, -1, 0, 0, 0), "counts out of range"),
    ((ANY, 0, False, 1, 0, -1, 0, 0), "counts out of range"),
    ((ANY, 0, False, 1, 0, 0, -1, 0), "counts out of range"),
    ((ANY, 0, False, 1, 0, 0, 0, -1), "counts out of range"),
    ((ANY, 0, False, 1, 0, 0, 0, -(2**70)), "counts out of range"),
    ((ALL, 0, False, 0, 1, 1, 1, 0), "counts out of range"),  # range before sum
    (
        (QUORUM, 1, False, 2, 1, 1, 1, 0),
        (
            "more finished dependencies than dependencies: 1 completed + 1 failed + 1 skipped"
            " > 2 total"
        ),
    ),
    ((ALL, 0, False, 2**62, 2**62, 1, 0, 0), "more finished dependencies than dependencies"),
]


@pytest.mark.parametrize(("args", "message"), PINNED_ERRORS)
def test_pinned_errors(impl, args, message):
    with pytest.raises(ValueError) as info:
        impl.dag_ready.evaluate_readiness(*args)
    assert str(info.value).startswith(message)
    with pytest.raises(ValueError):
        spec_reference(*args)
    with pytest.raises(ValueError, match="^row 0: "):
        impl.dag_ready.evaluate_readiness_many(*[[a] for a in args])


class Level(IntEnum):
    ONE = 1
    TWO = 2


BAD_TYPES = [True, False, 1.0, "1", None, b"1", [1]]


@pytest.mark.parametrize("position", [k for k in range(8) if k != 2])
@pytest.mark.parametrize("bad", BAD_TYPES)
def test_integer_arguments_refuse_other_types(impl, position, bad):
    args: list[Any] = [QUORUM, 1, False, 3, 1, 0, 0, 0]
    args[position] = bad
    with pytest.raises(TypeError) as info:
        impl.dag_ready.evaluate_readiness(*args)
    assert str(info.value) == f"{ARGS[position]} must be an int, got {type(bad).__name__}"


@pytest.mark.parametrize("bad", [None, 1.0, "yes", b"", [True]])
def test_allow_failed_deps_is_a_bool_or_an_int(impl, bad):
    evaluate = impl.dag_ready.evaluate_readiness
    with pytest.raises(TypeError, match="^allow_failed_deps must be a bool or an int, got "):
        evaluate(ALL, 0, bad, 2, 1, 1, 0, 0)
    for flag, expected in ((True, RUN), (1, RUN), (7, RUN), (2**80, RUN), (0, SKIP_UPSTREAM)):
        assert evaluate(ALL, 0, flag, 2, 1, 1, 0, 0) == expected


def test_type_checks_come_first_in_argument_order(impl):
    evaluate = impl.dag_ready.evaluate_readiness
    with pytest.raises(TypeError, match="^min_success "):
        evaluate(7, None, None, 0, 1.5, 0, 0, 0)
    with pytest.raises(TypeError, match="^allow_failed_deps "):
        evaluate(7, 0, None, 0, 1.5, 0, 0, 0)
    with pytest.raises(TypeError, match="^completed "):
        evaluate(7, 0, True, 0, 1.5, 0, 0, 0)


def test_enums_and_int_subclasses(impl):
    module = impl.dag_ready
    assert module.Join is _api.Join and module.Readiness is _api.Readiness
    assert [(m.name, m.value) for m in module.Join] == [("ALL", 0), ("ANY", 1), ("QUORUM", 2)]
    assert [(m.name, m.value) for m in module.Readiness] == [
        ("WAIT", 0),
        ("RUN", 1),
        ("SKIP_IMPOSSIBLE", 2),
        ("SKIP_UPSTREAM", 3),
    ]
    result = module.evaluate_readiness(Join.QUORUM, Level.TWO, False, 3, Level.TWO, 0, 0, 0)
    assert result == RUN and type(result) is int
    assert module.evaluate_readiness_many(
        [Join.ANY], [0], [Level.ONE], [1], [0], [1], [0], [0]
    ) == [SKIP_IMPOSSIBLE]


def test_keyword_arguments(impl):
    names = dict(zip(ARGS, (QUORUM, 2, False, 3, 2, 0, 0, 1)))
    assert impl.dag_ready.evaluate_readiness(**names) == WAIT
    columns = {name: [value] for name, value in names.items()}
    assert impl.dag_ready.evaluate_readiness_many(**columns) == [WAIT]


# --- properties 1-7, exhaustively ------------------------------------------------------


def test_matches_the_reference_on_the_grid(table):
    """Property 1 (with the next test): every twin is the normative reference."""
    mismatches = [args for args, got in table.items() if got != spec_reference(*args)]
    assert mismatches == []
    assert all(type(got) is int for got in table.values())


@pytest.mark.compiled
def test_twins_agree_on_the_grid_and_around_it(both):
    """Property 1: equal results, or the same exception and message, inside and outside the domain."""
    c, py = both
    c_fn, py_fn = c.dag_ready.evaluate_readiness, py.dag_ready.evaluate_readiness
    for args in GRID:
        assert c_fn(*args) == py_fn(*args), args
    raised = 0
    for args in itertools.product(
        (-1, 0, 1, 2, 3),
        (-1, 0, 1, 3),
        (False, True),
        (-1, 0, 1, 3),
        (-1, 0, 1, 4),
        (-1, 0, 2),
        (-1, 0, 2),
        (-1, 0, 2),
    ):
        got = assert_same(c_fn, py_fn, *args)
        reference = outcome(spec_reference, *args)
        assert got[0] == reference[0], args
        if got[0] == "raised":
            assert got[1] is ValueError and reference[1] is ValueError
            raised += 1
        else:
            assert got == reference
    assert raised > 10_000


def test_no_stall(table):
    """Property 2: every dependency finished and no context pending never gives WAIT."""
    for (join, ms, allow, total, c, f, s, ctx), got in table.items():
        if c + f + s == total and ctx == 0:
            assert got != WAIT, (join, ms, allow, total, c, f, s, ctx)


def _later(args: tuple) -> Iterator[tuple]:
    """Inputs one step further on: one more dependency finished, or one context node less."""
    join, ms, allow, total, c, f, s, ctx = args
    if c + f + s < total:
        yield (join, ms, allow, total, c + 1, f, s, ctx)
        yield (join, ms, allow, total, c, f + 1, s, ctx)
        yield (join, ms, allow, total, c, f, s + 1, ctx)
    if ctx > 0:
        yield (join, ms, allow, total, c, f, s, ctx - 1)


def test_decisions_are_stable(table):
    """Property 3: once RUN or a SKIP, every later state of the counts gives the same.

    Checking every single step suffices: any later state is reached by steps,
    each of which keeps the decision.
    """
    steps = 0
    for args, got in table.items():
        if got == WAIT:
            continue
        for later in _later(args):
            assert table[later] == got, (args, later)
            steps += 1
    assert steps > 10_000


def test_skip_kinds_belong_to_their_joins(table):
    """Property 4."""
    for args, got in table.items():
        if got == SKIP_UPSTREAM:
            assert args[0] == ALL, args
        if got == SKIP_IMPOSSIBLE:
            assert args[0] in (ANY, QUORUM), args
    assert {SKIP_UPSTREAM, SKIP_IMPOSSIBLE} <= set(table.values())


def test_allow_failed_deps_matters_only_for_all(table):
    """Property 5."""
    changed = 0
    for args, got in table.items():
        join, ms, allow, *rest = args
        other = table[(join, ms, not allow, *rest)]
        if join != ALL:
            assert other == got, args
        changed += other != got
    assert changed > 0  # and it does matter for all


def test_any_is_quorum_of_one(table):
    """Property 6 (ANY ignores min_success, so every value of it is compared)."""
    for args, got in table.items():
        join, _, allow, *rest = args
        if join == ANY:
            assert table[(int(QUORUM), 1, allow, *rest)] == got, args


def test_all_with_allow_failed_deps_runs_exactly_when_everything_finished(table):
    """Property 7."""
    for args, got in table.items():
        join, _, allow, total, c, f, s, ctx = args
        if join == ALL and allow:
            assert (got == RUN) == (c + f + s == total and ctx == 0), args
            assert got in (RUN, WAIT)


# --- the batch form on the grid ------------------------------------------------------


def _columns(rows: Sequence[tuple]) -> list[list[int]]:
    return [[int(row[k]) for row in rows] for k in range(8)]


@pytest.mark.parametrize("container", ["list", "tuple", "q", "i", "b", "H", "mixed"])
def test_batch_equals_single_calls_on_the_grid(impl, table, container):
    columns: list[Any] = _columns(GRID)
    if container == "tuple":
        columns = [tuple(column) for column in columns]
    elif container == "mixed":
        columns = [
            array("q" if k % 2 else "l", column) if k % 3 else column
            for k, column in enumerate(columns)
        ]
    elif container != "list":
        columns = [array(container, column) for column in columns]
    expected = [table[args] for args in GRID]
    got = impl.dag_ready.evaluate_readiness_many(*columns)
    assert got == expected
    assert all(type(value) is int for value in got)


def test_batch_of_nothing(impl):
    many = impl.dag_ready.evaluate_readiness_many
    assert many(*[[] for _ in range(8)]) == []
    assert many(*[array("q") for _ in range(8)]) == []
    assert many(*[b"" for _ in range(8)]) == []


def test_batch_reads_strided_and_unaligned_buffers(impl):
    rows = GRID[::97]
    columns = _columns(rows)
    expected = [spec_reference(*row) for row in rows]
    strided = []
    for column in columns:
        doubled = array("q", [value for value in column for _ in range(2)])
        strided.append(memoryview(doubled)[::2])
    assert impl.dag_ready.evaluate_readiness_many(*strided) == expected
    unaligned = [
        memoryview(b"\0" + array("i", column).tobytes())[1:].cast("i") for column in columns
    ]
    assert impl.dag_ready.evaluate_readiness_many(*unaligned) == expected


# --- batch errors -------------------------------------------------------------------


def _valid_columns(n: int = 3) -> list[Any]:
    return [[ANY] * n, [0] * n, [False] * n, [2] * n, [1] * n, [0] * n, [0] * n, [0] * n]


@pytest.mark.parametrize("position", range(8))
@pytest.mark.parametrize(
    ("bad", "error", "text"),
    [
        ("abc", TypeError, "must be a list, a tuple or a buffer of C integers, got str"),
        (None, TypeError, "must be a list, a tuple or a buffer of C integers, got NoneType"),
        (range(3), TypeError, "must be a list, a tuple or a buffer of C integers, got range"),
        (iter([1, 1, 1]), TypeError, "got list_iterator"),
        (array("d", [1, 1, 1]), TypeError, "must be a buffer of C integers, got format 'd'"),
        (array("f", [1, 1, 1]), TypeError, "got format 'f'"),
        (memoryview(b"\1" * 6).cast("B", (2, 3)), TypeError, "must be one-dimensional, got 2"),
        ([1, 1], ValueError, "has 2 items, join has 3"),
        (array("q", [1] * 4), ValueError, "has 4 items, join has 3"),
    ],
)
def test_batch_column_errors(impl, position, bad, error, text):
    columns = _valid_columns()
    columns[position] = bad
    if error is ValueError and position == 0:
        text = "items, join has"  # the join column sets the length the others are held to
    with pytest.raises(error) as info:
        impl.dag_ready.evaluate_readiness_many(*columns)
    assert text in str(info.value)
    if error is TypeError:
        assert str(info.value).startswith(ARGS[position])


def test_batch_reports_the_first_bad_row(impl):
    many = impl.dag_ready.evaluate_readiness_many
    columns = _valid_columns(5)
    columns[4][3] = True  # a TypeError in row 3 ...
    columns[5][1] = 7  # ... comes after the ValueError in row 1
    with pytest.raises(ValueError, match=r"^row 1: more finished dependencies than"):
        many(*columns)
    columns[5][1] = 0
    with pytest.raises(TypeError, match=r"^completed\[3\] must be an int, got bool$"):
        many(*columns)
    columns[2][3] = "no"  # a bad flag comes before a bad count in the same row
    with pytest.raises(TypeError, match=r"^allow_failed_deps\[3\] must be a bool or an int"):
        many(*columns)


def test_batch_column_checks_come_before_lengths_and_rows(impl):
    many = impl.dag_ready.evaluate_readiness_many
    columns = _valid_columns()
    columns[1] = [1]  # a length error ...
    columns[4] = [True, 1.5, None]  # ... and bad items, but a bad column wins
    columns[6] = "x"
    with pytest.raises(TypeError, match="^skipped must be a list"):
        many(*columns)
    columns[6] = [0, 0, 0]
    with pytest.raises(ValueError, match="^min_success has 1 items, join has 3$"):
        many(*columns)


# --- hypothesis: single calls -------------------------------------------------------

_BOUNDARY = [2**61 - 1, 2**61, 2**61 + 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30]
_any_int = st.one_of(
    st.integers(-2, 12),
    st.integers(-5, 10**6),
    st.sampled_from(_BOUNDARY + [-v for v in _BOUNDARY]),
    st.integers(),
)
_loose = st.one_of(
    _any_int,
    _any_int,
    _any_int,
    st.booleans(),
    st.floats(allow_nan=False, min_value=-3, max_value=3),
    st.none(),
    st.text(max_size=1),
    st.sampled_from([Level.ONE, Level.TWO, Join.QUORUM]),
)


@st.composite
def valid_args(draw: st.DrawFn, limit: int = 10**9) -> tuple:
    """Inputs in the domain, with counts up to `limit`."""
    total = draw(st.integers(1, limit))
    completed = draw(st.integers(0, total))
    failed = draw(st.integers(0, total - completed))
    skipped = draw(st.integers(0, total - completed - failed))
    if draw(st.booleans()):  # often everything finished, where decisions are made
        skipped = total - completed - failed
    join = draw(st.sampled_from(list(Join)))
    min_success = draw(st.one_of(st.integers(0, total + 2), st.integers(0, limit)))
    ctx = draw(st.sampled_from([0, 0, 1, 2, limit]))
    allow = draw(st.booleans())
    return (int(join), min_success, allow, total, completed, failed, skipped, ctx)


_valid = st.one_of(valid_args(), valid_args(12), valid_args(2**61 + 4), valid_args(2**70))


@pytest.mark.compiled
@PROPERTY
@given(args=_valid)
def test_twins_agree_in_the_domain(both, args):
    c, py = both
    got = assert_same(c.dag_ready.evaluate_readiness, py.dag_ready.evaluate_readiness, *args)
    assert got == ("returned", spec_reference(*args))


@pytest.mark.compiled
@PROPERTY
@given(args=st.tuples(*[_loose] * 8))
def test_twins_agree_on_any_input(both, args):
    c, py = both
    got = assert_same(c.dag_ready.evaluate_readiness, py.dag_ready.evaluate_readiness, *args)
    if all(type(a) is int for a in args):  # plain ints: the reference decides what raises
        reference = outcome(spec_reference, *args)
        assert got[0] == reference[0]
        assert got == reference or got[1] is reference[1] is ValueError


# --- hypothesis: the batch form ------------------------------------------------------

_FORMATS = {
    "b": (-(2**7), 2**7 - 1),
    "B": (0, 2**8 - 1),
    "h": (-(2**15), 2**15 - 1),
    "H": (0, 2**16 - 1),
    "i": (-(2**31), 2**31 - 1),
    "I": (0, 2**32 - 1),
    "l": (-(2**63), 2**63 - 1),
    "L": (0, 2**64 - 1),
    "q": (-(2**63), 2**63 - 1),
    "Q": (0, 2**64 - 1),
}


def _fits(column: list[Any], code: str) -> bool:
    low, high = _FORMATS[code]
    return all(type(v) is int and low <= v <= high for v in column)


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    """Eight columns: valid or loose rows, each column in some container, sometimes broken."""
    rows = draw(st.lists(st.one_of(_valid, _valid, st.tuples(*[_loose] * 8)), max_size=8))
    columns: list[Any] = [[row[k] for row in rows] for k in range(8)]
    for k, column in enumerate(columns):
        plain = [int(v) for v in column] if all(isinstance(v, int) for v in column) else None
        choice = draw(st.sampled_from(["list", "list", "tuple", "array", "array", "strided"]))
        if choice == "tuple":
            columns[k] = tuple(column)
        elif choice in ("array", "strided") and plain is not None:
            codes = [code for code in _FORMATS if _fits(plain, code)]
            if codes:
                code = draw(st.sampled_from(codes))
                if choice == "array":
                    columns[k] = array(code, plain)
                else:
                    doubled = array(code, [v for v in plain for _ in range(2)])
                    columns[k] = memoryview(doubled)[::2]
    if rows and draw(st.integers(0, 9)) == 0:  # a column of another length
        k = draw(st.integers(0, 7))
        columns[k] = list(columns[k])[:-1]
    if draw(st.integers(0, 19)) == 0:  # a column of another kind
        k = draw(st.integers(0, 7))
        columns[k] = draw(
            st.sampled_from(
                [None, "", {}, array("d"), b"", memoryview(b"\0" * 4).cast("B", (2, 2))]
            )
        )
    return columns


@pytest.mark.compiled
@BATCHES
@given(columns=batches())
def test_twins_agree_on_batches(both, columns):
    c, py = both
    got = assert_same(
        c.dag_ready.evaluate_readiness_many, py.dag_ready.evaluate_readiness_many, *columns
    )
    if got[0] == "returned":
        rows = list(zip(*[list(column) for column in columns]))
        assert got[1] == [py.dag_ready.evaluate_readiness(*row) for row in rows]
        assert all(type(value) is int for value in got[1])


@BATCHES
@given(columns=batches())
def test_batch_is_the_single_call_row_by_row(impl, columns):
    got = outcome(impl.dag_ready.evaluate_readiness_many, *columns)
    if got[0] == "raised" and not (got[1] is ValueError and got[2].startswith("row ")):
        return  # a column or element error: covered by the differential test
    lists = [list(column) for column in columns]
    if got[0] == "returned":
        assert got[1] == [impl.dag_ready.evaluate_readiness(*row) for row in zip(*lists)]
        return
    index = int(got[2].split(":")[0].removeprefix("row "))
    single = outcome(impl.dag_ready.evaluate_readiness, *[column[index] for column in lists])
    assert single[1] is ValueError and got[2] == f"row {index}: {single[2]}"


# --- benchmark inputs -------------------------------------------------------------------


@pytest.mark.compiled
def test_twins_agree_on_the_benchmark_inputs(both):
    c, py = both
    rows = readiness_rows(5_000)
    expected = [spec_reference(*row) for row in rows]
    for impl in (c, py):
        assert [impl.dag_ready.evaluate_readiness(*row) for row in rows] == expected
        columns = readiness_columns(5_000)
        assert impl.dag_ready.evaluate_readiness_many(*columns) == expected
        arrays = [array("q", column) for column in columns]
        assert impl.dag_ready.evaluate_readiness_many(*arrays) == expected
