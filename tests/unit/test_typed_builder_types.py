"""The typed node builder under a type checker (workflows.md §4.4): mypy --strict
accepts tests/typing/builder_ok.py and rejects tests/typing/builder_bad.py with
exactly the errors its `# expect:` comments name.

One mypy run covers both files (errors are told apart by file name); imports of
horsies are followed silently, so only the two examples are reported on.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TYPING = ROOT / "tests" / "typing"
OK, BAD = TYPING / "builder_ok.py", TYPING / "builder_bad.py"
_ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")
_EXPECT = re.compile(r"#\s*expect:\s*(?P<code>[a-z-]+)")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[tuple[int, str]]]:
    """`{file name: {(line, error code)}}` of one mypy run over both examples."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    env = {**os.environ, "MYPYPATH": str(ROOT)}  # check the horsies of this tree
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--no-error-summary", "--hide-error-context", "--no-pretty",
         "--show-error-codes", "--cache-dir", str(cache), str(OK), str(BAD)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 2: mypy itself failed
    found: dict[str, set[tuple[int, str]]] = {OK.name: set(), BAD.name: set()}
    for line in done.stdout.splitlines():
        match = _ERROR.match(line)
        if match is None:
            assert ": note: " in line, line
            continue
        found.setdefault(Path(match["file"]).name, set()).add(
            (int(match["line"]), match["code"]))
    return found


def test_the_typed_example_passes(mypy_errors: dict[str, set[tuple[int, str]]]) -> None:
    assert mypy_errors[OK.name] == set()


def test_the_bad_example_fails_exactly_where_marked(
    mypy_errors: dict[str, set[tuple[int, str]]],
) -> None:
    expected = {
        (number, match["code"])
        for number, text in enumerate(BAD.read_text().splitlines(), start=1)
        if (match := _EXPECT.search(text))
    }
    assert len(expected) >= 5
    assert mypy_errors[BAD.name] == expected
    assert set(mypy_errors) == {OK.name, BAD.name}  # nothing reported inside horsies


def test_the_typed_example_also_builds_its_spec() -> None:
    found = importlib.util.spec_from_file_location("_horsies_builder_ok", OK)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    spec = module.build()
    assert [node.node_id for node in spec.tasks] == ["fetch", "parse", "publish"]
    assert spec.tasks[1].args_from_indices == {"raw": 0}
    assert spec.tasks[1].dependency_indices == (0,)
    assert spec.tasks[2].args_from_indices == {"rates": 1}
