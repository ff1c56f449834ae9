"""Startup errors: the `HorsiesError` family, every `HRS-…` code, and their rendering.

Mistakes in configuration, task definitions, registration and workflow
definitions raise these so that a misconfigured application refuses to start.
Run-time failures are values (`Result`, `TaskResult`), never these.
"""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from types import FrameType
from typing import Any, ClassVar, Final, TypeVar

from horsies.codes import BUILTIN_CODE_REGISTRY

__all__ = [
    "ErrorCode",
    "SourceLocation",
    "HorsiesError",
    "ConfigurationError",
    "TaskDefinitionError",
    "RegistryError",
    "NotRegistered",
    "DuplicateTaskNameError",
    "WorkflowValidationError",
    "ValidationReport",
    "MultipleValidationErrors",
    "raise_collected",
    "should_use_colors",
    "is_user_file",
    "find_user_frame",
    "BUILTIN_CODE_REGISTRY",
]


class ErrorCode(str, Enum):
    """Codes of startup errors; values are the `HRS-…` strings."""

    # HRS-001 – HRS-099: workflow validation
    WORKFLOW_NO_NAME = "HRS-001"
    WORKFLOW_NO_NODES = "HRS-002"
    WORKFLOW_INVALID_NODE_ID = "HRS-003"
    WORKFLOW_DUPLICATE_NODE_ID = "HRS-004"
    WORKFLOW_NO_ROOT_TASKS = "HRS-005"
    WORKFLOW_INVALID_DEPENDENCY = "HRS-006"
    WORKFLOW_CYCLE_DETECTED = "HRS-007"
    WORKFLOW_INVALID_ARGS_FROM = "HRS-008"
    WORKFLOW_INVALID_CTX_FROM = "HRS-009"
    WORKFLOW_CTX_PARAM_MISSING = "HRS-010"
    WORKFLOW_INVALID_OUTPUT = "HRS-011"
    WORKFLOW_INVALID_SUCCESS_POLICY = "HRS-012"
    WORKFLOW_INVALID_JOIN = "HRS-013"
    WORKFLOW_UNRESOLVED_QUEUE = "HRS-014"
    WORKFLOW_UNRESOLVED_PRIORITY = "HRS-015"
    WORKFLOW_NO_DEFINITION_KEY = "HRS-016"
    WORKFLOW_DUPLICATE_DEFINITION_KEY = "HRS-017"
    WORKFLOW_SUBWORKFLOW_APP_MISSING = "HRS-018"
    WORKFLOW_INVALID_KWARG_KEY = "HRS-019"
    WORKFLOW_MISSING_REQUIRED_PARAMS = "HRS-020"
    WORKFLOW_KWARGS_ARGS_FROM_OVERLAP = "HRS-021"
    WORKFLOW_SUBWORKFLOW_PARAMS_REQUIRE_BUILD_WITH = "HRS-022"
    WORKFLOW_SUBWORKFLOW_BUILD_WITH_BINDING = "HRS-023"
    WORKFLOW_ARGS_FROM_TYPE_MISMATCH = "HRS-024"
    WORKFLOW_OUTPUT_TYPE_MISMATCH = "HRS-025"
    WORKFLOW_POSITIONAL_ARGS_NOT_SUPPORTED = "HRS-026"
    WORKFLOW_EXCESS_POSITIONAL_ARGS = "HRS-026"  # alias of the line above
    WORKFLOW_CHECK_CASES_REQUIRED = "HRS-027"
    WORKFLOW_CHECK_CASE_INVALID = "HRS-028"
    WORKFLOW_CHECK_BUILDER_EXCEPTION = "HRS-029"
    WORKFLOW_CHECK_UNDECORATED_BUILDER = "HRS-030"
    WORKFLOW_KWARGS_NOT_SERIALIZABLE = "HRS-031"

    # HRS-100 – HRS-199: task definition
    TASK_NO_RETURN_TYPE = "HRS-100"
    TASK_INVALID_RETURN_TYPE = "HRS-101"
    TASK_INVALID_OPTIONS = "HRS-102"
    TASK_INVALID_QUEUE = "HRS-103"
    TASK_PREDECORATED_NOT_SUPPORTED = "HRS-104"

    # HRS-200 – HRS-299: configuration, broker, CLI, check
    CONFIG_INVALID_QUEUE_MODE = "HRS-200"
    CONFIG_INVALID_CLUSTER_CAP = "HRS-201"
    CONFIG_INVALID_PREFETCH = "HRS-202"
    BROKER_INVALID_URL = "HRS-203"
    CONFIG_INVALID_RECOVERY = "HRS-204"
    CONFIG_INVALID_SCHEDULE = "HRS-205"
    CLI_INVALID_ARGS = "HRS-206"
    WORKER_INVALID_LOCATOR = "HRS-207"
    CONFIG_INVALID_RESILIENCE = "HRS-208"
    CONFIG_INVALID_EXCEPTION_MAPPER = "HRS-209"
    MODULE_EXEC_ERROR = "HRS-210"
    BROKER_INIT_FAILED = "HRS-211"
    CHECK_RESERVED_CODE_COLLISION = "HRS-212"
    CONFIG_INVALID_BROKER_POOL = "HRS-213"
    CONFIG_INVALID_CHILD_HOOK = "HRS-214"

    # HRS-300 – HRS-399: task registry
    TASK_NOT_REGISTERED = "HRS-300"
    TASK_DUPLICATE_NAME = "HRS-301"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


