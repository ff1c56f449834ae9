"""Next runs pinned across DST changes: the consequences of scheduling.md §6 and the
examples of §2 and §15."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from horsies import (
    ByMonthDay,
    CronEnumValues,
    CronEvery,
    CronSchedule,
    CronStep,
    CronValues,
    DailySchedule,
    EitherDay,
    EveryDay,
    HourlySchedule,
    IntervalSchedule,
    Month,
    MonthlySchedule,
    TaskSchedule,
    Weekday,
    WeeklySchedule,
)
from horsies.scheduler import SchedulePattern, calculate_next_run

BERLIN = "Europe/Berlin"


def runs(pattern: SchedulePattern, start: datetime, tz: str, count: int) -> list[str]:
    """The next ``count`` runs after ``start``, as UTC ISO strings."""
    found, at = [], start
    for _ in range(count):
        at = calculate_next_run(pattern, at, tz)
        found.append(at.isoformat())
    return found


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# -- §6 "consequences worth testing" -----------------------------------------------------


def test_daily_in_the_gap_skips_the_spring_day_and_runs_once_on_the_fall_day() -> None:
    pattern = DailySchedule(time=time(2, 30))
    # 2024-03-31: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    assert runs(pattern, utc(2024, 3, 29, 12), BERLIN, 3) == [
        "2024-03-30T01:30:00+00:00",  # 02:30 CET
        "2024-04-01T00:30:00+00:00",  # 02:30 CEST; nothing on the 31st
        "2024-04-02T00:30:00+00:00",
    ]
    # 2024-10-27: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice, fires once.
    assert runs(pattern, utc(2024, 10, 25, 12), BERLIN, 3) == [
        "2024-10-26T00:30:00+00:00",
        "2024-10-27T00:30:00+00:00",  # the first 02:30 (CEST) only
        "2024-10-28T01:30:00+00:00",
    ]


def test_hourly_runs_once_in_a_repeated_hour_and_never_in_a_skipped_one() -> None:
    pattern = HourlySchedule(minute=15)
    assert runs(pattern, utc(2024, 3, 30, 23, 30), BERLIN, 3) == [
        "2024-03-31T00:15:00+00:00",  # 01:15 CET
        "2024-03-31T01:15:00+00:00",  # 03:15 CEST: 02:15 was skipped
        "2024-03-31T02:15:00+00:00",
    ]
    assert runs(pattern, utc(2024, 10, 26, 23, 30), BERLIN, 3) == [
        "2024-10-27T00:15:00+00:00",  # 02:15 CEST
        "2024-10-27T02:15:00+00:00",  # 03:15 CET: the repeated 02:15 CET did not fire
        "2024-10-27T03:15:00+00:00",
    ]


def test_a_start_inside_the_repeated_hour_moves_on_to_the_next_hour() -> None:
    second_pass = datetime(2024, 10, 27, 2, 5, tzinfo=ZoneInfo(BERLIN)).replace(fold=1)
    assert calculate_next_run(HourlySchedule(minute=15), second_pass, BERLIN) == utc(
        2024, 10, 27, 2, 15)  # 03:15 CET


def test_monthly_in_a_gap_skips_that_month() -> None:
    # 2024-03-31 02:30 does not exist in Berlin; April has no 31st.
    assert runs(MonthlySchedule(day=31, time=time(2, 30)), utc(2024, 3, 1), BERLIN, 2) == [
        "2024-05-31T00:30:00+00:00",
        "2024-07-31T00:30:00+00:00",
    ]


def test_monthly_skips_months_without_the_day() -> None:
    assert runs(MonthlySchedule(day=29, time=time(0)), utc(2023, 1, 30), "UTC", 3) == [
        "2023-03-29T00:00:00+00:00",  # no 29 February in 2023
        "2023-04-29T00:00:00+00:00",
        "2023-05-29T00:00:00+00:00",
    ]
    assert runs(MonthlySchedule(day=29, time=time(0)), utc(2024, 1, 30), "UTC", 1) == [
        "2024-02-29T00:00:00+00:00"]


def test_interval_keeps_real_time_spacing_across_a_change() -> None:
    assert runs(IntervalSchedule(hours=1, minutes=15), utc(2024, 3, 31, 0), BERLIN, 3) == [
        "2024-03-31T01:15:00+00:00",
        "2024-03-31T02:30:00+00:00",
        "2024-03-31T03:45:00+00:00",
    ]
    assert IntervalSchedule(hours=1, minutes=15).total_seconds() == 4500


# -- §2 ------------------------------------------------------------------------------


def test_the_examples_of_section_2() -> None:
    assert runs(IntervalSchedule(minutes=10), utc(2024, 3, 31, 0, 55, 1), "UTC", 2) == [
        "2024-03-31T01:05:01+00:00", "2024-03-31T01:15:01+00:00"]
    close_ledger = DailySchedule(time=time(23, 55))
    assert runs(close_ledger, utc(2024, 3, 30, 12), BERLIN, 2) == [
        "2024-03-30T22:55:00+00:00",  # CET
        "2024-03-31T21:55:00+00:00",  # CEST
    ]
    backup = WeeklySchedule(days=[Weekday.SATURDAY, Weekday.SUNDAY], time=time(4, 0))
    assert runs(backup, utc(2024, 3, 28), "UTC", 3) == [
        "2024-03-30T04:00:00+00:00", "2024-03-31T04:00:00+00:00", "2024-04-06T04:00:00+00:00"]


# -- §15 -------------------------------------------------------------------------------

MONTHLY_INVOICES = TaskSchedule(
    name="monthly-invoices", task_name="issue_invoices",
    pattern=MonthlySchedule(day=1, time=time(6, 0)),
    timezone="America/Sao_Paulo", catch_up_missed=True, max_catch_up_runs=12)
METER_POLL = TaskSchedule(name="meter-poll", task_name="poll_meters",
                          pattern=HourlySchedule(minute=7, second=30), queue_name="urgent")
QUARTER_CLOSE = TaskSchedule(
    name="quarter-close", task_name="close_quarter",
    pattern=CronSchedule(
        minute=[CronValues(values=[0])],
        hour=[CronValues(values=[5])],
        month=[CronEnumValues[Month](values=[Month.JANUARY, Month.APRIL,
                                             Month.JULY, Month.OCTOBER])],
        day=ByMonthDay(day_of_month=[CronValues(values=[1])]),
    ))
FEED_REFRESH = TaskSchedule(
    name="feed-refresh", task_name="refresh_feeds",
    pattern=CronSchedule(minute=[CronValues(values=[20])], hour=[CronStep(step=6)],
                         month=[CronEvery()], day=EveryDay()))
PAYROLL_CHECK = TaskSchedule(
    name="payroll-check", task_name="check_payroll",
    pattern=CronSchedule(
        minute=[CronValues(values=[0])], hour=[CronValues(values=[12])],
        month=[CronEvery()],
        day=EitherDay(day_of_month=[CronValues(values=[15])],
                      day_of_week=[CronEnumValues[Weekday](values=[Weekday.SUNDAY])]),
    ))


def test_monthly_invoices_in_sao_paulo_across_its_2018_dst_season() -> None:
    # Daylight saving time ran from 2018-11-04 to 2019-02-17 (-02:00 instead of -03:00).
    entry = MONTHLY_INVOICES
    assert runs(entry.pattern, utc(2018, 9, 15), entry.timezone, 7) == [
        "2018-10-01T09:00:00+00:00",
        "2018-11-01T09:00:00+00:00",
        "2018-12-01T08:00:00+00:00",
        "2019-01-01T08:00:00+00:00",
        "2019-02-01T08:00:00+00:00",
        "2019-03-01T09:00:00+00:00",
        "2019-04-01T09:00:00+00:00",
    ]


@pytest.mark.parametrize(("entry", "tz", "start", "expected"), [
    # As written (UTC): a DST change elsewhere does not matter.
    (METER_POLL, "UTC", utc(2024, 3, 31, 0, 10), [
        "2024-03-31T01:07:30+00:00", "2024-03-31T02:07:30+00:00", "2024-03-31T03:07:30+00:00"]),
    (QUARTER_CLOSE, "UTC", utc(2024, 3, 30), [
        "2024-04-01T05:00:00+00:00", "2024-07-01T05:00:00+00:00", "2024-10-01T05:00:00+00:00",
        "2025-01-01T05:00:00+00:00"]),
    (FEED_REFRESH, "UTC", utc(2024, 3, 30, 19), [
        "2024-03-31T00:20:00+00:00", "2024-03-31T06:20:00+00:00", "2024-03-31T12:20:00+00:00"]),
    (PAYROLL_CHECK, "UTC", utc(2024, 11, 1), [
        "2024-11-03T12:00:00+00:00", "2024-11-10T12:00:00+00:00", "2024-11-15T12:00:00+00:00",
        "2024-11-17T12:00:00+00:00"]),
    # The same patterns read in a zone that changes its clocks.
    (METER_POLL, BERLIN, utc(2024, 10, 26, 21), [
        "2024-10-26T21:07:30+00:00", "2024-10-26T22:07:30+00:00", "2024-10-26T23:07:30+00:00",
        "2024-10-27T00:07:30+00:00",  # 02:07:30 CEST
        "2024-10-27T02:07:30+00:00",  # 03:07:30 CET: the repeated 02:07:30 does not fire
    ]),
    (METER_POLL, BERLIN, utc(2024, 3, 30, 23), [
        "2024-03-30T23:07:30+00:00", "2024-03-31T00:07:30+00:00",
        "2024-03-31T01:07:30+00:00",  # 03:07:30 CEST: 02:07:30 never happened
    ]),
    (QUARTER_CLOSE, "America/New_York", utc(2024, 1, 15), [
        "2024-04-01T09:00:00+00:00", "2024-07-01T09:00:00+00:00", "2024-10-01T09:00:00+00:00",
        "2025-01-01T10:00:00+00:00"]),
    (FEED_REFRESH, BERLIN, utc(2024, 3, 30, 12), [
        "2024-03-30T17:20:00+00:00", "2024-03-30T23:20:00+00:00",
        "2024-03-31T04:20:00+00:00", "2024-03-31T10:20:00+00:00"]),
    (PAYROLL_CHECK, "America/New_York", utc(2024, 10, 26), [
        "2024-10-27T16:00:00+00:00", "2024-11-03T17:00:00+00:00", "2024-11-10T17:00:00+00:00",
        "2024-11-15T17:00:00+00:00", "2024-11-17T17:00:00+00:00"]),
], ids=lambda value: getattr(value, "name", None))
def test_the_examples_of_section_15(
    entry: TaskSchedule, tz: str, start: datetime, expected: list[str]
) -> None:
    assert runs(entry.pattern, start, tz, len(expected)) == expected
