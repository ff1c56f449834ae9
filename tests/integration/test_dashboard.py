"""The broker's dashboard read models against a real PostgreSQL (monitoring.md §2.9).

Tasks are written by real sends and then put in every status with SQL;
worker snapshots are inserted with SQL at ages well clear of every threshold
(120 s, 5 minutes, the age buckets), so no assertion depends on timing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from horsies import (
    AppConfig,
    BrokerErrorCode,
    CustomQueueConfig,
    Err,
    Horsies,
    Ok,
    PostgresConfig,
    QueueMode,
    TaskAttemptOutcome,
    TaskError,
    TaskFilter,
    TaskResult,
    TaskStatus,
)
from horsies.db.broker import PostgresBroker
from horsies.db.dashboard import pct, ratio
from horsies.monitoring import FacetValue, TaskStatusCounts
from tests.conftest import DOWN_URL, drop_database, query, read_only, with_database


def make_app(url: str, **broker: Any) -> Horsies:
    application = Horsies(AppConfig(
        queue_mode=QueueMode.CUSTOM,
        custom_queues=[CustomQueueConfig(name="high", priority=1, max_concurrency=3),
                       CustomQueueConfig(name="idle", priority=10, max_concurrency=5),
                       CustomQueueConfig(name="low", priority=50, max_concurrency=None)],
        broker=PostgresConfig(database_url=url, **broker)))

    @application.task("add", queue_name="high")
    def add(a: int, b: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a + b)

    @application.task("mul", queue_name="low")
    def mul(a: int, b: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a * b)

    return application


@pytest.fixture
def app(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Horsies]:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    application = make_app(pg_url)
    yield application
    application.get_broker().close()


@pytest.fixture
def broker(app: Horsies) -> PostgresBroker:
    return app.get_broker()


@pytest.fixture
def down(monkeypatch: pytest.MonkeyPatch) -> Iterator[PostgresBroker]:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    application = make_app(DOWN_URL, pool_timeout=1)
    yield application.get_broker()
    application.get_broker().close()



def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def ok(coro: Coroutine[Any, Any, Any]) -> Any:
    outcome = asyncio.run(coro)
    assert isinstance(outcome, Ok), outcome
    return outcome.ok_value


def assert_err(outcome: Any, retryable: bool) -> None:
    assert isinstance(outcome, Err), outcome
    assert outcome.err_value.code is BrokerErrorCode.MONITORING_QUERY_FAILED
    assert outcome.err_value.retryable is retryable


# -- seeding --------------------------------------------------------------------


def send(app: Horsies, name: str = "add") -> str:
    sent = app.tasks[name].send(1, 2)
    assert isinstance(sent, Ok)
    return sent.ok_value.task_id


def put(url: str, task_id: str, status: str, *, updated: int, worker: str | None = None,
        retry: int = 0, error: str | None = None, queue: str | None = None,
        enqueued: str | None = None) -> None:
    """Set a task's status and columns as horsies would; `updated` seconds ago."""
    query(url, """
        UPDATE horsies_tasks SET
            status = %(status)s::text, claimed = %(status)s::text = 'CLAIMED',
            claim_expires_at = CASE WHEN %(status)s = 'CLAIMED'
                                    THEN now() + interval '1 minute' END,
            claimed_by_worker_id = %(worker)s::text,
            claimed_at = CASE WHEN %(worker)s::text IS NOT NULL THEN now() - interval '1 hour' END,
            started_at = CASE WHEN %(status)s IN ('RUNNING', 'COMPLETED', 'FAILED')
                              THEN now() - interval '1 hour' END,
            completed_at = CASE WHEN %(status)s = 'COMPLETED' THEN now() END,
            failed_at = CASE WHEN %(status)s = 'FAILED' THEN now() END,
            max_retries = GREATEST(max_retries, %(retry)s), retry_count = %(retry)s,
            error_code = %(error)s::text, queue_name = COALESCE(%(queue)s::text, queue_name),
            enqueued_at = COALESCE(now() + %(enqueued)s::interval, enqueued_at),
            updated_at = now() - %(updated)s * interval '1 second'
        WHERE id = %(id)s""",
        {"status": status, "worker": worker, "retry": retry, "error": error, "queue": queue,
         "enqueued": enqueued, "updated": updated, "id": task_id})


