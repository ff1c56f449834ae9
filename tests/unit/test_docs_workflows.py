"""docs/workflows.md: every python block compiles and names its file, every script
shows its output, the §19.1–§19.11 patterns are all there, and the page's app passes
`horsies check` as the page says. The scripts themselves run against a real worker
in tests/e2e/test_docs_workflows.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.doc_blocks import Block, blocks, python_blocks, write_files

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"
PATTERNS = {
    "§19.1": "Linear chain", "§19.2": "Fan-out", "§19.3": "Fan-in with a context",
    "§19.4": "Diamond", "§19.5": "First answer wins", "§19.6": "Quorum",
    "§19.7": "Recovery handler", "§19.8": "Partial success",
    "§19.9": "Conditional shape at build time", "§19.10": "Pause for review",
    "§19.11": "A task that runs a workflow",
}


def test_every_python_block_compiles_and_names_its_file() -> None:
    found = python_blocks(DOC)
    assert len(found) >= 12
    for index, block in enumerate(found):
        compile(block.code, f"{DOC.name}[block {index}]", "exec")
        assert block.file, f"python block {index} names no file"
    files = [block.file for block in found]
    assert len(files) == len(set(files)), files
    assert files[:2] == ["weather/tasks.py", "weather/flows.py"]


def test_every_script_shows_its_output() -> None:
    for block in python_blocks(DOC):
        if block.file and "/" not in block.file:
            assert block.prints, f"{block.file} shows no output"


def test_the_patterns_of_the_spec_are_all_there() -> None:
    headings = re.findall(r"^## (.+)$", DOC.read_text(), re.MULTILINE)
    for section, title in PATTERNS.items():
        assert any(h.startswith(title) and f"({section})" in h for h in headings), (
            section, title)
        script = next(b for b in blocks(DOC) if b.lang == "python"
                      and b.file and "/" not in b.file and title in _section_of(b))
        assert script.prints


def _section_of(block: Block) -> str:
    text = DOC.read_text()
    position = text.index(block.code)
    headings: list[str] = re.findall(r"^## (.+)$", text[:position], re.MULTILINE)
    return headings[-1]


def test_subworkflows_conditions_and_control_run_in_the_page_scripts() -> None:
    """The features of workflows part 2 are shown by scripts, not only described."""
    scripts = "\n".join(block.code for block in python_blocks(DOC)
                        if block.file and "/" not in block.file)
    code = "\n".join(block.code for block in python_blocks(DOC))
    for name in ("SubWorkflowNode(", "SubWorkflowError", "skip_when=", "run_when=",
                 'on_error="pause"', ".pause()", ".resume()", ".cancel()"):
        assert name in scripts, name
    assert "def build_with(" in code and "WorkflowDefinition[" in code


def test_the_docs_do_not_call_part_two_unavailable() -> None:
    root = DOC.parent.parent
    pages = [*sorted((root / "docs").glob("*.md")), root / "README.md"]
    stale = re.compile(r"second part|part 2|not part of this release|not available yet|"
                       r"does not run yet|in this release", re.IGNORECASE)
    for page in pages:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            assert not stale.search(line), f"{page.name}:{number}: {line}"


def test_the_page_app_passes_horsies_check(tmp_path: Path) -> None:
    write_files(DOC, tmp_path)
    text = DOC.read_text()
    shown = re.search(r"horsies check weather\.tasks:app\n```\n\nprints:\n\n```text\n(.*?)```",
                      text, re.DOTALL)
    assert shown, "the page shows no `horsies check` output"
    env = {k: v for k, v in os.environ.items() if k != "HORSIES_DATABASE_URL"}
    env["NO_COLOR"] = "1"
    out = subprocess.run([sys.executable, "-m", "horsies.cli", "check", "weather.tasks:app"],
                         check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    expected = shown.group(1).splitlines()
    got = out.stdout.splitlines()
    assert got[:2] == expected[:2]
    assert got[2] in ("  speedups: c", "  speedups: python"), got
