"""Tasks and conditions shared by the workflow build tests (importable, module level)."""

from __future__ import annotations

from dataclasses import dataclass

from horsies import (
    AppConfig,
    CustomQueueConfig,
    Horsies,
    PostgresConfig,
    QueueMode,
    TaskError,
    TaskResult,
)

URL = "postgresql://u:p@localhost:1/db"

app = Horsies(AppConfig(broker=PostgresConfig(database_url=URL)))
custom_app = Horsies(
    AppConfig(
        broker=PostgresConfig(database_url=URL),
        queue_mode=QueueMode.CUSTOM,
        custom_queues=[
            CustomQueueConfig(name="fast", priority=5),
            CustomQueueConfig(name="slow", priority=70),
        ],
    )
)


class Animal:
    pass


class Dog(Animal):
    pass


@dataclass
class Point:
    x: int
    y: int


@app.task("fetch")
def fetch(url: str) -> TaskResult[str, TaskError]:
    return TaskResult(ok=url)


@app.task("parse")
def parse(raw: TaskResult[str, TaskError], currency: str = "EUR") -> TaskResult[int, TaskError]:
    return TaskResult(ok=1)


@app.task("count")
def count() -> TaskResult[int, TaskError]:
    return TaskResult(ok=3)


@app.task("adopt")
def adopt() -> TaskResult[Dog, TaskError]:
    return TaskResult(ok=Dog())


@app.task("pet")
def pet(animal: TaskResult[Animal, TaskError]) -> TaskResult[str, TaskError]:
    return TaskResult(ok="pet")


@app.task("maybe")
def maybe(
    raw: TaskResult[str, TaskError] | None = None,
) -> TaskResult[str, TaskError]:
    return TaskResult(ok="maybe")


@app.task("untyped_input")
def untyped_input(raw: str = "") -> TaskResult[str, TaskError]:
    return TaskResult(ok=raw)


@app.task("report")
def report(workflow_ctx: object = None) -> TaskResult[str, TaskError]:
    return TaskResult(ok="report")


@app.task("strict_ctx")
def strict_ctx(workflow_ctx: object) -> TaskResult[str, TaskError]:
    return TaskResult(ok="ctx")


@app.task("meta_only")
def meta_only(workflow_meta: object) -> TaskResult[str, TaskError]:
    return TaskResult(ok="meta")


@app.task("anything")
def anything(**kwargs: object) -> TaskResult[str, TaskError]:
    return TaskResult(ok="any")


@app.task("place")
def place(point: Point, tags: list[str] | None = None) -> TaskResult[str, TaskError]:
    return TaskResult(ok="placed")


@custom_app.task("fast_task", queue_name="fast")
def fast_task() -> TaskResult[int, TaskError]:
    return TaskResult(ok=1)


@custom_app.task("slow_task", queue_name="slow")
def slow_task() -> TaskResult[int, TaskError]:
    return TaskResult(ok=2)


def too_large(ctx: object) -> bool:
    return False


class Conditions:
    @staticmethod
    def static_check(ctx: object) -> bool:
        return True

    @classmethod
    def class_check(cls, ctx: object) -> bool:
        return True

    def bound_check(self, ctx: object) -> bool:
        return True
