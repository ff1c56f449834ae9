"""The worker's LISTEN connection (workers.md §4.3).

Every notification on a served queue's channel (or `task_new`) means "look
again". On a lost connection the listener reconnects with the resilience
backoff, re-issues every LISTEN and reports a wake-up, because notifications
sent meanwhile are lost; the main loop's poll covers the gap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg

from horsies.sql import listen, queue_channel
from horsies.worker.connections import Connections

log = logging.getLogger("horsies.worker")


class Listener:
    def __init__(self, conns: Connections, queues: list[str],
                 on_note: Callable[[str], None], stopping: Callable[[], bool]) -> None:
        self.conns = conns
        self.queues = queues
        self.channels = [queue_channel(q) for q in queues] + ["task_new"]
        self.on_note = on_note
        self.stopping = stopping
        self._session: psycopg.AsyncConnection[Any] | None = None  # the one subscribed

    async def subscribe(self, conn: psycopg.AsyncConnection[Any]) -> None:
        for channel in self.channels:
            await conn.execute(listen(channel))
        if self._session is None:
            log.info("Subscribed to queues: [%s] + global", ", ".join(self.queues))
        self._session = conn

    async def loop(self) -> None:
        await self.conns.retrying("listener", "listener", self._listen, give_up=self.stopping)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if conn is not self._session:  # a replaced connection has no subscriptions
            await self.subscribe(conn)
            self.on_note("")  # notifications sent while it was away are lost
        async for note in conn.notifies():
            self.on_note(note.payload)
