"""How attempts end: the retry decision and the columns of one cycle statement.

The retry decision (lifecycle-and-schema.md §3.2) is made from what the task
row held when it was handed out (its retry count, limit and options), which
no one else can change while the attempt is RUNNING under this worker: the
worker computes the delay, and the cycle statement adds the one condition that
needs the database's clock (a retry must fall strictly before good_until).
"""

from __future__ import annotations

import logging
import random
from datetime import datetime
from typing import Any

import orjson

log = logging.getLogger("horsies.worker")

WORKER_CRASHED = "WORKER_CRASHED"
# Between the results of one statement: JSON text never holds a raw U+001E.
RESULT_SEPARATOR = "\x1e"
# A retry further away than this cannot be stored (and would never be due).
MAX_RETRY_DELAY_S = 100 * 365 * 24 * 3600.0


def retry_delay_seconds(policy: dict[str, Any], retry_number: int) -> float:
    """Delay before retry `retry_number` (1-based) of a stored policy snapshot."""
    intervals = policy.get("intervals") or [60]
    if policy.get("backoff_strategy") == "exponential":
        delay = float(intervals[0]) * 2 ** min(retry_number - 1, 32)
    else:
        delay = float(intervals[min(retry_number - 1, len(intervals) - 1)])
    if policy.get("jitter", True):
        delay += random.uniform(-0.25 * delay, 0.25 * delay)
    return max(1.0, delay)


def retry_after(task_id: str, options_json: str | None, retry_count: int, max_retries: int,
                error_code: str | None) -> float | None:
    """Seconds until the retry of an attempt that ended with `error_code`, or None
    when the task is finalized instead (the deadline check is the statement's)."""
    if error_code is None or max_retries <= 0 or retry_count >= max_retries:
        return None
    try:
        options = orjson.loads(options_json) if options_json else {}
        policy = options.get("retry_policy") or {}
        if error_code not in (policy.get("auto_retry_for") or ()):
            return None
        delay = retry_delay_seconds(policy, retry_count + 1)
        if not 0 < delay <= MAX_RETRY_DELAY_S:
            raise ValueError(f"a delay of {delay} s is out of range")
        return delay
    except Exception as exc:  # noqa: BLE001 - a malformed stored policy must not stop the worker
        log.warning("Task %s has an unreadable retry policy in task_options (%s: %s); "
                    "no retry scheduled", task_id, type(exc).__name__, exc)
        return None


def storable(text: str | None) -> str | None:
    """Text PostgreSQL accepts: no NUL, no lone surrogates (a user's error
    message may hold either)."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def unstorable_result(task_name_or_id: str, exc: BaseException) -> str:
    """The error result stored for an attempt whose own result was refused."""
    from horsies.codec import serialize_error_payload
    from horsies.codes import OperationalErrorCode
    from horsies.task_result import TaskError, TaskResult

    message = storable(f"the result could not be stored: {type(exc).__name__}: {exc}")
    error = TaskError(error_code=OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
                      message=message, data={"task_id": task_name_or_id})
    return serialize_error_payload(TaskResult(err=error))


def crash_result_json(reason: str, worker_id: str, hostname: str | None, pid: int | None,
                      started_at: datetime | None, detected_at: datetime,
                      extra: dict[str, Any] | None = None) -> str:
    """The stored WORKER_CRASHED result (lifecycle-and-schema.md §3.4); `extra`
    adds the reaper's threshold fields to `data`."""
    from horsies.codec import serialize_error_payload
    from horsies.codes import OperationalErrorCode
    from horsies.task_result import TaskError, TaskResult

    data = {
        "worker_id": worker_id, "worker_hostname": hostname, "worker_pid": pid,
        "started_at": started_at.isoformat() if started_at is not None else None,
        "detected_at": detected_at.isoformat(), **(extra or {}),
    }
    error = TaskError(error_code=OperationalErrorCode.WORKER_CRASHED, message=reason, data=data)
    return serialize_error_payload(TaskResult(err=error))


class Statement:
    """The parameters of one `worker_cycle` statement, filled column by column."""

    __slots__ = (
        "back_ids",
        "back_pids",
        "bad_codes",
        "bad_ids",
        "bad_messages",
        "bad_pids",
        "bad_reasons",
        "bad_results",
        "bad_retry_s",
        "bad_started",
        "confirm_ids",
        "confirm_pids",
        "confirm_seqs",
        "gone_pids",
        "mark_limits",
        "mark_pids",
        "ok_ids",
        "ok_pids",
        "ok_results",
        "ok_started",
        "slot_pids",
        "slot_seqs",
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, [])

    def complete(self, task_id: str, pid: int, result_json: str, started: float) -> None:
        self.ok_ids.append(task_id)
        self.ok_pids.append(pid)
        self.ok_results.append(result_json)
        self.ok_started.append(started)

    def fail(self, task_id: str, pid: int, result_json: str, code: str | None,
             message: str | None, reason: str | None, retry_s: float | None,
             started: float | None) -> None:
        """An error ending: T12 (error value), T13 (crash, `reason` set) or T14
        when `retry_s` is given and falls before the deadline."""
        self.bad_ids.append(task_id)
        self.bad_pids.append(pid)
        self.bad_results.append(result_json)
        self.bad_codes.append(code)
        self.bad_messages.append(message)
        self.bad_reasons.append(reason)
        self.bad_retry_s.append(retry_s)
        self.bad_started.append(started)

    def give_back(self, task_id: str, pid: int) -> None:
        """T15: a task of a run that was never started."""
        self.back_ids.append(task_id)
        self.back_pids.append(pid)

    def endings(self) -> list[Statement]:
        """This statement's endings, one statement each (to find one that fails)."""
        alone: list[Statement] = []
        for i in range(len(self.ok_ids)):
            one = Statement()
            one.complete(self.ok_ids[i], self.ok_pids[i], self.ok_results[i], self.ok_started[i])
            alone.append(one)
        for i in range(len(self.bad_ids)):
            one = Statement()
            one.fail(self.bad_ids[i], self.bad_pids[i], self.bad_results[i], self.bad_codes[i],
                     self.bad_messages[i], self.bad_reasons[i], self.bad_retry_s[i],
                     self.bad_started[i])
            alone.append(one)
        for i in range(len(self.back_ids)):
            one = Statement()
            one.give_back(self.back_ids[i], self.back_pids[i])
            alone.append(one)
        return alone

    def without_endings(self) -> Statement:
        rest = Statement()
        for name in ("slot_pids", "slot_seqs", "confirm_ids", "confirm_pids", "confirm_seqs",
                     "mark_pids", "mark_limits", "gone_pids"):
            setattr(rest, name, getattr(self, name))
        return rest

    @property
    def writes(self) -> bool:
        return bool(self.ok_ids or self.bad_ids or self.back_ids or self.slot_pids
                    or self.confirm_ids or self.mark_pids or self.gone_pids)

    def params(self, worker_id: str, hostname: str, queues: list[str]) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in self.__slots__}
        # The hot columns go as delimited text (see worker_cycle).
        values.update(
            ok_ids=",".join(self.ok_ids), ok_pids=",".join(map(str, self.ok_pids)),
            ok_results=RESULT_SEPARATOR.join(self.ok_results),
            ok_started=",".join(map(repr, self.ok_started)),
            slot_pids=",".join(map(str, self.slot_pids)),
            slot_seqs=",".join(map(str, self.slot_seqs)), slots=len(self.slot_pids),
            running="RUNNING", claimed="CLAIMED",
            worker_id=worker_id, hostname=hostname, queues=queues)
        return values
