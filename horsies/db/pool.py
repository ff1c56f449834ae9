"""Connection pools for everything that is not a worker's main process.

One synchronous pool per broker, and one asynchronous pool per event loop
that uses the async API. An async pool is closed when its loop shuts down
(through an async generator that `asyncio.run` finalizes), so repeated
`asyncio.run()` calls never leak connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from horsies.config import PostgresConfig

# A connection checked out less than this long ago is trusted without a
# ping: pinging on every checkout would double a busy producer's round trips.
# (A `reset` callback could stamp returns instead, but it makes the pool hand
# every returned connection to a background thread.)
_PING_AFTER_IDLE_S = 2.0
CONNECT_TIMEOUT_S = 10
_LAST_CHECKED = "_horsies_last_checked"


def connection_kwargs() -> dict[str, Any]:
    return {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S}


def _needs_ping(conn: object) -> bool:
    now = time.monotonic()
    stale = now - getattr(conn, _LAST_CHECKED, 0.0) > _PING_AFTER_IDLE_S
    setattr(conn, _LAST_CHECKED, now)
    return stale


def _check(conn: psycopg.Connection[Any]) -> None:
    if _needs_ping(conn):
        conn.execute("")


async def _acheck(conn: psycopg.AsyncConnection[Any]) -> None:
    if _needs_ping(conn):
        await conn.execute("")


def _sizes(config: PostgresConfig) -> dict[str, Any]:
    return {
        "min_size": 1,
        "max_size": config.pool_size + config.max_overflow,
        "timeout": float(config.pool_timeout),
        "max_lifetime": float(config.pool_recycle),
        "max_idle": 60.0,
        "kwargs": connection_kwargs(),
    }


def open_sync_pool(url: str, config: PostgresConfig) -> ConnectionPool:
    pool = ConnectionPool(
        url,
        check=_check if config.pool_pre_ping else None,
        open=False,
        name="horsies-sync",
        **_sizes(config),
    )
    pool.open(wait=False)
    return pool


class AsyncPools:
    """One AsyncConnectionPool per running event loop."""

    def __init__(self) -> None:
        self._pools: dict[int, tuple[asyncio.AbstractEventLoop, AsyncConnectionPool, Any]] = {}

    async def get(self, url: str, config: PostgresConfig) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        entry = self._pools.get(id(loop))
        if entry is not None and entry[0] is loop:
            return entry[1]
        self._forget_closed_loops()
        pool = AsyncConnectionPool(
            url,
            check=_acheck if config.pool_pre_ping else None,
            open=False,
            name="horsies-async",
            **_sizes(config),
        )
        await pool.open(wait=False)
        guard = self._close_with_loop(pool, id(loop))
        await guard.__anext__()
        self._pools[id(loop)] = (loop, pool, guard)
        return pool

    async def _close_with_loop(self, pool: AsyncConnectionPool, key: int) -> AsyncIterator[None]:
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

    async def close_current(self) -> None:
        loop = asyncio.get_running_loop()
        entry = self._pools.pop(id(loop), None)
        if entry is not None:
            await entry[1].close()
