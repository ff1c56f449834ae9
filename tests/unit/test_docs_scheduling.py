"""docs/scheduling.md runs as written: every python block in order, in one namespace, and
the app of its first block passes `horsies check`."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from horsies.cli import app as cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "scheduling.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_the_doc_has_its_examples() -> None:
    assert len(python_blocks()) >= 7


def test_every_python_block_runs() -> None:
    namespace: dict[str, object] = {"__name__": "scheduling_doc"}
    for index, block in enumerate(python_blocks()):
        try:
            exec(compile(block, f"{DOC.name}[block {index}]", "exec"), namespace)  # noqa: S102
        except Exception as exc:  # noqa: BLE001 - name the failing block
            pytest.fail(f"block {index} of {DOC.name} failed: {type(exc).__name__}: {exc}")


@pytest.fixture
def ops_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    logger = logging.getLogger("horsies")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "__init__.py").write_text("")
    (tmp_path / "ops" / "instance.py").write_text(python_blocks()[0])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    yield tmp_path
    for name in [n for n in sys.modules if n == "ops" or n.startswith("ops.")]:
        del sys.modules[name]
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_the_example_app_passes_horsies_check(ops_package: Path) -> None:
    assert "horsies check ops.instance:app" in DOC.read_text()
    result = CliRunner().invoke(cli, ["check", "ops.instance:app"])
    assert result.exit_code == 0, result.output
    assert "3 task(s) registered" in result.stdout
