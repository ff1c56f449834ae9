"""The demo's report: percentiles, the text rows and the JSON keys (no database)."""

from __future__ import annotations

import pytest

from horsies.demo.report import DemoReport, duration, format_report, latency_summary, nearest_rank


@pytest.mark.parametrize(("pct", "expected"), [(50, 5.0), (95, 10.0), (99, 10.0), (10, 1.0)])
def test_nearest_rank(pct: float, expected: float) -> None:
    assert nearest_rank([float(v) for v in range(1, 11)], pct) == expected


def test_nearest_rank_of_nothing_is_zero() -> None:
    assert nearest_rank([], 50) == 0.0


def test_latency_summary_sorts_and_rounds() -> None:
    samples = [3.0, 1.0, 2.0] + [1.5] * 97
    assert latency_summary(samples) == {"p50": 1.5, "p95": 1.5, "p99": 2.0, "max": 3.0}


@pytest.mark.parametrize(("seconds", "text"), [(0.8404, "840 ms"), (1.0, "1.00 s"),
                                               (3.517, "3.52 s")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def _report(**changes: object) -> DemoReport:
    report = DemoReport(database="embedded PostgreSQL (temporary)", processes=2, tasks=1000,
                        enqueue_seconds=0.05, completed=1000, processing_seconds=2.0,
                        latency_samples_ms=[2.0, 1.0, 4.0], latency_planned=3,
                        clean_shutdown=True)
    for name, value in changes.items():
        setattr(report, name, value)
    return report


def test_text_report() -> None:
    assert format_report(_report(), "9.9.9").splitlines() == [
        "horsies demo v9.9.9",
        "database    embedded PostgreSQL (temporary)",
        "worker      2 processes, max_claim_batch=2",
        "enqueue     1000 tasks in 50 ms (20000 tasks/s)",
        "processing  1000 completed, 0 failed, 0 unfinished in 2.00 s (500 tasks/s)",
        ("latency     p50 2.0 ms  p95 4.0 ms  p99 4.0 ms  max 4.0 ms "
         "(3 round trips on the idle worker)"),
        "shutdown    clean",
    ]


def test_failed_round_trips_are_shown_and_fail_the_run() -> None:
    report = _report(latency_samples_ms=[1.0], latency_planned=3)
    assert "(1 round trips on the idle worker, 2 failed)" in format_report(report, "0")
    assert not report.ok


def test_no_latency_when_the_tasks_did_not_finish() -> None:
    report = _report(completed=900, unfinished=100, latency_samples_ms=[])
    assert "latency     not measured (the tasks did not all finish)" in format_report(report, "0")
    assert not report.ok


def test_ok_needs_every_task_every_round_trip_and_a_clean_shutdown() -> None:
    assert _report().ok
    assert not _report(clean_shutdown=False).ok
    assert not _report(completed=999).ok


def test_json_report() -> None:
    data = _report().as_json()
    assert data["latency_ms"] == {"p50": 2.0, "p95": 4.0, "p99": 4.0, "max": 4.0}
    assert data["latency_round_trips"] == 3
    assert (data["enqueue_rate"], data["processing_rate"]) == (20000, 500)
    assert data["max_claim_batch"] == data["processes"] == 2
