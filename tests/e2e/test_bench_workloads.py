"""benchmarks/workloads.py run as a script, at tiny sizes: what it prints, not how fast."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_workloads_print_ratios_to_their_limits(pg_server_url: str) -> None:
    out = subprocess.run(
        [sys.executable, "benchmarks/workloads.py", "--database-url", pg_server_url,
         "--runs", "1", "--only", "W1,W3", "--scale", "0.01", "--processes", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert re.match(r"PostgreSQL \S+.*, shared_buffers=\S+, synchronous_commit=\S+$", lines[0])
    assert lines[2].startswith("command: python benchmarks/workloads.py --database-url ")
    assert any(re.match(r"L1: [\d,]+ rows/s ", line) for line in lines)
    assert any(re.match(r"W1: [\d,]+ tasks/s = \d+\.\d\d × L1 \(L1 ", line) for line in lines)
    assert any(re.match(r"W3: [\d,]+ tasks/s = \d+\.\d\d × L3 \(L3 ", line) for line in lines)
    assert any(line.startswith("    --processes=1; peak memory ") for line in lines)
    assert any(re.match(r"W5: \d+\.\d\d KB/task after W3", line) for line in lines)
