"""QueueMode and CustomQueueConfig (queues-and-concurrency.md §2, §3)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from horsies.config import CustomQueueConfig, QueueMode
from horsies.errors import ConfigurationError, ErrorCode, MultipleValidationErrors


def test_queue_mode_values() -> None:
    assert QueueMode.DEFAULT.value == "default"
    assert QueueMode.CUSTOM.value == "custom"
    assert [m.name for m in QueueMode] == ["DEFAULT", "CUSTOM"]


def test_defaults() -> None:
    queue = CustomQueueConfig(name="mail")
    assert (queue.name, queue.priority, queue.max_concurrency) == ("mail", 1, 5)


def test_struct_rules() -> None:
    assert isinstance(CustomQueueConfig(name="q"), msgspec.Struct)
    with pytest.raises(TypeError):
        CustomQueueConfig("q")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        CustomQueueConfig(name="q", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        CustomQueueConfig()  # type: ignore[call-arg]
    queue = CustomQueueConfig(name="q")
    with pytest.raises(AttributeError):
        queue.priority = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "a"},
        {"name": "x" * 52},
        {"name": "é" * 26},  # 52 bytes of UTF-8
        {"name": "q", "priority": 1},
        {"name": "q", "priority": 100},
        {"name": "q", "max_concurrency": 1},
        {"name": "q", "max_concurrency": 2_147_483_647},
        {"name": "q", "max_concurrency": None},  # no per-queue cap
    ],
)
def test_accepted_edges(kwargs: dict[str, Any]) -> None:
    CustomQueueConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 53}, "name"),
        ({"name": "é" * 26 + "x"}, "name"),  # 53 bytes
        ({"name": "a\x00b"}, "name"),
        ({"name": 5}, "name"),
        ({"name": None}, "name"),
        ({"name": "q", "priority": 0}, "priority"),
        ({"name": "q", "priority": 101}, "priority"),
        ({"name": "q", "priority": True}, "priority"),
        ({"name": "q", "priority": "1"}, "priority"),
        ({"name": "q", "priority": 1.0}, "priority"),
        ({"name": "q", "max_concurrency": 0}, "max_concurrency"),
        ({"name": "q", "max_concurrency": -1}, "max_concurrency"),
        ({"name": "q", "max_concurrency": 2_147_483_648}, "max_concurrency"),
        ({"name": "q", "max_concurrency": False}, "max_concurrency"),
        ({"name": "q", "max_concurrency": "5"}, "max_concurrency"),
    ],
)
def test_refused(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CustomQueueConfig(**kwargs)
    assert info.value.code is ErrorCode.CONFIG_INVALID_QUEUE_MODE
    assert info.value.message.startswith(field)


def test_range_message_names_bounds() -> None:
    with pytest.raises(ConfigurationError, match="priority must be between 1 and 100"):
        CustomQueueConfig(name="q", priority=0)
    with pytest.raises(ConfigurationError, match="between 1 and 52 bytes"):
        CustomQueueConfig(name="x" * 60)


def test_problems_collected() -> None:
    with pytest.raises(MultipleValidationErrors) as info:
        CustomQueueConfig(name="", priority=0, max_concurrency=0)
    errors = info.value.errors
    assert [e.message.split()[0] for e in errors] == ["name", "priority", "max_concurrency"]
    assert {e.code for e in errors} == {ErrorCode.CONFIG_INVALID_QUEUE_MODE}
