"""benchmarks/limits.py against the test server, at tiny sizes: figures, not speed."""

from __future__ import annotations

import psycopg

from benchmarks import limits


def _databases(server_url: str) -> set[str]:
    with psycopg.connect(server_url) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def test_every_limit_gives_its_figures_and_leaves_no_database(pg_server_url: str) -> None:
    before = _databases(pg_server_url)
    figures = limits.measure(pg_server_url, ["L1", "L2", "L3", "L4"], runs=2, scale=0.01)
    assert set(figures) == {"L1", "L2", "L3", "L4 p50", "L4 p99"}
    assert all(len(values) == 2 and all(v > 0 for v in values) for values in figures.values())
    assert all(p50 <= p99 for p50, p99 in zip(figures["L4 p50"], figures["L4 p99"]))
    assert not {d for d in _databases(pg_server_url) - before if d.startswith("horsies_limits")}


def test_l3_finalizes_every_row(pg_server_url: str, pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        limits.l3_claim_finalize(conn, count=250, batch=100)
        rows = conn.execute("SELECT status, count(*), count(result) FROM limit_tasks "
                            "GROUP BY status").fetchall()
    assert rows == [("COMPLETED", 250, 250)]
