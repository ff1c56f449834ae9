"""Claim planning of one pass: the pure-Python twin and reference (workers.md §16).

Every integer argument must be an ``int`` (not ``bool``) in ``0 .. 2**31 - 1``;
``queue_max_concurrency`` (and the cap of a queue given to `plan_pass`) may
also be ``None``. Arguments are checked in order, before any computation:
``TypeError`` for a wrong type, ``ValueError`` for a value out of range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from horsies._speedups._api import INT_MAX, QueueState, int_range_error, int_type_error

__all__ = ["queue_claim_limit", "order_queues", "plan_pass"]


def _checked(name: str, value: object) -> int:
    """`value` as a plain int, or the domain error for `name`."""
    if type(value) is bool or not isinstance(value, int):
        raise int_type_error(name, value)
    if value < 0 or value > INT_MAX:
        raise int_range_error(name, value)
    return int(value)


def _checked_optional(name: str, value: object) -> int | None:
    return None if value is None else _checked(name, value)


def _sequence(name: str, value: object) -> Sequence[object]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence, got {type(value).__name__}")
    return value


def _limit(remaining: int, max_claim_batch: int, cap: int | None, in_flight: int) -> int:
    limit = min(remaining, max_claim_batch)
    if cap is not None:
        limit = min(limit, max(0, cap - in_flight))
    return max(0, limit)


def queue_claim_limit(
    remaining: int,
    max_claim_batch: int,
    queue_max_concurrency: int | None,
    queue_in_flight: int,
) -> int:
    """How many rows one queue may claim from what is left of the pass budget."""
    remaining = _checked("remaining", remaining)
    max_claim_batch = _checked("max_claim_batch", max_claim_batch)
    queue_max_concurrency = _checked_optional("queue_max_concurrency", queue_max_concurrency)
    queue_in_flight = _checked("queue_in_flight", queue_in_flight)
    return _limit(remaining, max_claim_batch, queue_max_concurrency, queue_in_flight)


def order_queues(names: Sequence[str], priorities: Mapping[str, int] | None) -> list[str]:
    """The order in which a pass visits the queues.

    DEFAULT mode (`priorities` is None): the given order. CUSTOM mode: a
    stable sort by priority (lower first), so equal priorities keep the given
    (configuration) order. A name missing from `priorities` is a ValueError.
    """
    checked: list[str] = []
    for i, name in enumerate(_sequence("names", names)):
        if not isinstance(name, str):
            raise TypeError(f"names[{i}] must be a str, got {type(name).__name__}")
        checked.append(name)
    if priorities is None:
        return checked
    if not isinstance(priorities, Mapping):
        raise TypeError(f"priorities must be a mapping or None, got {type(priorities).__name__}")
    keys: list[int] = []
    for name in checked:
        if name not in priorities:
            raise ValueError(f"queue {name!r} has no priority")
        keys.append(_checked(f"priorities[{name!r}]", priorities[name]))
    order = sorted(range(len(checked)), key=keys.__getitem__)
    return [checked[i] for i in order]


def plan_pass(budget: int, max_claim_batch: int, queues: Sequence[QueueState]) -> list[int]:
    """Simulate step 5 of a claim pass: how many rows each queue gets.

    `queues` holds ``(queue_max_concurrency, queue_in_flight, available)`` in
    claim order, `available` being how many rows the database would return.
    """
    budget = _checked("budget", budget)
    max_claim_batch = _checked("max_claim_batch", max_claim_batch)
    entries = _sequence("queues", queues)
    checked: list[tuple[int | None, int, int]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, tuple):
            raise TypeError(f"queues[{i}] must be a tuple, got {type(entry).__name__}")
        if len(entry) != 3:
            raise ValueError(f"queues[{i}] must have 3 items, got {len(entry)}")
        checked.append(
            (
                _checked_optional(f"queues[{i}][0]", entry[0]),
                _checked(f"queues[{i}][1]", entry[1]),
                _checked(f"queues[{i}][2]", entry[2]),
            )
        )

    remaining = budget
    claimed: list[int] = []
    for cap, in_flight, available in checked:
        n = min(_limit(remaining, max_claim_batch, cap, in_flight), available)
        claimed.append(n)
        remaining -= n
    return claimed
