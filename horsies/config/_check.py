"""Shared type and range checks for the configuration structs.

msgspec validates types only when decoding, so every config struct checks its
own fields in ``__post_init__``. The ``*_problem`` functions return a message
naming the field (or ``None`` when the value is fine); config structs collect
them as ``ConfigurationError``s through :class:`Collector`, while
``RetryPolicy`` raises the first one as ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from horsies.errors import ConfigurationError, ErrorCode, ValidationReport, raise_collected

__all__ = [
    "Collector",
    "bool_problem",
    "format_ms",
    "int_problem",
    "is_int",
    "sequence_problem",
    "str_problem",
    "type_name",
]


def type_name(value: object) -> str:
    return type(value).__name__


def is_int(value: object) -> bool:
    """Strict int: ``bool`` is an ``int`` subclass but never counts as one."""
    return isinstance(value, int) and not isinstance(value, bool)


def _range_text(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    if lo is not None:
        return f">= {lo}"
    return f"<= {hi}"


def int_problem(
    name: str,
    value: object,
    lo: int | None = None,
    hi: int | None = None,
    *,
    optional: bool = False,
) -> str | None:
    """Strict int (optionally ``None``) within the inclusive bounds ``lo``/``hi``."""
    if value is None and optional:
        return None
    if not is_int(value):
        expected = "an int"
        if lo is not None or hi is not None:
            expected += f" {_range_text(lo, hi)}"
        if optional:
            expected += " or None"
        return f"{name} must be {expected} (got {type_name(value)} {value!r})"
    assert isinstance(value, int)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return f"{name} must be {_range_text(lo, hi)} (got {value})"
    return None


def bool_problem(name: str, value: object) -> str | None:
    if isinstance(value, bool):
        return None
    return f"{name} must be a bool (got {type_name(value)} {value!r})"


def str_problem(name: str, value: object, *, optional: bool = False) -> str | None:
    if isinstance(value, str) or (value is None and optional):
        return None
    expected = "a str or None" if optional else "a str"
    return f"{name} must be {expected} (got {type_name(value)})"


def sequence_problem(name: str, value: object, *, optional: bool = False) -> str | None:
    """A list-like sequence; ``str``/``bytes`` are sequences but never lists here."""
    if value is None and optional:
        return None
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return None
    expected = "a list or None" if optional else "a list"
    return f"{name} must be {expected} (got {type_name(value)})"


def format_ms(ms: int) -> str:
    """``90000ms (90s)``: milliseconds with their value in seconds."""
    return f"{ms}ms ({ms / 1000:g}s)"


class Collector:
    """Collects the problems of one struct; raises them together at the end."""

    def __init__(self, owner: str, code: ErrorCode) -> None:
        self._code = code
        self._report = ValidationReport(owner)

    def add(
        self,
        message: str | None,
        *,
        code: ErrorCode | None = None,
        notes: Sequence[str] = (),
        help_text: str | None = None,
    ) -> bool:
        """Record ``message`` when it is not ``None``; True when the value was fine."""
        if message is None:
            return True
        self._report.add(
            ConfigurationError(
                message=message,
                code=code or self._code,
                notes=list(notes),
                help_text=help_text,
            )
        )
        return False

    def check_int(
        self,
        name: str,
        value: object,
        lo: int | None = None,
        hi: int | None = None,
        *,
        optional: bool = False,
        code: ErrorCode | None = None,
    ) -> bool:
        return self.add(int_problem(name, value, lo, hi, optional=optional), code=code)

    def check_bool(self, name: str, value: object, *, code: ErrorCode | None = None) -> bool:
        return self.add(bool_problem(name, value), code=code)

    def check_instance(
        self,
        name: str,
        value: object,
        cls: type[Any],
        *,
        optional: bool = False,
        code: ErrorCode | None = None,
    ) -> bool:
        if isinstance(value, cls) or (value is None and optional):
            return True
        expected = f"a {cls.__name__}" + (" or None" if optional else "")
        return self.add(f"{name} must be {expected} (got {type_name(value)})", code=code)

    def raise_if_any(self) -> None:
        raise_collected(self._report)
