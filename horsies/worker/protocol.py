"""Frames between the worker's main process and its children.

Each frame is a 4-byte big-endian length and a msgpack body. Runs go down in
one frame each, results come up in batches (runs.md §2): a frame per run, not
per task, both ways. The encoding is internal to one worker.
"""

from __future__ import annotations

import struct

import msgspec

HEADER = struct.Struct("!I")

# One task of a run: (run position, task id, task name, args JSON, kwargs JSON).
RunTask = tuple[int, str, str, "str | None", "str | None"]
# One finished task: (run position, ok, result JSON, error code, error message,
# epoch seconds when it started, seconds it ran).
Finished = tuple[int, bool, str, "str | None", "str | None", float, float]


class Ready(msgspec.Struct, tag="ready", array_like=True):
    """The child imported the app and ran its start hooks."""

    pid: int


class Run(msgspec.Struct, tag="run", array_like=True):
    """Tasks to run in order, and the highest run position it may start."""

    tasks: list[tuple[int, str, str, str | None, str | None]]
    limit: int


class Limit(msgspec.Struct, tag="limit", array_like=True):
    """The child may now start tasks up to this run position."""

    limit: int


class Stop(msgspec.Struct, tag="stop", array_like=True):
    """Start nothing more; report what was started, then exit."""


class Results(msgspec.Struct, tag="results", array_like=True):
    """Finished tasks in run order. `waiting`: the child stopped at its limit."""

    items: list[tuple[int, bool, str, str | None, str | None, float, float]]
    waiting: bool


class Beat(msgspec.Struct, tag="beat", array_like=True):
    """Runner heartbeat: the child is alive and has work."""


class Stopped(msgspec.Struct, tag="stopped", array_like=True):
    """Answer to Stop: every task up to `started` was started; no later one was."""

    started: int


Message = Ready | Run | Limit | Stop | Results | Beat | Stopped

_encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder(Message).decode


def frame(message: Message) -> bytes:
    body = _encode(message)
    return HEADER.pack(len(body)) + body


class FrameBuffer:
    """Splits a byte stream into frame bodies (the main process's side)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        bodies: list[bytes] = []
        start = 0
        end = len(buffer)
        while end - start >= 4:
            (size,) = HEADER.unpack_from(buffer, start)
            if end - start - 4 < size:
                break
            bodies.append(bytes(buffer[start + 4:start + 4 + size]))
            start += 4 + size
        del buffer[:start]
        return bodies
