"""The demo app: its database URL comes from HORSIES_DEMO_DATABASE_URL (set by `horsies demo`)."""

from __future__ import annotations

import os

from horsies import AppConfig, Horsies, PostgresConfig, TaskError, TaskResult

app = Horsies(
    AppConfig(broker=PostgresConfig(database_url=os.environ["HORSIES_DEMO_DATABASE_URL"]))
)


@app.task("demo_add")
def demo_add(a: int, b: int) -> TaskResult[int, TaskError]:
    return TaskResult(ok=a + b)


@app.task("demo_source")
def demo_source(n: int) -> TaskResult[list[int], TaskError]:
    return TaskResult(ok=list(range(n)))
