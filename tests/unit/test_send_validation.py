"""The send paths up to the write: suppression, options, queue, binding, encoding,
retry_send checks, send_many steps 1-5 (tasks.md §4.1, §8.1, §9.3, §11).

Every case here returns before any database access: the broker URL points
nowhere, and `app._broker` staying None shows get_broker() was never called.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from horsies import (
    AppConfig,
    Call,
    CustomQueueConfig,
    Err,
    Horsies,
    Ok,
    PostgresConfig,
    QueueMode,
    RetryPolicy,
    TaskError,
    TaskResult,
    TaskSendError,
    TaskSendErrorCode,
    TaskSendPayload,
)
from horsies.tasks.send_types import enqueue_sha

NOWHERE = "postgresql://u@127.0.0.1:1/x"
SUPPRESSED = TaskSendErrorCode.SEND_SUPPRESSED
INVALID = TaskSendErrorCode.VALIDATION_FAILED


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HORSIES_DATABASE_URL",
        "HORSIES_SUPPRESS_SENDS",
        "TASKLIB_SUPPRESS_SENDS",
        "HORSIES_CHILD_PROCESS",
    ):
        monkeypatch.delenv(name, raising=False)


def default_app() -> Horsies:
    return Horsies(AppConfig(broker=PostgresConfig(database_url=NOWHERE)))


def custom_config(*names: str) -> AppConfig:
    return AppConfig(
        queue_mode=QueueMode.CUSTOM,
        custom_queues=[CustomQueueConfig(name=n, priority=10) for n in names],
        broker=PostgresConfig(database_url=NOWHERE),
    )


def resize(path: str, width: int = 100, *, keep_ratio: bool = True) -> TaskResult[str, TaskError]:
    return TaskResult(ok=f"{path}:{width}:{keep_ratio}")


def with_workflow_params(
    x: int, workflow_ctx: Any = None, workflow_meta: Any = None
) -> TaskResult[int, TaskError]:
    return TaskResult(ok=x)


@pytest.fixture
def app() -> Iterator[Horsies]:
    app = default_app()
    yield app
    assert app._broker is None, "get_broker() was called: a case reached the database"


@pytest.fixture
def task(app: Horsies) -> Any:
    return app.task("resize", resize)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def error_of(result: Any, code: TaskSendErrorCode = INVALID) -> TaskSendError:
    assert isinstance(result, Err), result
    error = result.err_value
    assert isinstance(error, TaskSendError)
    assert error.code is code, (error.code, error.message)
    assert error.retryable is False
    assert error.task_id is None
    assert error.payload is None
    return error


def send_paths(target: Any) -> dict[str, Callable[..., Any]]:
    """Every single-send entry point of a task or TaskSendOptions, as sync callables."""
    return {
        "send": lambda *a, **k: target.send(*a, **k),
        "send_async": lambda *a, **k: run(target.send_async(*a, **k)),
        "schedule": lambda *a, **k: target.schedule(5, *a, **k),
        "schedule_async": lambda *a, **k: run(target.schedule_async(5, *a, **k)),
    }


# --- §11 suppression -------------------------------------------------------------------


def test_suppression_switch(app: Horsies, task: Any) -> None:
    assert app.are_sends_suppressed() is False
    app.suppress_sends()
    assert app.are_sends_suppressed() is True
    for name, send in send_paths(task).items():
        error = error_of(send("a.png"), SUPPRESSED)
        assert "resize" in error.message and "suppressed" in error.message, name
    app.suppress_sends(False)
    assert app.are_sends_suppressed() is False


def test_suppression_comes_first(app: Horsies, task: Any) -> None:
    app.suppress_sends(True)
    naive = datetime(2030, 1, 1)
    # Bad options, bad delay, unbindable and unencodable arguments: still suppressed.
    error_of(task.with_options(good_until=naive, priority=0).send(1, 2, 3, 4), SUPPRESSED)
    error_of(task.schedule(-1, {1, 2}), SUPPRESSED)
    error_of(run(task.with_options(connection=object()).send_async()), SUPPRESSED)
    error_of(task.send(workflow_ctx=1), SUPPRESSED)


@pytest.mark.parametrize(
    "variable, value",
    [
        ("HORSIES_SUPPRESS_SENDS", "1"),
        ("HORSIES_SUPPRESS_SENDS", " 1\n"),
        ("TASKLIB_SUPPRESS_SENDS", "1"),
        ("TASKLIB_SUPPRESS_SENDS", "\t1 "),
    ],
)
def test_suppression_by_environment(
    app: Horsies, task: Any, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert app.are_sends_suppressed() is True
    for send in send_paths(task).values():
        error_of(send("a.png"), SUPPRESSED)
    error_of(task.send_many([("a.png",)]), SUPPRESSED)


@pytest.mark.parametrize("value", ["0", "", "true", "yes", "11", "on"])
def test_other_environment_values_do_not_suppress(
    app: Horsies, task: Any, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HORSIES_SUPPRESS_SENDS", value)
    monkeypatch.setenv("TASKLIB_SUPPRESS_SENDS", value)
    assert app.are_sends_suppressed() is False
    error_of(task.with_options(priority=0).send("a.png"))  # validated, not suppressed


def test_suppression_is_per_app(app: Horsies, task: Any) -> None:
    other = default_app()
    other_task = other.task("resize", resize)
    app.suppress_sends(True)
    error_of(task.with_options(priority=0).send("a.png"), SUPPRESSED)
    error_of(other_task.with_options(priority=0).send("a.png"), INVALID)
    assert other._broker is None


# --- §4.1 step 2: options ----------------------------------------------------------


AWARE = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"good_until": datetime(2030, 1, 1)}, "good_until"),
        ({"good_until": "2030-01-01T00:00:00+00:00"}, "good_until"),
        ({"good_until": AWARE.date()}, "good_until"),
        ({"good_until": 1_900_000_000}, "good_until"),
        # Aware, but not representable in UTC: refused, not raised from the fingerprint.
        ({"good_until": datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))}, "good_until"),
        ({"good_until": datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))}, "good_until"),
        ({"priority": 0}, "priority"),
        ({"priority": 101}, "priority"),
        ({"priority": -5}, "priority"),
        ({"priority": True}, "priority"),
        ({"priority": False}, "priority"),
        ({"priority": 5.0}, "priority"),
        ({"priority": "5"}, "priority"),
        ({"connection": object()}, "connection"),
        ({"connection": NOWHERE}, "connection"),
    ],
)
def test_bad_options(task: Any, options: dict[str, Any], fragment: str) -> None:
    sender = task.with_options(**options)  # no validation here
    for name, send in send_paths(sender).items():
        error = error_of(send("a.png"))
        assert fragment in error.message, (name, error.message)
        assert error.index is None


@pytest.mark.parametrize("delay", [-1, True, False, 1.5, "10", None])
def test_bad_delay(task: Any, delay: Any) -> None:
    for result in (
        task.schedule(delay, "a.png"),
        run(task.schedule_async(delay, "a.png")),
        task.with_options(priority=5).schedule(delay, "a.png"),
    ):
        assert "delay" in error_of(result).message


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"good_until": None},
        {"good_until": AWARE},
        {"good_until": datetime(2001, 1, 1, tzinfo=timezone(timedelta(hours=-3)))},  # past
        {"priority": 1},
        {"priority": 100},
        {"priority": None},
    ],
)
def test_good_options_pass_step_2(task: Any, options: dict[str, Any]) -> None:
    # Valid options, then an argument binding error: the failure is at step 4.
    sender = task.with_options(**options)
    for send in send_paths(sender).values():
        message = error_of(send()).message  # `path` is missing
        assert "path" in message
    assert "delay" not in error_of(task.schedule(0)).message


def test_options_before_queue_and_arguments(app: Horsies, task: Any) -> None:
    app.config = custom_config("other")  # the task's queue is now invalid too
    message = error_of(task.with_options(priority=0).send(1, 2, 3, 4)).message
    assert "priority" in message
    message = error_of(task.schedule(-1, 1, 2, 3, 4)).message
    assert "delay" in message


def test_wrong_connection_kind_for_async(task: Any) -> None:
    error = error_of(run(task.with_options(connection=object()).send_async("a.png")))
    assert "connection" in error.message


# --- §4.1 step 3: queue --------------------------------------------------------------


def test_queue_revalidated_at_send(app: Horsies, task: Any) -> None:
    app.config = custom_config("reports")
    error = error_of(task.send(1, 2, 3, 4))  # queue before arguments
    assert error.message.startswith("Queue validation failed for resize: ")
    assert "CUSTOM" in error.message


def test_unknown_custom_queue_at_send() -> None:
    app = Horsies(custom_config("reports", "mail"))
    task = app.task("render", resize, queue_name="mail")
    app.config = custom_config("reports")
    for name, send in send_paths(task).items():
        error = error_of(send("a.png"))
        assert error.message.startswith("Queue validation failed for render: "), name
        assert "mail" in error.message and "reports" in error.message
    error = error_of(task.send_many([]))
    assert error.message.startswith("Queue validation failed for render: ")
    assert error.index is None
    assert app._broker is None


# --- §4.1 step 4: binding ------------------------------------------------------------


def _bind_error(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(TypeError) as info:
        inspect.signature(fn).bind(*args, **kwargs)
    return str(info.value)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((), {}),  # missing required
        (("a.png",), {"height": 5}),  # unknown keyword
        (("a.png", 1, 2), {}),  # too many positional
        (("a.png", 1), {"width": 2}),  # given twice
        (("a.png",), {"keep_ratio": True, "path": "b.png"}),
    ],
)
def test_arguments_must_bind(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    expected = _bind_error(resize, *args, **kwargs)
    for name, send in send_paths(task).items():
        error = error_of(send(*args, **kwargs))
        assert expected in error.message, (name, error.message)


@pytest.mark.parametrize("injected", ["workflow_ctx", "workflow_meta"])
def test_workflow_parameters_cannot_be_sent(app: Horsies, injected: str) -> None:
    task = app.task("wf", with_workflow_params)
    for send in send_paths(task).values():
        error = error_of(send(1, **{injected: None}))
        assert injected in error.message
    error = error_of(task.send_many([Call(1, **{injected: {}})]))
    assert error.index == 0 and injected in error.message


# --- §4.1 step 6: encoding -----------------------------------------------------------


def test_unencodable_argument_names_its_position(task: Any) -> None:
    error = error_of(task.send({1, 2}))
    assert "args[0]" in error.message
    error = error_of(task.send("a.png", keep_ratio=[1, 2, 3, object()]))
    assert 'kwargs["keep_ratio"][3]' in error.message
    error = error_of(run(task.schedule_async(3, "a.png", {"k": object()})))
    assert 'args[1]["k"]' in error.message


# --- §4.1 steps 5-8 on the internal pipeline: the payload a send would write ----------


def test_prepared_payload(app: Horsies) -> None:
    from horsies.tasks.send import NOT_GIVEN, SendOptions

    policy = RetryPolicy.fixed([10, 20], auto_retry_for=["UPSTREAM_DOWN"])
    task = app.task("resize", resize, retry_policy=policy)
    before = datetime.now(UTC)
    prepared = task._sender.prepare(SendOptions(), ("café.png",), {}, NOT_GIVEN, is_async=False)
    payload = prepared.payload
    assert uuid.UUID(prepared.task_id).version == 7
    assert str(uuid.UUID(prepared.task_id)) == prepared.task_id
    assert payload.task_name == "resize"
    assert payload.queue_name == "default"
    assert payload.priority == 100
    assert orjson.loads(payload.args_json) == ["café.png"]
    assert payload.kwargs_json is None
    assert payload.sent_at.utcoffset() == timedelta(0)
    assert before <= payload.sent_at <= datetime.now(UTC)
    assert payload.good_until is None
    assert payload.enqueue_delay_seconds is None
    document = orjson.loads(payload.task_options)
    assert set(document) == {"retry_policy", "good_until"}
    assert document["good_until"] is None
    assert document["retry_policy"]["max_retries"] == 2
    assert document["retry_policy"]["auto_retry_for"] == ["UPSTREAM_DOWN"]
    fields = {f: getattr(payload, f) for f in TaskSendPayload.__slots__ if f != "enqueue_sha"}
    assert payload.enqueue_sha == enqueue_sha(**fields)


def test_prepared_priority_and_deadline() -> None:
    from horsies.tasks.send import NOT_GIVEN, SendOptions

    app = Horsies(custom_config("mail"))
    task = app.task("render", resize, queue_name="mail")
    no_args = task._sender.prepare(SendOptions(), (), {"path": "a"}, 30, is_async=True)
    assert no_args.payload.priority == 10  # the queue's priority
    assert no_args.payload.args_json is None
    assert orjson.loads(no_args.payload.kwargs_json) == {"path": "a"}
    assert no_args.payload.enqueue_delay_seconds == 30
    deadline = datetime(2030, 5, 4, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    options = SendOptions(good_until=deadline, priority=3)
    urgent = task._sender.prepare(options, ("a",), {}, NOT_GIVEN, is_async=False)
    assert urgent.payload.priority == 3
    assert urgent.payload.good_until == deadline
    assert orjson.loads(urgent.payload.task_options) == {
        "retry_policy": None,
        "good_until": deadline.isoformat(),
    }
    assert urgent.task_id > no_args.task_id
    assert app._broker is None


# --- §8.1 retry checks 1-5 -----------------------------------------------------------


def make_payload(task_name: str = "resize", delay: int | None = None) -> TaskSendPayload:
    fields: dict[str, Any] = {
        "task_name": task_name,
        "queue_name": "default",
        "priority": 100,
        "args_json": '["a.png"]',
        "kwargs_json": None,
        "sent_at": datetime(2030, 1, 1, tzinfo=UTC),
        "good_until": None,
        "enqueue_delay_seconds": delay,
        "task_options": '{"retry_policy":null,"good_until":null}',
    }
    return TaskSendPayload(**fields, enqueue_sha=enqueue_sha(**fields))


def enqueue_failed(**changes: Any) -> TaskSendError:
    fields: dict[str, Any] = {
        "code": TaskSendErrorCode.ENQUEUE_FAILED,
        "message": "could not enqueue",
        "retryable": True,
        "task_id": "0190b3c1-0000-7000-8000-000000000001",
        "payload": make_payload(),
    }
    fields.update(changes)
    return TaskSendError(**fields)


def retry_paths(task: Any) -> dict[str, Callable[[Any], Any]]:
    return {
        "retry_send": task.retry_send,
        "retry_send_async": lambda e: run(task.retry_send_async(e)),
        "retry_schedule": task.retry_schedule,
        "retry_schedule_async": lambda e: run(task.retry_schedule_async(e)),
    }


def test_retry_check_1_suppression(app: Horsies, task: Any) -> None:
    app.suppress_sends(True)
    for error in (enqueue_failed(), enqueue_failed(code=INVALID, payload=None), "junk"):
        for retry in retry_paths(task).values():
            error_of(retry(error), SUPPRESSED)


@pytest.mark.parametrize(
    "code", [SUPPRESSED, INVALID, TaskSendErrorCode.PAYLOAD_MISMATCH]
)
def test_retry_check_2_only_enqueue_failed(task: Any, code: TaskSendErrorCode) -> None:
    # Everything else about the error would be replayable.
    for name, retry in retry_paths(task).items():
        delay = 5 if "schedule" in name else None
        error = enqueue_failed(code=code, payload=make_payload(delay=delay))
        assert "ENQUEUE_FAILED" in error_of(retry(error)).message


def test_retry_check_2_not_an_error(task: Any) -> None:
    for retry in retry_paths(task).values():
        error_of(retry(None))
        error_of(retry(Err("x")))


@pytest.mark.parametrize("missing", ["payload", "task_id"])
def test_retry_check_3_payload_and_id(task: Any, missing: str) -> None:
    for retry in retry_paths(task).values():
        error = enqueue_failed(**{missing: None})
        assert "payload" in error_of(retry(error)).message
    bulk = enqueue_failed(payload=None, task_id=None, task_ids=("a", "b"))
    error_of(task.retry_send(bulk))


def test_retry_check_4_cross_task(task: Any) -> None:
    for name, retry in retry_paths(task).items():
        delay = 5 if "schedule" in name else None
        error = enqueue_failed(payload=make_payload(task_name="other", delay=delay))
        message = error_of(retry(error)).message
        assert "other" in message and "resize" in message


def test_retry_check_5_send_versus_schedule(task: Any) -> None:
    from_send = enqueue_failed(payload=make_payload(delay=None))
    from_schedule = enqueue_failed(payload=make_payload(delay=0))
    assert "retry_schedule" in error_of(task.retry_send(from_schedule)).message
    assert "retry_schedule" in error_of(run(task.retry_send_async(from_schedule))).message
    assert "retry_send" in error_of(task.retry_schedule(from_send)).message
    assert "retry_send" in error_of(run(task.retry_schedule_async(from_send))).message


def test_retry_checks_run_in_order(task: Any) -> None:
    # 2 before 3: a VALIDATION_FAILED error also lacks a payload.
    message = error_of(task.retry_send(enqueue_failed(code=INVALID, payload=None))).message
    assert "ENQUEUE_FAILED" in message
    # 3 before 4.
    message = error_of(task.retry_send(enqueue_failed(payload=None, task_id=None))).message
    assert "payload" in message
    # 4 before 5: another task's scheduled error given to retry_send.
    error = enqueue_failed(payload=make_payload(task_name="other", delay=5))
    assert "other" in error_of(task.retry_send(error)).message


# --- §9.3 send_many steps 1-5 ----------------------------------------------------------


def many_paths(target: Any) -> dict[str, Callable[[Any], Any]]:
    return {
        "send_many": target.send_many,
        "send_many_async": lambda calls: run(target.send_many_async(calls)),
    }


def many_error(result: Any, code: TaskSendErrorCode = INVALID) -> TaskSendError:
    error = error_of(result, code)
    assert error.task_ids is None
    return error


def test_many_suppressed_even_when_empty(app: Horsies, task: Any) -> None:
    app.suppress_sends(True)
    for send_many in (*many_paths(task).values(), *many_paths(task.with_options()).values()):
        many_error(send_many([]), SUPPRESSED)
        many_error(send_many(5), SUPPRESSED)
        many_error(send_many([[1]]), SUPPRESSED)


def test_many_options_before_the_iterable(task: Any) -> None:
    for send_many in many_paths(task.with_options(priority=101)).values():
        error = many_error(send_many([]))
        assert "priority" in error.message and error.index is None
        assert "priority" in many_error(send_many(5)).message
    naive = task.with_options(good_until=datetime(2030, 1, 1))
    assert "good_until" in many_error(naive.send_many([("a",)])).message
    too_late = datetime.max.replace(tzinfo=timezone(-timedelta(hours=1)))
    beyond = task.with_options(good_until=too_late)
    assert "good_until" in many_error(beyond.send_many([("a",)])).message
    wrong = task.with_options(connection=object())
    assert "connection" in many_error(run(wrong.send_many_async([]))).message


@pytest.mark.parametrize(
    "calls",
    [5, None, "ab", b"ab", bytearray(b"ab"), {"a": 1}, MappingProxyType({}), object()],
    ids=["int", "none", "str", "bytes", "bytearray", "dict", "mapping", "object"],
)
def test_many_needs_an_iterable_of_items(task: Any, calls: Any) -> None:
    for send_many in many_paths(task).values():
        error = many_error(send_many(calls))
        assert error.index is None


def test_many_empty_batch_is_ok_without_database(task: Any) -> None:
    for send_many in many_paths(task).values():
        for calls in ([], (), iter([]), (c for c in []), set(), range(0)):
            result = send_many(calls)
            assert isinstance(result, Ok) and result.ok_value == []
    assert task.with_options(priority=1).send_many([]) == Ok([])


def test_many_refuses_lists(task: Any) -> None:
    for send_many in many_paths(task).values():
        error = many_error(send_many([("a.png",), ["b.png"], ("c.png",)]))
        assert error.index == 1
        assert error.message.startswith("item 1: ")
        assert "list" in error.message


def test_many_first_invalid_item_wins(task: Any) -> None:
    calls = [("a.png",), Call("b.png", width=3), ("c.png", 1, 2, 3), ["d"], ({1},)]
    expected = _bind_error(resize, "c.png", 1, 2, 3)
    for send_many in many_paths(task).values():
        error = many_error(send_many(calls))
        assert error.index == 2
        assert error.message.startswith("item 2: ")
        assert expected in error.message


def test_many_binding_and_encoding_errors(task: Any) -> None:
    error = many_error(task.send_many([Call("a.png", height=5)]))
    assert error.index == 0
    assert error.message.startswith("item 0: ")
    assert _bind_error(resize, "a.png", height=5) in error.message
    error = many_error(task.send_many([(), ("a",)]))
    assert error.index == 0
    error = many_error(task.send_many(iter([("a",), ("b", 1), ("c", object())])))
    assert error.index == 2
    assert error.message.startswith("item 2: ") and "args[1]" in error.message
    error = many_error(run(task.send_many_async([Call("a", keep_ratio={1})])))
    assert error.index == 0 and 'kwargs["keep_ratio"]' in error.message


def test_many_items_may_be_calls_from_the_task(task: Any) -> None:
    assert task.call("a.png", 5, keep_ratio=False) == Call("a.png", 5, keep_ratio=False)
    error = many_error(task.send_many([task.call("a.png"), task.call()]))
    assert error.index == 1
