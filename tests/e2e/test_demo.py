"""`horsies demo`, the README's main command, run as a subprocess against a real database."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

LABELS = ["database", "worker", "enqueue", "processing", "latency", "shutdown"]
JSON_KEYS = {
    "database", "processes", "max_claim_batch", "tasks", "enqueue_seconds", "enqueue_rate",
    "completed", "failed", "unfinished", "processing_seconds", "processing_rate", "latency_ms",
    "latency_round_trips", "clean_shutdown",
}
NOWHERE = "postgresql://u:s3cret@127.0.0.1:1/x"


def demo(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "horsies.cli", "demo", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def demo_on(url: str, tasks: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return demo("--database-url", url, "--tasks", str(tasks), "--processes", "2",
                "--batch-size", "100", *extra)


def test_json_report(pg_url: str) -> None:
    out = demo_on(pg_url, 300, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report) == JSON_KEYS
    assert report["tasks"] == 300 and report["completed"] == 300
    assert report["failed"] == 0 and report["unfinished"] == 0
    assert report["processes"] == report["max_claim_batch"] == 2
    assert report["clean_shutdown"] is True
    assert report["latency_round_trips"] == 100  # capped at 100 for larger runs
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    with psycopg.connect(pg_url) as conn:  # the demo cleans up after itself, round trips too
        assert conn.execute("SELECT count(*) FROM horsies_tasks").fetchone()[0] == 0


def test_text_report_without_a_terminal_has_no_progress(pg_url: str) -> None:
    out = demo_on(pg_url, 40)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # Exactly the header and the report rows: nothing else reaches a pipe.
    assert lines[0].startswith("horsies demo v")
    assert [line[:12].rstrip() for line in lines[1:]] == LABELS
    assert all(line[12] != " " for line in lines[1:])  # labels padded to 12 characters
    rows = {line[:12].rstrip(): line[12:] for line in lines[1:]}
    assert rows["enqueue"].startswith("40 tasks in ")
    assert rows["processing"].startswith("40 completed, 0 failed, 0 unfinished in ")
    assert rows["latency"].endswith("(40 round trips on the idle worker)")
    assert rows["shutdown"] == "clean"
    for text in (out.stdout, out.stderr):
        assert "\x1b" not in text and "\r" not in text and "━" not in text


def test_round_trips_run_one_at_a_time_after_the_drain(pg_url: str) -> None:
    out = demo_on(pg_url, 25, "--json", "--keep-data")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["latency_round_trips"] == 25
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT enqueued_at, completed_at FROM horsies_tasks "
                            "WHERE task_name = 'demo_add' ORDER BY id").fetchall()
    # The 25 of the throughput run, then a warm-up and the 25 timed round trips.
    assert len(rows) == 25 + 1 + 25
    batch, trips = rows[:25], rows[25:]
    drained = max(done for _, done in batch)
    assert all(enqueued >= drained for enqueued, _ in trips)  # the worker was idle
    for (_, done), (next_enqueued, _) in itertools.pairwise(trips):
        assert next_enqueued >= done  # each waited for the previous result


@pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")
def test_progress_on_a_terminal(pg_url: str) -> None:
    output, code = _run_on_a_terminal(
        ["--database-url", pg_url, "--tasks", "200", "--processes", "2", "--batch-size", "50"])
    assert code == 0, output
    bars = [line for line in output.splitlines() if "200/200" in line or "100/100" in line]
    assert any(line.startswith("enqueue") and "200/200" in line for line in bars), output
    assert any(line.startswith("drain") and "200/200" in line for line in bars), output
    assert any(line.startswith("round trips") and "100/100" in line for line in bars), output
    assert "latency     p50 " in output


def _run_on_a_terminal(args: list[str]) -> tuple[str, int]:
    """The demo with stdout and stderr on a pseudo-terminal; its output, without escapes."""
    import pty

    main, child_end = pty.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="120", LINES="40")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "horsies.cli", "demo", *args],
                            stdin=subprocess.DEVNULL, stdout=child_end, stderr=child_end, env=env)
    os.close(child_end)
    chunks: list[bytes] = []
    while True:  # read as it comes: a full terminal buffer would block the demo
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    code = proc.wait(timeout=240)
    return _plain(b"".join(chunks).decode(errors="replace")), code


def _plain(text: str) -> str:
    """Terminal output as lines: escape sequences removed, carriage returns as line ends."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def test_unsupported_url_is_a_usage_error() -> None:
    out = demo("--database-url", "oracle://u:s3cret@h/d", "--tasks", "1", timeout=60)
    assert out.returncode == 2
    assert "--database-url is not a supported PostgreSQL URL" in out.stderr
    assert "Traceback" not in out.stderr and "s3cret" not in out.stdout + out.stderr


def test_unreachable_server_is_a_clean_error() -> None:
    out = demo("--database-url", NOWHERE, "--tasks", "1", timeout=60)
    assert out.returncode == 1
    assert out.stderr.startswith("error: could not use the database postgresql://u:***@")
    assert out.stdout == ""
    assert "Traceback" not in out.stderr and "s3cret" not in out.stdout + out.stderr


def test_demo_refuses_a_database_with_active_workers(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO horsies_worker_states (worker_id, hostname, pid, processes, "
            "max_claim_batch, max_claim_per_worker, queues, worker_started_at) "
            "VALUES ('w', 'h', 1, 1, 1, 1, ARRAY['default'], now())")
    out = demo("--database-url", pg_url, "--tasks", "1", timeout=120)
    assert out.returncode == 1
    assert "other horsies workers are active on this database" in out.stderr


@pytest.mark.skipif(importlib.util.find_spec("pgserver") is None,
                    reason="needs the 'embedded' extra")
def test_embedded_database_by_default() -> None:
    # The demo's temporary server lives under TMPDIR, and must be gone afterwards.
    # A short path: the server's socket path must fit in 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="hd-", dir="/tmp" if os.name == "posix" else None))
    env = {k: v for k, v in os.environ.items() if k != "HORSIES_DATABASE_URL"}
    env["TMPDIR"] = str(tmp)
    try:
        out = subprocess.run([sys.executable, "-m", "horsies.cli", "demo", "--tasks", "30",
                              "--processes", "1", "--json"],
                             capture_output=True, text=True, timeout=240, env=env,
                             check=False)
        left = list(tmp.iterdir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["database"] == "embedded PostgreSQL (temporary)"
    assert report["completed"] == 30 and report["latency_round_trips"] == 30
    assert not [p for p in left if p.name.startswith("horsies-demo-")]
