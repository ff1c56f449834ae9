"""The values a send returns: TaskSendError, its codes, the replayable payload, Call."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar, Union

import orjson

from horsies.result import Err, Ok

T = TypeVar("T")


class TaskSendErrorCode(str, enum.Enum):
    SEND_SUPPRESSED = "SEND_SUPPRESSED"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    ENQUEUE_FAILED = "ENQUEUE_FAILED"
    PAYLOAD_MISMATCH = "PAYLOAD_MISMATCH"


@dataclass(frozen=True, slots=True)
class TaskSendPayload:
    """Everything one send writes, kept so that a failed send can be replayed as is."""

    task_name: str
    queue_name: str
    priority: int
    args_json: str | None
    kwargs_json: str | None
    sent_at: datetime
    good_until: datetime | None
    enqueue_delay_seconds: int | None
    task_options: str | None
    enqueue_sha: str


@dataclass(frozen=True, slots=True, repr=False)
class TaskSendError:
    code: TaskSendErrorCode
    message: str
    retryable: bool = False
    task_id: str | None = None
    payload: TaskSendPayload | None = None
    exception: BaseException | None = None
    index: int | None = None
    task_ids: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        # Arguments never appear, so errors can be logged safely.
        return (
            f"TaskSendError(code={self.code.value}, retryable={self.retryable}, "
            f"task_id={self.task_id!r})"
        )

    __str__ = __repr__


TaskSendResult = Union[Ok[T], Err[TaskSendError]]  # noqa: UP007 (subscriptable alias)


def _utc_text(value: datetime) -> str:
    # isoformat, not strftime: "%Y" drops the zero padding of years before 1000.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def enqueue_sha(
    *,
    task_name: str,
    queue_name: str,
    priority: int,
    args_json: str | None,
    kwargs_json: str | None,
    sent_at: datetime,
    good_until: datetime | None,
    enqueue_delay_seconds: int | None,
    task_options: str | None,
) -> str:
    """SHA-256 of the canonical JSON array of a send (tasks.md §7.4)."""
    from hashlib import sha256  # loaded on the first send, not by every child

    return sha256(canonical_send_json([
        task_name,
        queue_name,
        priority,
        args_json,
        kwargs_json,
        _utc_text(sent_at),
        _utc_text(good_until) if good_until is not None else None,
        enqueue_delay_seconds,
        task_options,
    ])).hexdigest()


def enqueue_sha_many(
    *,
    task_name: str,
    queue_name: str,
    priority: int,
    arguments: Iterable[tuple[str | None, str | None]],
    sent_at: datetime,
    good_until: datetime | None,
    enqueue_delay_seconds: int | None,
    task_options: str | None,
) -> list[str]:
    """`enqueue_sha` of many sends that differ only in their arguments.

    The canonical array is a concatenation of its elements' texts, so the
    fixed parts are written once and only the two argument strings per row.
    """
    head = canonical_send_json([task_name, queue_name, priority])[:-1] + b","
    tail = b"," + canonical_send_json([
        _utc_text(sent_at),
        _utc_text(good_until) if good_until is not None else None,
        enqueue_delay_seconds,
        task_options,
    ])[1:]
    from hashlib import sha256

    dumps, null = orjson.dumps, b"null"
    out: list[str] = []
    append = out.append
    for args_json, kwargs_json in arguments:
        a = null if args_json is None else dumps(args_json)
        k = null if kwargs_json is None else dumps(kwargs_json)
        if not (_same_as_stdlib(a) and _same_as_stdlib(k)):
            a = _json_text(args_json)
            k = _json_text(kwargs_json)
        append(sha256(b"".join((head, a, b",", k, tail))).hexdigest())
    return out


def _same_as_stdlib(encoded: bytes) -> bool:
    """Whether orjson's bytes equal json.dumps(..., ensure_ascii=True)'s."""
    return encoded.isascii() and b"\x7f" not in encoded


def _json_text(value: str | None) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode("ascii")


def canonical_send_json(values: list[Any]) -> bytes:
    """Compact JSON with every non-ASCII character escaped as \\uXXXX.

    orjson writes the same bytes as the standard library for ASCII text and is
    several times faster; text with non-ASCII characters takes the slow path,
    and so does DEL (0x7f), which orjson writes raw and the standard library
    escapes as \\u007f.
    """
    fast = orjson.dumps(values)
    if _same_as_stdlib(fast):
        return fast
    return json.dumps(values, separators=(",", ":"), ensure_ascii=True).encode("ascii")


class Call:
    """One invocation for send_many: positional and keyword arguments."""

    __slots__ = ("_args", "_kwargs")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = MappingProxyType(dict(kwargs))

    @property
    def args(self) -> tuple[Any, ...]:
        return self._args

    @property
    def kwargs(self) -> Mapping[str, Any]:
        return self._kwargs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Call):
            return NotImplemented
        return self._args == other._args and dict(self._kwargs) == dict(other._kwargs)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self._args]
        parts += [f"{k}={v!r}" for k, v in self._kwargs.items()]
        return f"Call({', '.join(parts)})"
