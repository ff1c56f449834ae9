"""Which slots a due entry handles in one tick (scheduling.md §8). Pure functions.

``next_run`` is ``lambda s: calculate_next_run(pattern, s, timezone)``.
``next_run_at`` is always the earliest slot not yet handled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

__all__ = ["MAX_SCAN_STEPS", "CatchUp", "Latest", "catch_up", "latest"]

#: Most slots the scan of §8.1 walks in one tick (a guard against huge
#: backlogs of tiny intervals); the next tick continues from where it stopped.
MAX_SCAN_STEPS: Final = 100_000

NextRun = Callable[[datetime], datetime]


@dataclass(frozen=True, slots=True)
class Latest:
    """§8.1: the most recent due slot and the first slot after it.

    ``scan_limited``: the scan stopped at :data:`MAX_SCAN_STEPS` with
    ``upcoming`` still due; enqueue nothing, store ``upcoming``.
    ``stalled``: ``next_run`` did not move forward; change nothing.
    """

    slot: datetime
    upcoming: datetime
    skipped: int
    scan_limited: bool = False
    stalled: bool = False


def latest(next_run: NextRun, next_run_at: datetime, now: datetime,
           max_steps: int = MAX_SCAN_STEPS) -> Latest:
    slot, upcoming, skipped = next_run_at, next_run(next_run_at), 0
    while upcoming <= now:
        if upcoming <= slot:
            return Latest(slot, upcoming, skipped, stalled=True)
        if skipped >= max_steps:
            return Latest(slot, upcoming, skipped, scan_limited=True)
        slot, upcoming = upcoming, next_run(upcoming)
        skipped += 1
    if upcoming <= slot:
        return Latest(slot, upcoming, skipped, stalled=True)
    return Latest(slot, upcoming, skipped)


@dataclass(frozen=True, slots=True)
class CatchUp:
    """§8.2: the due slots to enqueue this tick, oldest first.

    ``following[i]`` is the slot after ``slots[i]``, which becomes
    ``next_run_at`` when ``slots[i]`` is the last one handled. ``more``: due
    slots remain beyond the cap. ``stalled``: ``next_run`` did not move forward.
    """

    slots: list[datetime] = field(default_factory=list)
    following: list[datetime] = field(default_factory=list)
    more: bool = False
    stalled: bool = False


def catch_up(next_run: NextRun, next_run_at: datetime, now: datetime, cap: int) -> CatchUp:
    plan = CatchUp()
    slot = next_run_at
    while slot <= now and len(plan.slots) < cap:
        upcoming = next_run(slot)
        plan.slots.append(slot)
        plan.following.append(upcoming)
        if upcoming <= slot:
            plan.slots.pop()
            plan.following.pop()
            return CatchUp(plan.slots, plan.following, stalled=True)
        slot = upcoming
    return CatchUp(plan.slots, plan.following, more=slot <= now)
