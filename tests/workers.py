"""Real `horsies worker` processes started from the CLI, for e2e and integration tests.

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
from pathlib import Path
from typing import Any

import pytest

HORSIES = [sys.executable, "-m", "horsies.cli"]


class WorkerProcess:
    """A `horsies worker` subprocess whose stderr is read line by line."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            HORSIES + ["worker", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
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

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Block until a line containing `text` appears (an event, not a sleep)."""
        end = time.monotonic() + timeout
        if any(text in line for line in self.lines):
            return
        while time.monotonic() < end:
            try:
                line = self._queue.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if text in line:
                return
        raise AssertionError(f"worker never logged {text!r}; output:\n{''.join(self.lines)}")

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


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[object]:
    started: list[WorkerProcess] = []

    def start(args: list[str], env: dict[str, str], cwd: Path | None = None) -> WorkerProcess:
        worker = WorkerProcess(args, cwd or tmp_path, env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
def apps(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """tests.integration.apps, imported once per session, pointed at this test's database."""
    monkeypatch.setenv("HORSIES_DATABASE_URL", pg_url)
    from horsies import AppConfig, PostgresConfig
    import tests.integration.apps as module

    module.app.config = AppConfig(broker=PostgresConfig(database_url=pg_url))
    module.app._broker = None
    yield module
    if module.app._broker is not None:
        module.app.get_broker().close()
        module.app._broker = None
