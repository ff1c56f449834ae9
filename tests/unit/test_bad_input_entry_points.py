"""Bad input on the public entry points: a clear error naming the problem, nothing done.

A sweep over what the focused test modules leave open: every field of every
configuration struct, the discovery methods, ``TaskHandle.get`` timeouts,
``schedule`` delays beyond what can be stored, ``send_many`` items, and the
command line's database URLs and flag ranges. No database is needed: every
case is refused before a connection is made (the app's broker is never built).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from horsies import (
    AppConfig,
    Call,
    ConfigurationError,
    CustomQueueConfig,
    Err,
    Horsies,
    MultipleValidationErrors,
    PostgresConfig,
    QueueMode,
    RecoveryConfig,
    RetryPolicy,
    TaskError,
    TaskHandle,
    TaskResult,
    TaskSendError,
    TaskSendErrorCode,
    WorkerResilienceConfig,
)
from horsies.cli import app as cli
from horsies.errors import ErrorCode

NOWHERE = "postgresql://u:s3cret@127.0.0.1:1/x"
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    logger = logging.getLogger("horsies")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("HORSIES_DATABASE_URL", "DATABASE_URL", "HORSIES_SUPPRESS_SENDS",
                 "TASKLIB_SUPPRESS_SENDS", "HORSIES_CHILD_PROCESS", "HORSIES_FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def app() -> Iterator[Horsies]:
    application = Horsies(AppConfig(broker=PostgresConfig(database_url=NOWHERE)))
    yield application
    assert application._broker is None, "a bad input reached the database"


def echo(x: int, y: int = 0) -> TaskResult[int, TaskError]:
    return TaskResult(ok=x + y)


# -- configuration: every field refuses a value of the wrong type -------------------


class _Alien:
    """A value no configuration field accepts."""

    def __repr__(self) -> str:
        return "<alien>"


_BROKER = PostgresConfig(database_url="postgresql://h/d")
# Struct -> (required fields filled in, code of its errors; None for RetryPolicy's ValueError).
CONFIG_STRUCTS: dict[type[Any], tuple[dict[str, Any], ErrorCode | None]] = {
    PostgresConfig: ({"database_url": "postgresql://h/d"}, None),  # code differs per field
    AppConfig: ({"broker": _BROKER}, None),
    CustomQueueConfig: ({"name": "q"}, ErrorCode.CONFIG_INVALID_QUEUE_MODE),
    RecoveryConfig: ({}, ErrorCode.CONFIG_INVALID_RECOVERY),
    WorkerResilienceConfig: ({}, ErrorCode.CONFIG_INVALID_RESILIENCE),
    RetryPolicy: ({"auto_retry_for": ["X"]}, None),
}
FIELD_CASES = [
    pytest.param(struct, field, id=f"{struct.__name__}.{field}")
    for struct in CONFIG_STRUCTS
    for field in struct.__struct_fields__
]


@pytest.mark.parametrize(("struct", "field"), FIELD_CASES)
def test_every_config_field_refuses_a_foreign_value(struct: type[Any], field: str) -> None:
    required, code = CONFIG_STRUCTS[struct]
    values = {**required, field: _Alien()}
    expected = ValueError if struct is RetryPolicy else ConfigurationError
    with pytest.raises(expected) as info:
        struct(**values)
    error = info.value
    message = str(error) if struct is RetryPolicy else error.message
    assert message.startswith(field), message  # the offending field is named first
    if code is not None:
        assert error.code is code


@pytest.mark.parametrize("struct", list(CONFIG_STRUCTS), ids=lambda s: s.__name__)
def test_config_structs_refuse_unknown_and_positional_arguments(struct: type[Any]) -> None:
    required, _ = CONFIG_STRUCTS[struct]
    with pytest.raises(TypeError, match="no_such_field"):
        struct(**required, no_such_field=1)
    with pytest.raises(TypeError, match="positional"):
        struct("positional", **required)


def test_config_structs_are_frozen() -> None:
    config = RecoveryConfig()
    with pytest.raises(AttributeError):
        config.check_interval_ms = 1  # type: ignore[misc]
    assert config == RecoveryConfig()


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(MultipleValidationErrors) as info:
        AppConfig(broker=_BROKER, cluster_wide_cap=0, prefetch_buffer=-1,
                  resend_on_transient_err=None)  # type: ignore[arg-type]
    messages = [e.message for e in info.value.errors]
    assert any(m.startswith("cluster_wide_cap") for m in messages)
    assert any(m.startswith("prefetch_buffer") for m in messages)
    assert any(m.startswith("resend_on_transient_err") for m in messages)


# -- app methods taking module lists -------------------------------------------------

DISCOVERY_CASES = [
    # (method, argument, exception, fragment of the message)
    ("discover_tasks", "shop.tasks", TypeError, "wrap a single entry in a list: ['shop.tasks']"),
    ("discover_tasks", None, TypeError, "modules must be a list of strings, got NoneType"),
    ("discover_tasks", ["shop.tasks", 5], TypeError, "modules[1] must be a str, got int 5"),
    ("discover_tasks", ["  "], ValueError, "modules[0] is empty"),
    ("import_task_modules", "os", TypeError, "wrap a single entry in a list: ['os']"),
    ("import_task_modules", [b"os"], TypeError, "modules[0] must be a str, got bytes"),
    ("expand_module_globs", "tasks/*.py", TypeError, "patterns must be a list of strings"),
    ("expand_module_globs", [None], TypeError, "patterns[0] must be a str"),
]


@pytest.mark.parametrize(("method", "argument", "exception", "fragment"), DISCOVERY_CASES)
def test_module_lists_are_checked(app: Horsies, method: str, argument: Any,
                                  exception: type[Exception], fragment: str) -> None:
    app.discover_tasks(["kept.module"])
    with pytest.raises(exception) as info:
        getattr(app, method)(argument)
    assert str(info.value).startswith(f"{method}() ") and fragment in str(info.value)
    assert app.get_discovered_task_modules() == ["kept.module"]  # nothing replaced


def test_expand_module_globs_checks_exclude(app: Horsies) -> None:
    with pytest.raises(TypeError, match="exclude must be a list of strings"):
        app.expand_module_globs(["*.py"], exclude="conftest.py")  # type: ignore[arg-type]


# -- TaskHandle.get timeouts -----------------------------------------------------------

BAD_TIMEOUTS = [
    ("5000", TypeError, "got str '5000'"),
    (True, TypeError, "got bool True"),
    ([1], TypeError, "got list"),
    (Decimal(1), TypeError, "got Decimal"),
    (1 + 1j, TypeError, "got complex"),
    (math.nan, ValueError, "got nan"),
]


@pytest.mark.parametrize(("timeout", "exception", "fragment"), BAD_TIMEOUTS)
def test_handle_timeout_must_be_a_number(app: Horsies, timeout: Any,
                                         exception: type[Exception], fragment: str) -> None:
    handle = TaskHandle("0190b3c1-0000-7000-8000-000000000001", app, broker_mode=True)
    for wait in (lambda: handle.get(timeout_ms=timeout),
                 lambda: asyncio.run(handle.get_async(timeout_ms=timeout))):
        with pytest.raises(exception) as info:
            wait()
        assert str(info.value).startswith("timeout_ms must be")
        assert fragment in str(info.value)


@pytest.mark.parametrize("timeout", [None, 0, -5, 1.5, math.inf])
def test_handle_timeout_numbers_are_accepted(timeout: Any) -> None:
    handle: TaskHandle[Any] = TaskHandle("0190b3c1-0000-7000-8000-000000000001")
    result = handle.get(timeout_ms=timeout)  # no broker: answered without waiting
    assert result.is_err() and result.err_value.error_code == "RESULT_NOT_AVAILABLE"


# -- send paths: errors as values, before any database access ---------------------------


def send_error(result: Any) -> TaskSendError:
    assert isinstance(result, Err), result
    error = result.err_value
    assert isinstance(error, TaskSendError)
    assert error.code is TaskSendErrorCode.VALIDATION_FAILED, error.message
    assert error.retryable is False and error.task_id is None and error.payload is None
    return error


@pytest.mark.parametrize("delay", [10**13, 2**63 - 1, 2**64, 10**30])
def test_delay_beyond_the_storable_range(app: Horsies, delay: int) -> None:
    # Such a row could not be read back (timestamps after the year 9999), and a
    # delay of 2**64 or more used to raise from the fingerprint.
    task = app.task("echo", echo)
    for result in (task.schedule(delay, 1), asyncio.run(task.schedule_async(delay, 1)),
                   task.with_options(priority=5).schedule(delay, 1)):
        message = send_error(result).message
        assert message.startswith("delay must end before the year 10000"), message
        assert str(delay) in message


def test_largest_storable_delay_passes_validation(app: Horsies) -> None:
    task = app.task("echo", echo)
    # A delay that still ends before the year 10000 is not refused at step 2:
    # the call fails later, at argument binding.
    message = send_error(task.schedule(200 * 365 * 86_400)).message
    assert "delay" not in message and "x" in message


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        (5, "expected a tuple or Call, got int"),
        (None, "expected a tuple or Call, got NoneType"),
        ("ab", "expected a tuple or Call, got str"),
        ({"x": 1}, "expected a tuple or Call, got dict"),
        (Call(1, z=2), "z"),
        ((1, 2, 3), "too many positional arguments"),
        ((math.inf,), "Non-finite float at args[0]"),
        ((2**64,), "Integer out of range at args[0]"),
        ((1, "\ud800"), "lone surrogate at args[1]"),
    ],
    ids=["int", "none", "str", "dict", "unknown-kw", "too-many", "inf", "bigint", "surrogate"],
)
def test_send_many_names_the_bad_item(app: Horsies, item: Any, fragment: str) -> None:
    task = app.task("echo", echo)
    for send_many in (task.send_many, lambda c: asyncio.run(task.send_many_async(c))):
        error = send_error(send_many([(1,), Call(2, y=3), item]))
        assert error.index == 2
        assert error.message.startswith("item 2: ") and fragment in error.message, error.message


def test_with_options_refuses_unknown_options(app: Horsies) -> None:
    task = app.task("echo", echo)
    with pytest.raises(TypeError, match="prio"):
        task.with_options(prio=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        task.with_options(5)  # type: ignore[misc]


# -- command line -------------------------------------------------------------------


def invoke(*args: str) -> Any:
    return runner.invoke(cli, list(args))


@pytest.mark.parametrize(
    "args",
    [
        ["worker", "some.module:app", "--processes", "-1"],
        ["worker", "some.module:app", "--processes", "abc"],
        ["worker", "some.module:app", "--max-claim-batch", "-1"],
        ["worker", "some.module:app", "--max-claim-batch", "many"],
        ["check", "some.module:app", "--loglevel", "bogus"],
        ["check", "some.module:app", "--bogus"],
        ["db", "bogus"],
        ["db", "status", "--bogus"],
        ["demo", "--tasks", "0"],
        ["demo", "--tasks", "10000001"],
        ["demo", "--tasks", "abc"],
        ["demo", "--processes", "0"],
        ["demo", "--batch-size", "0"],
        ["demo", "--batch-size", "100001"],
        ["demo", "--timeout", "0"],
        ["demo", "--timeout", "nan"],
        ["demo", "--loglevel", "bogus"],
    ],
    ids=lambda args: " ".join(args),
)
def test_bad_flags_exit_2_naming_the_option(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    flag = next((a for a in args if a.startswith("--")), None)
    assert (flag or "bogus") in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("locator", "code", "fragment"),
    [
        (":app", "HRS-207", "the module part before ':' is empty"),
        ("some_module:", "HRS-207", "'' is not a Python attribute name"),
        ("some_module:not-an-attr", "HRS-207", "is not a Python attribute name"),
        ("no_such_module_for_horsies:app", "HRS-206", "module not found: no_such_module_for_horsies"),
        ("missing/dir/instance.py:app", "HRS-206", "module file not found"),
        ("os:sep", "HRS-206", "'sep' in module 'os' is not a Horsies instance"),
        ("os:no_such_attr", "HRS-206", "module 'os' has no attribute 'no_such_attr'"),
    ],
)
@pytest.mark.parametrize("command", ["worker", "check"])
def test_bad_locators_exit_1_naming_the_problem(command: str, locator: str, code: str,
                                                fragment: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(command, locator)
    assert result.exit_code == 1, result.output
    assert f"error[{code}]" in result.stderr and fragment in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["db", "init"], ["db", "status"], ["demo", "--tasks", "1"]])
@pytest.mark.parametrize("url", ["garbage", "mysql://u:s3cret@h/d", "u:s3cret@h/d"])
def test_unsupported_database_url_option_exits_2(command: list[str], url: str) -> None:
    result = invoke(*command, "--database-url", url)
    assert result.exit_code == 2, result.output
    assert "error[HRS-203]: --database-url is not a supported PostgreSQL URL" in result.stderr
    assert "s3cret" not in result.output  # only the scheme is shown


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        (["db", "status"], "HORSIES_DATABASE_URL"),
        (["db", "init"], "DATABASE_URL"),
        (["demo", "--tasks", "1"], "HORSIES_DATABASE_URL"),
    ],
)
def test_unsupported_database_url_in_the_environment_exits_1(
    command: list[str], variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "oracle://u:s3cret@h/d")
    result = invoke(*command)
    assert result.exit_code == 1, result.output
    assert f"error[HRS-203]: {variable} is not a supported PostgreSQL URL" in result.stderr
    assert "'oracle'" in result.stderr and "s3cret" not in result.output


def test_demo_on_an_unreachable_database_exits_1_without_traceback() -> None:
    result = invoke("demo", "--database-url", NOWHERE, "--tasks", "1")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: could not use the database postgresql://u:***@")
    assert "s3cret" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a raised error


def test_db_accepts_the_driver_suffix(monkeypatch: pytest.MonkeyPatch) -> None:
    # Accepted, then refused only by the unreachable server.
    result = invoke("db", "status", "--database-url", NOWHERE.replace("postgresql", "postgresql+psycopg"))
    assert result.exit_code == 1
    assert "HRS-203" not in result.stderr and "s3cret" not in result.output


# -- end to end: the installed command ----------------------------------------------------

END_TO_END = [
    (["worker", "no_such_module_for_horsies:app"], 1, "module not found"),
    (["db", "status", "--database-url", "garbage"], 2, "--database-url is not a supported"),
    (["demo", "--database-url", NOWHERE, "--tasks", "1"], 1, "could not use the database"),
]


@pytest.mark.parametrize(("args", "code", "fragment"), END_TO_END,
                         ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_command_exit_codes(args: list[str], code: int, fragment: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HORSIES_DATABASE_URL", "DATABASE_URL")}
    env["NO_COLOR"] = "1"
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-m", "horsies", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == code, done.stderr
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr + done.stdout

