"""The limits L1-L4 (shared/bench/WORKLOADS.md): what PostgreSQL alone does on this machine.

A task-like table (uuid key, queue, priority, status, JSON arguments,
timestamps, one partial index for claiming) driven from one psycopg
connection, with no queue library in between, in a scratch database created
for the purpose and dropped afterwards:

    L1  single-row INSERT per transaction, prepared                   ceiling for W1
    L2  COPY of 100,000 rows in one transaction                       ceiling for W2
    L3  claim 100 rows (UPDATE .. FOR UPDATE SKIP LOCKED RETURNING),
        finalize them (UPDATE .. FROM unnest), until 20,000 are done   ceiling for W3
    L4  NOTIFY round trip: LISTEN on a second connection, pg_notify
        from the first, until the listener has it                      floor of W4

    python benchmarks/limits.py [--database-url URL] [--runs 3] [--only L1,L4]

benchmarks/workloads.py measures them in the same sitting as the workloads
and prints each workload as a ratio to its limit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg

if __package__ in (None, ""):  # run as a script: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _pg

Conn = psycopg.Connection[Any]

# The reference sizes of WORKLOADS.md.
SIZES = {"L1": 5_000, "L2": 100_000, "L3": 20_000, "L4": 200}
CLAIM_BATCH = 100

TABLE = """
DROP TABLE IF EXISTS limit_tasks;
CREATE TABLE limit_tasks (
    id uuid PRIMARY KEY,
    task_name text NOT NULL,
    queue_name text NOT NULL DEFAULT 'default',
    priority int NOT NULL DEFAULT 100,
    status text NOT NULL DEFAULT 'PENDING',
    args text, kwargs text, result text,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    claimed_at timestamptz, completed_at timestamptz, claimed_by text
);
CREATE INDEX limit_tasks_claim ON limit_tasks (queue_name, priority, enqueued_at)
    WHERE status = 'PENDING';
"""
INSERT_ONE = "INSERT INTO limit_tasks (id, task_name, args, kwargs) VALUES (%s, 'add', %s, %s)"
COPY_IN = "COPY limit_tasks (id, task_name, args, kwargs) FROM STDIN"
CLAIM = """
UPDATE limit_tasks SET status = 'RUNNING', claimed_at = now(), claimed_by = 'w1'
WHERE id IN (SELECT id FROM limit_tasks
             WHERE queue_name = 'default' AND status = 'PENDING'
             ORDER BY priority, enqueued_at LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING id, kwargs
"""
FINALIZE = """
UPDATE limit_tasks SET status = 'COMPLETED', completed_at = now(), result = r.result
FROM unnest(%s::uuid[], %s::text[]) AS r(id, result)
WHERE limit_tasks.id = r.id AND limit_tasks.status = 'RUNNING'
"""


def _reset(conn: Conn) -> None:
    """An empty table, and no dirty pages of an earlier run left to flush meanwhile."""
    conn.execute(TABLE)
    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        pass  # needs superuser or pg_checkpoint; the limits are still measured


def _kwargs(i: int) -> str:
    return json.dumps({"a": i, "b": i})


def _rows(count: int) -> list[tuple[uuid.UUID, str, str, str]]:
    return [(uuid.uuid4(), "add", "[]", _kwargs(i)) for i in range(count)]


def _copy(conn: Conn, rows: list[tuple[uuid.UUID, str, str, str]]) -> None:
    with conn.transaction(), conn.cursor().copy(COPY_IN) as copy:
        for row in rows:
            copy.write_row(row)


def l1_insert(conn: Conn, count: int = SIZES["L1"]) -> float:
    """Rows/s of single-row INSERTs, each its own transaction (autocommit), prepared."""
    _reset(conn)
    started = time.perf_counter()
    for i in range(count):
        conn.execute(INSERT_ONE, (uuid.uuid4(), "[]", _kwargs(i)), prepare=True)
    return count / (time.perf_counter() - started)


def l2_copy(conn: Conn, count: int = SIZES["L2"]) -> float:
    """Rows/s of one COPY of `count` rows in one transaction (rows built beforehand)."""
    _reset(conn)
    rows = _rows(count)
    started = time.perf_counter()
    _copy(conn, rows)
    return count / (time.perf_counter() - started)


def l3_claim_finalize(conn: Conn, count: int = SIZES["L3"], batch: int = CLAIM_BATCH) -> float:
    """Rows/s of claim-`batch`-then-finalize-them until `count` enqueued rows are done."""
    _reset(conn)
    _copy(conn, _rows(count))
    conn.execute("VACUUM ANALYZE limit_tasks")
    done = 0
    started = time.perf_counter()
    while done < count:
        rows = conn.execute(CLAIM, (batch,), prepare=True).fetchall()
        if not rows:
            break
        results = [json.dumps({"ok": json.loads(kwargs)["a"] * 2}) for _, kwargs in rows]
        conn.execute(FINALIZE, ([row[0] for row in rows], results), prepare=True)
        done += len(rows)
    return done / (time.perf_counter() - started)


def l4_notify(conn: Conn, url: str, count: int = SIZES["L4"]) -> tuple[float, float]:
    """p50 and p99 (nearest rank, as for W4) in ms of NOTIFY round trips from `conn`
    to a listener connected to `url` (the same database)."""
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN limit_channel")
        samples = []
        for i in range(count):
            started = time.perf_counter()
            conn.execute("SELECT pg_notify('limit_channel', %s)", (str(i),))
            for _ in listener.notifies(timeout=5.0, stop_after=1):
                pass
            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return nearest_rank(samples, 50), nearest_rank(samples, 99)


def nearest_rank(sorted_values: list[float], pct: float) -> float:
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def _scaled(name: str, scale: float) -> int:
    return max(10, int(SIZES[name] * scale))


def _measurements(url: str, scale: float) -> dict[str, Callable[[Conn], dict[str, float]]]:
    """Per limit: one run on a connection to `url`, as named figures."""
    def l4(conn: Conn) -> dict[str, float]:
        p50, p99 = l4_notify(conn, url, _scaled("L4", scale))
        return {"L4 p50": p50, "L4 p99": p99}

    return {
        "L1": lambda conn: {"L1": l1_insert(conn, _scaled("L1", scale))},
        "L2": lambda conn: {"L2": l2_copy(conn, _scaled("L2", scale))},
        "L3": lambda conn: {"L3": l3_claim_finalize(conn, _scaled("L3", scale))},
        "L4": l4,
    }


def measure(server_url: str, only: Iterable[str] = tuple(SIZES), runs: int = 1,
            scale: float = 1.0) -> dict[str, list[float]]:
    """Each limit in `only`, `runs` times, in a scratch database: figure name -> values.

    The figures are "L1", "L2", "L3" (rows/s), "L4 p50" and "L4 p99" (ms).
    `scale` multiplies the reference sizes (quick checks); ratios to workloads
    run at the same scale stay comparable.
    """
    figures: dict[str, list[float]] = {}
    with _pg.scratch_database(server_url, "horsies_limits") as url, \
            psycopg.connect(url, autocommit=True) as conn:
        steps = _measurements(url, scale)
        for name in only:
            for _ in range(runs):
                for key, value in steps[name](conn).items():
                    figures.setdefault(key, []).append(value)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None,
                        help="a server whose user may create databases (default: embedded)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(SIZES))
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the reference sizes, e.g. 0.1 for a quick check")
    args = parser.parse_args()
    from benchmarks._ratios import limit_lines

    with _pg.server(args.database_url) as url:
        print(_pg.server_settings(url))
        figures = measure(url, args.only.split(","), args.runs, args.scale)
    print("\n".join(limit_lines(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
