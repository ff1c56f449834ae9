"""``horsies check`` and the app locator (cli.md §3, §7)."""

from __future__ import annotations

import logging
import os
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from horsies.cli import app as cli
from horsies.cli._common import is_file_locator, locate_app, split_locator
from horsies.errors import ConfigurationError, ErrorCode

runner = CliRunner()

HEADER = textwrap.dedent(
    """
    from horsies import AppConfig, Horsies, PostgresConfig, TaskError, TaskResult

    def make_app():
        return Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://u:p@localhost:1/db")))
    """
)

TASK = textwrap.dedent(
    """
    @app.task("{name}")
    def {name}(x: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=x)
    """
)


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    logger = logging.getLogger("horsies")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.package = f"pkg_{uuid.uuid4().hex[:10]}"
        (root / "pyproject.toml").write_text("[project]\nname = 'p'\n")
        (root / self.package).mkdir()
        (root / self.package / "__init__.py").write_text("")

    def module(self, name: str, body: str) -> str:
        (self.root / self.package / f"{name}.py").write_text(HEADER + textwrap.dedent(body))
        return f"{self.package}.{name}"

    def cleanup(self) -> None:
        for name in [n for n in sys.modules if n.split(".")[0] == self.package]:
            del sys.modules[name]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.chdir(tmp_path)
    proj = Project(tmp_path)
    yield proj
    proj.cleanup()


def _app_with_tasks(*names: str, extra: str = "") -> str:
    return "app = make_app()\n" + "".join(TASK.format(name=n) for n in names) + extra


# -- horsies check -------------------------------------------------------------------


