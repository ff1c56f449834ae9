"""The recursive walk of the codec: the pure-Python twin and reference.

`Codec.encode` turns a Python value into a tree of JSON types (tagged forms
for typed values, serialization.md §3-§5, §8); `Codec.decode` turns such a
tree back into values (rehydration). Turning the tree into text and back is
left to horsies.codec, which also owns the class-resolution cache handed in
as `resolve_class`.

Failures raise `SerializationError`. While an error unwinds, every container
records the position of the failing value in it, so the final message names
the full path (``kwargs["rows"][3].price``). Building that path only on the
error path keeps the walk itself free of string work.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import sys
import traceback
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any, Final

import msgspec

from horsies._speedups._api import (
    DEPTH_LIMIT,
    MARKER_KEYS,
    RESERVED_PREFIX,
    Json,
    ResolveClass,
    SerializationError,
    foreign_error,
    safe_repr,
    safe_str,
)

__all__ = ["Codec"]

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1
_CACHE_LIMIT: Final = 4096  # classes remembered before the caches start over

# What a (non-exact) type is encoded as: the rows of serialization.md §3, in order.
ENUM, INT, FLOAT, STR, DATETIME, DATE, TIME, TIMEDELTA, UUID = range(9)
DECIMAL, TASK_RESULT, TASK_ERROR, STRUCT, PYDANTIC, DATACLASS, MAPPING, SEQUENCE, REFUSED = range(
    9, 18
)

_TAG_OF_KIND: Final = {
    ENUM: "__enum__",
    STRUCT: "__msgspec_struct__",
    PYDANTIC: "__pydantic_model__",
    DATACLASS: "__dataclass__",
}
_NOT_SEQUENCES: Final = (str, bytes, bytearray, memoryview)


# --- small checks shared by both directions ---------------------------------


def _need(depth: int) -> None:
    """Refuse a container nested inside `depth` others when that is too deep."""
    if depth >= DEPTH_LIMIT:
        raise SerializationError("Nesting too deep", f" (limit: {DEPTH_LIMIT} levels)")


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _checked_str(text: str) -> str:
    if _has_surrogate(text):
        raise SerializationError("Cannot serialize a string with a lone surrogate")
    return text


def _checked_int(number: int) -> int:
    if number < INT_MIN or number > INT_MAX:
        raise SerializationError("Integer out of range", " (allowed: -2**63 .. 2**64-1)")
    return number


def _checked_float(number: float) -> float:
    if not math.isfinite(number):
        raise SerializationError("Non-finite float")
    return number


def _is_reserved(key: str) -> bool:
    return key[:2] == "__" and (key in MARKER_KEYS or key.startswith(RESERVED_PREFIX))


def _malformed(tag: str, detail: str) -> SerializationError:
    return SerializationError(f"Malformed {tag} form", f": {detail}")


def _import_problem(cls: type, resolve_class: ResolveClass) -> tuple[str, str] | None:
    """Why instances of `cls` could not be rebuilt by name in a worker, or None."""
    module = cls.__module__
    qualname = cls.__qualname__
    head = f"Cannot serialize {qualname!r} defined in {module!r}"
    if module in ("__main__", "__mp_main__"):
        return head, ": move the class to an importable module"
    if "<locals>" in qualname:
        return head, ": define the class at module level, not inside a function"
    try:
        found = resolve_class(module, qualname)
    except SerializationError:
        found = None
    if found is not cls:
        return head, ": the class cannot be imported under that name"
    return None


def _field_problem(names: Sequence[str]) -> tuple[str, str] | None:
    for name in names:
        if _is_reserved(name):
            return f"Reserved key {name!r}", " (a field name)"
    return None


class Codec:
    """Value <-> JSON tree, with the caches of what was learned about classes."""

    def __init__(
        self,
        resolve_class: ResolveClass,
        task_result_type: type,
        task_error_type: type,
        sub_workflow_error_type: type,
        builtin_codes: Mapping[str, Enum],
    ) -> None:
        self._resolve_class = resolve_class
        self._task_result_type: Any = task_result_type
        self._task_error_type: Any = task_error_type
        self._sub_workflow_error_type: Any = sub_workflow_error_type
        self._builtin_codes = builtin_codes
        # type -> (kind, module, qualname, details, problem) for encoding
        self._classes: dict[type, tuple[Any, ...]] = {}
        # (tag, module, qualname) -> (class, details) for decoding
        self._resolved: dict[tuple[str, str, str], tuple[Any, ...]] = {}

    def clear_caches(self) -> None:
        self._classes.clear()
        self._resolved.clear()

    # === encoding ==============================================================

    def encode(self, value: Any, path: str = "value") -> Json:
        """`value` as a JSON tree; SerializationError naming `path` on failure."""
        try:
            return self._encode(value, 0, [])
        except SerializationError as exc:
            raise exc.locate(path) from None
        except Exception as exc:  # user code; reported, not raised raw
            raise foreign_error("serializing", value, exc).locate(path) from exc

    def encode_args(self, args: Sequence[Any]) -> list[Json]:
        """Positional arguments as a JSON array; errors at ``args[<i>]``."""
        return self.encode(args, "args")  # type: ignore[return-value]

    def encode_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Json]:
        """Keyword arguments as a JSON object; errors at ``kwargs["<name>"]``."""
        return self.encode(kwargs, "kwargs")  # type: ignore[return-value]

    def _encode(self, value: Any, depth: int, stack: list[object]) -> Json:
        # `depth`: JSON containers around the output of `value`; `stack`: the
        # containers being encoded, to detect a value that holds itself.
        cls = type(value)
        if cls is str:
            return _checked_str(value)
        if cls is int:
            return _checked_int(value)
        if cls is float:
            return _checked_float(value)
        if value is None or cls is bool:
            return value  # type: ignore[no-any-return]
        if cls is dict:
            return self._encode_mapping(value, depth, stack)
        if cls is list or cls is tuple:
            return self._encode_sequence(value, depth, stack)
        try:
            return self._encode_other(value, cls, depth, stack)
        except SerializationError:
            raise
        except Exception as exc:  # user code (isoformat, tzinfo, ...)
            raise foreign_error("serializing", value, exc) from exc

    def _enter(self, value: object, depth: int, stack: list[object]) -> None:
        _need(depth)
        for ancestor in stack:
            if ancestor is value:
                raise SerializationError("Circular reference")
        stack.append(value)

    def _key(self, key: object, out: dict[str, Json], mapping: Any) -> str:
        """The string form of a mapping key, checked (§5, §5.1)."""
        skey = key if type(key) is str else str(key)
        if type(skey) is not str:  # a str subclass from __str__
            skey = str.__str__(skey)
        if _is_reserved(skey):
            raise SerializationError(f"Reserved key {skey!r}")
        if _has_surrogate(skey):
            raise SerializationError("Cannot serialize a mapping key with a lone surrogate")
        if skey in out:
            first = next(k for k in mapping if (k if type(k) is str else str(k)) == skey)
            raise SerializationError(
                "Mapping key collision",
                f": {safe_repr(first)} and {safe_repr(key)} both become {skey!r}",
            )
        return skey

    def _encode_mapping(self, value: Any, depth: int, stack: list[object]) -> dict[str, Json]:
        self._enter(value, depth, stack)
        out: dict[str, Json] = {}
        current: tuple[object] | None = None
        try:
            for key, item in value.items():
                skey = self._key(key, out, value)
                current = (key,)
                out[skey] = self._encode(item, depth + 1, stack)
                current = None
        except SerializationError as exc:
            if current is not None:
                exc.add_segment(current)
            raise
        except Exception as exc:  # a user Mapping or key __str__
            raise foreign_error("serializing", value, exc) from exc
        stack.pop()
        return out

    def _encode_sequence(self, value: Any, depth: int, stack: list[object]) -> list[Json]:
        self._enter(value, depth, stack)
        out: list[Json] = []
        index = -1
        try:
            for item in value:
                index += 1
                out.append(self._encode(item, depth + 1, stack))
        except SerializationError as exc:
            exc.add_segment(index)
            raise
        except Exception as exc:  # a user Sequence
            raise foreign_error("serializing", value, exc) from exc
        stack.pop()
        return out

    def _encode_fields(
        self, value: Any, names: Sequence[str], depth: int, stack: list[object]
    ) -> dict[str, Json]:
        """The `data` object of a dataclass or Struct: field name -> encoded value."""
        data: dict[str, Json] = {}
        current: str | None = None
        try:
            for name in names:
                current = name
                data[name] = self._encode(getattr(value, name), depth, stack)
        except SerializationError as exc:
            exc.add_segment("." + current)  # type: ignore[operator]
            raise
        except Exception as exc:  # a failing attribute
            err = foreign_error("serializing", value, exc)
            err.add_segment("." + current)  # type: ignore[operator]
            raise err from exc
        return data

    def _classify(self, cls: type) -> tuple[Any, ...]:
        """Which row of serialization.md §3 `cls` falls in, with what encoding needs."""
        kind: int
        details: Any = None
        if issubclass(cls, Enum):
            kind, details = ENUM, cls.__members__
        elif issubclass(cls, int):
            kind = INT
        elif issubclass(cls, float):
            kind = FLOAT
        elif issubclass(cls, str):
            kind = STR
        elif issubclass(cls, _dt.datetime):
            kind = DATETIME
        elif issubclass(cls, _dt.date):
            kind = DATE
        elif issubclass(cls, _dt.time):
            kind = TIME
        elif issubclass(cls, _dt.timedelta):
            kind = TIMEDELTA
        elif issubclass(cls, uuid.UUID):
            kind = UUID
        elif issubclass(cls, Decimal):
            kind = DECIMAL
        elif issubclass(cls, self._task_result_type):
            kind = TASK_RESULT
        elif issubclass(cls, self._task_error_type):
            kind = TASK_ERROR
        elif issubclass(cls, msgspec.Struct):
            kind, details = STRUCT, tuple(cls.__struct_fields__)
        elif _is_pydantic_model(cls):
            kind = PYDANTIC
        elif dataclasses.is_dataclass(cls):
            kind, details = DATACLASS, tuple(f.name for f in dataclasses.fields(cls))
        elif issubclass(cls, Mapping):
            kind = MAPPING
        elif issubclass(cls, Sequence) and not issubclass(cls, _NOT_SEQUENCES):
            kind = SEQUENCE
        else:
            kind = REFUSED
        problem = None
        if kind in _TAG_OF_KIND:
            problem = _import_problem(cls, self._resolve_class)
            if problem is None and (kind == STRUCT or kind == DATACLASS):
                problem = _field_problem(details)
        info = (kind, cls.__module__, cls.__qualname__, details, problem)
        if len(self._classes) >= _CACHE_LIMIT:
            self._classes.clear()
        self._classes[cls] = info
        return info

    def _encode_other(self, value: Any, cls: type, depth: int, stack: list[object]) -> Json:
        info = self._classes.get(cls)
        if info is None:
            info = self._classify(cls)
        kind = info[0]
        if info[4] is not None:
            raise SerializationError(*info[4])
        if kind == ENUM:
            _need(depth)
            name = value._name_
            if name is not None and name in info[3]:
                return {"__enum__": True, "module": info[1], "qualname": info[2], "name": name}
            try:
                encoded = self._encode(value._value_, depth + 1, stack)
            except SerializationError as exc:
                exc.add_segment(".value")
                raise
            return {"__enum__": True, "module": info[1], "qualname": info[2], "value": encoded}
        if kind == INT:
            return _checked_int(int.__int__(value))
        if kind == FLOAT:
            return _checked_float(float.__float__(value))
        if kind == STR:
            return _checked_str(str.__str__(value))
        if kind == DATETIME:
            _need(depth)
            return {"__datetime__": True, "value": _dt.datetime.isoformat(value)}
        if kind == DATE:
            _need(depth)
            return {"__date__": True, "value": _dt.date.isoformat(value)}
        if kind == TIME:
            _need(depth)
            return {"__time__": True, "value": _dt.time.isoformat(value)}
        if kind == TIMEDELTA:
            _need(depth)
            return {
                "__timedelta__": True,
                "days": value.days,
                "seconds": value.seconds,
                "microseconds": value.microseconds,
            }
        if kind == UUID:
            _need(depth)
            return {"__uuid__": True, "value": uuid.UUID.__str__(value)}
        if kind == DECIMAL:
            _need(depth)
            return {"__decimal__": True, "value": Decimal.__str__(value)}
        if kind == TASK_RESULT:
            return self._encode_task_result(value, depth, stack)
        if kind == TASK_ERROR:
            return self._encode_task_error(value, depth, stack)
        if kind == STRUCT or kind == DATACLASS:
            self._enter(value, depth + 1, stack)
            data = self._encode_fields(value, info[3], depth + 2, stack)
            stack.pop()
            return {_TAG_OF_KIND[kind]: True, "module": info[1], "qualname": info[2], "data": data}
        if kind == PYDANTIC:
            return self._encode_pydantic(value, info, depth, stack)
        if kind == MAPPING:
            return self._encode_mapping(value, depth, stack)
        if kind == SEQUENCE:
            return self._encode_sequence(value, depth, stack)
        raise SerializationError(f"Cannot serialize value of type {cls.__name__}")

    def _encode_pydantic(
        self, value: Any, info: tuple[Any, ...], depth: int, stack: list[object]
    ) -> Json:
        self._enter(value, depth + 1, stack)
        dumped = value.model_dump(mode="json")
        if type(dumped) is not dict:
            raise SerializationError(
                f"Cannot serialize pydantic model {info[2]!r}",
                f": model_dump returned {type(dumped).__name__}, not dict",
            )
        data: dict[str, Json] = {}
        current: str | None = None
        try:
            for key, item in dumped.items():
                skey = self._key(key, data, dumped)
                current = "." + skey
                data[skey] = self._encode(item, depth + 2, stack)
                current = None
        except SerializationError as exc:
            if current is not None:
                exc.add_segment(current)
            raise
        stack.pop()
        return {"__pydantic_model__": True, "module": info[1], "qualname": info[2], "data": data}

    def _encode_task_result(self, value: Any, depth: int, stack: list[object]) -> Json:
        self._enter(value, depth, stack)
        ok: Json = None
        err: Json = None
        if value.is_ok():
            try:
                ok = self._encode(value.ok, depth + 1, stack)
            except SerializationError as exc:
                exc.add_segment(".ok")
                raise
        else:
            error = value.err
            try:
                if not isinstance(error, self._task_error_type):
                    raise SerializationError(
                        f"TaskResult.err must be a TaskError, got {type(error).__name__}"
                    )
                err = self._encode_task_error(error, depth + 1, stack)
            except SerializationError as exc:
                exc.add_segment(".err")
                raise
        stack.pop()
        return {"__task_result__": True, "ok": ok, "err": err}

    def _encode_task_error(self, value: Any, depth: int, stack: list[object]) -> Json:
        self._enter(value, depth, stack)
        out: dict[str, Json] = {"__task_error__": True}
        current = ".error_code"
        try:
            out["error_code"] = self._encode_error_code(value.error_code, depth + 1)
            current = ".message"
            message = value.message
            if message is not None:
                if not isinstance(message, str):
                    raise SerializationError(
                        f"TaskError.message must be a str or None, got {type(message).__name__}"
                    )
                message = _checked_str(str.__str__(message))
            out["message"] = message
            current = ".data"
            out["data"] = self._encode(value.data, depth + 1, stack)
            current = ".exception"
            exception = value.exception
            if exception is not None:
                out["exception"] = self._encode(_exception_json(exception), depth + 1, stack)
            if isinstance(value, self._sub_workflow_error_type):
                current = ".sub_workflow_id"
                workflow_id = value.sub_workflow_id
                if not isinstance(workflow_id, str):
                    raise SerializationError(
                        "SubWorkflowError.sub_workflow_id must be a str, "
                        f"got {type(workflow_id).__name__}"
                    )
                out["sub_workflow_id"] = _checked_str(str.__str__(workflow_id))
                current = ".sub_workflow_summary"
                out["sub_workflow_summary"] = self._encode(
                    value.sub_workflow_summary, depth + 1, stack
                )
        except SerializationError as exc:
            exc.add_segment(current)
            raise
        except Exception as exc:  # a failing attribute or __str__
            err = foreign_error("serializing", value, exc)
            err.add_segment(current)
            raise err from exc
        stack.pop()
        return out

    def _encode_error_code(self, code: object, depth: int) -> Json:
        if code is None:
            return None
        if isinstance(code, Enum):
            if self._builtin_codes.get(code.name) is code:
                _need(depth)
                return {"__builtin_task_code__": code.name}
        elif isinstance(code, str):
            return _checked_str(str.__str__(code))
        raise SerializationError(f"Cannot serialize error code of type {type(code).__name__}")

    # === decoding ==============================================================

    def decode(self, value: Json, path: str = "value") -> Any:
        """The value a JSON tree stands for; SerializationError naming `path` on failure."""
        try:
            return self._decode(value, 0)
        except SerializationError as exc:
            raise exc.locate(path) from None
        except Exception as exc:  # a constructor or hook of user code
            raise foreign_error("deserializing", value, exc).locate(path) from exc

    def decode_args(self, items: list[Json]) -> list[Any]:
        """Decoded positional arguments; errors at ``args[<i>]``."""
        return self.decode(items, "args")  # type: ignore[no-any-return]

    def decode_kwargs(self, items: dict[str, Json]) -> dict[str, Any]:
        """Decoded keyword arguments (the object itself is never a tagged form)."""
        try:
            if type(items) is not dict:
                raise SerializationError(
                    f"Cannot deserialize value of type {type(items).__name__}",
                    " (not a JSON object)",
                )
            return self._decode_plain(items, 0)
        except SerializationError as exc:
            raise exc.locate("kwargs") from None
        except Exception as exc:
            raise foreign_error("deserializing", items, exc).locate("kwargs") from exc

    def _decode(self, value: Json, depth: int) -> Any:
        cls = type(value)
        if cls is str or cls is int or cls is float or cls is bool or value is None:
            return value
        if cls is list:
            return self._decode_list(value, depth)  # type: ignore[arg-type]
        if cls is dict:
            return self._decode_object(value, depth)  # type: ignore[arg-type]
        raise SerializationError(
            f"Cannot deserialize value of type {cls.__name__}", " (not a JSON value)"
        )

    def _decode_list(self, value: list[Json], depth: int) -> list[Any]:
        _need(depth)
        out: list[Any] = []
        index = -1
        try:
            for item in value:
                index += 1
                out.append(self._decode(item, depth + 1))
        except SerializationError as exc:
            exc.add_segment(index)
            raise
        return out

    def _decode_plain(self, value: dict[str, Json], depth: int) -> dict[str, Any]:
        """An object without marker keys (or the kwargs object): values decoded."""
        _need(depth)
        out: dict[str, Any] = {}
        current: tuple[str] | None = None
        try:
            for key, item in value.items():
                if type(key) is not str:
                    raise SerializationError(
                        f"Cannot deserialize an object key of type {type(key).__name__}"
                    )
                if key[:2] == "__" and key in MARKER_KEYS:
                    raise SerializationError(f"Unexpected marker key {key!r}")
                current = (key,)
                out[key] = self._decode(item, depth + 1)
                current = None
        except SerializationError as exc:
            if current is not None:
                exc.add_segment(current)
            raise
        return out

    def _decode_object(self, value: dict[str, Json], depth: int) -> Any:
        marker: str | None = None
        for key in value:
            if type(key) is str and key[:2] == "__" and key in MARKER_KEYS:
                if marker is not None:
                    raise SerializationError(
                        "Malformed tagged form", f": more than one marker ({marker!r}, {key!r})"
                    )
                marker = key
        if marker is None:
            return self._decode_plain(value, depth)
        _need(depth)
        if marker == "__builtin_task_code__":
            raise _malformed(marker, "only valid as the error_code of a TaskError")
        if value[marker] is not True:
            raise _malformed(marker, "the marker must be true")
        if marker == "__datetime__":
            return _parse_iso(value, marker, _dt.datetime.fromisoformat)
        if marker == "__date__":
            return _parse_iso(value, marker, _dt.date.fromisoformat)
        if marker == "__time__":
            return _parse_iso(value, marker, _dt.time.fromisoformat)
        if marker == "__timedelta__":
            return _decode_timedelta(value)
        if marker == "__uuid__":
            return _parse_iso(value, marker, uuid.UUID)
        if marker == "__decimal__":
            return _parse_iso(value, marker, Decimal)
        if marker == "__enum__":
            return self._decode_enum(value, depth)
        if marker == "__dataclass__" or marker == "__msgspec_struct__":
            return self._decode_fields(value, marker, depth)
        if marker == "__pydantic_model__":
            return self._decode_pydantic(value)
        if marker == "__task_result__":
            return self._decode_task_result(value, depth)
        return self._decode_task_error(value, depth)  # "__task_error__", the last marker

    def _class_for(self, value: dict[str, Json], tag: str) -> tuple[Any, ...]:
        """(class, details) named by a tagged form, resolved once and cached."""
        module = value.get("module")
        qualname = value.get("qualname")
        if type(module) is not str or type(qualname) is not str:
            raise _malformed(tag, "'module' and 'qualname' must be strings")
        key = (tag, module, qualname)
        found = self._resolved.get(key)
        if found is not None:
            return found
        cls: Any = self._resolve_class(module, qualname)
        where = f"{module}:{qualname}"
        details: Any = None
        if tag == "__enum__":
            if not (isinstance(cls, type) and issubclass(cls, Enum)):
                raise SerializationError(f"{where!r} is not an Enum class")
            details = cls.__members__
        elif tag == "__dataclass__":
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
                raise SerializationError(f"{where!r} is not a dataclass")
            fields = dataclasses.fields(cls)
            details = (
                frozenset(f.name for f in fields if f.init),
                frozenset(f.name for f in fields if not f.init),
            )
        elif tag == "__msgspec_struct__":
            if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
                raise SerializationError(f"{where!r} is not a msgspec Struct")
            details = (frozenset(cls.__struct_fields__), frozenset())
        elif not (isinstance(cls, type) and _is_pydantic_model(cls)):
            raise SerializationError(f"{where!r} is not a pydantic model")
        found = (cls, details)
        if len(self._resolved) >= _CACHE_LIMIT:
            self._resolved.clear()
        self._resolved[key] = found
        return found

    def _decode_enum(self, value: dict[str, Json], depth: int) -> Any:
        has_name = "name" in value
        if has_name:
            if type(value["name"]) is not str:
                raise _malformed("__enum__", "'name' must be a string")
        elif "value" not in value:
            raise _malformed("__enum__", "needs 'name' or 'value'")
        cls, members = self._class_for(value, "__enum__")
        if has_name:
            member = members.get(value["name"])
            if member is None:
                raise SerializationError(
                    f"Enum {value['qualname']!r} has no member {value['name']!r}"
                )
            return member
        try:
            raw = self._decode(value["value"], depth + 1)
        except SerializationError as exc:
            exc.add_segment(".value")
            raise
        try:
            return cls(raw)
        except Exception as exc:  # ValueError from the enum
            raise SerializationError(
                f"Enum {value['qualname']!r} has no member with value {safe_repr(raw)}"
            ) from exc

    def _decode_fields(self, value: dict[str, Json], tag: str, depth: int) -> Any:
        data = value.get("data")
        if type(data) is not dict:
            raise _malformed(tag, "'data' must be an object")
        cls, (init_names, late_names) = self._class_for(value, tag)
        _need(depth + 1)
        decoded: dict[str, Any] = {}
        current: str | None = None
        try:
            for name, item in data.items():
                current = name
                decoded[name] = self._decode(item, depth + 2)
        except SerializationError as exc:
            exc.add_segment("." + current)  # type: ignore[operator]
            raise
        # Names that are no longer fields (the class changed) are ignored.
        kwargs = {k: v for k, v in decoded.items() if k in init_names}
        try:
            instance = cls(**kwargs)
            for name, item in decoded.items():
                if name in late_names:
                    object.__setattr__(instance, name, item)
        except Exception as exc:  # the class's own constructor
            raise SerializationError(
                f"Cannot rebuild {value['qualname']!r} of module {value['module']!r}",
                f": {type(exc).__name__}: {safe_str(exc)}",
            ) from exc
        return instance

    def _decode_pydantic(self, value: dict[str, Json]) -> Any:
        if "data" not in value:
            raise _malformed("__pydantic_model__", "'data' is missing")
        cls, _ = self._class_for(value, "__pydantic_model__")
        try:
            return cls.model_validate(value["data"])
        except Exception as exc:  # pydantic's ValidationError and friends
            raise SerializationError(
                f"Cannot rebuild {value['qualname']!r} of module {value['module']!r}",
                f": {type(exc).__name__}: {safe_str(exc)}",
            ) from exc

    def _decode_task_result(self, value: dict[str, Json], depth: int) -> Any:
        if len(value) != 3 or "ok" not in value or "err" not in value:
            raise _malformed(
                "__task_result__", "expected exactly the keys '__task_result__', 'ok' and 'err'"
            )
        err = value["err"]
        if err is not None:
            try:
                if type(err) is not dict or "__task_error__" not in err:
                    raise _malformed("__task_result__", "'err' must be a __task_error__ object")
                error = self._decode_object(err, depth + 1)
            except SerializationError as exc:
                exc.add_segment(".err")
                raise
            return self._task_result_type(err=error)
        try:
            ok = self._decode(value["ok"], depth + 1)
        except SerializationError as exc:
            exc.add_segment(".ok")
            raise
        return self._task_result_type(ok=ok)

    def _decode_task_error(self, value: dict[str, Json], depth: int) -> Any:
        fields: dict[str, Any] = {}
        current = ".error_code"
        try:
            fields["error_code"] = self._decode_error_code(value.get("error_code"), depth + 1)
            current = ".message"
            message = value.get("message")
            if message is not None and type(message) is not str:
                raise _malformed("__task_error__", "'message' must be a string or null")
            fields["message"] = message
            current = ".data"
            fields["data"] = self._decode(value.get("data"), depth + 1)
            current = ".exception"
            exception = value.get("exception")
            if exception is not None:
                if type(exception) is not dict:
                    raise _malformed("__task_error__", "'exception' must be an object or null")
                exception = self._decode_plain(exception, depth + 1)
            fields["exception"] = exception
            error_type = self._task_error_type
            if "sub_workflow_id" in value:
                current = ".sub_workflow_id"
                if type(value["sub_workflow_id"]) is not str:
                    raise _malformed("__task_error__", "'sub_workflow_id' must be a string")
                fields["sub_workflow_id"] = value["sub_workflow_id"]
                current = ".sub_workflow_summary"
                fields["sub_workflow_summary"] = self._decode(
                    value.get("sub_workflow_summary"), depth + 1
                )
                error_type = self._sub_workflow_error_type
        except SerializationError as exc:
            exc.add_segment(current)
            raise
        try:
            return error_type(**fields)
        except Exception as exc:  # TaskError's construction rules
            raise SerializationError(
                f"Cannot rebuild {error_type.__name__}", f": {type(exc).__name__}: {safe_str(exc)}"
            ) from exc

    def _decode_error_code(self, code: Json, depth: int) -> Any:
        if code is None or type(code) is str:
            return code
        if type(code) is dict:
            _need(depth)
            name = code.get("__builtin_task_code__")
            if len(code) == 1 and type(name) is str:
                member = self._builtin_codes.get(name)
                if member is not None:
                    return member
                raise SerializationError(f"Unknown built-in error code {name!r}")
        raise _malformed(
            "__task_error__", "'error_code' must be null, a string or a built-in code object"
        )


# --- helpers without state --------------------------------------------------


def _is_pydantic_model(cls: type) -> bool:
    # pydantic is never imported here: a model class exists only if it is loaded.
    pydantic = sys.modules.get("pydantic")
    if pydantic is None:
        return False
    base = getattr(pydantic, "BaseModel", None)
    return isinstance(base, type) and issubclass(cls, base)


def _exception_json(exception: object) -> object:
    """The stored form of TaskError.exception (serialization.md §8.2)."""
    if isinstance(exception, BaseException):
        return {
            "type": type(exception).__name__,
            "message": safe_str(exception),
            "traceback": "".join(traceback.format_exception(exception)),
        }
    if isinstance(exception, dict):
        return exception
    return {"type": type(exception).__name__, "message": safe_str(exception)}


def _parse_iso(value: dict[str, Json], tag: str, parse: Any) -> Any:
    text = value.get("value")
    if type(text) is not str:
        raise _malformed(tag, "'value' must be a string")
    try:
        return parse(text)
    except Exception as exc:  # ValueError / InvalidOperation
        raise SerializationError(f"Invalid {tag} value {text!r}") from exc


def _decode_timedelta(value: dict[str, Json]) -> _dt.timedelta:
    parts = (value.get("days"), value.get("seconds"), value.get("microseconds"))
    for part in parts:
        if type(part) is not int:
            raise _malformed(
                "__timedelta__", "'days', 'seconds' and 'microseconds' must be integers"
            )
    try:
        return _dt.timedelta(parts[0], parts[1], parts[2])  # type: ignore[arg-type]
    except Exception as exc:  # OverflowError
        raise SerializationError("Invalid __timedelta__ value", f": {safe_str(exc)}") from exc
