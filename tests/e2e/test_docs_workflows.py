"""docs/workflows.md runs as written against a real `horsies worker`.

The page's `weather/` modules are written to a temporary package, a worker is
started from the CLI on `weather.tasks:app`, and each script of the page runs in
its own interpreter, in page order; its output must be exactly the `text` block
the page shows under it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.doc_blocks import write_files

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


def test_every_script_prints_what_the_page_shows(
    tmp_path: Path, worker_env: dict[str, str], start_worker: Any
) -> None:
    scripts = write_files(DOC, tmp_path)
    assert len(scripts) >= 10
    worker = start_worker(["weather.tasks:app", "--processes=2"], worker_env, cwd=tmp_path)
    worker.wait_for("Worker started")

    mismatches = []
    for script in scripts:
        out = subprocess.run([sys.executable, script.file], cwd=tmp_path, env=worker_env,
                             capture_output=True, text=True, timeout=240)
        if out.returncode != 0 or out.stdout != script.prints:
            mismatches.append(f"--- {script.file} (exit {out.returncode})\nexpected:\n"
                              f"{script.prints}\ngot:\n{out.stdout}\n{out.stderr[-4000:]}")
    assert not mismatches, "\n".join(mismatches) + "\nworker:\n" + "".join(worker.lines[-40:])

    assert worker.stop() == 0
