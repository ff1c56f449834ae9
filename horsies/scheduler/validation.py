"""What the scheduler checks before it starts (scheduling.md §12.2).

Per enabled entry, in order, the first failure is the entry's error:

1. the time zone loads (HRS-205);
2. the task is registered (HRS-300);
3. the queue resolves and fits the queue mode (HRS-205);
4. ``args``/``kwargs`` bind to the task's signature (HRS-205);
5. they encode as ``send()`` would encode them, and none targets a parameter
   the workflow engine fills (HRS-205).

``horsies check`` (through ``app.check()``) reports one error per bad entry;
the scheduler stops at the first one. Disabled entries are not checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from horsies.errors import ConfigurationError, ErrorCode, HorsiesError, RegistryError
from horsies.scheduler.calculator import load_zone

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.config.schedule import ScheduleConfig, TaskSchedule

__all__ = ["entry_error", "resolve_queue", "schedule_errors"]

_INJECTED = ("workflow_ctx", "workflow_meta")


def schedule_errors(app: Horsies, config: ScheduleConfig | None) -> list[HorsiesError]:
    """One error per enabled entry that cannot run; empty when all can."""
    if config is None:
        return []
    found = (entry_error(app, entry) for entry in config.enabled_schedules())
    return [error for error in found if error is not None]


def entry_error(app: Horsies, entry: TaskSchedule) -> HorsiesError | None:
    """The first failing check of one entry, or ``None``."""
    error = _zone_error(entry) or _task_error(app, entry) or _queue_error(app, entry)
    if error is None:
        task = app.tasks[entry.task_name]
        error = _binding_error(task, entry) or _encoding_error(entry)
    return None if error is None else error.with_location(None)


def resolve_queue(app: Horsies, entry: TaskSchedule) -> str:
    """The entry's queue (override, else the task's), validated against the queue mode."""
    task = app.tasks[entry.task_name]
    wanted = entry.queue_name if entry.queue_name is not None else task.task_queue_name
    return app.validate_queue_name(wanted)


def _zone_error(entry: TaskSchedule) -> HorsiesError | None:
    try:
        load_zone(entry.timezone)
    except ValueError as exc:
        return ConfigurationError(
            f"invalid timezone for schedule '{entry.name}'",
            code=ErrorCode.CONFIG_INVALID_SCHEDULE,
            notes=[f"timezone: {entry.timezone!r}", str(exc)],
            help_text='use an IANA zone name this machine knows, such as "UTC" or '
            '"Europe/Berlin" (install the tzdata package where the system has no zone database)',
        )
    return None


def _task_error(app: Horsies, entry: TaskSchedule) -> HorsiesError | None:
    if entry.task_name in app.tasks:
        return None
    registered = sorted(app.tasks)
    return RegistryError(
        f"scheduled task '{entry.task_name}' not registered",
        code=ErrorCode.TASK_NOT_REGISTERED,
        notes=[
            f"schedule '{entry.name}' names task '{entry.task_name}'",
            f"registered tasks: {', '.join(registered)}" if registered else "no task is registered",
        ],
        help_text="define the task with @app.task and list its module in app.discover_tasks([...])",
    )


def _queue_error(app: Horsies, entry: TaskSchedule) -> HorsiesError | None:
    try:
        resolve_queue(app, entry)
    except HorsiesError as exc:
        return ConfigurationError(
            f"invalid queue configuration for schedule '{entry.name}'",
            code=ErrorCode.CONFIG_INVALID_SCHEDULE,
            notes=[f"{f'[{exc.code}] ' if exc.code else ''}{exc.message}", *exc.notes],
            help_text="in DEFAULT mode leave queue_name as None; in CUSTOM mode name a "
            "configured queue (on the entry or the task)",
        )
    return None


def _binding_error(task: Any, entry: TaskSchedule) -> HorsiesError | None:
    try:
        task.signature.bind(*entry.args, **entry.kwargs)
    except TypeError as exc:
        return ConfigurationError(
            f"schedule '{entry.name}' args/kwargs do not match task '{entry.task_name}' "
            "signature",
            code=ErrorCode.CONFIG_INVALID_SCHEDULE,
            notes=[str(exc), f"signature: {entry.task_name}{task.signature}"],
            help_text="update TaskSchedule.args / kwargs to fit the task's parameters",
        )
    return None


def _encoding_error(entry: TaskSchedule) -> HorsiesError | None:
    from horsies.codec import args_to_json, kwargs_to_json

    injected = [name for name in _INJECTED if name in entry.kwargs]
    if injected:
        reason = f"{injected[0]} is filled by the workflow engine and cannot be scheduled"
    else:
        reason = None
        for encoded in (args_to_json(entry.args), kwargs_to_json(entry.kwargs)):
            if encoded.is_err():
                reason = str(encoded.err_value)
                break
    if reason is None:
        return None
    return ConfigurationError(
        f"schedule '{entry.name}' arguments are not encodable for task '{entry.task_name}'",
        code=ErrorCode.CONFIG_INVALID_SCHEDULE,
        notes=[reason],
        help_text="scheduled arguments are encoded as send() encodes them (serialization.md)",
    )
