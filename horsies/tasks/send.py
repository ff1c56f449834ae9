"""The send pipeline: validate, encode, fingerprint, write; errors are values.

`TaskSender` holds the steps shared by send, schedule, their async forms,
the replays and (through `horsies.tasks.bulk`) send_many. Nothing here
raises for bad input or a broken database: every failure is an
`Err(TaskSendError)`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from horsies.codec import args_to_json, kwargs_to_json
from horsies.errors import HorsiesError
from horsies.result import Err, Ok
from horsies.tasks.handle import TaskHandle
from horsies.tasks.ids import new_task_id
from horsies.tasks.send_types import (
    Call,
    TaskSendError,
    TaskSendErrorCode,
    TaskSendPayload,
    enqueue_sha,
)

if TYPE_CHECKING:
    import psycopg

    from horsies.tasks.decorator import TaskFunction

NOT_GIVEN: Any = type("NotGiven", (), {"__repr__": lambda self: "<not given>"})()
_INJECTED = ("workflow_ctx", "workflow_meta")
_FUTURE_SENT_AT_SLACK = timedelta(seconds=5)
_RESEND_DELAYS_MS = (200, 400, 800)
_LATEST_TIME = datetime.max.replace(tzinfo=UTC)

Code = TaskSendErrorCode


@dataclass(frozen=True, slots=True)
class SendOptions:
    good_until: Any = NOT_GIVEN
    priority: Any = None
    connection: Any = None

    @property
    def deadline(self) -> datetime | None:
        return None if self.good_until is NOT_GIVEN else self.good_until


def invalid(message: str, exc: BaseException | None = None) -> Err[TaskSendError]:
    return Err(TaskSendError(Code.VALIDATION_FAILED, message, exception=exc))


@dataclass(frozen=True, slots=True)
class Prepared:
    """A send that passed validation: the payload and the row to write."""

    task_id: str
    payload: TaskSendPayload
    max_retries: int


def _utc_overflows(value: datetime) -> bool:
    try:
        value.astimezone(UTC)
    except OverflowError:
        return True
    return False


def _delay_problem(delay: Any) -> str | None:
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        return f"delay must be an int >= 0 seconds, got {delay!r}"
    # Stored timestamps must be readable back as Python datetimes (year 9999 at most).
    latest = (_LATEST_TIME - datetime.now(UTC)).total_seconds()
    if delay > latest:
        return f"delay must end before the year 10000 (at most {int(latest)} seconds), got {delay}"
    return None


def _check_options(options: SendOptions, delay: int | None, *, is_async: bool) -> str | None:
    deadline = options.deadline
    if deadline is not None and (
        not isinstance(deadline, datetime) or deadline.utcoffset() is None
    ):
        return "good_until must be a timezone-aware datetime"
    if deadline is not None and _utc_overflows(deadline):
        # The fingerprint converts it to UTC; the send must not raise there.
        return "good_until is out of range once converted to UTC"
    priority = options.priority
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 100
    ):
        return f"priority must be an int from 1 to 100, got {priority!r}"
    if delay is not None and (problem := _delay_problem(delay)) is not None:
        return problem
    if options.connection is not None:
        return connection_problem(options.connection, is_async=is_async)
    return None


def connection_problem(conn: Any, *, is_async: bool) -> str | None:
    """Why `conn` cannot carry a transactional send, or None."""
    import psycopg  # here, not at module level: workers that never send skip it
    from psycopg import pq

    wanted = psycopg.AsyncConnection if is_async else psycopg.Connection
    if not isinstance(conn, wanted):
        return f"connection must be a {wanted.__name__} for this method"
    if conn.closed:
        return "connection is closed"
    status = conn.info.transaction_status
    if status == pq.TransactionStatus.INERROR:
        return "connection's transaction is aborted"
    if status == pq.TransactionStatus.ACTIVE:
        return "connection is busy with another statement"
    if conn.autocommit and status == pq.TransactionStatus.IDLE:
        return "autocommit connection outside conn.transaction(): the send would not be atomic"
    return None


def task_options_json(task: TaskFunction[Any, Any], deadline: datetime | None) -> str:
    policy = task.retry_policy
    retry = None
    if policy is not None:
        retry = {
            "max_retries": policy.max_retries,
            "intervals": list(policy.intervals),
            "backoff_strategy": policy.backoff_strategy,
            "jitter": policy.jitter,
            "auto_retry_for": [str(getattr(c, "value", c)) for c in policy.auto_retry_for],
        }
    document = {
        "retry_policy": retry,
        "good_until": deadline.isoformat() if deadline is not None else None,
    }
    return orjson.dumps(document).decode()


def payload_row(task_id: str, payload: TaskSendPayload, max_retries: int) -> dict[str, Any]:
    return {
        "id": task_id,
        "task_name": payload.task_name,
        "queue_name": payload.queue_name,
        "priority": payload.priority,
        "args": payload.args_json,
        "kwargs": payload.kwargs_json,
        "sent_at": payload.sent_at,
        "delay_seconds": payload.enqueue_delay_seconds or 0,
        "good_until": payload.good_until,
        "task_options": payload.task_options,
        "max_retries": max_retries,
        "enqueue_sha": payload.enqueue_sha,
    }


def _max_retries_of(payload: TaskSendPayload) -> int:
    if payload.task_options is None:
        return 0
    policy = orjson.loads(payload.task_options).get("retry_policy")
    return 0 if policy is None else int(policy.get("max_retries", 3))


class TaskSender:
    """The send steps of one task function."""

    def __init__(self, task: TaskFunction[Any, Any]) -> None:
        self.task = task
        self.app = task.app
        # The options document depends only on the task and the deadline.
        self._options_without_deadline = task_options_json(task, None)

    # -- validation and encoding (steps 1-8) ------------------------------

    def suppressed(self) -> Err[TaskSendError] | None:
        if not self.app.are_sends_suppressed():
            return None
        return Err(
            TaskSendError(
                Code.SEND_SUPPRESSED,
                f"send of task '{self.task.task_name}' suppressed: sends are suppressed during "
                "import or check, or by HORSIES_SUPPRESS_SENDS",
            )
        )

    def resolve_queue(self, options: SendOptions) -> tuple[str, int] | Err[TaskSendError]:
        try:
            queue = self.app.validate_queue_name(self.task.task_queue_name)
        except HorsiesError as exc:
            details = "; ".join([exc.message, *exc.notes])
            return invalid(f"Queue validation failed for {self.task.task_name}: {details}", exc)
        priority = options.priority if options.priority is not None else (
            self.app.queue_priority(queue)
        )
        return queue, priority

    def encode_arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[str | None, str | None] | str:
        """Bind and encode; a string return is the reason it failed."""
        injected = [name for name in _INJECTED if name in kwargs]
        if injected:
            return f"{injected[0]} is filled by the workflow engine and cannot be sent"
        try:
            self.task.signature.bind(*args, **kwargs)
        except TypeError as exc:
            return f"arguments do not match {self.task.task_name}: {exc}"
        args_json = kwargs_json = None
        if args:
            encoded = args_to_json(args)
            if encoded.is_err():
                return str(encoded.err_value)
            args_json = encoded.ok_value
        if kwargs:
            encoded = kwargs_to_json(kwargs)
            if encoded.is_err():
                return str(encoded.err_value)
            kwargs_json = encoded.ok_value
        return args_json, kwargs_json

    def prepare(
        self,
        options: SendOptions,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        delay: Any,
        *,
        is_async: bool,
    ) -> Prepared | Err[TaskSendError]:
        """`delay` is NOT_GIVEN for a send; schedule() hands over whatever it was given."""
        if (blocked := self.suppressed()) is not None:
            return blocked
        if delay is NOT_GIVEN:
            delay = None
        elif delay is None:  # schedule(None, ...) must not turn into a plain send
            return invalid("delay must be an int >= 0 seconds, got None")
        if (problem := _check_options(options, delay, is_async=is_async)) is not None:
            return invalid(problem)
        queue = self.resolve_queue(options)
        if isinstance(queue, Err):
            return queue
        queue_name, priority = queue
        encoded = self.encode_arguments(args, kwargs)
        if isinstance(encoded, str):
            return invalid(encoded)
        args_json, kwargs_json = encoded
        deadline = options.deadline
        payload = self.build_payload(queue_name, priority, args_json, kwargs_json, deadline, delay)
        policy = self.task.retry_policy
        return Prepared(new_task_id(), payload, policy.max_retries if policy else 0)

    def build_payload(
        self,
        queue_name: str,
        priority: int,
        args_json: str | None,
        kwargs_json: str | None,
        deadline: datetime | None,
        delay: int | None,
        sent_at: datetime | None = None,
    ) -> TaskSendPayload:
        sent_at = sent_at or datetime.now(UTC)
        options_json = (self._options_without_deadline if deadline is None
                        else task_options_json(self.task, deadline))
        fields: dict[str, Any] = {
            "task_name": self.task.task_name,
            "queue_name": queue_name,
            "priority": priority,
            "args_json": args_json,
            "kwargs_json": kwargs_json,
            "sent_at": sent_at,
            "good_until": deadline,
            "enqueue_delay_seconds": delay,
            "task_options": options_json,
        }
        return TaskSendPayload(**fields, enqueue_sha=enqueue_sha(**fields))

    # -- writing (step 9) -------------------------------------------------

    def _failed(
        self, exc: BaseException, prepared: Prepared, *, transactional: bool
    ) -> Err[TaskSendError]:
        from horsies.db.broker import is_transient

        retryable = not transactional and is_transient(exc)
        return Err(
            TaskSendError(
                Code.ENQUEUE_FAILED,
                f"could not enqueue task '{self.task.task_name}': {type(exc).__name__}: {exc}",
                retryable=retryable,
                task_id=prepared.task_id,
                payload=None if transactional else prepared.payload,
                exception=exc,
            )
        )

    def _mismatch(self, prepared: Prepared) -> Err[TaskSendError]:
        return Err(
            TaskSendError(
                Code.PAYLOAD_MISMATCH,
                f"task {prepared.task_id} exists with a different payload",
                task_id=prepared.task_id,
                payload=prepared.payload,
            )
        )

    def _future_sent_at(self, prepared: Prepared) -> Err[TaskSendError] | None:
        payload = prepared.payload
        if payload.enqueue_delay_seconds is None and (
            payload.sent_at > datetime.now(UTC) + _FUTURE_SENT_AT_SLACK
        ):
            return Err(
                TaskSendError(
                    Code.ENQUEUE_FAILED,
                    "payload sent_at lies in the future; refusing to write it",
                    task_id=prepared.task_id,
                    payload=payload,
                )
            )
        return None

    def _handle(self, task_id: str) -> Ok[TaskHandle[Any]]:
        return Ok(TaskHandle(task_id, self.app, broker_mode=True))

    def write_once(self, prepared: Prepared) -> Ok[Any] | Err[TaskSendError]:
        broker = self.app.get_broker()
        row = payload_row(prepared.task_id, prepared.payload, prepared.max_retries)
        try:
            if broker.insert_task(row):
                return self._handle(prepared.task_id)
            stored = broker.task_sha(prepared.task_id)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a value
            return self._failed(exc, prepared, transactional=False)
        if stored is not None and stored != prepared.payload.enqueue_sha:
            return self._mismatch(prepared)
        return self._handle(prepared.task_id)

    async def write_once_async(self, prepared: Prepared) -> Ok[Any] | Err[TaskSendError]:
        broker = self.app.get_broker()
        row = payload_row(prepared.task_id, prepared.payload, prepared.max_retries)
        try:
            if await broker.insert_task_async(row):
                return self._handle(prepared.task_id)
            stored = await broker.task_sha_async(prepared.task_id)
        except Exception as exc:  # noqa: BLE001
            return self._failed(exc, prepared, transactional=False)
        if stored is not None and stored != prepared.payload.enqueue_sha:
            return self._mismatch(prepared)
        return self._handle(prepared.task_id)

    def write(self, prepared: Prepared, connection: Any = None) -> Any:
        if (refused := self._future_sent_at(prepared)) is not None:
            return refused
        if connection is not None:
            return self.write_transactional(prepared, connection)
        outcome = self.write_once(prepared)
        if self.app.config.resend_on_transient_err:
            for delay_ms in _RESEND_DELAYS_MS:
                if not (isinstance(outcome, Err) and outcome.err_value.retryable):
                    break
                time.sleep(delay_ms / 1000)
                outcome = self.write_once(prepared)
        return outcome

    async def write_async(self, prepared: Prepared, connection: Any = None) -> Any:
        import asyncio  # already loaded by the running loop; not at module level

        if (refused := self._future_sent_at(prepared)) is not None:
            return refused
        if connection is not None:
            return await self.write_transactional_async(prepared, connection)
        outcome = await self.write_once_async(prepared)
        if self.app.config.resend_on_transient_err:
            for delay_ms in _RESEND_DELAYS_MS:
                if not (isinstance(outcome, Err) and outcome.err_value.retryable):
                    break
                await asyncio.sleep(delay_ms / 1000)
                outcome = await self.write_once_async(prepared)
        return outcome

    def write_transactional(self, prepared: Prepared, conn: psycopg.Connection[Any]) -> Any:
        broker = self.app.get_broker()
        row = payload_row(prepared.task_id, prepared.payload, prepared.max_retries)
        try:
            broker.ensure_schema()
            broker.join_caller_transaction(conn)
            with conn.transaction():  # a savepoint inside the caller's transaction
                broker.insert_task_on(conn, row)
        except Exception as exc:  # noqa: BLE001
            return self._failed(exc, prepared, transactional=True)
        return self._handle(prepared.task_id)

    async def write_transactional_async(
        self, prepared: Prepared, conn: psycopg.AsyncConnection[Any]
    ) -> Any:
        broker = self.app.get_broker()
        row = payload_row(prepared.task_id, prepared.payload, prepared.max_retries)
        try:
            await broker.ensure_schema_async()
            await broker.join_caller_transaction_async(conn)
            async with conn.transaction():
                await broker.insert_task_on_async(conn, row)
        except Exception as exc:  # noqa: BLE001
            return self._failed(exc, prepared, transactional=True)
        return self._handle(prepared.task_id)

    # -- entry points -----------------------------------------------------

    def send(
        self, options: SendOptions, args: tuple[Any, ...], kwargs: dict[str, Any], *,
        delay: Any = NOT_GIVEN,
    ) -> Any:
        prepared = self.prepare(options, args, kwargs, delay, is_async=False)
        if isinstance(prepared, Err):
            return prepared
        return self.write(prepared, options.connection)

    async def send_async(
        self, options: SendOptions, args: tuple[Any, ...], kwargs: dict[str, Any], *,
        delay: Any = NOT_GIVEN,
    ) -> Any:
        prepared = self.prepare(options, args, kwargs, delay, is_async=True)
        if isinstance(prepared, Err):
            return prepared
        return await self.write_async(prepared, options.connection)

    def _replayable(self, error: Any, *, scheduled: bool) -> Prepared | Err[TaskSendError]:
        if (blocked := self.suppressed()) is not None:
            return blocked
        if not isinstance(error, TaskSendError) or error.code is not Code.ENQUEUE_FAILED:
            return invalid("only an ENQUEUE_FAILED send error can be replayed")
        if error.payload is None or error.task_id is None:
            return invalid("this error carries no payload to replay (bulk or transactional send)")
        if error.payload.task_name != self.task.task_name:
            return invalid(
                f"the error belongs to task '{error.payload.task_name}', "
                f"not '{self.task.task_name}'"
            )
        has_delay = error.payload.enqueue_delay_seconds is not None
        if has_delay != scheduled:
            which = "retry_schedule" if has_delay else "retry_send"
            return invalid(f"this error comes from {'schedule' if has_delay else 'send'}; "
                           f"use {which}")
        return Prepared(error.task_id, error.payload, _max_retries_of(error.payload))

    def replay(self, error: Any, *, scheduled: bool) -> Any:
        prepared = self._replayable(error, scheduled=scheduled)
        return prepared if isinstance(prepared, Err) else self.write(prepared)

    async def replay_async(self, error: Any, *, scheduled: bool) -> Any:
        prepared = self._replayable(error, scheduled=scheduled)
        return prepared if isinstance(prepared, Err) else await self.write_async(prepared)

    def send_many(self, options: SendOptions, calls: Iterable[tuple[Any, ...] | Call]) -> Any:
        from horsies.tasks.bulk import send_many

        return send_many(self, options, calls)

    async def send_many_async(
        self, options: SendOptions, calls: Iterable[tuple[Any, ...] | Call]
    ) -> Any:
        from horsies.tasks.bulk import send_many_async

        return await send_many_async(self, options, calls)
