"""Shared types, constants and error builders of the compiled hot paths.

Both twins of every pair import from here, so that they raise the same
exception types with the same messages. Everything in this module runs only
on error paths or at import time; nothing here is hot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

if TYPE_CHECKING:
    from array import array

__all__ = [
    "Json",
    "QueueState",
    "INT_MAX",
    "DEPTH_LIMIT",
    "MARKER_KEYS",
    "RESERVED_PREFIX",
    "SerializationError",
    "ResolveClass",
    "int_type_error",
    "int_range_error",
    "render_segment",
    "quote_key",
    "safe_str",
    "safe_repr",
    "foreign_error",
    "Join",
    "Readiness",
    "IntColumn",
    "INT_FORMATS",
    "READINESS_ARGS",
    "flag_type_error",
    "unknown_join_error",
    "counts_range_error",
    "overfull_error",
    "column_type_error",
    "column_format_error",
    "column_shape_error",
    "length_error",
    "row_error",
    "BudgetModule",
    "ClaimPlanModule",
    "CodecType",
    "CodecModule",
    "DagReadyModule",
]

Json: TypeAlias = "None | bool | int | float | str | list[Json] | dict[str, Json]"
"""A value made only of JSON types."""

QueueState: TypeAlias = "tuple[int | None, int, int]"
"""One queue of a claim pass: (queue_max_concurrency, queue_in_flight, available)."""

# --- claim planning -------------------------------------------------------------

INT_MAX: Final = 2**31 - 1
"""Largest value of every integer argument of the claim planning functions."""


def int_type_error(name: str, value: object) -> TypeError:
    """The TypeError of a claim-planning argument that is not an int (bool included)."""
    return TypeError(f"{name} must be an int, got {type(value).__name__}")


def int_range_error(name: str, value: object) -> ValueError:
    """The ValueError of a claim-planning argument outside 0 .. 2**31 - 1."""
    return ValueError(f"{name} must be between 0 and {INT_MAX}, got {value}")


# --- workflow readiness (workflows.md §16.4) ------------------------------------


class Join(IntEnum):
    """How a workflow node combines its dependencies (the `join` of a node)."""

    ALL = 0
    ANY = 1
    QUORUM = 2


class Readiness(IntEnum):
    """What happens to a PENDING node, as decided by `evaluate_readiness`."""

    WAIT = 0  # stay PENDING
    RUN = 1  # PENDING -> READY -> enqueue (or start the child)
    SKIP_IMPOSSIBLE = 2  # PENDING -> SKIPPED: the any/quorum threshold can no longer be met
    SKIP_UPSTREAM = 3  # PENDING -> SKIPPED: join "all" saw a FAILED/SKIPPED dependency


IntColumn: TypeAlias = "Sequence[int] | array[int] | memoryview | bytes | bytearray"
"""One argument of `evaluate_readiness_many`: a list or tuple of ints, or an
object exposing the buffer protocol with a C integer format (array('q'), ...)."""

READINESS_ARGS: Final = (
    "join",
    "min_success",
    "allow_failed_deps",
    "total",
    "completed",
    "failed",
    "skipped",
    "ctx_pending",
)
"""The arguments of both readiness functions, in order (error messages name them)."""

INT_FORMATS: Final = frozenset(prefix + code for prefix in ("", "@") for code in "bBhHiIlLqQnN")
"""Buffer formats `evaluate_readiness_many` reads: the native C integer types."""


def flag_type_error(name: str, value: object) -> TypeError:
    """The TypeError of an `allow_failed_deps` that is neither a bool nor an int."""
    return TypeError(f"{name} must be a bool or an int, got {type(value).__name__}")


def unknown_join_error(join: int) -> ValueError:
    return ValueError(f"unknown join {join}: expected 0 (all), 1 (any) or 2 (quorum)")


def counts_range_error() -> ValueError:
    return ValueError(
        "counts out of range: total must be at least 1, and min_success, completed, "
        "failed, skipped and ctx_pending at least 0"
    )


def overfull_error(total: int, completed: int, failed: int, skipped: int) -> ValueError:
    return ValueError(
        "more finished dependencies than dependencies: "
        f"{completed} completed + {failed} failed + {skipped} skipped > {total} total"
    )


def column_type_error(name: str, value: object) -> TypeError:
    return TypeError(
        f"{name} must be a list, a tuple or a buffer of C integers, got {type(value).__name__}"
    )


def column_format_error(name: str, fmt: str) -> TypeError:
    return TypeError(f"{name} must be a buffer of C integers, got format {fmt!r}")


def column_shape_error(name: str, ndim: int) -> TypeError:
    return TypeError(f"{name} must be one-dimensional, got {ndim} dimensions")


def length_error(name: str, length: int, expected: int) -> ValueError:
    return ValueError(f"{name} has {length} items, join has {expected}")


def row_error(index: int, error: ValueError) -> ValueError:
    """A ValueError of one row of `evaluate_readiness_many`, naming the row."""
    return ValueError(f"row {index}: {error}")


# --- codec ----------------------------------------------------------------------

DEPTH_LIMIT: Final = 254
"""Deepest nesting of JSON arrays and objects the codec writes or reads.

