"""`horsies demo`, the README's main command, against the test database."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg


def test_demo_runs_and_reports(pg_url: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "horsies.cli", "demo", "--database-url", pg_url,
         "--tasks", "300", "--processes", "2", "--batch-size", "100", "--json"],
        capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["tasks"] == 300 and report["completed"] == 300
    assert report["failed"] == 0 and report["unfinished"] == 0
    assert report["clean_shutdown"] is True
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["max"]
    with psycopg.connect(pg_url) as conn:  # the demo cleans up after itself
        assert conn.execute("SELECT count(*) FROM horsies_tasks").fetchone()[0] == 0


def test_demo_refuses_a_database_with_active_workers(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO horsies_worker_states (worker_id, hostname, pid, processes, "
            "max_claim_batch, max_claim_per_worker, queues, worker_started_at) "
            "VALUES ('w', 'h', 1, 1, 1, 1, ARRAY['default'], now())")
    out = subprocess.run(
        [sys.executable, "-m", "horsies.cli", "demo", "--database-url", pg_url, "--tasks", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 1
    assert "other horsies workers are active on this database" in out.stderr
