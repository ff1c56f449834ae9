"""Claim budget of one pass: the pure-Python twin and reference (workers.md §16).

Every integer argument must be an ``int`` (not ``bool``) in ``0 .. 2**31 - 1``;
``cluster_wide_cap`` may also be ``None``. Arguments are checked in order,
before any computation: ``TypeError`` for a non-int, ``ValueError`` for a
value out of range.
"""

from __future__ import annotations

from horsies._speedups._api import INT_MAX, int_range_error, int_type_error

__all__ = ["effective_max_claimed", "compute_pass_budget"]


def _checked(name: str, value: object) -> int:
    """`value` as a plain int, or the domain error for `name`."""
    if type(value) is bool or not isinstance(value, int):
        raise int_type_error(name, value)
    if value < 0 or value > INT_MAX:
        raise int_range_error(name, value)
    return int(value)


def _checked_optional(name: str, value: object) -> int | None:
    return None if value is None else _checked(name, value)


def _max_claimed(processes: int, prefetch_buffer: int, max_claim_per_worker: int) -> int:
    if max_claim_per_worker > 0:
        return max_claim_per_worker
    if prefetch_buffer > 0:
        return processes + prefetch_buffer
    return processes


def effective_max_claimed(processes: int, prefetch_buffer: int, max_claim_per_worker: int) -> int:
    """How many claimed-but-not-running tasks this worker may hold."""
    processes = _checked("processes", processes)
    prefetch_buffer = _checked("prefetch_buffer", prefetch_buffer)
    max_claim_per_worker = _checked("max_claim_per_worker", max_claim_per_worker)
    return _max_claimed(processes, prefetch_buffer, max_claim_per_worker)


def compute_pass_budget(
    processes: int,
    prefetch_buffer: int,
    max_claim_per_worker: int,
    cluster_wide_cap: int | None,
    local_running: int,
    local_claimed: int,
    global_in_flight: int,
) -> int:
    """How many tasks one claim pass may claim in total (0 means skip the pass)."""
    processes = _checked("processes", processes)
    prefetch_buffer = _checked("prefetch_buffer", prefetch_buffer)
    max_claim_per_worker = _checked("max_claim_per_worker", max_claim_per_worker)
    cluster_wide_cap = _checked_optional("cluster_wide_cap", cluster_wide_cap)
    local_running = _checked("local_running", local_running)
    local_claimed = _checked("local_claimed", local_claimed)
    global_in_flight = _checked("global_in_flight", global_in_flight)

    if prefetch_buffer == 0:  # hard cap: claimed tasks count against the processes
        local = processes - (local_running + local_claimed)
    else:  # soft cap: prefetch beyond the running tasks
        local = processes + prefetch_buffer - local_running
    budget = max(0, local)
    room = _max_claimed(processes, prefetch_buffer, max_claim_per_worker) - local_claimed
    budget = min(budget, max(0, room))
    if cluster_wide_cap is not None:
        budget = min(budget, max(0, cluster_wide_cap - global_in_flight))
    return budget
