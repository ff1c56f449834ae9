"""The main process's side of the child pool.

Each child has a duplex pipe; the event loop watches the pipe and the
process sentinel, so a result or a death is seen the moment it happens.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from horsies.worker import protocol
from horsies.worker.child import HOOK_FAILED_EXIT, ChildSpec, child_main

log = logging.getLogger("horsies.worker")
_spawn = multiprocessing.get_context("spawn")


@dataclass(eq=False)
class Child:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    task_id: str | None = None  # the task it runs, until its Result arrives
    gone: bool = False
    beat: bool = False  # a runner heartbeat report arrived since the last write
    pid: int = field(init=False)

    def __post_init__(self) -> None:
        self.pid = self.process.pid or 0

    @property
    def idle(self) -> bool:
        return self.ready and self.task_id is None and not self.gone


class ChildPool:
    """Starts, watches and replaces the children; routes their messages."""

    def __init__(
        self,
        spec: ChildSpec,
        size: int,
        on_result: Callable[[Child, protocol.Result], None],
        on_death: Callable[[Child, int | None], None],
        on_idle: Callable[[], None],
    ) -> None:
        self.spec = spec
        self.size = size
        self.children: list[Child] = []
        self._on_result = on_result
        self._on_death = on_death
        self._on_idle = on_idle
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all_ready = asyncio.Event()
        self.hook_failed = False
        self.start_failures = 0

    # -- start --------------------------------------------------------------

    def start_child(self) -> Child:
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        parent_end, child_end = _spawn.Pipe(duplex=True)
        process = _spawn.Process(
            target=child_main, args=(child_end, self.spec, os.getpid()),
            name="horsies-child", daemon=False,
        )
        process.start()
        child_end.close()
        child = Child(process, parent_end)
        self.children.append(child)
        loop.add_reader(parent_end.fileno(), self._readable, child)
        loop.add_reader(process.sentinel, self._died, child)
        return child

    async def start(self, timeout: float = 60.0) -> None:
        for _ in range(self.size):
            self.start_child()
        await asyncio.wait_for(self._all_ready.wait(), timeout)

    # -- messages -------------------------------------------------------------

    def _readable(self, child: Child) -> None:
        try:
            while child.conn.poll():
                self._handle(child, protocol.decode(child.conn.recv_bytes()))
        except (EOFError, OSError):
            # The pipe closed: the child is exiting. Its sentinel reports the death.
            self._remove_reader(child.conn.fileno())

    def _handle(self, child: Child, message: protocol.Message) -> None:
        if isinstance(message, protocol.Ready):
            child.ready = True
            self.start_failures = 0
            if sum(c.ready for c in self.children if not c.gone) >= self.size:
                self._all_ready.set()
            self._on_idle()
        elif isinstance(message, protocol.Beat):
            child.beat = child.task_id == message.task_id
        elif isinstance(message, protocol.Result):
            child.task_id = None
            child.beat = False
            self._on_result(child, message)
            self._on_idle()

    def _remove_reader(self, fd: int) -> None:
        if self._loop is not None:
            try:
                self._loop.remove_reader(fd)
            except (ValueError, OSError):
                pass

    def _stop_watching(self, child: Child) -> None:
        self._remove_reader(child.conn.fileno())
        self._remove_reader(child.process.sentinel)

    def _died(self, child: Child) -> None:
        # A Result written just before dying is still in the pipe: take it first.
        try:
            while child.conn.poll():
                self._handle(child, protocol.decode(child.conn.recv_bytes()))
        except (EOFError, OSError):
            pass
        self._stop_watching(child)
        child.gone = True
        # The sentinel closes as the process tears down, a moment before its
        # exit status can be collected.
        child.process.join(1.0)
        code = child.process.exitcode
        child.conn.close()
        self.children.remove(child)
        if code == HOOK_FAILED_EXIT:
            self.hook_failed = True
        if not child.ready:
            self.start_failures += 1
        self._on_death(child, code)

    # -- use --------------------------------------------------------------------

    def idle_children(self) -> list[Child]:
        return [c for c in self.children if c.idle]

    def busy_children(self) -> list[Child]:
        return [c for c in self.children if c.task_id is not None and not c.gone]

    def run(self, child: Child, message: protocol.Run) -> None:
        child.task_id = message.task_id
        try:
            child.conn.send_bytes(protocol.encode(message))
        except OSError as exc:
            # The child is dying: its sentinel fires next and, since it holds this
            # task, the task takes the crash path.
            log.warning("could not hand task %s to child %d: %s", message.task_id, child.pid, exc)

    async def stop(self, grace: float = 5.0) -> None:
        """Ask every child to exit, then terminate and kill the stragglers."""
        for child in list(self.children):
            try:
                child.conn.send_bytes(protocol.encode(protocol.Stop()))
            except OSError:
                pass
        await self._wait_exit(grace)
        for child in list(self.children):
            child.process.terminate()
        await self._wait_exit(2.0)
        for child in list(self.children):
            child.process.kill()
        await self._wait_exit(2.0)

    async def _wait_exit(self, seconds: float) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while self.children and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    def kill(self, child: Child) -> None:
        child.process.kill()
