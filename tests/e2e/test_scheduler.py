"""`horsies scheduler` started from the CLI with a one-second interval (scheduling.md §7-§11):
each slot runs once with a worker, with two schedulers, when one is killed mid-tick, and
after downtime with and without catch-up."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from horsies.scheduler.identity import slot_task_id
from tests.integration.schedule_apps import NAME

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.schedule_apps:app"
CATCH_UP_APP = "tests.integration.schedule_apps:catch_up_app"
SECOND = timedelta(seconds=1)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll a database state until it holds (an event, not a sleep)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def slots(url: str) -> list[datetime]:
    """The sent_at (= slot) of every task, in order."""
    return [row[0] for row in query(url, "SELECT sent_at FROM horsies_tasks ORDER BY sent_at")]


def next_run_at(url: str) -> datetime:
    rows = query(url, "SELECT next_run_at FROM horsies_schedule_state")
    assert len(rows) == 1
    return rows[0][0]  # type: ignore[no-any-return]


def assert_every_slot_once(found: list[datetime]) -> None:
    """Consecutive one-second slots: none missing, none twice."""
    assert found, "no task"
    assert found == [found[0] + k * SECOND for k in range(len(found))], found


def assert_ids_are_slot_ids(url: str) -> None:
    rows = query(url, "SELECT id::text, sent_at FROM horsies_tasks")
    assert all(task_id == slot_task_id(NAME, sent_at) for task_id, sent_at in rows)


def run_count(url: str) -> int:
    return int(query(url, "SELECT run_count FROM horsies_schedule_state")[0][0])


def test_each_slot_runs_once_with_a_worker_and_two_schedulers(
    pg_url: str, worker_env: dict[str, str], start_worker: Any, start_scheduler: Any,
    tmp_path: Path
) -> None:
    ledger = tmp_path / "executions"
    worker = start_worker([APP, "--processes=1"], {**worker_env, "SCHEDULE_LEDGER": str(ledger)},
                          cwd=REPO)
    first = start_scheduler([APP], worker_env, cwd=REPO)
    first.wait_for("Scheduler started")
    worker.wait_for("Worker started")
    wait_until(lambda: len(slots(pg_url)) >= 2, "the first slots")
    second = start_scheduler([APP, "--loglevel", "debug"], worker_env, cwd=REPO)
    second.wait_for("Scheduler started")
    joined = len(slots(pg_url))
    wait_until(lambda: len(slots(pg_url)) >= joined + 20, "20 slots with two schedulers")
    assert first.stop() == 0 and second.stop() == 0
    found = slots(pg_url)
    assert_every_slot_once(found)
    assert_ids_are_slot_ids(pg_url)
    assert run_count(pg_url) == len(found)
    wait_until(lambda: query(pg_url, "SELECT count(*) FROM horsies_tasks WHERE status <> "
                                     "'COMPLETED'")[0][0] == 0, "every task to complete")
    # each slot's task ran exactly once (one ledger line per execution)
    assert len(ledger.read_text().split()) == len(found)
    assert worker.stop() == 0
    output = "".join(first.lines)
    assert "Starting scheduler with loglevel=INFO" in output
    assert ".> role:        scheduler" in output
    assert "Scheduler: 1/1 schedules enabled" in output
    assert f"Schedule '{NAME}': every 1s (UTC)" in output
    assert "Scheduler stopped" in output


def test_sigkill_mid_tick_loses_no_slot_and_duplicates_none(
    pg_url: str, worker_env: dict[str, str], start_scheduler: Any
) -> None:
    schedulers = {}
    for name in ("sched-a", "sched-b"):
        schedulers[name] = start_scheduler([APP], {**worker_env, "PGAPPNAME": name}, cwd=REPO)
        schedulers[name].wait_for("Scheduler started")
    wait_until(lambda: len(slots(pg_url)) >= 3, "the first slots")
    with psycopg.connect(pg_url) as blocker:
        # Inserts now wait: the scheduler that is enqueueing a slot is caught mid-tick,
        # holding the entry's lock, with its state row not yet updated.
        blocker.execute("LOCK TABLE horsies_tasks IN SHARE MODE")
        stuck: list[str] = []

        def an_enqueue_waits() -> bool:
            stuck[:] = [row[0] for row in query(
                pg_url, "SELECT application_name FROM pg_stat_activity WHERE wait_event_type"
                " = 'Lock' AND query LIKE '%%INSERT INTO horsies_tasks%%'")]
            return bool(stuck)

        wait_until(an_enqueue_waits, "a scheduler blocked inside its enqueue")
        victim = schedulers.pop(stuck[0])
        victim.kill()  # SIGKILL to its process group
        blocker.rollback()
    survivor = next(iter(schedulers.values()))
    killed_at = len(slots(pg_url))
    wait_until(lambda: len(slots(pg_url)) >= killed_at + 5, "five more slots")
    assert survivor.stop() == 0
    found = slots(pg_url)
    assert_every_slot_once(found)
    assert_ids_are_slot_ids(pg_url)
    assert run_count(pg_url) == len(found)


def stop_for_five_slots(url: str, env: dict[str, str], start_scheduler: Any,
                        locator: str) -> tuple[list[datetime], datetime]:
    """Run a scheduler for a few slots, stop it, and wait until five slots passed."""
    first = start_scheduler([locator], env, cwd=REPO)
    wait_until(lambda: len(slots(url)) >= 2, "the first slots")
    assert first.stop() == 0
    before, pending = slots(url), next_run_at(url)
    wait_until(lambda: query(url, "SELECT now() >= %s", pending + 5 * SECOND)[0][0],
               "five slots to pass")
    return before, pending


def test_after_downtime_only_the_latest_slot_runs_by_default(
    pg_url: str, worker_env: dict[str, str], start_scheduler: Any
) -> None:
    before, pending = stop_for_five_slots(pg_url, worker_env, start_scheduler, APP)
    again = start_scheduler([APP], worker_env, cwd=REPO)
    wait_until(lambda: len(slots(pg_url)) >= len(before) + 3, "slots after the restart")
    assert again.stop() == 0
    found = slots(pg_url)
    assert_every_slot_once(before)
    after = found[len(before):]
    assert after[0] - pending >= 5 * SECOND  # the missed slots were skipped ...
    assert_every_slot_once(after)  # ... and the timetable continues from the latest one
    skipped = [line for line in again.lines if "missed run(s) skipped" in line]
    assert len(skipped) == 1 and int(skipped[0].split(": ")[1].split()[0]) >= 5
    assert run_count(pg_url) == len(found)


def test_after_downtime_every_missed_slot_runs_with_catch_up(
    pg_url: str, worker_env: dict[str, str], start_scheduler: Any
) -> None:
    before, pending = stop_for_five_slots(pg_url, worker_env, start_scheduler, CATCH_UP_APP)
    again = start_scheduler([CATCH_UP_APP], worker_env, cwd=REPO)
    again.wait_for("more than max_catch_up_runs=2 missed runs")
    wait_until(lambda: next_run_at(pg_url) > query(pg_url, "SELECT now()")[0][0],
               "the backlog to be caught up")
    assert again.stop() == 0
    found = slots(pg_url)
    assert_every_slot_once(found)  # nothing missing: every missed slot ran
    assert found[len(before)] == pending
    caught = [int(line.split("catching up ")[1].split()[0])
              for line in again.lines if "catching up" in line]
    assert caught and max(caught) == 2  # never more than max_catch_up_runs in one tick
    assert run_count(pg_url) == len(found)


def test_scheduler_refuses_an_unknown_task(worker_env: dict[str, str],
                                           start_scheduler: Any) -> None:
    refused = start_scheduler(["tests.integration.schedule_apps:unknown_task_app"], worker_env,
                              cwd=REPO)
    assert refused.proc.wait(60) == 1
    refused._reader.join(10)
    output = "".join(refused.lines)
    assert "error[HRS-300]: scheduled task 'baet' not registered" in output
    assert "registered tasks: beat" in output
    assert "Scheduler started" not in output


def test_sigterm_stops_the_scheduler_with_exit_0(worker_env: dict[str, str],
                                                start_scheduler: Any) -> None:
    running = start_scheduler([APP], worker_env, cwd=REPO)
    running.wait_for("Scheduler started")
    assert running.stop(signal.SIGINT) == 0
    running.wait_for("Scheduler stopped")
