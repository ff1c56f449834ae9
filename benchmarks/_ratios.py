"""Workload figures beside their limits, as printed by benchmarks/workloads.py (pure).

Absolute figures change from machine to machine and run to run; a workload
divided by its limit, both measured in the same sitting, changes much less.
The goals of WORKLOADS.md are stated as such ratios.
"""

from __future__ import annotations

import statistics

# Workload -> (its limit, the goal as a ratio to that limit).
THROUGHPUT_GOALS = {"W1": ("L1", 0.8), "W2": ("L2", 0.5), "W3": ("L3", 0.65)}
W3_MEMORY_GOAL_MB = 90
W4_GOAL_MS = {"p50": 1.5, "p99": 3.0}
W5_GOAL_KB = 0.5

_FORMATS = {"tasks/s": "{:,.0f}", "rows/s": "{:,.0f}", "ms": "{:,.2f}", "MB": "{:,.0f}",
            "KB/task": "{:,.2f}"}


def _number(value: float, unit: str) -> str:
    return _FORMATS.get(unit, "{:,.2f}").format(value)


def spread(values: list[float], unit: str) -> str:
    """The median with its unit, and the min-max when there are several values."""
    text = f"{_number(statistics.median(values), unit)} {unit}"
    if len(values) > 1:
        text += f" ({_number(min(values), unit)}–{_number(max(values), unit)})"
    return text


def ratio(workload: list[float], limit: list[float]) -> float:
    """Median of the workload over median of its limit."""
    return statistics.median(workload) / statistics.median(limit)


LIMIT_NAMES = {
    "L1": "single-row INSERT per transaction, prepared",
    "L2": "COPY in one transaction",
    "L3": "claim 100 rows, finalize them, until all are done",
    "L4": "NOTIFY round trip between two connections",
}


def limit_lines(figures: dict[str, list[float]]) -> list[str]:
    """`L1: 2,650 rows/s (2,500–2,800)  single-row INSERT …`; L4 as its p50 and p99."""
    lines = [f"{key}: {spread(figures[key], 'rows/s')}  {LIMIT_NAMES[key]}"
             for key in ("L1", "L2", "L3") if key in figures]
    if "L4 p50" in figures:
        lines.append(f"L4: p50 {spread(figures['L4 p50'], 'ms')}, "
                     f"p99 {spread(figures['L4 p99'], 'ms')}  {LIMIT_NAMES['L4']}")
    return lines


def throughput_line(name: str, values: list[float], limits: dict[str, list[float]]) -> str:
    """`W3: 15,012 tasks/s (14,800–15,300) = 0.52 × L3 (L3 28,900 rows/s; goal ≥ 0.65)`."""
    limit, goal = THROUGHPUT_GOALS[name]
    line = f"{name}: {spread(values, 'tasks/s')}"
    if limit not in limits:
        return f"{line} ({limit} not measured; goal ≥ {goal} × {limit})"
    return (f"{line} = {ratio(values, limits[limit]):.2f} × {limit} "
            f"({limit} {spread(limits[limit], 'rows/s')}; goal ≥ {goal})")


def latency_line(p50: list[float], p99: list[float], limits: dict[str, list[float]]) -> str:
    """W4's p50 and p99, each as a multiple of the NOTIFY round trip's (L4), and the goals."""
    goal = f"goal p50 ≤ {W4_GOAL_MS['p50']:g} ms, p99 ≤ {W4_GOAL_MS['p99']:g} ms"
    parts = []
    for key, values in (("p50", p50), ("p99", p99)):
        part = f"{key} {spread(values, 'ms')}"
        if f"L4 {key}" in limits:
            part += f" = {ratio(values, limits[f'L4 {key}']):.1f} × L4 {key}"
        parts.append(part)
    if "L4 p50" not in limits:
        return f"W4: {', '.join(parts)} (L4 not measured; {goal})"
    floor = (f"L4 p50 {spread(limits['L4 p50'], 'ms')}, "
             f"p99 {spread(limits['L4 p99'], 'ms')}")
    return f"W4: {', '.join(parts)} ({floor}; {goal})"


def drain_details(processes: int, workers: int, peak_mb: list[float],
                  after_start: list[float]) -> str:
    """How W3 ran, its memory against the goal, and its rate once the first task started."""
    shape = f"--processes={processes}" + (f" × {workers} workers" if workers > 1 else "")
    return (f"    {shape}; peak memory {spread(peak_mb, 'MB')} summed over the worker "
            f"processes (goal ≤ {W3_MEMORY_GOAL_MB} MB with one worker of 2); "
            f"from the first start to the last completion {spread(after_start, 'tasks/s')}")


def footprint_line(kb_per_task: list[float]) -> str:
    return (f"W5: {spread(kb_per_task, 'KB/task')} after W3; "
            f"no limit (goal ≤ {W5_GOAL_KB} KB/task)")
