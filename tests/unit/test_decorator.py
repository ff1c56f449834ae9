"""@app.task: definition-time checks, refused options, the task function object,
direct calls (tasks.md §1, §3). No database."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import AsyncIterator, Callable, Iterator
from types import MappingProxyType
from typing import Any

import pytest

from horsies import (
    AppConfig,
    ConfigurationError,
    CustomQueueConfig,
    Horsies,
    OperationalErrorCode,
    PostgresConfig,
    QueueMode,
    RegistryError,
    RetryPolicy,
    TaskDefinitionError,
    TaskError,
    TaskFunction,
    TaskResult,
)
from horsies.errors import DuplicateTaskNameError, ErrorCode, HorsiesError

NOWHERE = "postgresql://u@127.0.0.1:1/x"

OPTIONS = ErrorCode.TASK_INVALID_OPTIONS  # HRS-102
MAPPER = ErrorCode.CONFIG_INVALID_EXCEPTION_MAPPER  # HRS-209


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HORSIES_DATABASE_URL", "HORSIES_SUPPRESS_SENDS", "TASKLIB_SUPPRESS_SENDS"):
        monkeypatch.delenv(name, raising=False)


def default_app() -> Horsies:
    return Horsies(AppConfig(broker=PostgresConfig(database_url=NOWHERE)))


def custom_app(*names: str) -> Horsies:
    return Horsies(
        AppConfig(
            queue_mode=QueueMode.CUSTOM,
            custom_queues=[CustomQueueConfig(name=n, priority=10) for n in names],
            broker=PostgresConfig(database_url=NOWHERE),
        )
    )


class CustomError(TaskError, kw_only=True, frozen=True):
    pass


def good() -> TaskResult[int, TaskError]:
    return TaskResult(ok=1)


def call_task(app: Horsies, *args: Any, **kwargs: Any) -> Any:
    return app.task(*args, **kwargs)  # checks 1-2 point at this line


CALL_LINE = call_task.__code__.co_firstlineno + 1


def definition_error(
    app: Horsies, fn: Any, name: str = "t", **options: Any
) -> HorsiesError:
    """The error applying `app.task(name, **options)` to `fn` raises."""
    decorator = app.task(name, **options)
    with pytest.raises(HorsiesError) as info:
        decorator(fn)
    return info.value


def assert_at_function(error: HorsiesError, fn: Any) -> None:
    code = fn.__code__
    assert error.location is not None
    assert error.location.file == code.co_filename
    assert error.location.line == code.co_firstlineno


# --- checks 1-2: at app.task(...) time, caller's location ----------------------------


@pytest.mark.parametrize("name", ["", "x" * 256, None, b"name", 5, ("a",)])
def test_check_1_task_name(name: Any) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        call_task(default_app(), name)  # raises before anything is decorated
    assert info.value.code is OPTIONS
    assert info.value.code.value == "HRS-102"
    assert info.value.location is not None
    assert info.value.location.file == __file__
    assert info.value.location.line == CALL_LINE


def test_check_1_name_of_255_characters_is_accepted() -> None:
    app = default_app()
    task = app.task("x" * 255, good)
    assert task.task_name == "x" * 255


def test_bare_decorator_is_refused_at_once() -> None:
    with pytest.raises(TaskDefinitionError) as info:
        call_task(default_app(), good)  # what `@app.task` without a name does
    assert info.value.code is OPTIONS
    assert info.value.location is not None
    assert info.value.location.line == CALL_LINE


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"good_until": None}, "with_options"),
        ({"good_until": "2030-01-01T00:00:00+00:00"}, "with_options"),
        ({"auto_retry_for": ["X"]}, "RetryPolicy.fixed"),
        ({"timeout_ms": 5}, None),
        ({"queue": "default"}, None),
    ],
)
def test_check_2_refused_options(options: dict[str, Any], fragment: str | None) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        call_task(default_app(), "t", **options)
    error = info.value
    assert error.code is OPTIONS
    assert error.location is not None
    assert (error.location.file, error.location.line) == (__file__, CALL_LINE)
    if fragment is not None:
        assert error.help_text is not None and fragment in error.help_text
    if "good_until" in options:
        assert "node(" in (error.help_text or "")


def test_check_1_before_check_2() -> None:
    with pytest.raises(TaskDefinitionError) as info:
        default_app().task("", good_until=None)
    assert "name" in info.value.message


# --- checks 3-11: when applied, function's location ----------------------------------


def test_check_3_exception_mapper() -> None:
    error = definition_error(
        default_app(), good, exception_mapper={"ValueError": "BAD_VALUE", KeyError: "lower"}
    )
    assert isinstance(error, TaskDefinitionError)
    assert error.code is MAPPER
    assert error.code.value == "HRS-209"
    assert len(error.notes) == 2  # one note per problem
    assert_at_function(error, good)


def test_check_3_exception_mapper_not_a_dict() -> None:
    error = definition_error(default_app(), good, exception_mapper=[(ValueError, "BAD")])
    assert isinstance(error, TaskDefinitionError)
    assert error.code is MAPPER


@pytest.mark.parametrize("code", ["lower_case", "", "ValueError", 5])
def test_check_4_default_unhandled_error_code(code: Any) -> None:
    error = definition_error(default_app(), good, default_unhandled_error_code=code)
    assert isinstance(error, TaskDefinitionError)
    assert error.code is MAPPER
    assert_at_function(error, good)


@pytest.mark.parametrize(
    "options",
    [{"retry_policy": "fixed"}, {"retry_policy": {"max_retries": 3}}, {"queue_name": 5}],
)
def test_check_5_option_types(options: dict[str, Any]) -> None:
    error = definition_error(default_app(), good, **options)
    assert isinstance(error, TaskDefinitionError)
    assert error.code is OPTIONS
    assert_at_function(error, good)


@pytest.mark.parametrize(
    "app_factory, queue_name, code",
    [
        (default_app, "default", ErrorCode.CONFIG_INVALID_QUEUE_MODE),
        (lambda: custom_app("reports"), None, ErrorCode.CONFIG_INVALID_QUEUE_MODE),
        (lambda: custom_app("reports"), "mail", ErrorCode.TASK_INVALID_QUEUE),
    ],
)
def test_check_6_queue_name(
    app_factory: Callable[[], Horsies], queue_name: str | None, code: ErrorCode
) -> None:
    options = {} if queue_name is None else {"queue_name": queue_name}
    error = definition_error(app_factory(), good, **options)
    assert isinstance(error, ConfigurationError)
    assert error.code is code
    assert_at_function(error, good)


class _CallableObject:
    def __call__(self) -> TaskResult[int, TaskError]:
        return TaskResult(ok=1)


@pytest.mark.parametrize(
    "target",
    [len, functools.partial(good), _CallableObject(), _CallableObject, "good", None],
    ids=["builtin", "partial", "callable-object", "class", "string", "none"],
)
def test_check_7_needs_a_python_function(target: Any) -> None:
    error = definition_error(default_app(), target)
    assert isinstance(error, TaskDefinitionError)
    assert error.code is OPTIONS


def _wrapped_with_wraps() -> Callable[..., Any]:
    @functools.wraps(good)
    def wrapper(*args: Any, **kwargs: Any) -> TaskResult[int, TaskError]:
        return good(*args, **kwargs)

    return wrapper


def _closure_wrapper() -> Callable[..., Any]:
    inner = good

    def wrapper() -> TaskResult[int, TaskError]:
        return inner()

    return wrapper


def test_check_7_already_decorated_with_wraps() -> None:
    fn = _wrapped_with_wraps()
    error = definition_error(default_app(), fn)
    assert isinstance(error, TaskDefinitionError)
    assert error.code is ErrorCode.TASK_PREDECORATED_NOT_SUPPORTED
    assert error.code.value == "HRS-104"
    assert error.help_text is not None and "undecorated" in error.help_text
    assert_at_function(error, fn)


def test_check_7_closure_holding_a_function() -> None:
    fn = _closure_wrapper()
    error = definition_error(default_app(), fn)
    assert error.code is ErrorCode.TASK_PREDECORATED_NOT_SUPPORTED
    assert_at_function(error, fn)


def test_check_7_closure_over_plain_values_is_fine() -> None:
    factor = 3

    def scaled() -> TaskResult[int, TaskError]:
        return TaskResult(ok=factor)

    assert default_app().task("scaled", scaled)().ok == 3


@pytest.mark.parametrize("same_app", [True, False])
def test_check_7_a_task_function_is_already_decorated(same_app: bool) -> None:
    first = default_app()
    task = first.task("original", good)
    target = first if same_app else default_app()
    error = definition_error(target, task, name="again")
    assert isinstance(error, TaskDefinitionError)
    assert error.code is ErrorCode.TASK_PREDECORATED_NOT_SUPPORTED
    assert target.list_tasks() == (["original"] if same_app else [])


async def _async_task() -> TaskResult[int, TaskError]:
    return TaskResult(ok=1)


def _generator_task() -> Iterator[TaskResult[int, TaskError]]:
    yield TaskResult(ok=1)


async def _async_generator_task() -> AsyncIterator[TaskResult[int, TaskError]]:
    yield TaskResult(ok=1)


@pytest.mark.parametrize("fn", [_async_task, _generator_task, _async_generator_task])
def test_check_8_must_be_synchronous(fn: Any) -> None:
    error = definition_error(default_app(), fn)
    assert isinstance(error, TaskDefinitionError)
    assert error.code is OPTIONS
    assert_at_function(error, fn)


def _no_annotation():  # type: ignore[no-untyped-def]
    return TaskResult(ok=1)


def test_check_9_return_annotation_required() -> None:
    error = definition_error(default_app(), _no_annotation)
    assert isinstance(error, TaskDefinitionError)
    assert error.code is ErrorCode.TASK_NO_RETURN_TYPE
    assert error.code.value == "HRS-100"
    assert_at_function(error, _no_annotation)


@pytest.mark.parametrize(
    "annotation",
    [
        "int",
        "TaskResult",
        "TaskResult[int]",
        "TaskResult[int, TaskError, int]",
        "TaskResult[int, ValueError]",
        "TaskResult[int, str]",
        "list[TaskResult[int, TaskError]]",
        "NoSuchName",
        "os.no_such_attribute",
        "TaskResult[int, TaskError",
        "1 / 0",
    ],
)
def test_check_10_return_annotation_shape(annotation: str) -> None:
    # "os.no_such_attribute" resolves `os` in this module, then fails on the attribute.
    assert globals()["os"] is os

    def fn() -> None: ...

    fn.__annotations__["return"] = annotation
    error = definition_error(default_app(), fn)
    assert isinstance(error, TaskDefinitionError)
    assert error.code is ErrorCode.TASK_INVALID_RETURN_TYPE
    assert error.code.value == "HRS-101"
    assert_at_function(error, fn)


def test_check_10_string_annotation_resolves_in_the_module() -> None:
    # This module uses `from __future__ import annotations`: every annotation is a
    # string, evaluated in the module's globals (CustomError lives there).
    def with_custom_error() -> TaskResult[list[int], CustomError]:
        return TaskResult(ok=[1])

    task = default_app().task("custom_error", with_custom_error)
    assert task.task_ok_type == list[int]


def test_check_11_duplicate_name() -> None:
    app = default_app()
    app.task("dup", good)

    def other() -> TaskResult[int, TaskError]:
        return TaskResult(ok=2)

    error = definition_error(app, other, name="dup")
    assert isinstance(error, RegistryError)
    assert isinstance(error, DuplicateTaskNameError)
    assert error.code is ErrorCode.TASK_DUPLICATE_NAME
    assert_at_function(error, other)
    assert app.tasks["dup"].__wrapped__ is good


def test_check_11_same_source_is_ignored() -> None:
    app = default_app()
    first = app.task("same", good)
    second = app.task("same", good)  # same file and line: a double import
    assert app.tasks["same"] is first
    assert second is first
    assert app.list_tasks() == ["same"]


# --- check order ---------------------------------------------------------------------


def _async_without_annotation():  # type: ignore[no-untyped-def]
    async def inner():  # type: ignore[no-untyped-def]
        return None

    return inner


def _async_wrapper() -> Callable[..., Any]:
    @functools.wraps(_async_task)
    async def wrapper() -> TaskResult[int, TaskError]:
        return await _async_task()

    return wrapper


def test_checks_run_in_order() -> None:
    app = default_app()
    # 3 before 4: both HRS-209; the mapper is reported.
    error = definition_error(
        app, good, exception_mapper={"x": "CODE"}, default_unhandled_error_code="bad"
    )
    assert "exception_mapper" in error.message
    # 4 before 5.
    error = definition_error(app, good, default_unhandled_error_code="bad", retry_policy="x")
    assert error.code is MAPPER
    # 5 before 6.
    error = definition_error(app, good, retry_policy="x", queue_name="nope")
    assert error.code is OPTIONS
    # 6 before 7.
    error = definition_error(app, len, queue_name="nope")
    assert error.code is ErrorCode.CONFIG_INVALID_QUEUE_MODE
    # 7 before 8: a wrapped coroutine function is "already decorated".
    error = definition_error(app, _async_wrapper())
    assert error.code is ErrorCode.TASK_PREDECORATED_NOT_SUPPORTED
    # 8 before 9.
    error = definition_error(app, _async_without_annotation())
    assert error.code is OPTIONS
    # 9 before 11, 10 before 11.
    app.task("taken", good)
    assert definition_error(app, _no_annotation, name="taken").code is ErrorCode.TASK_NO_RETURN_TYPE

    def bad_return() -> int:
        return 1

    assert definition_error(app, bad_return, name="taken").code is (
        ErrorCode.TASK_INVALID_RETURN_TYPE
    )
    assert app.list_tasks() == ["taken"]


def test_failed_definitions_register_nothing() -> None:
    app = default_app()
    definition_error(app, _no_annotation)
    definition_error(app, good, retry_policy="x")
    assert app.list_tasks() == []


# --- the task function object --------------------------------------------------------


def documented(text: str, *, times: int = 1) -> TaskResult[str, TaskError]:
    """Repeat text."""
    return TaskResult(ok=text * times)


def test_task_function_attributes() -> None:
    app = default_app()
    task = app.task("repeat", documented)
    assert isinstance(task, TaskFunction)
    assert task.__name__ == "documented"
    assert task.__qualname__ == "documented"
    assert task.__module__ == __name__
    assert task.__doc__ == "Repeat text."
    assert task.__wrapped__ is documented
    assert task.__annotations__ == documented.__annotations__
    assert inspect.signature(task) == inspect.signature(documented)
    assert task.task_name == "repeat"
    assert task.task_queue_name is None
    assert task.task_ok_type is str
    assert task.exception_mapper is None
    assert task.default_unhandled_error_code is None
    assert app.tasks["repeat"] is task


def test_decorator_form_and_options() -> None:
    app = custom_app("reports", "mail")
    mapper = {ValueError: "BAD_VALUE"}
    policy = RetryPolicy.fixed([1, 2], auto_retry_for=["BAD_VALUE"])

    @app.task(
        "render",
        queue_name="mail",
        retry_policy=policy,
        exception_mapper=mapper,
        default_unhandled_error_code="RENDER_FAILED",
    )
    def render(name: str) -> TaskResult[dict[str, int], TaskError]:
        return TaskResult(ok={name: 1})

    assert render.task_queue_name == "mail"
    assert render.task_ok_type == dict[str, int]
    assert render.default_unhandled_error_code == "RENDER_FAILED"
    view = render.exception_mapper
    assert isinstance(view, MappingProxyType)
    assert dict(view) == {ValueError: "BAD_VALUE"}
    with pytest.raises(TypeError):
        view[KeyError] = "X"  # type: ignore[index]
    mapper[KeyError] = "LATER"  # the view does not follow the caller's dict
    assert KeyError not in render.exception_mapper
    assert render.__name__ == "render"
    assert render.__qualname__.endswith("<locals>.render")
    assert list(inspect.signature(render).parameters) == ["name"]


def test_bound_method_task() -> None:
    class Service:
        def __init__(self) -> None:
            self.factor = 10

        def scale(self, x: int) -> TaskResult[int, TaskError]:
            return TaskResult(ok=x * self.factor)

    service = Service()
    task = default_app().task("scale", service.scale)
    assert list(inspect.signature(task).parameters) == ["x"]
    assert task(4).ok == 40


def test_decorator_is_reusable_only_with_its_name() -> None:
    app = default_app()
    decorator = app.task("once")
    decorator(good)

    def other() -> TaskResult[int, TaskError]:
        return TaskResult(ok=2)

    with pytest.raises(DuplicateTaskNameError):
        decorator(other)


# --- direct calls (§3) ---------------------------------------------------------------


def test_direct_call_runs_here_without_database(monkeypatch: pytest.MonkeyPatch) -> None:
    app = default_app()
    task = app.task("repeat", documented)
    result = task("ab", times=2)
    assert isinstance(result, TaskResult)
    assert result.is_ok() and result.ok == "abab"
    # Never suppressed.
    app.suppress_sends(True)
    monkeypatch.setenv("HORSIES_SUPPRESS_SENDS", "1")
    assert task("x").ok == "x"
    assert app._broker is None


def test_direct_call_never_raises() -> None:
    app = default_app()

    @app.task("explode")
    def explode(n: int) -> TaskResult[int, TaskError]:
        raise ValueError(f"bad {n}")

    result = explode(3)
    assert result.is_err()
    assert result.err is not None
    assert result.err.error_code is OperationalErrorCode.UNHANDLED_EXCEPTION
    assert isinstance(result.err.exception, ValueError)
    wrong_args = explode("a", "b", "c")  # type: ignore[call-arg]
    assert wrong_args.is_err()
    assert isinstance(wrong_args.err.exception, TypeError)  # type: ignore[union-attr]
    assert app._broker is None
