"""The scheduler's state rows (``horsies_schedule_state``), on its own connection.

The scheduler is a service, like a worker's main process: it keeps one
connection of its own for the schedule locks, so that an entry's lock holder
can never starve the enqueue, which goes through the broker's pool
(scheduling.md §7.5). Every change to an entry's row happens in
:meth:`ScheduleStore.locked`, a transaction holding that entry's advisory lock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from horsies.scheduler.identity import schedule_lock_key
from horsies.sql import queries

__all__ = ["EntryState", "LockedEntry", "ScheduleStore"]

_CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True, slots=True)
class EntryState:
    """What the scheduler reads back from one state row."""

    next_run_at: datetime | None
    config_hash: str | None
    run_count: int


class LockedEntry:
    """One entry's row inside the transaction that holds its lock."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], name: str) -> None:
        self._conn = conn
        self.name = name

    async def _run(self, query: str, **params: Any) -> psycopg.AsyncCursor[Any]:
        return await self._conn.execute(queries[query], {"name": self.name, **params})

    async def read(self) -> EntryState | None:
        cur = await self._run("schedule_state_get")
        row = await cur.fetchone()
        return None if row is None else EntryState(row[0], row[1], int(row[2]))

    async def insert(self, next_run_at: datetime, config_hash: str) -> None:
        await self._run("schedule_state_insert", next_run_at=next_run_at, config_hash=config_hash)

    async def rehash(self, next_run_at: datetime, config_hash: str) -> None:
        await self._run("schedule_state_rehash", next_run_at=next_run_at, config_hash=config_hash)

    async def advance(self, next_run_at: datetime) -> None:
        await self._run("schedule_state_advance", next_run_at=next_run_at)

    async def record_runs(
        self, now: datetime, next_run_at: datetime, task_id: str, count: int
    ) -> None:
        await self._run("schedule_state_record_runs", now=now, next_run_at=next_run_at,
                        task_id=task_id, count=count)


class ScheduleStore:
    """The lock connection and the statements on ``horsies_schedule_state``."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        """The lock connection, opened again after it was lost."""
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                await conn.close()
            conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S,
                row_factory=tuple_row,
            )
            self._conn = conn
        return conn

    async def _names(self, query: str, **params: Any) -> list[str]:
        conn = await self._connection()
        cur = await conn.execute(queries[query], params)
        return [str(row[0]) for row in await cur.fetchall()]

    async def missing(self, names: Sequence[str]) -> list[str]:
        """Which of ``names`` have no state row."""
        return await self._names("schedule_state_missing", names=list(names))

    async def unknown(self, names: Sequence[str]) -> list[str]:
        """State rows whose entry is not among ``names``."""
        return await self._names("schedule_state_unknown", names=list(names))

    async def due(self, names: Sequence[str], now: datetime) -> list[str]:
        """Entries among ``names`` whose next slot is at or before ``now``."""
        return await self._names("schedule_state_due", names=list(names), now=now)

    @asynccontextmanager
    async def locked(self, name: str) -> AsyncIterator[LockedEntry]:
        """A transaction holding the entry's advisory lock; commits unless it raises.

        Raise ``psycopg.Rollback()`` inside to roll back quietly.
        """
        conn = await self._connection()
        async with conn.transaction():
            await conn.execute(queries["schedule_lock"], {"key": schedule_lock_key(name)})
            yield LockedEntry(conn, name)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