def seed_tasks(app: Horsies, url: str) -> dict[str, str]:
    """Tasks in every status; the keys are listed newest `updated_at` first."""
    ids: dict[str, str] = {}
    # name: (task, status, keyword arguments of put); updated_at = position seconds ago
    plan: list[tuple[str, str, str, dict[str, Any]]] = [
        ("c1", "add", "CLAIMED", {"worker": "w1"}),
        ("r1", "add", "RUNNING", {"worker": "w1"}),
        ("p1", "add", "PENDING", {"enqueued": "-10 minutes"}),
        ("done1", "add", "COMPLETED", {"worker": "w1"}),
        ("r2", "mul", "RUNNING", {"worker": "w2", "retry": 1}),
        ("f1", "mul", "FAILED", {"worker": "w2", "retry": 2, "error": "BOOM"}),
        ("p2", "add", "PENDING", {}),
        ("sched", "add", "PENDING", {"enqueued": "1 hour"}),
        ("f2", "add", "FAILED", {"error": "BOOM"}),
        ("x1", "mul", "CANCELLED", {}),
        ("e1", "add", "EXPIRED", {"error": "LATE"}),
        ("orphan", "add", "PENDING", {"queue": "orphan"}),
    ]
    for position, (key, task, status, options) in enumerate(plan):
        ids[key] = send(app, task)
        put(url, ids[key], status, updated=10 + position, **options)
    ids["done_old"] = send(app)  # finished two days ago: outside every window
    put(url, ids["done_old"], "COMPLETED", worker="w1", updated=2 * 86400)
    return ids


def snapshot(url: str, worker: str, age: str, *, host: str = "host-a",
             lifecycle: str = "RUNNING", processes: int = 4, running: int = 0,
             claimed: int = 0, cpu: float | None = None, mem: float | None = None,
             queues: tuple[str, ...] = ("high",), priorities: str | None = None,
             concurrency: str | None = None) -> None:
    query(url, """
        INSERT INTO horsies_worker_states (
            snapshot_at, worker_started_at, memory_usage_mb, memory_percent, cpu_percent, pid,
            processes, max_claim_batch, max_claim_per_worker, cluster_wide_cap, tasks_running,
            tasks_claimed, worker_id, hostname, lifecycle, queues, queue_priorities,
            queue_max_concurrency, recovery_config, horsies_version)
        VALUES (now() - %(age)s::interval, now() - interval '1 day', 123.5, %(mem)s, %(cpu)s,
                4242, %(processes)s, 8, 16, NULL, %(running)s, %(claimed)s, %(worker)s,
                %(host)s, %(lifecycle)s, %(queues)s, %(priorities)s, %(concurrency)s,
                '{"runner_heartbeat_interval_ms": 30000}', '9.9.9')""",
        {"age": age, "mem": mem, "cpu": cpu, "processes": processes, "running": running,
         "claimed": claimed, "worker": worker, "host": host, "lifecycle": lifecycle,
         "queues": list(queues), "priorities": priorities, "concurrency": concurrency})


