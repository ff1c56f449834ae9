"""The comparison workloads W1-W5 against a real PostgreSQL, as asv benchmarks.

They run the functions of benchmarks/workloads.py with smaller counts so a
quick run stays short; rates measured at different counts are not comparable
with the script's. The server is ``HORSIES_BENCH_DATABASE_URL`` when set (its
user needs CREATEDB), otherwise an embedded PostgreSQL (extra ``embedded``)
that each benchmark process starts in a temporary directory and stops when it
is done. Every workload runs in a database of its own, created empty and
dropped afterwards.

W1 and W2 are measured in the benchmark itself, once per asv process. W3 and
W4 each run once in ``setup_cache`` (a worker subprocess is started there)
and their ``track_`` benchmarks report the figures of that run.

The ``*_ratio`` figures divide a workload by its limit (benchmarks/limits.py)
measured on the same server just before, at the same count: they change less
from machine to machine than the absolute figures. W3's and W4's limits are
measured in their ``setup_cache``; W1's and W2's ratios measure the limit and
the workload back to back at smaller counts (1,000 sends, 20,000 tasks) to
keep the suite short.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks import _pg, limits, workloads

SERVER_URL_VAR = "HORSIES_BENCH_DATABASE_URL"

W1_SENDS = 2_000
W2_TASKS = 100_000
W3_TASKS = 5_000
W1_RATIO_SENDS = 1_000
W2_RATIO_TASKS = 20_000


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


@contextmanager
def workload_database() -> Iterator[tuple[str, str, Path]]:
    """The benchmark server, an empty database on it, and the task module's directory."""
    # asv ends a benchmark that overran its timeout with SIGTERM: exiting
    # through the finally blocks stops the worker subprocess (its own session,
    # out of asv's reach) and the embedded server instead of leaving them running.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack:
        server_url = stack.enter_context(_pg.server(os.environ.get(SERVER_URL_VAR) or None))
        url = stack.enter_context(_pg.scratch_database(server_url))
        yield server_url, url, stack.enter_context(workloads.app_dir())


def _limit(server_url: str, name: str, count: int) -> float:
    """Limit `name` measured once at `count` (rows, or round trips for L4)."""
    figures = limits.measure(server_url, [name], scale=count / limits.SIZES[name])
    return figures[name][0]


class _Workload:
    """A fresh database per benchmark, kept from setup to teardown."""

    timeout = 180.0

    def setup(self) -> None:
        with ExitStack() as stack:
            self.server_url, self.url, self.workdir = stack.enter_context(workload_database())
            self._resources = stack.pop_all()  # released in teardown

    def teardown(self) -> None:
        self._resources.close()


class EnqueueSingle(_Workload):
    """W1: one producer, one `send` (one transaction) per task, 2,000 sends."""

    unit = "tasks/s"

    def track_w1_send(self) -> float:
        return workloads.w1_enqueue_single(self.url, self.workdir, count=W1_SENDS)["tasks/s"]

    def track_w1_ratio_to_l1(self) -> float:
        """W1 over L1 (single-row INSERT per transaction), 1,000 each, back to back."""
        l1 = _limit(self.server_url, "L1", W1_RATIO_SENDS)
        w1 = workloads.w1_enqueue_single(self.url, self.workdir, count=W1_RATIO_SENDS)
        return w1["tasks/s"] / l1

    track_w1_ratio_to_l1.unit = "ratio"  # type: ignore[attr-defined]


class EnqueueBatch(_Workload):
    """W2: 100,000 tasks in one `send_many`."""

    unit = "tasks/s"

    def track_w2_send_many(self) -> float:
        return workloads.w2_enqueue_batch(self.url, self.workdir, count=W2_TASKS)["tasks/s"]

    def track_w2_ratio_to_l2(self) -> float:
        """W2 over L2 (one COPY), 20,000 rows each, back to back."""
        l2 = _limit(self.server_url, "L2", W2_RATIO_TASKS)
        w2 = workloads.w2_enqueue_batch(self.url, self.workdir, count=W2_RATIO_TASKS)
        return w2["tasks/s"] / l2

    track_w2_ratio_to_l2.unit = "ratio"  # type: ignore[attr-defined]


class Drain:
    """W3: 5,000 tasks (not 20,000) drained by `horsies worker --processes=2`; W5 after it.

    Time runs from the worker's launch (its startup included) to the last
    terminal task; "after start" runs from the first task's start to the last
    one's completion. Fixed costs weigh more at this count than at 20,000.
    """

    timeout = 300.0

    def setup_cache(self) -> dict[str, float]:
        with workload_database() as (server_url, url, workdir):
            l3 = _limit(server_url, "L3", W3_TASKS)
            return {**workloads.w3_drain(url, workdir, count=W3_TASKS), "L3": l3}

    def track_w3_drain(self, figures: dict[str, float]) -> float:
        return figures["tasks/s"]

    track_w3_drain.unit = "tasks/s"  # type: ignore[attr-defined]

    def track_w3_ratio_to_l3(self, figures: dict[str, float]) -> float:
        """W3 over L3 (claim 100, finalize them) at 5,000 rows, measured just before."""
        return figures["tasks/s"] / figures["L3"]

    track_w3_ratio_to_l3.unit = "ratio"  # type: ignore[attr-defined]

    def track_w3_drain_after_start(self, figures: dict[str, float]) -> float:
        return figures["tasks/s after start"]

    track_w3_drain_after_start.unit = "tasks/s"  # type: ignore[attr-defined]

    def track_w3_worker_peak_memory(self, figures: dict[str, float]) -> float:
        """The worker's resident memory, summed over its processes, at its peak."""
        return figures["peak MB"]

    track_w3_worker_peak_memory.unit = "MB"  # type: ignore[attr-defined]

    def track_w5_footprint(self, figures: dict[str, float]) -> float:
        """Size of the horsies tables per finished task."""
        return figures["W5 KB/task"]

    track_w5_footprint.unit = "KB/task"  # type: ignore[attr-defined]


class Latency:
    """W4: 200 sequential `send` then `handle.get()` round trips to an idle worker."""

    timeout = 180.0
    unit = "ms"

    def setup_cache(self) -> dict[str, float]:
        with workload_database() as (server_url, url, workdir):
            floor = limits.measure(server_url, ["L4"])
            return {**workloads.w4_latency(url, workdir),
                    "L4 p50": floor["L4 p50"][0], "L4 p99": floor["L4 p99"][0]}

    def track_w4_p50(self, figures: dict[str, float]) -> float:
        return figures["p50 ms"]

    def track_w4_p95(self, figures: dict[str, float]) -> float:
        return figures["p95 ms"]

    def track_w4_p99(self, figures: dict[str, float]) -> float:
        return figures["p99 ms"]

    def track_w4_p50_ratio_to_l4(self, figures: dict[str, float]) -> float:
        """W4's p50 as a multiple of a bare NOTIFY round trip's p50 (L4)."""
        return figures["p50 ms"] / figures["L4 p50"]

    track_w4_p50_ratio_to_l4.unit = "ratio"  # type: ignore[attr-defined]

    def track_w4_p99_ratio_to_l4(self, figures: dict[str, float]) -> float:
        return figures["p99 ms"] / figures["L4 p99"]

    track_w4_p99_ratio_to_l4.unit = "ratio"  # type: ignore[attr-defined]
