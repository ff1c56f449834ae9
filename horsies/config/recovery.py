"""Stale-task detection and retention settings (workers.md §11.1)."""

from __future__ import annotations

import msgspec

from horsies.config._check import Collector, format_ms
from horsies.errors import ErrorCode

__all__ = ["RecoveryConfig"]

# Stale thresholds must cover two heartbeat intervals, so one missed beat is tolerated.
_HEARTBEAT_FACTOR = 2


class RecoveryConfig(msgspec.Struct, kw_only=True, frozen=True):
    """How the reaper finds stuck tasks and how long bookkeeping rows are kept."""

    auto_requeue_stale_claimed: bool = True
    claimed_stale_threshold_ms: int = 120_000
    auto_fail_stale_running: bool = True
    running_stale_threshold_ms: int = 300_000
    check_interval_ms: int = 30_000
    runner_heartbeat_interval_ms: int = 30_000
    claimer_heartbeat_interval_ms: int = 30_000
    heartbeat_retention_hours: int | None = 24
    worker_state_retention_hours: int | None = 168
    terminal_record_retention_hours: int | None = 720

    def __post_init__(self) -> None:
        checks = Collector("RecoveryConfig", ErrorCode.CONFIG_INVALID_RECOVERY)
        checks.check_bool("auto_requeue_stale_claimed", self.auto_requeue_stale_claimed)
        claimed_ok = checks.check_int(
            "claimed_stale_threshold_ms", self.claimed_stale_threshold_ms, 1_000, 3_600_000
        )
        checks.check_bool("auto_fail_stale_running", self.auto_fail_stale_running)
        running_ok = checks.check_int(
            "running_stale_threshold_ms", self.running_stale_threshold_ms, 1_000, 7_200_000
        )
        checks.check_int("check_interval_ms", self.check_interval_ms, 1_000, 600_000)
        runner_ok = checks.check_int(
            "runner_heartbeat_interval_ms", self.runner_heartbeat_interval_ms, 1_000, 120_000
        )
        claimer_ok = checks.check_int(
            "claimer_heartbeat_interval_ms", self.claimer_heartbeat_interval_ms, 1_000, 120_000
        )
        for name, hi in (
            ("heartbeat_retention_hours", 8_760),
            ("worker_state_retention_hours", 8_760),
            ("terminal_record_retention_hours", 43_800),
        ):
            checks.check_int(name, getattr(self, name), 1, hi, optional=True)
        # The cross rules only make sense between values that passed their own checks.
        if running_ok and runner_ok:
            _check_threshold(
                checks,
                "running_stale_threshold_ms",
                self.running_stale_threshold_ms,
                "runner_heartbeat_interval_ms",
                self.runner_heartbeat_interval_ms,
            )
        if claimed_ok and claimer_ok:
            _check_threshold(
                checks,
                "claimed_stale_threshold_ms",
                self.claimed_stale_threshold_ms,
                "claimer_heartbeat_interval_ms",
                self.claimer_heartbeat_interval_ms,
            )
        checks.raise_if_any()


def _check_threshold(
    checks: Collector, name: str, threshold: int, interval_name: str, interval: int
) -> None:
    """``threshold >= 2 × interval``."""
    minimum = _HEARTBEAT_FACTOR * interval
    if threshold >= minimum:
        return
    checks.add(
        f"{name} too low",
        notes=[f"{name} = {format_ms(threshold)}", f"{interval_name} = {format_ms(interval)}"],
        help_text=f"set {name} >= {format_ms(minimum)}",
    )
