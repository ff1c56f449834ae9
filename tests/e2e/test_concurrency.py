"""Queues and concurrency with real workers, proven from timestamps in the database.

A task is RUNNING from its ownership confirmation (started_at) until its final
state is written (completed_at), both stamped by the database clock, so the
largest number of overlapping [started_at, completed_at) intervals is the peak
number of RUNNING tasks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from horsies import PostgresConfig, TaskHandle

REPO = Path(__file__).resolve().parents[2]
MODULE = "tests.integration.concurrency_apps"


@pytest.fixture
def capps(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("HORSIES_DATABASE_URL", pg_url)
    import tests.integration.concurrency_apps as module

    apps = (module.capped, module.ordered, module.prefetching, module.leasing, module.sweeping)
    # Imported once for the session: point every app at this test's database.
    for app in apps:
        app.config = msgspec.structs.replace(app.config,
                                             broker=PostgresConfig(database_url=pg_url))
        app._broker = None
    yield module
    for app in apps:
        if app._broker is not None:
            app.get_broker().close()
            app._broker = None


def max_overlap(intervals: Iterable[tuple[datetime, datetime]]) -> int:
    """Peak number of intervals open at once; an end at t closes before a start at t."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda ev: (ev[0], ev[1]))
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def rows(url: str, where: str = "TRUE") -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "SELECT id::text AS id, task_name, queue_name, priority, status, args, started_at, "
            "completed_at, claimed_by_worker_id, worker_pid FROM horsies_tasks WHERE " + where
            + " ORDER BY started_at")
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def attempts_of(app: Any, task_id: str) -> list[str]:
    """Outcomes of the task's attempts, oldest first, as `info()` reports them."""
    info = TaskHandle(task_id, app, broker_mode=True).info(include_attempts=True).ok_value
    return [attempt.outcome.value for attempt in reversed(info.attempts or [])]


def get_all(handles: list[Any], *workers: Any) -> list[Any]:
    """Every handle's value; on a failure the workers' output is shown."""
    values = []
    for handle in handles:
        result = handle.get(timeout_ms=30_000)
        assert result.is_ok(), (result, *("".join(w.lines) for w in workers))
        values.append(result.ok_value)
    return values


