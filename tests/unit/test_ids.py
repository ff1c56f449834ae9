"""Task ids: canonical UUIDv7 text, strictly increasing per process; is_uuid
(tasks.md §4.1 step 5, lifecycle-and-schema.md §7)."""

from __future__ import annotations

import re
import threading
import time
import types
import uuid

import pytest

from horsies.tasks import ids
from horsies.tasks.ids import is_uuid, new_task_id, new_task_ids

CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _ms_of(task_id: str) -> int:
    return uuid.UUID(task_id).int >> 80


def test_canonical_uuid7_text() -> None:
    task_id = new_task_id()
    assert isinstance(task_id, str)
    assert len(task_id) == 36
    assert CANONICAL.fullmatch(task_id)
    parsed = uuid.UUID(task_id)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == task_id


def test_timestamp_is_unix_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    task_id = new_task_id()
    after = time.time_ns() // 1_000_000
    # The counter may borrow a few milliseconds ahead after a burst.
    assert before <= _ms_of(task_id) <= after + 5


def test_strictly_increasing_many_per_millisecond() -> None:
    generated = [new_task_id() for _ in range(10_000)]
    assert all(a < b for a, b in zip(generated, generated[1:], strict=False))
    assert all(CANONICAL.fullmatch(t) for t in generated)
    per_ms: dict[int, int] = {}
    for t in generated:
        per_ms[_ms_of(t)] = per_ms.get(_ms_of(t), 0) + 1
    assert max(per_ms.values()) > 1  # the same-millisecond path was exercised


def test_new_task_ids_continue_the_sequence() -> None:
    first = new_task_id()
    batch = new_task_ids(500)
    last = new_task_id()
    assert len(batch) == 500
    chain = [first, *batch, last]
    assert all(a < b for a, b in zip(chain, chain[1:], strict=False))
    assert new_task_ids(0) == []


def test_frozen_clock_overflowing_the_counter_stays_increasing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = time.time_ns()
    monkeypatch.setattr(ids, "time", types.SimpleNamespace(time_ns=lambda: frozen))
    generated = [new_task_id() for _ in range(6_000)]  # > 4096 in "one" millisecond
    assert all(a < b for a, b in zip(generated, generated[1:], strict=False))
    assert all(uuid.UUID(t).version == 7 for t in generated)
    assert all(uuid.UUID(t).variant == uuid.RFC_4122 for t in generated)


def test_clock_going_backwards_stays_increasing(monkeypatch: pytest.MonkeyPatch) -> None:
    before = new_task_id()
    past = time.time_ns() - 10_000_000_000  # ten seconds ago
    monkeypatch.setattr(ids, "time", types.SimpleNamespace(time_ns=lambda: past))
    after = [new_task_id() for _ in range(100)]
    chain = [before, *after]
    assert all(a < b for a, b in zip(chain, chain[1:], strict=False))


def test_threads_get_unique_increasing_ids() -> None:
    results: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(new_task_id() for _ in range(2_000))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [t for out in results for t in out]
    assert len(set(everything)) == len(everything)
    for out in results:
        assert all(a < b for a, b in zip(out, out[1:], strict=False))


# --- is_uuid -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
    ],
)
def test_is_uuid_accepts_postgres_forms(value: str) -> None:
    assert is_uuid(value)


def test_is_uuid_accepts_generated_ids() -> None:
    assert is_uuid(new_task_id())


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-a-uuid",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",  # 31 digits
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",  # 33 digits
        "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        # Forms uuid.UUID takes but PostgreSQL refuses: they must match no row, not
        # make the query fail.
        "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc99_9c0b4ef8bb6d6bb9bd380a1",
        "+a0eebc999c0b4ef8bb6d6bb9bd380a1",
        " a0eebc999c0b4ef8bb6d6bb9bd380a1",
        "a-0eebc999c0b4ef8bb6d6bb9bd380a11",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
        "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
        "{{a0eebc999c0b4ef8bb6d6bb9bd380a11}}",
        "{a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11}",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1\u0661",  # a non-ASCII digit
    ],
)
def test_is_uuid_refuses(value: str) -> None:
    assert not is_uuid(value)


@pytest.mark.parametrize("value", [None, 1, b"a0eebc999c0b4ef8bb6d6bb9bd380a11", uuid.uuid4()])
def test_is_uuid_refuses_non_strings(value: object) -> None:
    assert not is_uuid(value)


def test_id_bytes_are_the_uuid_binary_form() -> None:
    for task_id in [new_task_id(), *new_task_ids(50), "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"]:
        assert ids.id_bytes(task_id) == uuid.UUID(task_id).bytes


def test_a_batch_on_a_frozen_clock_overflowing_the_counter_stays_increasing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = time.time_ns()
    monkeypatch.setattr(ids, "time", types.SimpleNamespace(time_ns=lambda: frozen))
    generated = new_task_ids(6_000)  # > 4096 in "one" millisecond, in one reservation
    assert all(a < b for a, b in zip(generated, generated[1:], strict=False))
    assert all(CANONICAL.fullmatch(t) for t in generated)
