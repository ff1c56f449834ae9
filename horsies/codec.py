"""Serialization of task arguments and results (serialization.md).

Values travel as compact JSON text. This module is the public layer: it
turns text into trees and back with orjson, resolves and caches the classes
named in tagged forms, and maps failures to ``Err(SerializationError)``. The
recursive walk between values and JSON trees is `horsies._speedups.Codec`
(compiled, with a pure-Python twin).

No function here raises for a bad value.

```python
text = dumps_json({"when": date(2031, 1, 2), "ids": (4, 5)}).ok_value
# '{"when":{"__date__":true,"value":"2031-01-02"},"ids":[4,5]}'
rehydrate_value(loads_json(text).ok_value).ok_value
# {'when': datetime.date(2031, 1, 2), 'ids': [4, 5]}
```
"""

from __future__ import annotations

import importlib
from typing import Any, Final, TypeAlias, TypeVar, Union

import orjson

from horsies._speedups import Codec
from horsies._speedups._api import SerializationError
from horsies.codes import BUILTIN_CODE_REGISTRY, ContractCode
from horsies.logging import get_logger
from horsies.result import Err, Ok, Result
from horsies.task_result import SubWorkflowError, TaskError, TaskResult

__all__ = [
    "Json",
    "SerializationError",
    "SerdeResult",
    "to_jsonable",
    "rehydrate_value",
    "dumps_json",
    "loads_json",
    "args_to_json",
    "kwargs_to_json",
    "json_to_args",
    "json_to_kwargs",
    "task_result_from_json",
    "serialize_error_payload",
    "clear_caches",
    "FALLBACK_ERROR_JSON",
]

T = TypeVar("T")

Json: TypeAlias = Union[None, bool, int, float, str, list["Json"], dict[str, "Json"]]
"""A value made only of JSON types."""

SerdeResult: TypeAlias = Result[T, SerializationError]
"""The result of every codec function: `Ok(value)` or `Err(SerializationError)`."""

FALLBACK_ERROR_JSON: Final = (
    '{"__task_result__":true,"ok":null,"err":{"__task_error__":true,'
    '"error_code":{"__builtin_task_code__":"WORKER_SERIALIZATION_ERROR"},'
    '"message":"secondary serialization failure","data":null}}'
)
"""Stored when not even a library-built error result can be encoded (§8.3)."""

_logger = get_logger("codec")

# --- class resolution (§4.1) ------------------------------------------------------

_CLASS_CACHE: dict[str, object] = {}
_MISSING: Final = object()
_MOVED_HINT: Final = "was it moved or renamed without leaving a re-export behind?"


def _resolve_class(module: str, qualname: str) -> object:
    """The object `qualname` of `module`, imported once and cached as ``module:qualname``."""
    key = f"{module}:{qualname}"
    found = _CLASS_CACHE.get(key, _MISSING)
    if found is not _MISSING:
        return found
    try:
        found = importlib.import_module(module)
    except Exception as exc:  # ImportError, or an error in the module
        raise SerializationError(
            f"Cannot import module {module!r} for {qualname!r}",
            f": {type(exc).__name__}: {exc}; {_MOVED_HINT}",
        ) from exc
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except Exception as exc:  # AttributeError, or a module __getattr__
            raise SerializationError(
                f"Cannot find {qualname!r} in module {module!r}", f": {_MOVED_HINT}"
            ) from exc
    _CLASS_CACHE[key] = found
    return found


_codec = Codec(_resolve_class, TaskResult, TaskError, SubWorkflowError, BUILTIN_CODE_REGISTRY)


def clear_caches() -> None:
    """Forget every resolved class (and what the codec learned about classes)."""
    _CLASS_CACHE.clear()
    _codec.clear_caches()


# --- values <-> JSON trees ----------------------------------------------------------


def _root(value: Any, path: str | None) -> str:
    """The name of the root in error paths: `path`, else ``result`` for a
    TaskResult and ``value`` for anything else."""
    if path is not None:
        return path
    return "result" if isinstance(value, TaskResult) else "value"


def to_jsonable(value: Any, *, path: str | None = None) -> SerdeResult[Json]:
    """`value` as a tree of JSON types (serialization.md §3-§5).

    `path` names the value in error messages (default: ``result`` for a
    TaskResult, else ``value``).
    """
    try:
        return Ok(_codec.encode(value, _root(value, path)))
    except SerializationError as exc:
        return Err(exc)


def rehydrate_value(value: Json, *, path: str = "value") -> SerdeResult[Any]:
    """The inverse of `to_jsonable`: tagged objects become typed values,
    other objects dicts, arrays lists, recursively."""
    try:
        return Ok(_codec.decode(value, path))
    except SerializationError as exc:
        return Err(exc)


# --- text -------------------------------------------------------------------------------


