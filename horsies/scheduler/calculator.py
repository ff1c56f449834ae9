"""The next run of a pattern: one pure function (scheduling.md §6).

``calculate_next_run(pattern, from_time, tz_str)`` returns the first run
instant strictly after ``from_time`` as a UTC-aware datetime. It reads no
clock and no database.

A wall-clock time on a local date is resolved by trying both DST folds and
keeping each candidate that converts to UTC and back to the same wall-clock
time: none means the clock jumped over it that day (the occurrence is
skipped); two mean the clock was set back (only the earlier instant is used).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING

from horsies.scheduler.cron import CronSchedule

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

# zoneinfo and calendar load when a schedule is computed: every process that
# imports horsies (a worker's children among them) would pay for them otherwise.
from horsies.scheduler.days import weekday_number
from horsies.scheduler.patterns import (
    DailySchedule,
    HourlySchedule,
    IntervalSchedule,
    MonthlySchedule,
    SchedulePattern,
    WeeklySchedule,
)

__all__ = ["calculate_next_run", "load_zone", "resolve_wall_time"]

# Search bounds of §6: how many local hours, dates or months are tried.
HOURLY_BOUND = 6
DAILY_BOUND = 8
WEEKLY_BOUND = 15
MONTHLY_BOUND = 25
CRON_BOUND = 146_097  # one 400-year Gregorian cycle of dates

_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


def load_zone(tz_str: str) -> ZoneInfo:
    """The zone named ``tz_str``, or ``ValueError("Invalid timezone …")``."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz_str)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        raise ValueError(f"Invalid timezone {tz_str!r}: {exc}") from None


def resolve_wall_time(day: date, clock: time, zone: tzinfo) -> datetime | None:
    """The earliest UTC instant at which zone's clock shows ``day clock``; None if never."""
    first = datetime.combine(day, clock, tzinfo=zone)
    second = first.replace(fold=1)
    offset = first.utcoffset()
    if offset is not None and offset == second.utcoffset():
        # Both folds agree: the time exists exactly once (PEP 495), the common case.
        return datetime.combine(day, clock, tzinfo=UTC) - offset
    found: datetime | None = None
    for local in (first, second):
        instant = local.astimezone(UTC)
        back = instant.astimezone(zone)
        if back.date() == day and back.time() == clock and (found is None or instant < found):
            found = instant
    return found


def calculate_next_run(
    pattern: SchedulePattern, from_time: datetime, tz_str: str = "UTC"
) -> datetime:
    """The first run of ``pattern`` strictly after ``from_time``, in UTC.

    ``from_time`` must be timezone-aware (``ValueError``); an unknown zone is a
    ``ValueError``; an exhausted search bound (only with pathological zone
    data) is a ``RuntimeError``.
    """
    if from_time.tzinfo is None or from_time.utcoffset() is None:
        raise ValueError("from_time must be timezone-aware")
    zone = load_zone(tz_str)
    try:
        start = from_time.astimezone(UTC)
        if isinstance(pattern, IntervalSchedule):
            return start + timedelta(seconds=pattern.total_seconds())
        found = _first_after(_instants(pattern, start, zone), start)
    except OverflowError:
        raise RuntimeError(
            f"the next run of {type(pattern).__name__} after {from_time.isoformat()} "
            "lies beyond the year 9999"
        ) from None
    if found is None:
        raise RuntimeError(
            f"no run of {type(pattern).__name__} found after {start.isoformat()} in {tz_str} "
            "within the search bound"
        )
    return found


def _first_after(candidates: Iterator[datetime | None], start: datetime) -> datetime | None:
    for instant in candidates:
        if instant is not None and instant > start:
            return instant
    return None


def _instants(pattern: SchedulePattern, start: datetime, zone: tzinfo) -> Iterator[datetime | None]:
    """Candidate instants in the order §6 tries them (None: skipped occurrence)."""
    local = start.astimezone(zone).replace(tzinfo=None)
    if isinstance(pattern, HourlySchedule):
        return _hourly(pattern, local, zone)
    if isinstance(pattern, DailySchedule):
        return (resolve_wall_time(d, pattern.time, zone) for d in _dates(local, DAILY_BOUND))
    if isinstance(pattern, WeeklySchedule):
        days = {weekday_number(d) for d in pattern.days}
        return (resolve_wall_time(d, pattern.time, zone)
                for d in _dates(local, WEEKLY_BOUND) if d.weekday() in days)
    if isinstance(pattern, MonthlySchedule):
        return (resolve_wall_time(d, pattern.time, zone)
                for d in _month_days(local, pattern.day))
    if isinstance(pattern, CronSchedule):
        return _cron(pattern, local, zone)
    raise TypeError(f"not a schedule pattern: {type(pattern).__name__}")


def _hourly(pattern: HourlySchedule, local: datetime, zone: tzinfo) -> Iterator[datetime | None]:
    hour = local.replace(minute=0, second=0, microsecond=0, fold=0)
    for _ in range(HOURLY_BOUND):
        yield resolve_wall_time(hour.date(), time(hour.hour, pattern.minute, pattern.second), zone)
        hour += _HOUR  # naive arithmetic: consecutive wall-clock hours


def _dates(local: datetime, count: int) -> Iterator[date]:
    day = local.date()
    for _ in range(count):
        yield day
        day += _DAY


def _month_days(local: datetime, day: int) -> Iterator[date]:
    year, month = local.year, local.month
    for _ in range(MONTHLY_BOUND):
        if day <= _days_in(year, month):  # shorter months are skipped
            yield date(year, month, day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _cron(pattern: CronSchedule, local: datetime, zone: tzinfo) -> Iterator[datetime | None]:
    plan = pattern.plan()
    first = local.date()
    skip_below = _first_day_cutoff(local, zone)
    for day in _dates(local, CRON_BOUND):
        if not plan.matches_date(day):
            continue
        floor = skip_below if day == first else -1
        for hour in plan.hours:
            if hour * 60 + 59 < floor:
                continue
            for minute in plan.minutes:
                if hour * 60 + minute >= floor:
                    yield resolve_wall_time(day, time(hour, minute), zone)


def _first_day_cutoff(local: datetime, zone: tzinfo) -> int:
    """Minute of the first date below which no wall time can resolve after ``local``.

    Only a backward clock change can make a wall time earlier than ``local``
    happen after it, and by at most the spread of the UTC offsets around that
    date. Skipping the minutes below ``local`` minus that spread spares
    resolving up to 1440 candidates that all lie in the past.
    """
    cutoff = local - _offset_spread(local.date(), zone)
    if cutoff.date() < local.date():
        return -1
    return cutoff.hour * 60 + cutoff.minute


@lru_cache(maxsize=256)
def _offset_spread(day: date, zone: tzinfo) -> timedelta:
    """Highest minus lowest UTC offset from a day before ``day`` to a day after it.

    Sampled every 15 minutes: no zone keeps an offset for less.
    """
    first = datetime.combine(day - _DAY, time(), tzinfo=zone).astimezone(UTC)
    offsets = [(first + timedelta(minutes=15 * k)).astimezone(zone).utcoffset() or timedelta(0)
               for k in range(3 * 96 + 1)]
    return max(offsets) - min(offsets)


def _days_in(year: int, month: int) -> int:
    import calendar

    return calendar.monthrange(year, month)[1]
