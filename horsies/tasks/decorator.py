"""@app.task: definition-time checks and the task function object."""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from types import FrameType, FunctionType, MappingProxyType, MethodType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from horsies.codes import error_code_problem
from horsies.config import RetryPolicy, exception_mapper_problems
from horsies.errors import (
    ErrorCode,
    HorsiesError,
    SourceLocation,
    TaskDefinitionError,
)
from horsies.task_result import TaskResult
from horsies.tasks.send import NOT_GIVEN, SendOptions, TaskSender
from horsies.tasks.send_types import Call
from horsies.tasks.wrapper import TaskCallSpec, parse_return_annotation, run_task_function

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from horsies.app import Horsies
    from horsies.workflows.builder import NodeFactory
    from horsies.workflows.nodes import AnyNode, JoinMode

P = ParamSpec("P")
T = TypeVar("T")

_KNOWN_OPTIONS = {"queue_name", "retry_policy", "exception_mapper", "default_unhandled_error_code"}
MAX_TASK_NAME = 255


_OWN_MODULES = frozenset({__name__, "horsies.app"})


def _caller_location() -> SourceLocation | None:
    """The frame that called `app.task(...)`: the first one outside app.py and this module."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in _OWN_MODULES:
        frame = frame.f_back
    return SourceLocation.from_frame(frame) if frame is not None else None


def _check_name_and_options(task_name: Any, options: dict[str, Any]) -> None:
    """Checks 1-2 of the definition table: run when app.task(...) is called."""
    location = _caller_location()
    if not isinstance(task_name, str) or not task_name or len(task_name) > MAX_TASK_NAME:
        shown = task_name.__name__ if callable(task_name) else repr(task_name)
        raise TaskDefinitionError(
            f"task name must be a non-empty string of at most {MAX_TASK_NAME} characters, "
            f"got {shown}",
            code=ErrorCode.TASK_INVALID_OPTIONS,
            location=location,
            help_text='name the task: @app.task("my_task")',
        )
    if "good_until" in options:
        raise TaskDefinitionError(
            "good_until is not a task option: a deadline belongs to each send",
            code=ErrorCode.TASK_INVALID_OPTIONS,
            location=location,
            help_text="use task.with_options(good_until=...).send(...), "
            "or task.node(good_until=...) in workflows",
        )
    if "auto_retry_for" in options:
        raise TaskDefinitionError(
            "auto_retry_for belongs inside a RetryPolicy",
            code=ErrorCode.TASK_INVALID_OPTIONS,
            location=location,
            help_text="retry_policy=RetryPolicy.fixed([...], auto_retry_for=[...])",
        )
    unknown = sorted(set(options) - _KNOWN_OPTIONS)
    if unknown:
        raise TaskDefinitionError(
            f"unknown task option(s): {', '.join(unknown)}",
            code=ErrorCode.TASK_INVALID_OPTIONS,
            location=location,
            notes=[f"known options: {', '.join(sorted(_KNOWN_OPTIONS))}"],
        )


def _check_function_options(options: dict[str, Any], location: SourceLocation | None) -> None:
    """Checks 3-5 of the definition table."""
    mapper = options.get("exception_mapper")
    if mapper is not None and (problems := exception_mapper_problems(mapper)):
        raise TaskDefinitionError(
            "invalid exception_mapper",
            code=ErrorCode.CONFIG_INVALID_EXCEPTION_MAPPER,
            location=location,
            notes=problems,
        )
    default = options.get("default_unhandled_error_code")
    if default is not None:
        problem = "not a string" if not isinstance(default, str) else error_code_problem(default)
        if problem is not None:
            raise TaskDefinitionError(
                f"invalid default_unhandled_error_code {default!r}: {problem}",
                code=ErrorCode.CONFIG_INVALID_EXCEPTION_MAPPER,
                location=location,
            )
    policy = options.get("retry_policy")
    if policy is not None and not isinstance(policy, RetryPolicy):
        raise TaskDefinitionError(
            f"retry_policy must be a RetryPolicy, got {type(policy).__name__}",
            code=ErrorCode.TASK_INVALID_OPTIONS,
            location=location,
        )
    queue = options.get("queue_name")
    if queue is not None and not isinstance(queue, str):
        raise TaskDefinitionError(
            f"queue_name must be a string, got {type(queue).__name__}",
            code=ErrorCode.TASK_INVALID_OPTIONS,
            location=location,
        )


def _is_predecorated(fn: Any) -> bool:
    if hasattr(fn, "__wrapped__"):
        return True
    cells = getattr(fn, "__closure__", None) or ()
    for cell in cells:
        try:
            content = cell.cell_contents
        except ValueError:  # empty cell
            continue
        if isinstance(content, FunctionType | MethodType):
            return True
    return False


def _check_callable(fn: Any, location: SourceLocation | None) -> None:
    """Checks 7-8: a plain synchronous function, not already wrapped."""
    # Wrapped objects first: a task function (of any app) is not a FunctionType,
    # yet it must be reported as already decorated (HRS-104), not as HRS-102.
    if _is_predecorated(fn):
        raise TaskDefinitionError(
            f"'{getattr(fn, '__name__', type(fn).__name__)}' is already decorated",
            code=ErrorCode.TASK_PREDECORATED_NOT_SUPPORTED,
            location=location,
            help_text="apply @app.task directly to the undecorated function",
        )
    if not isinstance(fn, FunctionType | MethodType):
        raise TaskDefinitionError(
            f"@app.task needs a Python function, got {type(fn).__name__}",
            code=ErrorCode.TASK_INVALID_OPTIONS,
            location=location,
        )
    if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn) or (
        inspect.isasyncgenfunction(fn)
    ):
        raise TaskDefinitionError(
            f"task '{fn.__name__}' must be a plain synchronous function",
            code=ErrorCode.TASK_INVALID_OPTIONS,
            location=location,
            help_text="async def and generator functions cannot be tasks",
        )


def _return_types(fn: Any, location: SourceLocation | None) -> tuple[Any, Any]:
    """Checks 9-10: `-> TaskResult[T, E]` with E a TaskError."""
    if "return" not in getattr(fn, "__annotations__", {}):
        raise TaskDefinitionError(
            f"task '{fn.__name__}' has no return annotation",
            code=ErrorCode.TASK_NO_RETURN_TYPE,
            location=location,
            help_text="annotate it: -> TaskResult[YourType, TaskError]",
        )
    try:
        return parse_return_annotation(fn)
    except (TypeError, ValueError, NameError) as exc:
        raise TaskDefinitionError(
            f"task '{fn.__name__}' must be annotated -> TaskResult[T, TaskError]",
            code=ErrorCode.TASK_INVALID_RETURN_TYPE,
            location=location,
            notes=[str(exc)],
        ) from None


def _source_key(fn: Any) -> str | None:
    import os

    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    return f"{os.path.realpath(code.co_filename)}:{code.co_firstlineno}"


@contextlib.contextmanager
def _located(location: SourceLocation | None) -> Iterator[None]:
    """Give a HorsiesError raised inside the function's source location."""
    try:
        yield
    except HorsiesError as exc:
        if location is not None:
            exc.location = location
        raise


