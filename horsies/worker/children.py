"""The main process's side of the child pool.

Each child is a fresh interpreter (`python -c ...`), started without the
multiprocessing machinery: a socket pair carries the frames, and an 8-byte
shared mapping holds the run position of the task the child began last
(runs.md §3). Children can be started before the event loop exists (the
command line starts them first, so they import the app while the worker
connects); the pool adopts them: the loop reads each socket and learns of each
exit the moment it happens, and writes to a child are buffered by the loop, so
a child busy with a long task never blocks the main process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mmap
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from horsies.worker import protocol
from horsies.worker.child import HOOK_FAILED_EXIT

log = logging.getLogger("horsies.worker")

_ENTRY = "from horsies.worker.child import main; main()"


@dataclass(frozen=True)
class ChildSpec:
    """What every child needs to load the app as the main process did."""

    app_locator: str
    sys_path_roots: list[str]
    imports: list[str]
    loglevel: int


# A task handed to a child, as the cycle statement returned it: (kind, pid,
# seq, id, name, args, kwargs, queue, retry_count, max_retries, options, at).
Handed = tuple[Any, ...]


@dataclass(eq=False)
class Child:
    """One child, as the main process tracks it."""

    pid: int = 0
    ready: bool = False
    queue: deque[Handed] = field(default_factory=deque)  # handed out, no result yet
    next_seq: int = 1  # run positions are never reused, even after a failed cycle
    handed: int = 0  # the highest run position sent to the child
    limit: int = 0  # the start limit recorded durably and sent
    waiting: bool = False  # the child stopped at its limit
    beat: bool = False  # it reported a heartbeat since the last write
    stopping: bool = False  # Stop was sent
    stopped_at: int | None = None  # its answer to Stop: the last position it began
    exit_code: int | None = None
    exited: bool = False
    closed: bool = False
    reported: bool = False  # its death went to the pool's handler
    last_started: int = 0  # `started` as the shared mapping held it at the end
    _proc: subprocess.Popen[bytes] | None = None
    _socket: socket.socket | None = None  # until the pool adopts the child
    _channel: Any = None
    _marks: mmap.mmap | None = None
    _started: memoryview | None = None

    @property
    def gone(self) -> bool:
        """The process exited and every frame it sent has been read."""
        return self.exited and self.closed

    @property
    def started(self) -> int:
        """The run position of the task the child began last (0: none yet)."""
        return int(self._started[0]) if self._started is not None else 0

    @property
    def live(self) -> bool:
        return self.ready and not self.exited and not self.closed and not self.stopping

    def send(self, message: protocol.Message) -> None:
        if self._channel is not None and not self.closed:
            self._channel.write(protocol.frame(message))

    def kill(self) -> None:
        if self._proc is not None and not self.exited:
            try:
                self._proc.kill()
            except ProcessLookupError:
                pass

    def release(self) -> None:
        """Free the transports and the shared mapping once the child is gone;
        `last_started` keeps what the mapping held."""
        if self._channel is not None:
            self._channel.close()
        if self._socket is not None:
            self._socket.close()
        if self._started is not None:
            self.last_started = int(self._started[0])
            self._started.release()
            self._started = None
        if self._marks is not None:
            self._marks.close()
            self._marks = None


class PoolEvents:
    """What the pool reports; the worker assembles the handlers."""

    def __init__(self, ready: Callable[[Child], None],
                 results: Callable[[Child, protocol.Results], None],
                 stopped: Callable[[Child], None], gone: Callable[[Child], None]) -> None:
        self.ready = ready
        self.results = results
        self.stopped = stopped
        self.gone = gone


class _Channel(asyncio.Protocol):
    def __init__(self, child: Child, events: PoolEvents) -> None:
        self.child = child
        self.events = events
        self.frames = protocol.FrameBuffer()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.child._channel = transport

    def data_received(self, data: bytes) -> None:
        child, events = self.child, self.events
        for body in self.frames.feed(data):
            message = protocol.decode(body)
            if isinstance(message, protocol.Results):
                events.results(child, message)
            elif isinstance(message, protocol.Beat):
                child.beat = True
            elif isinstance(message, protocol.Ready):
                child.ready = True
                events.ready(child)
            elif isinstance(message, protocol.Stopped):
                child.stopped_at = message.started
                events.stopped(child)

    def connection_lost(self, exc: Exception | None) -> None:
        self.child.closed = True
        _report_if_gone(self.child, self.events)


def _watch_exit(loop: asyncio.AbstractEventLoop, child: Child, events: PoolEvents) -> None:
    """Report the child's exit to the loop: through a pidfd where the system has
    one (Linux), else from a thread that waits for it."""
    try:
        fd = os.pidfd_open(child.pid)
    except (AttributeError, OSError):
        threading.Thread(target=_wait_for_exit, args=(loop, child, events), daemon=True,
                         name=f"horsies-child-{child.pid}").start()
        return

    def exited() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        _exited(child, events, child._proc.wait())

    loop.add_reader(fd, exited)


def _wait_for_exit(loop: asyncio.AbstractEventLoop, child: Child, events: PoolEvents) -> None:
    code = child._proc.wait()
    try:
        loop.call_soon_threadsafe(_exited, child, events, code)
    except RuntimeError:
        pass  # the loop is closed: the worker has stopped


def _exited(child: Child, events: PoolEvents, code: int) -> None:
    child.exited = True
    child.exit_code = code
    # The socket reports the end of the stream after the last frame, which a
    # dying child may still have in flight: the death waits for both.
    _report_if_gone(child, events)


def _report_if_gone(child: Child, events: PoolEvents) -> None:
    if child.gone and not child.reported:
        child.reported = True
        events.gone(child)


class ChildPool:
    """Starts, watches and replaces children; routes their frames."""

    def __init__(self, spec: ChildSpec, size: int, events: PoolEvents) -> None:
        self.spec = spec
        self.size = size
        self.events = events
        self.children: list[Child] = []
        self.start_failures = 0
        self.hook_failed = False

    async def adopt(self, child: Child) -> Child:
        """Watch a started child: its frames and its exit."""
        loop = asyncio.get_running_loop()
        self.children.append(child)
        _watch_exit(loop, child, self.events)
        sock, child._socket = child._socket, None
        assert sock is not None
        await loop.connect_accepted_socket(lambda: _Channel(child, self.events), sock)
        return child

    async def start_child(self) -> Child:
        return await self.adopt(spawn(self.spec))

    async def start(self, spawned: list[Child] | None = None) -> None:
        """Adopt the children started already; start the others. They import the
        app in parallel; the first to be ready gets the first run."""
        for child in spawned or ():
            await self.adopt(child)
        for _ in range(self.size - len(spawned or ())):
            await self.start_child()

    def remove(self, child: Child) -> None:
        """Forget a child whose death has been handled."""
        if child in self.children:
            self.children.remove(child)
        if child.exit_code == HOOK_FAILED_EXIT:
            self.hook_failed = True
        if not child.ready:
            self.start_failures += 1
        else:
            self.start_failures = 0
        child.release()

    def stop_all(self) -> None:
        for child in self.children:
            if not child.stopping:
                child.stopping = True
                child.send(protocol.Stop())

    def kill_all(self) -> None:
        for child in self.children:
            child.kill()

    async def wait_gone(self, seconds: float) -> bool:
        """Wait until every child is gone; False if some are left after `seconds`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while self.children and loop.time() < end:
            await asyncio.sleep(0.02)
        return not self.children


