"""Times the dashboard read models on 1,000,000 finished tasks and prints their plans.

    python benchmarks/dashboard_plans.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Seeds a database of its own (benchmarks/_dashboard.py, the data of
bench_dashboard.py; the user needs CREATEDB) and drops it afterwards; without
--database-url an embedded server is started for the run. Prints the median of
--runs runs (min-max) of each call and of one Dashboard-tab refresh, then
`EXPLAIN (ANALYZE, BUFFERS)` of every query each call runs, unprepared and with
the same parameters as the call (recorded while the call runs).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

import psycopg

from benchmarks import _dashboard, _pg
from horsies import PostgresConfig
from horsies.db import dashboard
from horsies.db.broker import PostgresBroker
from horsies.sql import queries


async def _timed(runs: int, make: Any) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await make()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _figure(times: list[float]) -> str:
    return f"{statistics.median(times):8.1f} ms ({min(times):.1f}-{max(times):.1f})"


async def _recorded(broker: PostgresBroker, info: dict[str, Any],
                    name: str) -> list[tuple[str, dict[str, Any]]]:
    """The (query name, parameters) the call runs, in order."""
    seen: list[tuple[str, dict[str, Any]]] = []
    original = dashboard._rows

    async def recording(conn: Any, query: str, params: Mapping[str, Any]) -> Any:
        seen.append((query, dict(params)))
        return await original(conn, query, params)

    dashboard._rows = recording  # type: ignore[assignment]
    try:
        await _dashboard.call(broker, info, name)
    finally:
        dashboard._rows = original  # type: ignore[assignment]
    return seen


async def _main(url: str, runs: int, tasks: int) -> None:
    print(_pg.server_settings(url))
    start = time.perf_counter()
    info = _dashboard.seed(url, tasks)
    print(f"seeded {tasks:,} finished tasks in {time.perf_counter() - start:.0f} s")
    with psycopg.connect(url) as conn:
        for table in ("horsies_tasks", "horsies_task_attempts", "horsies_worker_states",
                      "horsies_workflows", "horsies_workflow_tasks"):
            count = conn.execute(f"SELECT count(*), pg_size_pretty(pg_total_relation_size("
                                 f"'{table}')) FROM {table}").fetchone()
            print(f"  {table}: {count[0]:,} rows, {count[1]}" if count else table)
    broker = PostgresBroker(PostgresConfig(database_url=url))
    try:
        _dashboard.refresh_snapshots(url, info)
        for name in _dashboard.CALLS:  # warm the pool and the cache
            await _dashboard.call(broker, info, name)
        print(f"\nmedian of {runs} runs (min-max), tasks = {tasks:,} finished + 4,000 in flight")
        for name in _dashboard.CALLS:
            times = await _timed(runs, lambda n=name: _dashboard.call(broker, info, n))
            print(f"  {name:32s} {_figure(times)}")
        times = await _timed(runs, lambda: _dashboard.refresh(broker, info))
        print(f"  {'dashboard refresh (concurrent)':32s} {_figure(times)}")

        async def sequential() -> None:
            for name in _dashboard.REFRESH:
                await _dashboard.call(broker, info, name)

        times = await _timed(runs, sequential)
        print(f"  {'dashboard refresh (sequential)':32s} {_figure(times)}")

        _dashboard.refresh_snapshots(url, info)
        with psycopg.connect(url, autocommit=True) as conn:
            for name in _dashboard.CALLS:
                for query, params in await _recorded(broker, info, name):
                    shown = {k: v for k, v in params.items() if v not in (None, [], False)}
                    print(f"\n=== {name}: {query} {shown}")
                    cur = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + queries[query], params,
                                       prepare=False)
                    for (line,) in cur.fetchall():
                        print(line)
    finally:
        await broker.close_async()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a server whose user may create databases; "
                        "default: a temporary embedded server")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=_dashboard.FINISHED_TASKS,
                        help="finished tasks to seed (default 1,000,000)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        server = stack.enter_context(_pg.server(args.database_url))
        url = stack.enter_context(_pg.scratch_database(server, prefix="horsies_bench_dashboard"))
        asyncio.run(_main(url, args.runs, args.tasks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
