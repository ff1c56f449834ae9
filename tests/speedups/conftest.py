"""The `impl` fixture: every twin test runs once per implementation.

``c`` is the compiled twins (marked ``compiled``), ``py`` the pure-Python
ones. When the compiled twins cannot be imported the ``c`` cases are skipped
with the reason shown, unless ``HORSIES_TEST_EXPECT_IMPL=c`` says they must
be there, in which case they fail. ``--no-compiled`` (when this directory is
given on the command line) or ``-m "not compiled"`` deselects them.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from types import ModuleType
from typing import Any

import pytest

from benchmarks._inputs import make_codec


@dataclasses.dataclass(frozen=True)
class Impl:
    """One implementation of every hot path."""

    name: str  # "c" or "py"
    budget: ModuleType
    claim_plan: ModuleType
    codec_module: ModuleType
    dag_ready: ModuleType

    def codec(self) -> Any:
        """A fresh Codec of this implementation, wired to horsies' own class resolver."""
        from horsies.codec import _resolve_class
        from horsies.codes import BUILTIN_CODE_REGISTRY
        from horsies.task_result import SubWorkflowError, TaskError, TaskResult

        return self.codec_module.Codec(
            _resolve_class, TaskResult, TaskError, SubWorkflowError, BUILTIN_CODE_REGISTRY
        )

    def bench_codec(self) -> Any:
        return make_codec(self.codec_module)


def load_impl(name: str) -> Impl:
    """Import the twins of `name` directly (bypassing the selector)."""
    suffix = "c" if name == "c" else "py"
    modules = [
        importlib.import_module(f"horsies._speedups.{twin}_{suffix}")
        for twin in ("budget", "claim_plan", "codec", "dag_ready")
    ]
    return Impl(name, *modules)


def compiled_or_reason() -> tuple[Impl | None, str | None]:
    try:
        return load_impl("c"), None
    except ImportError as exc:
        return None, f"compiled twins not importable: {exc}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-compiled",
        action="store_true",
        default=False,
        help="deselect the tests of the compiled twins (the 'c' cases)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--no-compiled", default=False):
        return
    kept = [item for item in items if item.get_closest_marker("compiled") is None]
    deselected = [item for item in items if item.get_closest_marker("compiled") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(
    scope="session",
    params=[pytest.param("c", marks=pytest.mark.compiled), "py"],
    ids=["c", "py"],
)
def impl(request: pytest.FixtureRequest) -> Impl:
    if request.param == "py":
        return load_impl("py")
    found, reason = compiled_or_reason()
    if found is None:
        if os.environ.get("HORSIES_TEST_EXPECT_IMPL", "").strip().lower() == "c":
            pytest.fail(f"HORSIES_TEST_EXPECT_IMPL=c but {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def both() -> tuple[Impl, Impl]:
    """(compiled, pure) for differential tests; skipped when the compiled twins are missing."""
    found, reason = compiled_or_reason()
    if found is None:
        if os.environ.get("HORSIES_TEST_EXPECT_IMPL", "").strip().lower() == "c":
            pytest.fail(f"HORSIES_TEST_EXPECT_IMPL=c but {reason}")
        pytest.skip(reason)
    return found, load_impl("py")
