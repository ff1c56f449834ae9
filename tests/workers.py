"""Real `horsies worker` and `horsies scheduler` processes started from the CLI, for e2e
and integration tests.

Registered as a pytest plugin by tests/conftest.py.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

HORSIES = [sys.executable, "-m", "horsies.cli"]


def app_module_at(name: str, url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fixture body: the test-app module `name` (its `app`) pointed at `url`, for this
    process and the workers it starts; the app's broker is closed afterwards."""
    import importlib

    import msgspec

    from horsies import PostgresConfig

    monkeypatch.setenv("HORSIES_DATABASE_URL", url)
    module = importlib.import_module(name)
    # Imported once per session: point the app at this test's database.
    module.app.config = msgspec.structs.replace(module.app.config,
                                                broker=PostgresConfig(database_url=url))
    module.app._broker = None
    yield module
    if module.app._broker is not None:
        module.app.get_broker().close()
        module.app._broker = None


class WorkerProcess:
    """A `horsies worker` (or other `command`) subprocess whose output is read line by line."""

    def __init__(
        self, args: list[str], cwd: Path, env: dict[str, str], command: str = "worker"
    ) -> None:
        self.command = command
        self.proc = subprocess.Popen(
            HORSIES + [command, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            self._queue.put(line)

    def wait_for(self, text: str, timeout: float = 60.0, count: int = 1) -> None:
        """Block until `count` lines containing `text` have appeared (an event, not a sleep)."""
        end = time.monotonic() + timeout
        while sum(text in line for line in self.lines) < count:
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                self._queue.get(timeout=max(0.01, left))  # woken by the next line
            except queue.Empty:
                break
        else:
            return
        raise AssertionError(
            f"{self.command} never logged {text!r}; output:\n{''.join(self.lines)}"
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Kill the worker and everything it started; release the pipe."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def worker_env(pg_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["HORSIES_DATABASE_URL"] = pg_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def _processes(tmp_path: Path, command: str) -> Iterator[Any]:
    """A `start(args, env, cwd=None)` function; every process it started is killed at the end."""
    started: list[WorkerProcess] = []

    def start(args: list[str], env: dict[str, str], cwd: Path | None = None) -> WorkerProcess:
        process = WorkerProcess(args, cwd or tmp_path, env, command=command)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.kill()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[object]:
    with _processes(tmp_path, "worker") as start:
        yield start


@pytest.fixture
def start_scheduler(tmp_path: Path) -> Iterator[object]:
    """Start `horsies scheduler ARGS` processes; each is killed at the end of the test."""
    with _processes(tmp_path, "scheduler") as start:
        yield start


@pytest.fixture
def apps(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """tests.integration.apps, imported once per session, pointed at this test's database."""
    monkeypatch.setenv("HORSIES_DATABASE_URL", pg_url)
    import tests.integration.apps as module
    from horsies import AppConfig, PostgresConfig

    module.app.config = AppConfig(broker=PostgresConfig(database_url=pg_url))
    module.app._broker = None
    yield module
    if module.app._broker is not None:
        module.app.get_broker().close()
        module.app._broker = None
