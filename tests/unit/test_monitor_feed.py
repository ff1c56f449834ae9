"""The monitor's debounce (§3.2), channel flags, formats and chart ticks."""

from __future__ import annotations

import asyncio
import datetime

import pytest

pytest.importorskip("textual")

from horsies.monitor.charts import count_ticks, time_ticks
from horsies.monitor.feed import CHANNEL_FLAGS, Debouncer, Flag, flag_of
from horsies.monitor.format import duration, pretty_json


def test_a_burst_of_notifications_is_one_flush() -> None:
    async def burst() -> list[frozenset[Flag]]:
        flushed: list[frozenset[Flag]] = []
        done = asyncio.Event()

        def flush(flags: frozenset[Flag]) -> None:
            flushed.append(flags)
            done.set()

        debouncer = Debouncer(flush)
        for channel in ("task_new", "task_done", "horsies_worker_state", "unknown_channel"):
            debouncer.notice(channel)
        await done.wait()
        done.clear()
        debouncer.notice("workflow_done")
        await done.wait()
        return flushed

    assert asyncio.run(burst()) == [frozenset({Flag.TASKS, Flag.WORKERS}),
                                    frozenset({Flag.WORKFLOWS})]


def test_every_channel_of_the_spec_raises_its_flag() -> None:
    assert CHANNEL_FLAGS == {
        "horsies_task_status": Flag.TASKS, "task_new": Flag.TASKS, "task_done": Flag.TASKS,
        "horsies_workflow_status": Flag.WORKFLOWS, "workflow_done": Flag.WORKFLOWS,
        "horsies_worker_state": Flag.WORKERS}


def test_a_queue_channel_means_a_send() -> None:
    # A send notifies only task_queue_<queue> (runs.md §5): the tasks flag.
    assert flag_of("task_queue_default") is Flag.TASKS
    assert flag_of("task_queue_") is Flag.TASKS
    assert flag_of("workflow_done") is Flag.WORKFLOWS
    assert flag_of("unknown_channel") is None


def test_formats() -> None:
    assert [duration(s) for s in (5, 65, 3725)] == ["5s", "1m 5s", "1h 2m"]
    assert pretty_json('{"a": "{\\"b\\": 1}"}') == '{\n  "a": {\n    "b": 1\n  }\n}'
    assert pretty_json("plain") == "plain" and pretty_json(None) == "-"


def test_chart_ticks() -> None:
    assert count_ticks(0) == [0.0, 1.0] and count_ticks(3) == [0.0, 1.0, 2.0, 3.0]
    assert count_ticks(12) == [0.0, 3.0, 6.0, 9.0, 12.0]
    t0 = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)
    ticks, labels = time_ticks([t0, t0 + datetime.timedelta(minutes=30)])
    assert labels == ["12:00", "12:10", "12:20", "12:30"] and len(ticks) == 4
    assert time_ticks([t0]) == ([t0.timestamp()], ["12:00"]) and time_ticks([]) == ([], [])
