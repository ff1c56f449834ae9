"""Horsies: the application object (task registry, discovery, config, broker)."""

from __future__ import annotations

import fnmatch
import glob
import importlib
import importlib.util
import inspect
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from horsies.config import AppConfig, QueueMode
from horsies.errors import (
    ConfigurationError,
    DuplicateTaskNameError,
    ErrorCode,
    HorsiesError,
    NotRegistered,
)

if TYPE_CHECKING:
    from horsies.config import ExceptionMapper, RetryPolicy
    from horsies.db.broker import PostgresBroker
    from horsies.task_result import TaskResult
    from horsies.tasks.decorator import TaskFunction
    from horsies.workflows.definition import WorkflowDefinition
    from horsies.workflows.nodes import AnyNode, OnError, SubWorkflowNode, TaskNode
    from horsies.workflows.spec import SuccessPolicy, WorkflowSpec, WorkflowTerminalResults

OutT = TypeVar("OutT")
P = ParamSpec("P")
T = TypeVar("T")
BuilderT = TypeVar("BuilderT", bound=Callable[..., Any])
WorkflowBuilder = tuple[Callable[..., Any], list[dict[str, Any]] | None]

log = logging.getLogger("horsies")
log.addHandler(logging.NullHandler())

ChildProcessStartHook = Callable[[], None]
_DEFAULT_EXCLUDES = ["*_test.py", "test_*.py", "conftest.py"]
_GLOB_CHARS = set("*?[]")


