"""Cron field terms (scheduling.md §5.7): what one term of a field selects.

Terms check only what they can know alone (types, ``step >= 1``, non-empty
value lists, one enum per term); the field they sit in checks domains and
spans (:mod:`horsies.scheduler.cron_fields`). Each is tagged by ``kind``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeAlias, TypeVar

import msgspec
import msgspec.structs

from horsies.scheduler._problems import Problems, is_int, is_list
from horsies.scheduler.days import Month, Weekday

__all__ = [
    "CronEnumRange",
    "CronEnumStep",
    "CronEnumValues",
    "CronEvery",
    "CronMonthTerm",
    "CronNumericTerm",
    "CronRange",
    "CronStep",
    "CronValues",
    "CronWeekdayTerm",
    "E",
]

E = TypeVar("E", Weekday, Month)


class CronEvery(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind", tag="every"):
    """Every value of the field's domain."""


class CronStep(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind", tag="step"):
    """``lo, lo+step, …`` up to the domain end (``lo`` is 0, or 1 for days of the month)."""

    step: int

    def __post_init__(self) -> None:
        problems = Problems("CronStep")
        problems.int_at_least("step", self.step, 1)
        problems.raise_if_any()


class CronValues(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind", tag="values"):
    """Exactly these values."""

    values: list[int]

    def __post_init__(self) -> None:
        problems = Problems("CronValues")
        if _int_list(problems, "values", self.values):
            msgspec.structs.force_setattr(self, "values", list(self.values))
        problems.raise_if_any()


class CronRange(msgspec.Struct, kw_only=True, frozen=True, tag_field="kind", tag="range"):
    """``start, start+step, …`` while ``<= end``."""

    start: int
    end: int
    step: int = 1

    def __post_init__(self) -> None:
        problems = Problems("CronRange")
        for name in ("start", "end"):
            value = getattr(self, name)
            if not is_int(value):
                problems.add(f"CronRange.{name} must be an int, got "
                             f"{type(value).__name__} {value!r}")
        problems.int_at_least("step", self.step, 1)
        problems.raise_if_any()


class CronEnumValues(
    msgspec.Struct, Generic[E], kw_only=True, frozen=True, tag_field="kind", tag="enum_values"
):
    """Exactly these months or weekdays."""

    values: list[E]

    def __post_init__(self) -> None:
        problems = Problems("CronEnumValues")
        if not is_list(self.values):
            problems.add(f"CronEnumValues.values must be a list of Weekday or Month, "
                         f"got {type(self.values).__name__}")
        elif not self.values:
            problems.add("CronEnumValues.values must not be empty")
        else:
            msgspec.structs.force_setattr(self, "values", list(self.values))
            _one_enum(problems, "values", self.values)
        problems.raise_if_any()


class CronEnumRange(
    msgspec.Struct, Generic[E], kw_only=True, frozen=True, tag_field="kind", tag="enum_range"
):
    """``start, start+step, …`` while ``<= end``, in canonical order."""

    start: E
    end: E
    step: int = 1

    def __post_init__(self) -> None:
        problems = Problems("CronEnumRange")
        _one_enum(problems, "start/end", [self.start, self.end])
        problems.int_at_least("step", self.step, 1)
        problems.raise_if_any()


class CronEnumStep(
    msgspec.Struct, Generic[E], kw_only=True, frozen=True, tag_field="kind", tag="enum_step"
):
    """Every ``step``-th member, anchored at the first (January or Monday)."""

    step: int

    def __post_init__(self) -> None:
        problems = Problems("CronEnumStep")
        problems.int_at_least("step", self.step, 1)
        problems.raise_if_any()


CronNumericTerm: TypeAlias = CronEvery | CronStep | CronValues | CronRange
CronMonthTerm: TypeAlias = (
    CronEvery | CronEnumValues[Month] | CronEnumRange[Month] | CronEnumStep[Month]
)
CronWeekdayTerm: TypeAlias = (
    CronEvery | CronEnumValues[Weekday] | CronEnumRange[Weekday] | CronEnumStep[Weekday]
)


def _int_list(problems: Problems, name: str, value: object) -> bool:
    if not is_list(value):
        problems.add(f"{problems.field(name)} must be a list of int, got {type(value).__name__}")
        return False
    items = list(value)  # type: ignore[call-overload]
    if not items:
        problems.add(f"{problems.field(name)} must not be empty")
        return False
    bad = [(i, v) for i, v in enumerate(items) if not is_int(v)]
    for index, item in bad:
        problems.add(f"{problems.field(name)}[{index}] must be an int, "
                     f"got {type(item).__name__} {item!r}")
    return not bad


def _one_enum(problems: Problems, name: str, items: Sequence[object]) -> None:
    """Every item is a Weekday, or every item is a Month."""
    kinds = {type(item) for item in items}
    if not kinds <= {Weekday, Month}:
        shown = ", ".join(sorted(k.__name__ for k in kinds - {Weekday, Month}))
        problems.add(f"{problems.field(name)} must hold Weekday or Month members, got {shown}")
    elif len(kinds) > 1:
        problems.add(f"{problems.field(name)} mixes Weekday and Month members")