# ---------------------------------------------------------------------------
# Colours
# ---------------------------------------------------------------------------

_TRUTHY: Final = frozenset({"1", "true", "yes"})


def should_use_colors() -> bool:
    """Colour choice: HORSIES_FORCE_COLOR, then NO_COLOR, then whether stderr is a terminal."""
    if os.environ.get("HORSIES_FORCE_COLOR", "").strip().lower() in _TRUTHY:
        return True
    if os.environ.get("NO_COLOR") is not None:
        return False
    stream = sys.stderr
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _Palette:
    def __init__(self, enabled: bool) -> None:
        on = enabled
        self.reset = "\033[0m" if on else ""
        self.bold = "\033[1m" if on else ""
        self.red = "\033[91m" if on else ""
        self.blue = "\033[94m" if on else ""
        self.cyan = "\033[96m" if on else ""
        self.green = "\033[92m" if on else ""


# ---------------------------------------------------------------------------
# Source locations
# ---------------------------------------------------------------------------


@dataclass
class SourceLocation:
    """A place in a source file: `file:line[:column]`; columns are 0-based offsets."""

    file: str
    line: int
    column: int | None = None
    end_column: int | None = None

    @classmethod
    def from_frame(cls, frame: Any) -> SourceLocation:
        """From a frame object, an `inspect.FrameInfo` or a `traceback.FrameSummary`."""
        if isinstance(frame, FrameType):
            return cls(file=frame.f_code.co_filename, line=frame.f_lineno or 0)
        filename = getattr(frame, "filename", None)
        lineno = getattr(frame, "lineno", None)
        if isinstance(filename, str) and isinstance(lineno, int):
            return cls(file=filename, line=lineno)
        code = frame.f_code
        return cls(file=code.co_filename, line=frame.f_lineno)

    @classmethod
    def from_function(cls, fn: Any) -> SourceLocation | None:
        """The definition line of `fn` (its first decorator line), or None without code."""
        target = getattr(fn, "__func__", fn)  # bound method -> function
        # Objects wrapping a function (functools.wraps, task functions) point at it.
        for _ in range(16):
            if getattr(target, "__code__", None) is not None:
                break
            inner = getattr(target, "__wrapped__", None)
            if inner is None:
                break
            target = getattr(inner, "__func__", inner)
        code = getattr(target, "__code__", None)
        filename = getattr(code, "co_filename", None)
        lineno = getattr(code, "co_firstlineno", None)
        if not isinstance(filename, str) or not isinstance(lineno, int):
            return None
        return cls(file=filename, line=lineno)

    def get_source_line(self) -> str | None:
        """The source line, without its newline, or None when it cannot be read."""
        try:
            text = linecache.getline(self.file, self.line)
        except Exception:
            return None
        text = text.rstrip("\r\n")
        return text if text.strip() else None

    def format_short(self) -> str:
        """`file:line`, or `file:line:column` when a column is known."""
        if self.column is not None:
            return f"{self.file}:{self.line}:{self.column}"
        return f"{self.file}:{self.line}"


