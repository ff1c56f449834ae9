"""The producer-side LISTEN connection that wakes result waiters.

One thread per broker owns one autocommit connection listening on
`task_done` and `workflow_done`. Waiters (sync or async) register a callback for a task id; a
notification naming that id calls it. After a reconnect every waiter is
woken, because notifications sent meanwhile are lost; waiters always re-read
the row, never trusting a notification alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from horsies.db.pool import CONNECT_TIMEOUT_S
from horsies.sql import listen

log = logging.getLogger("horsies.listener")

Wake = Callable[[], None]
# Task ids and workflow ids are distinct UUIDs: one table of waiters serves both.
_CHANNELS = ("task_done", "workflow_done")


class ResultListener:
    def __init__(self, url: Callable[[], str]) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Wake]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def subscribe(self, task_id: str, wake: Wake) -> None:
        with self._lock:
            self._waiters.setdefault(task_id, set()).add(wake)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="horsies-result-listener", daemon=True
                )
                self._thread.start()

    def unsubscribe(self, task_id: str, wake: Wake) -> None:
        with self._lock:
            waiters = self._waiters.get(task_id)
            if waiters is not None:
                waiters.discard(wake)
                if not waiters:
                    del self._waiters[task_id]

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=3)
        self._thread = None

    def _wake(self, task_id: str | None) -> None:
        with self._lock:
            if task_id is None:
                wakes = [w for ws in self._waiters.values() for w in ws]
            else:
                wakes = list(self._waiters.get(task_id, ()))
        for wake in wakes:
            wake()

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._url(), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                ) as conn:
                    for channel in _CHANNELS:
                        conn.execute(listen(channel))
                    self._connected.set()
                    self._wake(None)
                    delay = 0.2
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            # One notification names every task a statement ended.
                            for task_id in note.payload.split(","):
                                self._wake(task_id)
            except Exception as exc:  # noqa: BLE001 - any failure means reconnect
                log.debug("result listener disconnected: %s", exc)
            self._connected.clear()
            self._wake(None)
            self._stop.wait(delay)
            delay = min(delay * 2, 5.0)
