"""A worker child process: import the app, then run one task at a time.

Children run user code and nothing else: no event loop and no database
connection of the library's own. They talk to the main process over a pipe
and exit at once when the main process disappears.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from horsies.codec import dumps_json, json_to_args, json_to_kwargs, loads_json, serialize_error_payload
from horsies.codes import OperationalErrorCode
from horsies.task_result import TaskError, TaskResult
from horsies.worker import protocol

log = logging.getLogger("horsies.worker")

HOOK_FAILED_EXIT = 173
_HOOK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ChildSpec:
    app_locator: str
    sys_path_roots: list[str]
    imports: list[str]
    loglevel: int


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)


def _run_hooks(app: Any) -> None:
    for hook in app.child_process_start_hooks:
        name = getattr(hook, "__qualname__", repr(hook))
        failure: list[BaseException] = []

        def call(hook: Any = hook) -> None:
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


def _error_result(code: Any, message: str, task_name: str) -> protocol.Result:
    result = TaskResult(err=TaskError(error_code=code, message=message,
                                      data={"task_name": task_name}))
    return protocol.Result(task_id="", result_json=serialize_error_payload(result), ok=False,
                           error_code=str(code.value), error_message=message)


def execute(app: Any, run: protocol.Run) -> protocol.Result:
    """One attempt: resolve, decode, call, encode. Never raises."""
    name = run.task_name
    task = app.tasks._tasks.get(name)
    if task is None:
        outcome = _error_result(OperationalErrorCode.WORKER_RESOLUTION_ERROR,
                                f"task '{name}' is not registered in this worker", name)
    else:
        outcome = _call(task, run)
    outcome.task_id = run.task_id
    return outcome


def _decode_arguments(run: protocol.Run) -> tuple[list[Any], dict[str, Any]] | str:
    args_json = loads_json(run.args_json)
    kwargs_json = loads_json(run.kwargs_json)
    if args_json.is_err():
        return f"arguments: {args_json.err_value}"
    if kwargs_json.is_err():
        return f"keyword arguments: {kwargs_json.err_value}"
    args = json_to_args(args_json.ok_value)
    kwargs = json_to_kwargs(kwargs_json.ok_value)
    if args.is_err():
        return f"arguments: {args.err_value}"
    if kwargs.is_err():
        return f"keyword arguments: {kwargs.err_value}"
    return args.ok_value, kwargs.ok_value


def _call(task: Any, run: protocol.Run) -> protocol.Result:
    decoded = _decode_arguments(run)
    if isinstance(decoded, str):
        return _error_result(OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
                             f"could not decode the stored {decoded}", run.task_name)
    args, kwargs = decoded
    result = task.run(tuple(args), kwargs)
    encoded = dumps_json(result)
    if encoded.is_err():
        return _error_result(OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
                             f"could not encode the result: {encoded.err_value}", run.task_name)
    if result.is_ok():
        return protocol.Result(task_id=run.task_id, result_json=encoded.ok_value, ok=True)
    error = result.err_value
    code = error.error_code
    return protocol.Result(
        task_id=run.task_id, result_json=encoded.ok_value, ok=False,
        error_code=None if code is None else str(getattr(code, "value", code)),
        error_message=error.message,
    )


def child_main(conn: Connection, spec: ChildSpec, parent_pid: int) -> None:
    """Entry point of a child process (spawned)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ["HORSIES_CHILD_PROCESS"] = "1"
    from horsies.logging import configure_logging

    configure_logging(spec.loglevel)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    from horsies.cli._common import load_app

    app = load_app(spec.app_locator, spec.sys_path_roots)
    app.suppress_sends(True)
    try:
        # The locator already imported the app's own module; importing it
        # again by name or path is a no-op (sys.modules, import_file's cache).
        app.import_task_modules(app.get_discovered_task_modules() + spec.imports)
    finally:
        app.suppress_sends(False)
    _run_hooks(app)
    conn.send_bytes(protocol.encode(protocol.Ready(pid=os.getpid())))
    _serve(app, conn)


def _serve(app: Any, conn: Connection) -> None:
    beats = _RunnerHeartbeat(conn)
    while True:
        try:
            message = protocol.decode(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if isinstance(message, protocol.Stop):
            return
        if isinstance(message, protocol.Run):
            beats.start(message)
            try:
                outcome = execute(app, message)
            finally:
                beats.stop()
            try:
                with beats.lock:
                    conn.send_bytes(protocol.encode(outcome))
            except (BrokenPipeError, OSError):
                return


class _RunnerHeartbeat:
    """Reports `Beat` over the pipe while a task runs (workers.md §7.3).

    One daemon thread per child, for all its tasks: starting a thread per task
    would cost more than a short task. The main process writes the runner
    heartbeat rows; a child whose thread is starved (or that hangs with the GIL
    held) stops reporting and goes stale.
    """

    def __init__(self, conn: Connection) -> None:
        self.lock = threading.Lock()  # the pipe is shared with the Result send
        self._conn = conn
        self._beat: bytes | None = None  # the current task's report, None when idle
        self._interval = 1.0
        self._running = threading.Event()
        threading.Thread(target=self._loop, name="horsies-runner-heartbeat", daemon=True).start()

    def start(self, run: protocol.Run) -> None:
        with self.lock:
            self._beat = protocol.encode(protocol.Beat(task_id=run.task_id))
            self._interval = max(0.05, run.runner_heartbeat_interval_ms / 1000)
        self._running.set()

    def stop(self) -> None:
        with self.lock:
            self._beat = None
        self._running.clear()

    def _loop(self) -> None:
        while True:
            self._running.wait()
            time.sleep(self._interval)
            try:
                with self.lock:
                    if self._beat is not None:
                        self._conn.send_bytes(self._beat)
            except (BrokenPipeError, OSError):
                return
