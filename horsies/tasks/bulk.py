"""send_many: validate every call, then write the whole batch with one COPY."""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from horsies.codec import args_to_json
from horsies.result import Err, Ok
from horsies.tasks.handle import TaskHandle
from horsies.tasks.ids import id_bytes, new_task_ids
from horsies.tasks.send import SendOptions, _check_options, invalid, task_options_json
from horsies.tasks.send_types import (
    Call,
    TaskSendError,
    TaskSendErrorCode,
    enqueue_sha_many,
)

if TYPE_CHECKING:
    from horsies.tasks.send import TaskSender

_RESEND_DELAYS_MS = (200, 400, 800)
_CHUNK_ROWS = 5000  # rows per COPY chunk: big enough to amortise, small enough to overlap


class Batch:
    """A validated batch, column-wise: arguments in input order.

    All rows share the task, queue, priority, sent_at, deadline and options
    (tasks.md §9.3 step 6), so only the id, the arguments and the fingerprint
    differ from row to row. Ids and fingerprints are made chunk by chunk while
    the COPY streams, so the server indexes one chunk while the next is built;
    `complete()` makes the rest (a failed write still reports every id).
    """

    def __init__(
        self,
        arguments: list[tuple[str | None, str | None]],
        shared: tuple[str, str, int, datetime, datetime | None, str, int],
    ) -> None:
        self.arguments = arguments
        self.shared = shared
        self.ids: list[str] = []
        self.shas: list[str] = []

    @property
    def queue(self) -> str:
        return self.shared[1]

    def _extend(self, stop: int) -> None:
        start = len(self.ids)
        if stop <= start:
            return
        name, queue, priority, sent_at, good_until, options, _ = self.shared
        self.ids += new_task_ids(stop - start)
        self.shas += enqueue_sha_many(
            task_name=name, queue_name=queue, priority=priority,
            arguments=self.arguments[start:stop], sent_at=sent_at, good_until=good_until,
            enqueue_delay_seconds=None, task_options=options,
        )

    def complete(self) -> Batch:
        self._extend(len(self.arguments))
        return self

    def rows(self, chunk: int = _CHUNK_ROWS) -> Iterator[tuple[Any, ...]]:
        """The rows of task_copy_many in input order; ids and fingerprints are
        made one chunk ahead of the rows that use them."""
        name, queue, priority, sent_at, good_until, options, max_retries = self.shared
        arguments, total = self.arguments, len(self.arguments)
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            self._extend(stop)
            for task_id, (args, kwargs), sha in zip(
                self.ids[start:stop], arguments[start:stop], self.shas[start:stop], strict=True
            ):
                yield (id_bytes(task_id), name, queue, priority, args, kwargs, "PENDING",
                       sent_at, good_until, options, max_retries, sha)


def _split(item: Any) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    if isinstance(item, Call):
        return item.args, dict(item.kwargs)
    if isinstance(item, tuple):
        return item, {}
    return None


def _positional_arity(signature: inspect.Signature) -> tuple[int, float] | None:
    """(min, max) positional counts that bind without keywords, or None when
    binding must be left to `Signature.bind` (a required keyword-only parameter)."""
    low, high = 0, 0.0
    for param in signature.parameters.values():
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            high += 1
            if param.default is param.empty:
                low = int(high)
        elif param.kind is param.VAR_POSITIONAL:
            high = math.inf
        elif param.kind is param.KEYWORD_ONLY and param.default is param.empty:
            return None
    return low, high


def _encode_items(
    sender: TaskSender, items: list[Any]
) -> list[tuple[str | None, str | None]] | Err[TaskSendError]:
    """Step 5: bind and encode every item in input order; the first failure wins."""
    arity = _positional_arity(sender.task.signature)
    encoded: list[tuple[str | None, str | None]] = []
    append = encoded.append
    for index, item in enumerate(items):
        # Fast path: a tuple whose length fits the signature binds for sure.
        if (type(item) is tuple and arity is not None and item
                and arity[0] <= len(item) <= arity[1]):
            result = args_to_json(item)
            if result.is_ok():
                append((result.ok_value, None))
                continue
            reason = str(result.err_value)
        elif (parts := _split(item)) is None:
            reason = f"expected a tuple or Call, got {type(item).__name__}"
        else:
            outcome = sender.encode_arguments(*parts)
            if not isinstance(outcome, str):
                append(outcome)
                continue
            reason = outcome
        return Err(TaskSendError(TaskSendErrorCode.VALIDATION_FAILED, f"item {index}: {reason}",
                                 index=index))
    return encoded


