"""Connections for everything that is not a worker's main process.

- One synchronous pool per broker (psycopg_pool), shared by threads.
- One small asynchronous pool per event loop that uses the async API. It has
  no background tasks: connections are opened in the caller's own task and
  idle ones are closed when the loop shuts down (through an async generator
  that `asyncio.run` finalizes). A pool with background tasks can keep a
  loop's shutdown waiting forever: `asyncio.run` cancels every task before it
  finalizes anything, and psycopg_pool's maintenance tasks swallow a
  cancellation that arrives while they are connecting.
- One `Reachability` per broker: a server that refuses or cannot be resolved
  is not a busy pool. The first failed connection attempt marks the database
  unreachable (logged once, URL masked); from then on every operation makes one
  direct connection attempt and fails at once with a transient error until the
  server answers again, instead of waiting `pool_timeout` for a pool that
  cannot fill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool, PoolTimeout

from horsies.config import PostgresConfig

log = logging.getLogger("horsies.broker")

# A connection checked out less than this long ago is trusted without a
# ping: pinging on every checkout would double a busy producer's round trips.
_PING_AFTER_IDLE_S = 2.0
# An idle connection unused this long is closed instead of reused.
_MAX_IDLE_S = 60.0
# Longest wait for a connection attempt: bounds how long an operation takes to
# fail when the server's host does not answer at all (docs/reliability.md).
CONNECT_TIMEOUT_S = 5
# While waiting for a free pooled connection, how often to look whether the
# pool's own connection attempts found the server unreachable.
_WAIT_SLICE_S = 0.25
SYNC_POOL_NAME = "horsies-sync"


def connection_kwargs() -> dict[str, Any]:
    return {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S}


class _OwnPoolRecords(logging.Filter):
    """Drop psycopg_pool's per-attempt lines about our pool: `Reachability`
    reports an outage once, with the URL masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return SYNC_POOL_NAME not in args


logging.getLogger("psycopg.pool").addFilter(_OwnPoolRecords())


class Reachability:
    """Whether the broker's last connection attempt reached the server."""

    def __init__(self, url: Callable[[], str]) -> None:
        self._url = url
        self._lock = threading.Lock()
        self.down = False
        self.reason = ""

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            first = not self.down
            # psycopg's messages span lines; one line reads better in a log.
            self.down, self.reason = True, " ".join(str(exc).split()) or type(exc).__name__
        if first:
            log.warning("cannot reach the database at %s: %s; operations fail with a "
                        "retryable error until it answers again", _masked(self._url()),
                        self.reason)

    def succeeded(self) -> None:
        if not self.down:
            return
        with self._lock:
            was_down, self.down = self.down, False
        if was_down:
            log.info("the database at %s answers again", _masked(self._url()))

    def error(self) -> psycopg.OperationalError:
        return psycopg.OperationalError(f"database unreachable: {self.reason}")

    def probe(self) -> None:
        """One direct connection attempt; raises (transient) when it still fails."""
        try:
            psycopg.connect(self._url(), **connection_kwargs()).close()
        except psycopg.Error as exc:
            self.failed(exc)
            raise self.error() from exc
        self.succeeded()

    async def probe_async(self) -> None:
        try:
            conn = await psycopg.AsyncConnection.connect(self._url(), **connection_kwargs())
        except psycopg.Error as exc:
            self.failed(exc)
            raise self.error() from exc
        await conn.close()
        self.succeeded()


def _masked(url: str) -> str:
    from horsies.config.postgres import mask_url

    return mask_url(url)


# -- the synchronous pool ------------------------------------------------------


def _needs_ping(conn: object) -> bool:
    now = time.monotonic()
    stale = now - getattr(conn, "_horsies_last_checked", 0.0) > _PING_AFTER_IDLE_S
    conn._horsies_last_checked = now
    return stale


def _check(conn: psycopg.Connection[Any]) -> None:
    if _needs_ping(conn):
        conn.execute("")


def _tracked_connection(health: Reachability) -> type[psycopg.Connection[Any]]:
    """A connection class whose connection attempts update `health`."""

    class TrackedConnection(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, *args: Any, **kwargs: Any) -> Any:
            try:
                conn = super().connect(*args, **kwargs)
            except psycopg.Error as exc:
                health.failed(exc)
                raise
            health.succeeded()
            return conn

    return TrackedConnection


def open_sync_pool(url: str, config: PostgresConfig, health: Reachability) -> ConnectionPool:
    pool: ConnectionPool = ConnectionPool(
        url,
        connection_class=_tracked_connection(health),
        check=_check if config.pool_pre_ping else None,
        open=False,
        name=SYNC_POOL_NAME,
        min_size=1,
        max_size=config.pool_size + config.max_overflow,
        timeout=float(config.pool_timeout),
        max_lifetime=float(config.pool_recycle),
        max_idle=_MAX_IDLE_S,
        kwargs=connection_kwargs(),
    )
    pool.open(wait=False)
    return pool


