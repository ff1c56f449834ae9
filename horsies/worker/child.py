"""A worker child process: import the app, then run its runs, one task at a time.

Children run user code and nothing else: no event loop and no database
connection of the library's own. They talk to the main process over a socket
(runs down, batched results up) and keep one number where the main process
can read it after their death: the run position of the last task they began
(runs.md §3). Before each start a child checks that its parent is alive and
that the position is within the limit the main process recorded durably.
"""

from __future__ import annotations

import inspect
import json
import logging
import mmap
import os
import select
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

from horsies.codec import (
    dumps_json,
    json_to_args,
    json_to_kwargs,
    loads_json,
    serialize_error_payload,
)
from horsies.codes import OperationalErrorCode
from horsies.task_result import TaskError, TaskResult
from horsies.worker import protocol
from horsies.workflows import wire

log = logging.getLogger("horsies.worker")

HOOK_FAILED_EXIT = 173
_HOOK_TIMEOUT_S = 10.0
# Results are sent when a run ends, every _FLUSH_COUNT results, or when the
# oldest unsent one is _FLUSH_AGE_S old (runs.md §2).
_FLUSH_COUNT = 64
_FLUSH_AGE_S = 0.001

# (ok, result JSON, error code, error message)
Outcome = tuple[bool, str, "str | None", "str | None"]


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)


def _run_hooks(app: Any) -> None:
    for hook in app.child_process_start_hooks:
        name = getattr(hook, "__qualname__", repr(hook))
        failure: list[BaseException] = []

        def call(hook: Any = hook, failure: list[BaseException] = failure) -> None:
            try:
                hook()
            except BaseException as exc:  # noqa: BLE001 - reported below
                failure.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        thread.join(_HOOK_TIMEOUT_S)
        if thread.is_alive():
            log.critical("on_child_process_start hook '%s' exceeded %ds in child %d",
                         name, int(_HOOK_TIMEOUT_S), os.getpid())
            os._exit(HOOK_FAILED_EXIT)
        if failure:
            log.critical("on_child_process_start hook '%s' failed in child %d: %s",
                         name, os.getpid(), failure[0])
            os._exit(HOOK_FAILED_EXIT)


def _error_outcome(code: OperationalErrorCode, message: str, task_name: str) -> Outcome:
    result = TaskResult(err=TaskError(error_code=code, message=message,
                                      data={"task_name": task_name}))
    return False, serialize_error_payload(result), str(code.value), message


def execute(tasks: dict[str, Any], name: str, args_json: str | None,
            kwargs_json: str | None) -> Outcome:
    """One attempt: resolve, decode, call, encode. Never raises."""
    task = tasks.get(name)
    if task is None:
        return _error_outcome(OperationalErrorCode.WORKER_RESOLUTION_ERROR,
                              f"task '{name}' is not registered in this worker", name)
    if kwargs_json is not None and wire.MARKER in kwargs_json:
        try:
            decoded = _decode_workflow_arguments(task, args_json, kwargs_json)
        except Exception as exc:  # noqa: BLE001 - the child's own code around the call
            return _error_outcome(OperationalErrorCode.TASK_EXCEPTION,
                                  "could not prepare the workflow arguments: "
                                  f"{type(exc).__name__}: {exc}", name)
    else:
        decoded = _decode_arguments(args_json, kwargs_json)
    if isinstance(decoded, str):
        return _error_outcome(OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
                              f"could not decode the stored {decoded}", name)
    result = task.run(*decoded)
    encoded = dumps_json(result)
    if encoded.is_err():
        return _error_outcome(OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
                              f"could not encode the result: {encoded.err_value}", name)
    if result.is_ok():
        return True, encoded.ok_value, None, None
    error = result.err_value
    code = error.error_code
    return (False, encoded.ok_value, None if code is None else str(getattr(code, "value", code)),
            error.message)