def seed_workers(url: str) -> None:
    snapshot(url, "wa", "90 minutes", host="host-b", queues=("high", "extra"))
    snapshot(url, "wa", "10 seconds", host="host-b", running=2, claimed=1, cpu=50.0,
             mem=40.25, queues=("high", "extra"), priorities='{"high": 1, "extra": 7}',
             concurrency='{"high": 3, "extra": 2}')
    snapshot(url, "wb", "30 seconds", processes=2, claimed=3, mem=90.0, queues=("low",))
    snapshot(url, "wc", "40 seconds", host="host-b", processes=3, running=1, claimed=3)
    snapshot(url, "wstop", "5 seconds", lifecycle="STOPPED", mem=95.0, queues=("extra",),
             priorities='{"extra": 99}')
    snapshot(url, "wstop_old", "2 hours", lifecycle="STOPPED")
    snapshot(url, "wdead", "10 minutes", host="host-c", running=1, claimed=2, cpu=99.0)
    snapshot(url, "wold", "40 days", host="host-c")
    snapshot(url, "wold", "3 days", host="host-c", lifecycle="DRAINING")


@pytest.fixture
def seeded(app: Horsies, pg_url: str) -> dict[str, str]:
    ids = seed_tasks(app, pg_url)
    seed_workers(pg_url)
    return ids


# -- rounding ---------------------------------------------------------------------


def test_percentages_round_half_to_even() -> None:
    assert pct(1, 1600, 2) == 0.06      # 0.0625
    assert pct(3, 1600, 2) == 0.19      # 0.1875
    assert pct(1, 80, 1) == 1.2         # 1.25
    assert pct(1, 3, 2) == 33.33
    assert pct(1, 0, 2) is None
    assert ratio(5, 2, 2) == 2.5 and ratio(1, 0, 2) is None


# -- task counts and queues ---------------------------------------------------------


def test_task_status_counts(broker: PostgresBroker, seeded: dict[str, str]) -> None:
    assert ok(broker.get_task_status_counts()) == TaskStatusCounts(
        pending=4, claimed=1, running=2, completed=2, failed=2, cancelled=1, expired=1,
        total=13)
    # terminal rows only inside the window; in-flight ones always in full
    assert ok(broker.get_task_status_counts(terminal_window_s=3600)) == TaskStatusCounts(
        pending=4, claimed=1, running=2, completed=1, failed=2, cancelled=1, expired=1,
        total=12)
    assert ok(broker.get_task_status_counts(terminal_window_s=1)) == TaskStatusCounts(
        pending=4, claimed=1, running=2, completed=0, failed=0, cancelled=0, expired=0,
        total=7)


def test_task_status_counts_of_an_empty_database(broker: PostgresBroker) -> None:
    assert ok(broker.get_task_status_counts()) == TaskStatusCounts(
        pending=0, claimed=0, running=0, completed=0, failed=0, cancelled=0, expired=0, total=0)


def test_queue_stats(broker: PostgresBroker, seeded: dict[str, str]) -> None:
    stats = ok(broker.get_queue_stats())
    # by priority (configured, else the newest active snapshot's), unknown last
    assert [(s.name, s.priority, s.max_concurrency) for s in stats] == [
        ("high", 1, 3), ("extra", 7, 2), ("idle", 10, 5), ("low", 50, None),
        ("orphan", None, None)]
    high, extra, idle, low, orphan = stats
    assert (high.pending, high.scheduled, high.claimed, high.running) == (2, 1, 1, 1)
    assert (high.completed, high.failed, high.cancelled, high.expired) == (1, 1, 0, 1)
    assert high.workers == 2  # wa and wc
    assert high.oldest_pending_age_s is not None and 600 <= high.oldest_pending_age_s < 3600
    assert (low.running, low.failed, low.cancelled, low.workers) == (1, 1, 1, 1)
    assert (low.pending, low.oldest_pending_age_s) == (0, None)
    # a queue only a worker serves (the STOPPED one is not counted)
    assert (extra.workers, extra.pending, extra.completed) == (1, 0, 0)
    # a configured queue without rows or workers
    assert (idle.workers, idle.pending, idle.oldest_pending_age_s) == (0, 0, None)
    assert (orphan.pending, orphan.workers) == (1, 0)
    everything = {s.name: s for s in ok(broker.get_queue_stats(terminal_window_s=None))}
    assert everything["high"].completed == 2


