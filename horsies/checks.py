"""The phased start-up validation behind ``app.check()`` (app-and-config.md section 5).

Phases, in order; each stops the run when it found errors:

1. config: enforced when ``AppConfig`` is built, nothing to do here;
2. task imports (with the workflow validation that runs while modules import);
3.1 workflow definitions, 3.2 workflow builders, 3.3 undecorated builders
   (horsies.workflows.check);
4. schedules: each enabled entry of ``AppConfig.schedule`` can run (scheduling.md
   §12.2), one error per bad entry;
5. runtime policy safety (exception mappers, default codes, retry policies);
6. broker, only with ``live=True``: one short-lived connection and ``SELECT 1``.

Problems are returned, never raised.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from enum import Enum
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from horsies.codes import BUILTIN_CODE_REGISTRY, OperationalErrorCode, error_code_problem
from horsies.config.retry import retry_policy_problem
from horsies.errors import (
    ConfigurationError,
    ErrorCode,
    HorsiesError,
    SourceLocation,
    TaskDefinitionError,
    error_location_of,
    is_user_file,
)
from horsies.workflows.check import (
    check_undecorated_builders,
    check_workflow_builders,
    check_workflow_definitions,
    flatten,
)

if TYPE_CHECKING:
    from horsies.app import Horsies

__all__ = ["run_checks"]

_DEFAULT_CODE_ALLOWED = OperationalErrorCode.UNHANDLED_EXCEPTION.value

Phase = Callable[["Horsies", list[ModuleType]], list[HorsiesError]]


def run_checks(app: Horsies, *, live: bool = False) -> list[HorsiesError]:
    """Run every phase in order and return the errors of the first failing one."""
    errors, modules = _check_task_imports(app)
    if errors:
        return errors
    phases: tuple[Phase, ...] = (
        check_workflow_definitions,
        check_workflow_builders,
        check_undecorated_builders,
        _check_schedules,
        _check_runtime_policy,
    )
    for phase in phases:
        errors = phase(app, modules)
        if errors:
            return errors
    return _check_broker(app) if live else []


# -- helpers ------------------------------------------------------------------


def _nowhere(error: HorsiesError) -> HorsiesError:
    """Drop the location filled in automatically: it would point at the caller of check()."""
    return error.with_location(None)


def _location_of(task: Any) -> SourceLocation | None:
    return error_location_of(task)


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
        return flatten(exc), None
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
