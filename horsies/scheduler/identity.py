"""Deterministic names of schedule things: config hash, slot task id, lock key.

- ``config_hash``: detects a changed pattern or time zone (scheduling.md §10);
- ``slot_task_id``: the id of the task of one slot (§9), so that enqueueing a
  slot twice (two schedulers, a crash between enqueue and state update) finds
  the same row and inserts nothing;
- ``schedule_lock_key``: the advisory lock serializing one entry (§7.5).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Final

import msgspec

from horsies.scheduler.patterns import SchedulePattern

__all__ = ["SLOT_NAMESPACE", "config_hash", "schedule_lock_key", "slot_task_id"]

SLOT_NAMESPACE: Final = uuid.UUID("3c01f3f5-afd6-4363-b726-a5dab51a81c7")
_LOCK_PREFIX: Final = "horsies-schedule:"


def config_hash(pattern: SchedulePattern, timezone: str) -> str:
    """Lowercase hex SHA-256 of the canonical JSON of pattern and time zone.

    Canonical: UTF-8, keys sorted, no whitespace; the pattern as msgspec
    encodes it (its ``type`` tag, times as ``HH:MM:SS``, enums by value,
    cron terms with their ``kind`` tags, unset interval units as ``null``).
    """
    document = {"pattern": msgspec.to_builtins(pattern), "timezone": timezone}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def slot_task_id(name: str, slot: datetime) -> str:
    """``uuid5(SLOT_NAMESPACE, f"{name}:{slot_utc}")`` with the slot in UTC."""
    if slot.utcoffset() is None:
        raise ValueError("slot must be timezone-aware")
    slot_utc = slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    return str(uuid.uuid5(SLOT_NAMESPACE, f"{name}:{slot_utc}"))


def schedule_lock_key(name: str) -> int:
    """First 8 bytes of ``SHA-256("horsies-schedule:" + name)`` as a signed big-endian int."""
    digest = hashlib.sha256((_LOCK_PREFIX + name).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
