"""``ScheduleConfig`` and ``TaskSchedule`` (scheduling.md §3, §4).

The timetable of ``horsies scheduler``, part of ``AppConfig.schedule``.
Both structs validate themselves when built and raise every problem
together (HRS-205). What depends on the app or the machine (the task and
its queue, the arguments' fit to the task's signature, the time zone) is
checked at scheduler start and by ``horsies check`` (scheduling.md §12.2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
import msgspec.structs

from horsies.scheduler._problems import Problems, is_list
from horsies.scheduler.patterns import PATTERN_TYPES, SchedulePattern

__all__ = ["MAX_CATCH_UP_RUNS", "SCHEDULE_NAME_MAX_CHARS", "ScheduleConfig", "TaskSchedule"]

SCHEDULE_NAME_MAX_CHARS: Final = 255  # horsies_schedule_state.schedule_name is VARCHAR(255)
MAX_CATCH_UP_RUNS: Final = 10_000


class TaskSchedule(msgspec.Struct, kw_only=True, frozen=True):
    """One timetable entry: which task runs when, with which arguments."""

    name: str
    task_name: str
    pattern: SchedulePattern
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    queue_name: str | None = None
    enabled: bool = True
    timezone: str = "UTC"
    catch_up_missed: bool = False
    max_catch_up_runs: int = 100

    def __post_init__(self) -> None:
        problems = Problems("TaskSchedule")
        _check_name(problems, "name", self.name)
        _check_name(problems, "task_name", self.task_name)
        if not isinstance(self.pattern, PATTERN_TYPES):
            names = ", ".join(cls.__name__ for cls in PATTERN_TYPES)
            problems.add(f"TaskSchedule.pattern must be one of {names}, "
                         f"got {type(self.pattern).__name__}")
        if is_list(self.args):
            msgspec.structs.force_setattr(self, "args", tuple(self.args))
        else:
            problems.add(f"TaskSchedule.args must be a tuple or list, "
                         f"got {type(self.args).__name__}")
        _check_kwargs(problems, self.kwargs)
        if problems.text("queue_name", self.queue_name, optional=True) and self.queue_name == "":
            problems.add("TaskSchedule.queue_name must not be empty (use None for the task's "
                         "own queue)")
        problems.boolean("enabled", self.enabled)
        if problems.text("timezone", self.timezone) and not self.timezone.strip():
            problems.add("TaskSchedule.timezone must not be empty", help_text='use an IANA '
                         'zone name such as "UTC" or "Europe/Berlin"')
        problems.boolean("catch_up_missed", self.catch_up_missed)
        problems.int_in("max_catch_up_runs", self.max_catch_up_runs, 1, MAX_CATCH_UP_RUNS)
        problems.raise_if_any()


class ScheduleConfig(msgspec.Struct, kw_only=True, frozen=True):
    """The scheduler's configuration: a master switch, the entries, the tick interval."""

    enabled: bool = True
    schedules: list[TaskSchedule] = msgspec.field(default_factory=list)
    check_interval_seconds: int = 1

    def __post_init__(self) -> None:
        problems = Problems("ScheduleConfig")
        problems.boolean("enabled", self.enabled)
        if not is_list(self.schedules):
            problems.add(f"ScheduleConfig.schedules must be a list of TaskSchedule, "
                         f"got {type(self.schedules).__name__}")
        else:
            msgspec.structs.force_setattr(self, "schedules", list(self.schedules))
            _check_entries(problems, self.schedules)
        problems.int_in("check_interval_seconds", self.check_interval_seconds, 1, 60)
        problems.raise_if_any()

    def enabled_schedules(self) -> list[TaskSchedule]:
        """The entries the scheduler runs (disabled ones are ignored entirely)."""
        return [entry for entry in self.schedules if entry.enabled]


def _check_name(problems: Problems, field: str, value: object) -> None:
    if not problems.text(field, value):
        return
    assert isinstance(value, str)
    if not value.strip():
        problems.add(f"TaskSchedule.{field} must not be empty")
    elif len(value) > SCHEDULE_NAME_MAX_CHARS:
        problems.add(f"TaskSchedule.{field} must be at most {SCHEDULE_NAME_MAX_CHARS} "
                     f"characters, got {len(value)}")


def _check_kwargs(problems: Problems, kwargs: object) -> None:
    if not isinstance(kwargs, Mapping):
        problems.add(f"TaskSchedule.kwargs must be a dict, got {type(kwargs).__name__}")
        return
    bad = [key for key in kwargs if not isinstance(key, str)]
    if bad:
        problems.add("TaskSchedule.kwargs keys must be str",
                     notes=[f"not str: {', '.join(repr(k) for k in bad)}"])


def _check_entries(problems: Problems, entries: Sequence[object]) -> None:
    wrong = [i for i, entry in enumerate(entries) if not isinstance(entry, TaskSchedule)]
    for index in wrong:
        problems.add(f"ScheduleConfig.schedules[{index}] must be a TaskSchedule, "
                     f"got {type(entries[index]).__name__}")
    names = Counter(entry.name for entry in entries if isinstance(entry, TaskSchedule))
    duplicates = sorted(name for name, count in names.items() if count > 1)
    if duplicates:
        problems.add(
            "ScheduleConfig.schedules has duplicate names: "
            + ", ".join(repr(n) for n in duplicates),
            help_text="each TaskSchedule.name is the key of its state row; make them unique",
        )
