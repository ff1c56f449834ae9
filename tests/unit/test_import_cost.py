"""What `import horsies` and a worker child's start-up load.

Worker children import the user's app (`from horsies import ...`) and run
tasks; they open no connection of their own. psycopg, asyncio and package
metadata cost them megabytes each, so they load only when something needs
them: a send, a result wait, the worker's main process.

Each check runs in a fresh interpreter, since this test process has long
imported everything.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import horsies

ROOT = Path(__file__).resolve().parents[2]

# The steps of a child's start-up (horsies/worker/child.py): spawn re-runs the
# `horsies` console script as __mp_main__, unpickles child_main, loads the app
# and its task modules.
_CHILD_START = """
import horsies.cli
import horsies.worker.child
from horsies.cli._common import load_app
app = load_app("tests.integration.apps:app", [{root!r}])
app.import_task_modules(app.get_discovered_task_modules())
"""


def _loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("code", [
    "import horsies",
    "from horsies import Horsies, TaskHandle, TaskResult, TaskError, Call",
    "import horsies.worker.child",
    _CHILD_START.format(root=str(ROOT)),
], ids=["import-horsies", "public-names", "child-module", "child-start-up"])
def test_psycopg_asyncio_and_metadata_stay_unloaded(code: str) -> None:
    heavy = ("psycopg", "psycopg_pool", "asyncio", "importlib.metadata", "horsies.db.broker")
    assert _loaded_after(code, heavy) == []


def test_the_worker_names_still_load_on_use() -> None:
    code = "from horsies.worker import Worker, WorkerConfig, run_worker"
    assert _loaded_after(code, ("psycopg", "horsies.worker.main")) == [
        "psycopg", "horsies.worker.main"]


def test_version_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert horsies.__version__ == project["version"]
