"""Apps with queue and concurrency settings, importable by real workers (e2e tests).

Every app points at a placeholder URL; HORSIES_DATABASE_URL (set by the tests)
replaces it. Tasks sleep so that their RUNNING intervals, recorded by the
database as started_at .. completed_at, can overlap.
"""

from __future__ import annotations

import os
import time

from horsies import (
    AppConfig,
    CustomQueueConfig,
    Horsies,
    PostgresConfig,
    QueueMode,
    TaskError,
    TaskResult,
)
from horsies.config import WorkerResilienceConfig

_URL = "postgresql://unused@localhost/unused"
# Wake up every second without a notification (backlogs sent before the start).
_FAST_POLL = WorkerResilienceConfig(notify_poll_interval_ms=1_000)


def _nap(seconds: float) -> TaskResult[int, TaskError]:
    time.sleep(seconds)
    return TaskResult(ok=os.getpid())


# -- hard cap: two queues under one cluster-wide cap ------------------------------------

capped = Horsies(AppConfig(
    broker=PostgresConfig(database_url=_URL),
    queue_mode=QueueMode.CUSTOM,
    custom_queues=[
        CustomQueueConfig(name="narrow", priority=1, max_concurrency=2),
        CustomQueueConfig(name="wide", priority=50, max_concurrency=5),
    ],
    cluster_wide_cap=4,
    resilience=_FAST_POLL,
))


@capped.task("narrow_nap", queue_name="narrow")
def narrow_nap(seconds: float) -> TaskResult[int, TaskError]:
    return _nap(seconds)


@capped.task("wide_nap", queue_name="wide")
def wide_nap(seconds: float) -> TaskResult[int, TaskError]:
    return _nap(seconds)


# -- priorities: three queues, one worker process ------------------------------------------

ordered = Horsies(AppConfig(
    broker=PostgresConfig(database_url=_URL),
    queue_mode=QueueMode.CUSTOM,
    custom_queues=[
        CustomQueueConfig(name="low", priority=100),
        CustomQueueConfig(name="high", priority=1),
        CustomQueueConfig(name="mid", priority=50),
    ],
    resilience=_FAST_POLL,
))


@ordered.task("low_mark", queue_name="low")
def low_mark(label: str) -> TaskResult[str, TaskError]:
    return TaskResult(ok=label)


@ordered.task("high_mark", queue_name="high")
def high_mark(label: str) -> TaskResult[str, TaskError]:
    return TaskResult(ok=label)


@ordered.task("mid_mark", queue_name="mid")
def mid_mark(label: str) -> TaskResult[str, TaskError]:
    return TaskResult(ok=label)


# -- soft cap: prefetch lets a capped queue burst -------------------------------------------

prefetching = Horsies(AppConfig(
    broker=PostgresConfig(database_url=_URL),
    queue_mode=QueueMode.CUSTOM,
    custom_queues=[
        CustomQueueConfig(name="blocker", priority=1, max_concurrency=5),
        CustomQueueConfig(name="capped", priority=50, max_concurrency=1),
    ],
    prefetch_buffer=2,
    claim_lease_ms=30_000,
    resilience=_FAST_POLL,
))


@prefetching.task("blocker_nap", queue_name="blocker")
def blocker_nap(seconds: float) -> TaskResult[int, TaskError]:
    return _nap(seconds)


@prefetching.task("capped_nap", queue_name="capped")
def capped_nap(seconds: float) -> TaskResult[int, TaskError]:
    return _nap(seconds)


# -- leases: short soft-cap leases that lapse while a claim waits -----------------------------
# Two apps on the same queue ('default'): `leasing` polls rarely (it only wakes
# on its own events), `sweeping` polls every second and so takes over expired
# claims quickly. A claim older than max_claim_renew_age_ms is never renewed.

_LEASE = dict(prefetch_buffer=1, claim_lease_ms=1_000, max_claim_renew_age_ms=1_000)

leasing = Horsies(AppConfig(
    broker=PostgresConfig(database_url=_URL),
    resilience=WorkerResilienceConfig(notify_poll_interval_ms=300_000),
    **_LEASE,  # type: ignore[arg-type]
))
sweeping = Horsies(AppConfig(
    broker=PostgresConfig(database_url=_URL), resilience=_FAST_POLL,
    **_LEASE,  # type: ignore[arg-type]
))


@leasing.task("lease_nap")
def lease_nap(seconds: float) -> TaskResult[int, TaskError]:
    return _nap(seconds)


@sweeping.task("lease_nap")
def lease_nap_swept(seconds: float) -> TaskResult[int, TaskError]:
    return _nap(seconds)


for _app in (capped, ordered, prefetching, leasing, sweeping):
    _app.discover_tasks(["tests.integration.concurrency_apps"])
