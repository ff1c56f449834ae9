"""Task modules used by the integration and e2e tests (importable by workers)."""

from __future__ import annotations

import os
import time

from horsies import AppConfig, Horsies, PostgresConfig, TaskError, TaskResult

# HORSIES_DATABASE_URL (set by the tests) replaces this placeholder URL.
app = Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://unused@localhost/unused")))


@app.task("add")
def add(a: int, b: int) -> TaskResult[int, TaskError]:
    return TaskResult(ok=a + b)


@app.task("explode")
def explode(message: str) -> TaskResult[None, TaskError]:
    raise RuntimeError(message)


@app.task("return_none")
def return_none() -> TaskResult[int, TaskError]:
    return None  # type: ignore[return-value]


@app.task("sleepy")
def sleepy(seconds: float) -> TaskResult[int, TaskError]:
    time.sleep(seconds)
    return TaskResult(ok=os.getpid())


@app.task("record")
def record(path: str, n: int) -> TaskResult[int, TaskError]:
    """Append `n` to a file shared by every process: one line per execution.

    One small O_APPEND write is atomic, so concurrent children never interleave.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, f"{n}\n".encode())
    finally:
        os.close(fd)
    return TaskResult(ok=n)


@app.task("hard_exit")
def hard_exit(code: int) -> TaskResult[None, TaskError]:
    os._exit(code)


app.discover_tasks(["tests.integration.apps"])
