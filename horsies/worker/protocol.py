"""Messages between the worker's main process and its children (msgpack over a pipe)."""

from __future__ import annotations

import msgspec


class Ready(msgspec.Struct, tag="ready"):
    pid: int


class Run(msgspec.Struct, tag="run"):
    task_id: str
    task_name: str
    args_json: str | None
    kwargs_json: str | None
    worker_id: str
    runner_heartbeat_interval_ms: int


class Result(msgspec.Struct, tag="result"):
    """A finished attempt. `ok`/`error_code`/`error_message` spare the main
    process from decoding `result_json` to decide how to finalize."""

    task_id: str
    result_json: str
    ok: bool
    error_code: str | None = None
    error_message: str | None = None


class Stop(msgspec.Struct, tag="stop"):
    pass


class Beat(msgspec.Struct, tag="beat"):
    """Runner heartbeat report: the child is alive and still running `task_id`."""

    task_id: str


Message = Ready | Run | Result | Stop | Beat

encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder(Message).decode
