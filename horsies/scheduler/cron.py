"""``CronSchedule`` and its day selectors (scheduling.md §5.7).

A typed five-field crontab line: it fires at second ``:00`` of every minute
that matches all fields. ``day`` says explicitly how day of month and day of
week combine, so the classic cron ambiguity never arises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TypeAlias

import msgspec

from horsies.scheduler._problems import Problems
from horsies.scheduler.cron_fields import DAY_OF_MONTH, DAY_OF_WEEK, HOUR, MINUTE, MONTH
from horsies.scheduler.cron_terms import CronMonthTerm, CronNumericTerm, CronWeekdayTerm

__all__ = [
    "BothDays",
    "ByMonthDay",
    "ByWeekday",
    "CronPlan",
    "CronSchedule",
    "DaySelector",
    "EitherDay",
    "EveryDay",
]

# February counts 29 days: a schedule for the 29th of February fires in leap years.
_LONGEST_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31,
                  11: 30, 12: 31}


class EveryDay(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind", tag="every_day"):
    """Every date matches."""


class ByMonthDay(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind",
                 tag="by_month_day"):
    """Dates whose day of month matches."""

    day_of_month: list[CronNumericTerm]

    def __post_init__(self) -> None:
        problems = Problems("ByMonthDay")
        DAY_OF_MONTH.check(problems, "day_of_month", self.day_of_month)
        problems.raise_if_any()


class ByWeekday(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind", tag="by_weekday"):
    """Dates whose weekday matches."""

    day_of_week: list[CronWeekdayTerm]

    def __post_init__(self) -> None:
        problems = Problems("ByWeekday")
        DAY_OF_WEEK.check(problems, "day_of_week", self.day_of_week)
        problems.raise_if_any()


class EitherDay(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind", tag="either_day"):
    """Dates whose day of month or weekday matches (classic cron with both set)."""

    day_of_month: list[CronNumericTerm]
    day_of_week: list[CronWeekdayTerm]

    def __post_init__(self) -> None:
        problems = Problems("EitherDay")
        DAY_OF_MONTH.check(problems, "day_of_month", self.day_of_month)
        DAY_OF_WEEK.check(problems, "day_of_week", self.day_of_week)
        problems.raise_if_any()


class BothDays(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind", tag="both_days"):
    """Dates whose day of month and weekday both match."""

    day_of_month: list[CronNumericTerm]
    day_of_week: list[CronWeekdayTerm]

    def __post_init__(self) -> None:
        problems = Problems("BothDays")
        DAY_OF_MONTH.check(problems, "day_of_month", self.day_of_month)
        DAY_OF_WEEK.check(problems, "day_of_week", self.day_of_week)
        problems.raise_if_any()


DaySelector: TypeAlias = EveryDay | ByMonthDay | ByWeekday | EitherDay | BothDays
_SELECTORS = (EveryDay, ByMonthDay, ByWeekday, EitherDay, BothDays)


class CronSchedule(msgspec.Struct, kw_only=True, frozen=True, tag_field="type", tag="cron"):
    """At minute resolution on any combination of minutes, hours, months and days."""

    minute: list[CronNumericTerm]
    hour: list[CronNumericTerm]
    month: list[CronMonthTerm]
    day: DaySelector

    def __post_init__(self) -> None:
        problems = Problems("CronSchedule")
        fine = MINUTE.check(problems, "minute", self.minute)
        fine = HOUR.check(problems, "hour", self.hour) and fine
        fine = MONTH.check(problems, "month", self.month) and fine
        if not isinstance(self.day, _SELECTORS):
            names = ", ".join(cls.__name__ for cls in _SELECTORS)
            problems.add(f"CronSchedule.day must be one of {names}, "
                         f"got {type(self.day).__name__}")
        elif fine and not self.plan().can_fire():
            why = "no selected day of month exists in any selected month (February counts 29)"
            problems.add("cron schedule can never fire", notes=[why])
        problems.raise_if_any()

    def plan(self) -> CronPlan:
        """The selected values of every field, for matching dates and times."""
        day = self.day
        dom = getattr(day, "day_of_month", None)
        dow = getattr(day, "day_of_week", None)
        return CronPlan(
            minutes=tuple(sorted(MINUTE.values(self.minute))),
            hours=tuple(sorted(HOUR.values(self.hour))),
            months=MONTH.values(self.month),
            days_of_month=None if dom is None else DAY_OF_MONTH.values(dom),
            days_of_week=None if dow is None else DAY_OF_WEEK.values(dow),
            both=not isinstance(day, EitherDay),
        )

    def summary(self) -> str:
        """One line for logs, e.g. ``cron min=0,30 hour=9-17 month=* day=dow=monday-friday``."""
        return (f"cron min={MINUTE.render(self.minute)} hour={HOUR.render(self.hour)} "
                f"month={MONTH.render(self.month)} day={_render_day(self.day)}")


def _render_day(day: DaySelector) -> str:
    if isinstance(day, ByMonthDay):
        return f"dom={DAY_OF_MONTH.render(day.day_of_month)}"
    if isinstance(day, ByWeekday):
        return f"dow={DAY_OF_WEEK.render(day.day_of_week)}"
    if isinstance(day, (EitherDay, BothDays)):
        joint = "OR" if isinstance(day, EitherDay) else "AND"
        return (f"(dom={DAY_OF_MONTH.render(day.day_of_month)} {joint} "
                f"dow={DAY_OF_WEEK.render(day.day_of_week)})")
    return "*"


@dataclass(frozen=True, slots=True)
class CronPlan:
    """A cron schedule as plain sets of values.

    ``days_of_month``/``days_of_week`` are ``None`` when the selector does not
    restrict them; ``both`` says whether the two restrictions are AND-ed
    (``BothDays``, or a selector with at most one) or OR-ed (``EitherDay``).
    """

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    days_of_month: frozenset[int] | None
    days_of_week: frozenset[int] | None
    both: bool

    def matches_date(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = self.days_of_month is None or day.day in self.days_of_month
        dow = self.days_of_week is None or day.weekday() in self.days_of_week
        if self.both:
            return dom and dow
        return dom or dow

    def can_fire(self) -> bool:
        """Some selected day of month exists in some selected month (weekdays always do)."""
        if self.days_of_month is None or not self.both:
            return True
        return any(d <= _LONGEST_MONTH[m] for m in self.months for d in self.days_of_month)