def wait_until(check: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_hard_caps_hold_with_two_workers(
    capps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    # narrow: max_concurrency=2; wide: 5; cluster_wide_cap=4; 6 children in all.
    # Both workers ready (DEBUG logs each child's readiness) before the tasks
    # arrive, so that both take part however slowly one of them starts.
    args = [f"{MODULE}:capped", "--processes=3", "--loglevel", "DEBUG"]
    first = start_worker(args, worker_env, cwd=REPO)
    second = start_worker(args, worker_env, cwd=REPO)
    for worker in (first, second):
        worker.wait_for("Worker started")
        worker.wait_for(" ready", count=3)  # "child <pid> ready"
    narrow = capps.narrow_nap.send_many([(0.3,)] * 10).ok_value
    wide = capps.wide_nap.send_many([(0.3,)] * 10).ok_value
    get_all(narrow + wide, first, second)
    first.wait_for("Concurrency config: processes=3, cluster_wide_cap=4, "
                   "max_claim_per_worker=3, max_claim_batch=2")
    assert first.stop() == 0 and second.stop() == 0
    done = rows(pg_url)
    assert {r["status"] for r in done} == {"COMPLETED"} and len(done) == 20
    spans = {q: [(r["started_at"], r["completed_at"]) for r in done if r["queue_name"] == q]
             for q in ("narrow", "wide")}
    # Never above the caps, and the caps are reached (the test would see an overshoot).
    assert max_overlap(spans["narrow"]) == 2
    assert max_overlap(spans["narrow"] + spans["wide"]) == 4
    assert max_overlap(spans["wide"]) <= 4
    assert len({r["claimed_by_worker_id"] for r in done}) == 2  # both workers took part


def test_one_process_drains_in_priority_order_and_fifo(
    capps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    # Queues: high (1), mid (50), low (100), configured in the order low, high, mid.
    sends = [
        (capps.low_mark, "l0", None), (capps.mid_mark, "m0", None),
        (capps.high_mark, "h0", None), (capps.low_mark, "l1", None),
        (capps.high_mark, "h1", None), (capps.mid_mark, "m1", None),
        (capps.mid_mark, "m2-late", 90), (capps.low_mark, "l-urgent", 1),
        (capps.high_mark, "h2", None), (capps.mid_mark, "m3", None),
        (capps.low_mark, "l2", None),
    ]
    handles = []
    for task, label, priority in sends:
        target = task if priority is None else task.with_options(priority=priority)
        handles.append(target.send(label).ok_value)
    worker = start_worker([f"{MODULE}:ordered", "--processes=1"], worker_env, cwd=REPO)
    get_all(handles, worker)
    assert worker.stop() == 0
    done = rows(pg_url)
    started = [json.loads(r["args"])[0] for r in done]
    # Queues in priority order; in a queue by row priority, then enqueued_at (FIFO).
    assert started == ["h0", "h1", "h2", "m0", "m1", "m3", "m2-late",
                       "l-urgent", "l0", "l1", "l2"]
    for before, after in zip(done, done[1:], strict=False):  # one process: one at a time
        assert before["completed_at"] <= after["started_at"]


def test_soft_cap_burst_is_bounded(
    capps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    # capped: max_concurrency=1, counted on RUNNING only (prefetch_buffer=2). While four
    # blockers occupy every child, the worker prefetches capped tasks as long as none of
    # them runs; they start together once children free up. With one worker the burst
    # is bounded by max_concurrency + max_claim_per_worker - 1 = 1 + 2 - 1 = 2.
    blockers = capps.blocker_nap.send_many([(1.5,)] * 4).ok_value
    capped = capps.capped_nap.send_many([(0.6,)] * 4).ok_value
    worker = start_worker([f"{MODULE}:prefetching", "--processes=4",
                           "--max-claim-per-worker=2"], worker_env, cwd=REPO)
    get_all(blockers + capped, worker)
    worker.wait_for("Concurrency config: processes=4, cluster_wide_cap=unlimited, "
                    "max_claim_per_worker=2, max_claim_batch=2")
    assert worker.stop() == 0
    done = rows(pg_url)
    spans = [(r["started_at"], r["completed_at"]) for r in done if r["queue_name"] == "capped"]
    burst = max_overlap(spans)
    assert 1 < burst <= 1 + 2 - 1
    # (No per-worker bound on these intervals in soft-cap mode: a child may start a
    # prefetched task before the previous one's result is persisted.)


def test_stuck_claim_is_swept_after_its_lease_and_run_once(
    capps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    task_id = capps.lease_nap_swept.send(0.0).ok_value.task_id
    # A worker that vanished holds the claim; its lease ends in 3 s.
    with psycopg.connect(pg_url) as conn:
        expires = conn.execute(
            "UPDATE horsies_tasks SET status = 'CLAIMED', claimed = TRUE, "
            "claimed_at = statement_timestamp(), claimed_by_worker_id = 'ghost', "
            "claim_expires_at = statement_timestamp() + INTERVAL '3 seconds' "
            "WHERE id = %s RETURNING claim_expires_at", (task_id,)).fetchone()[0]
    worker = start_worker([f"{MODULE}:sweeping", "--processes=1"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    live = rows(pg_url, f"id = '{task_id}'")[0]
    with psycopg.connect(pg_url) as conn:
        still_live = conn.execute("SELECT statement_timestamp() < %s", (expires,)).fetchone()[0]
    if still_live:  # a live claim of another worker is left alone
        assert (live["status"], live["claimed_by_worker_id"]) == ("CLAIMED", "ghost")
    wait_until(lambda: rows(pg_url, f"id = '{task_id}'")[0]["status"] == "COMPLETED")
    assert worker.stop() == 0
    done = rows(pg_url, f"id = '{task_id}'")[0]
    assert done["started_at"] >= expires
    assert done["claimed_by_worker_id"] != "ghost"
    assert attempts_of(capps.sweeping, task_id) == ["COMPLETED"]


def test_lapsed_claim_is_taken_over_and_dropped_by_its_first_owner(
    capps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    # Worker A (one child, prefetch 1, 1 s lease) claims a blocker and a victim; the victim
    # waits for A's only child while its lease lapses. Worker B sweeps and runs it; when
    # A's child frees up, A's ownership confirmation fails and A drops it (CLAIM_LOST).
    blocker = capps.lease_nap.send(6.0).ok_value
    victim = capps.lease_nap.send(0.0).ok_value
    first = start_worker([f"{MODULE}:leasing", "--processes=1"], worker_env, cwd=REPO)
    wait_until(lambda: rows(pg_url, f"id = '{victim.task_id}'")[0]["status"] == "CLAIMED")
    owner_a = rows(pg_url, f"id = '{victim.task_id}'")[0]["claimed_by_worker_id"]
    second = start_worker([f"{MODULE}:sweeping", "--processes=1"], worker_env, cwd=REPO)
    victim_pid = victim.get(timeout_ms=30_000).ok_value
    blocker_pid = blocker.get(timeout_ms=30_000).ok_value
    first.wait_for(f"Task {victim.task_id} dropped: claim lost before start (CLAIM_LOST)",
                   timeout=15)
    assert first.stop() == 0 and second.stop() == 0
    done = rows(pg_url, f"id = '{victim.task_id}'")[0]
    assert done["status"] == "COMPLETED"
    assert done["claimed_by_worker_id"] != owner_a
    assert victim_pid != blocker_pid  # not run by A's only child
    assert attempts_of(capps.leasing, victim.task_id) == ["COMPLETED"]
