"""PostgresBroker: the producer side's pools, listener and statements.

The broker is the only caller of `horsies.sql` outside the worker's main
process. It opens nothing until first used, creates the schema once per
instance, and raises psycopg errors to its callers, which turn them into
error values (sends, handles) according to their own contracts. Its public
inspection, recovery and lifetime methods (monitoring.md §2) return those
values themselves; their queries are in `horsies.db.inspect`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

from horsies.config import PostgresConfig
from horsies.db import dashboard, inspect
from horsies.db.inspect import failure
from horsies.db.listener import ResultListener
from horsies.db.pool import AsyncPools, LoopPool, Reachability, open_sync_pool, pooled
from horsies.db.schema import ensure_schema_initialized, ensure_schema_initialized_async
from horsies.errors import HorsiesError
from horsies.info import BrokerErrorCode, BrokerOperationError, BrokerResult, TaskInfo
from horsies.result import Err, Ok, Result
from horsies.sql import queries, queue_channel
from horsies.tasks.ids import is_uuid
from horsies.tasks.waiting import check_timeout, wait_for_result, wait_for_result_async

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.config import AppConfig
    from horsies.monitoring import (
        ClusterSummary,
        DeadWorker,
        QueueStats,
        SnapshotAgeBucket,
        TaskBreakdownRow,
        TaskDetail,
        TaskFacets,
        TaskFilter,
        TaskRow,
        TaskStatusCounts,
        UtilizationPoint,
        WorkerAlerts,
        WorkerState,
        WorkerStatePoint,
        WorkflowDetail,
        WorkflowRow,
        WorkflowSummary,
    )
    from horsies.task_result import TaskError, TaskResult

T = TypeVar("T")

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
    def __init__(self, config: PostgresConfig, app_config: AppConfig | None = None) -> None:
        self.config = config
        # The configuration of the app the broker belongs to, if any: its queues
        # are listed by get_queue_stats even before they hold a row.
        self.app_config = app_config
        # The app itself, set by the app that made the broker: workflow starts
        # resolve queues and priorities through it (workflows.md §4.2).
        self.app: Horsies | None = None
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

    # -- inspection (monitoring.md §2) -------------------------------------
    # Every failure is returned as a value; an id that is not a UUID cannot
    # exist and is answered without a query (§1.4).

    def get_result(self, task_id: str,
                   timeout_ms: float | None = None) -> TaskResult[Any, TaskError]:
        """Wait for a task's outcome by id: `TaskHandle.get()` without its cache."""
        check_timeout(timeout_ms)
        return wait_for_result(self, task_id, timeout_ms).result

    async def get_result_async(self, task_id: str,
                               timeout_ms: float | None = None) -> TaskResult[Any, TaskError]:
        check_timeout(timeout_ms)
        return (await wait_for_result_async(self, task_id, timeout_ms)).result

    def get_task_info(
        self, task_id: str, *, include_result: bool = False,
        include_failed_reason: bool = False, include_attempts: bool = False,
    ) -> BrokerResult[TaskInfo | None]:
        """One task's metadata now, without waiting; Ok(None) when it does not exist."""
        if not is_uuid(task_id):
            return Ok(None)
        try:
            self.ensure_schema()
            with self.connection() as conn:
                row, attempts = inspect.task_info_rows(conn, task_id, include_attempts)
        except Exception as exc:  # noqa: BLE001 - reported as a value
            return failure(BrokerErrorCode.TASK_INFO_QUERY_FAILED,
                           f"reading task {task_id} failed: {exc}", exc)
        return inspect.build_task_info(
            row, attempts, include_result=include_result,
            include_failed_reason=include_failed_reason, include_attempts=include_attempts)

    async def get_task_info_async(
        self, task_id: str, *, include_result: bool = False,
        include_failed_reason: bool = False, include_attempts: bool = False,
    ) -> BrokerResult[TaskInfo | None]:
        if not is_uuid(task_id):
            return Ok(None)
        try:
            await self.ensure_schema_async()
            pool = await self.apool()
            async with pool.connection() as conn:
                row, attempts = await inspect.task_info_rows_async(conn, task_id,
                                                                   include_attempts)
        except Exception as exc:  # noqa: BLE001 - reported as a value
            return failure(BrokerErrorCode.TASK_INFO_QUERY_FAILED,
                           f"reading task {task_id} failed: {exc}", exc)
        return inspect.build_task_info(
            row, attempts, include_result=include_result,
            include_failed_reason=include_failed_reason, include_attempts=include_attempts)

    async def get_stale_tasks(
        self, stale_threshold_minutes: int = 2
    ) -> BrokerResult[list[dict[str, Any]]]:
        """RUNNING tasks whose child sent no runner heartbeat for the threshold (reads only)."""
        return await self._read_dicts("get_stale_tasks", "task_stale_running_list",
                                      {"threshold_minutes": stale_threshold_minutes})

    async def get_worker_stats(self) -> BrokerResult[list[dict[str, Any]]]:
        """RUNNING tasks per executing process, busiest first."""
        return await self._read_dicts("get_worker_stats", "task_running_by_process_list", {})

    async def get_expired_tasks(self) -> BrokerResult[list[dict[str, Any]]]:
        """PENDING tasks past good_until that the reaper has not expired yet."""
        return await self._read_dicts("get_expired_tasks", "task_expired_pending_list", {})

    async def _read_dicts(self, what: str, query: str,
                          params: dict[str, Any]) -> BrokerResult[list[dict[str, Any]]]:
        return await self._read(what, lambda conn: inspect.read_dicts(conn, query, params))

    async def _read(self, what: str,
                    read: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
                    ) -> BrokerResult[T]:
        """One read-only inspection: no ensure_schema, since these methods must
        not write (§1.5); a database without the horsies tables is a permanent
        error whose message says so."""
        try:
            pool = await self.apool()
            async with pool.connection() as conn:
                return Ok(await read(conn))
        except psycopg.errors.UndefinedTable as exc:
            return failure(BrokerErrorCode.MONITORING_QUERY_FAILED,
                           f"schema not initialized: {what} needs the horsies tables ({exc})",
                           exc)
        except Exception as exc:  # noqa: BLE001 - reported as a value
            return failure(BrokerErrorCode.MONITORING_QUERY_FAILED, f"{what} failed: {exc}", exc)

    # -- dashboard read models (monitoring.md §2.9) --------------------------

    def _configured_queues(self) -> dict[str, tuple[int | None, int | None]]:
        """The app's queues as name -> (priority, max_concurrency)."""
        from horsies.config import QueueMode

        config = self.app_config
        if config is None:
            return {}
        if config.queue_mode is QueueMode.DEFAULT or not config.custom_queues:
            return {"default": (100, None)}
        return {q.name: (q.priority, q.max_concurrency) for q in config.custom_queues}

    async def get_task_status_counts(
        self, *, terminal_window_s: int | None = None
    ) -> BrokerResult[TaskStatusCounts]:
        """Tasks per status; terminal ones only inside the window when one is given."""
        return await self._read(
            "get_task_status_counts",
            lambda conn: dashboard.task_status_counts(conn, terminal_window_s))

    async def get_queue_stats(
        self, *, terminal_window_s: int | None = 3600
    ) -> BrokerResult[list[QueueStats]]:
        """Per queue counts and serving workers, by priority (unknown last), then name."""
        configured = self._configured_queues()
        return await self._read(
            "get_queue_stats",
            lambda conn: dashboard.queue_stats(conn, terminal_window_s, configured))

    async def get_worker_states(
        self, *, include_inactive: bool = False
    ) -> BrokerResult[list[WorkerState]]:
        """The latest snapshot of each active worker (or of every worker)."""
        return await self._read(
            "get_worker_states", lambda conn: dashboard.worker_states(conn, include_inactive))

    async def get_worker_history(
        self, *, window_s: int, worker_id: str | None = None
    ) -> BrokerResult[list[WorkerStatePoint]]:
        """Snapshots inside the window, by worker then time."""
        return await self._read(
            "get_worker_history",
            lambda conn: dashboard.worker_history(conn, window_s, worker_id))

    async def get_cluster_summary(self) -> BrokerResult[ClusterSummary]:
        """Capacity, load and averages over the active workers."""
        return await self._read("get_cluster_summary", dashboard.cluster_summary)

    async def get_utilization_trend(
        self, *, window_s: int = 3600, bucket_s: int = 60
    ) -> BrokerResult[list[UtilizationPoint]]:
        """Cluster utilization per epoch-aligned bucket (per-worker averages, summed)."""
        if bucket_s <= 0:
            raise ValueError(f"bucket_s must be positive (got {bucket_s})")
        return await self._read(
            "get_utilization_trend",
            lambda conn: dashboard.utilization_trend(conn, window_s, bucket_s))

    async def get_worker_alerts(self) -> BrokerResult[WorkerAlerts]:
        """Overloaded workers and active workers holding many more claims than they run."""
        return await self._read("get_worker_alerts", dashboard.worker_alerts)

    async def get_dead_workers(
        self, *, offline_after_s: int = 120
    ) -> BrokerResult[list[DeadWorker]]:
        """Workers silent for longer than the threshold that did not stop cleanly."""
        return await self._read(
            "get_dead_workers", lambda conn: dashboard.dead_workers(conn, offline_after_s))

    async def get_snapshot_age_distribution(self) -> BrokerResult[list[SnapshotAgeBucket]]:
        """Snapshot counts in five fixed age buckets."""
        return await self._read("get_snapshot_age_distribution",
                                     dashboard.snapshot_age_distribution)

    async def get_task_breakdown(
        self, *, statuses: frozenset[str] = frozenset(), retried_only: bool = False,
        ids_per_worker: int = 200,
    ) -> BrokerResult[list[TaskBreakdownRow]]:
        """Tasks per claiming worker, then unassigned ones, then the total."""
        return await self._read(
            "get_task_breakdown",
            lambda conn: dashboard.task_breakdown(conn, statuses, retried_only, ids_per_worker))

    async def get_task_facets(self, filter: TaskFilter) -> BrokerResult[TaskFacets]:
        """Top task names, queues and error codes under the filter's status/worker/retried fields."""
        return await self._read("get_task_facets",
                                     lambda conn: dashboard.task_facets(conn, filter))

    async def list_tasks(self, filter: TaskFilter, *,
                         limit: int = 500) -> BrokerResult[list[TaskRow]]:
        """Tasks matching the filter, most recently changed first."""
        return await self._read("list_tasks",
                                     lambda conn: dashboard.list_tasks(conn, filter, limit))

    async def get_task_detail(self, task_id: str) -> BrokerResult[TaskDetail | None]:
        """Every column of one task and its attempts; Ok(None) when it does not exist."""
        if not is_uuid(task_id):
            return Ok(None)
        return await self._read("get_task_detail",
                                     lambda conn: dashboard.task_detail(conn, task_id))

    async def get_workflow_summary(self) -> BrokerResult[WorkflowSummary]:
        """Workflows (all depths) per status."""
        return await self._read("get_workflow_summary", dashboard.workflow_summary)

    async def list_workflows(
        self, *, statuses: frozenset[str] = frozenset(), limit: int = 100
    ) -> BrokerResult[list[WorkflowRow]]:
        """Workflows with the given statuses (all when empty), newest first, with node counts."""
        return await self._read(
            "list_workflows", lambda conn: dashboard.list_workflows(conn, statuses, limit))

    async def get_workflow_detail(self, workflow_id: str) -> BrokerResult[WorkflowDetail | None]:
        """One workflow with its nodes; Ok(None) when it does not exist."""
        if not is_uuid(workflow_id):
            return Ok(None)
        return await self._read(
            "get_workflow_detail", lambda conn: dashboard.workflow_detail(conn, workflow_id))

    # The recovery methods are the reaper's own operations (workers.md §11), run
    # on pooled connections: same statements, guards and notifications. Their
    # module is loaded on first use, keeping worker code off a producer's imports.

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = await self.apool()
        async with pool.connection() as conn, conn.transaction():
            yield conn

    async def mark_stale_tasks_as_failed(
        self, stale_threshold_ms: int = 300_000
    ) -> BrokerResult[int]:
        """The crash path for every stale RUNNING task; Ok(number retried, failed or
        returned unstarted to PENDING), or Err(CLEANUP_FAILED)."""
        from horsies.worker import recovery

        # No retry callback: a retried task's queue is woken by the workers'
        # periodic claim poll once its next_retry_at passes.
        return await recovery.mark_stale_tasks_as_failed(self._transaction, stale_threshold_ms)

    async def requeue_stale_claimed(self, stale_threshold_ms: int = 120_000) -> BrokerResult[int]:
        """Stale CLAIMED tasks back to PENDING; Ok(number requeued), or Err(CLEANUP_FAILED)."""
        from horsies.worker import recovery

        return await recovery.requeue_stale_claimed(self._transaction, stale_threshold_ms)

    async def expire_pending_tasks(self) -> BrokerResult[int]:
        """PENDING tasks past good_until to EXPIRED; Ok(number expired), or Err(CLEANUP_FAILED)."""
        from horsies.worker import recovery

        return await recovery.expire_pending_tasks(self._transaction)

    # -- lifetime ---------------------------------------------------------

    def close(self) -> BrokerResult[None]:
        """Close the listener, the sync pool and the connections of event loops
        running in other threads; Ok(None), or Err(CLOSE_FAILED).

        A later operation opens a new pool.
        """
        try:
            self.listener.close()
            self._apools.close_other_loops()
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.close()
        except Exception as exc:  # noqa: BLE001 - reported as a value
            return failure(BrokerErrorCode.CLOSE_FAILED, f"closing the broker failed: {exc}", exc)
        return Ok(None)

    async def close_async(self) -> BrokerResult[None]:
        """Also closes the connections of the running event loop."""
        try:
            await self._apools.close_current()
        except Exception as exc:  # noqa: BLE001 - reported as a value
            return failure(BrokerErrorCode.CLOSE_FAILED, f"closing the broker failed: {exc}", exc)
        return self.close()
