"""What `horsies demo` measured, and its text and JSON forms (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50, 95, 99)


def nearest_rank(sorted_values: list[float], pct: float) -> float:
    """The nearest-rank percentile of values sorted ascending (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def latency_summary(samples_ms: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of round-trip times in milliseconds."""
    ordered = sorted(samples_ms)
    summary = {f"p{p}": round(nearest_rank(ordered, p), 2) for p in PERCENTILES}
    summary["max"] = round(ordered[-1], 2) if ordered else 0.0
    return summary


@dataclass
class DemoReport:
    database: str
    processes: int
    tasks: int
    enqueue_seconds: float = 0.0
    completed: int = 0
    failed: int = 0
    unfinished: int = 0
    processing_seconds: float = 0.0
    # Sequential send-then-get round trips on the idle worker, after the drain.
    latency_samples_ms: list[float] = field(default_factory=list)
    latency_planned: int = 0
    clean_shutdown: bool = False

    @property
    def enqueue_rate(self) -> int:
        return int(self.tasks / self.enqueue_seconds) if self.enqueue_seconds else 0

    @property
    def processing_rate(self) -> int:
        return int(self.completed / self.processing_seconds) if self.processing_seconds else 0

    @property
    def latency_ms(self) -> dict[str, float]:
        return latency_summary(self.latency_samples_ms)

    @property
    def ok(self) -> bool:
        return (self.completed == self.tasks and self.clean_shutdown
                and len(self.latency_samples_ms) == self.latency_planned)

    def as_json(self) -> dict[str, Any]:
        return {
            "database": self.database, "processes": self.processes,
            "max_claim_batch": self.processes, "tasks": self.tasks,
            "enqueue_seconds": round(self.enqueue_seconds, 4), "enqueue_rate": self.enqueue_rate,
            "completed": self.completed, "failed": self.failed, "unfinished": self.unfinished,
            "processing_seconds": round(self.processing_seconds, 4),
            "processing_rate": self.processing_rate, "latency_ms": self.latency_ms,
            "latency_round_trips": len(self.latency_samples_ms),
            "clean_shutdown": self.clean_shutdown,
        }


def duration(seconds: float) -> str:
    """Below one second in whole milliseconds, else seconds with two decimals."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _latency_line(r: DemoReport) -> str:
    samples = len(r.latency_samples_ms)
    if not samples:
        return "not measured (the tasks did not all finish)" if r.latency_planned else "-"
    # Round trips take milliseconds: whole milliseconds would hide the differences.
    values = "  ".join(f"{k} {v:.1f} ms" for k, v in r.latency_ms.items())
    missing = r.latency_planned - samples
    tail = f", {missing} failed" if missing else ""
    return f"{values} ({samples} round trips on the idle worker{tail})"


def format_report(r: DemoReport, version: str) -> str:
    rows = [
        ("database", r.database),
        ("worker", f"{r.processes} processes, max_claim_batch={r.processes}"),
        ("enqueue", (f"{r.tasks} tasks in {duration(r.enqueue_seconds)} "
                     f"({r.enqueue_rate} tasks/s)")),
        ("processing", (f"{r.completed} completed, {r.failed} failed, {r.unfinished} unfinished "
                        f"in {duration(r.processing_seconds)} ({r.processing_rate} tasks/s)")),
        ("latency", _latency_line(r)),
        ("shutdown", "clean" if r.clean_shutdown else "not clean"),
    ]
    return "\n".join([f"horsies demo v{version}"] + [f"{k:<12}{v}" for k, v in rows])