def test_ok_output(project: Project) -> None:
    mod = project.module("instance", _app_with_tasks("alpha", "beta"))
    result = runner.invoke(cli, ["check", f"{mod}:app"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: all validations passed\n  2 task(s) registered\n")
    assert "speedups:" in result.stdout
    assert "Discovered horsies" not in result.stderr  # default level is WARNING


def test_check_imports_discovered_modules(project: Project) -> None:
    instance = project.module("instance", "app = make_app()\n")
    tasks = project.module(
        "tasks", f"from {project.package}.instance import app\n" + TASK.format(name="gamma")
    )
    path = project.root / project.package / "instance.py"
    path.write_text(path.read_text() + f"\napp.discover_tasks([{tasks!r}])\n")
    result = runner.invoke(cli, ["check", "-m", f"{instance}:app"])
    assert result.exit_code == 0, result.output
    assert "  1 task(s) registered" in result.stdout


def test_errors_are_reported_on_stderr_with_exit_1(project: Project) -> None:
    mod = project.module("instance", "app = make_app()\napp.discover_tasks(['missing_mod_qq'])\n")
    result = runner.invoke(cli, ["check", f"{mod}:app"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error[HRS-206]" in result.stderr
    assert "aborting due to 1 previous errors" in result.stderr


def test_loglevel_is_validated(project: Project) -> None:
    assert runner.invoke(cli, ["check", "x:app", "--loglevel", "chatty"]).exit_code == 2
    mod = project.module("instance", _app_with_tasks("a"))
    assert runner.invoke(cli, ["check", f"{mod}:app", "--loglevel", "error"]).exit_code == 0


def test_live_failure_is_hrs_211(project: Project) -> None:
    mod = project.module("instance", _app_with_tasks("a"))  # port 1: nothing listens
    result = runner.invoke(cli, ["check", f"{mod}:app", "--live"])
    assert result.exit_code == 1
    assert "error[HRS-211]" in result.stderr
    assert ":p@" not in result.stderr  # password masked


def test_missing_module_argument_exits_2() -> None:
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 2
    assert "module path is required" in result.stderr


# -- the locator ------------------------------------------------------------------------


def _locator_error(locator: str) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        locate_app(locator)
    return info.value


def test_split_locator() -> None:
    assert split_locator("a.b:app") == ("a.b", "app")
    assert split_locator("a.b") == ("a.b", None)
    assert split_locator("x/y.py:app") == ("x/y.py", "app")
    assert split_locator("a:b:c") == ("a:b", "c")
    assert split_locator("C:\\shop\\app.py") == ("C:\\shop\\app.py", None)


def test_is_file_locator() -> None:
    assert is_file_locator("shop/app.py")
    assert is_file_locator("shop.py")
    assert is_file_locator("shop/app")
    assert not is_file_locator("shop.app")


def test_dotted_with_attribute(project: Project) -> None:
    mod = project.module("instance", _app_with_tasks("a"))
    located = locate_app(f"{mod}:app")
    assert located.attr == "app"
    assert located.module_name == mod
    assert located.child_locator == f"{mod}:app"
    assert located.sys_path_roots == (os.getcwd(),)
    assert located.is_file is False
    assert sys.path[0] == os.getcwd()


def test_discovered_attribute(project: Project) -> None:
    mod = project.module("instance", "my_app = make_app()\n_private = make_app()\n")
    located = locate_app(mod)
    assert located.attr == "my_app"
    assert located.child_locator == f"{mod}:my_app"


def test_file_path_without_py_suffix(project: Project) -> None:
    project.module("instance", "app = make_app()\n")
    located = locate_app(f"{project.package}/instance:app")
    real = os.path.realpath(project.root / project.package / "instance.py")
    assert located.child_locator == f"{real}:app"
    assert located.is_file is True
    assert located.sys_path_roots == (os.getcwd(), os.path.dirname(real))


def test_project_root_is_logged(project: Project, caplog: pytest.LogCaptureFixture) -> None:
    mod = project.module("instance", "app = make_app()\n")
    with caplog.at_level(logging.INFO, logger="horsies"):
        locate_app(f"{mod}:app")
    messages = [r.getMessage() for r in caplog.records]
    assert f"Added project root to sys.path: {os.getcwd()}" in messages
    assert f"Discovered horsies 'app' from {mod}" in messages


def test_module_not_found(project: Project) -> None:
    error = _locator_error("nope_zz.instance:app")
    assert error.code is ErrorCode.CLI_INVALID_ARGS
    assert error.message == "module not found: nope_zz.instance"
    assert any("sys.path" in note for note in error.notes)


def test_import_error_inside_module(project: Project) -> None:
    mod = project.module("instance", "import dependency_that_is_missing_zz\n")
    error = _locator_error(f"{mod}:app")
    assert error.code is ErrorCode.CLI_INVALID_ARGS
    assert error.message == f"failed to import module: {mod}"


def test_module_raising_is_hrs_210(project: Project) -> None:
    mod = project.module("instance", "raise RuntimeError('kaput')\n")
    error = _locator_error(f"{mod}:app")
    assert error.code is ErrorCode.MODULE_EXEC_ERROR
    assert error.message == f"error while importing module: {mod}"
    assert error.notes == ["RuntimeError: kaput"]


def test_missing_file(project: Project) -> None:
    error = _locator_error("shop/nothing_here.py:app")
    assert error.code is ErrorCode.CLI_INVALID_ARGS
    assert error.message.startswith("module file not found: ")
    assert error.message.endswith(os.path.join("shop", "nothing_here.py"))


def test_dotted_name_with_py_is_ambiguous(project: Project) -> None:
    error = _locator_error("shop.instance.py:app")
    assert error.code is ErrorCode.CLI_INVALID_ARGS
    assert "ambiguous" in error.message
    assert error.help_text is not None
    assert "shop.instance:app" in error.help_text
    assert "shop/instance.py:app" in error.help_text


def test_missing_attribute_lists_public_names(project: Project) -> None:
    mod = project.module("instance", "app = make_app()\n")
    error = _locator_error(f"{mod}:application")
    assert error.code is ErrorCode.CLI_INVALID_ARGS
    assert "'app'" in error.notes[0]


def test_attribute_that_is_not_an_app(project: Project) -> None:
    mod = project.module("instance", "app = make_app()\nother = 3\n")
    error = _locator_error(f"{mod}:other")
    assert error.message == f"'other' in module '{mod}' is not a Horsies instance"


def test_no_instance(project: Project) -> None:
    mod = project.module("instance", "x = 1\n")
    assert _locator_error(mod).message == f"no Horsies instance found in {mod}"


def test_several_instances(project: Project) -> None:
    mod = project.module("instance", "a = make_app()\nb = make_app()\n")
    error = _locator_error(mod)
    assert error.message == f"multiple Horsies instances found in {mod}"
    assert "'a'" in error.notes[0] and "'b'" in error.notes[0]


def test_bad_attribute_syntax_is_hrs_207(project: Project) -> None:
    assert _locator_error("shop.instance:not-a-name").code is ErrorCode.WORKER_INVALID_LOCATOR
    assert _locator_error(":app").code is ErrorCode.WORKER_INVALID_LOCATOR


def test_cli_prints_locator_errors_and_exits_1(project: Project) -> None:
    result = runner.invoke(cli, ["check", "nope_zz.instance:app"])
    assert result.exit_code == 1
    assert "error[HRS-206]: module not found: nope_zz.instance" in result.stderr


def test_interrupted_check_exits_130(project: Project) -> None:
    mod = project.module("instance", "raise KeyboardInterrupt\n")
    result = runner.invoke(cli, ["check", f"{mod}:app"])
    assert result.exit_code == 130


def test_file_locator_inside_a_package_is_imported_under_its_dotted_name(
    project: Project,
) -> None:
    instance = project.module("instance", "app = make_app()\n")
    tasks = project.module(
        "tasks", f"from {instance} import app\n" + TASK.format(name="delta")
    )
    path = project.root / project.package / "instance.py"
    path.write_text(path.read_text() + f"\napp.discover_tasks([{tasks!r}])\n")
    located = locate_app(f"{project.package}/instance.py")
    assert located.app is sys.modules[instance].app
    assert located.app.check() == []
    assert located.app.list_tasks() == ["delta"]
    real = os.path.realpath(path)
    assert located.child_locator == f"{real}:app"


def test_file_outside_sys_path_gets_a_synthetic_name(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from horsies.cli._common import dotted_name_for

    monkeypatch.chdir(tmp_path)  # no pyproject.toml: nothing added to sys.path
    folder = tmp_path / f"loose_{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "worker_app.py").write_text(HEADER + "app = make_app()\n")
    real = os.path.realpath(folder / "worker_app.py")
    assert dotted_name_for(real) is None
    located = locate_app(f"{folder}/worker_app.py:app")
    assert located.module_name == real
    assert sys.path[0] == os.path.dirname(real)
