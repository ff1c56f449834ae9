"""One cron field in context: domain checks, expansion to values, rendering.

A field (minute, hour, day of month, month, day of week) is a list of terms
OR-ed together. Here a term is checked against its field's domain, turned
into the set of values it selects, and rendered for ``summary()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from horsies.scheduler._problems import Problems, is_list
from horsies.scheduler.cron_terms import (
    CronEnumRange,
    CronEnumStep,
    CronEnumValues,
    CronEvery,
    CronRange,
    CronStep,
    CronValues,
)
from horsies.scheduler.days import Month, Weekday, month_number, weekday_number

__all__ = ["DAY_OF_MONTH", "DAY_OF_WEEK", "HOUR", "MINUTE", "MONTH", "CronField"]

_NUMERIC_TERMS: tuple[type[Any], ...] = (CronEvery, CronStep, CronValues, CronRange)
_ENUM_TERMS: tuple[type[Any], ...] = (CronEvery, CronEnumValues, CronEnumRange, CronEnumStep)


@dataclass(frozen=True, slots=True)
class CronField:
    """A field's name, its domain ``lo..hi`` and, for months and weekdays, its enum."""

    name: str
    lo: int
    hi: int
    enum: type[StrEnum] | None = None

    @property
    def span(self) -> int:
        """Largest value minus smallest: a larger step could only select ``lo``."""
        return self.hi - self.lo

    def number(self, member: StrEnum) -> int:
        if self.enum is Month:
            return month_number(Month(member))
        return weekday_number(Weekday(member))

    # -- validation ------------------------------------------------------------

    def check(self, problems: Problems, attr: str, terms: object) -> bool:
        """Add every problem of ``terms`` as this field; True when none."""
        before = problems.count
        where = problems.field(attr)
        if not is_list(terms):
            problems.add(self._invalid(f"must be a list of terms, got {type(terms).__name__}"),
                         notes=[f"in {where}"])
            return False
        items: Sequence[object] = list(terms)  # type: ignore[call-overload]
        if not items:
            problems.add(self._invalid("at least one term is required"), notes=[f"in {where}"])
        for index, term in enumerate(items):
            for why in self._term_problems(term):
                problems.add(self._invalid(why), notes=[f"in {where}[{index}]: {term!r}"])
        return problems.count == before

    def _invalid(self, why: str) -> str:
        return f"invalid cron '{self.name}' field: {why}"

    def _term_problems(self, term: object) -> list[str]:
        allowed = _ENUM_TERMS if self.enum is not None else _NUMERIC_TERMS
        if not isinstance(term, allowed):
            names = ", ".join(cls.__name__ for cls in allowed)
            return [f"a term must be one of {names}, got {type(term).__name__}"]
        if isinstance(term, (CronStep, CronEnumStep)):
            return self._step_problems(term.step)
        if isinstance(term, CronValues):
            return [p for v in term.values if (p := self._value_problem(v)) is not None]
        if isinstance(term, CronEnumValues):
            return [p for v in term.values if (p := self._member_problem(v)) is not None]
        if isinstance(term, CronRange):
            return self._range_problems(term.start, term.end, term.step)
        if isinstance(term, CronEnumRange):
            wrong = [p for v in (term.start, term.end) if (p := self._member_problem(v))]
            if wrong:
                return wrong
            return self._range_problems(
                self.number(term.start), self.number(term.end), term.step,
                shown=(term.start.value, term.end.value),
            )
        return []  # CronEvery

    def _value_problem(self, value: int) -> str | None:
        if self.lo <= value <= self.hi:
            return None
        return f"value {value} out of range {self.lo}-{self.hi}"

    def _member_problem(self, value: object) -> str | None:
        assert self.enum is not None
        if isinstance(value, self.enum):
            return None
        return f"value {str(value)!r} is not a {self.enum.__name__}"

    def _step_problems(self, step: int) -> list[str]:
        if step <= self.span:
            return []
        why = "it could only ever select the first value; use a values term"
        return [f"step {step} exceeds the field's span {self.span} ({why})"]

    def _range_problems(
        self, start: int, end: int, step: int, shown: tuple[str, str] | None = None
    ) -> list[str]:
        found = [p for v in (start, end) if (p := self._value_problem(v)) is not None]
        if found:
            return found
        if start > end:
            a, b = shown or (str(start), str(end))
            found.append(f"range start {a} is after end {b} (ranges never wrap; "
                         "write two terms)")
        return found + self._step_problems(step)

    # -- expansion and rendering ---------------------------------------------------

    def values(self, terms: Sequence[object]) -> frozenset[int]:
        """Every value the (valid) terms select."""
        selected: set[int] = set()
        for term in terms:
            selected.update(self._term_values(term))
        return frozenset(selected)

    def _term_values(self, term: object) -> range | list[int]:
        if isinstance(term, CronEvery):
            return range(self.lo, self.hi + 1)
        if isinstance(term, (CronStep, CronEnumStep)):
            return range(self.lo, self.hi + 1, term.step)
        if isinstance(term, CronValues):
            return list(term.values)
        if isinstance(term, CronEnumValues):
            return [self.number(v) for v in term.values]
        if isinstance(term, CronRange):
            return range(term.start, term.end + 1, term.step)
        if isinstance(term, CronEnumRange):
            return range(self.number(term.start), self.number(term.end) + 1, term.step)
        raise TypeError(f"not a cron term: {term!r}")

    def render(self, terms: Sequence[object]) -> str:
        """``*``, ``*/n``, ``a,b``, ``a-b``, ``a-b/n``; several terms joined by ``|``."""
        return "|".join(_render(term) for term in terms)


def _render(term: object) -> str:
    if isinstance(term, CronEvery):
        return "*"
    if isinstance(term, (CronStep, CronEnumStep)):
        return f"*/{term.step}"
    if isinstance(term, (CronValues, CronEnumValues)):
        return ",".join(str(v) for v in term.values)
    if isinstance(term, (CronRange, CronEnumRange)):
        text = f"{term.start}-{term.end}"
        return text if term.step == 1 else f"{text}/{term.step}"
    return repr(term)


MINUTE = CronField("minute", 0, 59)
HOUR = CronField("hour", 0, 23)
DAY_OF_MONTH = CronField("day_of_month", 1, 31)
MONTH = CronField("month", 1, 12, Month)
DAY_OF_WEEK = CronField("day_of_week", 0, 6, Weekday)