def test_queue_stats_of_a_broker_without_app(seeded: dict[str, str], pg_url: str) -> None:
    bare = PostgresBroker(PostgresConfig(database_url=pg_url))
    try:
        stats = ok(bare.get_queue_stats())
    finally:
        bare.close()
    # no configuration: the settings come from the newest active snapshot listing the queue
    assert [(s.name, s.priority, s.max_concurrency) for s in stats] == [
        ("high", 1, 3), ("extra", 7, 2), ("low", None, None), ("orphan", None, None)]


# -- workers ------------------------------------------------------------------------


def test_worker_states(broker: PostgresBroker, seeded: dict[str, str]) -> None:
    active = ok(broker.get_worker_states())
    assert [(s.hostname, s.worker_id) for s in active] == [
        ("host-a", "wb"), ("host-b", "wa"), ("host-b", "wc")]
    wa = active[1]
    assert (wa.pid, wa.lifecycle, wa.processes, wa.max_claim_batch,
            wa.max_claim_per_worker, wa.cluster_wide_cap) == (4242, "RUNNING", 4, 8, 16, None)
    assert (wa.tasks_running, wa.tasks_claimed, wa.memory_usage_mb, wa.memory_percent,
            wa.cpu_percent) == (2, 1, 123.5, 40.25, 50.0)
    assert wa.queues == ["high", "extra"]
    assert wa.queue_priorities == {"high": 1, "extra": 7}
    assert wa.queue_max_concurrency == {"high": 3, "extra": 2}
    assert wa.recovery_config == {"runner_heartbeat_interval_ms": 30000}
    assert wa.horsies_version == "9.9.9"
    assert wa.alive and 10 <= wa.age_s < 120
    assert wa.uptime_s == 86400 - 10  # snapshot_at minus worker_started_at
    assert wa.utilization_pct == 50.0
    assert active[2].utilization_pct == 33.3
    assert active[0].utilization_pct == 0.0
    every = ok(broker.get_worker_states(include_inactive=True))
    assert [(s.hostname, s.worker_id, s.alive) for s in every] == [
        ("host-a", "wb", True), ("host-a", "wstop", False), ("host-a", "wstop_old", False),
        ("host-b", "wa", True), ("host-b", "wc", True),
        ("host-c", "wdead", False), ("host-c", "wold", False)]
    old = every[-1]
    assert old.lifecycle == "DRAINING" and old.age_s >= 3 * 86400  # its latest snapshot


def test_worker_history(broker: PostgresBroker, seeded: dict[str, str]) -> None:
    points = ok(broker.get_worker_history(window_s=3600))
    assert [p.worker_id for p in points] == ["wa", "wb", "wc", "wdead", "wstop"]
    wa = points[0]
    assert (wa.tasks_running, wa.tasks_claimed, wa.processes, wa.cpu_percent,
            wa.memory_percent) == (2, 1, 4, 50.0, 40.25)
    mine = ok(broker.get_worker_history(window_s=7200, worker_id="wa"))
    assert [(p.worker_id, p.tasks_running) for p in mine] == [("wa", 0), ("wa", 2)]
    assert mine[0].snapshot_at < mine[1].snapshot_at
    assert ok(broker.get_worker_history(window_s=3600, worker_id="nobody")) == []


def test_cluster_summary(broker: PostgresBroker, seeded: dict[str, str]) -> None:
    summary = ok(broker.get_cluster_summary())
    assert (summary.active_workers, summary.total_capacity, summary.total_running,
            summary.total_claimed) == (3, 9, 3, 7)
    assert summary.utilization_pct == 33.33
    # only the workers that report a figure are averaged: (40.25 + 90) / 2 = 65.125
    assert (summary.avg_cpu_percent, summary.avg_memory_percent) == (50.0, 65.1)


