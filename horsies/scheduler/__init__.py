"""Recurring tasks: schedule patterns, the next-run calculator and the scheduler.

This package holds the pure parts (patterns, ``calculate_next_run``); the
service (``horsies.scheduler.service``, ``horsies.scheduler.run``) loads the
database driver and is imported only by ``horsies scheduler``.
"""

from __future__ import annotations

from horsies.scheduler.calculator import calculate_next_run
from horsies.scheduler.cron import (
    BothDays,
    ByMonthDay,
    ByWeekday,
    CronSchedule,
    DaySelector,
    EitherDay,
    EveryDay,
)
from horsies.scheduler.cron_terms import (
    CronEnumRange,
    CronEnumStep,
    CronEnumValues,
    CronEvery,
    CronMonthTerm,
    CronNumericTerm,
    CronRange,
    CronStep,
    CronValues,
    CronWeekdayTerm,
)
from horsies.scheduler.days import Month, Weekday
from horsies.scheduler.patterns import (
    DailySchedule,
    HourlySchedule,
    IntervalSchedule,
    MonthlySchedule,
    SchedulePattern,
    WeeklySchedule,
)

__all__ = [
    "BothDays",
    "ByMonthDay",
    "ByWeekday",
    "CronEnumRange",
    "CronEnumStep",
    "CronEnumValues",
    "CronEvery",
    "CronMonthTerm",
    "CronNumericTerm",
    "CronRange",
    "CronSchedule",
    "CronStep",
    "CronValues",
    "CronWeekdayTerm",
    "DailySchedule",
    "DaySelector",
    "EitherDay",
    "EveryDay",
    "HourlySchedule",
    "IntervalSchedule",
    "Month",
    "MonthlySchedule",
    "SchedulePattern",
    "Weekday",
    "WeeklySchedule",
    "calculate_next_run",
]
