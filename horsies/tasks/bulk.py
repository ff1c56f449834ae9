"""send_many: validate every call, then write the whole batch with one COPY."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import psycopg

from horsies.db.broker import is_transient
from horsies.result import Err, Ok
from horsies.tasks.handle import TaskHandle
from horsies.tasks.ids import new_task_ids
from horsies.tasks.send import SendOptions, _check_options, invalid
from horsies.tasks.send_types import Call, TaskSendError, TaskSendErrorCode, TaskSendPayload

if TYPE_CHECKING:
    from horsies.tasks.send import TaskSender

_RESEND_DELAYS_MS = (200, 400, 800)


class Batch:
    """A validated batch: one payload per call, ids in input order."""

    def __init__(self, ids: list[str], payloads: list[TaskSendPayload], max_retries: int) -> None:
        self.ids = ids
        self.payloads = payloads
        self.max_retries = max_retries

    def rows(self) -> Iterable[tuple[Any, ...]]:
        for task_id, p in zip(self.ids, self.payloads, strict=True):
            yield (
                task_id, p.task_name, p.queue_name, p.priority, p.args_json, p.kwargs_json,
                "PENDING", p.sent_at, p.good_until, p.task_options, self.max_retries,
                p.enqueue_sha,
            )


def _split(item: Any) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    if isinstance(item, Call):
        return item.args, dict(item.kwargs)
    if isinstance(item, tuple):
        return item, {}
    return None


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
    encoded: list[tuple[str | None, str | None]] = []
    for index, item in enumerate(items):
        parts = _split(item)
        if parts is None:
            reason = f"expected a tuple or Call, got {type(item).__name__}"
        else:
            result = sender.encode_arguments(*parts)
            if not isinstance(result, str):
                encoded.append(result)
                continue
            reason = result
        return Err(TaskSendError(TaskSendErrorCode.VALIDATION_FAILED, f"item {index}: {reason}",
                                 index=index))
    first = sender.build_payload(queue_name, priority, *encoded[0], options.deadline, None)
    payloads = [first] + [
        sender.build_payload(queue_name, priority, a, k, options.deadline, None,
                             sent_at=first.sent_at)
        for a, k in encoded[1:]
    ]
    policy = sender.task.retry_policy
    return Batch(new_task_ids(len(items)), payloads, policy.max_retries if policy else 0)


def _failed(batch: Batch, exc: BaseException, *, transactional: bool) -> Err[TaskSendError]:
    return Err(TaskSendError(
        TaskSendErrorCode.ENQUEUE_FAILED,
        f"could not enqueue the batch of {len(batch.ids)}: {type(exc).__name__}: {exc}",
        retryable=not transactional and is_transient(exc),
        exception=exc,
        task_ids=tuple(batch.ids),
    ))


def _reconcile(sender: TaskSender, batch: Batch, stored: dict[str, str]) -> Any:
    """After a resend hit existing ids: Ok when the first try committed this very batch."""
    expected = {i: p.enqueue_sha for i, p in zip(batch.ids, batch.payloads, strict=True)}
    if stored == expected:
        return _handles(sender, batch)
    return Err(TaskSendError(TaskSendErrorCode.PAYLOAD_MISMATCH,
                             "some ids of the batch exist with a different payload",
                             task_ids=tuple(batch.ids)))


def _handles(sender: TaskSender, batch: Batch) -> Ok[list[TaskHandle[Any]]]:
    return Ok([TaskHandle(i, sender.app, broker_mode=True) for i in batch.ids])


def send_many(sender: TaskSender, options: SendOptions, calls: Any) -> Any:
    batch = prepare_batch(sender, options, calls, is_async=False)
    if not isinstance(batch, Batch):
        return Ok([]) if batch == [] else batch
    broker = sender.app.get_broker()
    if options.connection is not None:
        try:
            broker.ensure_schema()
            with options.connection.transaction():
                broker.copy_tasks_on(options.connection, batch.rows())
        except Exception as exc:  # noqa: BLE001
            return _failed(batch, exc, transactional=True)
        return _handles(sender, batch)
    delays = _RESEND_DELAYS_MS if sender.app.config.resend_on_transient_err else ()
    for attempt in range(len(delays) + 1):
        try:
            broker.copy_tasks(batch.rows())
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
    broker = sender.app.get_broker()
    if options.connection is not None:
        try:
            await broker.ensure_schema_async()
            async with options.connection.transaction():
                await broker.copy_tasks_on_async(options.connection, batch.rows())
        except Exception as exc:  # noqa: BLE001
            return _failed(batch, exc, transactional=True)
        return _handles(sender, batch)
    delays = _RESEND_DELAYS_MS if sender.app.config.resend_on_transient_err else ()
    for attempt in range(len(delays) + 1):
        try:
            await broker.copy_tasks_async(batch.rows())
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