def spawn(spec: ChildSpec) -> Child:
    """Start one child process, without an event loop (the command line starts the
    children before anything else); the pool adopts it later."""
    parent_end, child_end = socket.socketpair()
    marks_fd = _shared_file()
    child = Child()
    try:
        os.ftruncate(marks_fd, 8)
        child._marks = mmap.mmap(marks_fd, 8)
        child._started = memoryview(child._marks).cast("q")
        settings = {"app_locator": spec.app_locator, "sys_path_roots": spec.sys_path_roots,
                    "imports": spec.imports, "loglevel": spec.loglevel,
                    "parent_pid": os.getpid(), "socket_fd": child_end.fileno(),
                    "mark_fd": marks_fd}
        child._proc = subprocess.Popen(
            [sys.executable, "-c", _ENTRY, json.dumps(settings)],
            pass_fds=(child_end.fileno(), marks_fd))
    except BaseException:
        parent_end.close()
        child.release()
        raise
    finally:
        child_end.close()
        os.close(marks_fd)
    child.pid = child._proc.pid
    child._socket = parent_end
    return child


def _shared_file() -> int:
    """A file descriptor for the child's shared mapping, in memory where possible."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("horsies-child-marks")
    with tempfile.TemporaryFile() as handle:
        return os.dup(handle.fileno())
