"""The cost of advancing a workflow after one node completes (workflows.md §16.3):
flat as the workflow grows, because the engine touches that node's dependents,
never the whole workflow.

Each size builds a workflow of `size` nodes: `size / 2` roots, each with one
dependent. Every sample marks one root's task COMPLETED and runs the engine's
node completion in the same transaction, as a worker's cycle does; the sizes take
turns. The figure is the median time of that engine step (settle the node,
evaluate and enqueue its dependent), and of the whole transaction with its commit. The server is
``HORSIES_BENCH_DATABASE_URL`` when set, otherwise an embedded PostgreSQL.

Run alone: ``python -m benchmarks.bench_workflow`` prints the figures.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from typing import Any

import psycopg

from benchmarks import _pg
from horsies import AppConfig, Horsies, PostgresConfig, TaskError, TaskNode, TaskResult
from horsies.codec import dumps_json

SIZES = [100, 1_000, 10_000]
SAMPLES = 50  # every root of the 100-node workflow
SERVER_URL_VAR = "HORSIES_BENCH_DATABASE_URL"

app = Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://unused@localhost/x")))


@app.task("bench_wf_node")
def bench_wf_node(i: int) -> TaskResult[int, TaskError]:
    return TaskResult(ok=i)


def _pairs_spec(size: int) -> Any:
    nodes: list[TaskNode[int]] = []
    for i in range(size // 2):
        root = TaskNode(bench_wf_node, kwargs={"i": i}, node_id=f"r{i}")
        nodes += [root, TaskNode(bench_wf_node, kwargs={"i": i}, node_id=f"d{i}",
                                 waits_for=[root])]
    return app.workflow(f"advance_{size}", nodes, definition_key=f"bench.advance.{size}")


async def _complete_one(conn: psycopg.AsyncConnection[Any], task_id: str, ok: str
                        ) -> tuple[float, float]:
    """One root's task ends and the engine advances: (engine ms, transaction ms)."""
    from horsies.workflows import engine

    began = time.perf_counter()
    async with conn.transaction():
        await conn.execute("UPDATE horsies_tasks SET status = 'COMPLETED', result = %s, "
                           "completed_at = now() WHERE id = %s", (ok, task_id))
        step = time.perf_counter()
        moved = await engine.tasks_ended(conn, [task_id])
        engine_ms = (time.perf_counter() - step) * 1000
    assert moved == 1, moved
    return engine_ms, (time.perf_counter() - began) * 1000


async def _sample_all(url: str, workflows: dict[int, str], samples: int
                      ) -> dict[int, tuple[list[float], list[float]]]:
    """`samples` completions per workflow, taken in turns so that drift on the machine
    weighs on every size alike."""
    ok = dumps_json(TaskResult(ok=1)).ok_value
    timings: dict[int, tuple[list[float], list[float]]] = {n: ([], []) for n in workflows}
    async with await psycopg.AsyncConnection.connect(url) as conn:
        roots: dict[int, list[str]] = {}
        for size, workflow_id in workflows.items():
            cur = await conn.execute(
                "SELECT task_id::text FROM horsies_workflow_tasks WHERE workflow_id = %s "
                "AND task_id IS NOT NULL ORDER BY task_index LIMIT %s", (workflow_id, samples))
            roots[size] = [row[0] for row in await cur.fetchall()]
        await conn.commit()
        for turn in range(samples):
            for size in workflows:
                engine_ms, total_ms = await _complete_one(conn, roots[size][turn], ok)
                timings[size][0].append(engine_ms)
                timings[size][1].append(total_ms)
    return timings


def measure(url: str, sizes: list[int] = SIZES, samples: int = SAMPLES) -> dict[str, float]:
    """Median ms per completion for each size: "engine_<size>" and "commit_<size>"."""
    os.environ["HORSIES_DATABASE_URL"] = url
    app.config = AppConfig(broker=PostgresConfig(database_url=url))
    app._broker = None
    broker = app.get_broker()
    broker.ensure_schema()
    try:
        # A first small workflow warms the connection and the prepared statements.
        warm = _pairs_spec(2 * samples).start().unwrap().workflow_id
        asyncio.run(_sample_all(url, {0: warm}, samples))
        workflows = {size: _pairs_spec(size).start().unwrap().workflow_id for size in sizes}
        timings = asyncio.run(_sample_all(url, workflows, samples))
    finally:
        broker.close()
        app._broker = None
    figures: dict[str, float] = {}
    for size, (engine_ms, total_ms) in timings.items():
        figures[f"engine_{size}"] = statistics.median(engine_ms)
        figures[f"commit_{size}"] = statistics.median(total_ms)
    return figures


class AdvanceAfterOneCompletion:
    """Median ms of the engine step after one completion, by workflow size."""

    timeout = 300.0
    params = SIZES
    param_names = ["nodes"]

    def setup_cache(self) -> dict[str, float]:
        with _pg.server(os.environ.get(SERVER_URL_VAR) or None) as server_url, \
                _pg.scratch_database(server_url) as url:
            return measure(url)

    def track_engine_ms(self, figures: dict[str, float], nodes: int) -> float:
        return figures[f"engine_{nodes}"]

    track_engine_ms.unit = "ms"  # type: ignore[attr-defined]

    def track_transaction_ms(self, figures: dict[str, float], nodes: int) -> float:
        return figures[f"commit_{nodes}"]

    track_transaction_ms.unit = "ms"  # type: ignore[attr-defined]

    def track_ratio_to_smallest(self, figures: dict[str, float], nodes: int) -> float:
        """Engine time at this size over the time at 100 nodes: flat means about 1."""
        return figures[f"engine_{nodes}"] / figures[f"engine_{SIZES[0]}"]

    track_ratio_to_smallest.unit = "ratio"  # type: ignore[attr-defined]


def main() -> int:
    with _pg.server(os.environ.get(SERVER_URL_VAR) or None) as server_url, \
            _pg.scratch_database(server_url) as url:
        figures = measure(url)
    for size in SIZES:
        print(f"{size:>6} nodes: engine {figures[f'engine_{size}']:.3f} ms, "
              f"transaction with commit {figures[f'commit_{size}']:.3f} ms, "
              f"ratio to {SIZES[0]} nodes "
              f"{figures[f'engine_{size}'] / figures[f'engine_{SIZES[0]}']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
