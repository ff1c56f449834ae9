"""Which slots a due entry handles in one tick (scheduling.md §8.1, §8.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from horsies.scheduler.slots import catch_up, latest

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def every(seconds: int):  # type: ignore[no-untyped-def]
    return lambda slot: slot + timedelta(seconds=seconds)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_latest_in_normal_operation_is_the_due_slot() -> None:
    plan = latest(every(60), at(0), at(0.5))
    assert (plan.slot, plan.upcoming, plan.skipped) == (at(0), at(60), 0)
    assert not plan.scan_limited and not plan.stalled


def test_latest_after_downtime_is_the_most_recent_missed_slot() -> None:
    # Down for 5 slots: 0, 60, ..., 300 are due at 330; 300 is fired, 5 are skipped.
    plan = latest(every(60), at(0), at(330))
    assert (plan.slot, plan.upcoming, plan.skipped) == (at(300), at(360), 5)
    # A slot exactly at `now` is due.
    assert latest(every(60), at(0), at(360)).slot == at(360)


def test_latest_stops_scanning_at_the_limit() -> None:
    plan = latest(every(1), at(0), at(1000), max_steps=100)
    assert plan.scan_limited and plan.skipped == 100
    assert plan.upcoming == at(101) and plan.upcoming <= at(1000)
    # The next tick continues from `upcoming` and reaches the present.
    plan = latest(every(1), plan.upcoming, at(1000), max_steps=1000)
    assert (plan.slot, plan.scan_limited) == (at(1000), False)


def test_latest_notices_a_next_run_that_does_not_move() -> None:
    assert latest(lambda slot: slot, at(0), at(10)).stalled
    assert latest(lambda slot: slot - timedelta(seconds=1), at(0), at(10)).stalled


def test_catch_up_collects_every_due_slot_oldest_first() -> None:
    plan = catch_up(every(60), at(0), at(190), cap=100)
    assert plan.slots == [at(0), at(60), at(120), at(180)]
    assert plan.following == [at(60), at(120), at(180), at(240)]
    assert not plan.more and not plan.stalled


def test_catch_up_is_bounded_per_tick() -> None:
    plan = catch_up(every(60), at(0), at(590), cap=3)
    assert plan.slots == [at(0), at(60), at(120)] and plan.more
    plan = catch_up(every(60), plan.following[-1], at(590), cap=3)
    assert plan.slots == [at(180), at(240), at(300)] and plan.more
    plan = catch_up(every(60), plan.following[-1], at(590), cap=3)
    assert plan.slots == [at(360), at(420), at(480)] and plan.more
    plan = catch_up(every(60), plan.following[-1], at(590), cap=3)
    assert plan.slots == [at(540)] and not plan.more


def test_catch_up_stops_when_next_run_does_not_move() -> None:
    plan = catch_up(lambda slot: slot, at(0), at(10), cap=5)
    assert plan.stalled and plan.slots == []