def _decode_arguments(args_json: str | None, kwargs_json: str | None
                      ) -> tuple[tuple[Any, ...], dict[str, Any]] | str:
    """The call's arguments, or a string naming what could not be decoded."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if args_json is not None:
        parsed = loads_json(args_json)
        if parsed.is_err():
            return f"arguments: {parsed.err_value}"
        rebuilt = json_to_args(parsed.ok_value)
        if rebuilt.is_err():
            return f"arguments: {rebuilt.err_value}"
        args = tuple(rebuilt.ok_value)
    if kwargs_json is not None:
        parsed = loads_json(kwargs_json)
        if parsed.is_err():
            return f"keyword arguments: {parsed.err_value}"
        rebuilt_kw = json_to_kwargs(parsed.ok_value)
        if rebuilt_kw.is_err():
            return f"keyword arguments: {rebuilt_kw.err_value}"
        kwargs = rebuilt_kw.ok_value
    return args, kwargs


def _decode_workflow_arguments(task: Any, args_json: str | None, kwargs_json: str
                               ) -> tuple[tuple[Any, ...], dict[str, Any]] | str:
    """`_decode_arguments` for a workflow row: the engine's envelopes are taken
    out before the codec sees the static kwargs (it refuses ``__horsies`` keys),
    then added back as decoded values (workflows.md §5.5)."""
    decoded_args = _decode_arguments(args_json, None)
    if isinstance(decoded_args, str):
        return decoded_args
    parsed = loads_json(kwargs_json)
    if parsed.is_err():
        return f"keyword arguments: {parsed.err_value}"
    tree = parsed.ok_value
    if type(tree) is not dict:  # not a workflow row after all: the codec names the problem
        return _decode_arguments(args_json, kwargs_json)
    try:
        injections = wire.split_injections(tree)
    except wire.WireFormatError as exc:
        return f"keyword arguments: {exc}"
    rebuilt = json_to_kwargs(tree)
    if rebuilt.is_err():
        return f"keyword arguments: {rebuilt.err_value}"
    kwargs = rebuilt.ok_value
    kwargs.update(injections.results)
    wants_ctx, wants_meta = _injectable(task)
    if wants_ctx and injections.ctx is not None:
        kwargs[wire.CTX_PARAM] = injections.ctx
    if wants_meta and injections.meta is not None:
        kwargs[wire.META_PARAM] = injections.meta
    return decoded_args[0], kwargs


# Task -> (declares workflow_ctx, declares workflow_meta). Reading a signature
# costs microseconds; a child runs the same few tasks many times over.
_INJECTABLE: dict[Any, tuple[bool, bool]] = {}
_BY_KEYWORD: Final = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _injectable(task: Any) -> tuple[bool, bool]:
    found = _INJECTABLE.get(task)
    if found is None:
        signature = getattr(task, "signature", None) or inspect.signature(task)
        params = signature.parameters
        found = (_declares(params, wire.CTX_PARAM), _declares(params, wire.META_PARAM))
        _INJECTABLE[task] = found
    return found


def _declares(params: Mapping[str, inspect.Parameter], name: str) -> bool:
    # Only a parameter of that name takes the value: a **kwargs catch-all does
    # not declare it, and a positional-only one cannot be passed by name.
    param = params.get(name)
    return param is not None and param.kind in _BY_KEYWORD


class Channel:
    """The child's end of the socket: blocking frame reads, locked writes (the
    heartbeat thread writes too)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = sock.makefile("rb")
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        self.lock = threading.Lock()

    def pending(self) -> bool:
        """Whether a frame (or the end of the stream) is waiting to be read."""
        return bool(self._poll.poll(0))

    def read(self) -> protocol.Message | None:
        header = self._reader.read(4)
        if len(header) < 4:
            return None
        (size,) = protocol.HEADER.unpack(header)
        return protocol.decode(self._reader.read(size))

    def send(self, message: protocol.Message) -> None:
        data = protocol.frame(message)
        with self.lock:
            self._sock.sendall(data)