@contextmanager
def pooled(pool: ConnectionPool, health: Reachability, timeout: float
           ) -> Iterator[psycopg.Connection[Any]]:
    """A connection of `pool`: at once when one is free, after at most `timeout`
    seconds when all are busy, and with a transient error as soon as the server
    is known to be unreachable."""
    if health.down:
        health.probe()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            conn = pool.getconn(timeout=max(0.01, min(_WAIT_SLICE_S, left)))
            break
        except PoolTimeout:
            if health.down:
                raise health.error() from None
            if time.monotonic() >= deadline:
                raise PoolTimeout(f"no free connection after {timeout:.0f} s") from None
    try:
        with conn:  # commit or roll back like psycopg_pool's connection()
            yield conn
    finally:
        pool.putconn(conn)


# -- the asynchronous pools ------------------------------------------------------


class LoopPool:
    """Connections of one event loop, opened in the task that needs one.

    At most `pool_size + max_overflow` are in use at once; a caller that finds
    them all busy waits up to `pool_timeout`. Up to `pool_size` idle ones are
    kept for reuse, pinged after `_PING_AFTER_IDLE_S` of rest (with
    `pool_pre_ping`), and replaced after `pool_recycle` seconds.
    """

    def __init__(self, url: str, config: PostgresConfig, health: Reachability) -> None:
        self._url = url
        self._config = config
        self._health = health
        self._slots = asyncio.Semaphore(config.pool_size + config.max_overflow)
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float, float]] = []
        self.closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            async with asyncio.timeout(float(self._config.pool_timeout)):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolTimeout(
                f"no free connection after {self._config.pool_timeout} s") from None
        try:
            conn, born = await self._take()
            try:
                yield conn
            except BaseException:
                await self._give_back(conn, born, failed=True)
                raise
            await self._give_back(conn, born, failed=False)
        finally:
            self._slots.release()

    async def _take(self) -> tuple[psycopg.AsyncConnection[Any], float]:
        if self._health.down:
            await self._health.probe_async()
        now = time.monotonic()
        while self._idle:
            conn, born, rested = self._idle.pop()
            if now - born > self._config.pool_recycle or now - rested > _MAX_IDLE_S:
                await _close_quietly(conn)
                continue
            if self._config.pool_pre_ping and now - rested > _PING_AFTER_IDLE_S:
                try:
                    await conn.execute("")
                except psycopg.Error:
                    await _close_quietly(conn)
                    continue
            return conn, born
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, **connection_kwargs())
        except psycopg.Error as exc:
            self._health.failed(exc)
            raise
        self._health.succeeded()
        return conn, now

    async def _give_back(self, conn: psycopg.AsyncConnection[Any], born: float, *,
                         failed: bool) -> None:
        idle = conn.info.transaction_status == pq.TransactionStatus.IDLE
        if (failed and not idle) or conn.closed or conn.broken or not idle or self.closed \
                or len(self._idle) >= self._config.pool_size:
            await _close_quietly(conn)
            return
        self._idle.append((conn, born, time.monotonic()))

    async def close(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for conn, _born, _rested in idle:
            await _close_quietly(conn)


async def _close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(Exception):  # it is being discarded anyway
        await conn.close()


class AsyncPools:
    """One LoopPool per running event loop."""

    def __init__(self, health: Reachability) -> None:
        self._health = health
        self._pools: dict[int, tuple[asyncio.AbstractEventLoop, LoopPool, Any]] = {}

    async def get(self, url: str, config: PostgresConfig) -> LoopPool:
        loop = asyncio.get_running_loop()
        entry = self._pools.get(id(loop))
        if entry is not None and entry[0] is loop:
            return entry[1]
        self._forget_closed_loops()
        pool = LoopPool(url, config, self._health)
        guard = self._close_with_loop(pool, id(loop))
        await guard.__anext__()
        self._pools[id(loop)] = (loop, pool, guard)
        return pool

    async def _close_with_loop(self, pool: LoopPool, key: int) -> AsyncIterator[None]:
        # asyncio.run() finalizes async generators before closing its loop,
        # which runs this finally block inside the loop that owns the pool.
        try:
            yield
        finally:
            self._pools.pop(key, None)
            await pool.close()

    def _forget_closed_loops(self) -> None:
        for key, (loop, _pool, _guard) in list(self._pools.items()):
            if loop.is_closed():
                del self._pools[key]

    def close_other_loops(self, timeout: float = 3.0) -> None:
        """Close the pools of loops running in other threads (such as the shared
        loop of the sync workflow calls), waiting up to `timeout` for each."""
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for key, (loop, pool, _guard) in list(self._pools.items()):
            if loop is here:
                continue
            self._pools.pop(key, None)
            if loop.is_running() and not loop.is_closed():
                future = asyncio.run_coroutine_threadsafe(pool.close(), loop)
                with contextlib.suppress(Exception):  # closing is best effort
                    future.result(timeout)

    async def close_current(self) -> None:
        loop = asyncio.get_running_loop()
        entry = self._pools.pop(id(loop), None)
        if entry is not None:
            await entry[1].close()
