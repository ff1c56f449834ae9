"""The README quick start, exactly as written, against a real worker process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(name: str) -> str:
    """The code block that follows the line naming `name` in the README quick start."""
    text = README.read_text()
    match = re.search(rf"`{re.escape(name)}`[^\n]*\n+```python\n(.*?)```", text, re.S)
    assert match, f"README has no python block for {name}"
    return match.group(1)


def test_quickstart_as_written(tmp_path: Path, worker_env: dict[str, str], start_worker: Any) -> None:
    (tmp_path / "instance.py").write_text(readme_block("instance.py"))
    (tmp_path / "producer.py").write_text(readme_block("producer.py"))
    (tmp_path / "producer_async.py").write_text(readme_block("producer_async.py"))
    worker = start_worker(["instance:app", "--processes=8", "--loglevel=INFO"], worker_env)
    worker.wait_for("Worker started")

    out = subprocess.run([sys.executable, "producer.py"], cwd=tmp_path, env=worker_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "add_numbers(5, 3) = 8" in out.stdout
    assert "process_data failed: EMPTY_DATA" in out.stdout

    out = subprocess.run([sys.executable, "producer_async.py"], cwd=tmp_path, env=worker_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "{'result': 30}" in out.stdout

    assert worker.stop() == 0
    worker.wait_for("Worker stopped")
