"""Bad workflow input is refused with an error naming the node, before anything is
written (workflows.md §11, §12.2): a cycle, an unknown `args_from` source, a node
sent to an unknown queue, an unserializable kwarg.

Each case runs against a real database: the refusal leaves no workflow, node or
task row behind, and a good spec started on the same app afterwards runs normally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from horsies import (
    AppConfig,
    CustomQueueConfig,
    Horsies,
    HorsiesError,
    MultipleValidationErrors,
    PostgresConfig,
    QueueMode,
    TaskError,
    TaskNode,
    TaskResult,
    WorkflowSpec,
    WorkflowStartErrorCode,
    WorkflowStatus,
    start_workflow,
)
from horsies.tasks.ids import is_uuid

app = Horsies(AppConfig(
    broker=PostgresConfig(database_url="postgresql://unused@localhost/unused"),
    queue_mode=QueueMode.CUSTOM,
    custom_queues=[CustomQueueConfig(name="work")],
))


@app.task("bad_input_fetch", queue_name="work")
def fetch(url: str) -> TaskResult[str, TaskError]:
    return TaskResult(ok=url)


@app.task("bad_input_parse", queue_name="work")
def parse(raw: TaskResult[str, TaskError]) -> TaskResult[int, TaskError]:
    return TaskResult(ok=len(raw.ok_value) if raw.is_ok() else 0)


@pytest.fixture
def broker(pg_url: str) -> Iterator[Any]:
    app.config = AppConfig(broker=PostgresConfig(database_url=pg_url),
                           queue_mode=QueueMode.CUSTOM,
                           custom_queues=[CustomQueueConfig(name="work")])
    app._broker = None
    yield app.get_broker()
    app.get_broker().close()
    app._broker = None


def rows(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        return tuple(conn.execute(  # type: ignore[return-value]
            "SELECT (SELECT count(*) FROM horsies_workflows),"
            " (SELECT count(*) FROM horsies_workflow_tasks),"
            " (SELECT count(*) FROM horsies_tasks)").fetchone())


def messages(build: Callable[[], Any]) -> str:
    with pytest.raises(HorsiesError) as caught:
        build()
    error = caught.value
    found = error.errors if isinstance(error, MultipleValidationErrors) else [error]
    return "\n".join(str(e) for e in found)


def cycle() -> Any:
    root = TaskNode(fetch, kwargs={"url": "u"}, node_id="root")
    left = TaskNode(fetch, kwargs={"url": "l"}, node_id="left", waits_for=[root])
    right = TaskNode(fetch, kwargs={"url": "r"}, node_id="right", waits_for=[left])
    left.waits_for.append(right)
    return app.workflow("cycle", [root, left, right], definition_key="bad.cycle")


def unknown_source() -> Any:
    root = TaskNode(fetch, kwargs={"url": "u"}, node_id="root")
    stranger = TaskNode(fetch, kwargs={"url": "s"}, node_id="stranger")
    reader = TaskNode(parse, node_id="reader", waits_for=[root], args_from={"raw": stranger})
    return app.workflow("unknown_source", [root, reader], definition_key="bad.source")


def unknown_queue() -> Any:
    return app.workflow("unknown_queue", [
        TaskNode(fetch, kwargs={"url": "u"}, node_id="lost", queue="nowhere")],
        definition_key="bad.queue")


def unserializable() -> Any:
    return app.workflow("unserializable", [
        TaskNode(fetch, kwargs={"url": {1, 2}}, node_id="setful")],
        definition_key="bad.kwarg")


@pytest.mark.parametrize(("build", "names"), [
    (cycle, ["left", "right"]),
    (unknown_source, ["reader", "raw", "stranger"]),
    (unknown_queue, ["lost", "nowhere"]),
    (unserializable, ["setful", "url"]),
])
def test_refused_with_the_node_named_and_nothing_written(
        broker: Any, pg_url: str, build: Callable[[], Any], names: list[str]) -> None:
    text = messages(build)
    for name in names:
        assert name in text, text
    assert rows(pg_url) == (0, 0, 0)
    good = app.workflow("good", [TaskNode(fetch, kwargs={"url": "u"}, node_id="ok")],
                        definition_key="good.v1")
    handle = good.start().unwrap()
    assert handle.status().unwrap() == WorkflowStatus.RUNNING
    assert rows(pg_url) == (1, 1, 1)


def test_a_spec_built_without_the_app_is_checked_again_at_start(broker: Any,
                                                                pg_url: str) -> None:
    """A spec made with WorkflowSpec(...) meets the broker's app only at start: an
    unknown queue is a VALIDATION_FAILED error value naming the node, and no row."""
    spec = WorkflowSpec("detached", [
        TaskNode(fetch, kwargs={"url": "u"}, node_id="drifter", queue="elsewhere")],
        definition_key="bad.detached")
    error = start_workflow(spec, broker).unwrap_err()
    assert error.code == WorkflowStartErrorCode.VALIDATION_FAILED
    assert "drifter" in error.message and "elsewhere" in error.message
    assert not error.retryable
    assert rows(pg_url) == (0, 0, 0)


def test_a_refusal_without_a_broker_still_names_a_workflow_id() -> None:
    spec = WorkflowSpec("orphan", [TaskNode(fetch, kwargs={"url": "u"}, node_id="only")],
                        definition_key="bad.orphan")
    error = spec.start().unwrap_err()
    assert error.code == WorkflowStartErrorCode.BROKER_NOT_CONFIGURED
    assert is_uuid(error.workflow_id)
