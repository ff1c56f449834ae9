"""``calculate_next_run`` against an independent brute-force oracle (scheduling.md §6).

For every pattern, hypothesis draws patterns, zones and start times (most of
them within two days of a DST change, with wall-clock times near the hours
the clocks jump) and compares the calculator with a minute walk
(tests/unit/schedule_oracle.py). The oracle walks a bounded horizon; when it
finds nothing there, the calculator's answer must lie beyond the horizon,
match the pattern, be the first showing of its wall-clock time, and have no
other run in the horizon before it.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from horsies import (
    BothDays,
    ByMonthDay,
    ByWeekday,
    CronEnumRange,
    CronEnumStep,
    CronEnumValues,
    CronEvery,
    CronRange,
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
    Weekday,
    WeeklySchedule,
)
from horsies.errors import HorsiesError
from horsies.scheduler import SchedulePattern, calculate_next_run
from tests.unit.schedule_oracle import first_showing, oracle_next_run, wall_matches

# UTC; two zones with one-hour changes at night (Europe, America); a 30-minute
# change (Lord Howe); changes at local midnight (Sao Paulo until 2019); a
# half-hour zone without DST; an offset of 12:45/13:45 (Chatham).
ZONES = [
    "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo",
    "Asia/Kolkata", "Pacific/Chatham",
]
YEARS = (2016, 2018, 2024, 2031)
# Local hours around which the tested zones change their clocks.
NIGHT_HOURS = [0, 1, 2, 3, 23]

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


hours = st.one_of(st.sampled_from(NIGHT_HOURS), st.integers(0, 23))
minutes = st.one_of(st.sampled_from([0, 15, 30, 45, 59]), st.integers(0, 59))
seconds = st.sampled_from([0, 0, 30, 59])
wall_times = st.builds(time, hours, minutes, seconds)


@cache
def transitions(tz: str) -> list[datetime]:
    """Every instant (to the minute) at which the zone's UTC offset changes in YEARS."""
    zone = ZoneInfo(tz)
    found: list[datetime] = []
    for year in YEARS:
        probe = datetime(year, 1, 1, tzinfo=UTC)
        end = datetime(year + 1, 1, 1, tzinfo=UTC)
        while probe < end:
            after = probe + timedelta(hours=6)
            if probe.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
                low, high = probe, after
                while high - low > timedelta(minutes=1):
                    mid = low + (high - low) / 2
                    if mid.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                        low = mid
                    else:
                        high = mid
                found.append(high.replace(second=0, microsecond=0))
            probe = after
    return found


def test_the_tested_zones_change_their_clocks() -> None:
    """The strategies below aim at DST changes: make sure the zone data has them."""
    for tz in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham"):
        assert len(transitions(tz)) == 2 * len(YEARS), tz
    assert transitions("America/Sao_Paulo")  # DST ended in 2019
    assert transitions("UTC") == [] and transitions("Asia/Kolkata") == []


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, datetime, time]:
    """A zone, a start instant and a wall-clock time for the pattern.

    Usually the start lies within two days before (or a few hours after) one
    of the zone's DST changes, and the wall-clock time falls in the hour the
    change skips or repeats, so gaps and folds are met often.
    """
    tz = draw(st.sampled_from(ZONES))
    changes = transitions(tz)
    clock = draw(wall_times)
    if changes and draw(st.integers(0, 9)) < 8:
        change = draw(st.sampled_from(changes))
        start = change + timedelta(seconds=draw(st.integers(-2 * 86400, 6 * 3600)))
        if draw(st.booleans()):
            clock = draw(st.sampled_from(skipped_or_repeated(tz, change)))
    else:
        start = datetime(draw(st.sampled_from(YEARS)), 1, 1, tzinfo=UTC) + timedelta(
            seconds=draw(st.integers(0, 365 * 86400)))
    micro = draw(st.sampled_from([0, 0, 0, 500_000, 999_999]))
    return tz, start + timedelta(microseconds=micro), clock