def test_cluster_summary_without_workers(broker: PostgresBroker) -> None:
    summary = ok(broker.get_cluster_summary())
    assert (summary.active_workers, summary.total_capacity, summary.utilization_pct,
            summary.avg_cpu_percent, summary.avg_memory_percent) == (0, 0, None, None, None)


def test_utilization_trend_averages_each_worker_per_bucket(broker: PostgresBroker,
                                                           pg_url: str) -> None:
    # a bucket start ten minutes ago, aligned to the epoch like the method's buckets
    (base,) = query(pg_url, "SELECT to_timestamp(floor(EXTRACT(EPOCH FROM now()) / 60) * 60)"
                          " - interval '10 minutes'")[0]
    for worker, offset, running in (("x", 5, 1), ("x", 20, 3), ("y", 10, 2), ("x", 65, 4),
                                    ("x", -3000, 4)):  # the last is outside a 30-minute window
        query(pg_url, "INSERT INTO horsies_worker_states (snapshot_at, worker_started_at, pid, "
                    "processes, max_claim_batch, max_claim_per_worker, tasks_running, "
                    "worker_id, hostname, queues) VALUES (%s + %s * interval '1 second', "
                    "%s - interval '1 day', 1, 4, 1, 1, %s, %s, 'h', '{high}')",
            (base, offset, base, running, worker))
    points = ok(broker.get_utilization_trend(window_s=1800, bucket_s=60))
    # x averages 2 of 4 in the first bucket (not 4 of 8), y adds 2 of 4
    assert [(p.bucket_start, p.total_running, p.total_capacity, p.utilization_pct)
            for p in points] == [(base, 4.0, 8.0, 50.0),
                                 (base + timedelta(seconds=60), 4.0, 4.0, 100.0)]
    coarse = ok(broker.get_utilization_trend(window_s=1800, bucket_s=600))
    assert len(coarse) in (1, 2)  # the bucket of 600 s may split the two minutes
    assert ok(broker.get_utilization_trend(window_s=1)) == []


def test_worker_alerts(broker: PostgresBroker, seeded: dict[str, str]) -> None:
    alerts = ok(broker.get_worker_alerts())
    # latest snapshot at most 5 minutes old with memory > 85 or cpu > 80 (wdead is older)
    assert [(o.worker_id, o.hostname, o.memory_percent, o.cpu_percent, o.tasks_running,
             o.processes) for o in alerts.overloaded] == [
        ("wb", "host-a", 90.0, None, 0, 2), ("wstop", "host-a", 95.0, None, 0, 4)]
    # active workers with claimed > 2 x running
    assert [(s.worker_id, s.hostname, s.tasks_running, s.tasks_claimed, s.claim_ratio)
            for s in alerts.stale_claims] == [("wb", "host-a", 0, 3, None),
                                               ("wc", "host-b", 1, 3, 3.0)]
    assert all(s.snapshot_at is not None for s in alerts.stale_claims)


def test_dead_workers(broker: PostgresBroker, seeded: dict[str, str]) -> None:
    dead = ok(broker.get_dead_workers())
    # STOPPED workers exited cleanly; the latest snapshot counts, newest last_seen first
    assert [(d.worker_id, d.hostname, d.pid, d.tasks_at_death) for d in dead] == [
        ("wdead", "host-c", 4242, 3), ("wold", "host-c", 4242, 0)]
    assert 600 <= dead[0].offline_s < 3600 and dead[1].offline_s >= 3 * 86400
    assert dead[0].last_seen > dead[1].last_seen
    assert [d.worker_id for d in ok(broker.get_dead_workers(offline_after_s=3600))] == ["wold"]


def test_snapshot_age_distribution(broker: PostgresBroker, seeded: dict[str, str]) -> None:
    buckets = ok(broker.get_snapshot_age_distribution())
    assert [(b.label, b.snapshot_count, b.unique_workers) for b in buckets] == [
        ("< 1 hour", 5, 5), ("1-24 hours", 2, 2), ("1-7 days", 1, 1), ("7-30 days", 0, 0),
        ("> 30 days", 1, 1)]


