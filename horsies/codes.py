"""Built-in task error codes (the four families) and the error-code format rule."""

from __future__ import annotations

import re
from enum import Enum
from typing import Final, TypeAlias

__all__ = [
    "OperationalErrorCode",
    "ContractCode",
    "RetrievalCode",
    "OutcomeCode",
    "BuiltInTaskCode",
    "BUILTIN_CODE_FAMILIES",
    "BUILTIN_CODE_REGISTRY",
    "ATTEMPT_CODES",
    "builtin_code_family",
    "error_code_problem",
]


class _CodeEnum(str, Enum):
    """A str enum whose value is its name; str() and format() give the value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


class OperationalErrorCode(_CodeEnum):
    """Something broke while running or fetching a task."""

    UNHANDLED_EXCEPTION = "UNHANDLED_EXCEPTION"
    TASK_EXCEPTION = "TASK_EXCEPTION"
    WORKER_CRASHED = "WORKER_CRASHED"
    BROKER_ERROR = "BROKER_ERROR"
    WORKER_RESOLUTION_ERROR = "WORKER_RESOLUTION_ERROR"
    WORKER_SERIALIZATION_ERROR = "WORKER_SERIALIZATION_ERROR"
    RESULT_DESERIALIZATION_ERROR = "RESULT_DESERIALIZATION_ERROR"
    WORKFLOW_ENQUEUE_FAILED = "WORKFLOW_ENQUEUE_FAILED"
    SUBWORKFLOW_LOAD_FAILED = "SUBWORKFLOW_LOAD_FAILED"
    CONDITION_EVALUATION_ERROR = "CONDITION_EVALUATION_ERROR"


class ContractCode(_CodeEnum):
    """A typing or usage contract was violated."""

    RETURN_TYPE_MISMATCH = "RETURN_TYPE_MISMATCH"
    PYDANTIC_HYDRATION_ERROR = "PYDANTIC_HYDRATION_ERROR"
    WORKFLOW_CTX_MISSING_ID = "WORKFLOW_CTX_MISSING_ID"


class RetrievalCode(_CodeEnum):
    """The value cannot be had right now."""

    WAIT_TIMEOUT = "WAIT_TIMEOUT"
    TASK_NOT_FOUND = "TASK_NOT_FOUND"
    WORKFLOW_NOT_FOUND = "WORKFLOW_NOT_FOUND"
    RESULT_NOT_AVAILABLE = "RESULT_NOT_AVAILABLE"
    RESULT_NOT_READY = "RESULT_NOT_READY"


class OutcomeCode(_CodeEnum):
    """A terminal outcome, not a bug."""

    TASK_CANCELLED = "TASK_CANCELLED"
    TASK_EXPIRED = "TASK_EXPIRED"
    WORKFLOW_PAUSED = "WORKFLOW_PAUSED"
    WORKFLOW_FAILED = "WORKFLOW_FAILED"
    WORKFLOW_CANCELLED = "WORKFLOW_CANCELLED"
    UPSTREAM_SKIPPED = "UPSTREAM_SKIPPED"
    CONDITION_SKIPPED = "CONDITION_SKIPPED"
    CONDITION_NOT_MET = "CONDITION_NOT_MET"
    SUBWORKFLOW_FAILED = "SUBWORKFLOW_FAILED"
    WORKFLOW_SUCCESS_CASE_NOT_MET = "WORKFLOW_SUCCESS_CASE_NOT_MET"


BuiltInTaskCode: TypeAlias = OperationalErrorCode | ContractCode | RetrievalCode | OutcomeCode

BUILTIN_CODE_FAMILIES: Final[tuple[type[_CodeEnum], ...]] = (
    OperationalErrorCode,
    ContractCode,
    RetrievalCode,
    OutcomeCode,
)


def _build_registry() -> dict[str, BuiltInTaskCode]:
    registry: dict[str, BuiltInTaskCode] = {}
    for family in BUILTIN_CODE_FAMILIES:
        for member in family:
            if member.value in registry:  # pragma: no cover - guarded by tests
                raise RuntimeError(f"built-in code {member.value!r} is in two families")
            registry[member.value] = member  # type: ignore[assignment]
    return registry


BUILTIN_CODE_REGISTRY: Final[dict[str, BuiltInTaskCode]] = _build_registry()
"""Every reserved built-in code string mapped to its enum member."""

# Codes that can describe an execution attempt (and so can trigger an automatic
# retry when listed in RetryPolicy.auto_retry_for).
ATTEMPT_CODES: Final[frozenset[BuiltInTaskCode]] = frozenset(
    {
        OperationalErrorCode.UNHANDLED_EXCEPTION,
        OperationalErrorCode.TASK_EXCEPTION,
        OperationalErrorCode.WORKER_CRASHED,
        OperationalErrorCode.WORKER_RESOLUTION_ERROR,
        OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
        ContractCode.RETURN_TYPE_MISMATCH,
        ContractCode.WORKFLOW_CTX_MISSING_ID,
    }
)


def builtin_code_family(member: BuiltInTaskCode) -> str:
    """`Family.NAME` of a built-in member, as used in error messages."""
    return f"{type(member).__name__}.{member.name}"


_CODE_RE: Final = re.compile(r"^[A-Z][A-Z0-9_]*$")
_CLASS_NAME_RE: Final = re.compile(r"^[A-Z][A-Za-z0-9_]*(Error|Exception)$")


def error_code_problem(value: object) -> str | None:
    """Why `value` is not a valid error-code string, or None when it is valid.

    A valid code is a non-empty str matching ``^[A-Z][A-Z0-9_]*$`` that does
    not look like an exception class name.
    """
    if not isinstance(value, str):
        return f"error code must be a string, got {type(value).__name__}"
    if isinstance(value, Enum):
        value = str(value.value)
    if not value:
        return "error code must not be empty"
    if _CLASS_NAME_RE.fullmatch(value) and not _CODE_RE.fullmatch(value):
        return (
            f"error code {value!r} looks like an exception class name; "
            "error codes (for example 'TIMEOUT_ERROR'), not class names, are expected"
        )
    if not _CODE_RE.fullmatch(value):
        return (
            f"error code {value!r} is invalid: it must match ^[A-Z][A-Z0-9_]*$ "
            "(upper-case letters, digits and underscores, starting with a letter)"
        )
    return None
