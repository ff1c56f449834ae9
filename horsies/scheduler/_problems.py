"""Validation helpers of the schedule structs (scheduling.md §1, §12.1).

Every schedule struct checks itself in ``__post_init__`` and raises its
problems together as HRS-205 errors whose messages name the class and the
field, e.g. ``IntervalSchedule.minutes must be between 1 and 1440, got 0``.
This module imports nothing but ``horsies.errors``: ``horsies.config`` imports
the patterns, so the patterns must not import ``horsies.config``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from typing import Any

from horsies.errors import ConfigurationError, ErrorCode, ValidationReport, raise_collected

__all__ = ["Problems", "is_int", "is_list"]


def is_int(value: object) -> bool:
    """Strict int: ``bool`` is an ``int`` subclass but never counts as one."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_list(value: object) -> bool:
    """A list-like sequence; text is a sequence too but never a list here."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _shown(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


class Problems:
    """The problems found in one struct, raised together (HRS-205)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._report = ValidationReport(owner)

    def add(self, message: str, *, notes: Sequence[str] = (), help_text: str | None = None) -> None:
        self._report.add(
            ConfigurationError(
                message=message,
                code=ErrorCode.CONFIG_INVALID_SCHEDULE,
                notes=list(notes),
                help_text=help_text,
            )
        )

    @property
    def count(self) -> int:
        return len(self._report)

    def field(self, name: str) -> str:
        return f"{self.owner}.{name}"

    def int_in(
        self, name: str, value: object, lo: int, hi: int, *, optional: bool = False
    ) -> bool:
        """``value`` is an int in ``lo..hi`` (or ``None`` when optional); True when fine."""
        if value is None and optional:
            return True
        if not is_int(value):
            alternative = " or None" if optional else ""
            self.add(f"{self.field(name)} must be an int between {lo} and {hi}{alternative}, "
                     f"got {_shown(value)}")
            return False
        assert isinstance(value, int)
        if not lo <= value <= hi:
            self.add(f"{self.field(name)} must be between {lo} and {hi}, got {value}")
            return False
        return True

    def int_at_least(self, name: str, value: object, lo: int) -> bool:
        if not is_int(value):
            self.add(f"{self.field(name)} must be an int >= {lo}, got {_shown(value)}")
            return False
        assert isinstance(value, int)
        if value < lo:
            self.add(f"{self.field(name)} must be >= {lo}, got {value}")
            return False
        return True

    def boolean(self, name: str, value: object) -> bool:
        if isinstance(value, bool):
            return True
        self.add(f"{self.field(name)} must be a bool, got {_shown(value)}")
        return False

    def text(self, name: str, value: object, *, optional: bool = False) -> bool:
        if isinstance(value, str) or (value is None and optional):
            return True
        expected = "a str or None" if optional else "a str"
        self.add(f"{self.field(name)} must be {expected}, got {_shown(value)}")
        return False

    def wall_time(self, name: str, value: object) -> bool:
        """A ``datetime.time`` without tzinfo: it is read in the entry's time zone."""
        if not isinstance(value, time):
            self.add(f"{self.field(name)} must be a datetime.time, got {_shown(value)}")
            return False
        if value.tzinfo is not None:
            self.add(
                f"{self.field(name)} must be a time without tzinfo, got {value.isoformat()}",
                help_text="wall-clock times are read in TaskSchedule.timezone; "
                "drop the tzinfo and set the entry's timezone instead",
            )
            return False
        return True

    def members(self, name: str, value: object, enum: type[Any], *, empty_ok: bool) -> bool:
        """A list of ``enum`` members."""
        if not is_list(value):
            self.add(f"{self.field(name)} must be a list of {enum.__name__}, got {_shown(value)}")
            return False
        items = list(value)  # type: ignore[call-overload]
        if not items and not empty_ok:
            self.add(f"{self.field(name)} must not be empty")
            return False
        fine = True
        for index, item in enumerate(items):
            if not isinstance(item, enum):
                self.add(f"{self.field(name)}[{index}] must be a {enum.__name__}, "
                         f"got {_shown(item)}")
                fine = False
        return fine

    def raise_if_any(self) -> None:
        raise_collected(self._report)