def test_snapshot_age_distribution_is_zero_filled(broker: PostgresBroker) -> None:
    buckets = ok(broker.get_snapshot_age_distribution())
    assert [(b.snapshot_count, b.unique_workers) for b in buckets] == [(0, 0)] * 5
    assert len(buckets) == 5


# -- task lists ---------------------------------------------------------------------


def test_task_breakdown(broker: PostgresBroker, seeded: dict[str, str], pg_url: str) -> None:
    rows = ok(broker.get_task_breakdown())
    assert [r.worker_id for r in rows] == ["w1", "w2", "unassigned", "TOTAL"]
    w1, w2, unassigned, total = rows
    assert (w1.total, w1.claimed, w1.running, w1.completed, w1.retried) == (4, 1, 1, 2, 0)
    assert (w2.total, w2.running, w2.failed, w2.retried) == (2, 1, 1, 2)
    assert (unassigned.total, unassigned.pending, unassigned.failed, unassigned.cancelled,
            unassigned.expired) == (7, 4, 1, 1, 1)
    assert (total.total, total.pending, total.claimed, total.running, total.completed,
            total.failed, total.cancelled, total.expired, total.retried) == (
        13, 4, 1, 2, 2, 2, 1, 1, 2)
    assert (total.task_ids, total.retry_counts) == ([], [])
    by_enqueue = [r[0] for r in query(pg_url, "SELECT id::text, retry_count FROM horsies_tasks "
                                            "WHERE claimed_by_worker_id = 'w2' "
                                            "ORDER BY enqueued_at, id")]
    assert w2.task_ids == by_enqueue and sorted(w2.retry_counts) == [1, 2]
    assert w2.retry_counts == [1 if i == seeded["r2"] else 2 for i in w2.task_ids]
    assert len(unassigned.task_ids) == 7
    capped = ok(broker.get_task_breakdown(ids_per_worker=2))
    assert [len(r.task_ids) for r in capped] == [2, 2, 2, 0]
    assert capped[0].task_ids == [r[0] for r in query(
        pg_url, "SELECT id::text FROM horsies_tasks WHERE claimed_by_worker_id = 'w1' "
                "ORDER BY enqueued_at, id LIMIT 2")]
    assert capped[0].total == 4  # the cap limits the ids, not the counts
    retried = ok(broker.get_task_breakdown(retried_only=True))
    assert [(r.worker_id, r.total) for r in retried] == [("w2", 2), ("TOTAL", 2)]
    failed = ok(broker.get_task_breakdown(statuses=frozenset({"FAILED"})))
    assert [(r.worker_id, r.total, r.failed) for r in failed] == [
        ("w2", 1, 1), ("unassigned", 1, 1), ("TOTAL", 2, 2)]


def test_task_breakdown_of_an_empty_database(broker: PostgresBroker) -> None:
    (total,) = ok(broker.get_task_breakdown())
    assert (total.worker_id, total.total, total.task_ids) == ("TOTAL", 0, [])


def test_task_facets(broker: PostgresBroker, seeded: dict[str, str]) -> None:
    facets = ok(broker.get_task_facets(TaskFilter()))
    assert facets.task_names == [FacetValue("add", 10), FacetValue("mul", 3)]
    assert facets.queues == [FacetValue("high", 9), FacetValue("low", 3), FacetValue("orphan", 1)]
    assert facets.error_codes == [FacetValue("BOOM", 2), FacetValue("LATE", 1)]
    # a facet's own dimension (and text) does not narrow it
    assert ok(broker.get_task_facets(TaskFilter(task_names=frozenset({"mul"}),
                                                queues=frozenset({"low"}), text="x"))) == facets
    w2 = ok(broker.get_task_facets(TaskFilter(worker_id="w2")))
    assert (w2.task_names, w2.queues, w2.error_codes) == (
        [FacetValue("mul", 2)], [FacetValue("low", 2)], [FacetValue("BOOM", 1)])
    ended = ok(broker.get_task_facets(TaskFilter(unassigned=True,
                                                 statuses=frozenset({"FAILED", "EXPIRED"}))))
    # equal counts: by value
    assert ended.error_codes == [FacetValue("BOOM", 1), FacetValue("LATE", 1)]
    retried = ok(broker.get_task_facets(TaskFilter(retried_only=True)))
    assert retried.task_names == [FacetValue("mul", 2)]


