"""Claim planning of one pass: the compiled twin of claim_plan_py (same names, results, errors)."""

from collections.abc import Mapping, Sequence

from cpython.bool cimport PyBool_Check
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_Check
from libc.stdlib cimport free, malloc, qsort

from horsies._speedups._api import int_range_error, int_type_error

__all__ = ["queue_claim_limit", "order_queues", "plan_pass"]

cdef enum:
    _INT_MAX = 2147483647
    _NO_CAP = -1


cdef long long _checked(object name, object value) except -1:
    """`value` as a C integer, or the domain error for `name`."""
    cdef int overflow = 0
    cdef long long v
    if PyBool_Check(value) or not PyLong_Check(value):
        raise int_type_error(name, value)
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow != 0 or v < 0 or v > _INT_MAX:
        raise int_range_error(name, value)
    return v


cdef int _problem(object value, long long *out) noexcept:
    """0 and the value in `out` when `value` is in the domain; 1 for a wrong
    type, 2 for out of range. Lets callers build argument names only on failure."""
    cdef int overflow = 0
    cdef long long v
    if PyBool_Check(value) or not PyLong_Check(value):
        return 1
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow != 0 or v < 0 or v > _INT_MAX:
        return 2
    out[0] = v
    return 0


cdef object _domain_error(object name, object value, int problem):
    return int_type_error(name, value) if problem == 1 else int_range_error(name, value)


cdef inline long long _checked_optional(object name, object value) except -2:
    """Like `_checked`, with None as _NO_CAP."""
    if value is None:
        return _NO_CAP
    return _checked(name, value)


cdef object _sequence(str name, object value):
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence, got {type(value).__name__}")
    return value


cdef inline long long _limit(long long remaining, long long max_claim_batch, long long cap,
                             long long in_flight) noexcept:
    cdef long long limit = remaining if remaining < max_claim_batch else max_claim_batch
    cdef long long room
    if cap != _NO_CAP:
        room = cap - in_flight
        if room < 0:
            room = 0
        if room < limit:
            limit = room
    return limit if limit > 0 else 0


def queue_claim_limit(remaining, max_claim_batch, queue_max_concurrency, queue_in_flight):
    """How many rows one queue may claim from what is left of the pass budget."""
    cdef long long r = _checked("remaining", remaining)
    cdef long long b = _checked("max_claim_batch", max_claim_batch)
    cdef long long cap = _checked_optional("queue_max_concurrency", queue_max_concurrency)
    cdef long long f = _checked("queue_in_flight", queue_in_flight)
    return _limit(r, b, cap, f)


ctypedef struct _Ranked:
    long long priority
    Py_ssize_t index


cdef int _by_priority(const void *a, const void *b) noexcept nogil:
    # Ties are broken by position, so qsort gives exactly what a stable sort gives.
    cdef const _Ranked *x = <const _Ranked *> a
    cdef const _Ranked *y = <const _Ranked *> b
    if x.priority != y.priority:
        return -1 if x.priority < y.priority else 1
    return -1 if x.index < y.index else (1 if x.index > y.index else 0)


def order_queues(names, priorities):
    """The order in which a pass visits the queues (see claim_plan_py.order_queues)."""
    cdef list checked = []
    cdef Py_ssize_t i = 0
    cdef int problem
    names = _sequence("names", names)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"names[{i}] must be a str, got {type(name).__name__}")
        checked.append(name)
        i += 1
    if priorities is None:
        return checked
    if not isinstance(priorities, Mapping):
        raise TypeError(f"priorities must be a mapping or None, got {type(priorities).__name__}")
    cdef Py_ssize_t n = len(checked)
    cdef _Ranked *ranked = <_Ranked *> malloc((n if n > 0 else 1) * sizeof(_Ranked))
    if ranked == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            name = checked[i]
            if name not in priorities:
                raise ValueError(f"queue {name!r} has no priority")
            priority = priorities[name]
            problem = _problem(priority, &ranked[i].priority)
            if problem:
                raise _domain_error(f"priorities[{name!r}]", priority, problem)
            ranked[i].index = i
        qsort(ranked, n, sizeof(_Ranked), _by_priority)
        return [checked[ranked[i].index] for i in range(n)]
    finally:
        free(ranked)


def plan_pass(budget, max_claim_batch, queues):
    """Simulate step 5 of a claim pass: how many rows each queue gets."""
    cdef long long remaining = _checked("budget", budget)
    cdef long long batch = _checked("max_claim_batch", max_claim_batch)
    cdef Py_ssize_t n, i = 0
    cdef int k, problem
    cdef long long *table
    cdef long long limit, available
    cdef tuple entries, entry
    cdef list claimed
    entries = tuple(_sequence("queues", queues))
    n = len(entries)
    table = <long long *> malloc(3 * (n if n > 0 else 1) * sizeof(long long))
    if table == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            item = entries[i]
            if not isinstance(item, tuple):
                raise TypeError(f"queues[{i}] must be a tuple, got {type(item).__name__}")
            entry = <tuple> item
            if len(entry) != 3:
                raise ValueError(f"queues[{i}] must have 3 items, got {len(entry)}")
            for k in range(3):
                if k == 0 and entry[0] is None:
                    table[3 * i] = _NO_CAP
                    continue
                problem = _problem(entry[k], &table[3 * i + k])
                if problem:
                    raise _domain_error(f"queues[{i}][{k}]", entry[k], problem)
        claimed = []
        for i in range(n):
            limit = _limit(remaining, batch, table[3 * i], table[3 * i + 1])
            available = table[3 * i + 2]
            if available < limit:
                limit = available
            claimed.append(limit)
            remaining -= limit
        return claimed
    finally:
        free(table)
