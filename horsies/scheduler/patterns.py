"""The schedule patterns (scheduling.md §5).

Each pattern is a frozen, keyword-only ``msgspec.Struct`` tagged by a
``type`` field, which makes :data:`SchedulePattern` a tagged union. Every
pattern validates itself when built (HRS-205, problems raised together).
Wall-clock ``time`` fields have no tzinfo (they are read in the entry's
time zone) and are stored without microseconds: runs fall on whole seconds.
"""

from __future__ import annotations

from datetime import time
from typing import TypeAlias

import msgspec
import msgspec.structs

from horsies.scheduler._problems import Problems
from horsies.scheduler.cron import CronSchedule
from horsies.scheduler.days import Weekday

__all__ = [
    "PATTERN_TYPES",
    "DailySchedule",
    "HourlySchedule",
    "IntervalSchedule",
    "MonthlySchedule",
    "SchedulePattern",
    "WeeklySchedule",
]

_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
_UNIT_LIMITS = {"seconds": 86400, "minutes": 1440, "hours": 168, "days": 365}


def _whole_seconds(struct: msgspec.Struct, name: str) -> None:
    value: time = getattr(struct, name)
    if value.microsecond:
        msgspec.structs.force_setattr(struct, name, value.replace(microsecond=0))


def _clock(value: time) -> str:
    return value.strftime("%H:%M:%S")


class IntervalSchedule(msgspec.Struct, kw_only=True, frozen=True, tag_field="type",
                       tag="interval"):
    """Every fixed amount of elapsed time; the set units add up."""

    seconds: int | None = None
    minutes: int | None = None
    hours: int | None = None
    days: int | None = None

    def __post_init__(self) -> None:
        problems = Problems("IntervalSchedule")
        for unit, hi in _UNIT_LIMITS.items():
            problems.int_in(unit, getattr(self, unit), 1, hi, optional=True)
        if all(getattr(self, unit) is None for unit in _UNIT_SECONDS):
            problems.add(
                "IntervalSchedule requires at least one time unit",
                help_text="set seconds, minutes, hours or days, e.g. IntervalSchedule(minutes=10)",
            )
        problems.raise_if_any()

    def total_seconds(self) -> int:
        """The sum of the set units, in seconds."""
        return sum((getattr(self, unit) or 0) * size for unit, size in _UNIT_SECONDS.items())

    def summary(self) -> str:
        return f"every {self.total_seconds()}s"


class HourlySchedule(msgspec.Struct, kw_only=True, frozen=True, tag_field="type", tag="hourly"):
    """Every hour at ``HH:minute:second``."""

    minute: int
    second: int = 0

    def __post_init__(self) -> None:
        problems = Problems("HourlySchedule")
        problems.int_in("minute", self.minute, 0, 59)
        problems.int_in("second", self.second, 0, 59)
        problems.raise_if_any()

    def summary(self) -> str:
        return f"hourly at :{self.minute:02d}:{self.second:02d}"


class DailySchedule(msgspec.Struct, kw_only=True, frozen=True, tag_field="type", tag="daily"):
    """Every day at a wall-clock time."""

    time: time

    def __post_init__(self) -> None:
        problems = Problems("DailySchedule")
        if problems.wall_time("time", self.time):
            _whole_seconds(self, "time")
        problems.raise_if_any()

    def summary(self) -> str:
        return f"daily at {_clock(self.time)}"


class WeeklySchedule(msgspec.Struct, kw_only=True, frozen=True, tag_field="type", tag="weekly"):
    """On chosen weekdays at a wall-clock time."""

    days: list[Weekday]
    time: time

    def __post_init__(self) -> None:
        problems = Problems("WeeklySchedule")
        if problems.members("days", self.days, Weekday, empty_ok=False):
            msgspec.structs.force_setattr(self, "days", list(self.days))
            repeated = sorted({d.value for d in self.days if self.days.count(d) > 1})
            if repeated:
                problems.add("WeeklySchedule has duplicate days",
                             notes=[f"repeated: {', '.join(repeated)}"])
        if problems.wall_time("time", self.time):
            _whole_seconds(self, "time")
        problems.raise_if_any()

    def summary(self) -> str:
        return f"weekly on {','.join(d.value for d in self.days)} at {_clock(self.time)}"


class MonthlySchedule(msgspec.Struct, kw_only=True, frozen=True, tag_field="type",
                      tag="monthly"):
    """On a day of the month at a wall-clock time; months without that day are skipped."""

    day: int
    time: time

    def __post_init__(self) -> None:
        problems = Problems("MonthlySchedule")
        problems.int_in("day", self.day, 1, 31)
        if problems.wall_time("time", self.time):
            _whole_seconds(self, "time")
        problems.raise_if_any()

    def summary(self) -> str:
        return f"monthly on day {self.day} at {_clock(self.time)}"


SchedulePattern: TypeAlias = (
    IntervalSchedule | HourlySchedule | DailySchedule | WeeklySchedule | MonthlySchedule
    | CronSchedule
)
"""When a schedule entry runs: one of the six pattern structs."""

PATTERN_TYPES: tuple[type[msgspec.Struct], ...] = (
    IntervalSchedule, HourlySchedule, DailySchedule, WeeklySchedule, MonthlySchedule,
    CronSchedule,
)
