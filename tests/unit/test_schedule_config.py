"""``ScheduleConfig`` and ``TaskSchedule`` (scheduling.md §3, §4, §12.1) and their place in
``AppConfig``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import time

import pytest

from horsies import (
    AppConfig,
    ConfigurationError,
    DailySchedule,
    ErrorCode,
    HorsiesError,
    IntervalSchedule,
    MultipleValidationErrors,
    PostgresConfig,
    ScheduleConfig,
    TaskSchedule,
)

PATTERN = IntervalSchedule(minutes=10)
BROKER = PostgresConfig(database_url="postgresql://ops:pw@localhost:5432/ops")


def entry(**fields: object) -> TaskSchedule:
    base: dict[str, object] = {"name": "warm", "task_name": "warm_cache", "pattern": PATTERN}
    base.update(fields)
    return TaskSchedule(**base)  # type: ignore[arg-type]


def messages(build: Callable[[], object]) -> str:
    with pytest.raises(HorsiesError) as caught:
        build()
    error = caught.value
    found = error.errors if isinstance(error, MultipleValidationErrors) else [error]
    assert all(isinstance(e, ConfigurationError) for e in found)
    assert all(e.code is ErrorCode.CONFIG_INVALID_SCHEDULE for e in found)
    return "\n".join(e.message for e in found)


def test_task_schedule_defaults() -> None:
    made = entry()
    assert (made.args, made.kwargs, made.queue_name, made.enabled, made.timezone,
            made.catch_up_missed, made.max_catch_up_runs) == ((), {}, None, True, "UTC", False, 100)


def test_args_may_be_given_as_a_list() -> None:
    assert entry(args=[1, 2]).args == (1, 2)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"name": ""}, "TaskSchedule.name must not be empty"),
    ({"name": "x" * 256}, "TaskSchedule.name must be at most 255 characters, got 256"),
    ({"name": 5}, "TaskSchedule.name must be a str, got int 5"),
    ({"task_name": " "}, "TaskSchedule.task_name must not be empty"),
    ({"pattern": "*/5 * * * *"}, "TaskSchedule.pattern must be one of IntervalSchedule, "
                                 "HourlySchedule, DailySchedule, WeeklySchedule, "
                                 "MonthlySchedule, CronSchedule, got str"),
    ({"args": "abc"}, "TaskSchedule.args must be a tuple or list, got str"),
    ({"kwargs": [1]}, "TaskSchedule.kwargs must be a dict, got list"),
    ({"kwargs": {1: "a"}}, "TaskSchedule.kwargs keys must be str"),
    ({"queue_name": 3}, "TaskSchedule.queue_name must be a str or None, got int 3"),
    ({"queue_name": ""}, "TaskSchedule.queue_name must not be empty"),
    ({"enabled": "yes"}, "TaskSchedule.enabled must be a bool, got str 'yes'"),
    ({"timezone": None}, "TaskSchedule.timezone must be a str, got NoneType None"),
    ({"timezone": ""}, "TaskSchedule.timezone must not be empty"),
    ({"catch_up_missed": 1}, "TaskSchedule.catch_up_missed must be a bool, got int 1"),
    ({"max_catch_up_runs": 0}, "TaskSchedule.max_catch_up_runs must be between 1 and 10000, "
                               "got 0"),
    ({"max_catch_up_runs": 10_001}, "TaskSchedule.max_catch_up_runs must be between 1 and "
                                    "10000, got 10001"),
])
def test_task_schedule_fields_are_checked(fields: dict[str, object], expected: str) -> None:
    assert expected in messages(lambda: entry(**fields))


def test_task_schedule_reports_every_problem_together() -> None:
    found = messages(lambda: entry(name="", max_catch_up_runs=0, enabled=None))
    assert len(found.splitlines()) == 3


def test_schedule_config_defaults() -> None:
    config = ScheduleConfig()
    assert (config.enabled, config.schedules, config.check_interval_seconds) == (True, [], 1)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"check_interval_seconds": 0}, "ScheduleConfig.check_interval_seconds must be between 1 "
                                    "and 60, got 0"),
    ({"check_interval_seconds": 61}, "ScheduleConfig.check_interval_seconds must be between "
                                     "1 and 60, got 61"),
    ({"enabled": None}, "ScheduleConfig.enabled must be a bool, got NoneType None"),
    ({"schedules": entry()}, "ScheduleConfig.schedules must be a list of TaskSchedule, "
                             "got TaskSchedule"),
    ({"schedules": [entry(), {"name": "x"}]}, "ScheduleConfig.schedules[1] must be a "
                                              "TaskSchedule, got dict"),
    ({"schedules": [entry(), entry(name="b"), entry(), entry(name="b"), entry(name="c")]},
     "ScheduleConfig.schedules has duplicate names: 'b', 'warm'"),
])
def test_schedule_config_fields_are_checked(fields: dict[str, object], expected: str) -> None:
    assert expected in messages(lambda: ScheduleConfig(**fields))  # type: ignore[arg-type]


def test_enabled_schedules_skips_disabled_entries() -> None:
    config = ScheduleConfig(schedules=(entry(), entry(name="off", enabled=False)))
    assert isinstance(config.schedules, list)
    assert [e.name for e in config.enabled_schedules()] == ["warm"]


def test_app_config_takes_a_schedule_config_only() -> None:
    config = AppConfig(broker=BROKER, schedule=ScheduleConfig(schedules=[entry()]))
    assert config.schedule is not None and config.schedule.schedules[0].name == "warm"
    with pytest.raises(ConfigurationError) as caught:
        AppConfig(broker=BROKER, schedule=[entry()])  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.CONFIG_INVALID_SCHEDULE
    assert "schedule must be a ScheduleConfig or None (got list)" in caught.value.message


def test_log_config_lists_the_schedules(caplog: pytest.LogCaptureFixture) -> None:
    config = AppConfig(broker=BROKER, schedule=ScheduleConfig(schedules=[
        entry(), entry(name="close", pattern=DailySchedule(time=time(23, 55)),
                       timezone="Europe/Berlin", enabled=False)]))
    with caplog.at_level(logging.INFO, logger="horsies"):
        config.log_config()
    text = caplog.text
    assert "    schedules: 2" in text
    assert "      - warm -> warm_cache (every 600s, UTC)" in text
    assert "      - close -> warm_cache (daily at 23:55:00, Europe/Berlin) [disabled]" in text
    assert "pw@" not in text
