"""The monitor's notification feed: LISTEN, a 150 ms debounce, reconnection (monitoring.md §3.2).

One dedicated connection listens on the channels the database and workers
notify on. Notifications arriving within 150 ms of the first are folded into
one set of flags, so a burst of thousands of task changes costs one refresh.

A `send` notifies only its queue's channel `task_queue_<queue>` (runs.md §5),
so the feed also listens on the channel of every queue it is told about
(`Feed.watch`): the app's configured queues, and those the dashboard and the
workers tab see in queue statistics and worker snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

import psycopg

from horsies.sql import listen, queue_channel

__all__ = ["CHANNEL_FLAGS", "DEBOUNCE_S", "RECONNECT_S", "Debouncer", "Feed", "FeedState", "Flag",
           "flag_of"]

DEBOUNCE_S = 0.15
RECONNECT_S = 5.0
CONNECT_TIMEOUT_S = 5
WATCH_CHECK_S = 0.5  # how soon a newly watched queue's channel is listened on
QUEUE_PREFIX = queue_channel("")


class Flag(StrEnum):
    """What a notification says has changed."""

    TASKS = "tasks"
    WORKFLOWS = "workflows"
    WORKERS = "workers"


class FeedState(StrEnum):
    LIVE = "live"
    POLLING = "polling"  # --no-listen, or not connected yet
    RECONNECTING = "reconnecting"


CHANNEL_FLAGS: dict[str, Flag] = {
    "horsies_task_status": Flag.TASKS, "task_new": Flag.TASKS, "task_done": Flag.TASKS,
    "horsies_workflow_status": Flag.WORKFLOWS, "workflow_done": Flag.WORKFLOWS,
    "horsies_worker_state": Flag.WORKERS,
}

Flush = Callable[[frozenset[Flag]], None]


def flag_of(channel: str) -> Flag | None:
    """The flag a notification on `channel` raises: a queue's channel means a task was sent."""
    if channel.startswith(QUEUE_PREFIX):
        return Flag.TASKS
    return CHANNEL_FLAGS.get(channel)


class Debouncer:
    """Collects flags from the first notice for `delay_s`, then hands them over once."""

    def __init__(self, flush: Flush, delay_s: float = DEBOUNCE_S) -> None:
        self._flush = flush
        self._delay_s = delay_s
        self._pending: set[Flag] = set()
        self._timer: asyncio.TimerHandle | None = None

    def notice(self, channel: str) -> None:
        flag = flag_of(channel)
        if flag is None:
            return
        self._pending.add(flag)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay_s, self._fire)

    def _fire(self) -> None:
        self._timer = None
        flags, self._pending = frozenset(self._pending), set()
        if flags:
            self._flush(flags)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()


class Feed:
    """Runs the LISTEN connection until cancelled; reports its state and debounced flags."""

    def __init__(self, url: str, flush: Flush, on_state: Callable[[FeedState], None],
                 reconnect_s: float | None = None) -> None:
        self._url = url
        self._debouncer = Debouncer(flush)
        self._on_state = on_state
        self._reconnect_s = RECONNECT_S if reconnect_s is None else reconnect_s
        self.state = FeedState.POLLING
        self.queues: set[str] = set()  # queues whose channels are wanted

    def watch(self, queues: Iterable[str]) -> None:
        """Listen on these queues' channels too (from the next check, within 0.5 s)."""
        self.queues.update(queues)

    def _set(self, state: FeedState) -> None:
        if state is not self.state:
            self.state = state
            self._on_state(state)

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._listen()
                except (psycopg.Error, OSError):
                    pass  # lost or refused: shown as reconnecting, retried below
                self._set(FeedState.RECONNECTING)
                await asyncio.sleep(self._reconnect_s)
        finally:
            self._debouncer.cancel()

    async def _listen(self) -> None:
        conn: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        async with conn:
            for channel in CHANNEL_FLAGS:
                await conn.execute(listen(channel))
            listened: set[str] = set()
            self._set(FeedState.LIVE)
            # Changes made while we were away were never notified: refresh everything.
            self._debouncer.notice("task_new")
            self._debouncer.notice("workflow_done")
            self._debouncer.notice("horsies_worker_state")
            while True:
                for queue in sorted(self.queues - listened):
                    await conn.execute(listen(queue_channel(queue)))
                    listened.add(queue)
                async for notice in conn.notifies(timeout=WATCH_CHECK_S):
                    self._debouncer.notice(notice.channel)


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
