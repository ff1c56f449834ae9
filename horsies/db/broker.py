"""PostgresBroker: the producer side's pools, listener and statements.

The broker is the only caller of `horsies.sql` outside the worker's main
process. It opens nothing until first used, creates the schema once per
instance, and raises psycopg errors to its callers, which turn them into
error values (sends, handles) according to their own contracts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

from horsies.config import PostgresConfig
from horsies.db.listener import ResultListener
from horsies.db.pool import AsyncPools, LoopPool, Reachability, open_sync_pool, pooled
from horsies.db.schema import ensure_schema_initialized, ensure_schema_initialized_async
from horsies.errors import HorsiesError
from horsies.info import BrokerErrorCode, BrokerOperationError
from horsies.result import Err, Ok, Result
from horsies.sql import queries, queue_channel

log = logging.getLogger("horsies.broker")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    ConnectionError,
    TimeoutError,
)


# Column types of task_copy_many, for the binary COPY. The id goes as its 16
# bytes: a binary COPY field carries no type, and bytea's raw bytes are exactly
# a uuid's binary form, without a uuid.UUID made per row.
COPY_TYPES = (
    "bytea", "text", "text", "int4", "text", "text", "text", "timestamptz", "timestamptz",
    "text", "int4", "text",
)


def _batch_notice(queue: str, count: int) -> dict[str, str]:
    """The one notification of a bulk insert: every row is claimable at once."""
    return {"channel": queue_channel(queue), "payload": f"batch:{count}"}


def is_transient(exc: BaseException) -> bool:
    """Connection-class failures: the same operation may succeed if tried again."""
    return isinstance(exc, TRANSIENT_ERRORS)


class PostgresBroker:
    def __init__(self, config: PostgresConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._url: str | None = None
        self._pool: ConnectionPool | None = None
        self.health = Reachability(self.url)
        self._apools = AsyncPools(self.health)
        self._schema_ready = False
        self.listener = ResultListener(self.url)

    # -- plumbing ---------------------------------------------------------

    def url(self) -> str:
        """The URL connections use (starts the embedded server on first call)."""
        if self._url is None:
            with self._lock:
                if self._url is None:
                    self._url = self.config.resolve_url()
        return self._url

    def pool(self) -> ConnectionPool:
        if self._pool is None:
            url = self.url()
            with self._lock:
                if self._pool is None:
                    self._pool = open_sync_pool(url, self.config, self.health)
        return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; fails fast (transient) while the server is unreachable."""
        with pooled(self.pool(), self.health, float(self.config.pool_timeout)) as conn:
            yield conn

    async def apool(self) -> LoopPool:
        return await self._apools.get(self.url(), self.config)

    def _sql(self, name: str) -> Any:
        return queries[name]

    # -- schema -----------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the schema once per broker; raises on failure."""
        if self._schema_ready:
            return
        with self.connection() as conn:
            conn.autocommit = False
            try:
                ensure_schema_initialized(conn)
            finally:
                conn.autocommit = True
        self._schema_ready = True

    async def ensure_schema_async(self) -> None:
        if self._schema_ready:
            return
        pool = await self.apool()
        async with pool.connection() as conn:
            await conn.set_autocommit(False)
            try:
                await ensure_schema_initialized_async(conn)
            finally:
                await conn.set_autocommit(True)
        self._schema_ready = True

    async def ensure_schema_initialized(self) -> Result[None, BrokerOperationError]:
        """Public form: Ok(None), or Err(SCHEMA_INIT_FAILED)."""
        try:
            await self.ensure_schema_async()
        except Exception as exc:  # noqa: BLE001 - reported as a value
            return Err(
                BrokerOperationError(
                    code=BrokerErrorCode.SCHEMA_INIT_FAILED,
                    message=exc.message if isinstance(exc, HorsiesError) else str(exc),
                    retryable=is_transient(exc),
                    exception=exc,
                )
            )
        return Ok(None)

    # -- tasks ------------------------------------------------------------

    def insert_task(self, row: dict[str, Any]) -> bool:
        """T1 through the pool; True when inserted, False when the id existed."""
        self.ensure_schema()
        with self.connection() as conn:
            return conn.execute(self._sql("task_insert"), row).fetchone() is not None

    async def insert_task_async(self, row: dict[str, Any]) -> bool:
        await self.ensure_schema_async()
        pool = await self.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(self._sql("task_insert"), row)
            return await cur.fetchone() is not None

    # On an idle non-autocommit connection psycopg's transaction() would open and
    # COMMIT a transaction of its own; a statement first starts the implicit one,
    # so the library's block becomes a savepoint and the commit stays the caller's.

    def join_caller_transaction(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            conn.execute(self._sql("caller_transaction_begin"))

    async def join_caller_transaction_async(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if not conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            await conn.execute(self._sql("caller_transaction_begin"))

    def insert_task_on(self, conn: psycopg.Connection[Any], row: dict[str, Any]) -> bool:
        """T1 inside the caller's transaction (transactional enqueue)."""
        return conn.execute(self._sql("task_insert"), row).fetchone() is not None

    async def insert_task_on_async(
        self, conn: psycopg.AsyncConnection[Any], row: dict[str, Any]
    ) -> bool:
        cur = await conn.execute(self._sql("task_insert"), row)
        return await cur.fetchone() is not None

    def copy_tasks(self, rows: Iterable[tuple[Any, ...]], queue: str) -> None:
        """T1 in bulk: one binary COPY in one transaction (all rows or none), and
        one notification for the batch on its queue's channel.

        `rows` are sent as they are produced, so the server works on one part
        of the batch while the next is being built.
        """
        self.ensure_schema()
        with self.connection() as conn, conn.transaction():
            self.copy_tasks_on(conn, rows, queue)

    async def copy_tasks_async(self, rows: Iterable[tuple[Any, ...]], queue: str) -> None:
        await self.ensure_schema_async()
        pool = await self.apool()
        async with pool.connection() as conn, conn.transaction():
            await self.copy_tasks_on_async(conn, rows, queue)

    def _copy_sql(self) -> str:
        # Binary: the server skips parsing uuid and timestamp text (measured faster).
        return self._sql("task_copy_many").rstrip().rstrip(";") + " (FORMAT BINARY)"

    def copy_tasks_on(self, conn: psycopg.Connection[Any], rows: Iterable[tuple[Any, ...]],
                      queue: str) -> None:
        written = 0
        with conn.cursor() as cur, cur.copy(self._copy_sql()) as copy:
            copy.set_types(COPY_TYPES)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
                written += 1
        conn.execute(self._sql("queue_notify"), _batch_notice(queue, written))

    async def copy_tasks_on_async(
        self, conn: psycopg.AsyncConnection[Any], rows: Iterable[tuple[Any, ...]], queue: str
    ) -> None:
        written = 0
        async with conn.cursor() as cur, cur.copy(self._copy_sql()) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                await copy.write_row(row)
                written += 1
        await conn.execute(self._sql("queue_notify"), _batch_notice(queue, written))

    def task_shas(self, ids: list[str]) -> dict[str, str]:
        with self.connection() as conn:
            rows = conn.execute(self._sql("task_sha_get_many"), {"ids": ids}).fetchall()
        return {r[0]: r[1] for r in rows}

    async def task_shas_async(self, ids: list[str]) -> dict[str, str]:
        pool = await self.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(self._sql("task_sha_get_many"), {"ids": ids})
            rows = await cur.fetchall()
        return {r[0]: r[1] for r in rows}

    def task_sha(self, task_id: str) -> str | None:
        with self.connection() as conn:
            row = conn.execute(self._sql("task_sha_get"), {"id": task_id}).fetchone()
        return None if row is None else str(row[0])

    async def task_sha_async(self, task_id: str) -> str | None:
        pool = await self.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(self._sql("task_sha_get"), {"id": task_id})
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    def task_result_row(self, task_id: str) -> tuple[str, str | None] | None:
        """(status, stored result) of one task, or None when it does not exist."""
        self.ensure_schema()
        with self.connection() as conn:
            row = conn.execute(self._sql("task_result_get"), {"id": task_id}).fetchone()
        return None if row is None else (row[0], row[1])

    async def task_result_row_async(self, task_id: str) -> tuple[str, str | None] | None:
        await self.ensure_schema_async()
        pool = await self.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(self._sql("task_result_get"), {"id": task_id})
            row = await cur.fetchone()
        return None if row is None else (row[0], row[1])

    def task_info_rows(
        self, task_id: str, *, attempts: bool
    ) -> tuple[tuple[Any, ...] | None, list[tuple[Any, ...]]]:
        self.ensure_schema()
        with self.connection() as conn:
            row = conn.execute(self._sql("task_info_get"), {"id": task_id}).fetchone()
            found = []
            if row is not None and attempts:
                found = conn.execute(self._sql("task_attempts_get"), {"id": task_id}).fetchall()
        return row, found

    async def task_info_rows_async(
        self, task_id: str, *, attempts: bool
    ) -> tuple[tuple[Any, ...] | None, list[tuple[Any, ...]]]:
        await self.ensure_schema_async()
        pool = await self.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(self._sql("task_info_get"), {"id": task_id})
            row = await cur.fetchone()
            found: list[tuple[Any, ...]] = []
            if row is not None and attempts:
                cur = await conn.execute(self._sql("task_attempts_get"), {"id": task_id})
                found = await cur.fetchall()
        return row, found

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        self.listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    async def close_async(self) -> None:
        await self._apools.close_current()
        self.close()