def _package_dir() -> str:
    return os.path.dirname(os.path.abspath(__file__)) + os.sep


def _skipped_prefixes() -> tuple[str, ...]:
    prefixes = {_package_dir()}
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        value = paths.get(key)
        if value:
            prefixes.add(os.path.abspath(value) + os.sep)
    return tuple(sorted(prefixes))


_SKIPPED_PREFIXES: Final = _skipped_prefixes()


def is_user_file(filename: str) -> bool:
    """Whether `filename` is user code: not horsies, not the stdlib, not an installed package."""
    if not filename or filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    if path.startswith(_SKIPPED_PREFIXES):
        return False
    parts = path.split(os.sep)
    return "site-packages" not in parts and "dist-packages" not in parts




def find_user_frame() -> FrameType | None:
    """The innermost stack frame outside horsies, the stdlib and installed packages."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return frame
        frame = frame.f_back
    return None


# ---------------------------------------------------------------------------
# The error family
# ---------------------------------------------------------------------------

_E = TypeVar("_E", bound="HorsiesError")


def _rebuild_error(cls: type[HorsiesError], state: dict[str, Any]) -> HorsiesError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    error.args = (state.get("message", ""),)
    return error


@dataclass(eq=False)
class HorsiesError(Exception):
    """Base class of startup errors; rendered in the style of compiler diagnostics."""

    message: str
    code: ErrorCode | None = None
    location: SourceLocation | None = None
    notes: list[str] = field(default_factory=list)
    help_text: str | None = None

    default_code: ClassVar[ErrorCode | None] = None

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)
        if self.code is None and self.default_code is not None:
            self.code = self.default_code
        if self.location is None:
            frame = find_user_frame()
            if frame is not None:
                self.location = SourceLocation.from_frame(frame)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), dict(self.__dict__)))

    # -- fluent helpers ---------------------------------------------------

    def with_note(self: _E, note: str) -> _E:
        self.notes.append(note)
        return self

    def with_help(self: _E, help_text: str) -> _E:
        self.help_text = help_text
        return self

    def with_location(self: _E, location: SourceLocation | None) -> _E:
        self.location = location
        return self

    def with_location_from_frame(self: _E, frame: Any) -> _E:
        self.location = SourceLocation.from_frame(frame)
        return self

    # -- rendering --------------------------------------------------------

    def format_rust_style(self, use_colors: bool | None = None) -> str:
        """Render the error; colours follow the environment when `use_colors` is None."""
        if use_colors is None:
            use_colors = should_use_colors()
        c = _Palette(use_colors)
        code = self.code
        code_part = f"[{code.value if isinstance(code, Enum) else code}]" if code else ""
        lines = ["", f"{c.bold}{c.red}error{code_part}{c.reset}{c.bold}:{c.reset} {self.message}"]
        if self.location is not None:
            lines.extend(_render_location(self.location, c))
        for note in self.notes:
            first, *rest = str(note).split("\n")
            lines.append(f"   {c.blue}={c.reset} {c.bold}note{c.reset}: {first}")
            lines.extend(f"           {more}" for more in rest)
        if self.help_text:
            lines.append("")
            lines.append(f"   {c.blue}={c.reset} {c.bold}{c.green}help{c.reset}:")
            lines.extend(f"        {text}" for text in self.help_text.split("\n"))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format_rust_style(use_colors=False)


def _render_location(location: SourceLocation, c: _Palette) -> list[str]:
    lines = [f"  {c.blue}-->{c.reset} {c.cyan}{location.format_short()}{c.reset}"]
    source = location.get_source_line()
    if source is None:
        return lines
    number = str(location.line)
    pad = " " * (len(number) + 1)
    if location.column is not None:
        start = max(0, location.column)
        end = location.end_column if location.end_column is not None else start + 1
        underline = " " * start + "^" * max(1, end - start)
    else:
        trimmed = source.strip()
        indent = len(source) - len(source.lstrip())
        underline = " " * indent + "^" * len(trimmed)
    lines.append(f"{c.blue}{pad}|{c.reset}")
    lines.append(f"{c.blue}{number} |{c.reset} {source}")
    lines.append(f"{c.blue}{pad}|{c.reset} {c.red}{underline}{c.reset}")
    return lines


@dataclass(eq=False)
class ConfigurationError(HorsiesError):
    """Configuration and command-line problems."""


@dataclass(eq=False)
class TaskDefinitionError(HorsiesError):
    """Problems with a task definition (the task decorator)."""


@dataclass(eq=False)
class RegistryError(HorsiesError):
    """Problems with the task registry."""


@dataclass(eq=False)
class NotRegistered(RegistryError, KeyError):
    """A task name that is not in the registry (`HRS-300`); also a `KeyError`."""

    default_code: ClassVar[ErrorCode | None] = ErrorCode.TASK_NOT_REGISTERED

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.format_rust_style(use_colors=False)


@dataclass(eq=False)
class DuplicateTaskNameError(RegistryError):
    """A task name registered twice (`HRS-301`)."""

    default_code: ClassVar[ErrorCode | None] = ErrorCode.TASK_DUPLICATE_NAME


@dataclass(eq=False)
class WorkflowValidationError(HorsiesError):
    """An invalid workflow definition."""


# ---------------------------------------------------------------------------
# Collected errors
# ---------------------------------------------------------------------------


class ValidationReport:
    """Collects the errors of one validation phase to report them together."""

    def __init__(self, phase_name: str = "") -> None:
        self.phase_name = phase_name
        self.errors: list[HorsiesError] = []

    def add(self, error: HorsiesError) -> None:
        self.errors.append(error)

    def extend(self, errors: Iterable[HorsiesError]) -> None:
        self.errors.extend(errors)

    def has_errors(self) -> bool:
        return bool(self.errors)

    def __len__(self) -> int:
        return len(self.errors)

    def format_rust_style(self, use_colors: bool | None = None) -> str:
        """Every error's rendering, a blank line, then the aborting summary."""
        if use_colors is None:
            use_colors = should_use_colors()
        c = _Palette(use_colors)
        parts = [error.format_rust_style(use_colors=use_colors) for error in self.errors]
        parts.append("")
        parts.append(
            f"{c.bold}{c.red}error{c.reset}{c.bold}:{c.reset} "
            f"aborting due to {len(self.errors)} previous errors"
        )
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.format_rust_style(use_colors=False)

    def __repr__(self) -> str:
        return f"ValidationReport(phase_name={self.phase_name!r}, errors={len(self.errors)})"


