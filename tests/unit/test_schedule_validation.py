"""Start-up validation of schedule entries (scheduling.md §12.2), in ``app.check()``,
``horsies check`` and ``horsies scheduler`` (cli.md §6, §7)."""

from __future__ import annotations

import logging
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from horsies import (
    AppConfig,
    ConfigurationError,
    CustomQueueConfig,
    ErrorCode,
    Horsies,
    IntervalSchedule,
    PostgresConfig,
    QueueMode,
    RegistryError,
    ScheduleConfig,
    TaskError,
    TaskResult,
    TaskSchedule,
)
from horsies.cli import app as cli
from horsies.scheduler.validation import entry_error, schedule_errors

BROKER = PostgresConfig(database_url="postgresql://u:p@localhost:1/db")
EVERY_MINUTE = IntervalSchedule(minutes=1)


def make_app(*entries: TaskSchedule, custom: bool = False) -> Horsies:
    queues: dict[str, Any] = {}
    if custom:
        queues = {"queue_mode": QueueMode.CUSTOM,
                  "custom_queues": [CustomQueueConfig(name="urgent", priority=3),
                                    CustomQueueConfig(name="slow")]}
    app = Horsies(AppConfig(broker=BROKER, schedule=ScheduleConfig(schedules=list(entries)),
                            **queues))
    task_options = {"queue_name": "slow"} if custom else {}

    @app.task("add", **task_options)
    def add(a: int, b: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a + b)

    @app.task("ping", **task_options)
    def ping() -> TaskResult[str, TaskError]:
        return TaskResult(ok="pong")

    return app


def entry(**fields: Any) -> TaskSchedule:
    base: dict[str, Any] = {"name": "e", "task_name": "add", "pattern": EVERY_MINUTE,
                            "args": (1, 2)}
    base.update(fields)
    return TaskSchedule(**base)


def only_error(app: Horsies, made: TaskSchedule) -> Any:
    error = entry_error(app, made)
    assert error is not None
    assert error.location is None
    return error


def test_a_valid_entry_passes() -> None:
    app = make_app()
    assert entry_error(app, entry()) is None
    assert entry_error(app, entry(args=(), kwargs={"a": 1, "b": 2})) is None
    assert entry_error(app, entry(task_name="ping", args=())) is None


def test_1_an_unknown_timezone() -> None:
    error = only_error(make_app(), entry(timezone="Mars/Olympus"))
    assert isinstance(error, ConfigurationError)
    assert error.code is ErrorCode.CONFIG_INVALID_SCHEDULE
    assert error.message == "invalid timezone for schedule 'e'"
    assert "timezone: 'Mars/Olympus'" in error.notes


def test_2_an_unknown_task() -> None:
    error = only_error(make_app(), entry(task_name="nope"))
    assert isinstance(error, RegistryError)
    assert error.code is ErrorCode.TASK_NOT_REGISTERED
    assert error.message == "scheduled task 'nope' not registered"
    assert "registered tasks: add, ping" in error.notes


def test_3_a_queue_in_default_mode() -> None:
    error = only_error(make_app(), entry(queue_name="urgent"))
    assert error.code is ErrorCode.CONFIG_INVALID_SCHEDULE
    assert error.message == "invalid queue configuration for schedule 'e'"
    assert "[HRS-200] cannot specify queue_name in DEFAULT mode" in error.notes


def test_3_an_unknown_queue_in_custom_mode() -> None:
    app = make_app(custom=True)
    assert entry_error(app, entry(queue_name="urgent")) is None
    assert entry_error(app, entry()) is None  # the task's own queue, "slow"
    error = only_error(app, entry(queue_name="fast"))
    assert error.message == "invalid queue configuration for schedule 'e'"
    assert "[HRS-103] invalid queue_name 'fast'" in error.notes
    assert "valid queues: urgent, slow" in error.notes


def test_4_arguments_that_do_not_bind() -> None:
    error = only_error(make_app(), entry(args=(1,)))
    assert error.message == "schedule 'e' args/kwargs do not match task 'add' signature"
    assert error.notes[0] == "missing a required argument: 'b'"
    error = only_error(make_app(), entry(kwargs={"c": 3}))
    assert "got an unexpected keyword argument 'c'" in error.notes[0]


def test_5_arguments_that_do_not_encode() -> None:
    error = only_error(make_app(), entry(args=(1, object())))
    assert error.message == "schedule 'e' arguments are not encodable for task 'add'"
    assert "args[1]" in error.notes[0]


def test_5_an_engine_injected_parameter() -> None:
    app = make_app()

    @app.task("ctx")
    def ctx(workflow_ctx: Any = None) -> TaskResult[int, TaskError]:
        return TaskResult(ok=1)

    error = only_error(app, entry(task_name="ctx", args=(), kwargs={"workflow_ctx": {}}))
    assert error.message == "schedule 'e' arguments are not encodable for task 'ctx'"
    assert error.notes == ["workflow_ctx is filled by the workflow engine and cannot be scheduled"]


