"""How many tasks a run holds (runs.md §1).

The worker keeps a moving average of how long tasks take to run (as reported
by the children, over the mix of tasks its queues deliver) and sizes each run
so that a child holds about `run_target_ms` of work, between 1 and
`max_run_size`. Until the first durations arrive a run is one task. Long tasks
therefore get runs of one task and are handed out only to an idle child, as
without runs; tasks of a few microseconds get long runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from horsies.config import AppConfig

# Runs before the first duration is known: one task, handed to an idle child
# only, as a long task must be.
UNKNOWN_RUN = 1
# Weight of the newest duration in the moving average.
_ALPHA = 0.05


class RunSizing:
    def __init__(self, run_target_ms: int, max_run_size: int) -> None:
        self.target_s = run_target_ms / 1000
        self.max_run_size = max_run_size
        self.average_s: float | None = None

    def observe(self, duration_s: float) -> None:
        average = self.average_s
        self.average_s = duration_s if average is None else average + _ALPHA * (
            duration_s - average)

    def size(self) -> int:
        if self.max_run_size == 1:
            return 1
        if self.average_s is None:
            return min(UNKNOWN_RUN, self.max_run_size)
        if self.average_s <= 0:
            return self.max_run_size
        return max(1, min(self.max_run_size, int(self.target_s / self.average_s)))


def counts_needed(config: AppConfig, caps: Mapping[str, int | None]) -> bool:
    """Whether a cap needs cluster-wide counts, so that runs are one task long
    and claims go through capped claim passes: a `cluster_wide_cap`, a
    `prefetch_buffer`, or a served queue with a `max_concurrency` (`caps`: the
    cap of every served queue, None for none)."""
    return (config.cluster_wide_cap is not None or config.prefetch_buffer > 0
            or any(cap is not None for cap in caps.values()))