def skipped_or_repeated(tz: str, change: datetime) -> list[time]:
    """Wall-clock times (whole minutes, some seconds) the change skips or shows twice."""
    zone = ZoneInfo(tz)
    before = (change - timedelta(minutes=1)).astimezone(zone).replace(tzinfo=None)
    after = change.astimezone(zone).replace(tzinfo=None)
    low, high = (before, after) if after > before else (after, before + timedelta(minutes=1))
    region: list[time] = []
    wall = low + timedelta(minutes=1) if after > before else low
    while wall < high:
        region.append(wall.time())
        region.append(wall.time().replace(second=30))
        wall += timedelta(minutes=1)
    return region or [after.time()]


def assert_agrees(pattern: SchedulePattern, tz: str, start: datetime, horizon: timedelta) -> None:
    got = calculate_next_run(pattern, start, tz)
    assert got.tzinfo is UTC and got > start
    expected = oracle_next_run(pattern, start, tz, horizon)
    if expected is not None:
        assert got == expected, (pattern, tz, start)
        return
    # Nothing within the horizon: the answer lies beyond it and is a real run.
    assert got > start + horizon, (pattern, tz, start, got)
    zone = ZoneInfo(tz)
    assert wall_matches(pattern, got.astimezone(zone).replace(tzinfo=None))
    assert first_showing(got, tz)
    assert oracle_next_run(pattern, got - horizon, tz, horizon) == got


# -- one property per pattern ---------------------------------------------------------


@PROPERTY
@given(scenarios(), st.booleans())
def test_hourly_matches_the_oracle(scenario: tuple[str, datetime, time], own: bool) -> None:
    tz, start, clock = scenario
    minute, second = (clock.minute, clock.second) if own else (start.minute, 0)
    assert_agrees(HourlySchedule(minute=minute, second=second), tz, start, timedelta(hours=7))


@PROPERTY
@given(scenarios())
def test_daily_matches_the_oracle(scenario: tuple[str, datetime, time]) -> None:
    tz, start, clock = scenario
    assert_agrees(DailySchedule(time=clock), tz, start, timedelta(days=3))


@PROPERTY
@given(scenarios(), st.sets(st.sampled_from(list(Weekday)), min_size=1))
def test_weekly_matches_the_oracle(
    scenario: tuple[str, datetime, time], days: set[Weekday]
) -> None:
    tz, start, clock = scenario
    pattern = WeeklySchedule(days=sorted(days, key=list(Weekday).index), time=clock)
    assert_agrees(pattern, tz, start, timedelta(days=3))


@PROPERTY
@given(scenarios(), st.integers(-1, 3), st.integers(1, 31))
def test_monthly_matches_the_oracle(
    scenario: tuple[str, datetime, time], days_ahead: int, any_day: int
) -> None:
    """The day is mostly that of the start (give or take), so the horizon holds the run."""
    tz, start, clock = scenario
    local = start.astimezone(ZoneInfo(tz))
    day = min(31, max(1, local.day + days_ahead)) if days_ahead >= 0 else any_day
    assert_agrees(MonthlySchedule(day=day, time=clock), tz, start, timedelta(days=3))


def numeric_terms(lo: int, hi: int) -> st.SearchStrategy[object]:
    span = hi - lo
    values = st.lists(st.integers(lo, hi), min_size=1, max_size=4)
    ranges = st.tuples(st.integers(lo, hi), st.integers(lo, hi), st.integers(1, span)).map(
        lambda t: CronRange(start=min(t[0], t[1]), end=max(t[0], t[1]), step=t[2]))
    return st.one_of(
        st.just(CronEvery()),
        st.integers(1, span).map(lambda s: CronStep(step=s)),
        values.map(lambda v: CronValues(values=v)),
        ranges,
    )


