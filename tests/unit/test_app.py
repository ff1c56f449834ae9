"""The Horsies app object: construction, registry, hooks, queue names, discovery
(app-and-config.md §3, §4). No database: the broker URL points nowhere and is
never used."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from horsies import (
    AppConfig,
    ConfigurationError,
    CustomQueueConfig,
    Horsies,
    PostgresConfig,
    QueueMode,
    RegistryError,
    TaskError,
    TaskResult,
)
from horsies.app import TaskRegistry
from horsies.errors import DuplicateTaskNameError, ErrorCode, NotRegistered

NOWHERE = "postgresql://u@127.0.0.1:1/x"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HORSIES_DATABASE_URL",
        "HORSIES_CHILD_PROCESS",
        "HORSIES_CHILD_DISCOVERY_LOGS",
        "HORSIES_SUPPRESS_SENDS",
        "TASKLIB_SUPPRESS_SENDS",
    ):
        monkeypatch.delenv(name, raising=False)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logs() -> Iterator[list[logging.LogRecord]]:
    """Records of the `horsies` logger tree, whatever its propagation setting."""
    logger = logging.getLogger("horsies")
    handler = _ListHandler()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.fixture
def restore_imports() -> Iterator[None]:
    modules = set(sys.modules)
    path = list(sys.path)
    try:
        yield
    finally:
        # Only what these tests load: dropping a library module imported meanwhile
        # would give later tests a second copy of its classes.
        for name in set(sys.modules) - modules:
            if name.startswith(("hz_", "horsies._dynamic.")):
                del sys.modules[name]
        sys.path[:] = path


def default_app() -> Horsies:
    return Horsies(AppConfig(broker=PostgresConfig(database_url=NOWHERE)))


def custom_app(*names: str) -> Horsies:
    return Horsies(
        AppConfig(
            queue_mode=QueueMode.CUSTOM,
            custom_queues=[CustomQueueConfig(name=n) for n in names],
            broker=PostgresConfig(database_url=NOWHERE),
        )
    )


def _task_body() -> TaskResult[int, TaskError]:
    return TaskResult(ok=1)


# --- construction ------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [None, {}, "config", PostgresConfig(database_url=NOWHERE), AppConfig],
)
def test_config_must_be_an_app_config(config: Any) -> None:
    with pytest.raises(TypeError):
        Horsies(config)


def test_construction_does_no_io() -> None:
    config = AppConfig(broker=PostgresConfig(database_url=NOWHERE))
    app = Horsies(config)
    assert app.config is config
    assert isinstance(app.tasks, TaskRegistry)
    assert len(app.tasks) == 0
    assert app.list_tasks() == []
    assert app.get_discovered_task_modules() == []
    assert app._broker is None  # get_broker() was never called


def test_init_line_at_info(logs: list[logging.LogRecord]) -> None:
    default_app()
    custom_app("a")
    lines = [(r.levelno, r.getMessage()) for r in logs if "initialized" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0][0] == logging.INFO and "DEFAULT" in lines[0][1]
    assert lines[1][0] == logging.INFO and "CUSTOM" in lines[1][1]


def test_init_line_at_debug_in_a_child(
    logs: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HORSIES_CHILD_PROCESS", "1")
    default_app()
    lines = [r for r in logs if "initialized" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.DEBUG]
    assert "DEFAULT" in lines[0].getMessage()


def test_apps_are_independent() -> None:
    first, second = default_app(), default_app()
    first.task("only_first", _task_body)
    assert first.list_tasks() == ["only_first"]
    assert second.list_tasks() == []
    assert "only_first" not in second.tasks
    first.discover_tasks(["a.b"])
    assert second.get_discovered_task_modules() == []


# --- the task registry ---------------------------------------------------------------


def test_missing_name_raises_not_registered() -> None:
    registry = TaskRegistry()
    with pytest.raises(NotRegistered) as info:
        registry["nope"]
    error = info.value
    assert isinstance(error, KeyError)
    assert isinstance(error, RegistryError)
    assert error.code is ErrorCode.TASK_NOT_REGISTERED
    assert error.code.value == "HRS-300"
    assert "nope" not in registry
    assert registry.get("nope") is None
    with pytest.raises(KeyError):
        registry["nope"]


def test_register_and_look_up() -> None:
    registry = TaskRegistry()
    assert registry.register("task-a", name="a", source="/x.py:1") is True
    registry.register("task-b", name="b")
    assert registry["a"] == "task-a"
    assert "a" in registry
    assert list(registry) == ["a", "b"]
    assert registry.keys_list() == ["a", "b"]
    assert len(registry) == 2


def test_duplicate_name_from_another_source() -> None:
    registry = TaskRegistry()
    registry.register("first", name="a", source="/x.py:1")
    with pytest.raises(DuplicateTaskNameError) as info:
        registry.register("second", name="a", source="/x.py:9")
    assert isinstance(info.value, RegistryError)
    assert info.value.code is ErrorCode.TASK_DUPLICATE_NAME
    assert info.value.code.value == "HRS-301"
    with pytest.raises(DuplicateTaskNameError):
        registry.register("third", name="a")  # unknown source is never "the same"
    assert registry["a"] == "first"


def test_same_source_registration_is_ignored() -> None:
    registry = TaskRegistry()
    assert registry.register("first", name="a", source="/x.py:1") is True
    assert registry.register("second", name="a", source="/x.py:1") is False
    assert registry["a"] == "first"
    assert registry.keys_list() == ["a"]


def test_setitem_refuses_an_existing_name() -> None:
    registry = TaskRegistry()
    registry["a"] = "first"
    assert registry["a"] == "first"
    with pytest.raises(DuplicateTaskNameError):
        registry["a"] = "second"
    assert registry["a"] == "first"


def test_unregister_and_delete() -> None:
    registry = TaskRegistry()
    registry.register("x", name="a")
    registry.register("y", name="b")
    registry.unregister("a")
    registry.unregister("never-there")  # no error
    assert registry.keys_list() == ["b"]
    del registry["b"]
    assert len(registry) == 0
    registry.register("z", name="a", source="/x.py:1")  # the name is free again
    assert registry["a"] == "z"


def test_list_tasks_in_registration_order() -> None:
    app = default_app()
    for name in ("zeta", "alpha", "mid"):

        def body() -> TaskResult[None, TaskError]:
            return TaskResult(ok=None)

        app.task(name, body)
    assert app.list_tasks() == ["zeta", "alpha", "mid"] == list(app.tasks)


# --- on_child_process_start ----------------------------------------------------------


def test_hooks_register_in_order_once() -> None:
    app = default_app()

    @app.on_child_process_start
    def first() -> None: ...

    def second() -> None: ...

    assert app.on_child_process_start(second) is second
    assert app.on_child_process_start(first) is first  # again: kept once
    assert callable(first)
    assert app.child_process_start_hooks == [first, second]


@pytest.mark.parametrize("value", [None, 5, "module.hook"])
def test_hook_must_be_callable(value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        default_app().on_child_process_start(value)
    assert info.value.code is ErrorCode.CONFIG_INVALID_CHILD_HOOK
    assert info.value.code.value == "HRS-214"
    assert info.value.message == "on_child_process_start requires a callable"


def test_hook_must_be_sync() -> None:
    async def hook() -> None: ...

    app = default_app()
    with pytest.raises(ConfigurationError) as info:
        app.on_child_process_start(hook)
    assert info.value.code is ErrorCode.CONFIG_INVALID_CHILD_HOOK
    assert info.value.message == "on_child_process_start hooks must be sync"
    assert app.child_process_start_hooks == []


# --- queue names ---------------------------------------------------------------------


def test_valid_queue_names() -> None:
    assert default_app().get_valid_queue_names() == ["default"]
    assert custom_app("reports", "payments", "mail").get_valid_queue_names() == [
        "reports",
        "payments",
        "mail",
    ]


def test_validate_queue_name_default_mode() -> None:
    app = default_app()
    assert app.validate_queue_name(None) == "default"
    for name in ("default", "other", ""):
        with pytest.raises(ConfigurationError) as info:
            app.validate_queue_name(name)
        assert info.value.code is ErrorCode.CONFIG_INVALID_QUEUE_MODE
        assert info.value.code.value == "HRS-200"


def test_validate_queue_name_custom_mode() -> None:
    app = custom_app("reports", "payments")
    assert app.validate_queue_name("payments") == "payments"
    assert app.validate_queue_name("reports") == "reports"
    with pytest.raises(ConfigurationError) as info:
        app.validate_queue_name(None)
    assert info.value.code is ErrorCode.CONFIG_INVALID_QUEUE_MODE
    with pytest.raises(ConfigurationError) as info:
        app.validate_queue_name("default")
    assert info.value.code is ErrorCode.TASK_INVALID_QUEUE
    assert info.value.code.value == "HRS-103"
    notes = " ".join(info.value.notes)
    assert "reports" in notes and "payments" in notes


# --- discover_tasks ------------------------------------------------------------------


def test_discover_records_without_importing(logs: list[logging.LogRecord]) -> None:
    app = default_app()
    entries = ["no.such.module_xyz", "/no/such/dir/tasks.py", "relative/tasks.py"]
    app.discover_tasks(entries)
    assert app.get_discovered_task_modules() == entries
    assert "no.such.module_xyz" not in sys.modules
    copy = app.get_discovered_task_modules()
    copy.append("mutated")
    assert app.get_discovered_task_modules() == entries
    infos = [r for r in logs if r.levelno == logging.INFO and "3" in r.getMessage()]
    assert len(infos) == 1


def test_discover_again_replaces_with_a_warning(logs: list[logging.LogRecord]) -> None:
    app = default_app()
    app.discover_tasks(["a", "b", "c"])
    logs.clear()
    app.discover_tasks(["d", "e"])
    assert app.get_discovered_task_modules() == ["d", "e"]
    warnings = [r.getMessage() for r in logs if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "3" in warnings[0] and "2" in warnings[0]


def test_discover_empty_logs_no_info(logs: list[logging.LogRecord]) -> None:
    app = default_app()
    logs.clear()
    app.discover_tasks([])
    assert [r for r in logs if r.levelno >= logging.INFO] == []


def test_discover_is_quiet_in_a_child_unless_asked(
    logs: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HORSIES_CHILD_PROCESS", "1")
    app = default_app()
    logs.clear()
    app.discover_tasks(["a"])
    assert [r for r in logs if r.levelno == logging.INFO] == []
    monkeypatch.setenv("HORSIES_CHILD_DISCOVERY_LOGS", "1")
    other = default_app()
    logs.clear()
    other.discover_tasks(["a"])
    assert len([r for r in logs if r.levelno == logging.INFO]) == 1


# --- expand_module_globs -------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    for rel in (
        "a.py",
        "conftest.py",
        "notes.txt",
        "sub/b.py",
        "sub/test_b.py",
        "sub/b_test.py",
        "sub/b.pyc",
        "sub/deep/c.py",
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    (root / "pkg.py").mkdir()  # a directory whose name ends in .py
    return root


def _real(path: Path) -> str:
    return os.path.realpath(path)


def test_globs_find_python_files_recursively(tree: Path) -> None:
    found = default_app().expand_module_globs([str(tree / "**" / "*.py")])
    assert sorted(found) == sorted(
        _real(tree / rel) for rel in ("a.py", "sub/b.py", "sub/deep/c.py")
    )
    assert len(found) == len(set(found))


def test_glob_results_are_absolute_real_paths(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree.parent)
    link = tree / "sub" / "link.py"
    link.symlink_to(tree / "a.py")
    found = default_app().expand_module_globs(["proj/*.py", "proj/sub/*.py"])
    assert all(os.path.isabs(p) and p == os.path.realpath(p) for p in found)
    # link.py resolves to a.py, already seen: dropped.
    assert found.count(_real(tree / "a.py")) == 1
    assert sorted(found) == sorted([_real(tree / "a.py"), _real(tree / "sub/b.py")])


@pytest.mark.parametrize("pattern", ["sub/?.py", "sub/[b].py", "sub/*.py"])
def test_every_glob_character(tree: Path, pattern: str) -> None:
    assert default_app().expand_module_globs([str(tree / pattern)]) == [_real(tree / "sub/b.py")]


def test_custom_exclude_replaces_the_defaults(tree: Path) -> None:
    found = default_app().expand_module_globs([str(tree / "**" / "*.py")], exclude=["b.py"])
    assert sorted(found) == sorted(
        _real(tree / rel)
        for rel in ("a.py", "conftest.py", "sub/test_b.py", "sub/b_test.py", "sub/deep/c.py")
    )
    everything = default_app().expand_module_globs([str(tree / "**" / "*.py")], exclude=[])
    assert len(everything) == 6  # every regular .py file; not pkg.py/, b.pyc, notes.txt


def test_exclude_matches_the_full_path(tree: Path) -> None:
    found = default_app().expand_module_globs([str(tree / "**" / "*.py")], exclude=["*/deep/*"])
    assert _real(tree / "sub/deep/c.py") not in found
    assert _real(tree / "sub/test_b.py") in found


def test_plain_paths_and_dotted_names(tree: Path) -> None:
    found = default_app().expand_module_globs(
        [
            "shop.tasks",
            str(tree / "a.py"),
            str(tree / "missing.py"),
            str(tree / "sub"),  # a path, but not a file
            "shop.tasks",
            str(tree / "sub" / ".." / "a.py"),
            "shop.billing",
            str(tree / "**" / "*.py"),
        ]
    )
    assert found[:3] == ["shop.tasks", _real(tree / "a.py"), "shop.billing"]
    assert sorted(found[3:]) == sorted([_real(tree / "sub/b.py"), _real(tree / "sub/deep/c.py")])
    assert default_app().expand_module_globs([]) == []


def test_expand_does_not_record(tree: Path) -> None:
    app = default_app()
    app.expand_module_globs([str(tree / "*.py")])
    assert app.get_discovered_task_modules() == []


# --- import_task_modules -------------------------------------------------------------


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _synthetic(path: str) -> str:
    return "horsies._dynamic." + hashlib.sha256(path.encode()).hexdigest()[:12]


@pytest.mark.usefixtures("restore_imports")
def test_import_dotted_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _unique("hz_dotted")
    (tmp_path / f"{name}.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = default_app()
    assert app.import_task_modules([name]) == [name]
    assert sys.modules[name].VALUE == 42


@pytest.mark.usefixtures("restore_imports")
def test_import_a_file_under_its_synthetic_name(tmp_path: Path) -> None:
    name = _unique("hz_file")
    folder = tmp_path / "tasks_dir"
    folder.mkdir()
    runs = tmp_path / "runs.txt"
    path = folder / f"{name}.py"
    path.write_text(f"with open({str(runs)!r}, 'a') as f:\n    f.write('x')\nVALUE = 7\n")
    real = _real(path)
    parent = os.path.dirname(real)
    assert parent not in sys.path
    app = default_app()

    assert app.import_task_modules([str(path)]) == [real]
    synthetic = _synthetic(real)
    assert sys.modules[synthetic].VALUE == 7
    assert sys.modules[name] is sys.modules[synthetic]  # base name was free
    assert sys.path[0] == parent

    # Loaded once per process, whatever spelling reaches the same file.
    link = tmp_path / "alias.py"
    link.symlink_to(path)
    spellings = [str(path), str(link), str(folder / ".." / "tasks_dir" / path.name)]
    again = app.import_task_modules(spellings)
    assert again == [real, real, real]
    assert runs.read_text() == "x"
    assert sys.path.count(parent) == 1


@pytest.mark.usefixtures("restore_imports")
def test_import_a_file_whose_base_name_is_taken(tmp_path: Path) -> None:
    name = _unique("hz_taken")
    sentinel = object()
    sys.modules[name] = sentinel  # type: ignore[assignment]
    path = tmp_path / f"{name}.py"
    path.write_text("VALUE = 1\n")
    sys.path.insert(0, str(tmp_path))  # parent already present: not moved or doubled
    default_app().import_task_modules([str(path)])
    assert sys.modules[name] is sentinel
    assert sys.modules[_synthetic(_real(path))].VALUE == 1
    assert sys.path.count(str(tmp_path)) == 1


@pytest.mark.usefixtures("restore_imports")
def test_missing_file_is_skipped_with_a_warning(
    tmp_path: Path, logs: list[logging.LogRecord]
) -> None:
    present = tmp_path / f"{_unique('hz_present')}.py"
    present.write_text("")
    missing = str(tmp_path / "missing.py")
    imported = default_app().import_task_modules([missing, str(present)])
    assert imported == [_real(present)]
    warnings = [r.getMessage() for r in logs if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "missing.py" in warnings[0]


@pytest.mark.usefixtures("restore_imports")
def test_import_uses_the_recorded_list_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = tmp_path / "order.txt"
    first, second = _unique("hz_first"), _unique("hz_second")
    for name in (first, second):
        (tmp_path / f"{name}.py").write_text(
            f"with open({str(order)!r}, 'a') as f:\n    f.write({name!r} + ' ')\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    app = default_app()
    app.discover_tasks([second, str(tmp_path / f"{first}.py")])
    assert app.import_task_modules() == [second, _real(tmp_path / f"{first}.py")]
    assert order.read_text().split() == [second, first]


@pytest.mark.usefixtures("restore_imports")
def test_import_errors_propagate(tmp_path: Path) -> None:
    app = default_app()
    with pytest.raises(ModuleNotFoundError):
        app.import_task_modules([_unique("hz_absent")])
    broken = tmp_path / f"{_unique('hz_broken')}.py"
    broken.write_text("raise ValueError('boom')\n")
    with pytest.raises(ValueError, match="boom"):
        app.import_task_modules([str(broken)])


@pytest.mark.usefixtures("restore_imports")
def test_module_imported_twice_keeps_the_first_registration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_module, task_module = _unique("hz_app"), _unique("hz_tasks")
    (tmp_path / f"{app_module}.py").write_text(
        "from horsies import AppConfig, Horsies, PostgresConfig\n"
        f"app = Horsies(AppConfig(broker=PostgresConfig(database_url={NOWHERE!r})))\n"
    )
    (tmp_path / f"{task_module}.py").write_text(
        "from horsies import TaskError, TaskResult\n"
        f"from {app_module} import app\n"
        "\n"
        "@app.task('twice')\n"
        "def twice() -> TaskResult[int, TaskError]:\n"
        "    return TaskResult(ok=1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    app = __import__(app_module).app
    dotted = __import__(task_module)
    # The same file again, under its synthetic name: same source, no error.
    app.import_task_modules([str(tmp_path / f"{task_module}.py")])
    synthetic = sys.modules[_synthetic(_real(tmp_path / f"{task_module}.py"))]
    assert synthetic is not dotted
    assert app.list_tasks() == ["twice"]
    assert app.tasks["twice"] is dotted.twice
