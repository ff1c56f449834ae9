"""The scheduler loop (scheduling.md §7, §8): state rows, ticks, missed runs.

Every tick reads the clock once, repairs missing state rows when due, selects
the due entries and processes each under its advisory lock (§7.5). An entry
that fails is logged and leaves the others alone; a slot is enqueued at most
once whatever happens, because its task id is deterministic (§9).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg

from horsies.scheduler.calculator import calculate_next_run
from horsies.scheduler.enqueue import Enqueued, Failed, SlotEnqueuer
from horsies.scheduler.identity import config_hash
from horsies.scheduler.slots import catch_up, latest
from horsies.scheduler.store import LockedEntry, ScheduleStore

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.config.schedule import ScheduleConfig, TaskSchedule

__all__ = ["Scheduler"]

log = logging.getLogger("horsies.scheduler")

#: Missing state rows are looked for about this often (§7.4).
REPAIR_PERIOD_S = 60


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Entry:
    schedule: TaskSchedule
    config_hash: str
    enqueuer: SlotEnqueuer

    @property
    def name(self) -> str:
        return self.schedule.name

    def next_run(self, after: datetime) -> datetime:
        return calculate_next_run(self.schedule.pattern, after, self.schedule.timezone)


class Scheduler:
    """Runs the enabled entries of one ``ScheduleConfig`` until stopped."""

    def __init__(
        self, app: Horsies, config: ScheduleConfig, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.config = config
        self._clock = clock
        self._entries = {
            e.name: _Entry(e, config_hash(e.pattern, e.timezone), SlotEnqueuer(app, e))
            for e in config.enabled_schedules()
        }
        self._store = ScheduleStore(app.get_broker().url())
        self._stop = asyncio.Event()
        self._repair_every = max(1, round(REPAIR_PERIOD_S / config.check_interval_seconds))
        self._ticks = 0
        self._repair_pending = True
        self._tick_error: str | None = None  # the last failure of steps 2-3, logged once

    # -- lifetime -----------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Stop before the next tick; a tick in progress finishes first."""
        if not self._stop.is_set():
            log.info("Scheduler stopping")
        self._stop.set()

    async def run_forever(self) -> None:
        await self.initialize()
        log.info("Scheduler started: %d schedule(s), a tick every %ds",
                 len(self._entries), self.config.check_interval_seconds)
        while not self.stopping:
            await self.tick()
            try:
                await asyncio.wait_for(self._stop.wait(), self.config.check_interval_seconds)
            except TimeoutError:
                pass
        log.info("Scheduler stopped")

    async def close(self) -> None:
        await self._store.close()

    # -- state rows (§7.2) ------------------------------------------------------------

    async def initialize(self) -> None:
        """Create or refresh every entry's state row; a failure is repaired later."""
        now = self._clock()
        failed = 0
        for entry in self._entries.values():
            if not await self._guarded(entry, self._initialize, now):
                failed += 1
        self._repair_pending = failed > 0
        try:
            unknown = await self._store.unknown([e.name for e in self.config.schedules])
        except psycopg.Error as exc:
            log.warning("Could not list state rows of other schedules: %s", exc)
            return
        if unknown:
            log.warning("State rows of schedules not in this configuration are kept (inert; "
                        "delete them by hand once the entries are gone for good): %s",
                        ", ".join(unknown))

    async def _initialize(self, entry: _Entry, now: datetime) -> None:
        async with self._store.locked(entry.name) as row:
            await self._initialize_locked(entry, row, now)

    async def _initialize_locked(self, entry: _Entry, row: LockedEntry, now: datetime) -> None:
        state = await row.read()
        described = f"{entry.schedule.pattern.summary()} ({entry.schedule.timezone})"
        if state is not None and state.config_hash == entry.config_hash and (
            state.next_run_at is not None
        ):
            log.info("Schedule '%s': %s, next run at %s", entry.name, described,
                     state.next_run_at.isoformat())
            return
        next_run_at = entry.next_run(now)
        if state is None:
            await row.insert(next_run_at, entry.config_hash)
            log.info("Schedule '%s': %s, first run at %s", entry.name, described,
                     next_run_at.isoformat())
        elif state.config_hash != entry.config_hash:
            await row.rehash(next_run_at, entry.config_hash)
            log.warning("Schedule '%s': pattern or timezone changed; pending slots of the old "
                        "timetable are dropped, next run at %s", entry.name,
                        next_run_at.isoformat())
        else:
            await row.advance(next_run_at)
            log.warning("Schedule '%s': state row had no next run; next run at %s",
                        entry.name, next_run_at.isoformat())

    # -- ticks (§7.3, §7.4) -------------------------------------------------------------

    async def tick(self) -> None:
        """One pass: repair missing rows when due, then process every due entry."""
        now = self._clock()
        names = list(self._entries)
        self._ticks += 1
        try:
            if self._repair_pending or (self._ticks - 1) % self._repair_every == 0:
                await self._repair(now)
            due = await self._store.due(names, now)
        except Exception as exc:  # noqa: BLE001 - logged; the next tick tries again
            self._tick_failed(exc)
            return
        if self._tick_error is not None:
            log.info("Scheduler ticks work again")
            self._tick_error = None
        for name in due:
            await self._guarded(self._entries[name], self._process, now)

    def _tick_failed(self, exc: Exception) -> None:
        """Log a failed tick; the same failure again (a database outage) only at DEBUG."""
        text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        level = logging.DEBUG if text == self._tick_error else logging.ERROR
        log.log(level, "Scheduler tick failed: %s; trying again next tick", text)
        self._tick_error = text

    async def _repair(self, now: datetime) -> None:
        missing = await self._store.missing(list(self._entries))
        failed = 0
        for name in missing:
            log.warning("Schedule '%s' has no state row; creating it", name)
            if not await self._guarded(self._entries[name], self._initialize, now):
                failed += 1
        self._repair_pending = failed > 0

    async def _guarded(
        self, entry: _Entry, step: Callable[[_Entry, datetime], Awaitable[None]], now: datetime
    ) -> bool:
        """Run one entry's step; an exception is logged and stays with that entry."""
        try:
            await step(entry, now)
        except Exception as exc:  # noqa: BLE001 - one entry must not stop the others
            log.error("Schedule '%s' failed: %s: %s", entry.name, type(exc).__name__, exc)
            return False
        return True

    # -- one due entry (§7.5, §8) ---------------------------------------------------------

    async def _process(self, entry: _Entry, now: datetime) -> None:
        async with self._store.locked(entry.name) as row:
            state = await row.read()
            if state is None or state.next_run_at is None:
                await self._initialize_locked(entry, row, now)
                return
            if state.next_run_at > now:
                return  # another scheduler handled it
            if entry.schedule.catch_up_missed:
                await self._catch_up(entry, row, state.next_run_at, now)
            else:
                await self._latest(entry, row, state.next_run_at, now)

    async def _latest(
        self, entry: _Entry, row: LockedEntry, next_run_at: datetime, now: datetime
    ) -> None:
        plan = latest(entry.next_run, next_run_at, now)
        if plan.stalled:
            log.error("Schedule '%s': the next run after %s does not move forward; "
                      "nothing enqueued", entry.name, plan.slot.isoformat())
            raise psycopg.Rollback()
        if plan.skipped:
            log.warning("Schedule '%s': %d missed run(s) skipped; enqueuing the latest slot %s",
                        entry.name, plan.skipped, plan.slot.isoformat())
        if plan.scan_limited:
            log.warning("Schedule '%s': %d slots scanned without reaching the present; "
                        "continuing next tick", entry.name, plan.skipped)
            await row.advance(plan.upcoming)
            return
        outcome = await entry.enqueuer.enqueue(plan.slot)
        if isinstance(outcome, Enqueued):
            self._log_enqueued(entry, plan.slot, outcome)
            await row.record_runs(now, plan.upcoming, outcome.task_id, 1)
        elif outcome.permanent:
            self._log_dropped(entry, plan.slot, outcome)
            await row.advance(plan.upcoming)
        else:
            self._log_retry(entry, plan.slot, outcome)
            raise psycopg.Rollback()

    async def _catch_up(
        self, entry: _Entry, row: LockedEntry, next_run_at: datetime, now: datetime
    ) -> None:
        cap = entry.schedule.max_catch_up_runs
        plan = catch_up(entry.next_run, next_run_at, now, cap)
        if plan.stalled:
            log.error("Schedule '%s': the next run does not move forward; catch-up stops at %d "
                      "slot(s)", entry.name, len(plan.slots))
        if plan.more:
            log.warning("Schedule '%s': more than max_catch_up_runs=%d missed runs; the rest "
                        "follow on the next ticks", entry.name, cap)
        if len(plan.slots) > 1:
            log.warning("Schedule '%s': catching up %d missed runs", entry.name, len(plan.slots))
        handled, enqueued, last_task = 0, 0, ""
        for slot in plan.slots:
            outcome = await entry.enqueuer.enqueue(slot)
            if isinstance(outcome, Failed):
                if outcome.permanent:
                    self._log_dropped(entry, slot, outcome)
                    handled += 1
                else:
                    self._log_retry(entry, slot, outcome)
                break
            self._log_enqueued(entry, slot, outcome)
            handled, enqueued, last_task = handled + 1, enqueued + 1, outcome.task_id
        if handled == 0:
            raise psycopg.Rollback()
        following = plan.following[handled - 1]
        if enqueued:
            await row.record_runs(now, following, last_task, enqueued)
        else:
            await row.advance(following)

    # -- logs ------------------------------------------------------------------------

    @staticmethod
    def _log_enqueued(entry: _Entry, slot: datetime, outcome: Enqueued) -> None:
        log.info("Schedule '%s': enqueued %s (task %s) for slot %s", entry.name,
                 entry.schedule.task_name, outcome.task_id, slot.isoformat())

    @staticmethod
    def _log_dropped(entry: _Entry, slot: datetime, outcome: Failed) -> None:
        log.error("Schedule '%s': slot %s dropped: %s", entry.name, slot.isoformat(),
                  outcome.message)

    @staticmethod
    def _log_retry(entry: _Entry, slot: datetime, outcome: Failed) -> None:
        log.warning("Schedule '%s': slot %s not enqueued (%s); trying again next tick",
                    entry.name, slot.isoformat(), outcome.message)