def enum_terms(members: list[Weekday] | list[Month]) -> st.SearchStrategy[object]:
    span = len(members) - 1
    pick = st.sampled_from(members)
    return st.one_of(
        st.just(CronEvery()),
        st.lists(pick, min_size=1, max_size=4).map(lambda v: CronEnumValues(values=v)),
        st.tuples(pick, pick, st.integers(1, span)).map(
            lambda t: CronEnumRange(start=min(t[0], t[1], key=members.index),
                                    end=max(t[0], t[1], key=members.index), step=t[2])),
        st.integers(1, span).map(lambda s: CronEnumStep(step=s)),
    )


def term_lists(terms: st.SearchStrategy[object]) -> st.SearchStrategy[list[object]]:
    return st.lists(terms, min_size=1, max_size=3)


night_hour_terms = st.one_of(
    numeric_terms(0, 23),
    st.lists(st.sampled_from(NIGHT_HOURS), min_size=1, max_size=3).map(
        lambda v: CronValues(values=v)),
)
day_selectors = st.one_of(
    st.just(EveryDay()),
    term_lists(numeric_terms(1, 31)).map(lambda t: ByMonthDay(day_of_month=t)),
    term_lists(enum_terms(list(Weekday))).map(lambda t: ByWeekday(day_of_week=t)),
    st.tuples(term_lists(numeric_terms(1, 31)), term_lists(enum_terms(list(Weekday)))).map(
        lambda t: EitherDay(day_of_month=t[0], day_of_week=t[1])),
    st.tuples(term_lists(numeric_terms(1, 31)), term_lists(enum_terms(list(Weekday)))).map(
        lambda t: BothDays(day_of_month=t[0], day_of_week=t[1])),
)


@st.composite
def cron_schedules(draw: st.DrawFn, clock: time) -> CronSchedule:
    """Random fields; half of the time the hour and minute of ``clock`` are selected too."""
    minute = draw(term_lists(numeric_terms(0, 59)))
    hour = draw(term_lists(night_hour_terms))
    if draw(st.booleans()):
        minute = [*minute, CronValues(values=[clock.minute])]
        hour = [*hour, CronValues(values=[clock.hour])]
    try:
        return CronSchedule(
            minute=minute, hour=hour, month=draw(term_lists(enum_terms(list(Month)))),
            day=draw(day_selectors),
        )
    except HorsiesError:  # "can never fire": not a schedule
        reject()


@PROPERTY
@given(st.data())
def test_cron_matches_the_oracle(data: st.DataObject) -> None:
    tz, start, clock = data.draw(scenarios())
    pattern = data.draw(cron_schedules(clock))
    assert_agrees(pattern, tz, start, timedelta(days=2))


@PROPERTY
@given(scenarios(), st.integers(1, 86400))
def test_interval_keeps_a_fixed_spacing_in_real_time(
    scenario: tuple[str, datetime, time], every: int
) -> None:
    tz, start, _ = scenario
    pattern = IntervalSchedule(seconds=every)
    first = calculate_next_run(pattern, start, tz)
    second = calculate_next_run(pattern, first, tz)
    assert first - start == second - first == timedelta(seconds=every)
    assert first.microsecond == start.microsecond  # the sub-second part is kept


# -- arguments ------------------------------------------------------------------------


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        calculate_next_run(IntervalSchedule(minutes=1), datetime(2024, 1, 1))


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="Invalid timezone 'Mars/Olympus'"):
        calculate_next_run(HourlySchedule(minute=0), datetime(2024, 1, 1, tzinfo=UTC),
                           "Mars/Olympus")


def test_the_answer_is_utc_whatever_zone_the_start_is_in() -> None:
    start = datetime(2024, 6, 1, 12, tzinfo=ZoneInfo("Asia/Tokyo"))
    got = calculate_next_run(HourlySchedule(minute=30), start, "Europe/Berlin")
    assert got == datetime(2024, 6, 1, 3, 30, tzinfo=UTC) and got.tzinfo is UTC


def test_a_run_beyond_the_year_9999_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="beyond the year 9999"):
        calculate_next_run(DailySchedule(time=time(1)), datetime(9999, 12, 31, 2, tzinfo=UTC))
