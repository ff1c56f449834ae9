"""``horsies worker``: flags, validation, exit codes and what reaches the worker (cli.md §5).

The worker itself is replaced by a stand-in that records its configuration,
so no database is needed.
"""

from __future__ import annotations

import logging
import os
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from horsies.cli import app as cli
from horsies.cli.worker import default_processes, parse_queue_list

runner = CliRunner()

APP_SOURCE = textwrap.dedent(
    """
    from horsies import (
        AppConfig, CustomQueueConfig, Horsies, PostgresConfig, QueueMode, TaskError, TaskResult,
    )

    app = Horsies(AppConfig(
        queue_mode=QueueMode.CUSTOM,
        custom_queues=[
            CustomQueueConfig(name="payments"),
            CustomQueueConfig(name="mail"),
            CustomQueueConfig(name="exports"),
        ],
        broker=PostgresConfig(database_url="postgresql+psycopg://shop:s3cret@db.internal:5432/shop"),
        cluster_wide_cap=9,
    ))

    @app.task("charge", queue_name="payments")
    def charge(amount: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=amount)
    """
)


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    logger = logging.getLogger("horsies")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    monkeypatch.delenv("HORSIES_FORCE_COLOR", raising=False)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A project directory with an app package; yields the dotted module name."""
    package = f"shop_{uuid.uuid4().hex[:10]}"
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "instance.py").write_text(APP_SOURCE)
    monkeypatch.chdir(tmp_path)
    yield f"{package}.instance"
    for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
        del sys.modules[name]


class FakeWorker:
    def __init__(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code
        self.calls: list[tuple[Any, Any]] = []

    def __call__(self, app: Any, config: Any, children: Any = None) -> int:
        self.calls.append((app, config))
        return self.exit_code


@pytest.fixture
def fake_worker(monkeypatch: pytest.MonkeyPatch) -> FakeWorker:
    import horsies.worker

    fake = FakeWorker()
    monkeypatch.setattr(horsies.worker, "run_worker", fake, raising=False)
    # no processes in unit tests: the worker these commands would start is the fake
    monkeypatch.setattr(horsies.worker, "spawn_children", lambda config: [], raising=False)
    return fake


# -- flag validation (exit code 2) ----------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--processes", "0"],
        ["--processes", "two"],
        ["--loglevel", "LOUD"],
        ["--max-claim-batch", "0"],
        ["--max-claim-per-worker", "-1"],
        ["--queues", ""],
        ["--queues", " , ,"],
        ["--shutdown-timeout", "0"],
        ["--shutdown-timeout", "-3"],
        ["--shutdown-timeout", "soon"],
        ["--no-such-flag"],
    ],
)
def test_bad_flag_values_exit_2(args: list[str], fake_worker: FakeWorker) -> None:
    result = runner.invoke(cli, ["worker", "some.module:app", *args])
    assert result.exit_code == 2, result.output
    assert fake_worker.calls == []


def test_missing_module_exits_2_with_hrs_206(fake_worker: FakeWorker) -> None:
    result = runner.invoke(cli, ["worker"])
    assert result.exit_code == 2
    assert "error[HRS-206]: module path is required" in result.stderr
    assert "shop.workers.instance:app" in result.stderr  # the accepted forms as help


def test_conflicting_module_values_exit_2(fake_worker: FakeWorker) -> None:
    result = runner.invoke(cli, ["worker", "a.b:app", "-m", "c.d:app"])
    assert result.exit_code == 2
    assert "HRS-206" in result.stderr


def test_unknown_queue_exits_2_and_lists_valid_names(project: str, fake_worker: FakeWorker) -> None:
    result = runner.invoke(cli, ["worker", f"{project}:app", "--queues", "payments,bulk"])
    assert result.exit_code == 2, result.output
    assert "bulk" in result.stderr
    assert "payments, mail, exports" in result.stderr
    assert fake_worker.calls == []


def test_parse_queue_list() -> None:
    assert parse_queue_list("a, b,,a ,c") == ["a", "b", "c"]
    assert parse_queue_list(" , ") == []


def test_default_processes_is_the_cpu_count() -> None:
    assert default_processes() == (os.cpu_count() or 1)


# -- a normal start --------------------------------------------------------------


def test_start_builds_the_worker_config(project: str, fake_worker: FakeWorker) -> None:
    result = runner.invoke(cli, ["worker", f"{project}:app", "--loglevel", "debug"])
    assert result.exit_code == 0, result.output
    [(app, config)] = fake_worker.calls
    assert app.role == "worker"
    assert config.app_locator == f"{project}:app"
    assert config.queues is None
    assert config.processes == default_processes()
    assert config.max_claim_batch == 2
    assert config.max_claim_per_worker == 0
    assert config.loglevel == logging.DEBUG
    assert config.shutdown_timeout_s is None
    assert config.sys_path_roots == [os.getcwd()]


def test_start_passes_every_flag(project: str, fake_worker: FakeWorker) -> None:
    result = runner.invoke(
        cli,
        [
            "worker", "-m", f"{project}:app", "--processes", "3", "--max-claim-batch", "4",
            "--max-claim-per-worker", "7", "--queues", "mail,payments",
            "--shutdown-timeout", "12.5", "--loglevel", "warning",
        ],
    )
    assert result.exit_code == 0, result.output
    [(_, config)] = fake_worker.calls
    assert config.processes == 3
    assert config.max_claim_batch == 4
    assert config.max_claim_per_worker == 7
    assert config.queues == ["payments", "mail"]  # configuration order
    assert config.shutdown_timeout_s == 12.5
    assert config.loglevel == logging.WARNING


def test_startup_output(project: str, fake_worker: FakeWorker) -> None:
    result = runner.invoke(cli, ["worker", project, "--queues", "mail"])
    assert result.exit_code == 0, result.output
    err = result.stderr
    for line in (
        "Starting horsies worker with loglevel=INFO",
        f"Discovered horsies 'app' from {project}",
        "horsies running as worker",
        "Worker will process queues: [mail]",
    ):
        assert line in err
    assert err.index("Starting horsies worker") < err.index("Discovered horsies")
    out = result.stdout
    assert "[config]" in out and "[tasks] (1 registered)" in out
    assert "  .> role:        worker" in out
    assert "  .> queues:      mail" in out
    assert "  .> broker:      postgresql+psycopg://shop:****@db.internal:5432/shop" in out
    assert "  .> cap:         9 (cluster-wide)" in out
    assert "  . charge" in out
    assert "s3cret" not in result.output
    assert "\033[" not in out  # not a terminal


def test_discovered_attribute_goes_to_the_children(project: str, fake_worker: FakeWorker) -> None:
    result = runner.invoke(cli, ["worker", project])
    assert result.exit_code == 0, result.output
    assert fake_worker.calls[0][1].app_locator == f"{project}:app"


def test_file_locator_gives_children_the_real_path(
    project: str, fake_worker: FakeWorker, tmp_path: Path
) -> None:
    path = project.replace(".", "/") + ".py"
    result = runner.invoke(cli, ["worker", path])
    assert result.exit_code == 0, result.output
    [(_, config)] = fake_worker.calls
    real = os.path.realpath(tmp_path / path)
    assert config.app_locator == f"{real}:app"
    assert config.sys_path_roots == [os.getcwd(), os.path.dirname(real)]


def test_worker_exit_code_is_passed_through(project: str, fake_worker: FakeWorker) -> None:
    fake_worker.exit_code = 1
    result = runner.invoke(cli, ["worker", f"{project}:app"])
    assert result.exit_code == 1


def test_failed_validation_exits_1_before_the_banner(
    project: str, fake_worker: FakeWorker, tmp_path: Path
) -> None:
    source = (tmp_path / project.replace(".", "/")).with_suffix(".py")
    source.write_text(source.read_text() + "\napp.discover_tasks(['no_such_module_xyz'])\n")
    result = runner.invoke(cli, ["worker", f"{project}:app"])
    assert result.exit_code == 1
    assert "HRS-206" in result.stderr
    assert "no_such_module_xyz" in result.stderr
    assert "[config]" not in result.stdout
    assert fake_worker.calls == []


def test_locator_error_exits_1(fake_worker: FakeWorker, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["worker", "no_such_package_xyz.instance:app"])
    assert result.exit_code == 1
    assert "error[HRS-206]: module not found: no_such_package_xyz.instance" in result.stderr


def test_interrupt_before_start_is_a_clean_exit(
    project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import horsies.worker

    def interrupted(app: Any, config: Any, children: Any = None) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(horsies.worker, "run_worker", interrupted, raising=False)
    monkeypatch.setattr(horsies.worker, "spawn_children", lambda config: [], raising=False)
    result = runner.invoke(cli, ["worker", f"{project}:app"])
    assert result.exit_code == 0
