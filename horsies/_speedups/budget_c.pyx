"""Claim budget of one pass: the compiled twin of budget_py (same names, results, errors)."""

from cpython.bool cimport PyBool_Check
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_Check

from horsies._speedups._api import int_range_error, int_type_error

__all__ = ["effective_max_claimed", "compute_pass_budget"]

cdef enum:
    _INT_MAX = 2147483647


cdef long long _checked(str name, object value) except -1:
    """`value` as a C integer, or the domain error for `name`."""
    cdef int overflow = 0
    cdef long long v
    if PyBool_Check(value) or not PyLong_Check(value):
        raise int_type_error(name, value)
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow != 0 or v < 0 or v > _INT_MAX:
        raise int_range_error(name, value)
    return v


cdef inline long long _max_claimed(long long processes, long long prefetch_buffer,
                                   long long max_claim_per_worker) noexcept:
    if max_claim_per_worker > 0:
        return max_claim_per_worker
    if prefetch_buffer > 0:
        return processes + prefetch_buffer
    return processes


def effective_max_claimed(processes, prefetch_buffer, max_claim_per_worker):
    """How many claimed-but-not-running tasks this worker may hold."""
    cdef long long p = _checked("processes", processes)
    cdef long long pb = _checked("prefetch_buffer", prefetch_buffer)
    cdef long long m = _checked("max_claim_per_worker", max_claim_per_worker)
    return _max_claimed(p, pb, m)


def compute_pass_budget(processes, prefetch_buffer, max_claim_per_worker, cluster_wide_cap,
                        local_running, local_claimed, global_in_flight):
    """How many tasks one claim pass may claim in total (0 means skip the pass)."""
    cdef long long p = _checked("processes", processes)
    cdef long long pb = _checked("prefetch_buffer", prefetch_buffer)
    cdef long long m = _checked("max_claim_per_worker", max_claim_per_worker)
    cdef bint has_cap = cluster_wide_cap is not None
    cdef long long cap = _checked("cluster_wide_cap", cluster_wide_cap) if has_cap else 0
    cdef long long running = _checked("local_running", local_running)
    cdef long long claimed = _checked("local_claimed", local_claimed)
    cdef long long in_flight = _checked("global_in_flight", global_in_flight)
    cdef long long local, budget, room

    if pb == 0:  # hard cap: claimed tasks count against the processes
        local = p - (running + claimed)
    else:  # soft cap: prefetch beyond the running tasks
        local = p + pb - running
    budget = local if local > 0 else 0
    room = _max_claimed(p, pb, m) - claimed
    if room < 0:
        room = 0
    if room < budget:
        budget = room
    if has_cap:
        room = cap - in_flight
        if room < 0:
            room = 0
        if room < budget:
            budget = room
    return budget
