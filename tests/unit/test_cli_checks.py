"""``app.check()`` phases, as run by ``horsies.checks.run_checks`` (app-and-config.md §5)."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from horsies import AppConfig, Horsies, PostgresConfig, RetryPolicy, TaskError, TaskResult
from horsies.checks import run_checks
from horsies.errors import ErrorCode, HorsiesError

URL = "postgresql://u:secret@localhost:1/db"


def make_app(**config: Any) -> Horsies:
    return Horsies(AppConfig(broker=PostgresConfig(database_url=URL), **config))


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    name = f"chk_{uuid.uuid4().hex[:10]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / name, name
    for mod in [m for m in sys.modules if m.split(".")[0] == name]:
        del sys.modules[mod]


def codes(errors: list[HorsiesError]) -> list[str]:
    return [str(e.code) for e in errors]


def test_empty_app_passes() -> None:
    assert run_checks(make_app()) == []


def test_app_check_delegates_here() -> None:
    assert make_app().check() == []


# -- phase 2 -----------------------------------------------------------------------------


def test_missing_file_entry_has_no_location(tmp_path: Path) -> None:
    app = make_app()
    app.discover_tasks([str(tmp_path / "gone.py")])
    [error] = run_checks(app)
    assert error.code is ErrorCode.CLI_INVALID_ARGS
    assert error.location is None
    assert error.help_text is not None and "remove" in error.help_text


def test_module_not_found_is_hrs_206() -> None:
    app = make_app()
    app.discover_tasks(["no_such_module_abc"])
    [error] = run_checks(app)
    assert error.code is ErrorCode.CLI_INVALID_ARGS
    assert any("no_such_module_abc" in note for note in error.notes)


def test_module_raising_is_hrs_210_with_its_location(package: tuple[Path, str]) -> None:
    root, name = package
    (root / "bad.py").write_text("x = 1\nraise ValueError('nope')\n")
    app = make_app()
    app.discover_tasks([f"{name}.bad"])
    [error] = run_checks(app)
    assert error.code is ErrorCode.MODULE_EXEC_ERROR
    assert error.notes == ["ValueError: nope"]
    assert error.location is not None
    assert error.location.file.endswith("bad.py") and error.location.line == 2


def test_errors_of_all_modules_are_collected_and_later_phases_skipped(tmp_path: Path) -> None:
    app = make_app(default_unhandled_error_code="BROKER_ERROR")  # a phase-5 problem
    app.discover_tasks(["no_such_module_1", "no_such_module_2"])
    assert codes(run_checks(app)) == ["HRS-206", "HRS-206"]


def test_sends_are_suppressed_during_imports(package: tuple[Path, str]) -> None:
    root, name = package
    app = make_app()
    import builtins

    builtins.APP = app  # type: ignore[attr-defined]
    try:
        (root / "spy.py").write_text(
            "import builtins\n"
            "builtins._horsies_seen_suppressed = builtins.APP.are_sends_suppressed()\n"
        )
        app.discover_tasks([f"{name}.spy"])
        assert run_checks(app) == []
        assert builtins._horsies_seen_suppressed is True  # type: ignore[attr-defined]
        assert app.are_sends_suppressed() is False
    finally:
        del builtins.APP  # type: ignore[attr-defined]
        del builtins._horsies_seen_suppressed  # type: ignore[attr-defined]


def test_horsies_errors_from_imports_are_reported_as_is(package: tuple[Path, str]) -> None:
    root, name = package
    (root / "tasks.py").write_text(
        textwrap.dedent(
            """
            import builtins
            app = builtins.APP

            @app.task("no_annotation")
            def no_annotation(x):
                return x
            """
        )
    )
    import builtins

    app = make_app()
    builtins.APP = app  # type: ignore[attr-defined]
    try:
        app.discover_tasks([f"{name}.tasks"])
        [error] = run_checks(app)
    finally:
        del builtins.APP  # type: ignore[attr-defined]
    assert error.code is ErrorCode.TASK_NO_RETURN_TYPE


# -- phase 3.3 (3.1 and 3.2: test_workflow_check.py) ----------------------------------


def test_undecorated_builder_is_reported(package: tuple[Path, str]) -> None:
    root, name = package
    (root / "flows.py").write_text(
        textwrap.dedent(
            """
            from __future__ import annotations

            def nightly() -> WorkflowSpec:
                ...

            def quiet() -> WorkflowSpec:
                ...
            quiet.__horsies_no_check__ = True

            def other() -> int:
                return 1
            """
        )
    )
    app = make_app()
    app.discover_tasks([f"{name}.flows"])
    [error] = run_checks(app)
    assert error.code is ErrorCode.WORKFLOW_CHECK_UNDECORATED_BUILDER
    assert "nightly" in error.message
    assert error.location is not None and error.location.file.endswith("flows.py")


# -- phase 5 -------------------------------------------------------------------------------


def test_reserved_code_in_app_mapper_is_hrs_212() -> None:
    app = make_app(exception_mapper={KeyError: "BROKER_ERROR"})
    [error] = run_checks(app)
    assert error.code is ErrorCode.CHECK_RESERVED_CODE_COLLISION
    assert any("app config" in note for note in error.notes)
    assert any("KeyError" in note for note in error.notes)


def test_reserved_default_code_is_hrs_212_except_unhandled_exception() -> None:
    assert run_checks(make_app(default_unhandled_error_code="UNHANDLED_EXCEPTION")) == []
    [error] = run_checks(make_app(default_unhandled_error_code="TASK_EXCEPTION"))
    assert error.code is ErrorCode.CHECK_RESERVED_CODE_COLLISION


def test_mutated_app_mapper_is_rechecked() -> None:
    app = make_app(exception_mapper={KeyError: "MISSING_KEY"})
    app.config.exception_mapper["not a class"] = "lower case"  # type: ignore[index]
    errors = run_checks(app)
    assert errors and set(codes(errors)) == {"HRS-209"}


def test_task_level_reserved_codes() -> None:
    app = make_app()

    @app.task("sync", exception_mapper={OSError: "WORKER_CRASHED"},
              default_unhandled_error_code="WAIT_TIMEOUT")
    def sync(x: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=x)

    errors = run_checks(app)
    assert codes(errors) == ["HRS-212", "HRS-212"]
    assert any("task 'sync'" in note for note in errors[0].notes)
    assert errors[0].location is not None and errors[0].location.file == __file__


def test_invalid_retry_policy_is_hrs_102() -> None:
    app = make_app()

    @app.task("flaky", retry_policy=RetryPolicy(auto_retry_for=["UPSTREAM_DOWN"]))
    def flaky(x: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=x)

    assert run_checks(app) == []
    flaky.retry_policy.auto_retry_for.clear()  # mutated in place after definition
    [error] = run_checks(app)
    assert error.code is ErrorCode.TASK_INVALID_OPTIONS


# -- phase 6 -------------------------------------------------------------------------------


def test_live_connection_failure_is_hrs_211_with_masked_url() -> None:
    [error] = run_checks(make_app(), live=True)
    assert error.code is ErrorCode.BROKER_INIT_FAILED
    assert error.location is None
    assert "secret" not in str(error)


def test_live_is_skipped_when_earlier_phases_fail() -> None:
    app = make_app()
    app.discover_tasks(["no_such_module_live"])
    assert codes(run_checks(app, live=True)) == ["HRS-206"]