def _string_list(value: object, what: str) -> list[str]:
    """``value`` as a list of non-empty strings, or TypeError/ValueError naming ``what``.

    A lone string is refused rather than iterated into one entry per character.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        hint = f"; wrap a single entry in a list: [{value!r}]" if isinstance(value, str) else ""
        raise TypeError(f"{what} must be a list of strings, got {type(value).__name__}{hint}")
    entries = list(value)
    for index, entry in enumerate(entries):
        if not isinstance(entry, str):
            raise TypeError(f"{what}[{index}] must be a str, got {type(entry).__name__} {entry!r}")
        if not entry.strip():
            raise ValueError(f"{what}[{index}] is empty")
    return entries


def in_child_process() -> bool:
    return os.environ.get("HORSIES_CHILD_PROCESS") == "1"


def _env_suppressed() -> bool:
    for name in ("HORSIES_SUPPRESS_SENDS", "TASKLIB_SUPPRESS_SENDS"):
        if os.environ.get(name, "").strip() == "1":
            return True
    return False


# Imports by locator (worker, check, db) that are in progress in this process.
# The module a locator names is imported before its app object exists, so the
# switch for that import cannot live on the app (tasks.md section 11).
_importing_by_locator = 0


@contextmanager
def sends_suppressed() -> Iterator[None]:
    """Every app in this process refuses sends while the block runs (nesting allowed)."""
    global _importing_by_locator
    _importing_by_locator += 1
    try:
        yield
    finally:
        _importing_by_locator -= 1


def _is_file_entry(entry: str) -> bool:
    return entry.endswith(".py") or os.sep in entry


class TaskRegistry(MutableMapping[str, Any]):
    """Task name -> task function; a name is registered once per app."""

    def __init__(self) -> None:
        self._tasks: dict[str, Any] = {}
        self._sources: dict[str, str | None] = {}

    def __getitem__(self, name: str) -> Any:
        try:
            return self._tasks[name]
        except KeyError:
            raise NotRegistered(
                f"no task named '{name}' is registered", code=ErrorCode.TASK_NOT_REGISTERED
            ) from None

    def __setitem__(self, name: str, task: Any) -> None:
        self.register(task, name=name)

    def __delitem__(self, name: str) -> None:
        del self._tasks[name]
        self._sources.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def register(self, task: Any, *, name: str, source: str | None = None) -> bool:
        """Add `task`; False when the same source registered it already (double import)."""
        if name in self._tasks:
            if source is not None and self._sources.get(name) == source:
                return False
            raise DuplicateTaskNameError(
                f"task name '{name}' is already registered",
                code=ErrorCode.TASK_DUPLICATE_NAME,
                notes=[f"first registered at {self._sources.get(name) or 'unknown location'}"],
                help_text="give each task a unique name",
            )
        self._tasks[name] = task
        self._sources[name] = source
        return True

    def unregister(self, name: str) -> None:
        self._tasks.pop(name, None)
        self._sources.pop(name, None)

    def keys_list(self) -> list[str]:
        return list(self._tasks)


class Horsies:
    """The application: owns the configuration, the task registry and the broker."""

    def __init__(self, config: AppConfig) -> None:
        if not isinstance(config, AppConfig):
            raise TypeError(f"Horsies() needs an AppConfig, got {type(config).__name__}")
        self.config = config
        self.tasks = TaskRegistry()
        self._modules: list[str] = []
        self._hooks: list[ChildProcessStartHook] = []
        self._suppressed = False
        self._role = "producer"
        self._broker: PostgresBroker | None = None
        self._broker_lock = threading.Lock()
        self._workflow_builders: list[WorkflowBuilder] = []
        level = logging.DEBUG if in_child_process() else logging.INFO
        log.log(level, "horsies app initialized in %s queue mode", config.queue_mode.name)

    # -- tasks ------------------------------------------------------------

    @overload
    def task(
        self,
        task_name: str,
        func: None = None,
        *,
        queue_name: str | None = ...,
        retry_policy: RetryPolicy | None = ...,
        exception_mapper: ExceptionMapper | None = ...,
        default_unhandled_error_code: str | None = ...,
    ) -> Callable[[Callable[P, TaskResult[T, Any]]], TaskFunction[P, T]]: ...

    @overload
    def task(
        self,
        task_name: str,
        func: Callable[P, TaskResult[T, Any]],
        *,
        queue_name: str | None = ...,
        retry_policy: RetryPolicy | None = ...,
        exception_mapper: ExceptionMapper | None = ...,
        default_unhandled_error_code: str | None = ...,
    ) -> TaskFunction[P, T]: ...

    def task(self, task_name: Any, func: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Register a task: `@app.task("name", ...)` or `app.task("name", fn)`.

        Typed so that a type checker sees `TaskFunction[P, T]`: the function's
        parameters and the success type of its `TaskResult` (what `task.node()`
        and `task.send()` are checked against)."""
        from horsies.tasks.decorator import task_decorator

        return task_decorator(self, task_name, func, options)

    def list_tasks(self) -> list[str]:
        return list(self.tasks)

    # -- discovery --------------------------------------------------------

    def discover_tasks(self, modules: list[str]) -> None:
        modules = _string_list(modules, "discover_tasks() modules")
        if self._modules:
            log.warning(
                "discover_tasks replaced %d module entries with %d", len(self._modules), len(modules)
            )
        self._modules = list(modules)
        quiet = in_child_process() and os.environ.get("HORSIES_CHILD_DISCOVERY_LOGS") != "1"
        if self._modules and not quiet:
            log.info("registered %d task module(s) for discovery", len(self._modules))

    def get_discovered_task_modules(self) -> list[str]:
        return list(self._modules)

    def expand_module_globs(self, patterns: list[str], exclude: list[str] | None = None) -> list[str]:
        patterns = _string_list(patterns, "expand_module_globs() patterns")
        excludes = _DEFAULT_EXCLUDES if exclude is None else _string_list(
            exclude, "expand_module_globs() exclude"
        )
        found: list[str] = []

        def keep(path: str) -> None:
            base = os.path.basename(path)
            if any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(base, p) for p in excludes):
                return
            if path not in found:
                found.append(path)

        for pattern in patterns:
            if _GLOB_CHARS & set(pattern):
                for path in sorted(glob.glob(pattern, recursive=True)):
                    if path.endswith(".py") and os.path.isfile(path):
                        keep(os.path.realpath(path))
            elif _is_file_entry(pattern):
                if os.path.isfile(pattern):
                    keep(os.path.realpath(pattern))
            elif pattern not in found:
                found.append(pattern)
        return found

    def import_task_modules(self, modules: list[str] | None = None) -> list[str]:
        imported: list[str] = []
        if modules is not None:
            modules = _string_list(modules, "import_task_modules() modules")
        for entry in self._modules if modules is None else modules:
            if _is_file_entry(entry):
                path = os.path.realpath(entry)
                if not os.path.isfile(path):
                    log.warning("task module file %s does not exist; skipped", entry)
                    continue
                import_file(path)
                imported.append(path)
            else:
                importlib.import_module(entry)
                imported.append(entry)
        return imported

    # -- sends ------------------------------------------------------------

    def suppress_sends(self, value: bool = True) -> None:
        self._suppressed = value

    def are_sends_suppressed(self) -> bool:
        return self._suppressed or _importing_by_locator > 0 or _env_suppressed()

    def set_role(self, role: str) -> None:
        self._role = role

    @property
    def role(self) -> str:
        return self._role

    # -- queues -----------------------------------------------------------

    def get_valid_queue_names(self) -> list[str]:
        if self.config.queue_mode is QueueMode.DEFAULT:
            return ["default"]
        return [q.name for q in self.config.custom_queues or []]

    def validate_queue_name(self, queue_name: str | None) -> str:
        custom = self.config.queue_mode is QueueMode.CUSTOM
        if not custom:
            if queue_name is not None:
                raise ConfigurationError(
                    "cannot specify queue_name in DEFAULT mode",
                    code=ErrorCode.CONFIG_INVALID_QUEUE_MODE,
                    help_text="remove queue_name, or switch the app to QueueMode.CUSTOM",
                )
            return "default"
        if queue_name is None:
            raise ConfigurationError(
                "queue_name is required in CUSTOM mode", code=ErrorCode.CONFIG_INVALID_QUEUE_MODE
            )
        valid = self.get_valid_queue_names()
        if queue_name not in valid:
            raise ConfigurationError(
                f"invalid queue_name '{queue_name}'",
                code=ErrorCode.TASK_INVALID_QUEUE,
                notes=[f"valid queues: {', '.join(valid)}"],
            )
        return queue_name

    def queue_priority(self, queue_name: str) -> int:
        """The configured priority of a queue: 100 in DEFAULT mode."""
        for queue in self.config.custom_queues or []:
            if queue.name == queue_name:
                return queue.priority
        return 100

    # -- workflows (workflows.md §4.1, §4.5) --------------------------------

    @overload
    def workflow(
        self,
        name: str,
        tasks: Sequence[AnyNode],
        on_error: OnError | str = ...,
        output: None = None,
        success_policy: SuccessPolicy | None = None,
        *,
        definition_key: str | None = None,
        workflow_def_cls: type[WorkflowDefinition[Any]] | None = None,
    ) -> WorkflowSpec[WorkflowTerminalResults]: ...

    @overload
    def workflow(
        self,
        name: str,
        tasks: Sequence[AnyNode],
        on_error: OnError | str = ...,
        output: TaskNode[OutT] | SubWorkflowNode[OutT] = ...,
        success_policy: SuccessPolicy | None = None,
        *,
        definition_key: str | None = None,
        workflow_def_cls: type[WorkflowDefinition[Any]] | None = None,
    ) -> WorkflowSpec[OutT]: ...

    def workflow(
        self,
        name: str,
        tasks: Sequence[AnyNode],
        on_error: OnError | str = "fail",
        output: TaskNode[Any] | SubWorkflowNode[Any] | None = None,
        success_policy: SuccessPolicy | None = None,
        *,
        definition_key: str | None = None,
        workflow_def_cls: type[WorkflowDefinition[Any]] | None = None,
    ) -> WorkflowSpec[Any]:
        """A validated spec with queues and priorities resolved and this app attached.

        Raises ConfigurationError (HRS-103/HRS-200) for unusable queues, a
        WorkflowValidationError (or MultipleValidationErrors) for an invalid DAG or a
        missing definition_key, and ValueError for an unknown on_error.
        """
        from horsies.workflows.placement import build_for_app

        return build_for_app(self, name, tasks, on_error, output, success_policy,
                             definition_key, workflow_def_cls)

    def workflow_builder(
        self, *, cases: list[dict[str, Any]] | None = None
    ) -> Callable[[BuilderT], BuilderT]:
        """Register a function that builds a spec, so `horsies check` runs it (with each
        of `cases` as keyword arguments when it takes parameters)."""

        def register(fn: BuilderT) -> BuilderT:
            fn.__horsies_workflow_builder__ = True  # type: ignore[attr-defined]
            if all(known is not fn for known, _ in self._workflow_builders):
                self._workflow_builders.append((fn, cases))
            return fn

        return register

    def get_workflow_builders(self) -> list[WorkflowBuilder]:
        """`(function, cases)` of every registered workflow builder, in registration order."""
        return list(self._workflow_builders)

    # -- broker and checks ------------------------------------------------

    def get_broker(self) -> PostgresBroker:
        if self._broker is None:
            with self._broker_lock:
                if self._broker is None:
                    self._broker = self._make_broker()
        return self._broker

    def _make_broker(self) -> PostgresBroker:
        try:
            from horsies.db.broker import PostgresBroker

            broker = PostgresBroker(self.config.broker, self.config)
            broker.app = self
            return broker
        except Exception as exc:
            raise HorsiesError(
                "could not create the broker",
                code=ErrorCode.BROKER_INIT_FAILED,
                notes=[f"{type(exc).__name__}: {exc}"],
            ) from exc

    def check(self, *, live: bool = False) -> list[HorsiesError]:
        from horsies.checks import run_checks

        return run_checks(self, live=live)

    def on_child_process_start(self, fn: ChildProcessStartHook) -> ChildProcessStartHook:
        if not callable(fn):
            raise ConfigurationError(
                "on_child_process_start requires a callable",
                code=ErrorCode.CONFIG_INVALID_CHILD_HOOK,
            )
        if inspect.iscoroutinefunction(fn):
            raise ConfigurationError(
                "on_child_process_start hooks must be sync", code=ErrorCode.CONFIG_INVALID_CHILD_HOOK
            )
        if fn not in self._hooks:
            self._hooks.append(fn)
        return fn

    @property
    def child_process_start_hooks(self) -> list[ChildProcessStartHook]:
        return list(self._hooks)


def import_file(path: str) -> Any:
    """Load a task file once per process under a stable synthetic module name."""
    from hashlib import sha256  # not needed by a process that imports no file

    digest = sha256(path.encode()).hexdigest()[:12]
    name = f"horsies._dynamic.{digest}"
    if name in sys.modules:
        return sys.modules[name]
    parent = os.path.dirname(path)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load task module file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    base = os.path.splitext(os.path.basename(path))[0]
    sys.modules.setdefault(base, module)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        if sys.modules.get(base) is module:
            del sys.modules[base]
        raise
    return module
