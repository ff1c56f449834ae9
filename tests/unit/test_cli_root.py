"""The root command: help, version, registered commands (cli.md §1, §2.1)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from horsies.banner import get_version
from horsies.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    logger = logging.getLogger("horsies")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("worker", "check", "db"):
        assert command in result.stdout


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"horsies {get_version()}\n"


@pytest.mark.parametrize(
    "args",
    [["worker", "--help"], ["check", "--help"], ["db", "--help"], ["db", "init", "--help"],
     ["db", "status", "--help"]],
)
def test_command_help_exits_0(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2


def test_unknown_option_is_a_usage_error() -> None:
    result = runner.invoke(app, ["check", "--no-such-option"])
    assert result.exit_code == 2


def test_get_docs_is_not_provided() -> None:
    assert runner.invoke(app, ["get-docs"]).exit_code == 2


def test_main_is_the_console_entry_point() -> None:
    from horsies.cli import main

    with pytest.raises(SystemExit) as info:
        import sys

        saved = sys.argv
        sys.argv = ["horsies", "--version"]
        try:
            main()
        finally:
            sys.argv = saved
    assert info.value.code == 0


def test_optional_command_modules_that_do_not_exist_are_skipped() -> None:
    from horsies.cli import _register_optional

    before = [c.name for c in app.registered_commands]
    _register_optional("no_such_command_module_xyz")
    assert [c.name for c in app.registered_commands] == before


def test_loglevel_values_are_case_insensitive_and_checked() -> None:
    result = runner.invoke(app, ["check", "--loglevel", "verbose"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["check", "--loglevel", "debug"])  # valid level, no module
    assert result.exit_code == 2
    assert "module path is required" in result.stderr
