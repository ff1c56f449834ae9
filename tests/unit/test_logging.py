"""The CLI log format, log-level parsing and the colour switch (workers.md §19, cli.md §2)."""

from __future__ import annotations

import io
import logging
import re
import sys

import pytest

from horsies.logging import (
    HorsiesFormatter,
    colors_enabled,
    configure_logging,
    get_logger,
    install_null_handler,
    parse_loglevel,
)

LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] (?P<component>\[\S+\]\s*)(?P<level>\[[A-Z]+\]\s*)(?P<msg>.*)$")


def _record(name: str, level: int, msg: str, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, exc_info)  # type: ignore[arg-type]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("HORSIES_FORCE_COLOR", raising=False)


@pytest.fixture
def restore_horsies_logger() -> object:
    logger = logging.getLogger("horsies")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("DEBUG", logging.DEBUG),
        ("info", logging.INFO),
        ("Warning", logging.WARNING),
        ("error", logging.ERROR),
        ("CRITICAL", logging.CRITICAL),
        (" info ", logging.INFO),
    ],
)
def test_parse_loglevel_accepts_the_five_names_in_any_case(value: str, level: int) -> None:
    assert parse_loglevel(value) == level


@pytest.mark.parametrize("value", ["", "WARN", "FATAL", "verbose", "10", "NOTSET"])
def test_parse_loglevel_refuses_anything_else(value: str) -> None:
    with pytest.raises(ValueError, match="DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        parse_loglevel(value)


def test_plain_format_pads_component_to_14_and_level_to_10() -> None:
    text = HorsiesFormatter(use_colors=False).format(
        _record("horsies.worker", logging.INFO, "Worker started")
    )
    match = LINE.match(text)
    assert match is not None, text
    assert match["component"] == "[worker]".ljust(14)
    assert match["level"] == "[INFO]".ljust(10)
    assert match["msg"] == "Worker started"
    assert "\033[" not in text


def test_component_is_last_part_of_logger_name() -> None:
    fmt = HorsiesFormatter()
    assert "[recovery]" in fmt.format(_record("horsies.workflow.recovery", logging.INFO, "x"))
    assert "[horsies]" in fmt.format(_record("horsies", logging.INFO, "x"))


def test_long_names_keep_a_separating_space() -> None:
    text = HorsiesFormatter().format(_record("horsies.averyverylongname", logging.CRITICAL, "m"))
    assert "[averyverylongname] [CRITICAL] m" in text


def test_time_is_local_hh_mm_ss() -> None:
    record = _record("horsies.cli", logging.WARNING, "careful")
    record.created = 0.0
    import time

    expected = time.strftime("%H:%M:%S", time.localtime(0.0))
    assert HorsiesFormatter().format(record).startswith(f"[{expected}] ")


def test_traceback_follows_on_next_lines() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = _record("horsies.worker", logging.ERROR, "failed", sys.exc_info())
    text = HorsiesFormatter().format(record)
    first, *rest = text.split("\n")
    assert first.endswith("failed")
    assert rest[0].startswith("Traceback (most recent call last):")
    assert rest[-1] == "RuntimeError: boom"


def test_message_arguments_are_interpolated() -> None:
    record = logging.LogRecord("horsies.cli", logging.INFO, __file__, 1, "n=%d", (3,), None)
    assert HorsiesFormatter().format(record).endswith("n=3")


@pytest.mark.parametrize(
    ("level", "code"),
    [
        (logging.DEBUG, "\033[90m"),
        (logging.INFO, "\033[32m"),
        (logging.WARNING, "\033[33m"),
        (logging.ERROR, "\033[31m"),
        (logging.CRITICAL, "\033[1;91m"),
    ],
)
def test_colored_format(level: int, code: str) -> None:
    text = HorsiesFormatter(use_colors=True).format(_record("horsies.worker", level, "msg"))
    assert text.startswith("\033[94m[")  # time in light blue
    assert f"{code}[{logging.getLevelName(level)}]" in text
    assert "\033[37m[worker]" in text
    assert text.endswith("\033[37mmsg\033[0m")
    plain = re.sub(r"\033\[[0-9;]*m", "", text)
    assert LINE.match(plain)


def test_colors_follow_the_terminal(clean_env: None) -> None:
    assert colors_enabled(_Tty()) is True
    assert colors_enabled(io.StringIO()) is False


def test_no_color_turns_colors_off_with_any_value(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "")
    assert colors_enabled(_Tty()) is False


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_force_color_wins_over_no_color_and_pipes(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("HORSIES_FORCE_COLOR", value)
    assert colors_enabled(io.StringIO()) is True


def test_force_color_other_values_do_nothing(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HORSIES_FORCE_COLOR", "0")
    assert colors_enabled(io.StringIO()) is False


def test_configure_logging_replaces_handlers_and_writes_to_stderr(
    restore_horsies_logger: logging.Logger,
    clean_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = restore_horsies_logger
    logger.addHandler(logging.StreamHandler(io.StringIO()))
    configure_logging("debug")
    assert len(logger.handlers) == 1
    assert logger.level == logging.DEBUG
    assert logger.propagate is False
    get_logger("worker").debug("hello %s", "there")
    captured = capsys.readouterr()
    assert captured.out == ""
    match = LINE.match(captured.err.rstrip("\n"))
    assert match is not None
    assert match["component"].strip() == "[worker]"
    assert match["msg"] == "hello there"


def test_configure_logging_level_filters(
    restore_horsies_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(logging.WARNING, use_colors=False)
    get_logger("cli").info("hidden")
    get_logger("cli").warning("shown")
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert "[WARNING]" in err and "shown" in err


def test_configure_logging_refuses_bad_level(restore_horsies_logger: logging.Logger) -> None:
    with pytest.raises(ValueError):
        configure_logging("LOUD")


def test_null_handler_is_installed_once(restore_horsies_logger: logging.Logger) -> None:
    logger = restore_horsies_logger
    logger.handlers[:] = []
    install_null_handler()
    install_null_handler()
    assert [type(h) for h in logger.handlers] == [logging.NullHandler]