class _Heartbeat:
    """Sends `Beat` every interval while the child has work (workers.md §7.3).

    One daemon thread per child for all its runs. A child whose thread is
    starved (or that hangs with the GIL held) stops reporting and goes stale.
    """

    def __init__(self, channel: Channel, interval_s: float) -> None:
        self._channel = channel
        self._interval = max(0.05, interval_s)
        self.busy = threading.Event()
        self._beat = protocol.frame(protocol.Beat())
        threading.Thread(target=self._loop, name="horsies-runner-heartbeat", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.busy.wait()
            time.sleep(self._interval)
            if not self.busy.is_set():
                continue
            try:
                self._channel.send(protocol.Beat())
            except OSError:
                return


class Runner:
    """The loop of one child: take runs, start each task within the limit, send results."""

    def __init__(self, tasks: dict[str, Any], channel: Channel, started: memoryview,
                 parent_pid: int, beat_interval_s: float) -> None:
        self.tasks = tasks
        self.channel = channel
        self.started = started  # started[0]: the run position of the last task begun
        self.parent_pid = parent_pid
        self.queue: deque[tuple[int, str, str, str | None, str | None]] = deque()
        self.limit = 0
        self.unsent: list[tuple[int, bool, str, str | None, str | None, float, float]] = []
        self.oldest = 0.0
        self.heartbeat = _Heartbeat(channel, beat_interval_s)

    def serve(self) -> None:
        while True:
            if not self.queue or self.queue[0][0] > self.limit:
                if not self.queue:
                    self.heartbeat.busy.clear()  # idle: nothing of ours can go stale
                self.flush(waiting=bool(self.queue))
                if not self.receive(self.channel.read()):
                    return
                continue
            if self.channel.pending() and not self.receive(self.channel.read()):
                return
            if not self.queue or self.queue[0][0] > self.limit:
                continue
            if os.getppid() != self.parent_pid:
                os._exit(1)  # nobody can record a result any more
            self.run_one(*self.queue.popleft())

    def receive(self, message: protocol.Message | None) -> bool:
        """Apply a frame; False when the child must exit."""
        if message is None:
            return False  # the main process closed the socket
        if isinstance(message, protocol.Run):
            self.queue.extend(message.tasks)
            self.limit = max(self.limit, message.limit)
            self.heartbeat.busy.set()
        elif isinstance(message, protocol.Limit):
            self.limit = max(self.limit, message.limit)
        elif isinstance(message, protocol.Stop):
            self.flush(waiting=False)
            self.channel.send(protocol.Stopped(started=self.started[0]))
            return False
        return True

    def run_one(self, seq: int, task_id: str, name: str, args_json: str | None,
                kwargs_json: str | None) -> None:
        self.started[0] = seq  # before user code: read after a death (runs.md §3)
        started_at = time.time()
        begun = time.perf_counter()
        ok, result_json, code, message = execute(self.tasks, name, args_json, kwargs_json)
        now = time.perf_counter()
        if not self.unsent:
            self.oldest = now
        took = now - begun
        self.unsent.append((seq, ok, result_json, code, message, started_at, took))
        # A task of a millisecond or more is likely followed by another: its result
        # would wait out that one too, so it goes at once.
        if (not self.queue or len(self.unsent) >= _FLUSH_COUNT or took >= _FLUSH_AGE_S
                or now - self.oldest >= _FLUSH_AGE_S):
            self.flush(waiting=False)

    def flush(self, waiting: bool) -> None:
        if not self.unsent and not waiting:
            return
        items, self.unsent = self.unsent, []
        self.channel.send(protocol.Results(items=items, waiting=waiting))


def _load(spec: dict[str, Any]) -> Any:
    from horsies.locator import load_app

    app = load_app(spec["app_locator"], spec["sys_path_roots"])
    app.suppress_sends(True)
    try:
        # The locator already imported the app's own module; importing it
        # again by name or path is a no-op (sys.modules, import_file's cache).
        app.import_task_modules(app.get_discovered_task_modules() + spec["imports"])
    finally:
        app.suppress_sends(False)
    _run_hooks(app)
    return app


def main() -> None:
    """Entry point of a child process: ``python -c '...main()' SPEC_JSON``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ["HORSIES_CHILD_PROCESS"] = "1"
    spec = json.loads(sys.argv[1])
    from horsies.logging import configure_logging

    configure_logging(spec["loglevel"])
    parent_pid = spec["parent_pid"]
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    sock = socket.socket(fileno=spec["socket_fd"])
    marks = mmap.mmap(spec["mark_fd"], 8)
    app = _load(spec)
    channel = Channel(sock)
    channel.send(protocol.Ready(pid=os.getpid()))
    interval_s = app.config.recovery.runner_heartbeat_interval_ms / 1000
    runner = Runner(app.tasks._tasks, channel, memoryview(marks).cast("q"), parent_pid,
                    interval_s)
    try:
        runner.serve()
    except (BrokenPipeError, ConnectionError):
        pass  # the main process is gone
    sys.stdout.flush()
    os._exit(0)