def test_the_first_failing_check_is_the_entry_error() -> None:
    error = only_error(make_app(), entry(timezone="Nowhere/Land", task_name="nope", args=(1,)))
    assert error.message == "invalid timezone for schedule 'e'"


def test_one_error_per_bad_enabled_entry_and_none_for_disabled_ones() -> None:
    entries = [entry(name="good"), entry(name="bad-task", task_name="nope"),
               entry(name="off", task_name="nope", enabled=False),
               entry(name="bad-args", args=())]
    app = make_app(*entries)
    found = schedule_errors(app, app.config.schedule)
    assert [e.message for e in found] == [
        "scheduled task 'nope' not registered",
        "schedule 'bad-args' args/kwargs do not match task 'add' signature",
    ]
    assert [e.message for e in app.check()] == [e.message for e in found]
    assert make_app(entry()).check() == []


# -- horsies check and horsies scheduler ------------------------------------------------

runner = CliRunner()

MODULE = textwrap.dedent("""
    from horsies import (AppConfig, Horsies, IntervalSchedule, PostgresConfig, ScheduleConfig,
                         TaskError, TaskResult, TaskSchedule)

    SCHEDULE = {schedule}
    app = Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://u:p@localhost:1/db"),
                            schedule=SCHEDULE))

    @app.task("beat")
    def beat() -> TaskResult[int, TaskError]:
        return TaskResult(ok=1)
""")


@pytest.fixture
def write_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    logger = logging.getLogger("horsies")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    written: list[str] = []

    def write(schedule: str) -> str:
        name = f"sched_app_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(MODULE.format(schedule=schedule))
        written.append(name)
        return f"{name}:app"

    yield write
    for name in written:
        sys.modules.pop(name, None)
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def schedule_of(*entries: str, enabled: bool = True) -> str:
    return f"ScheduleConfig(enabled={enabled}, schedules=[{', '.join(entries)}])"


UNKNOWN_TASK = "TaskSchedule(name='t', task_name='nope', pattern=IntervalSchedule(seconds=1))"
UNKNOWN_QUEUE = ("TaskSchedule(name='q', task_name='beat', pattern=IntervalSchedule(seconds=1), "
                 "queue_name='urgent')")
GOOD = "TaskSchedule(name='g', task_name='beat', pattern=IntervalSchedule(seconds=1))"


def test_check_reports_one_error_per_bad_entry(write_app: Any) -> None:
    result = runner.invoke(cli, ["check", write_app(schedule_of(GOOD, UNKNOWN_TASK,
                                                                UNKNOWN_QUEUE))])
    assert result.exit_code == 1, result.output
    assert "error[HRS-300]: scheduled task 'nope' not registered" in result.stderr
    assert "note: registered tasks: beat" in result.stderr
    assert "error[HRS-205]: invalid queue configuration for schedule 'q'" in result.stderr
    assert "cannot specify queue_name in DEFAULT mode" in result.stderr
    assert "aborting due to 2 previous errors" in result.stderr


def test_check_passes_with_good_entries(write_app: Any) -> None:
    result = runner.invoke(cli, ["check", write_app(schedule_of(GOOD))])
    assert result.exit_code == 0, result.output


def test_scheduler_refuses_an_unknown_task_before_touching_the_database(write_app: Any) -> None:
    result = runner.invoke(cli, ["scheduler", write_app(schedule_of(UNKNOWN_TASK))])
    assert result.exit_code == 1, result.output
    assert "Starting scheduler with loglevel=INFO" in result.stderr
    assert "error[HRS-300]: scheduled task 'nope' not registered" in result.stderr
    assert result.stdout == ""  # no banner


def test_scheduler_refuses_an_unknown_queue(write_app: Any) -> None:
    result = runner.invoke(cli, ["scheduler", write_app(schedule_of(UNKNOWN_QUEUE))])
    assert result.exit_code == 1, result.output
    assert "error[HRS-205]: invalid queue configuration for schedule 'q'" in result.stderr


def test_scheduler_needs_a_schedule_configuration(write_app: Any) -> None:
    result = runner.invoke(cli, ["scheduler", write_app("None")])
    assert result.exit_code == 1
    assert "[ERROR]" in result.stderr
    assert "Schedule configuration not found in app config" in result.stderr


def test_scheduler_refuses_to_start_when_disabled(write_app: Any) -> None:
    result = runner.invoke(cli, ["scheduler", write_app(schedule_of(GOOD, enabled=False))])
    assert result.exit_code == 1
    assert "[WARNING]" in result.stderr and "Scheduler is disabled in config" in result.stderr


def test_scheduler_command_line_errors_exit_2() -> None:
    assert runner.invoke(cli, ["scheduler"]).exit_code == 2
    assert runner.invoke(cli, ["scheduler", "x:app", "--loglevel", "chatty"]).exit_code == 2
    assert runner.invoke(cli, ["scheduler", "x:app", "--processes", "2"]).exit_code == 2
