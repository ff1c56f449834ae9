"""``Weekday`` and ``Month`` (scheduling.md §5.6).

Canonical order, used by ranges and steps: Monday = 0 … Sunday = 6 (as
``date.weekday()``), January = 1 … December = 12.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Month", "Weekday", "month_number", "weekday_number"]


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


class Month(StrEnum):
    JANUARY = "january"
    FEBRUARY = "february"
    MARCH = "march"
    APRIL = "april"
    MAY = "may"
    JUNE = "june"
    JULY = "july"
    AUGUST = "august"
    SEPTEMBER = "september"
    OCTOBER = "october"
    NOVEMBER = "november"
    DECEMBER = "december"


_WEEKDAY_NUMBERS = {day: index for index, day in enumerate(Weekday)}
_MONTH_NUMBERS = {month: index for index, month in enumerate(Month, start=1)}


def weekday_number(day: Weekday) -> int:
    """Monday = 0 … Sunday = 6, as ``date.weekday()``."""
    return _WEEKDAY_NUMBERS[day]


def month_number(month: Month) -> int:
    """January = 1 … December = 12, as ``date.month``."""
    return _MONTH_NUMBERS[month]