orjson refuses to write deeper documents; reading is held to the same limit
so that neither twin can run out of stack on hostile input.
"""

MARKER_KEYS: Final = frozenset(
    {
        "__task_result__",
        "__task_error__",
        "__builtin_task_code__",
        "__datetime__",
        "__date__",
        "__time__",
        "__timedelta__",
        "__uuid__",
        "__decimal__",
        "__enum__",
        "__dataclass__",
        "__msgspec_struct__",
        "__pydantic_model__",
    }
)
"""Keys that mark a tagged form; refused in user mappings (serialization.md §5.1)."""

RESERVED_PREFIX: Final = "__horsies"
"""Keys with this prefix are reserved for values the workflow engine injects."""

ResolveClass: TypeAlias = Callable[[str, str], object]
"""Find the object named `qualname` in module `module`, or raise SerializationError."""


class SerializationError(Exception):
    """The error of every codec failure: what was wrong and where.

    The message reads ``<problem> at <path><hint>``, for example
    ``Cannot serialize value of type set at kwargs["order"].tags``. `path` is
    None when the failure is not tied to a position (invalid JSON text).
    """

    problem: str
    hint: str
    path: str | None

    def __init__(self, problem: str, hint: str = "", path: str | None = None) -> None:
        self.problem = problem
        self.hint = hint
        self.path = path
        # Location segments gathered innermost first while the error unwinds
        # through the containers of the value; see `locate`.
        self._trail: list[object] = []
        super().__init__(self._render())

    def _render(self) -> str:
        where = "" if self.path is None else f" at {self.path}"
        return f"{self.problem}{where}{self.hint}"

    def add_segment(self, segment: object) -> None:
        """Record the position of the failing value inside the current container."""
        self._trail.append(segment)

    def locate(self, root: str) -> SerializationError:
        """Fix the path from `root` and the gathered segments; return self."""
        if self.path is None:
            self.path = root + "".join(render_segment(s) for s in reversed(self._trail))
            self._trail.clear()
            self.args = (self._render(),)
        return self


def quote_key(key: str) -> str:
    """A mapping key as written in a path: double-quoted, as in ``kwargs["rows"]``."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        return f"<{type(value).__name__} object>"


def safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not hide the real error
        return f"<unprintable {type(value).__name__}>"


def render_segment(segment: object) -> str:
    """One path segment: an int is a sequence index, a str an attribute
    (already written as ``.name``), a 1-tuple a mapping key."""
    if type(segment) is int:
        return f"[{segment}]"
    if type(segment) is str:
        return segment
    key = segment[0]  # type: ignore[index]
    if isinstance(key, str):
        return f"[{quote_key(key)}]"
    return f"[{safe_repr(key)}]"


def foreign_error(action: str, value: object, exc: BaseException) -> SerializationError:
    """Wrap an exception raised by user code (or anything unexpected) while
    `action` ("serializing" / "deserializing") `value`."""
    return SerializationError(
        f"Error while {action} value of type {type(value).__name__}",
        f": {type(exc).__name__}: {safe_str(exc)}",
    )


# --- module protocols (mypy checks the _py twins against these) -----------------


class BudgetModule(Protocol):
    def effective_max_claimed(
        self, processes: int, prefetch_buffer: int, max_claim_per_worker: int
    ) -> int: ...

    def compute_pass_budget(
        self,
        processes: int,
        prefetch_buffer: int,
        max_claim_per_worker: int,
        cluster_wide_cap: int | None,
        local_running: int,
        local_claimed: int,
        global_in_flight: int,
    ) -> int: ...


class ClaimPlanModule(Protocol):
    def queue_claim_limit(
        self,
        remaining: int,
        max_claim_batch: int,
        queue_max_concurrency: int | None,
        queue_in_flight: int,
    ) -> int: ...

    def order_queues(
        self, names: Sequence[str], priorities: Mapping[str, int] | None
    ) -> list[str]: ...

    def plan_pass(
        self, budget: int, max_claim_batch: int, queues: Sequence[QueueState]
    ) -> list[int]: ...


class CodecType(Protocol):
    """The recursive walk of the codec (value <-> JSON tree); see codec_py.Codec."""

    def __init__(
        self,
        resolve_class: ResolveClass,
        task_result_type: type,
        task_error_type: type,
        sub_workflow_error_type: type,
        builtin_codes: Mapping[str, Enum],
    ) -> None: ...

    def encode(self, value: Any, path: str = ...) -> Json: ...

    def encode_args(self, args: Sequence[Any]) -> list[Json]: ...

    def encode_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Json]: ...

    def decode(self, value: Json, path: str = ...) -> Any: ...

    def decode_args(self, items: list[Json]) -> list[Any]: ...

    def decode_kwargs(self, items: dict[str, Json]) -> dict[str, Any]: ...

    def clear_caches(self) -> None: ...


class CodecModule(Protocol):
    @property
    def Codec(
        self,
    ) -> Callable[[ResolveClass, type, type, type, Mapping[str, Enum]], CodecType]: ...


class DagReadyModule(Protocol):
    @property
    def Join(self) -> type[Join]: ...

    @property
    def Readiness(self) -> type[Readiness]: ...

    def evaluate_readiness(
        self,
        join: int,
        min_success: int,
        allow_failed_deps: bool,
        total: int,
        completed: int,
        failed: int,
        skipped: int,
        ctx_pending: int,
    ) -> int: ...

    def evaluate_readiness_many(
        self,
        join: IntColumn,
        min_success: IntColumn,
        allow_failed_deps: IntColumn,
        total: IntColumn,
        completed: IntColumn,
        failed: IntColumn,
        skipped: IntColumn,
        ctx_pending: IntColumn,
    ) -> list[int]: ...
