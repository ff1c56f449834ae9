"""An independent oracle for ``calculate_next_run``: a brute-force minute walk.

It knows nothing of folds, date arithmetic or search bounds. It walks UTC
instants one minute apart (at the pattern's second), converts each to the
zone's wall clock, and returns the first instant after ``from_time`` whose
wall clock matches the pattern and was not shown earlier in the walk (a
repeated wall-clock time fires only the first time). The walk starts four
hours before ``from_time``, longer than any backward clock change, so the
first showing of a repeated time is always seen. Zone offsets of the tested
zones and years are whole minutes, so local seconds equal UTC seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from horsies import (
    BothDays,
    ByMonthDay,
    ByWeekday,
    CronSchedule,
    DailySchedule,
    EitherDay,
    HourlySchedule,
    MonthlySchedule,
    WeeklySchedule,
)
from horsies.scheduler import SchedulePattern
from horsies.scheduler.cron_fields import DAY_OF_MONTH, DAY_OF_WEEK, HOUR, MINUTE, MONTH
from horsies.scheduler.days import weekday_number

_LOOKBACK = timedelta(hours=4)
_MINUTE = timedelta(minutes=1)


def _second_of(pattern: SchedulePattern) -> int:
    if isinstance(pattern, HourlySchedule):
        return pattern.second
    if isinstance(pattern, (DailySchedule, WeeklySchedule, MonthlySchedule)):
        return pattern.time.second
    return 0


def wall_matches(pattern: SchedulePattern, wall: datetime) -> bool:
    """Whether a wall-clock reading (naive) is one of the pattern's times."""
    if isinstance(pattern, HourlySchedule):
        return (wall.minute, wall.second) == (pattern.minute, pattern.second)
    if isinstance(pattern, DailySchedule):
        return wall.time() == pattern.time
    if isinstance(pattern, WeeklySchedule):
        days = {weekday_number(d) for d in pattern.days}
        return wall.weekday() in days and wall.time() == pattern.time
    if isinstance(pattern, MonthlySchedule):
        return wall.day == pattern.day and wall.time() == pattern.time
    assert isinstance(pattern, CronSchedule)
    return _cron_matches(pattern, wall)


def _cron_matches(pattern: CronSchedule, wall: datetime) -> bool:
    if wall.second != 0 or wall.minute not in MINUTE.values(pattern.minute):
        return False
    if wall.hour not in HOUR.values(pattern.hour) or wall.month not in MONTH.values(pattern.month):
        return False
    day = pattern.day
    dom = getattr(day, "day_of_month", None)
    dow = getattr(day, "day_of_week", None)
    dom_ok = dom is not None and wall.day in DAY_OF_MONTH.values(dom)
    dow_ok = dow is not None and wall.weekday() in DAY_OF_WEEK.values(dow)
    if isinstance(day, ByMonthDay):
        return dom_ok
    if isinstance(day, ByWeekday):
        return dow_ok
    if isinstance(day, EitherDay):
        return dom_ok or dow_ok
    if isinstance(day, BothDays):
        return dom_ok and dow_ok
    return True  # EveryDay


def oracle_next_run(
    pattern: SchedulePattern, from_time: datetime, tz: str, horizon: timedelta
) -> datetime | None:
    """The first run after ``from_time`` within ``horizon``, or None."""
    zone = ZoneInfo(tz)
    start = from_time.astimezone(UTC)
    second = _second_of(pattern)
    instant = (start - _LOOKBACK).replace(second=second, microsecond=0)
    end = start + horizon
    seen: set[datetime] = set()
    while instant <= end:
        wall = instant.astimezone(zone).replace(tzinfo=None, fold=0)
        if wall not in seen:
            seen.add(wall)
            if instant > start and wall_matches(pattern, wall):
                return instant
        instant += _MINUTE
    return None


def first_showing(instant: datetime, tz: str) -> bool:
    """Whether ``instant`` is the first time the zone's clock shows its wall time."""
    zone = ZoneInfo(tz)
    wall = instant.astimezone(zone).replace(tzinfo=None, fold=0)
    probe = instant - _LOOKBACK
    while probe < instant:
        if probe.astimezone(zone).replace(tzinfo=None, fold=0) == wall:
            return False
        probe += timedelta(seconds=1) if probe.second != instant.second else _MINUTE
    return True
