"""Task ids: time-ordered UUIDs (version 7), strictly increasing per process.

Time-ordered ids keep the primary-key index append-only, and a batch sent in
one statement is claimed in id order, i.e. in input order.
"""

from __future__ import annotations

import random
import re
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def _advance() -> tuple[int, int]:
    """The next (millisecond, counter) pair; the caller holds `_lock`."""
    global _last_ms, _seq
    now_ms = time.time_ns() // 1_000_000
    if now_ms > _last_ms:
        _last_ms, _seq = now_ms, random.getrandbits(10)
    else:
        _seq += 1
        if _seq > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
            _last_ms, _seq = _last_ms + 1, 0
    return _last_ms, _seq


def _text(ms: int, seq: int) -> str:
    # Uniqueness comes from the clock and the counter; these bits need not be secret.
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | random.getrandbits(62)
    # The canonical form, formatted directly: building a uuid.UUID to print it
    # costs three times as much, which a send_many of 100,000 ids notices.
    h = "%032x" % value  # noqa: UP031 - faster than a format spec here
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_task_id() -> str:
    """A new UUIDv7 in canonical text form; later calls sort after earlier ones."""
    with _lock:
        ms, seq = _advance()
    return _text(ms, seq)


def new_task_ids(count: int) -> list[str]:
    """`count` ids in increasing order, reserved in one turn of the lock."""
    with _lock:
        pairs = [_advance() for _ in range(count)]
    return [_text(ms, seq) for ms, seq in pairs]


def id_bytes(task_id: str) -> bytes:
    """The 16 bytes of a canonical id: a uuid's binary form in COPY."""
    return bytes.fromhex(task_id.replace("-", ""))


# The forms PostgreSQL's uuid input accepts: 32 hex digits, a hyphen allowed after
# any group of four, optionally inside one pair of braces. uuid.UUID is laxer
# ("urn:uuid:" prefixes, stray hyphens, "_", "+", spaces), and such a string would
# make the query fail instead of matching no row.
_PG_UUID = re.compile(r"(\{)?[0-9a-fA-F]{4}(?:-?[0-9a-fA-F]{4}){7}(?(1)\})")


def is_uuid(value: object) -> bool:
    """True for a string PostgreSQL will accept as a uuid; other ids match no row."""
    return isinstance(value, str) and _PG_UUID.fullmatch(value) is not None