def test_list_tasks(broker: PostgresBroker, seeded: dict[str, str]) -> None:
    newest_first = list(seeded)  # seeded in order of decreasing updated_at

    def listed(**fields: Any) -> list[str]:
        limit = fields.pop("limit", 500)
        rows = ok(broker.list_tasks(TaskFilter(**fields), limit=limit))
        names = {v: k for k, v in seeded.items()}
        return [names[r.id] for r in rows]

    assert listed() == newest_first
    assert listed(limit=2) == newest_first[:2]
    assert listed(statuses=frozenset({"PENDING"})) == ["p1", "p2", "sched", "orphan"]
    assert listed(statuses=frozenset({"CLAIMED", "RUNNING"})) == ["c1", "r1", "r2"]
    assert listed(worker_id="w1") == ["c1", "r1", "done1", "done_old"]
    assert listed(unassigned=True) == ["p1", "p2", "sched", "f2", "x1", "e1", "orphan"]
    assert listed(retried_only=True) == ["r2", "f1"]
    assert listed(task_names=frozenset({"mul"})) == ["r2", "f1", "x1"]
    assert listed(queues=frozenset({"orphan", "low"})) == ["r2", "f1", "x1", "orphan"]
    assert listed(error_codes=frozenset({"BOOM"})) == ["f1", "f2"]
    assert listed(text="MU") == ["r2", "f1", "x1"]
    assert listed(text=seeded["e1"][:13].upper()) == ["e1"]
    assert listed(statuses=frozenset({"FAILED"}), error_codes=frozenset({"BOOM"}),
                  queues=frozenset({"low"}), worker_id="w2") == ["f1"]
    assert listed(text="no such task") == []
    (f1,) = ok(broker.list_tasks(TaskFilter(worker_id="w2", statuses=frozenset({"FAILED"}))))
    assert (f1.id, f1.task_name, f1.queue_name, f1.status, f1.error_code, f1.retry_count,
            f1.max_retries, f1.claimed_by_worker_id) == (
        seeded["f1"], "mul", "low", TaskStatus.FAILED, "BOOM", 2, 2, "w2")
    assert f1.failed_at is not None and f1.started_at is not None and f1.completed_at is None
    assert f1.enqueued_at < f1.failed_at and f1.updated_at is not None


def test_task_filter_rejects_worker_and_unassigned() -> None:
    with pytest.raises(ValueError):
        TaskFilter(worker_id="w1", unassigned=True)


