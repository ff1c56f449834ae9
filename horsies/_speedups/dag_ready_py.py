"""Workflow readiness rule: the pure-Python twin and reference (workflows.md §16.4).

`evaluate_readiness` decides from counts alone what happens to one PENDING
node of a RUNNING workflow: wait, run, or be SKIPPED (a `Readiness` value, as
a plain int). Arguments are checked in two steps, before any computation:

1. types, in argument order: every integer argument must be an ``int`` (not
   ``bool``), else ``TypeError``; ``allow_failed_deps`` must be a ``bool`` or
   an ``int`` (read by truth value), else ``TypeError``;
2. values, exactly as the normative reference does: an unknown join, then
   ``total < 1`` or any other count (``min_success`` included) below 0, then
   more finished dependencies than ``total``, each a ``ValueError``.

Integers have no upper bound: the rule is exact at any size.

`evaluate_readiness_many` applies the rule row by row to columns of equal
length: lists or tuples of ints, or objects exposing the buffer protocol
with a native C integer format (``array('q')``, ``array('i')``, ``bytes``, ...).
It checks the columns in argument order (``TypeError``), then their lengths
(``ValueError``), then the rows in order; the first bad row raises what
`evaluate_readiness` would raise for it, naming the element
(``completed[3] must be an int, got bool``) or the row (``row 3: ...``).
"""

from __future__ import annotations

from collections.abc import Sequence

from horsies._speedups._api import (
    INT_FORMATS,
    READINESS_ARGS,
    IntColumn,
    Join,
    Readiness,
    column_format_error,
    column_shape_error,
    column_type_error,
    counts_range_error,
    flag_type_error,
    int_type_error,
    length_error,
    overfull_error,
    row_error,
    unknown_join_error,
)

__all__ = ["Join", "Readiness", "evaluate_readiness", "evaluate_readiness_many"]

# Results are plain ints (what the engine compares and stores), not enum members.
_WAIT = 0
_RUN = 1
_SKIP_IMPOSSIBLE = 2
_SKIP_UPSTREAM = 3
_FLAG = READINESS_ARGS.index("allow_failed_deps")


def _checked(name: str, value: object) -> int:
    """`value` as a plain int, or the TypeError for `name`."""
    if type(value) is bool or not isinstance(value, int):
        raise int_type_error(name, value)
    return int(value)


def _flag(name: str, value: object) -> bool:
    # bool is an int: True/False and 0/1 columns read alike.
    if not isinstance(value, int):
        raise flag_type_error(name, value)
    return bool(value)


def _rule(
    join: int,
    min_success: int,
    allow_failed_deps: bool,
    total: int,
    completed: int,
    failed: int,
    skipped: int,
    ctx_pending: int,
) -> int:
    """The normative rule of workflows.md §16.4, on checked values."""
    if join not in (Join.ALL, Join.ANY, Join.QUORUM):
        raise unknown_join_error(join)
    if total < 1 or min(completed, failed, skipped, ctx_pending, min_success) < 0:
        raise counts_range_error()
    finished = completed + failed + skipped
    if finished > total:
        raise overfull_error(total, completed, failed, skipped)

    if join == Join.ALL:
        if finished < total or ctx_pending > 0:
            return _WAIT
        if failed + skipped > 0 and not allow_failed_deps:
            return _SKIP_UPSTREAM
        return _RUN

    need = 1 if join == Join.ANY else max(min_success, 1)
    if completed >= need:
        return _WAIT if ctx_pending > 0 else _RUN  # the context gate (§6.5)
    if completed + (total - finished) < need:
        return _SKIP_IMPOSSIBLE
    return _WAIT


def evaluate_readiness(
    join: int,
    min_success: int,
    allow_failed_deps: bool,
    total: int,
    completed: int,
    failed: int,
    skipped: int,
    ctx_pending: int,
) -> int:
    """What happens to one PENDING node: a `Readiness` value (workflows.md §16.4)."""
    return _rule(
        _checked("join", join),
        _checked("min_success", min_success),
        _flag("allow_failed_deps", allow_failed_deps),
        _checked("total", total),
        _checked("completed", completed),
        _checked("failed", failed),
        _checked("skipped", skipped),
        _checked("ctx_pending", ctx_pending),
    )


def _column(name: str, value: object) -> Sequence[object]:
    """The items of one argument of `evaluate_readiness_many`, unchecked."""
    # Exactly list or tuple: a subclass could answer len() and iteration differently.
    if type(value) is list or type(value) is tuple:
        return value
    try:
        view = memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        raise column_type_error(name, value) from None
    with view:
        if view.format not in INT_FORMATS:
            raise column_format_error(name, view.format)
        if view.ndim != 1:
            raise column_shape_error(name, view.ndim)
        items: list[int] = view.tolist()
        return items


def _row(index: int, row: tuple[object, ...]) -> int:
    """Row `index`: type checks in argument order, then the rule."""
    values: list[int] = []
    for position, value in enumerate(row):
        if position == _FLAG:
            if not isinstance(value, int):
                raise flag_type_error(f"{READINESS_ARGS[position]}[{index}]", value)
            values.append(1 if value else 0)
        elif type(value) is bool or not isinstance(value, int):
            raise int_type_error(f"{READINESS_ARGS[position]}[{index}]", value)
        else:
            values.append(int(value))
    join, min_success, allow, total, completed, failed, skipped, ctx_pending = values
    try:
        return _rule(join, min_success, allow != 0, total, completed, failed, skipped, ctx_pending)
    except ValueError as exc:
        raise row_error(index, exc) from None


def evaluate_readiness_many(
    join: IntColumn,
    min_success: IntColumn,
    allow_failed_deps: IntColumn,
    total: IntColumn,
    completed: IntColumn,
    failed: IntColumn,
    skipped: IntColumn,
    ctx_pending: IntColumn,
) -> list[int]:
    """`evaluate_readiness` over equal-length columns: one result per row."""
    args = (join, min_success, allow_failed_deps, total, completed, failed, skipped, ctx_pending)
    columns = [_column(name, arg) for name, arg in zip(READINESS_ARGS, args)]
    length = len(columns[0])
    for name, column in zip(READINESS_ARGS[1:], columns[1:]):
        if len(column) != length:
            raise length_error(name, len(column), length)
    return [_row(index, row) for index, row in enumerate(zip(*columns))]
