"""The scheduler's loop against a real PostgreSQL, with a controlled clock
(scheduling.md §7-§11, §13): state rows, slots, missed runs, configuration changes,
several schedulers, failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
import pytest

from horsies import (
    AppConfig,
    HourlySchedule,
    IntervalSchedule,
    PostgresConfig,
    ScheduleConfig,
    TaskError,
    TaskResult,
    TaskSchedule,
)
from horsies.app import Horsies
from horsies.scheduler import SchedulePattern, calculate_next_run
from horsies.scheduler.identity import config_hash, slot_task_id
from horsies.scheduler.service import Scheduler
from horsies.scheduler.slots import MAX_SCAN_STEPS

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
MINUTE = IntervalSchedule(minutes=1)
T = TypeVar("T")


class Clock:
    """The scheduler's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> Clock:
        self.now = T0 + timedelta(seconds=seconds)
        return self


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def entry(name: str = "beat", pattern: SchedulePattern = MINUTE, **fields: Any) -> TaskSchedule:
    return TaskSchedule(name=name, task_name="beat", pattern=pattern, **fields)


def make_app(url: str, *entries: TaskSchedule, interval: int = 1) -> Horsies:
    app = Horsies(AppConfig(
        broker=PostgresConfig(database_url=url),
        schedule=ScheduleConfig(schedules=list(entries), check_interval_seconds=interval),
    ))

    @app.task("beat")
    def beat(n: int = 0) -> TaskResult[int, TaskError]:
        return TaskResult(ok=n)

    return app


def run(app: Horsies, body: Callable[[], Awaitable[T]]) -> T:
    """Run ``body`` in a fresh event loop; the app's async pool closes with it."""
    async def main() -> T:
        try:
            return await body()
        finally:
            await app.get_broker().close_async()
    return asyncio.run(main())


def scheduler(app: Horsies, clock: Clock) -> Scheduler:
    assert app.config.schedule is not None
    return Scheduler(app, app.config.schedule, clock=clock)


def ticks(sched: Scheduler, clock: Clock, *moments: float) -> Callable[[], Awaitable[None]]:
    async def body() -> None:
        await sched.initialize()
        for moment in moments:
            clock.at(moment)
            await sched.tick()
        await sched.close()
    return body


