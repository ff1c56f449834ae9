"""The main process's own connections, one per role, and the one retry loop.

Roles: ``cycle`` (finalizations and starts, durable), ``claim`` (claim passes
where a cap counts; its commits skip the WAL flush because the cycle's commit
flushes past them), ``service`` (heartbeats, reaper, snapshots, releases,
notifications; callers take turns) and ``listener`` (LISTEN only, managed by
the listener). Every part that talks to the database goes through
:meth:`Connections.retrying`, the single place where a lost connection is
backed off and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from horsies.config import WorkerResilienceConfig
from horsies.db.broker import is_transient

log = logging.getLogger("horsies.worker")
T = TypeVar("T")

# The claim connection writes only T2 (claim) and T6 (lease sweep). Losing such
# a commit in a server crash leaves the task PENDING, and the durable cycle
# commit that starts it flushes the WAL past it, so it skips its own flush.
_OPTIONS = {
    "claim": "-c synchronous_commit=off",
    # The cycle statement is planned once (see worker_cycle in workers.sql), and
    # finds every row it touches through an index: a plan made while a freshly
    # loaded table has no statistics yet must not scan the whole table instead.
    "cycle": "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off",
}


def _prepare_threshold() -> int | None:
    # Prepared statements do not survive a transaction-pooling proxy.
    return None if os.environ.get("HORSIES_NO_PREPARE") == "1" else 0


async def connect(url: str, role: str) -> psycopg.AsyncConnection[Any]:
    """An autocommit connection: a single statement is one round trip and one
    transaction; work of several statements opens ``conn.transaction()``."""
    extra = {"options": _OPTIONS[role]} if role in _OPTIONS else {}
    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, prepare_threshold=_prepare_threshold(), connect_timeout=10,
        application_name=os.environ.get("PGAPPNAME", "horsies-worker"), **extra)


class Connections:
    """Connections by role, replaced when lost, with the resilience backoff."""

    def __init__(self, url: Callable[[], str], resilience: WorkerResilienceConfig) -> None:
        self._url = url
        self.resilience = resilience
        self._conns: dict[str, psycopg.AsyncConnection[Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # When a connection was last found lost (monotonic): the reaper judges
        # heartbeats only once a full threshold has passed since.
        self.lost_at: float | None = None

    async def open(self, roles: list[str]) -> None:
        conns = await asyncio.gather(*(connect(self._url(), role) for role in roles))
        for role, conn in zip(roles, conns, strict=True):
            self._conns[role] = conn
            self._locks[role] = asyncio.Lock()

    def get(self, role: str) -> psycopg.AsyncConnection[Any]:
        return self._conns[role]

    def lock(self, role: str) -> asyncio.Lock:
        """Callers sharing one role's connection take turns through this lock."""
        return self._locks[role]

    async def reconnect(self, role: str) -> None:
        """Replace `role`'s connection (a failed attempt is left for the next retry)."""
        self.lost_at = time.monotonic()
        old = self._conns.get(role)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        try:
            self._conns[role] = await connect(self._url(), role)
        except psycopg.Error as exc:
            log.warning("reconnect of the %s connection failed: %s", role, exc)

    async def retrying(self, role: str, what: str,
                       op: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
                       give_up: Callable[[], bool] = lambda: False,
                       line: str = "{what} failed: {exc}; retrying in {delay:.1f}s "
                                   "(attempt {n}/{most})",
                       level: int = logging.WARNING) -> T:
        """Run `op` on `role`'s connection, one caller at a time; a transient
        failure is logged, backed off and retried on a new connection until
        `op` succeeds, the attempts of WorkerResilienceConfig run out, or
        `give_up()` turns true. Anything else is raised at once."""
        failures = 0
        while True:
            try:
                async with self._locks[role]:
                    conn = self._conns[role]
                    if conn.closed or conn.broken:
                        await self.reconnect(role)
                        conn = self._conns[role]
                    return await op(conn)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                self.lost_at = time.monotonic()
                res = self.resilience
                if give_up() or not res.retry_allowed(failures):
                    raise
                delay = res.backoff_ms(failures) / 1000
                log.log(level, line.format(what=what, exc=" ".join(str(exc).split()), delay=delay,
                                           n=failures, most=res.db_retry_max_attempts or "inf"))
                await asyncio.sleep(delay)
                async with self._locks[role]:
                    await self.reconnect(role)

    @contextlib.asynccontextmanager
    async def transaction(self, role: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """One transaction on `role`'s connection, without retries (best-effort
        callers: a broken connection is replaced first)."""
        async with self._locks[role]:
            conn = self._conns[role]
            if conn.closed or conn.broken:
                await self.reconnect(role)
                conn = self._conns[role]
            async with conn.transaction():
                yield conn

    async def close(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                await conn.close()
