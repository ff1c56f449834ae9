"""``horsies db init`` / ``horsies db status`` without a database (cli.md §10)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from horsies.cli import app as cli
from horsies.cli._common import resolve_database_url
from horsies.cli.db import format_status

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    logger = logging.getLogger("horsies")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_format_status() -> None:
    assert format_status(None, 1) == "database schema: not initialized"
    assert format_status(1, 1) == "database schema: v1 (this build supports v1)"
    assert format_status(3, 1) == "database schema: v3 (this build supports v1)"


@pytest.mark.parametrize("command", ["init", "status"])
def test_no_database_is_a_usage_error(command: str) -> None:
    result = runner.invoke(cli, ["db", command])
    assert result.exit_code == 2
    assert "--database-url" in result.stderr
    assert "HORSIES_DATABASE_URL" in result.stderr and "DATABASE_URL" in result.stderr


def test_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://d/d")
    assert resolve_database_url(None, None) == "postgresql://d/d"
    monkeypatch.setenv("HORSIES_DATABASE_URL", "postgresql+psycopg://h/h")
    assert resolve_database_url(None, None) == "postgresql://h/h"
    assert resolve_database_url("postgres+psycopg://o/o", None) == "postgres://o/o"


def test_unreachable_database_exits_1() -> None:
    result = runner.invoke(cli, ["db", "status", "--database-url", "postgresql://u:pw@127.0.0.1:1/x"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error")
    assert ":pw@" not in result.stderr


def test_db_without_subcommand_shows_help() -> None:
    result = runner.invoke(cli, ["db"])
    assert "init" in result.output and "status" in result.output