def tasks(url: str) -> list[tuple[str, datetime, str, int, str | None]]:
    """(id, sent_at, queue, priority, kwargs) of every task, oldest slot first."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id::text, sent_at, queue_name, priority, kwargs"
                            " FROM horsies_tasks ORDER BY sent_at").fetchall()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def slots(url: str) -> list[datetime]:
    return [row[1] for row in tasks(url)]


def state(url: str, name: str = "beat") -> dict[str, Any] | None:
    with psycopg.connect(url) as conn:
        cur = conn.execute("SELECT * FROM horsies_schedule_state WHERE schedule_name = %s",
                           (name,))
        row = cur.fetchone()
        assert cur.description is not None
        return None if row is None else dict(zip([c.name for c in cur.description], row))


def execute(url: str, query: str, *params: Any) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(query, params)  # type: ignore[arg-type]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="horsies.scheduler"):
        yield caplog


# -- the table ---------------------------------------------------------------------------


def test_state_table_columns(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default,"
            " character_maximum_length FROM information_schema.columns"
            " WHERE table_name = 'horsies_schedule_state'").fetchall()
    found = {name: (kind, nullable, default, size) for name, kind, nullable, default, size
             in columns}
    assert found == {
        "schedule_name": ("character varying", "NO", None, 255),
        "last_run_at": ("timestamp with time zone", "YES", None, None),
        "next_run_at": ("timestamp with time zone", "YES", None, None),
        "last_task_id": ("uuid", "YES", None, None),
        "run_count": ("integer", "NO", "0", None),
        "config_hash": ("character varying", "YES", None, 64),
        "updated_at": ("timestamp with time zone", "NO", "now()", None),
    }


# -- state rows (§7.2) -----------------------------------------------------------------------


def test_the_first_run_is_the_first_slot_after_start(pg_url: str, logs: Any) -> None:
    app = make_app(pg_url, entry())
    clock = Clock(at(0.25))
    run(app, ticks(scheduler(app, clock), clock, 0.25, 59.9))
    row = state(pg_url)
    assert row is not None
    assert row["next_run_at"] == at(60.25)  # one full interval after start, never at once
    assert (row["run_count"], row["last_run_at"], row["last_task_id"]) == (0, None, None)
    assert row["config_hash"] == config_hash(MINUTE, "UTC")
    assert tasks(pg_url) == []
    assert "Schedule 'beat': every 60s (UTC), first run at 2030-01-01T12:01:00.250000+00:00" in (
        logs.text)


def test_a_due_slot_becomes_one_task_stamped_with_the_slot(pg_url: str, logs: Any) -> None:
    app = make_app(pg_url, entry(kwargs={"n": 7}))
    clock = Clock(at(0))
    run(app, ticks(scheduler(app, clock), clock, 60.4, 60.9, 61))
    slot = at(60)
    assert tasks(pg_url) == [(slot_task_id("beat", slot), slot, "default", 100, '{"n":7}')]
    row = state(pg_url)
    assert row is not None
    assert (row["next_run_at"], row["last_run_at"], str(row["last_task_id"]),
            row["run_count"]) == (at(120), at(60.4), slot_task_id("beat", slot), 1)
    assert f"enqueued beat (task {slot_task_id('beat', slot)}) for slot {slot.isoformat()}" in (
        logs.text)


def test_hourly_slots_follow_the_wall_clock(pg_url: str) -> None:
    app = make_app(pg_url, entry(pattern=HourlySchedule(minute=30)))
    clock = Clock(at(0))
    run(app, ticks(scheduler(app, clock), clock, 1800, 1801, 5400))
    assert slots(pg_url) == [at(1800), at(5400)]


# -- missed runs (§8) --------------------------------------------------------------------------


def test_without_catch_up_only_the_latest_missed_slot_runs(pg_url: str, logs: Any) -> None:
    app = make_app(pg_url, entry())
    clock = Clock(at(0))
    # Down from 60 s to 390 s: slots 60 ... 360 passed; only 360 runs.
    run(app, ticks(scheduler(app, clock), clock, 390, 400, 420))
    assert slots(pg_url) == [at(360), at(420)]
    row = state(pg_url)
    assert row is not None and (row["run_count"], row["next_run_at"]) == (2, at(480))
    assert "Schedule 'beat': 5 missed run(s) skipped; enqueuing the latest slot" in logs.text


def test_with_catch_up_every_missed_slot_runs_bounded_per_tick(pg_url: str, logs: Any) -> None:
    app = make_app(pg_url, entry(catch_up_missed=True, max_catch_up_runs=2))
    clock = Clock(at(0))
    sched = scheduler(app, clock)
    per_tick: list[int] = []

    async def body() -> None:
        await sched.initialize()
        for moment in (390, 391, 392, 393, 394):  # slots 60 ... 360 are due
            clock.at(moment)
            before = len(tasks(pg_url))
            await sched.tick()
            per_tick.append(len(tasks(pg_url)) - before)
        await sched.close()

    run(app, body)
    assert per_tick == [2, 2, 2, 0, 0]
    assert slots(pg_url) == [at(60 * k) for k in range(1, 7)]
    row = state(pg_url)
    assert row is not None and (row["run_count"], row["next_run_at"]) == (6, at(420))
    assert "more than max_catch_up_runs=2 missed runs" in logs.text
    assert "catching up 2 missed runs" in logs.text


def test_a_huge_backlog_is_scanned_over_several_ticks(pg_url: str, logs: Any) -> None:
    app = make_app(pg_url, entry(pattern=IntervalSchedule(seconds=1)))
    clock = Clock(at(0))
    late = MAX_SCAN_STEPS + 5000.5
    run(app, ticks(scheduler(app, clock), clock, late, late))
    assert slots(pg_url) == [at(MAX_SCAN_STEPS + 5000)]
    assert f"{MAX_SCAN_STEPS} slots scanned without reaching the present" in logs.text


# -- deterministic ids and idempotent enqueue (§9, §11) ------------------------------------------


def test_a_slot_enqueued_before_a_crash_is_not_enqueued_again(pg_url: str) -> None:
    app = make_app(pg_url, entry())
    clock = Clock(at(0))
    sched = scheduler(app, clock)

    async def body() -> None:
        await sched.initialize()
        # The crash: the slot's task is written, the state row is not updated.
        enqueuer = sched._entries["beat"].enqueuer
        assert (await enqueuer.enqueue(at(60))).task_id == slot_task_id("beat", at(60))
        clock.at(61)
        await sched.tick()
        await sched.close()

    run(app, body)
    assert slots(pg_url) == [at(60)]
    row = state(pg_url)
    assert row is not None and (row["run_count"], row["next_run_at"]) == (1, at(120))


def test_a_slot_whose_arguments_changed_meanwhile_is_dropped(pg_url: str, logs: Any) -> None:
    old = make_app(pg_url, entry(kwargs={"n": 1}))
    clock = Clock(at(0))
    run(old, ticks(scheduler(old, clock), clock))
    run(old, lambda: scheduler(old, clock)._entries["beat"].enqueuer.enqueue(at(60)))
    new = make_app(pg_url, entry(kwargs={"n": 2}))
    run(new, ticks(scheduler(new, clock), clock, 61, 120))
    assert [(row[1], row[4]) for row in tasks(pg_url)] == [(at(60), '{"n":1}'),
                                                           (at(120), '{"n":2}')]
    assert "slot 2030-01-01T12:01:00+00:00 dropped: PAYLOAD_MISMATCH" in logs.text
    row = state(pg_url)
    assert row is not None and row["run_count"] == 1  # the dropped slot is not counted


def test_two_schedulers_enqueue_each_slot_once(pg_url: str) -> None:
    apps = [make_app(pg_url, entry(), entry("fast", IntervalSchedule(seconds=1),
                                            catch_up_missed=True, kwargs={"n": 1}))
            for _ in range(2)]
    clock = Clock(at(0))
    first, second = (scheduler(app, clock) for app in apps)

    async def body() -> None:
        await asyncio.gather(first.initialize(), second.initialize())
        for moment in range(1, 200, 7):
            clock.at(moment + 0.5)
            await asyncio.gather(first.tick(), second.tick())
        await asyncio.gather(first.close(), second.close(), apps[1].get_broker().close_async())

    run(apps[0], body)
    found = tasks(pg_url)
    assert sorted(row[1] for row in found if row[4] is None) == [at(60), at(120), at(180)]
    assert sorted(row[1] for row in found if row[4] is not None) == [at(k) for k in range(1, 198)]
    fast = state(pg_url, "fast")
    assert fast is not None and fast["run_count"] == 197


# -- failures ------------------------------------------------------------------------------------


def test_an_unreachable_database_retries_the_same_slot(pg_url: str, logs: Any) -> None:
    app = make_app(pg_url, entry())
    clock = Clock(at(0))
    sched = scheduler(app, clock)
    down = make_app("postgresql://nobody@127.0.0.1:1/none", entry())

    async def body() -> None:
        await sched.initialize()
        working = app._broker
        app._broker = down.get_broker()  # every enqueue now fails to connect
        clock.at(61)
        await sched.tick()
        assert state(pg_url)["next_run_at"] == at(60)  # type: ignore[index]
        app._broker = working
        clock.at(62)
        await sched.tick()
        await sched.close()

    run(app, body)
    assert slots(pg_url) == [at(60)]
    assert "slot 2030-01-01T12:01:00+00:00 not enqueued (ENQUEUE_FAILED" in logs.text
    assert "trying again next tick" in logs.text


def test_an_entry_that_fails_does_not_stop_the_others(pg_url: str, logs: Any) -> None:
    bad = entry("bad", args=(object(),))  # start-up validation would refuse it
    app = make_app(pg_url, bad, entry())
    clock = Clock(at(0))
    run(app, ticks(scheduler(app, clock), clock, 60, 120))
    assert [row[1] for row in tasks(pg_url)] == [at(60), at(120)]
    assert "Schedule 'bad': slot 2030-01-01T12:01:00+00:00 dropped" in logs.text
    row = state(pg_url, "bad")
    assert row is not None and (row["run_count"], row["next_run_at"]) == (0, at(180))


# -- configuration changes (§10) and foreign rows (§7.2) ------------------------------------------


def test_a_changed_pattern_drops_the_old_timetable(pg_url: str, logs: Any) -> None:
    old = make_app(pg_url, entry(catch_up_missed=True))
    clock = Clock(at(0))
    run(old, ticks(scheduler(old, clock), clock, 60))
    ten = IntervalSchedule(minutes=10)
    new = make_app(pg_url, entry(pattern=ten, catch_up_missed=True))
    clock.at(1000)  # old slots 120 ... 960 are pending, and dropped
    run(new, ticks(scheduler(new, clock), clock, 1000, 1599, 1600))
    assert slots(pg_url) == [at(60), at(1600)]
    row = state(pg_url)
    assert row is not None and row["config_hash"] == config_hash(ten, "UTC")
    assert "Schedule 'beat': pattern or timezone changed; pending slots of the old timetable " \
           "are dropped, next run at 2030-01-01T12:26:40+00:00" in logs.text


def test_a_changed_argument_keeps_the_timetable(pg_url: str) -> None:
    clock = Clock(at(0))
    first = make_app(pg_url, entry())
    run(first, ticks(scheduler(first, clock), clock, 60))
    second = make_app(pg_url, entry(kwargs={"n": 5}, max_catch_up_runs=3))
    run(second, ticks(scheduler(second, clock), clock, 90, 120))
    assert [(row[1], row[4]) for row in tasks(pg_url)] == [(at(60), None), (at(120), '{"n":5}')]


def test_a_disabled_entry_keeps_its_row_and_catches_up_when_enabled(pg_url: str) -> None:
    clock = Clock(at(0))
    on = make_app(pg_url, entry(catch_up_missed=True))
    run(on, ticks(scheduler(on, clock), clock, 60))
    off = make_app(pg_url, entry(enabled=False))
    run(off, ticks(scheduler(off, clock), clock, 200))
    row = state(pg_url)
    assert row is not None and (row["next_run_at"], row["run_count"]) == (at(120), 1)
    again = make_app(pg_url, entry(catch_up_missed=True))
    run(again, ticks(scheduler(again, clock), clock, 300))
    assert slots(pg_url) == [at(60), at(120), at(180), at(240), at(300)]


def test_rows_of_other_entries_are_kept_and_named(pg_url: str, logs: Any) -> None:
    execute(pg_url, "INSERT INTO horsies_schedule_state (schedule_name) VALUES ('gone'), ('old')")
    app = make_app(pg_url, entry(), entry("off", enabled=False))
    clock = Clock(at(0))
    run(app, ticks(scheduler(app, clock), clock, 60))
    assert state(pg_url, "gone") is not None and state(pg_url, "off") is None
    assert "State rows of schedules not in this configuration are kept" in logs.text
    assert logs.text.count("gone, old") == 1


def test_a_missing_row_is_repaired_every_n_ticks(pg_url: str, logs: Any) -> None:
    # A 30 s interval repairs every round(60 / 30) = 2 ticks: the 1st, 3rd, 5th, ...
    app = make_app(pg_url, entry(), interval=30)
    clock = Clock(at(0))
    sched = scheduler(app, clock)
    seen: list[bool] = []

    async def body() -> None:
        await sched.initialize()
        for moment in (10, 20, 30, 40):
            execute(pg_url, "DELETE FROM horsies_schedule_state")
            clock.at(moment)
            await sched.tick()
            seen.append(state(pg_url) is not None)
        await sched.close()

    run(app, body)
    assert seen == [True, False, True, False]
    assert "Schedule 'beat' has no state row; creating it" in logs.text
    row = state(pg_url)
    assert row is None


def test_a_row_without_next_run_is_given_one(pg_url: str) -> None:
    execute(pg_url, "INSERT INTO horsies_schedule_state (schedule_name, config_hash)"
            " VALUES ('beat', %s)", config_hash(MINUTE, "UTC"))
    app = make_app(pg_url, entry())
    clock = Clock(at(0))
    run(app, ticks(scheduler(app, clock), clock, 1))
    row = state(pg_url)
    assert row is not None and row["next_run_at"] == at(60)


# -- stopping ------------------------------------------------------------------------------------


def test_a_stop_request_ends_the_loop_after_the_tick(pg_url: str) -> None:
    app = make_app(pg_url, entry())
    sched = Scheduler(app, app.config.schedule)  # type: ignore[arg-type]

    async def body() -> None:
        loop = asyncio.create_task(sched.run_forever())
        while state(pg_url) is None:
            await asyncio.sleep(0.01)
        sched.request_stop()
        await asyncio.wait_for(loop, 30)
        await sched.close()

    run(app, body)
    assert sched.stopping


def test_the_next_run_is_computed_in_the_entry_zone(pg_url: str) -> None:
    pattern = HourlySchedule(minute=0)
    app = make_app(pg_url, entry(pattern=pattern, timezone="Asia/Kolkata"))
    clock = Clock(at(0))
    run(app, ticks(scheduler(app, clock), clock))
    expected = calculate_next_run(pattern, at(0), "Asia/Kolkata")
    assert expected == at(1800)  # Kolkata is UTC+05:30
    assert state(pg_url)["next_run_at"] == expected  # type: ignore[index]


def test_a_lost_database_is_logged_once_and_the_ticks_resume(pg_url: str, logs: Any) -> None:
    app = make_app(pg_url, entry())
    clock = Clock(at(0))
    sched = scheduler(app, clock)

    async def body() -> None:
        await sched.initialize()
        sched._store._url = "postgresql://nobody@127.0.0.1:1/none"
        await sched._store.close()  # the lock connection is gone and cannot come back
        for moment in (61, 62, 63):
            clock.at(moment)
            await sched.tick()
        sched._store._url = pg_url
        clock.at(64)
        await sched.tick()
        await sched.close()

    run(app, body)
    assert logs.text.count("Scheduler tick failed: OperationalError") == 1
    assert "Scheduler ticks work again" in logs.text
    assert slots(pg_url) == [at(60)]


def test_an_older_database_gains_the_state_table(pg_url: str) -> None:
    from horsies.db.schema import CURRENT_SCHEMA_VERSION, ensure_schema_initialized

    execute(pg_url, "DROP TABLE horsies_schedule_state")
    execute(pg_url, "DELETE FROM horsies_schema_version WHERE version >= 2")
    for _ in range(2):  # idempotent
        with psycopg.connect(pg_url) as conn:
            assert ensure_schema_initialized(conn) == CURRENT_SCHEMA_VERSION
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT version FROM horsies_schema_version ORDER BY 1").fetchall()
        table = conn.execute("SELECT to_regclass('horsies_schedule_state')").fetchone()
    assert versions == [(v,) for v in range(1, CURRENT_SCHEMA_VERSION + 1)]
    assert table == ("horsies_schedule_state",)
