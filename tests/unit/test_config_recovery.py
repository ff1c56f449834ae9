"""RecoveryConfig (workers.md §11.1)."""

from __future__ import annotations

from typing import Any

import pytest

from horsies.config import RecoveryConfig
from horsies.errors import ConfigurationError, ErrorCode, MultipleValidationErrors

DEFAULTS = {
    "auto_requeue_stale_claimed": True,
    "claimed_stale_threshold_ms": 120_000,
    "auto_fail_stale_running": True,
    "running_stale_threshold_ms": 300_000,
    "check_interval_ms": 30_000,
    "runner_heartbeat_interval_ms": 30_000,
    "claimer_heartbeat_interval_ms": 30_000,
    "heartbeat_retention_hours": 24,
    "worker_state_retention_hours": 168,
    "terminal_record_retention_hours": 720,
}

# field -> (lowest, highest) allowed, inclusive
RANGES = {
    "claimed_stale_threshold_ms": (1_000, 3_600_000),
    "running_stale_threshold_ms": (1_000, 7_200_000),
    "check_interval_ms": (1_000, 600_000),
    "runner_heartbeat_interval_ms": (1_000, 120_000),
    "claimer_heartbeat_interval_ms": (1_000, 120_000),
    "heartbeat_retention_hours": (1, 8_760),
    "worker_state_retention_hours": (1, 8_760),
    "terminal_record_retention_hours": (1, 43_800),
}
OPTIONAL = {
    "heartbeat_retention_hours",
    "worker_state_retention_hours",
    "terminal_record_retention_hours",
}


def _isolated(field: str, value: Any) -> dict[str, Any]:
    """Keyword arguments that set ``field`` without tripping the heartbeat cross rules."""
    kwargs: dict[str, Any] = {field: value}
    if field in ("runner_heartbeat_interval_ms", "running_stale_threshold_ms"):
        kwargs.setdefault("runner_heartbeat_interval_ms", 1_000)
        kwargs.setdefault("running_stale_threshold_ms", 7_200_000)
    if field in ("claimer_heartbeat_interval_ms", "claimed_stale_threshold_ms"):
        kwargs.setdefault("claimer_heartbeat_interval_ms", 1_000)
        kwargs.setdefault("claimed_stale_threshold_ms", 3_600_000)
    return kwargs


def test_defaults() -> None:
    config = RecoveryConfig()
    assert {name: getattr(config, name) for name in config.__struct_fields__} == DEFAULTS
    assert list(config.__struct_fields__) == list(DEFAULTS)


@pytest.mark.parametrize("field", list(RANGES))
def test_range_edges_accepted(field: str) -> None:
    lo, hi = RANGES[field]
    for value in (lo, hi):
        if field.endswith("stale_threshold_ms") and value == lo:
            # In range, but below twice the smallest heartbeat interval (1000 ms):
            # only the cross rule refuses it.
            with pytest.raises(ConfigurationError) as info:
                RecoveryConfig(**_isolated(field, value))
            assert info.value.message == f"{field} too low"
            continue
        config = RecoveryConfig(**_isolated(field, value))
        assert getattr(config, field) == value


@pytest.mark.parametrize("field", list(RANGES))
def test_range_edges_refused(field: str) -> None:
    lo, hi = RANGES[field]
    for value in (lo - 1, hi + 1):
        with pytest.raises(ConfigurationError) as info:
            RecoveryConfig(**_isolated(field, value))
        assert info.value.code is ErrorCode.CONFIG_INVALID_RECOVERY
        assert info.value.message == f"{field} must be between {lo} and {hi} (got {value})"


def test_spec_example_message() -> None:
    with pytest.raises(ConfigurationError) as info:
        RecoveryConfig(check_interval_ms=500)
    assert info.value.message == "check_interval_ms must be between 1000 and 600000 (got 500)"


