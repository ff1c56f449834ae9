"""`TaskResult`, the outcome of a task, and its error types `TaskError` / `SubWorkflowError`."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any, Final, Generic, TypeAlias, TypeVar, overload

import msgspec
from msgspec.structs import force_setattr

from horsies.codes import BUILTIN_CODE_REGISTRY, BuiltInTaskCode, builtin_code_family

if TYPE_CHECKING:
    _ErrorCodeField: TypeAlias = BuiltInTaskCode | str | None
    _ExceptionField: TypeAlias = dict[str, Any] | BaseException | None
else:
    # At run time the fields are typed Any so that msgspec can decode and
    # convert stored errors (a union of several str enums, or an exception
    # class, is not a msgspec type); __post_init__ does the validation.
    _ErrorCodeField = Any
    _ExceptionField = Any

__all__ = ["TaskResult", "TaskError", "SubWorkflowError", "BUILTIN_CODE_KEY"]

T = TypeVar("T")
E = TypeVar("E")

BUILTIN_CODE_KEY: Final = "__builtin_task_code__"
"""Key of the stored form of a built-in code: `{"__builtin_task_code__": "<NAME>"}`."""


def _normalize_error_code(value: object) -> BuiltInTaskCode | str | None:
    """Apply the construction rules of `TaskError.error_code`; raise ValueError on misuse."""
    if value is None:
        return None
    if isinstance(value, Enum):
        member = BUILTIN_CODE_REGISTRY.get(value.value) if isinstance(value.value, str) else None
        if member is not None and member is value:
            return member
        if isinstance(value, str):
            raise ValueError(
                f"error_code {value!r} is a member of the enum {type(value).__name__}; "
                "user error codes must be plain strings (use .value)"
            )
        raise ValueError(
            f"error_code must be a built-in code, a plain string or None, "
            f"got {type(value).__name__}"
        )
    if isinstance(value, str):
        reserved = BUILTIN_CODE_REGISTRY.get(value)
        if reserved is not None:
            raise ValueError(
                f"'{value}' is a reserved built-in error code "
                f"({builtin_code_family(reserved)}). Pass the enum member directly."
            )
        return value
    if isinstance(value, dict):
        if BUILTIN_CODE_KEY not in value:
            raise ValueError(
                f"error_code dict must have the key {BUILTIN_CODE_KEY!r}, got keys {sorted(map(str, value))}"
            )
        name = value[BUILTIN_CODE_KEY]
        if not isinstance(name, str):
            raise ValueError(
                f"error_code {BUILTIN_CODE_KEY!r} must be a string, got {type(name).__name__}"
            )
        member = BUILTIN_CODE_REGISTRY.get(name)
        if member is None:
            raise ValueError(f"unknown built-in error code {name!r}")
        return member
    raise ValueError(
        f"error_code must be a built-in code, a plain string or None, got {type(value).__name__}"
    )


class TaskError(msgspec.Struct, kw_only=True, frozen=True):
    """The error of a failed task: a code, a message, extra data and the exception, if any."""

    error_code: _ErrorCodeField = None
    message: str | None = None
    data: Any = None
    exception: _ExceptionField = None

    def __post_init__(self) -> None:
        code = self.error_code
        normalized = _normalize_error_code(code)
        if normalized is not code:
            force_setattr(self, "error_code", normalized)


class SubWorkflowError(TaskError, kw_only=True, frozen=True):
    """The error of a workflow node whose child workflow failed."""

    sub_workflow_id: str
    sub_workflow_summary: Any


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()


class TaskResult(Generic[T, E]):
    """Exactly one of a success value (which may be None) or an error."""

    __slots__ = ("_is_ok", "_value")

    _is_ok: bool
    _value: Any

    @overload
    def __init__(self, *, ok: T) -> None: ...

    @overload
    def __init__(self, *, err: E) -> None: ...

    def __init__(self, *, ok: Any = _UNSET, err: Any = _UNSET) -> None:
        has_ok = ok is not _UNSET
        has_err = err is not _UNSET
        if has_ok and has_err:
            raise ValueError("TaskResult cannot have both ok and err")
        if not has_ok and not has_err:
            raise ValueError("TaskResult must have exactly one of ok / err")
        object.__setattr__(self, "_is_ok", has_ok)
        object.__setattr__(self, "_value", ok if has_ok else err)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"TaskResult is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"TaskResult is immutable (cannot delete {name!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_task_result, (self._is_ok, self._value))

    def is_ok(self) -> bool:
        return self._is_ok

    def is_err(self) -> bool:
        return not self._is_ok

    @property
    def ok(self) -> T | None:
        """The success value, or None for a failure; never raises."""
        return self._value if self._is_ok else None  # type: ignore[no-any-return]

    @property
    def err(self) -> E | None:
        """The error, or None for a success; never raises."""
        return None if self._is_ok else self._value  # type: ignore[no-any-return]

    @property
    def ok_value(self) -> T:
        if not self._is_ok:
            raise ValueError("Result is not ok - check is_ok() first")
        return self._value  # type: ignore[no-any-return]

    @property
    def err_value(self) -> E:
        if self._is_ok:
            raise ValueError("Result is not error - check is_err() first")
        return self._value  # type: ignore[no-any-return]

    def unwrap(self) -> T:
        return self.ok_value

    def unwrap_err(self) -> E:
        return self.err_value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskResult):
            return NotImplemented
        return self._is_ok == other._is_ok and bool(self._value == other._value)

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash((TaskResult, self._is_ok, self._value))

    def __repr__(self) -> str:
        return f"TaskResult({'ok' if self._is_ok else 'err'}={self._value!r})"


def _rebuild_task_result(is_ok: bool, value: Any) -> TaskResult[Any, Any]:
    return TaskResult(ok=value) if is_ok else TaskResult(err=value)
