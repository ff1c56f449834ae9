"""Seeded builders of realistic inputs for the hot paths.

The benchmarks time these inputs, and tests/speedups checks that both twins
agree on them, so what is measured is also what is verified. Every builder
is deterministic for a given size and seed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import random
import uuid
from decimal import Decimal
from enum import Enum
from typing import Any

import msgspec

__all__ = [
    "SIZES",
    "load_twin",
    "Currency",
    "LineItem",
    "Point",
    "resolve_class",
    "make_codec",
    "budget_cases",
    "plan_case",
    "order_case",
    "readiness_rows",
    "readiness_columns",
    "json_rows",
    "typed_rows",
]

SIZES = [10, 1_000]
"""Sizes every hot-path benchmark runs at: number of calls, queues or rows."""


class Currency(Enum):
    CHF = "CHF"
    EUR = "EUR"
    USD = "USD"


@dataclasses.dataclass
class LineItem:
    sku: str
    qty: int
    unit_price: Decimal


class Point(msgspec.Struct):
    x: float
    y: float


def load_twin(name: str, impl: str) -> Any:
    """``horsies._speedups.<name>_<impl>``, bypassing the selector.

    A missing compiled twin raises NotImplementedError, which asv records as
    a skipped benchmark rather than a failure.
    """
    try:
        return importlib.import_module(f"horsies._speedups.{name}_{impl}")
    except ImportError as exc:
        if impl == "c":
            raise NotImplementedError(f"compiled twin {name}_c is not built: {exc}") from exc
        raise


def resolve_class(module: str, qualname: str) -> object:
    """A plain resolver for the codec twins (horsies.codec adds its cache and messages)."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def make_codec(module: Any) -> Any:
    """A `Codec` of the twin `module` (codec_c or codec_py) wired to horsies' types."""
    from horsies.codes import BUILTIN_CODE_REGISTRY
    from horsies.task_result import SubWorkflowError, TaskError, TaskResult

    return module.Codec(
        resolve_class, TaskResult, TaskError, SubWorkflowError, BUILTIN_CODE_REGISTRY
    )


# --- claim planning -----------------------------------------------------------------


def budget_cases(size: int, seed: int = 11) -> list[tuple[Any, ...]]:
    """`size` argument tuples for compute_pass_budget, as a busy worker would pass them."""
    rnd = random.Random(seed)
    cases = []
    for _ in range(size):
        processes = rnd.randint(1, 64)
        prefetch = rnd.choice([0, 0, rnd.randint(1, 16)])
        per_worker = rnd.choice([0, 0, rnd.randint(1, 96)])
        cap = rnd.choice([None, None, rnd.randint(1, 2_000)])
        running = rnd.randint(0, processes)
        claimed = rnd.randint(0, processes + prefetch)
        in_flight = rnd.randint(0, 2_500)
        cases.append((processes, prefetch, per_worker, cap, running, claimed, in_flight))
    return cases


def plan_case(size: int, seed: int = 13) -> tuple[int, int, list[tuple[int | None, int, int]]]:
    """(budget, max_claim_batch, queues) for plan_pass with `size` queues."""
    rnd = random.Random(seed)
    queues = []
    for _ in range(size):
        cap = rnd.choice([None, rnd.randint(1, 50)])
        in_flight = rnd.randint(0, 60)
        available = rnd.choice([0, rnd.randint(1, 500)])
        queues.append((cap, in_flight, available))
    return rnd.randint(size // 2, size * 4), rnd.randint(1, 32), queues


def order_case(size: int, seed: int = 17) -> tuple[list[str], dict[str, int]]:
    """(names, priorities) for order_queues with `size` queues in CUSTOM mode."""
    rnd = random.Random(seed)
    names = [f"queue-{i}" for i in range(size)]
    return names, {name: rnd.randint(1, 100) for name in names}


# --- workflow readiness ---------------------------------------------------------------


def readiness_rows(size: int, seed: int = 29) -> list[tuple[int, ...]]:
    """`size` argument tuples for evaluate_readiness, as the engine passes them.

    Mostly join "all" over a few dependencies, some any/quorum joins and wide
    fan-ins, dependencies in every stage of finishing, a context gate on a few.
    """
    rnd = random.Random(seed)
    rows = []
    for _ in range(size):
        join = rnd.choices((0, 1, 2), weights=(7, 2, 1))[0]
        total = rnd.choice((1, 2, 3, 4, 6, 8, rnd.randint(10, 200)))
        min_success = rnd.randint(1, total) if join == 2 else 0
        finished = rnd.randint(0, total)
        failed = rnd.choice((0, 0, 0, rnd.randint(0, finished)))
        skipped = rnd.choice((0, 0, 0, 0, rnd.randint(0, finished - failed)))
        completed = finished - failed - skipped
        ctx_pending = rnd.choice((0, 0, 0, rnd.randint(0, total - finished)))
        allow = rnd.random() < 0.2
        rows.append((join, min_success, allow, total, completed, failed, skipped, ctx_pending))
    return rows


def readiness_columns(size: int, seed: int = 29) -> list[list[int]]:
    """The rows of `readiness_rows` as the eight columns of evaluate_readiness_many."""
    rows = readiness_rows(size, seed)
    return [[int(row[k]) for row in rows] for k in range(8)]


# --- codec ----------------------------------------------------------------------------


def json_rows(size: int, seed: int = 19) -> list[dict[str, Any]]:
    """`size` rows of plain JSON types, the common shape of task arguments."""
    rnd = random.Random(seed)
    return [
        {
            "id": i,
            "name": f"item-{i}-{'é' if i % 7 == 0 else 'e'}",
            "price": round(rnd.uniform(0, 1_000), 2),
            "tags": ["a", "b", str(rnd.randint(0, 9))],
            "active": rnd.random() < 0.5,
            "note": None,
            "dims": {"w": rnd.randint(1, 100), "h": rnd.randint(1, 100)},
        }
        for i in range(size)
    ]


def typed_rows(size: int, seed: int = 23) -> list[dict[str, Any]]:
    """`size` rows holding tagged types: UUID, datetime, Decimal, enum, dataclass, Struct."""
    rnd = random.Random(seed)
    base = dt.datetime(2031, 3, 9, 17, 45, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    currencies = list(Currency)
    return [
        {
            "id": uuid.UUID(int=rnd.getrandbits(128)),
            "at": base + dt.timedelta(seconds=rnd.randint(0, 10**6)),
            "day": dt.date(2031, 1, 1) + dt.timedelta(days=rnd.randint(0, 365)),
            "amount": Decimal(rnd.randint(0, 10**6)) / 100,
            "currency": currencies[rnd.randrange(len(currencies))],
            "line": LineItem(f"K-{i}", rnd.randint(1, 9), Decimal("19.90")),
            "where": Point(rnd.random(), rnd.random()),
            "wait": dt.timedelta(seconds=rnd.randint(0, 3_600)),
        }
        for i in range(size)
    ]
