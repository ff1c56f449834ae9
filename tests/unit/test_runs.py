"""When a worker uses runs, and how long they are (runs.md §1)."""

from __future__ import annotations

import pytest

from horsies import AppConfig, CustomQueueConfig, PostgresConfig, QueueMode
from horsies.worker.runs import UNKNOWN_RUN, RunSizing, counts_needed

BROKER = PostgresConfig(database_url="postgresql://u@localhost/db")


def custom(*queues: CustomQueueConfig, **options: object) -> AppConfig:
    return AppConfig(broker=BROKER, queue_mode=QueueMode.CUSTOM, custom_queues=list(queues),
                     **options)  # type: ignore[arg-type]


def caps_of(config: AppConfig) -> dict[str, int | None]:
    return {q.name: q.max_concurrency for q in config.custom_queues or []}


def test_the_default_queue_counts_nothing() -> None:
    assert not counts_needed(AppConfig(broker=BROKER), {"default": None})


@pytest.mark.parametrize(
    ("config", "needed"),
    [
        (custom(CustomQueueConfig(name="a")), True),  # max_concurrency 5 by default
        (custom(CustomQueueConfig(name="a", max_concurrency=None)), False),
        (custom(CustomQueueConfig(name="a", max_concurrency=None),
                CustomQueueConfig(name="b", max_concurrency=3)), True),
        (custom(CustomQueueConfig(name="a", max_concurrency=None), cluster_wide_cap=10), True),
        (custom(CustomQueueConfig(name="a", max_concurrency=None), prefetch_buffer=2,
                claim_lease_ms=5_000), True),
    ],
)
def test_any_cap_needs_counts(config: AppConfig, needed: bool) -> None:
    assert counts_needed(config, caps_of(config)) is needed


def test_only_the_served_queues_count() -> None:
    config = custom(CustomQueueConfig(name="a", max_concurrency=None),
                    CustomQueueConfig(name="b", max_concurrency=3))
    assert not counts_needed(config, {"a": None})


def test_a_run_is_one_task_until_a_duration_is_known() -> None:
    assert RunSizing(5, 256).size() == UNKNOWN_RUN == 1


def test_a_run_holds_about_the_target_of_work() -> None:
    sizing = RunSizing(5, 256)
    sizing.observe(0.001)  # 1 ms tasks
    assert sizing.size() == 5
    fast = RunSizing(5, 256)
    fast.observe(0.000_01)
    assert fast.size() == 256  # bounded by max_run_size
    slow = RunSizing(5, 256)
    slow.observe(2.0)
    assert slow.size() == 1


def test_the_average_moves_slowly() -> None:
    sizing = RunSizing(5, 256)
    sizing.observe(0.001)
    sizing.observe(1.0)  # one slow task weighs a twentieth
    assert sizing.average_s == pytest.approx(0.001 + 0.05 * 0.999)


def test_max_run_size_one_turns_runs_off() -> None:
    sizing = RunSizing(5, 1)
    sizing.observe(0.000_001)
    assert sizing.size() == 1
