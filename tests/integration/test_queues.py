"""Queues at definition and at send: CUSTOM-mode priorities on the row, documented errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest

from horsies import (
    AppConfig,
    ConfigurationError,
    CustomQueueConfig,
    Err,
    Horsies,
    PostgresConfig,
    QueueMode,
    TaskError,
    TaskResult,
    TaskSendErrorCode,
)
from horsies.errors import ErrorCode


def custom_config(url: str, *queues: CustomQueueConfig) -> AppConfig:
    return AppConfig(
        broker=PostgresConfig(database_url=url),
        queue_mode=QueueMode.CUSTOM,
        custom_queues=list(queues) or [
            CustomQueueConfig(name="critical", priority=1, max_concurrency=3),
            CustomQueueConfig(name="bulk", priority=90),
        ],
    )


@pytest.fixture
def app(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Horsies]:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    application = Horsies(custom_config(pg_url))

    @application.task("urgent", queue_name="critical")
    def urgent(n: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=n)

    @application.task("later", queue_name="bulk")
    def later(n: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=n)

    yield application
    application.get_broker().close()


def queue_and_priority(url: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT task_name, queue_name, priority FROM horsies_tasks ORDER BY enqueued_at, id"
        ).fetchall()


def row_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM horsies_tasks").fetchone()[0]


def reconfigure(app: Horsies, config: AppConfig) -> None:
    """Change the app's configuration after its tasks were defined."""
    app.config = config
    if app._broker is not None:
        app.get_broker().close()
    app._broker = None


# -- rows ---------------------------------------------------------------------------


def test_row_gets_the_queue_priority(app: Horsies, pg_url: str) -> None:
    assert app.tasks["urgent"].send(1).is_ok()
    assert app.tasks["later"].send(2).is_ok()
    assert queue_and_priority(pg_url) == [("urgent", "critical", 1), ("later", "bulk", 90)]


def test_with_options_priority_overrides_the_queue(app: Horsies, pg_url: str) -> None:
    assert app.tasks["later"].with_options(priority=7).send(1).is_ok()
    assert app.tasks["urgent"].with_options(priority=100).send(2).is_ok()
    assert queue_and_priority(pg_url) == [("later", "bulk", 7), ("urgent", "critical", 100)]


def test_send_many_and_schedule_get_the_queue_priority(app: Horsies, pg_url: str) -> None:
    assert app.tasks["later"].send_many([(1,), (2,)]).is_ok()
    assert app.tasks["urgent"].schedule(60, 3).is_ok()
    assert sorted(queue_and_priority(pg_url)) == [
        ("later", "bulk", 90), ("later", "bulk", 90), ("urgent", "critical", 1)]


def test_default_mode_rows_get_priority_100(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    application = Horsies(AppConfig(broker=PostgresConfig(database_url=pg_url)))

    @application.task("plain")
    def plain() -> TaskResult[int, TaskError]:
        return TaskResult(ok=1)

    try:
        assert plain.send().is_ok()
        assert plain.with_options(priority=3).send().is_ok()
        assert queue_and_priority(pg_url) == [("plain", "default", 100), ("plain", "default", 3)]
    finally:
        application.get_broker().close()


# -- errors at definition ----------------------------------------------------------------


def test_definition_unknown_queue_is_hrs_103(app: Horsies) -> None:
    with pytest.raises(ConfigurationError) as info:
        @app.task("lost", queue_name="nowhere")
        def lost() -> TaskResult[int, TaskError]:
            return TaskResult(ok=1)
    assert info.value.code is ErrorCode.TASK_INVALID_QUEUE
    assert info.value.code.value == "HRS-103"
    assert info.value.message == "invalid queue_name 'nowhere'"
    assert any("critical" in note and "bulk" in note for note in info.value.notes)
    assert "lost" not in app.tasks


def test_definition_without_queue_in_custom_mode_is_hrs_200(app: Horsies) -> None:
    with pytest.raises(ConfigurationError) as info:
        @app.task("anywhere")
        def anywhere() -> TaskResult[int, TaskError]:
            return TaskResult(ok=1)
    assert info.value.code.value == "HRS-200"
    assert info.value.message == "queue_name is required in CUSTOM mode"


def test_definition_with_queue_in_default_mode_is_hrs_200(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    application = Horsies(AppConfig(broker=PostgresConfig(database_url=pg_url)))
    with pytest.raises(ConfigurationError) as info:
        @application.task("named", queue_name="default")
        def named() -> TaskResult[int, TaskError]:
            return TaskResult(ok=1)
    assert info.value.code is ErrorCode.CONFIG_INVALID_QUEUE_MODE
    assert info.value.message == "cannot specify queue_name in DEFAULT mode"


# -- errors at send: the queue is validated again against the current configuration --------


def assert_queue_send_error(result: Any, task_name: str, details: str) -> None:
    assert isinstance(result, Err), result
    error = result.err_value
    assert error.code is TaskSendErrorCode.VALIDATION_FAILED
    assert error.retryable is False
    assert error.message.startswith(f"Queue validation failed for {task_name}: {details}")


def test_send_to_a_queue_no_longer_configured(app: Horsies, pg_url: str) -> None:
    reconfigure(app, custom_config(pg_url, CustomQueueConfig(name="critical", priority=1)))
    task = app.tasks["later"]
    details = "invalid queue_name 'bulk'"
    assert_queue_send_error(task.send(1), "later", details)
    assert_queue_send_error(task.with_options(priority=5).send(1), "later", details)
    assert_queue_send_error(task.send_many([(1,), (2,)]), "later", details)
    assert_queue_send_error(task.schedule(30, 1), "later", details)
    assert_queue_send_error(asyncio.run(task.send_async(1)), "later", details)
    assert "valid queues: critical" in task.send(1).err_value.message
    assert app.tasks["urgent"].send(1).is_ok()  # a still-configured queue keeps working
    assert row_count(pg_url) == 1


def test_send_with_a_queue_in_default_mode(app: Horsies, pg_url: str) -> None:
    reconfigure(app, AppConfig(broker=PostgresConfig(database_url=pg_url)))
    for name in ("urgent", "later"):
        assert_queue_send_error(app.tasks[name].send(1), name,
                                "cannot specify queue_name in DEFAULT mode")
    assert row_count(pg_url) == 0


def test_send_in_custom_mode_of_a_task_defined_without_queue(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    application = Horsies(AppConfig(broker=PostgresConfig(database_url=pg_url)))

    @application.task("plain")
    def plain() -> TaskResult[int, TaskError]:
        return TaskResult(ok=1)

    reconfigure(application, custom_config(pg_url))
    try:
        assert_queue_send_error(plain.send(), "plain", "queue_name is required in CUSTOM mode")
        assert row_count(pg_url) == 0
    finally:
        if application._broker is not None:
            application.get_broker().close()


def test_queue_priority_follows_the_current_configuration(app: Horsies, pg_url: str) -> None:
    config = app.config
    queues = [msgspec.structs.replace(q, priority=42) if q.name == "bulk" else q
              for q in config.custom_queues or []]
    reconfigure(app, custom_config(pg_url, *queues))
    assert app.tasks["later"].send(1).is_ok()
    assert queue_and_priority(pg_url) == [("later", "bulk", 42)]