def prepare_batch(
    sender: TaskSender, options: SendOptions, calls: Any, *, is_async: bool
) -> Batch | list[Any] | Err[TaskSendError]:
    """Steps 1-6: a Batch, [] for an empty batch, or the first error."""
    if (blocked := sender.suppressed()) is not None:
        return blocked
    if (problem := _check_options(options, None, is_async=is_async)) is not None:
        return invalid(problem)
    queue = sender.resolve_queue(options)
    if isinstance(queue, Err):
        return queue
    queue_name, priority = queue
    if isinstance(calls, str | bytes | bytearray | Mapping) or not isinstance(calls, Iterable):
        return invalid(f"send_many needs an iterable of tuples or Call, got {type(calls).__name__}")
    items = list(calls)
    if not items:
        return []
    encoded = _encode_items(sender, items)
    if isinstance(encoded, Err):
        return encoded
    deadline = options.deadline
    sent_at = datetime.now(UTC)
    task_options = (sender._options_without_deadline if deadline is None
                    else task_options_json(sender.task, deadline))
    policy = sender.task.retry_policy
    shared = (sender.task.task_name, queue_name, priority, sent_at, deadline, task_options,
              policy.max_retries if policy else 0)
    return Batch(encoded, shared)


def _failed(batch: Batch, exc: BaseException, *, transactional: bool) -> Err[TaskSendError]:
    from horsies.db.broker import is_transient

    batch.complete()  # a COPY that failed midway still reports every id of the batch
    return Err(TaskSendError(
        TaskSendErrorCode.ENQUEUE_FAILED,
        f"could not enqueue the batch of {len(batch.ids)}: {type(exc).__name__}: {exc}",
        retryable=not transactional and is_transient(exc),
        exception=exc,
        task_ids=tuple(batch.ids),
    ))


def _reconcile(sender: TaskSender, batch: Batch, stored: dict[str, str]) -> Any:
    """After a resend hit existing ids: Ok when the first try committed this very batch."""
    batch.complete()
    expected = dict(zip(batch.ids, batch.shas, strict=True))
    if stored == expected:
        return _handles(sender, batch)
    return Err(TaskSendError(TaskSendErrorCode.PAYLOAD_MISMATCH,
                             "some ids of the batch exist with a different payload",
                             task_ids=tuple(batch.ids)))


def _handles(sender: TaskSender, batch: Batch) -> Ok[list[TaskHandle[Any]]]:
    app = sender.app
    return Ok([TaskHandle(i, app, broker_mode=True) for i in batch.complete().ids])


def send_many(sender: TaskSender, options: SendOptions, calls: Any) -> Any:
    batch = prepare_batch(sender, options, calls, is_async=False)
    if not isinstance(batch, Batch):
        return Ok([]) if batch == [] else batch
    import psycopg  # loaded with the broker anyway; kept off `import horsies`

    broker = sender.app.get_broker()
    if options.connection is not None:
        try:
            broker.ensure_schema()
            broker.join_caller_transaction(options.connection)
            with options.connection.transaction():
                broker.copy_tasks_on(options.connection, batch.rows(), batch.queue)
        except Exception as exc:  # noqa: BLE001
            return _failed(batch, exc, transactional=True)
        return _handles(sender, batch)
    delays = _RESEND_DELAYS_MS if sender.app.config.resend_on_transient_err else ()
    for attempt in range(len(delays) + 1):
        try:
            broker.copy_tasks(batch.rows(), batch.queue)
            return _handles(sender, batch)
        except psycopg.errors.UniqueViolation as exc:
            if attempt == 0:
                return _failed(batch, exc, transactional=False)
            try:
                return _reconcile(sender, batch, broker.task_shas(batch.ids))
            except Exception as read_exc:  # noqa: BLE001
                return _failed(batch, read_exc, transactional=False)
        except Exception as exc:  # noqa: BLE001
            outcome = _failed(batch, exc, transactional=False)
            if not outcome.err_value.retryable or attempt == len(delays):
                return outcome
            time.sleep(delays[attempt] / 1000)
    raise AssertionError("unreachable")


async def send_many_async(sender: TaskSender, options: SendOptions, calls: Any) -> Any:
    batch = prepare_batch(sender, options, calls, is_async=True)
    if not isinstance(batch, Batch):
        return Ok([]) if batch == [] else batch
    import asyncio

    import psycopg  # loaded with the broker anyway; kept off `import horsies`

    broker = sender.app.get_broker()
    if options.connection is not None:
        try:
            await broker.ensure_schema_async()
            await broker.join_caller_transaction_async(options.connection)
            async with options.connection.transaction():
                await broker.copy_tasks_on_async(options.connection, batch.rows(), batch.queue)
        except Exception as exc:  # noqa: BLE001
            return _failed(batch, exc, transactional=True)
        return _handles(sender, batch)
    delays = _RESEND_DELAYS_MS if sender.app.config.resend_on_transient_err else ()
    for attempt in range(len(delays) + 1):
        try:
            await broker.copy_tasks_async(batch.rows(), batch.queue)
            return _handles(sender, batch)
        except psycopg.errors.UniqueViolation as exc:
            if attempt == 0:
                return _failed(batch, exc, transactional=False)
            try:
                return _reconcile(sender, batch, await broker.task_shas_async(batch.ids))
            except Exception as read_exc:  # noqa: BLE001
                return _failed(batch, read_exc, transactional=False)
        except Exception as exc:  # noqa: BLE001
            outcome = _failed(batch, exc, transactional=False)
            if not outcome.err_value.retryable or attempt == len(delays):
                return outcome
            await asyncio.sleep(delays[attempt] / 1000)
    raise AssertionError("unreachable")
