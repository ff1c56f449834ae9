"""The comparison workloads W1-W5 (shared/bench/WORKLOADS.md) against one server.

    python benchmarks/workloads.py [--database-url URL] [--runs 3] [--only W1,W4]

Without a URL a temporary embedded PostgreSQL is used. Every workload runs
in a database of its own, created empty and dropped afterwards. Prints the
median of the runs with min-max, and the server's settings. The asv suite
(benchmarks/bench_database.py) runs the same functions with smaller counts.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

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


def with_database(url: str, name: str) -> str:
    """The same server URL with another database name."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def server(url: str | None) -> Iterator[str]:
    """`url` as it is, or a temporary embedded server stopped and removed on exit."""
    if url is not None:
        yield url
        return
    from horsies import embedded

    datadir = tempfile.mkdtemp(prefix="horsies-bench-")
    try:
        yield embedded.start(datadir)
    finally:
        embedded.stop(datadir)
        shutil.rmtree(datadir, ignore_errors=True)


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
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"horsies_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def bench_app(url: str, workdir: Path) -> Iterator[Any]:
    """The benchmark task module, imported fresh and pointed at `url`."""
    os.environ["HORSIES_DATABASE_URL"] = url
    sys.modules.pop("bench_app", None)
    if str(workdir) not in sys.path:
        sys.path.insert(0, str(workdir))
    import bench_app

    try:
        bench_app.app.get_broker().ensure_schema()
        yield bench_app
    finally:
        bench_app.app.get_broker().close()


class Worker:
    """`horsies worker bench_app:app --processes=N` in a subprocess, with its memory sampled."""

    def __init__(self, url: str, workdir: Path, processes: int) -> None:
        env = dict(os.environ, HORSIES_DATABASE_URL=url, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "horsies.cli", "worker", "bench_app:app",
             f"--processes={processes}", "--loglevel=INFO"],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        self.started = threading.Event()
        self.log_tail: collections.deque[str] = collections.deque(maxlen=40)  # for errors
        self.peak_rss = 0
        self._stop = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._sample, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log_tail.append(line)
            if "Worker started" in line:
                self.started.set()

    def _tree_rss(self) -> int:
        pids = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            pids += [int(p) for p in children.split()]
        except OSError:
            return 0
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.is_set() and self.proc.poll() is None:
            self.peak_rss = max(self.peak_rss, self._tree_rss())
            time.sleep(0.05)

    def failure(self, what: str) -> RuntimeError:
        return RuntimeError(f"{what}; its last log lines:\n{''.join(self.log_tail)}")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise self.failure(f"worker exited with status {self.proc.returncode}")

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def unfinished(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM horsies_tasks "
            "WHERE status NOT IN ('COMPLETED','FAILED','CANCELLED','EXPIRED')").fetchone()[0]


# -- the workloads ------------------------------------------------------------


def w1_enqueue_single(url: str, workdir: Path, count: int = 5000) -> dict[str, float]:
    with bench_app(url, workdir) as m:
        m.bench_add.send(0, 0)  # warm the pool and the prepared statement
        started = time.perf_counter()
        for i in range(count):
            assert m.bench_add.send(i, i).is_ok()
        elapsed = time.perf_counter() - started
    return {"tasks/s": count / elapsed}


def w2_enqueue_batch(url: str, workdir: Path, count: int = 100_000) -> dict[str, float]:
    with bench_app(url, workdir) as m:
        calls = [(i, i) for i in range(count)]
        started = time.perf_counter()
        assert m.bench_add.send_many(calls).is_ok()
        elapsed = time.perf_counter() - started
    return {"tasks/s": count / elapsed}


def w3_drain(url: str, workdir: Path, count: int = 20_000) -> dict[str, float]:
    with bench_app(url, workdir) as m:
        assert m.bench_add.send_many([(i, i) for i in range(count)]).is_ok()
    started = time.perf_counter()
    worker = Worker(url, workdir, processes=2)
    try:
        while unfinished(url):
            worker.check_alive()
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        worker.stop()
    with psycopg.connect(url) as conn:
        first, last = conn.execute(
            "SELECT min(started_at), max(completed_at) FROM horsies_tasks").fetchone()
        size = sum(conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0]
                   for t in TABLES)
    return {
        "tasks/s": count / elapsed,
        "tasks/s after start": count / (last - first).total_seconds(),
        "peak MB": worker.peak_rss / 2**20,
        "W5 KB/task": size / count / 1024,
    }


def w4_latency(url: str, workdir: Path) -> dict[str, float]:
    with bench_app(url, workdir) as m:
        worker = Worker(url, workdir, processes=2)
        try:
            if not worker.started.wait(60):
                raise worker.failure("worker did not start within 60 s")
            m.bench_add.send(0, 0).ok_value.get(timeout_ms=10_000)  # warm up
            samples = []
            for i in range(200):
                started = time.perf_counter()
                result = m.bench_add.send(i, i).ok_value.get(timeout_ms=10_000)
                samples.append((time.perf_counter() - started) * 1000)
                assert result.ok_value == 2 * i
        finally:
            worker.stop()
    samples.sort()
    rank: Callable[[float], float] = lambda p: samples[max(0, -(-len(samples) * p // 100) - 1)]
    return {"p50 ms": rank(50), "p95 ms": rank(95), "p99 ms": rank(99)}


WORKLOADS = {"W1": w1_enqueue_single, "W2": w2_enqueue_batch, "W3": w3_drain,
             "W4": w4_latency}


def server_settings(url: str) -> str:
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
        sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
    return f"PostgreSQL {version}, shared_buffers={buffers}, synchronous_commit={sync}"


def summarize(runs: list[dict[str, float]]) -> str:
    parts = []
    for key in runs[0]:
        values = [r[key] for r in runs]
        parts.append(f"{key} {statistics.median(values):,.2f} "
                     f"({min(values):,.2f}-{max(values):,.2f})")
    return "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(WORKLOADS))
    args = parser.parse_args()
    with server(args.database_url) as url, app_dir() as workdir:
        print(server_settings(url))
        from horsies._speedups import IMPL

        print(f"horsies speedups: {IMPL}")
        for name in args.only.split(","):
            runs = []
            for _ in range(args.runs):
                with fresh_database(url) as db:
                    runs.append(WORKLOADS[name](db, workdir))
            print(f"{name}: {summarize(runs)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