@pytest.mark.parametrize("field", list(RANGES))
@pytest.mark.parametrize("bad", [True, "30000", 30_000.0])
def test_int_fields_refuse_other_types(field: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        RecoveryConfig(**{field: bad})
    assert info.value.code is ErrorCode.CONFIG_INVALID_RECOVERY
    assert info.value.message.startswith(f"{field} must be an int")


@pytest.mark.parametrize("field", sorted(set(RANGES) - OPTIONAL))
def test_required_ints_refuse_none(field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        RecoveryConfig(**_isolated(field, None))


@pytest.mark.parametrize("field", sorted(OPTIONAL))
def test_retention_accepts_none(field: str) -> None:
    assert getattr(RecoveryConfig(**_isolated(field, None)), field) is None


@pytest.mark.parametrize("field", ["auto_requeue_stale_claimed", "auto_fail_stale_running"])
@pytest.mark.parametrize("bad", [1, 0, "yes", None])
def test_bool_fields_strict(field: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        RecoveryConfig(**{field: bad})
    assert info.value.code is ErrorCode.CONFIG_INVALID_RECOVERY
    assert info.value.message.startswith(f"{field} must be a bool")
    assert getattr(RecoveryConfig(**{field: False}), field) is False


def test_running_threshold_cross_rule() -> None:
    RecoveryConfig(runner_heartbeat_interval_ms=30_000, running_stale_threshold_ms=60_000)
    with pytest.raises(ConfigurationError) as info:
        RecoveryConfig(runner_heartbeat_interval_ms=30_000, running_stale_threshold_ms=59_999)
    error = info.value
    assert error.code is ErrorCode.CONFIG_INVALID_RECOVERY
    assert error.message == "running_stale_threshold_ms too low"
    assert any("59999ms" in note and "59.999s" in note for note in error.notes)
    assert any("30000ms (30s)" in note for note in error.notes)
    assert error.help_text == "set running_stale_threshold_ms >= 60000ms (60s)"


def test_claimed_threshold_cross_rule() -> None:
    RecoveryConfig(claimer_heartbeat_interval_ms=3_000, claimed_stale_threshold_ms=6_000)
    RecoveryConfig(claimer_heartbeat_interval_ms=60_000)  # default threshold 120 000 is ok
    with pytest.raises(ConfigurationError) as info:
        RecoveryConfig(claimer_heartbeat_interval_ms=61_000)
    assert info.value.message == "claimed_stale_threshold_ms too low"
    assert info.value.help_text == "set claimed_stale_threshold_ms >= 122000ms (122s)"


def test_cross_rule_skipped_when_a_value_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        RecoveryConfig(running_stale_threshold_ms=500)
    assert "between" in info.value.message


def test_problems_collected() -> None:
    with pytest.raises(MultipleValidationErrors) as info:
        RecoveryConfig(
            check_interval_ms=True,
            heartbeat_retention_hours=0,
            running_stale_threshold_ms=50_000,
            claimed_stale_threshold_ms=50_000,
        )
    errors = info.value.errors
    assert [e.message.split()[0] for e in errors] == [
        "check_interval_ms",
        "heartbeat_retention_hours",
        "running_stale_threshold_ms",
        "claimed_stale_threshold_ms",
    ]
    assert all(isinstance(e, ConfigurationError) for e in errors)
    assert {e.code for e in errors} == {ErrorCode.CONFIG_INVALID_RECOVERY}
    assert str(info.value).endswith("error: aborting due to 4 previous errors")


def test_spec_examples_are_valid() -> None:
    RecoveryConfig(runner_heartbeat_interval_ms=60_000, running_stale_threshold_ms=600_000)
    RecoveryConfig(
        runner_heartbeat_interval_ms=5_000,
        running_stale_threshold_ms=20_000,
        check_interval_ms=5_000,
    )
    RecoveryConfig(
        heartbeat_retention_hours=None,
        worker_state_retention_hours=None,
        terminal_record_retention_hours=None,
    )
