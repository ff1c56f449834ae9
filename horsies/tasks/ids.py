"""Task ids: time-ordered UUIDs (version 7), strictly increasing per process.

Time-ordered ids keep the primary-key index append-only, and a batch sent in
one statement is claimed in id order, i.e. in input order.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def _next_ms_and_seq() -> tuple[int, int]:
    global _last_ms, _seq
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms > _last_ms:
            _last_ms, _seq = now_ms, random.getrandbits(10)
        else:
            _seq += 1
            if _seq > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                _last_ms, _seq = _last_ms + 1, 0
        return _last_ms, _seq


def new_task_id() -> str:
    """A new UUIDv7 in canonical text form; later calls sort after earlier ones."""
    ms, seq = _next_ms_and_seq()
    # Uniqueness comes from the clock and the counter; these bits need not be secret.
    rand_b = random.getrandbits(62)
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def new_task_ids(count: int) -> list[str]:
    """`count` ids in increasing order (one lock round per id is cheap enough)."""
    return [new_task_id() for _ in range(count)]


# The forms PostgreSQL's uuid input accepts: 32 hex digits, a hyphen allowed after
# any group of four, optionally inside one pair of braces. uuid.UUID is laxer
# ("urn:uuid:" prefixes, stray hyphens, "_", "+", spaces), and such a string would
# make the query fail instead of matching no row.
_PG_UUID = re.compile(r"(\{)?[0-9a-fA-F]{4}(?:-?[0-9a-fA-F]{4}){7}(?(1)\})")


def is_uuid(value: object) -> bool:
    """True for a string PostgreSQL will accept as a uuid; other ids match no row."""
    return isinstance(value, str) and _PG_UUID.fullmatch(value) is not None