def task_decorator(
    app: Horsies, task_name: Any, func: Callable[..., Any] | None, options: dict[str, Any]
) -> Any:
    _check_name_and_options(task_name, options)

    def apply(fn: Callable[..., Any]) -> TaskFunction[Any, Any]:
        location = SourceLocation.from_function(fn) if callable(fn) else None
        _check_function_options(options, location)
        with _located(location):  # checks 6 and 11 raise from app code: point at fn
            queue_name = app.validate_queue_name(options.get("queue_name"))
        _check_callable(fn, location)
        ok_type, err_type = _return_types(fn, location)
        task: TaskFunction[Any, Any] = TaskFunction(
            app, task_name, fn, options, queue_name, ok_type, err_type
        )
        with _located(location):
            registered = app.tasks.register(task, name=task_name, source=_source_key(fn))
        if not registered:  # same source imported twice: keep the first entry
            return app.tasks[task_name]  # type: ignore[no-any-return]
        return task

    return apply if func is None else apply(func)


class TaskFunction(Generic[P, T]):
    """What @app.task returns: callable directly, and sendable to workers."""

    def __init__(
        self,
        app: Horsies,
        task_name: str,
        fn: Callable[..., Any],
        options: dict[str, Any],
        queue_name: str,
        ok_type: Any,
        err_type: Any,
    ) -> None:
        functools.update_wrapper(self, fn)
        self.app = app
        self.task_name = task_name
        self.task_queue_name: str | None = options.get("queue_name")
        self.task_ok_type = ok_type
        self.retry_policy: RetryPolicy | None = options.get("retry_policy")
        mapper = options.get("exception_mapper")
        self.exception_mapper = None if mapper is None else MappingProxyType(dict(mapper))
        self.default_unhandled_error_code: str | None = options.get("default_unhandled_error_code")
        self.resolved_queue_name = queue_name
        self.signature = inspect.signature(fn)
        self._fn = fn
        self._call_spec = TaskCallSpec(
            task_name=task_name,
            function_name=fn.__name__,
            ok_type=ok_type,
            err_type=err_type,
            task_mapper=dict(mapper) if mapper else None,
            task_default_code=self.default_unhandled_error_code,
            app_mapper=app.config.exception_mapper,
            app_default_code=app.config.default_unhandled_error_code,
        )
        self._sender = TaskSender(self)

    def __repr__(self) -> str:
        return f"<TaskFunction {self.task_name!r}>"

    # -- running ----------------------------------------------------------

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> TaskResult[T, Any]:
        """Direct call: run the function here and return its TaskResult."""
        return run_task_function(self._fn, args, kwargs, spec=self._call_spec)

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskResult[Any, Any]:
        return run_task_function(self._fn, args, kwargs, spec=self._call_spec)

    # -- sending ----------------------------------------------------------

    def send(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self._sender.send(SendOptions(), args, kwargs)

    async def send_async(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return await self._sender.send_async(SendOptions(), args, kwargs)

    def schedule(self, delay: int, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self._sender.send(SendOptions(), args, kwargs, delay=delay)

    async def schedule_async(self, delay: int, *args: P.args, **kwargs: P.kwargs) -> Any:
        return await self._sender.send_async(SendOptions(), args, kwargs, delay=delay)

    def with_options(
        self,
        *,
        good_until: datetime | None | object = NOT_GIVEN,
        priority: int | None = None,
        connection: Any = None,
    ) -> TaskSendOptions[P, T]:
        return TaskSendOptions(
            self._sender, SendOptions(good_until=good_until, priority=priority, connection=connection)
        )

    def call(self, *args: P.args, **kwargs: P.kwargs) -> Call:
        return Call(*args, **kwargs)

    def send_many(self, calls: Iterable[tuple[Any, ...] | Call], /) -> Any:
        return self._sender.send_many(SendOptions(), calls)

    async def send_many_async(self, calls: Iterable[tuple[Any, ...] | Call], /) -> Any:
        return await self._sender.send_many_async(SendOptions(), calls)

    def retry_send(self, error: Any) -> Any:
        return self._sender.replay(error, scheduled=False)

    async def retry_send_async(self, error: Any) -> Any:
        return await self._sender.replay_async(error, scheduled=False)

    def retry_schedule(self, error: Any) -> Any:
        return self._sender.replay(error, scheduled=True)

    async def retry_schedule_async(self, error: Any) -> Any:
        return await self._sender.replay_async(error, scheduled=True)

    # -- workflows --------------------------------------------------------

    def node(
        self,
        *,
        waits_for: Sequence[AnyNode] | None = None,
        args_from: Mapping[str, AnyNode] | None = None,
        workflow_ctx_from: Sequence[AnyNode] | None = None,
        node_id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        allow_failed_deps: bool = False,
        join: JoinMode = "all",
        min_success: int | None = None,
        good_until: datetime | None = None,
    ) -> NodeFactory[P, T]:
        """Workflow options of a node of this task; call the result with the task's
        arguments to get the `TaskNode` (workflows.md §4.4)."""
        from horsies.workflows.builder import NodeFactory

        return NodeFactory(
            self, waits_for=waits_for, args_from=args_from,
            workflow_ctx_from=workflow_ctx_from, node_id=node_id, queue=queue,
            priority=priority, allow_failed_deps=allow_failed_deps, join=join,
            min_success=min_success, good_until=good_until,
        )


class TaskSendOptions(Generic[P, T]):
    """Sends of one task with per-send options; immutable and reusable."""

    __slots__ = ("_options", "_sender")

    def __init__(self, sender: TaskSender, options: SendOptions) -> None:
        self._sender = sender
        self._options = options

    def send(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self._sender.send(self._options, args, kwargs)

    async def send_async(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return await self._sender.send_async(self._options, args, kwargs)

    def schedule(self, delay: int, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self._sender.send(self._options, args, kwargs, delay=delay)

    async def schedule_async(self, delay: int, *args: P.args, **kwargs: P.kwargs) -> Any:
        return await self._sender.send_async(self._options, args, kwargs, delay=delay)

    def send_many(self, calls: Iterable[tuple[Any, ...] | Call], /) -> Any:
        return self._sender.send_many(self._options, calls)

    async def send_many_async(self, calls: Iterable[tuple[Any, ...] | Call], /) -> Any:
        return await self._sender.send_many_async(self._options, calls)