class MultipleValidationErrors(HorsiesError):
    """Two or more collected errors, raised together; renders as its report."""

    report: ValidationReport

    def __init__(self, message: str | None = None, *, report: ValidationReport) -> None:
        self.report = report
        self.message = message or f"aborting due to {len(report.errors)} previous errors"
        self.code = None
        self.location = None
        self.notes = []
        self.help_text = None
        Exception.__init__(self, self.message)

    @property
    def errors(self) -> list[HorsiesError]:
        return self.report.errors

    def format_rust_style(self, use_colors: bool | None = None) -> str:
        return self.report.format_rust_style(use_colors=use_colors)

    def __str__(self) -> str:
        return self.format_rust_style(use_colors=False)


def raise_collected(report: ValidationReport | Iterable[HorsiesError]) -> None:
    """No error: return. One: raise it as is. Two or more: `MultipleValidationErrors`."""
    if not isinstance(report, ValidationReport):
        collected = ValidationReport()
        collected.extend(report)
        report = collected
    if not report.errors:
        return
    if len(report.errors) == 1:
        raise report.errors[0]
    raise MultipleValidationErrors(report=report)


def error_location_of(fn: Callable[..., Any]) -> SourceLocation | None:
    """Location to report for an error about function `fn` (its definition line)."""
    return SourceLocation.from_function(fn)
