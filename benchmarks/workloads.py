"""The comparison workloads W1-W5 (shared/bench/WORKLOADS.md), each beside its limit L1-L4.

    python benchmarks/workloads.py [--database-url URL] [--runs 3] [--only W1,W4]
                                   [--processes 2] [--workers 1] [--scale 1.0]

Without a URL a temporary embedded PostgreSQL is used. The limits the chosen
workloads need are measured first, on the same server (benchmarks/limits.py),
then every workload runs in a database of its own, created empty and dropped
afterwards. `--runs` applies to both. Prints the server's settings, the
command, and per workload the median of the runs with min-max and its ratio
to its limit. The asv suite (benchmarks/bench_database.py) runs the same
functions with smaller counts.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _pg, _ratios, limits
from benchmarks._worker import MemoryPeak, Worker

APP_SOURCE = textwrap.dedent('''
    from horsies import AppConfig, Horsies, PostgresConfig, TaskError, TaskResult

    # HORSIES_DATABASE_URL replaces this URL.
    app = Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://unused@localhost/x")))

    @app.task("bench_add")
    def bench_add(a: int, b: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a + b)

    app.discover_tasks(["bench_app"])
''')

TABLES = ("horsies_tasks", "horsies_task_attempts", "horsies_heartbeats", "horsies_worker_states")
# The reference sizes of WORKLOADS.md; --scale multiplies them.
SIZES = {"W1": 5_000, "W2": 100_000, "W3": 20_000, "W4": 200}
# Which limit each workload is compared with (W5 comes with W3 and has none).
LIMIT_OF = {"W1": "L1", "W2": "L2", "W3": "L3", "W4": "L4"}

@contextmanager
def app_dir() -> Iterator[Path]:
    """A temporary directory holding the benchmark task module, bench_app.py."""
    workdir = Path(tempfile.mkdtemp(prefix="horsies-bench-app-"))
    try:
        (workdir / "bench_app.py").write_text(APP_SOURCE)
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def bench_app(url: str, workdir: Path) -> Iterator[Any]:
    """The benchmark task module, imported fresh and pointed at `url`."""
    os.environ["HORSIES_DATABASE_URL"] = url
    sys.modules.pop("bench_app", None)
    if str(workdir) not in sys.path:
        sys.path.insert(0, str(workdir))
    import bench_app  # type: ignore[import-not-found]  # written by app_dir()

    try:
        bench_app.app.get_broker().ensure_schema()
        yield bench_app
    finally:
        bench_app.app.get_broker().close()


# -- the workloads ------------------------------------------------------------


def w1_enqueue_single(url: str, workdir: Path, count: int = SIZES["W1"]) -> dict[str, float]:
    with bench_app(url, workdir) as m:
        m.bench_add.send(0, 0)  # warm the pool and the prepared statement
        started = time.perf_counter()
        for i in range(count):
            assert m.bench_add.send(i, i).is_ok()
        elapsed = time.perf_counter() - started
    return {"tasks/s": count / elapsed}


def w2_enqueue_batch(url: str, workdir: Path, count: int = SIZES["W2"]) -> dict[str, float]:
    with bench_app(url, workdir) as m:
        calls = [(i, i) for i in range(count)]
        started = time.perf_counter()
        assert m.bench_add.send_many(calls).is_ok()
        elapsed = time.perf_counter() - started
    return {"tasks/s": count / elapsed}


_ANY_LEFT = ("SELECT EXISTS (SELECT 1 FROM horsies_tasks "
             "WHERE status IN ('PENDING', 'CLAIMED', 'RUNNING'))")
_DRAIN_TIMES = ("SELECT min(started_at), max(GREATEST(completed_at, failed_at)) "
                "FROM horsies_tasks")


def w3_drain(url: str, workdir: Path, count: int = SIZES["W3"], processes: int = 2,
             workers: int = 1) -> dict[str, float]:
    """`workers` × `horsies worker --processes=N` drain `count` tasks enqueued beforehand.

    Time runs from the launch of the workers to the last task's end, both read
    from the server's clock, so that the polling for the end (one connection,
    a cheap EXISTS ten times a second) neither adds to nor rounds the figure.
    """
    with bench_app(url, workdir) as m:
        assert m.bench_add.send_many([(i, i) for i in range(count)]).is_ok()
    with psycopg.connect(url, autocommit=True) as conn:
        launched = _one(conn, "SELECT clock_timestamp()")
        fleet = [Worker(url, workdir, processes) for _ in range(workers)]
        memory = MemoryPeak(fleet)
        try:
            while _one(conn, _ANY_LEFT):
                for worker in fleet:
                    worker.check_alive()
                time.sleep(0.1)
        finally:
            peak = memory.stop()
            for worker in fleet:
                worker.stop()
        first, last = conn.execute(_DRAIN_TIMES).fetchone() or (None, None)
        size = sum(_one(conn, "SELECT pg_total_relation_size(%s)", (t,)) for t in TABLES)
    return {
        "tasks/s": count / (last - launched).total_seconds(),
        "tasks/s after start": count / (last - first).total_seconds(),
        "peak MB": peak / 2**20,
        "W5 KB/task": size / count / 1024,
    }


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def w4_latency(url: str, workdir: Path, count: int = SIZES["W4"]) -> dict[str, float]:
    """`count` sequential send-then-get round trips to an idle `horsies worker --processes=2`."""
    with bench_app(url, workdir) as m:
        worker = Worker(url, workdir, processes=2)
        try:
            if not worker.started.wait(60):
                raise worker.failure("worker did not start within 60 s")
            m.bench_add.send(0, 0).ok_value.get(timeout_ms=10_000)  # warm up
            samples = []
            for i in range(count):
                started = time.perf_counter()
                result = m.bench_add.send(i, i).ok_value.get(timeout_ms=10_000)
                samples.append((time.perf_counter() - started) * 1000)
                assert result.ok_value == 2 * i
        finally:
            worker.stop()
    samples.sort()
    return {f"p{p} ms": limits.nearest_rank(samples, p) for p in (50, 95, 99)}


# -- one sitting: the limits, then the workloads, then the ratios ---------------


def _scaled(name: str, scale: float) -> int:
    return max(10, int(SIZES[name] * scale))


def run_workload(name: str, url: str, workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    """One run of workload `name` in a fresh database, at the size `args.scale` gives."""
    count = _scaled(name, args.scale)
    with _pg.scratch_database(url) as db:
        if name == "W1":
            return w1_enqueue_single(db, workdir, count)
        if name == "W2":
            return w2_enqueue_batch(db, workdir, count)
        if name == "W3":
            return w3_drain(db, workdir, count, args.processes, args.workers)
        return w4_latency(db, workdir, count)


def report_lines(name: str, runs: list[dict[str, float]], limit_figures: dict[str, list[float]],
                 args: argparse.Namespace) -> list[str]:
    column: Callable[[str], list[float]] = lambda key: [r[key] for r in runs]
    if name == "W4":
        return [_ratios.latency_line(column("p50 ms"), column("p99 ms"), limit_figures)]
    lines = [_ratios.throughput_line(name, column("tasks/s"), limit_figures)]
    if name == "W3":
        lines.append(_ratios.drain_details(args.processes, args.workers, column("peak MB"),
                                           column("tasks/s after start")))
        lines.append(_ratios.footprint_line(column("W5 KB/task")))
    return lines


def the_command(argv: list[str]) -> str:
    """The command line that reproduces the figures, with any password masked."""
    from horsies.config import mask_url

    return shlex.join(["python", "benchmarks/workloads.py", *(mask_url(a) for a in argv)])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None,
                        help="a server whose user may create databases (default: embedded)")
    parser.add_argument("--runs", type=int, default=3, help="runs of every limit and workload")
    parser.add_argument("--only", default=",".join(SIZES),
                        help="workloads to run, e.g. W1,W3 (W3 also gives W5)")
    parser.add_argument("--processes", type=int, default=2, help="processes of each W3 worker")
    parser.add_argument("--workers", type=int, default=1,
                        help="W3 with this many workers of --processes each on one database")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every count (workloads and limits alike), e.g. 0.1 "
                             "for a quick check; figures are then not the reference ones")
    args = parser.parse_args(argv)
    args.only = ["W3" if n.strip() == "W5" else n.strip() for n in args.only.split(",")]
    if unknown := [n for n in args.only if n not in SIZES]:
        parser.error(f"unknown workloads {unknown}; choose among W1, W2, W3, W4, W5")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    from horsies._speedups import IMPL
    from horsies.banner import get_version

    with _pg.server(args.database_url) as url, app_dir() as workdir:
        print(_pg.server_settings(url))
        print(f"horsies {get_version()}, speedups: {IMPL}")
        print(f"command: {the_command(argv)}")
        if args.scale != 1:
            print(f"counts scaled by {args.scale:g}: not the reference sizes of WORKLOADS.md")
        needed = [LIMIT_OF[n] for n in args.only]
        limit_figures = limits.measure(url, dict.fromkeys(needed), args.runs, args.scale)
        print("\n".join(_ratios.limit_lines(limit_figures)), flush=True)
        for name in dict.fromkeys(args.only):
            runs = [run_workload(name, url, workdir, args) for _ in range(args.runs)]
            print("\n".join(report_lines(name, runs, limit_figures, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
