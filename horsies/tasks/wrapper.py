"""Running a task function into exactly one `TaskResult`.

The same code runs a direct call and an execution inside a worker. It never
raises, except that `KeyboardInterrupt` propagates: whatever the function
does (returns a conforming result, a wrong value, something that is not a
`TaskResult`, raises) becomes a `TaskResult`.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from horsies.codes import (
    BUILTIN_CODE_REGISTRY,
    BuiltInTaskCode,
    ContractCode,
    OperationalErrorCode,
)
from horsies.task_result import TaskError, TaskResult

__all__ = [
    "UNCHECKED",
    "DEFAULT_UNHANDLED_ERROR_CODE",
    "TaskCallSpec",
    "run_task_function",
    "resolve_exception_code",
    "error_from_exception",
    "conforms",
    "parse_return_annotation",
]

DEFAULT_UNHANDLED_ERROR_CODE: Final = "UNHANDLED_EXCEPTION"
_REPR_LIMIT: Final = 200
_CTX_MISSING_ID_ERROR: Final = "WorkflowContextMissingIdError"


class _Unchecked:
    """Sentinel type: the declared type is not checked."""

    __slots__ = ()
    _instance: _Unchecked | None = None

    def __new__(cls) -> _Unchecked:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHECKED"

    def __reduce__(self) -> str:
        return "UNCHECKED"


UNCHECKED: Final = _Unchecked()
"""Use as `ok_type` / `err_type` to skip the conformance check of that variant."""


@dataclass(frozen=True, slots=True)
class TaskCallSpec:
    """What the wrapper needs to know about a task to run it."""

    task_name: str
    function_name: str
    ok_type: Any = UNCHECKED
    err_type: Any = TaskError
    task_mapper: Mapping[type[BaseException], str] | None = None
    task_default_code: str | None = None
    app_mapper: Mapping[type[BaseException], str] | None = None
    app_default_code: str | None = DEFAULT_UNHANDLED_ERROR_CODE


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


def run_task_function(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    spec: TaskCallSpec,
) -> TaskResult[Any, TaskError]:
    """Call `fn(*args, **kwargs)` and turn whatever happens into one `TaskResult`."""
    try:
        returned = fn(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - every other exception becomes a value
        return TaskResult(err=error_from_exception(exc, spec))
    try:
        return check_returned(returned, spec)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a failing check must not escape
        return TaskResult(err=error_from_exception(exc, spec))


def check_returned(returned: Any, spec: TaskCallSpec) -> TaskResult[Any, TaskError]:
    """Validate what the task function returned (tasks.md §2)."""
    if not isinstance(returned, TaskResult):
        return TaskResult(err=_not_a_task_result(returned, spec))
    if returned.is_ok():
        expected = spec.ok_type
        value = returned.ok
        if expected is UNCHECKED or _safe_conforms(value, expected):
            return returned
        return TaskResult(err=_mismatch("ok", value, expected, spec))
    expected = spec.err_type
    error = returned.err
    if expected is UNCHECKED or _is_instance(error, expected):
        return returned
    return TaskResult(err=_mismatch("err", error, expected, spec))


def _not_a_task_result(returned: Any, spec: TaskCallSpec) -> TaskError:
    if returned is None:
        return TaskError(
            error_code=OperationalErrorCode.TASK_EXCEPTION,
            message=f"Task {spec.function_name} returned None instead of TaskResult",
            data={"task_name": spec.task_name},
        )
    if inspect.iscoroutine(returned):
        returned.close()  # avoid the "never awaited" warning; the value is refused anyway
    returned_type = type(returned).__name__
    return TaskError(
        error_code=OperationalErrorCode.TASK_EXCEPTION,
        message=f"Task {spec.function_name} returned {returned_type} instead of TaskResult",
        data={"task_name": spec.task_name, "returned_type": returned_type},
    )


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the mismatch
        text = f"<unrepresentable {type(value).__name__}>"
    return text[:_REPR_LIMIT]


def _mismatch(variant: str, value: Any, expected: Any, spec: TaskCallSpec) -> TaskError:
    expected_text = str(expected)
    actual_type = type(value).__name__
    return TaskError(
        error_code=ContractCode.RETURN_TYPE_MISMATCH,
        message=(
            f"Task {spec.function_name} returned TaskResult({variant}=...) of type "
            f"{actual_type}, which does not conform to the declared type {expected_text}"
        ),
        data={
            "variant": variant,
            "expected_type": expected_text,
            "actual_type": actual_type,
            "actual_value": _safe_repr(value),
        },
    )


def _is_instance(value: Any, expected: Any) -> bool:
    try:
        return isinstance(value, expected)
    except TypeError:
        return True  # not a class we can check against


def _safe_conforms(value: Any, expected: Any) -> bool:
    try:
        return conforms(value, expected)
    except Exception:  # noqa: BLE001 - an uncheckable type is not checked
        return True


# ---------------------------------------------------------------------------
# Exceptions and the mapper chain
# ---------------------------------------------------------------------------


def _lookup(mapper: Mapping[type[BaseException], Any] | None, exc_type: type) -> str | None:
    if not mapper:
        return None
    try:
        value = mapper.get(exc_type)
    except Exception:  # noqa: BLE001 - a broken mapping is treated as empty
        return None
    return value if isinstance(value, str) else None


def resolve_exception_code(
    exc: BaseException,
    *,
    task_mapper: Mapping[type[BaseException], str] | None = None,
    task_default_code: str | None = None,
    app_mapper: Mapping[type[BaseException], str] | None = None,
    app_default_code: str | None = DEFAULT_UNHANDLED_ERROR_CODE,
) -> BuiltInTaskCode | str:
    """Error code for an exception escaping a task function (results-and-errors.md §7).

    Task mapper, app mapper (both by the exact class), task default, app default;
    the first hit wins. A built-in value comes back as its enum member.
    """
    exc_type = type(exc)
    code = (
        _lookup(task_mapper, exc_type)
        or _lookup(app_mapper, exc_type)
        or (task_default_code if isinstance(task_default_code, str) else None)
        or (app_default_code if isinstance(app_default_code, str) else None)
        or DEFAULT_UNHANDLED_ERROR_CODE
    )
    return _as_task_code(code)


def _as_task_code(code: str) -> BuiltInTaskCode | str:
    raw = code.value if isinstance(code, Enum) else code
    member = BUILTIN_CODE_REGISTRY.get(raw)
    return member if member is not None else str(raw)


def _is_ctx_missing_id(exc: BaseException) -> bool:
    return any(cls.__name__ == _CTX_MISSING_ID_ERROR for cls in type(exc).__mro__)


def _exception_text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001
        return f"<unprintable {type(exc).__name__}>"


def error_from_exception(exc: BaseException, spec: TaskCallSpec) -> TaskError:
    """The `TaskError` for an exception raised by the task function."""
    if _is_ctx_missing_id(exc):
        return TaskError(
            error_code=ContractCode.WORKFLOW_CTX_MISSING_ID,
            message=_exception_text(exc),
            exception=exc,
        )
    exc_type_name = type(exc).__name__
    try:
        code = resolve_exception_code(
            exc,
            task_mapper=spec.task_mapper,
            task_default_code=spec.task_default_code,
            app_mapper=spec.app_mapper,
            app_default_code=spec.app_default_code,
        )
    except Exception:  # noqa: BLE001 - fall back to the library default
        code = OperationalErrorCode.UNHANDLED_EXCEPTION
    return TaskError(
        error_code=code,
        message=(
            f"Unhandled exception in task {spec.function_name}: "
            f"{exc_type_name}: {_exception_text(exc)}"
        ),
        data={"exception_type": exc_type_name},
        exception=exc,
    )


# ---------------------------------------------------------------------------
# Structural conformance (tasks.md §2.1)
# ---------------------------------------------------------------------------

_Checker = Callable[[Any], bool]
_CHECKERS: dict[Any, _Checker] = {}
_CHECKER_CACHE_LIMIT: Final = 4096

_NONE_TYPE: Final = type(None)
_UNION_TYPES: Final = (typing.Union, types.UnionType)
_CALLABLE_ORIGINS: Final = (cabc.Callable,)


def _always(_value: Any) -> bool:
    return True


def _is_none(value: Any) -> bool:
    return value is None


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool))


def conforms(value: Any, tp: Any) -> bool:
    """Whether `value` structurally conforms to the type `tp` (no conversion)."""
    return _checker_for(tp)(value)


def _checker_for(tp: Any) -> _Checker:
    try:
        cached = _CHECKERS.get(tp)
    except TypeError:  # unhashable form (for example Literal of a list)
        return _build_checker(tp)
    if cached is None:
        cached = _build_checker(tp)
        if len(_CHECKERS) < _CHECKER_CACHE_LIMIT:
            _CHECKERS[tp] = cached
    return cached


def _isinstance_checker(cls: type) -> _Checker:
    def check(value: Any) -> bool:
        return isinstance(value, cls)

    return check


def _build_checker(tp: Any) -> _Checker:
    if tp is Any or tp is object:
        return _always
    if tp is None or tp is _NONE_TYPE:
        return _is_none
    if tp is bool:
        return _is_bool
    if tp is int:
        return _is_int
    if tp is float:
        return _is_float
    if isinstance(tp, typing.TypeVar):
        bound = tp.__bound__
        return _always if bound is None else _checker_for(bound)
    if isinstance(tp, typing.NewType):
        return _checker_for(tp.__supertype__)
    if isinstance(tp, (str, typing.ForwardRef)):
        return _always  # unresolved form
    origin = typing.get_origin(tp)
    if origin is None:
        return _class_checker(tp)
    return _generic_checker(tp, origin, typing.get_args(tp))


def _class_checker(tp: Any) -> _Checker:
    if not isinstance(tp, type):
        return _always  # special forms, protocols-like objects, anything unknown
    if typing.is_typeddict(tp):
        required = frozenset(getattr(tp, "__required_keys__", ()))

        def check_typeddict(value: Any) -> bool:
            return isinstance(value, dict) and all(key in value for key in required)

        return check_typeddict
    if getattr(tp, "_is_protocol", False) and tp is not typing.Protocol:
        return _always
    if tp in _CALLABLE_ORIGINS:
        return _always
    return _isinstance_checker(tp)


def _items_checker(container: type | tuple[type, ...], item: _Checker) -> _Checker:
    def check(value: Any) -> bool:
        return isinstance(value, container) and all(item(x) for x in value)

    return check


def _mapping_checker(container: type, key: _Checker, val: _Checker) -> _Checker:
    def check(value: Any) -> bool:
        if not isinstance(value, container):
            return False
        return all(key(k) and val(v) for k, v in value.items())

    return check


def _tuple_checker(args: tuple[Any, ...]) -> _Checker:
    if len(args) == 2 and args[1] is Ellipsis:
        return _items_checker((tuple, list), _checker_for(args[0]))
    if args == ((),):  # typing.Tuple[()] on older spellings
        args = ()
    items = tuple(_checker_for(arg) for arg in args)
    size = len(items)

    def check_fixed(value: Any) -> bool:
        if not isinstance(value, (tuple, list)) or len(value) != size:
            return False
        return all(check(x) for check, x in zip(items, value))

    return check_fixed


def _literal_checker(args: tuple[Any, ...]) -> _Checker:
    choices = tuple((type(arg), arg) for arg in args)

    def check(value: Any) -> bool:
        value_type = type(value)
        for choice_type, choice in choices:
            if value_type is choice_type and (value is choice or value == choice):
                return True
        return False

    return check


def _union_checker(args: tuple[Any, ...]) -> _Checker:
    members = tuple(_checker_for(arg) for arg in args)

    def check(value: Any) -> bool:
        return any(member(value) for member in members)

    return check


_SEQUENCE_CONTAINERS: Final[dict[Any, type | tuple[type, ...]]] = {
    list: list,
    cabc.MutableSequence: list,
    cabc.Sequence: (list, tuple),
    set: set,
    frozenset: frozenset,
    cabc.Set: (set, frozenset),
    cabc.MutableSet: set,
}

_MAPPING_CONTAINERS: Final[dict[Any, type]] = {
    dict: dict,
    cabc.Mapping: cabc.Mapping,
    cabc.MutableMapping: cabc.MutableMapping,
}


def _generic_checker(tp: Any, origin: Any, args: tuple[Any, ...]) -> _Checker:
    if origin is typing.Annotated:
        return _checker_for(args[0])
    if origin in _UNION_TYPES:
        return _union_checker(args)
    if origin is typing.Literal:
        return _literal_checker(args)
    if origin is tuple:
        if not args and tp is not tuple and not _is_bare_alias(tp):
            return _tuple_checker(())  # tuple[()]
        return _tuple_checker(args) if args else _isinstance_checker(tuple)
    if origin in _SEQUENCE_CONTAINERS:
        container = _SEQUENCE_CONTAINERS[origin]
        if not args:
            return _isinstance_checker(origin) if isinstance(origin, type) else _always
        return _items_checker(container, _checker_for(args[0]))
    if origin in _MAPPING_CONTAINERS:
        container = _MAPPING_CONTAINERS[origin]
        if len(args) != 2:
            return _isinstance_checker(container)
        return _mapping_checker(container, _checker_for(args[0]), _checker_for(args[1]))
    if origin in _CALLABLE_ORIGINS:
        return _always
    if isinstance(origin, type) and origin.__module__ not in ("typing", "collections.abc"):
        # A parameterized user generic (or type[X]): check the class, not its parameters.
        if getattr(origin, "_is_protocol", False):
            return _always
        return _isinstance_checker(origin)
    return _always  # Final, ClassVar, Required, iterables and other forms are not checked


def _is_bare_alias(tp: Any) -> bool:
    """`typing.Tuple` without parameters (its origin is tuple but it has no args)."""
    return tp is typing.Tuple


# ---------------------------------------------------------------------------
# The return annotation
# ---------------------------------------------------------------------------


def _underlying_function(fn: Any) -> Any:
    return getattr(fn, "__func__", fn)


def _resolve_return_annotation(fn: Any) -> Any:
    target = _underlying_function(fn)
    annotations = getattr(target, "__annotations__", None) or {}
    if "return" not in annotations:
        raise ValueError(
            f"'{getattr(target, '__name__', target)}' has no return annotation; "
            "annotate it -> TaskResult[T, TaskError]"
        )
    annotation = annotations["return"]
    globalns = getattr(target, "__globals__", None)
    if globalns is None:
        module = sys.modules.get(getattr(target, "__module__", "") or "")
        globalns = vars(module) if module is not None else {}
    localns: dict[str, Any] = {}
    code = getattr(target, "__code__", None)
    closure = getattr(target, "__closure__", None) or ()
    if code is not None:
        for name, cell in zip(code.co_freevars, closure):
            try:
                localns[name] = cell.cell_contents
            except ValueError:  # empty cell
                continue
    # Evaluate through get_type_hints so nested string forms resolve too.
    probe = types.FunctionType(_probe.__code__, globalns)
    probe.__annotations__ = {"return": annotation}
    try:
        return typing.get_type_hints(probe, localns=localns or None, include_extras=True)["return"]
    except NameError as exc:
        raise ValueError(f"the return annotation {annotation!r} cannot be resolved: {exc}") from exc
    except SyntaxError as exc:
        raise ValueError(f"the return annotation {annotation!r} is not valid Python: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any failure to evaluate is a bad annotation
        raise TypeError(
            f"the return annotation {annotation!r} cannot be evaluated: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _probe() -> None:  # pragma: no cover - only its code object is used
    return None


def parse_return_annotation(fn: Callable[..., Any]) -> tuple[Any, Any]:
    """`(T, E)` from `fn`'s `-> TaskResult[T, E]` annotation.

    Raises ValueError (missing or unresolvable annotation) or TypeError (not
    `TaskResult[T, E]` with exactly two arguments and `E` a `TaskError` subclass).
    """
    annotation = _resolve_return_annotation(fn)
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if annotation is TaskResult or (
        isinstance(annotation, type) and issubclass(annotation, TaskResult)
    ):
        raise TypeError(
            f"the return annotation {_type_text(annotation)} has no type arguments; "
            "expected TaskResult[T, TaskError]"
        )
    if not (isinstance(origin, type) and issubclass(origin, TaskResult)):
        raise TypeError(
            f"the return annotation is {_type_text(annotation)}, not TaskResult[T, TaskError]"
        )
    args = typing.get_args(annotation)
    if len(args) != 2:
        raise TypeError(
            f"TaskResult takes exactly two type arguments (T, E), got {len(args)} "
            f"in {_type_text(annotation)}"
        )
    ok_type, err_type = args
    if not (isinstance(err_type, type) and issubclass(err_type, TaskError)):
        raise TypeError(
            f"the error type of {_type_text(annotation)} must be TaskError or a subclass, "
            f"got {_type_text(err_type)}"
        )
    return ok_type, err_type


def _type_text(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__
    return str(tp).replace("horsies.task_result.", "")
