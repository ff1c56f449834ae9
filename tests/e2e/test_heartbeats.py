"""Runner heartbeats keep a long task alive past the stale-run threshold.

The reliability app declares a run stale after 3 s without a runner heartbeat
(heartbeat every 1 s). A task that naps twice that long must complete, not be
sent down the crash path, and leave a heartbeat row per interval; the same
child then runs the next task as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.reliability_apps:app"


def test_long_task_outlives_the_stale_threshold_on_its_heartbeats(
    pg_url: str, worker_env: dict[str, str], start_worker: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("HORSIES_DATABASE_URL", pg_url)
    import tests.integration.reliability_apps as module

    module.app.config = module.make_config(pg_url)
    module.app._broker = None
    try:
        worker = start_worker([APP, "--processes=1"], worker_env, cwd=REPO)
        worker.wait_for("Worker started")
        long = module.nap.send(6.0).ok_value
        assert long.get(timeout_ms=30_000).is_ok()
        short = module.plus.send(1, 2).ok_value
        assert short.get(timeout_ms=30_000).ok_value == 3
        with psycopg.connect(pg_url, autocommit=True) as conn:
            worker_id, pid, started, completed = conn.execute(
                "SELECT claimed_by_worker_id, worker_pid, started_at, completed_at "
                "FROM horsies_tasks WHERE id = %s", (long.task_id,)).fetchone()
            # Runner heartbeats are per child (runs.md §3): the child's, while it ran.
            beats = conn.execute(
                "SELECT count(*) FROM horsies_heartbeats WHERE role = 'runner' "
                "AND sender_id = %s AND sent_at BETWEEN %s AND %s",
                (f"{worker_id}:{pid}", started, completed)).fetchone()[0]
        # 6 s at one beat a second, allowing for the batching of the writes.
        assert beats >= 3, beats
        attempts = long.info(include_attempts=True).ok_value.attempts or []
        assert [a.outcome.value for a in attempts] == ["COMPLETED"]
        assert long.info().ok_value.status.value == "COMPLETED"
    finally:
        if module.app._broker is not None:
            module.app.get_broker().close()
            module.app._broker = None
