"""Apps with a one-second schedule, for the scheduler's e2e tests.

Importable by `horsies worker` and `horsies scheduler` processes; the tests set
HORSIES_DATABASE_URL, which replaces the placeholder URL.
"""

from __future__ import annotations

import os
from typing import Any

from horsies import (
    AppConfig,
    Horsies,
    IntervalSchedule,
    PostgresConfig,
    ScheduleConfig,
    TaskError,
    TaskResult,
    TaskSchedule,
)

NAME = "every-second"


def _app(**fields: Any) -> Horsies:
    entry = TaskSchedule(name=NAME, task_name="beat", pattern=IntervalSchedule(seconds=1),
                         **fields)
    made = Horsies(AppConfig(
        broker=PostgresConfig(database_url="postgresql://unused@localhost/unused"),
        schedule=ScheduleConfig(schedules=[entry]),
    ))
    made.discover_tasks(["tests.integration.schedule_apps"])
    return made


def beat() -> TaskResult[str, TaskError]:
    """With SCHEDULE_LEDGER set, each execution appends its process id to that file."""
    ledger = os.environ.get("SCHEDULE_LEDGER")
    if ledger:
        fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
    return TaskResult(ok="beat")


app = _app()  # without catch-up: only the latest missed slot runs
catch_up_app = _app(catch_up_missed=True, max_catch_up_runs=2)
unknown_task_app = Horsies(AppConfig(
    broker=PostgresConfig(database_url="postgresql://unused@localhost/unused"),
    schedule=ScheduleConfig(schedules=[TaskSchedule(
        name="typo", task_name="baet", pattern=IntervalSchedule(seconds=1))]),
))

for _made in (app, catch_up_app, unknown_task_app):
    _made.task("beat")(beat)
