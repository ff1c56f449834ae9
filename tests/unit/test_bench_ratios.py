"""How benchmarks/workloads.py prints workloads beside their limits (no database)."""

from __future__ import annotations

import pytest

from benchmarks import _ratios, workloads

LIMITS = {"L1": [3000.0, 2900.0, 3100.0], "L3": [28900.0], "L4 p50": [0.25], "L4 p99": [0.5]}


def test_spread_is_the_median_and_the_range() -> None:
    assert _ratios.spread([15012.4, 14800.0, 15300.0], "tasks/s") == "15,012 tasks/s (14,800–15,300)"
    assert _ratios.spread([1.234], "ms") == "1.23 ms"


def test_throughput_as_a_ratio_of_its_limit() -> None:
    line = _ratios.throughput_line("W3", [15012.0, 14800.0, 15300.0], LIMITS)
    assert line == ("W3: 15,012 tasks/s (14,800–15,300) = 0.52 × L3 "
                    "(L3 28,900 rows/s; goal ≥ 0.65)")


def test_the_ratio_is_of_the_medians() -> None:
    line = _ratios.throughput_line("W1", [2400.0, 1500.0, 2500.0], LIMITS)
    assert "= 0.80 × L1 (L1 3,000 rows/s (2,900–3,100); goal ≥ 0.8)" in line


def test_a_workload_without_its_limit_keeps_its_figure() -> None:
    line = _ratios.throughput_line("W2", [50000.0], LIMITS)
    assert line == "W2: 50,000 tasks/s (L2 not measured; goal ≥ 0.5 × L2)"


def test_latency_against_the_notify_round_trip() -> None:
    line = _ratios.latency_line([1.0], [3.0], LIMITS)
    assert line == ("W4: p50 1.00 ms = 4.0 × L4 p50, p99 3.00 ms = 6.0 × L4 p99 "
                    "(L4 p50 0.25 ms, p99 0.50 ms; goal p50 ≤ 1.5 ms, p99 ≤ 3 ms)")


def test_footprint_has_only_a_goal() -> None:
    assert _ratios.footprint_line([0.9]) == "W5: 0.90 KB/task after W3; no limit (goal ≤ 0.5 KB/task)"


def test_limit_lines() -> None:
    assert _ratios.limit_lines(LIMITS) == [
        "L1: 3,000 rows/s (2,900–3,100)  single-row INSERT per transaction, prepared",
        "L3: 28,900 rows/s  claim 100 rows, finalize them, until all are done",
        "L4: p50 0.25 ms, p99 0.50 ms  NOTIFY round trip between two connections",
    ]


def test_drain_details_name_the_worker_shape() -> None:
    text = _ratios.drain_details(8, 2, [180.0], [20000.0])
    assert "--processes=8 × 2 workers; peak memory 180 MB" in text


def test_the_printed_command_masks_the_password() -> None:
    command = workloads.the_command(["--database-url", "postgresql://u:s3cret@h/db", "--runs", "3"])
    assert command == ("python benchmarks/workloads.py --database-url "
                       "'postgresql://u:***@h/db' --runs 3")


@pytest.mark.parametrize(("only", "chosen"), [("W1,W4", ["W1", "W4"]), ("W5", ["W3"])])
def test_w5_is_run_by_w3(only: str, chosen: list[str]) -> None:
    assert workloads.parse_args(["--only", only]).only == chosen


def test_unknown_workloads_are_refused() -> None:
    with pytest.raises(SystemExit):
        workloads.parse_args(["--only", "W9"])