def _text(tree: Json, path: str) -> SerdeResult[str]:
    try:
        return Ok(orjson.dumps(tree).decode())
    except Exception as exc:  # the walk validated the tree; belt and braces
        return Err(SerializationError("Cannot write JSON", f": {exc}", path))


def dumps_json(value: Any, *, path: str | None = None) -> SerdeResult[str]:
    """`to_jsonable`, then compact JSON text (serialization.md §2)."""
    root = _root(value, path)
    try:
        tree = _codec.encode(value, root)
    except SerializationError as exc:
        return Err(exc)
    return _text(tree, root)


def loads_json(text: str | None) -> SerdeResult[Json]:
    """Parse JSON text; None or "" gives Ok(None). NaN and Infinity are refused."""
    if text is None or text == "":
        return Ok(None)
    try:
        return Ok(orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        return Err(SerializationError("Invalid JSON", f": {exc}"))
    except TypeError:
        return Err(
            SerializationError("Invalid JSON", f": expected text, got {type(text).__name__}")
        )


def args_to_json(args: tuple[Any, ...]) -> SerdeResult[str]:
    """Positional arguments as JSON array text; errors name ``args[<i>]``."""
    try:
        tree = _codec.encode_args(args)
    except SerializationError as exc:
        return Err(exc)
    return _text(tree, "args")


def kwargs_to_json(kwargs: dict[str, Any]) -> SerdeResult[str]:
    """Keyword arguments as JSON object text; errors name ``kwargs["<name>"]``."""
    try:
        tree = _codec.encode_kwargs(kwargs)
    except SerializationError as exc:
        return Err(exc)
    return _text(tree, "kwargs")


def json_to_args(j: Json) -> SerdeResult[list[Any]]:
    """Parsed `args`: None gives []; otherwise a JSON array whose items are rehydrated."""
    if j is None:
        return Ok([])
    if type(j) is not list:
        return Err(SerializationError(f"Positional arguments must be a JSON array, got {_kind(j)}"))
    try:
        return Ok(_codec.decode_args(j))
    except SerializationError as exc:
        return Err(exc)


def json_to_kwargs(j: Json) -> SerdeResult[dict[str, Any]]:
    """Parsed `kwargs`: None gives {}; otherwise a JSON object whose values are rehydrated."""
    if j is None:
        return Ok({})
    if type(j) is not dict:
        return Err(SerializationError(f"Keyword arguments must be a JSON object, got {_kind(j)}"))
    try:
        return Ok(_codec.decode_kwargs(j))
    except SerializationError as exc:
        return Err(exc)


def _kind(j: object) -> str:
    return {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        list: "an array",
        dict: "an object",
    }.get(type(j), type(j).__name__)


# --- results (§8) -------------------------------------------------------------------------


def _envelope_problem(j: Json) -> str | None:
    if type(j) is not dict:
        return f"expected an object, got {_kind(j)}"
    if len(j) != 3 or j.get("__task_result__") is not True or "ok" not in j or "err" not in j:
        return "expected exactly the keys '__task_result__' (true), 'ok' and 'err'"
    return None


def task_result_from_json(j: Json) -> SerdeResult[TaskResult[Any, TaskError]]:
    """A parsed stored result as a TaskResult (serialization.md §8.4, steps 2-4).

    Err for a malformed envelope or error; Ok holding a PYDANTIC_HYDRATION_ERROR
    result when only the success value cannot be rebuilt here.
    """
    problem = _envelope_problem(j)
    if problem is not None:
        return Err(SerializationError("Malformed result envelope", f": {problem}", "result"))
    assert type(j) is dict
    err = j["err"]
    if err is not None:
        if type(err) is not dict or "__task_error__" not in err:
            return Err(
                SerializationError(
                    "Malformed result envelope",
                    ": 'err' must be a __task_error__ object or null",
                    "result.err",
                )
            )
        try:
            error = _codec.decode(err, "result.err")
        except SerializationError as exc:
            return Err(exc)
        if not isinstance(error, TaskError):  # pragma: no cover - the marker decides
            return Err(
                SerializationError("Malformed result envelope", ": invalid 'err'", "result.err")
            )
        return Ok(TaskResult(err=error))
    try:
        value = _codec.decode(j["ok"], "result.ok")
    except SerializationError as exc:
        # The task did succeed; only its value cannot be rebuilt in this process.
        _logger.warning("stored success value cannot be rebuilt: %s", exc)
        return Ok(
            TaskResult(
                err=TaskError(
                    error_code=ContractCode.PYDANTIC_HYDRATION_ERROR,
                    message=str(exc),
                    data={},
                )
            )
        )
    return Ok(TaskResult(ok=value))


def serialize_error_payload(result: TaskResult[Any, TaskError]) -> str:
    """Encode a library-built error result; the fixed text of §8.3 if even that fails."""
    text = dumps_json(result)
    if text.is_ok():
        return text.ok_value
    _logger.error("secondary serialization failure: %s", text.err_value)
    return FALLBACK_ERROR_JSON