def test_task_detail(app: Horsies, broker: PostgresBroker, pg_url: str) -> None:
    task_id = send(app)
    query(pg_url, "INSERT INTO horsies_task_attempts (task_id, attempt, outcome, will_retry, "
                "started_at, finished_at, error_code, worker_id) VALUES "
                "(%s, 1, 'FAILED', TRUE, now(), now(), 'BOOM', 'w1')", (task_id,))
    put(pg_url, task_id, "COMPLETED", worker="w2", retry=1, updated=5)
    query(pg_url, "UPDATE horsies_tasks SET result = 'stored', task_options = '{}', "
                "worker_hostname = 'h', worker_pid = 7 WHERE id = %s", (task_id,))
    detail = ok(broker.get_task_detail(task_id))
    assert detail is not None
    columns = query(pg_url, "SELECT args, kwargs, enqueue_sha, sent_at, created_at, updated_at, "
                          "priority FROM horsies_tasks WHERE id = %s", (task_id,))[0]
    assert (detail.args, detail.kwargs, detail.enqueue_sha, detail.sent_at, detail.created_at,
            detail.updated_at, detail.priority) == columns
    assert (detail.id, detail.task_name, detail.queue_name, detail.status) == (
        task_id, "add", "high", TaskStatus.COMPLETED)
    assert (detail.result, detail.task_options, detail.worker_hostname, detail.worker_pid,
            detail.claimed_by_worker_id, detail.retry_count, detail.max_retries) == (
        "stored", "{}", "h", 7, "w2", 1, 1)
    assert (detail.claimed, detail.claim_expires_at, detail.run_seq, detail.good_until) == (
        False, None, None, None)
    assert detail.completed_at is not None and detail.failed_at is None
    # newest first; the completing attempt is built from the row
    assert [(a.attempt, a.outcome, a.worker_id) for a in detail.attempts] == [
        (2, TaskAttemptOutcome.COMPLETED, "w2"), (1, TaskAttemptOutcome.FAILED, "w1")]
    assert (detail.workflow_id, detail.workflow_name, detail.workflow_status,
            detail.node_task_index, detail.node_id) == (None, None, None, None, None)
    assert ok(broker.get_task_detail(str(uuid.uuid4()))) is None


# -- read only, failures ------------------------------------------------------------


def every_read(broker: PostgresBroker, task_id: str) -> list[Coroutine[Any, Any, Any]]:
    return [
        broker.get_task_status_counts(), broker.get_queue_stats(), broker.get_worker_states(),
        broker.get_worker_states(include_inactive=True), broker.get_worker_history(window_s=60),
        broker.get_cluster_summary(), broker.get_utilization_trend(), broker.get_worker_alerts(),
        broker.get_dead_workers(), broker.get_snapshot_age_distribution(),
        broker.get_task_breakdown(), broker.get_task_facets(TaskFilter()),
        broker.list_tasks(TaskFilter()), broker.get_workflow_summary(),
        broker.list_workflows(), broker.get_workflow_detail(task_id),
        broker.get_task_detail(task_id),
    ]


def _tables(url: str) -> list[Any]:
    return [query(url, f"SELECT * FROM {table} ORDER BY 1")
            for table in ("horsies_tasks", "horsies_task_attempts", "horsies_worker_states")]


def test_every_method_only_reads(seeded: dict[str, str], pg_url: str) -> None:
    before = _tables(pg_url)
    reader = make_app(read_only(pg_url)).get_broker()

    async def read_all() -> list[Any]:
        return [await read for read in every_read(reader, seeded["done1"])]

    try:
        outcomes = asyncio.run(read_all())
    finally:
        reader.close()
    assert all(isinstance(o, Ok) for o in outcomes), outcomes
    assert outcomes[-1].ok_value.id == seeded["done1"]
    assert _tables(pg_url) == before


def test_a_database_that_is_down_gives_retryable_errors(down: PostgresBroker) -> None:
    for read in every_read(down, str(uuid.uuid4())):
        assert_err(run(read), retryable=True)
    # not a UUID: answered without a query
    assert ok(down.get_task_detail("not-a-uuid")) is None


def test_a_database_without_schema_is_a_permanent_error(
        pg_server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    empty = f"horsies_empty_{uuid.uuid4().hex[:8]}"
    query(pg_server_url, f"CREATE DATABASE {empty}")
    url = with_database(pg_server_url, empty)
    try:
        bare = make_app(url).get_broker()
        try:
            for read in every_read(bare, str(uuid.uuid4())):
                outcome = run(read)
                assert_err(outcome, retryable=False)
                assert outcome.err_value.message.startswith("schema not initialized"), outcome
        finally:
            bare.close()
        # they did not create the schema (§1.5)
        assert query(url, "SELECT to_regclass('horsies_tasks')") == [(None,)]
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            drop_database(admin, empty)
