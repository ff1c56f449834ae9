"""One slot becomes one task row (scheduling.md §9), through the send path.

The row is built and written by the task's own ``TaskSender`` (the steps of
``send()``): arguments encoded as ``send()`` encodes them, the task's options,
the fingerprint, the idempotent insert. What differs: the id is the slot's
deterministic id, ``sent_at`` is the slot, and the queue may be the entry's
override. Writing the same slot twice finds the same id and the same
fingerprint and inserts nothing; a different fingerprint (arguments or queue
changed between attempts) is ``PAYLOAD_MISMATCH``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from horsies.result import Err
from horsies.scheduler.identity import slot_task_id
from horsies.scheduler.validation import resolve_queue
from horsies.tasks.send import Prepared, TaskSender
from horsies.tasks.send_types import TaskSendErrorCode

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.config.schedule import TaskSchedule

__all__ = ["Enqueued", "Failed", "SlotEnqueuer"]


@dataclass(frozen=True, slots=True)
class Enqueued:
    task_id: str


@dataclass(frozen=True, slots=True)
class Failed:
    """``permanent``: the slot is dropped; otherwise it is tried again next tick."""

    message: str
    permanent: bool


class SlotEnqueuer:
    """Writes the task of one entry's slots."""

    def __init__(self, app: Horsies, entry: TaskSchedule) -> None:
        self.entry = entry
        self.task = app.tasks[entry.task_name]
        self._sender = TaskSender(self.task)
        self._queue = resolve_queue(app, entry)
        self._priority = app.queue_priority(self._queue)
        policy = self.task.retry_policy
        self._max_retries = policy.max_retries if policy is not None else 0

    def prepare(self, slot: datetime) -> Prepared | Failed:
        encoded = self._sender.encode_arguments(self.entry.args, dict(self.entry.kwargs))
        if isinstance(encoded, str):
            return Failed(encoded, permanent=True)
        args_json, kwargs_json = encoded
        payload = self._sender.build_payload(
            self._queue, self._priority, args_json, kwargs_json, None, None, sent_at=slot
        )
        return Prepared(slot_task_id(self.entry.name, slot), payload, self._max_retries)

    async def enqueue(self, slot: datetime) -> Enqueued | Failed:
        prepared = self.prepare(slot)
        if isinstance(prepared, Failed):
            return prepared
        outcome = await self._sender.write_once_async(prepared)
        if isinstance(outcome, Err):
            error = outcome.err_value
            permanent = error.code is TaskSendErrorCode.PAYLOAD_MISMATCH or not error.retryable
            return Failed(f"{error.code.value}: {error.message}", permanent=permanent)
        return Enqueued(prepared.task_id)
