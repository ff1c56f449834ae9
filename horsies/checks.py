"""The phased start-up validation behind ``app.check()`` (app-and-config.md section 5).

Phases, in order; each stops the run when it found errors:

1. config: enforced when ``AppConfig`` is built, nothing to do here;
2. task imports (with the workflow validation that runs while modules import);
3.1 workflow definitions, 3.2 workflow builders, 3.3 undecorated builders;
4. schedules: each enabled entry of ``AppConfig.schedule`` can run (scheduling.md
   §12.2), one error per bad entry;
5. runtime policy safety (exception mappers, default codes, retry policies);
6. broker, only with ``live=True``: one short-lived connection and ``SELECT 1``.

Problems are returned, never raised.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, get_origin

from horsies.codes import BUILTIN_CODE_REGISTRY, OperationalErrorCode, error_code_problem
from horsies.errors import (
    ConfigurationError,
    ErrorCode,
    HorsiesError,
    MultipleValidationErrors,
    SourceLocation,
    TaskDefinitionError,
    WorkflowValidationError,
    is_user_file,
)
from horsies.config.retry import retry_policy_problem

if TYPE_CHECKING:
    from horsies.app import Horsies

__all__ = [
    "MAX_SUBWORKFLOW_DEPTH",
    "BuilderEntry",
    "run_checks",
]

MAX_SUBWORKFLOW_DEPTH = 32
_DEFAULT_CODE_ALLOWED = OperationalErrorCode.UNHANDLED_EXCEPTION.value
_SPEC_ANNOTATION = re.compile(r"^(?:[A-Za-z_][\w]*\.)*WorkflowSpec(?:\[.*\])?$", re.DOTALL)
_BUILDER_MARKER = "__horsies_workflow_builder__"
_NO_CHECK_MARKER = "__horsies_no_check__"

Phase = Callable[["Horsies", list[ModuleType]], list[HorsiesError]]


def run_checks(app: Horsies, *, live: bool = False) -> list[HorsiesError]:
    """Run every phase in order and return the errors of the first failing one."""
    errors, modules = _check_task_imports(app)
    if errors:
        return errors
    phases: tuple[Phase, ...] = (
        _check_workflow_definitions,
        _check_workflow_builders,
        _check_undecorated_builders,
        _check_schedules,
        _check_runtime_policy,
    )
    for phase in phases:
        errors = phase(app, modules)
        if errors:
            return errors
    return _check_broker(app) if live else []


# -- helpers ------------------------------------------------------------------


def _flatten(error: HorsiesError) -> list[HorsiesError]:
    if isinstance(error, MultipleValidationErrors):
        return [e for inner in error.errors for e in _flatten(inner)]
    return [error]


def _nowhere(error: HorsiesError) -> HorsiesError:
    """Drop the location filled in automatically: it would point at the caller of check()."""
    return error.with_location(None)


def _location_of(obj: Any) -> SourceLocation | None:
    fn = getattr(obj, "__wrapped__", obj)
    if inspect.isclass(fn):
        try:
            file = inspect.getsourcefile(fn)
            _, line = inspect.getsourcelines(fn)
        except (OSError, TypeError):
            return None
        return SourceLocation(file=file, line=line) if file else None
    return SourceLocation.from_function(fn)


def _raise_site(tb: TracebackType | None) -> SourceLocation | None:
    """The innermost traceback frame in user code: where the import failed."""
    site: SourceLocation | None = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if is_user_file(filename):
            site = SourceLocation(file=filename, line=tb.tb_lineno)
        tb = tb.tb_next
    return site


def _code_text(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _is_reserved(value: Any) -> bool:
    text = _code_text(value)
    return isinstance(text, str) and text in BUILTIN_CODE_REGISTRY


def _is_file_entry(entry: str) -> bool:
    return entry.endswith(".py") or os.sep in entry or "/" in entry


# -- phase 2: task imports ----------------------------------------------------


def _check_task_imports(app: Horsies) -> tuple[list[HorsiesError], list[ModuleType]]:
    errors: list[HorsiesError] = []
    modules: list[ModuleType] = []
    app.suppress_sends(True)
    try:
        for entry in app.get_discovered_task_modules():
            problem, module = _import_one(app, entry)
            errors.extend(problem)
            if module is not None:
                modules.append(module)
    finally:
        app.suppress_sends(False)
    return errors, modules


def _import_one(app: Horsies, entry: str) -> tuple[list[HorsiesError], ModuleType | None]:
    path = os.path.realpath(entry) if _is_file_entry(entry) else None
    if path is not None and not os.path.isfile(path):
        return [
            _nowhere(
                ConfigurationError(
                    f"task module file not found: {entry}",
                    code=ErrorCode.CLI_INVALID_ARGS,
                    notes=[f"resolved path: {path}"],
                    help_text="fix the path, or remove the entry from app.discover_tasks([...])",
                )
            )
        ], None
    try:
        app.import_task_modules([entry])
    except HorsiesError as exc:
        return _flatten(exc), None
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        own = path is None and (missing == entry or entry.startswith(f"{missing}."))
        message = f"module not found: {entry}" if own else f"failed to import module: {entry}"
        error = ConfigurationError(
            message,
            code=ErrorCode.CLI_INVALID_ARGS,
            notes=[str(exc)],
            help_text="check the entry in app.discover_tasks([...]) and that its "
            "dependencies are installed",
        ).with_location(None if own else _raise_site(exc.__traceback__))
        return [error], None
    except ImportError as exc:
        return [
            ConfigurationError(
                f"failed to import module: {entry}",
                code=ErrorCode.CLI_INVALID_ARGS,
                notes=[str(exc)],
                help_text="check that the module and its dependencies are importable",
            ).with_location(_raise_site(exc.__traceback__))
        ], None
    except Exception as exc:  # noqa: BLE001 - reported as a check error
        return [
            ConfigurationError(
                f"error while importing module: {entry}",
                code=ErrorCode.MODULE_EXEC_ERROR,
                notes=[f"{type(exc).__name__}: {exc}"],
                help_text="the module raised while it was imported; check its module-level code",
            ).with_location(_raise_site(exc.__traceback__))
        ], None
    return [], _module_for(entry, path)


def _module_for(entry: str, path: str | None) -> ModuleType | None:
    if path is None:
        module = sys.modules.get(entry)
        return module if isinstance(module, ModuleType) else None
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(module, ModuleType) and file and os.path.realpath(file) == path:
            return module
    return None


def _module_names(modules: Iterable[ModuleType]) -> set[str]:
    return {module.__name__ for module in modules}


# -- phase 3.1: workflow definitions ------------------------------------------


def _workflows_attr(name: str) -> type[Any] | None:
    """A class of ``horsies.workflows``, or ``None`` when workflows are unavailable."""
    try:
        module = importlib.import_module("horsies.workflows")
    except ImportError:
        return None
    value = getattr(module, name, None)
    return value if inspect.isclass(value) else None


def _workflow_definition_base() -> type[Any] | None:
    return _workflows_attr("WorkflowDefinition")


def _all_subclasses(base: type[Any]) -> Iterator[type[Any]]:
    seen: set[type[Any]] = set()
    stack = list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        stack.extend(cls.__subclasses__())


def _declared_nodes(cls: type[Any]) -> list[Any]:
    getter = getattr(cls, "get_workflow_nodes", None)
    try:
        pairs = getter() if callable(getter) else []
    except Exception:  # noqa: BLE001 - a broken class fails its own build
        return []
    return [node for _, node in pairs]


def _is_concrete_definition(cls: type[Any]) -> bool:
    # A plain intermediate base (no name, no nodes of its own) is not a workflow.
    return "name" in cls.__dict__ or bool(_declared_nodes(cls))


def _definition_key_error(cls: type[Any]) -> HorsiesError | None:
    key = cls.__dict__.get("definition_key")
    if isinstance(key, str) and key.strip():
        return None
    return WorkflowValidationError(
        f"workflow definition '{cls.__qualname__}' has no definition_key",
        code=ErrorCode.WORKFLOW_NO_DEFINITION_KEY,
        notes=[f"defined in module '{cls.__module__}'"],
        help_text='declare a stable key on the class itself, for example\n'
        'definition_key = "billing.invoice_run.v1"',
    ).with_location(_location_of(cls))


def _check_workflow_definitions(app: Horsies, modules: list[ModuleType]) -> list[HorsiesError]:
    base = _workflow_definition_base()
    if base is None:
        return []
    names = _module_names(modules)
    roots = [c for c in _all_subclasses(base) if c.__module__ in names]
    errors: list[HorsiesError] = []
    seen: set[type[Any]] = set()
    frontier = [(cls, 0) for cls in roots]
    while frontier:
        cls, depth = frontier.pop(0)
        if cls in seen or depth > MAX_SUBWORKFLOW_DEPTH:
            continue
        seen.add(cls)
        if depth == 0 and not _is_concrete_definition(cls):
            continue
        error = _definition_key_error(cls)
        if error is not None:
            errors.append(error)
        for node in _declared_nodes(cls):
            child = getattr(node, "workflow_def", None)
            if inspect.isclass(child) and issubclass(child, base):
                frontier.append((child, depth + 1))
    return errors


# -- phase 3.2: workflow builders ---------------------------------------------


@dataclass(frozen=True, slots=True)
class BuilderEntry:
    """A function registered with ``@app.workflow_builder`` and its check cases."""

    fn: Callable[..., Any]
    cases: list[Any] | None


def _builder_entries(app: Horsies) -> list[BuilderEntry]:
    """The app's registered builders, whatever shape the registry stores them in.

    Accepted: ``app.get_workflow_builders()`` or ``app._workflow_builders``,
    holding ``(fn, cases)`` pairs, objects with ``fn``/``func`` and ``cases``,
    or bare functions (with ``__horsies_workflow_builder_cases__`` if any).
    """
    getter = getattr(app, "get_workflow_builders", None)
    raw: Any = getter() if callable(getter) else getattr(app, "_workflow_builders", None)
    if raw is None:
        return []
    items = raw.items() if isinstance(raw, Mapping) else raw
    entries: list[BuilderEntry] = []
    for item in items:
        entry = _as_builder_entry(item)
        if entry is not None:
            entries.append(entry)
    return entries


def _as_builder_entry(item: Any) -> BuilderEntry | None:
    if isinstance(item, BuilderEntry):
        return item
    if isinstance(item, tuple) and len(item) == 2 and callable(item[0]):
        return BuilderEntry(item[0], item[1])
    fn = getattr(item, "fn", None) or getattr(item, "func", None)
    if callable(fn):
        return BuilderEntry(fn, getattr(item, "cases", None))
    if callable(item):
        return BuilderEntry(item, getattr(item, "__horsies_workflow_builder_cases__", None))
    return None


def _workflow_spec_class() -> type[Any] | None:
    return _workflows_attr("WorkflowSpec")


def _required_params(sig: inspect.Signature) -> list[str]:
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        p.name
        for p in sig.parameters.values()
        if p.default is inspect.Parameter.empty and p.kind not in skip
    ]


def _builder_error(code: ErrorCode, fn: Any, message: str, *notes: str) -> HorsiesError:
    return WorkflowValidationError(
        message,
        code=code,
        notes=list(notes),
        help_text=_BUILDER_HELP.get(code),
    ).with_location(_location_of(fn))


_BUILDER_HELP: dict[ErrorCode, str] = {
    ErrorCode.WORKFLOW_CHECK_CASES_REQUIRED: "give example arguments to check with:\n"
    "@app.workflow_builder(cases=[{...}])",
    ErrorCode.WORKFLOW_CHECK_CASE_INVALID: "each case is a dict of parameter name to value "
    "that supplies every required parameter",
    ErrorCode.WORKFLOW_CHECK_BUILDER_EXCEPTION: "a builder must return a WorkflowSpec with a "
    "definition_key (app.workflow(..., definition_key=...))",
}


def _case_problems(fn: Any, sig: inspect.Signature, index: int, case: Any) -> list[HorsiesError]:
    code = ErrorCode.WORKFLOW_CHECK_CASE_INVALID
    name = getattr(fn, "__qualname__", repr(fn))
    if not isinstance(case, dict):
        return [_builder_error(code, fn, f"case {index} of builder '{name}' is not a dict",
                               f"got {type(case).__name__}")]
    errors: list[HorsiesError] = []
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    positional_only = {
        p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.POSITIONAL_ONLY
    }
    unknown = [
        k for k in case
        if not isinstance(k, str) or k in positional_only
        or (k not in sig.parameters and not takes_kwargs)
    ]
    if unknown:
        errors.append(_builder_error(
            code, fn, f"case {index} of builder '{name}' uses unknown parameter(s)",
            f"unknown: {', '.join(map(str, unknown))}",
            f"parameters: {', '.join(sig.parameters)}",
        ))
    missing = [p for p in _required_params(sig) if p not in case]
    if missing:
        errors.append(_builder_error(
            code, fn, f"case {index} of builder '{name}' misses required parameter(s)",
            f"missing: {', '.join(missing)}",
        ))
    return errors


def _run_builder(fn: Any, kwargs: dict[str, Any], label: str) -> list[HorsiesError]:
    code = ErrorCode.WORKFLOW_CHECK_BUILDER_EXCEPTION
    name = getattr(fn, "__qualname__", repr(fn))
    try:
        result = fn(**kwargs)
    except HorsiesError as exc:
        return _flatten(exc)
    except Exception as exc:  # noqa: BLE001 - reported as a check error
        return [_builder_error(code, fn, f"workflow builder '{name}' raised {label}",
                               f"{type(exc).__name__}: {exc}")]
    spec_cls = _workflow_spec_class()
    is_spec = isinstance(result, spec_cls) if spec_cls is not None else (
        type(result).__name__ == "WorkflowSpec"
    )
    if not is_spec:
        return [_builder_error(code, fn, f"workflow builder '{name}' did not return a "
                               f"WorkflowSpec {label}", f"got {type(result).__name__}")]
    key = getattr(result, "definition_key", None)
    if not (isinstance(key, str) and key.strip()):
        return [_builder_error(code, fn, f"workflow builder '{name}' returned a spec without "
                               f"definition_key {label}")]
    return []


def _check_one_builder(entry: BuilderEntry) -> list[HorsiesError]:
    fn = entry.fn
    name = getattr(fn, "__qualname__", repr(fn))
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        return [_builder_error(ErrorCode.WORKFLOW_CHECK_BUILDER_EXCEPTION, fn,
                               f"workflow builder '{name}' has no inspectable signature",
                               str(exc))]
    if entry.cases is None:
        if _required_params(sig):
            return [_builder_error(
                ErrorCode.WORKFLOW_CHECK_CASES_REQUIRED, fn,
                f"workflow builder '{name}' has required parameters but no cases",
                f"required: {', '.join(_required_params(sig))}",
            )]
        return _run_builder(fn, {}, "when called without arguments")
    cases = list(entry.cases) if isinstance(entry.cases, (list, tuple)) else [entry.cases]
    errors: list[HorsiesError] = []
    for index, case in enumerate(cases):
        problems = _case_problems(fn, sig, index, case)
        if problems:
            errors.extend(problems)
            continue
        errors.extend(_run_builder(fn, dict(case), f"for case {index} ({case!r})"))
    return errors


def _check_workflow_builders(app: Horsies, modules: list[ModuleType]) -> list[HorsiesError]:
    errors: list[HorsiesError] = []
    app.suppress_sends(True)
    try:
        for entry in _builder_entries(app):
            errors.extend(_check_one_builder(entry))
    finally:
        app.suppress_sends(False)
    return errors


# -- phase 3.3: undecorated builders ------------------------------------------


def _returns_workflow_spec(fn: Any) -> bool:
    annotations = getattr(fn, "__annotations__", None)
    if not isinstance(annotations, dict) or "return" not in annotations:
        return False
    ann = annotations["return"]
    if isinstance(ann, str):
        return bool(_SPEC_ANNOTATION.match(ann.strip()))
    spec_cls = _workflow_spec_class()
    target: Any = get_origin(ann) or ann
    if spec_cls is not None and target is spec_cls:
        return True
    return getattr(target, "__name__", None) == "WorkflowSpec"


def _check_undecorated_builders(app: Horsies, modules: list[ModuleType]) -> list[HorsiesError]:
    registered = {id(entry.fn) for entry in _builder_entries(app)}
    errors: list[HorsiesError] = []
    for module in modules:
        for name, obj in list(vars(module).items()):
            if not inspect.isfunction(obj) or obj.__module__ != module.__name__:
                continue
            if id(obj) in registered or getattr(obj, _BUILDER_MARKER, False):
                continue
            if getattr(obj, _NO_CHECK_MARKER, False) or not _returns_workflow_spec(obj):
                continue
            errors.append(WorkflowValidationError(
                f"function '{name}' returns a WorkflowSpec but is not registered with "
                "@app.workflow_builder",
                code=ErrorCode.WORKFLOW_CHECK_UNDECORATED_BUILDER,
                notes=[f"in module '{module.__name__}'"],
                help_text="decorate it with @app.workflow_builder() (cases=[{...}] when it "
                f"takes parameters),\nor set {name}.__horsies_no_check__ = True to skip it",
            ).with_location(_location_of(obj)))
    return errors


# -- phase 4: schedules -------------------------------------------------------


def _check_schedules(app: Horsies, modules: list[ModuleType]) -> list[HorsiesError]:
    if app.config.schedule is None:
        return []
    from horsies.scheduler.validation import schedule_errors

    return schedule_errors(app, app.config.schedule)


# -- phase 5: runtime policy safety -------------------------------------------


def _mapper_errors(
    mapper: Any, owner: str, location: SourceLocation | None, error_type: type[HorsiesError]
) -> list[HorsiesError]:
    from horsies.config import exception_mapper_problems

    as_dict = dict(mapper) if isinstance(mapper, Mapping) else mapper
    errors: list[HorsiesError] = [
        error_type(
            f"invalid exception_mapper of {owner}: {problem}",
            code=ErrorCode.CONFIG_INVALID_EXCEPTION_MAPPER,
        ).with_location(location)
        for problem in exception_mapper_problems(as_dict)
    ]
    if errors or not isinstance(as_dict, dict):
        return errors
    for exc_class, value in as_dict.items():
        if _is_reserved(value):
            errors.append(ConfigurationError(
                f"exception_mapper value '{_code_text(value)}' is a built-in error code",
                code=ErrorCode.CHECK_RESERVED_CODE_COLLISION,
                notes=[f"in {owner}", f"exception class: {getattr(exc_class, '__name__', exc_class)}"],
                help_text="built-in codes are reserved for the library; use a code of your own",
            ).with_location(location))
    return errors


def _default_code_errors(
    value: Any, owner: str, location: SourceLocation | None, error_type: type[HorsiesError]
) -> list[HorsiesError]:
    problem = error_code_problem(value)
    if problem is not None:
        return [error_type(
            f"invalid default_unhandled_error_code of {owner}: {problem}",
            code=ErrorCode.CONFIG_INVALID_EXCEPTION_MAPPER,
        ).with_location(location)]
    if _is_reserved(value) and _code_text(value) != _DEFAULT_CODE_ALLOWED:
        return [ConfigurationError(
            f"default_unhandled_error_code '{_code_text(value)}' is a built-in error code",
            code=ErrorCode.CHECK_RESERVED_CODE_COLLISION,
            notes=[f"in {owner}"],
            help_text="use UNHANDLED_EXCEPTION or a code of your own",
        ).with_location(location)]
    return []


def _retry_policy_errors(
    task_name: str, policy: Any, location: SourceLocation | None
) -> list[HorsiesError]:
    from horsies.config import RetryPolicy

    if policy is None:
        return []
    if not isinstance(policy, RetryPolicy):
        problem: str | None = f"retry_policy must be a RetryPolicy, got {type(policy).__name__}"
    else:
        problem = retry_policy_problem(policy)
    if problem is None:
        return []
    return [TaskDefinitionError(
        f"invalid retry_policy of task '{task_name}': {problem}",
        code=ErrorCode.TASK_INVALID_OPTIONS,
        help_text="build the policy with RetryPolicy.fixed([...], auto_retry_for=[...]) or "
        "RetryPolicy.exponential(..., auto_retry_for=[...])",
    ).with_location(location)]


def _check_runtime_policy(app: Horsies, modules: list[ModuleType]) -> list[HorsiesError]:
    config = app.config
    errors: list[HorsiesError] = []
    errors += _mapper_errors(config.exception_mapper, "app config", None, ConfigurationError)
    errors += _default_code_errors(
        config.default_unhandled_error_code, "app config", None, ConfigurationError
    )
    for name in list(app.tasks):
        task = app.tasks[name]
        location = _location_of(task)
        owner = f"task '{name}'"
        mapper = getattr(task, "exception_mapper", None)
        if mapper is not None:
            errors += _mapper_errors(mapper, owner, location, TaskDefinitionError)
        default = getattr(task, "default_unhandled_error_code", None)
        if default is not None:
            errors += _default_code_errors(default, owner, location, TaskDefinitionError)
        errors += _retry_policy_errors(name, getattr(task, "retry_policy", None), location)
    return errors


# -- phase 6: broker ----------------------------------------------------------


def _check_broker(app: Horsies) -> list[HorsiesError]:
    broker = app.config.broker
    try:
        url = broker.resolve_url()
    except HorsiesError as exc:
        return [_nowhere(exc)]
    except Exception as exc:  # noqa: BLE001 - reported as a check error
        return [_broker_failed(f"{type(exc).__name__}: {exc}", None)]
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT 1").fetchone()
    except Exception as exc:  # noqa: BLE001 - reported as a check error
        return [_broker_failed(str(exc).strip() or type(exc).__name__, url)]
    return []


def _broker_failed(reason: str, url: str | None) -> HorsiesError:
    from horsies.config import mask_url

    notes = [reason]
    if url is not None:
        notes.append(f"database: {mask_url(url)}")
    return _nowhere(ConfigurationError(
        "could not connect to the database",
        code=ErrorCode.BROKER_INIT_FAILED,
        notes=notes,
        help_text="check that PostgreSQL is running and that the URL, user and password "
        "are right",
    ))
