"""Schedule patterns, cron terms and day selectors: built and validated at construction
(scheduling.md §1, §5, §12.1); summary, hash, slot ids and lock keys (§5.7, §7.5, §9, §10)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta, timezone

import msgspec
import pytest

from horsies import (
    BothDays,
    ByMonthDay,
    ByWeekday,
    ConfigurationError,
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
    ErrorCode,
    EveryDay,
    HorsiesError,
    HourlySchedule,
    IntervalSchedule,
    Month,
    MonthlySchedule,
    MultipleValidationErrors,
    Weekday,
    WeeklySchedule,
)
from horsies.scheduler import SchedulePattern
from horsies.scheduler.identity import config_hash, schedule_lock_key, slot_task_id

EVERY = [CronEvery()]


def cron(**fields: object) -> CronSchedule:
    base: dict[str, object] = {"minute": EVERY, "hour": EVERY, "month": EVERY,
                               "day": EveryDay()}
    base.update(fields)
    return CronSchedule(**base)  # type: ignore[arg-type]


def errors_of(build: Callable[[], object]) -> list[HorsiesError]:
    with pytest.raises(HorsiesError) as caught:
        build()
    error = caught.value
    found = error.errors if isinstance(error, MultipleValidationErrors) else [error]
    assert all(isinstance(e, ConfigurationError) for e in found)
    assert all(e.code is ErrorCode.CONFIG_INVALID_SCHEDULE for e in found)
    return found


def text_of(error: HorsiesError) -> str:
    return " | ".join([error.message, *error.notes])


# -- every invalid field: HRS-205 naming the class and the field -------------------------

INVALID: list[tuple[str, Callable[[], object], str]] = [
    # IntervalSchedule
    ("interval-seconds-0", lambda: IntervalSchedule(seconds=0),
     "IntervalSchedule.seconds must be between 1 and 86400, got 0"),
    ("interval-seconds-high", lambda: IntervalSchedule(seconds=86401),
     "IntervalSchedule.seconds must be between 1 and 86400, got 86401"),
    ("interval-minutes-0", lambda: IntervalSchedule(minutes=0),
     "IntervalSchedule.minutes must be between 1 and 1440, got 0"),
    ("interval-hours-high", lambda: IntervalSchedule(hours=169),
     "IntervalSchedule.hours must be between 1 and 168, got 169"),
    ("interval-days-high", lambda: IntervalSchedule(days=366),
     "IntervalSchedule.days must be between 1 and 365, got 366"),
    ("interval-type", lambda: IntervalSchedule(minutes="5"),  # type: ignore[arg-type]
     "IntervalSchedule.minutes must be an int between 1 and 1440 or None, got str '5'"),
    ("interval-bool", lambda: IntervalSchedule(hours=True),
     "IntervalSchedule.hours must be an int between 1 and 168 or None, got bool True"),
    ("interval-empty", lambda: IntervalSchedule(),
     "IntervalSchedule requires at least one time unit"),
    # HourlySchedule
    ("hourly-minute", lambda: HourlySchedule(minute=60),
     "HourlySchedule.minute must be between 0 and 59, got 60"),
    ("hourly-second", lambda: HourlySchedule(minute=0, second=-1),
     "HourlySchedule.second must be between 0 and 59, got -1"),
    ("hourly-type", lambda: HourlySchedule(minute=1.5),  # type: ignore[arg-type]
     "HourlySchedule.minute must be an int between 0 and 59, got float 1.5"),
    # DailySchedule
    ("daily-type", lambda: DailySchedule(time="10:00"),  # type: ignore[arg-type]
     "DailySchedule.time must be a datetime.time, got str '10:00'"),
    ("daily-aware", lambda: DailySchedule(time=time(10, tzinfo=UTC)),
     "DailySchedule.time must be a time without tzinfo"),
    # WeeklySchedule
    ("weekly-empty", lambda: WeeklySchedule(days=[], time=time(1)),
     "WeeklySchedule.days must not be empty"),
    ("weekly-duplicate", lambda: WeeklySchedule(days=[Weekday.MONDAY, Weekday.MONDAY],
                                                time=time(1)),
     "WeeklySchedule has duplicate days"),
    ("weekly-member", lambda: WeeklySchedule(days=["monday"], time=time(1)),  # type: ignore[list-item]
     "WeeklySchedule.days[0] must be a Weekday, got str 'monday'"),
    ("weekly-time", lambda: WeeklySchedule(days=[Weekday.MONDAY], time=None),  # type: ignore[arg-type]
     "WeeklySchedule.time must be a datetime.time, got NoneType None"),
    # MonthlySchedule
    ("monthly-day-0", lambda: MonthlySchedule(day=0, time=time(1)),
     "MonthlySchedule.day must be between 1 and 31, got 0"),
    ("monthly-day-32", lambda: MonthlySchedule(day=32, time=time(1)),
     "MonthlySchedule.day must be between 1 and 31, got 32"),
    ("monthly-time", lambda: MonthlySchedule(day=1, time=time(1, tzinfo=UTC)),
     "MonthlySchedule.time must be a time without tzinfo"),
    # terms
    ("step-0", lambda: CronStep(step=0), "CronStep.step must be >= 1, got 0"),
    ("values-empty", lambda: CronValues(values=[]), "CronValues.values must not be empty"),
    ("values-type", lambda: CronValues(values=[1, "2"]),  # type: ignore[list-item]
     "CronValues.values[1] must be an int, got str '2'"),
    ("range-type", lambda: CronRange(start="1", end=2),  # type: ignore[arg-type]
     "CronRange.start must be an int, got str '1'"),
    ("range-step", lambda: CronRange(start=1, end=2, step=0),
     "CronRange.step must be >= 1, got 0"),
    ("enum-values-empty", lambda: CronEnumValues(values=[]),
     "CronEnumValues.values must not be empty"),
    ("enum-values-mixed", lambda: CronEnumValues(values=[Weekday.MONDAY, Month.MAY]),
     "CronEnumValues.values mixes Weekday and Month members"),
    ("enum-values-text", lambda: CronEnumValues(values=["monday"]),
     "CronEnumValues.values must hold Weekday or Month members, got str"),
    ("enum-range-step", lambda: CronEnumRange(start=Month.MAY, end=Month.JUNE, step=0),
     "CronEnumRange.step must be >= 1, got 0"),
    ("enum-step", lambda: CronEnumStep(step=0), "CronEnumStep.step must be >= 1, got 0"),
    # CronSchedule fields
    ("cron-hour-value", lambda: cron(hour=[CronValues(values=[24])]),
     "invalid cron 'hour' field: value 24 out of range 0-23 | in CronSchedule.hour[0]"),
    ("cron-minute-value", lambda: cron(minute=[CronValues(values=[60])]),
     "invalid cron 'minute' field: value 60 out of range 0-59 | in CronSchedule.minute[0]"),
    ("cron-minute-step", lambda: cron(minute=[CronStep(step=60)]),
     "invalid cron 'minute' field: step 60 exceeds the field's span 59"),
    ("cron-hour-step", lambda: cron(hour=[CronEvery(), CronStep(step=24)]),
     "invalid cron 'hour' field: step 24 exceeds the field's span 23 "),
    ("cron-hour-range", lambda: cron(hour=[CronRange(start=17, end=9)]),
     "invalid cron 'hour' field: range start 17 is after end 9"),
    ("cron-hour-range-end", lambda: cron(hour=[CronRange(start=1, end=24)]),
     "invalid cron 'hour' field: value 24 out of range 0-23"),
    ("cron-range-step", lambda: cron(minute=[CronRange(start=0, end=59, step=60)]),
     "invalid cron 'minute' field: step 60 exceeds the field's span 59"),
    ("cron-minute-empty", lambda: cron(minute=[]),
     "invalid cron 'minute' field: at least one term is required | in CronSchedule.minute"),
    ("cron-minute-type", lambda: cron(minute=[CronEnumStep(step=2)]),
     "invalid cron 'minute' field: a term must be one of CronEvery, CronStep, CronValues, "
     "CronRange, got CronEnumStep"),
    ("cron-month-wrong-enum", lambda: cron(month=[CronEnumValues(values=[Weekday.MONDAY])]),
     "invalid cron 'month' field: value 'monday' is not a Month | in CronSchedule.month[0]"),
    ("cron-month-numeric", lambda: cron(month=[CronValues(values=[1])]),
     "invalid cron 'month' field: a term must be one of CronEvery, CronEnumValues, "
     "CronEnumRange, CronEnumStep, got CronValues"),
    ("cron-month-range", lambda: cron(month=[CronEnumRange(start=Month.NOVEMBER,
                                                            end=Month.FEBRUARY)]),
     "invalid cron 'month' field: range start november is after end february"),
    ("cron-month-step", lambda: cron(month=[CronEnumStep(step=12)]),
     "invalid cron 'month' field: step 12 exceeds the field's span 11"),
    ("cron-minute-not-list", lambda: cron(minute=CronEvery()),
     "invalid cron 'minute' field: must be a list of terms, got CronEvery"),
    ("cron-day-type", lambda: cron(day=[EveryDay()]),
     "CronSchedule.day must be one of EveryDay, ByMonthDay, ByWeekday, EitherDay, BothDays, "
     "got list"),
    ("cron-never", lambda: cron(month=[CronEnumValues(values=[Month.FEBRUARY])],
                                day=ByMonthDay(day_of_month=[CronValues(values=[30, 31])])),
     "cron schedule can never fire"),
    ("cron-never-both", lambda: cron(
        month=[CronEnumValues(values=[Month.APRIL, Month.JUNE])],
        day=BothDays(day_of_month=[CronValues(values=[31])],
                     day_of_week=[CronEnumValues(values=[Weekday.MONDAY])])),
     "cron schedule can never fire"),
    # day selectors
    ("dom-value", lambda: ByMonthDay(day_of_month=[CronValues(values=[0])]),
     "invalid cron 'day_of_month' field: value 0 out of range 1-31 | "
     "in ByMonthDay.day_of_month[0]"),
    ("dom-step", lambda: ByMonthDay(day_of_month=[CronStep(step=31)]),
     "invalid cron 'day_of_month' field: step 31 exceeds the field's span 30"),
    ("dow-range", lambda: ByWeekday(day_of_week=[CronEnumRange(start=Weekday.FRIDAY,
                                                               end=Weekday.MONDAY)]),
     "invalid cron 'day_of_week' field: range start friday is after end monday (ranges never "
     "wrap; write two terms) | in ByWeekday.day_of_week[0]"),
    ("dow-wrong-enum", lambda: ByWeekday(day_of_week=[CronEnumValues(values=[Month.MAY])]),
     "invalid cron 'day_of_week' field: value 'may' is not a Weekday"),
    ("dow-step", lambda: ByWeekday(day_of_week=[CronEnumStep(step=7)]),
     "invalid cron 'day_of_week' field: step 7 exceeds the field's span 6"),
    ("either-empty", lambda: EitherDay(day_of_month=[], day_of_week=EVERY),
     "invalid cron 'day_of_month' field: at least one term is required | "
     "in EitherDay.day_of_month"),
    ("both-dow", lambda: BothDays(day_of_month=EVERY, day_of_week=[CronValues(values=[1])]),
     "invalid cron 'day_of_week' field: a term must be one of"),
]


@pytest.mark.parametrize(("build", "expected"), [(b, e) for _, b, e in INVALID],
                         ids=[name for name, _, _ in INVALID])
def test_an_invalid_field_is_hrs_205_naming_it(
    build: Callable[[], object], expected: str
) -> None:
    found = errors_of(build)
    assert any(expected in text_of(error) for error in found), [text_of(e) for e in found]


def test_several_problems_are_reported_together() -> None:
    found = errors_of(lambda: IntervalSchedule(seconds=0, minutes=0, hours=200, days=0))
    assert [e.message.split(" must")[0] for e in found] == [
        "IntervalSchedule.seconds", "IntervalSchedule.minutes", "IntervalSchedule.hours",
        "IntervalSchedule.days"]
    found = errors_of(lambda: cron(minute=[CronValues(values=[60])],
                                   hour=[CronRange(start=3, end=1)],
                                   month=[CronEnumStep(step=20)]))
    assert [e.message.split(":")[0] for e in found] == [
        "invalid cron 'minute' field", "invalid cron 'hour' field", "invalid cron 'month' field"]


def test_unknown_keywords_are_a_type_error() -> None:
    with pytest.raises(TypeError):
        IntervalSchedule(weeks=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        HourlySchedule(5)  # type: ignore[misc]  # keyword-only


def test_patterns_are_frozen() -> None:
    pattern = HourlySchedule(minute=5)
    with pytest.raises(AttributeError):
        pattern.minute = 6  # type: ignore[misc]


# -- valid patterns ---------------------------------------------------------------------


def test_interval_units_add_up() -> None:
    assert IntervalSchedule(hours=1, minutes=15).total_seconds() == 4500
    assert IntervalSchedule(days=1, seconds=1).total_seconds() == 86401


def test_wall_times_drop_microseconds() -> None:
    assert DailySchedule(time=time(1, 2, 3, 999_999)).time == time(1, 2, 3)


def test_enum_order_and_values() -> None:
    assert [d.value for d in Weekday][:2] == ["monday", "tuesday"] and len(Weekday) == 7
    assert next(iter(Month)) is Month.JANUARY and Month.DECEMBER == "december"


def test_the_day_29_of_february_can_fire() -> None:
    cron(month=[CronEnumValues(values=[Month.FEBRUARY])],
         day=ByMonthDay(day_of_month=[CronValues(values=[29])]))
    # Either-day selectors always fire on their weekdays.
    cron(month=[CronEnumValues(values=[Month.FEBRUARY])],
         day=EitherDay(day_of_month=[CronValues(values=[31])],
                       day_of_week=[CronEnumValues(values=[Weekday.MONDAY])]))


def test_cron_summary() -> None:
    office = CronSchedule(
        minute=[CronValues(values=[0, 30])],
        hour=[CronRange(start=9, end=17)],
        month=EVERY,
        day=ByWeekday(day_of_week=[CronEnumRange[Weekday](start=Weekday.MONDAY,
                                                          end=Weekday.FRIDAY)]),
    )
    assert office.summary() == "cron min=0,30 hour=9-17 month=* day=dow=monday-friday"
    mixed = CronSchedule(
        minute=[CronStep(step=15), CronRange(start=1, end=9, step=2)],
        hour=EVERY,
        month=[CronEnumStep(step=3), CronEnumValues(values=[Month.MAY])],
        day=EitherDay(day_of_month=[CronValues(values=[1, 15])],
                      day_of_week=[CronEnumValues(values=[Weekday.SUNDAY])]),
    )
    assert mixed.summary() == ("cron min=*/15|1-9/2 hour=* month=*/3|may "
                               "day=(dom=1,15 OR dow=sunday)")
    both = cron(day=BothDays(day_of_month=[CronRange(start=1, end=7)],
                             day_of_week=[CronEnumValues(values=[Weekday.MONDAY])]))
    assert both.summary().endswith("day=(dom=1-7 AND dow=monday)")
    assert cron().summary() == "cron min=* hour=* month=* day=*"


def test_other_summaries() -> None:
    assert IntervalSchedule(minutes=10).summary() == "every 600s"
    assert HourlySchedule(minute=7, second=30).summary() == "hourly at :07:30"
    assert DailySchedule(time=time(23, 55)).summary() == "daily at 23:55:00"
    assert WeeklySchedule(days=[Weekday.SATURDAY, Weekday.SUNDAY],
                          time=time(4)).summary() == "weekly on saturday,sunday at 04:00:00"
    assert MonthlySchedule(day=1, time=time(6)).summary() == "monthly on day 1 at 06:00:00"


PATTERNS: list[SchedulePattern] = [
    IntervalSchedule(hours=1, minutes=15),
    HourlySchedule(minute=7, second=30),
    DailySchedule(time=time(23, 55)),
    WeeklySchedule(days=[Weekday.SATURDAY, Weekday.SUNDAY], time=time(4)),
    MonthlySchedule(day=1, time=time(6)),
    cron(minute=[CronValues(values=[20])], hour=[CronStep(step=6)],
         day=BothDays(day_of_month=[CronRange(start=1, end=7)],
                      day_of_week=[CronEnumValues[Weekday](values=[Weekday.MONDAY])])),
]


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: type(p).__name__)
def test_patterns_round_trip_as_a_tagged_union(pattern: SchedulePattern) -> None:
    encoded = msgspec.json.encode(pattern)
    assert msgspec.json.decode(encoded, type=SchedulePattern) == pattern


def test_decoding_validates_too() -> None:
    with pytest.raises(HorsiesError, match="HourlySchedule.minute must be between 0 and 59"):
        msgspec.json.decode(b'{"type":"hourly","minute":75}', type=SchedulePattern)


# -- config hash, slot ids, lock keys ---------------------------------------------------------


def test_config_hash_is_sha256_of_the_canonical_json() -> None:
    pattern = IntervalSchedule(minutes=10)
    canonical = ('{"pattern":{"days":null,"hours":null,"minutes":10,"seconds":null,'
                 '"type":"interval"},"timezone":"UTC"}')
    assert config_hash(pattern, "UTC") == hashlib.sha256(canonical.encode()).hexdigest()
    daily = ('{"pattern":{"time":"23:55:00","type":"daily"},"timezone":"Europe/Berlin"}')
    assert config_hash(DailySchedule(time=time(23, 55)), "Europe/Berlin") == (
        hashlib.sha256(daily.encode()).hexdigest())


def test_config_hash_changes_with_pattern_and_zone_only() -> None:
    hashes = {config_hash(p, "UTC") for p in PATTERNS}
    assert len(hashes) == len(PATTERNS)
    assert config_hash(PATTERNS[1], "UTC") != config_hash(PATTERNS[1], "Europe/Berlin")
    assert config_hash(HourlySchedule(minute=7, second=30), "UTC") == config_hash(
        PATTERNS[1], "UTC")
    weekday = cron(day=ByWeekday(day_of_week=[CronEnumValues(values=[Weekday.MONDAY])]))
    assert '"kind":"enum_values"' in msgspec.json.encode(weekday).decode()


def test_slot_task_ids_are_uuid5_of_name_and_utc_slot() -> None:
    slot = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    expected = uuid.uuid5(uuid.UUID("3c01f3f5-afd6-4363-b726-a5dab51a81c7"),
                          "warm:2024-03-31T01:00:00.000000+00:00")
    assert slot_task_id("warm", slot) == str(expected)
    same_instant = slot.astimezone(timezone(timedelta(hours=2)))
    assert slot_task_id("warm", same_instant) == str(expected)
    assert slot_task_id("warm", slot + timedelta(microseconds=1)) != str(expected)
    assert slot_task_id("other", slot) != str(expected)
    with pytest.raises(ValueError):
        slot_task_id("warm", datetime(2024, 1, 1))


def test_lock_keys_are_the_first_8_bytes_of_sha256_signed() -> None:
    digest = hashlib.sha256(b"horsies-schedule:warm").digest()
    assert schedule_lock_key("warm") == int.from_bytes(digest[:8], "big", signed=True)
    keys = {schedule_lock_key(f"entry-{i}") for i in range(100)}
    assert len(keys) == 100 and all(-(2**63) <= k < 2**63 for k in keys)
    assert any(k < 0 for k in keys)
