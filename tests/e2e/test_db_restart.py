"""The database server restarted while 5 000 tasks are in flight across two workers.

The test runs its own PostgreSQL server (the embedded one, from pgserver), so
restarting it disturbs no other test, whichever server the suite uses. The
workers are never told: they must reconnect by themselves and finish, with no
task lost and none run twice.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.test_reliability import (
    LOAD_TASKS,
    Fault,
    assert_no_task_lost_or_run_twice,
    enqueue_marks,
    fault_figures,
    progress,
    reliability_apps_at,
    report,
    settle,
    start_load_workers,
    wait_for_completed,
)

_PGSERVER = importlib.util.find_spec("pgserver")
OUTAGE_S = 5.0
pytestmark = pytest.mark.skipif(
    _PGSERVER is None,
    reason="needs pgserver (the embedded extra) for a private PostgreSQL server to restart",
)


@dataclass
class PrivateServer:
    """A PostgreSQL server of this test only, created by horsies.embedded."""

    root: Path
    url: str = ""

    @property
    def cluster(self) -> Path:
        return self.root / "cluster"

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run pg_ctl on the cluster, as its owner (under root, pgserver uses another user)."""
        assert _PGSERVER is not None and _PGSERVER.origin is not None
        pg_ctl = Path(_PGSERVER.origin).parent / "pginstall" / "bin" / "pg_ctl"
        owner = self.cluster.stat().st_uid
        as_owner = {"user": owner} if os.geteuid() == 0 and owner != 0 else {}
        # Output to a file, not a pipe: a server started by pg_ctl must not hold our pipe.
        with tempfile.TemporaryFile("w+") as output:
            done = subprocess.run(
                [str(pg_ctl), "-D", str(self.cluster), "-l", str(self.cluster / "log"), *args],
                stdout=output, stderr=subprocess.STDOUT, cwd=self.cluster, text=True,
                timeout=90, check=False, **as_owner,
            )
            output.seek(0)
            return subprocess.CompletedProcess(done.args, done.returncode, output.read())

    def restart(self, mode: str) -> str:
        done = self.pg_ctl("-w", "-t", "60", "-m", mode, "restart")
        assert done.returncode == 0, done.stdout + self.log_tail()
        return done.stdout

    def outage(self, seconds: float) -> None:
        """Crash the server, keep it down for `seconds`, start it again."""
        # `restart` reuses the server's own options (postmaster.opts); a plain
        # `start` must pass them again.
        opts = shlex.split((self.cluster / "postmaster.opts").read_text())
        extra = " ".join(shlex.quote(o) for o in opts[opts.index("-D") + 2:])
        done = self.pg_ctl("-w", "-m", "immediate", "stop")
        assert done.returncode == 0, done.stdout + self.log_tail()
        time.sleep(seconds)
        done = self.pg_ctl("-w", "-t", "60", "-o", extra, "start")
        assert done.returncode == 0, done.stdout + self.log_tail()

    def stop(self) -> None:
        # A restarted server is no longer the process pgserver started, so
        # pgserver would not stop it: stop it here first.
        if (self.cluster / "postmaster.pid").exists():
            self.pg_ctl("-w", "-m", "immediate", "stop")

    def log_tail(self, lines: int = 30) -> str:
        log = self.cluster / "log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    from horsies import embedded
    from horsies.db.schema import ensure_schema_initialized

    server = PrivateServer(Path(tempfile.mkdtemp(prefix="horsies-restart-pg-")))
    try:
        server.url = embedded.start(server.root)
        with psycopg.connect(server.url) as conn:
            ensure_schema_initialized(conn)
            conn.commit()
        yield server
    finally:
        server.stop()
        embedded.stop(server.root)
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def restart_apps(private_server: PrivateServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from reliability_apps_at(private_server.url, monkeypatch)


def test_database_restarted_while_tasks_are_in_flight(
    private_server: PrivateServer, restart_apps: Any, start_worker: Any, tmp_path: Path
) -> None:
    url = private_server.url
    ledger = tmp_path / "executions"
    enqueue_marks(restart_apps, LOAD_TASKS, ledger)
    env = {**os.environ, "HORSIES_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    workers = start_load_workers(start_worker, env, "restart")
    faults: list[Fault] = []
    # A clean restart (sessions closed, checkpoint), a crash-like one (no
    # checkpoint: the server replays its WAL on start), then a crash and an
    # outage longer than the app's stale-run threshold (3 s): results that
    # arrive meanwhile must still be written, not turned into crashes.
    for share, mode in ((0.1, "fast"), (0.4, "immediate"), (0.7, "outage")):
        wait_for_completed(url, int(LOAD_TASKS * share))
        completed, in_flight, _ = progress(url)
        started = time.monotonic()
        if mode == "outage":
            private_server.outage(OUTAGE_S)
        else:
            private_server.restart(mode)  # returns once the server accepts connections again
        took = time.monotonic() - started
        over_at = progress(url)[2]
        what = (f"crash, {OUTAGE_S:.0f} s down, start" if mode == "outage"
                else f"pg_ctl restart -m {mode}")
        faults.append(Fault(completed, in_flight, over_at, f"{what} ({took:.1f} s)"))
    settle(url, LOAD_TASKS)
    figures = fault_figures(url, LOAD_TASKS, ledger, faults[-1].over_at)
    report(f"{LOAD_TASKS} tasks, server restarted {len(faults)} times", figures, faults, workers,
           url)
    assert_no_task_lost_or_run_twice(figures, faults, workers)
