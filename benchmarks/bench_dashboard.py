"""The dashboard read models (monitoring.md §2.9) on 1,000,000 finished tasks, as asv benchmarks.

The data is benchmarks/_dashboard.py's (also timed, with plans, by
benchmarks/dashboard_plans.py): 1,000,000 finished tasks over the last 7 days,
4,000 in flight, a day of snapshots of 10 workers, and 20,000 workflows. Seeding takes about a
minute, so it runs once, in ``setup_cache``, and every benchmark process reads
the same database. The goal: every call, and one Dashboard-tab refresh, under
100 ms.

The server is ``HORSIES_BENCH_DATABASE_URL`` when set (its user needs
CREATEDB): ``setup_cache`` then drops and recreates the database
``horsies_bench_dashboard`` on it, which stays until the next run (asv has no
hook after the last benchmark). Otherwise an embedded PostgreSQL (extra
``embedded``) whose data directory is made in ``setup_cache``'s directory,
which asv removes after the run; each benchmark process starts it and stops it.

Before each benchmark, ``setup`` writes one current snapshot per live worker,
as running workers do every 5 s, so the active-worker queries see 8 active
workers however long ago the seeding ran.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import _dashboard, _pg

SERVER_URL_VAR = "HORSIES_BENCH_DATABASE_URL"
DATABASE = "horsies_bench_dashboard"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def _seed_on(server_url: str) -> tuple[str, dict[str, Any]]:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    url = _pg.with_database(server_url, DATABASE)
    return url, _dashboard.seed(url)


class Dashboard:
    """One call of each dashboard read model, with the arguments of a monitor refresh."""

    timeout = 120.0

    def setup_cache(self) -> dict[str, Any]:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        given = os.environ.get(SERVER_URL_VAR) or None
        if given is not None:
            url, info = _seed_on(given)
            return {"datadir": None, "url": url, "info": info}
        datadir = str(Path("pgdata").resolve())  # in asv's cache directory
        with _pg.embedded_kept(datadir) as server_url:
            url, info = _seed_on(server_url)
        return {"datadir": datadir, "url": None, "info": info}

    setup_cache.timeout = 1800  # type: ignore[attr-defined]

    def setup(self, cache: dict[str, Any]) -> None:
        from horsies import PostgresConfig
        from horsies.db.broker import PostgresBroker

        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        self.datadir = cache["datadir"]
        if self.datadir is not None:
            from horsies import embedded

            url = _pg.with_database(embedded.start(self.datadir), DATABASE)
        else:
            url = cache["url"]
        self.info = cache["info"]
        _dashboard.refresh_snapshots(url, self.info)
        self.loop = asyncio.new_event_loop()
        self.broker = PostgresBroker(PostgresConfig(database_url=url))
        self.run("get_task_detail")  # opens the pool

    def teardown(self, cache: dict[str, Any]) -> None:
        self.loop.run_until_complete(self.broker.close_async())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        if self.datadir is not None:
            from horsies import embedded

            embedded.stop(self.datadir)

    def run(self, name: str) -> None:
        self.loop.run_until_complete(_dashboard.call(self.broker, self.info, name))

    def time_get_task_status_counts(self, cache: dict[str, Any]) -> None:
        """Terminal counts of the last 24 h, as the Dashboard tab asks."""
        self.run("get_task_status_counts")

    def time_get_queue_stats(self, cache: dict[str, Any]) -> None:
        self.run("get_queue_stats")

    def time_get_worker_states(self, cache: dict[str, Any]) -> None:
        self.run("get_worker_states")

    def time_get_worker_history(self, cache: dict[str, Any]) -> None:
        """One worker over 30 minutes, the Workers tab's default window."""
        self.run("get_worker_history")

    def time_get_cluster_summary(self, cache: dict[str, Any]) -> None:
        self.run("get_cluster_summary")

    def time_get_utilization_trend(self, cache: dict[str, Any]) -> None:
        self.run("get_utilization_trend")

    def time_get_worker_alerts(self, cache: dict[str, Any]) -> None:
        self.run("get_worker_alerts")

    def time_get_dead_workers(self, cache: dict[str, Any]) -> None:
        self.run("get_dead_workers")

    def time_get_snapshot_age_distribution(self, cache: dict[str, Any]) -> None:
        self.run("get_snapshot_age_distribution")

    def time_get_task_breakdown(self, cache: dict[str, Any]) -> None:
        """The Tasks tab's default selection: CLAIMED and RUNNING."""
        self.run("get_task_breakdown")

    def time_get_task_facets(self, cache: dict[str, Any]) -> None:
        self.run("get_task_facets")

    def time_list_tasks_by_status(self, cache: dict[str, Any]) -> None:
        """FAILED tasks, newest first (500)."""
        self.run("list_tasks_status")

    def time_list_tasks_by_queue(self, cache: dict[str, Any]) -> None:
        """One queue's tasks, newest first (500)."""
        self.run("list_tasks_queue")

    def time_list_tasks_all(self, cache: dict[str, Any]) -> None:
        self.run("list_tasks_all")

    def time_get_task_detail(self, cache: dict[str, Any]) -> None:
        """A FAILED task with three retries: the row and its four attempts."""
        self.run("get_task_detail")

    def time_get_workflow_summary(self, cache: dict[str, Any]) -> None:
        self.run("get_workflow_summary")

    def time_list_workflows(self, cache: dict[str, Any]) -> None:
        """The Workflows tab's default selection: PENDING, RUNNING and PAUSED (100)."""
        self.run("list_workflows")

    def time_list_workflows_all(self, cache: dict[str, Any]) -> None:
        self.run("list_workflows_all")

    def time_get_workflow_detail(self, cache: dict[str, Any]) -> None:
        """A RUNNING workflow of 5 nodes."""
        self.run("get_workflow_detail")

    def time_dashboard_refresh(self, cache: dict[str, Any]) -> None:
        """The Dashboard tab's six data sources (monitoring.md §3.3), loaded concurrently."""
        self.loop.run_until_complete(_dashboard.refresh(self.broker, self.info))
