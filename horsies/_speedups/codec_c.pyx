"""The recursive walk of the codec: the compiled twin of codec_py.

Same names, same results, same exceptions and messages as codec_py, which
is the readable reference; read that first. This file follows its structure
function by function and adds only speed: exact-type fast paths with C
checks, C integer and float range checks, a C scan for lone surrogates, and
typed containers.
"""

import dataclasses
import datetime as _dt
import sys
import traceback
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum

import msgspec

from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport (
    PyLong_AsLongLongAndOverflow,
    PyLong_AsUnsignedLongLong,
    PyLong_AsUnsignedLongLongMask,
    PyLong_FromString,
)
from cpython.object cimport PyObject_GenericSetAttr
from cpython.unicode cimport (
    Py_UCS1,
    Py_UCS2,
    PyUnicode_1BYTE_DATA,
    PyUnicode_1BYTE_KIND,
    PyUnicode_2BYTE_DATA,
    PyUnicode_2BYTE_KIND,
    PyUnicode_4BYTE_DATA,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_FromStringAndSize,
    PyUnicode_READ_CHAR,
)
from libc.math cimport isfinite

from horsies._speedups._api import (
    DEPTH_LIMIT,
    MARKER_KEYS,
    RESERVED_PREFIX,
    SerializationError,
    foreign_error,
    safe_repr,
    safe_str,
)

__all__ = ["Codec"]

cdef object INT_MAX = 2**64 - 1
cdef Py_ssize_t _DEPTH_LIMIT = DEPTH_LIMIT
cdef Py_ssize_t _CACHE_LIMIT = 4096
cdef frozenset _MARKERS = MARKER_KEYS
cdef str _RESERVED_PREFIX = RESERVED_PREFIX

cdef enum Tag:
    T_DATETIME = 1, T_DATE, T_TIME, T_TIMEDELTA, T_UUID, T_DECIMAL, T_ENUM, T_DATACLASS
    T_STRUCT, T_PYDANTIC, T_TASK_RESULT, T_TASK_ERROR, T_BUILTIN_CODE

cdef dict _TAG_OF_MARKER = {
    "__datetime__": T_DATETIME,
    "__date__": T_DATE,
    "__time__": T_TIME,
    "__timedelta__": T_TIMEDELTA,
    "__uuid__": T_UUID,
    "__decimal__": T_DECIMAL,
    "__enum__": T_ENUM,
    "__dataclass__": T_DATACLASS,
    "__msgspec_struct__": T_STRUCT,
    "__pydantic_model__": T_PYDANTIC,
    "__task_result__": T_TASK_RESULT,
    "__task_error__": T_TASK_ERROR,
    "__builtin_task_code__": T_BUILTIN_CODE,
}
assert frozenset(_TAG_OF_MARKER) == MARKER_KEYS


cdef enum Kind:
    ENUM, INT, FLOAT, STR, DATETIME, DATE, TIME, TIMEDELTA, UUID
    DECIMAL, TASK_RESULT, TASK_ERROR, STRUCT, PYDANTIC, DATACLASS, MAPPING, SEQUENCE, REFUSED

cdef dict _TAG_OF_KIND = {
    ENUM: "__enum__",
    STRUCT: "__msgspec_struct__",
    PYDANTIC: "__pydantic_model__",
    DATACLASS: "__dataclass__",
}
cdef tuple _NOT_SEQUENCES = (str, bytes, bytearray, memoryview)

# Looked up once: the walk calls these for every value of their type.
cdef type _DATETIME = _dt.datetime
cdef type _DATE = _dt.date
cdef type _UUID = uuid.UUID
cdef type _DECIMAL = Decimal
cdef object _datetime_isoformat = _dt.datetime.isoformat
cdef object _date_isoformat = _dt.date.isoformat
cdef object _time_isoformat = _dt.time.isoformat
cdef object _decimal_str = Decimal.__str__
cdef object _uuid_str = uuid.UUID.__str__
cdef object _datetime_fromisoformat = _dt.datetime.fromisoformat
cdef object _date_fromisoformat = _dt.date.fromisoformat
cdef object _time_fromisoformat = _dt.time.fromisoformat
cdef object _timedelta = _dt.timedelta
cdef object _SAFE_UNKNOWN = uuid.SafeUUID.unknown
cdef const char *_HEX = b"0123456789abcdef"


cdef str _uuid_text(object value):
    """str(UUID) written in C: the canonical 36-character lowercase form."""
    cdef unsigned long long hi, lo, nibble
    cdef char buf[36]
    cdef int i, pos = 0
    number = value.int
    if type(number) is not int or number < 0:
        return _uuid_str(value)
    try:
        hi = PyLong_AsUnsignedLongLong(number >> 64)
    except OverflowError:  # not a 128-bit value: let uuid say what it makes of it
        return _uuid_str(value)
    lo = PyLong_AsUnsignedLongLongMask(number)
    for i in range(32):
        if i == 8 or i == 12 or i == 16 or i == 20:
            buf[pos] = 45  # "-"
            pos += 1
        if i < 16:
            nibble = (hi >> (60 - 4 * i)) & 15
        else:
            nibble = (lo >> (60 - 4 * (i - 16))) & 15
        buf[pos] = _HEX[nibble]
        pos += 1
    return PyUnicode_FromStringAndSize(buf, 36)


cdef object _uuid_parse(str text):
    """UUID(text) for the canonical form, built in C; anything else goes to uuid.UUID."""
    cdef char digits[33]
    cdef Py_UCS1 *data
    cdef Py_UCS1 ch
    cdef int i, n = 0
    if (not _UUID_FAST or PyUnicode_GET_LENGTH(text) != 36
            or PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND):
        return _UUID(text)
    data = PyUnicode_1BYTE_DATA(text)
    for i in range(36):
        ch = data[i]
        if i == 8 or i == 13 or i == 18 or i == 23:
            if ch != 45:
                return _UUID(text)
        elif (48 <= ch <= 57) or (97 <= ch <= 102) or (65 <= ch <= 70):
            digits[n] = <char> ch
            n += 1
        else:
            return _UUID(text)
    digits[32] = 0
    result = _UUID.__new__(_UUID)
    PyObject_GenericSetAttr(result, "int", PyLong_FromString(digits, NULL, 16))
    PyObject_GenericSetAttr(result, "is_safe", _SAFE_UNKNOWN)
    return result


cdef bint _UUID_FAST = False


def _check_uuid_fast_path():
    # The C path relies on UUID keeping its value in the `int` and `is_safe`
    # slots; use it only if it gives exactly what uuid.UUID gives.
    global _UUID_FAST
    _UUID_FAST = True
    try:
        for text in ("00000000-0000-0000-0000-000000000000",
                     "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
                     "ffffffff-ffff-ffff-ffff-ffffffffffff"):
            built = _uuid_parse(text)
            reference = _UUID(text)
            if (built != reference or built.is_safe != reference.is_safe
                    or _uuid_text(built) != str(reference) or hash(built) != hash(reference)):
                _UUID_FAST = False
    except Exception:
        _UUID_FAST = False


_check_uuid_fast_path()


# --- small checks shared by both directions ---------------------------------


cdef inline int _need(Py_ssize_t depth) except -1:
    if depth >= _DEPTH_LIMIT:
        raise SerializationError("Nesting too deep", f" (limit: {DEPTH_LIMIT} levels)")
    return 0


cdef bint _has_surrogate(str text) noexcept:
    cdef unsigned int kind = PyUnicode_KIND(text)
    cdef Py_ssize_t i, n
    cdef Py_UCS2 *d2
    cdef Py_UCS4 *d4
    if kind == PyUnicode_1BYTE_KIND:
        return False
    n = PyUnicode_GET_LENGTH(text)
    if kind == PyUnicode_2BYTE_KIND:
        d2 = PyUnicode_2BYTE_DATA(text)
        for i in range(n):
            if 0xD800 <= d2[i] <= 0xDFFF:
                return True
        return False
    d4 = PyUnicode_4BYTE_DATA(text)
    for i in range(n):
        if 0xD800 <= d4[i] <= 0xDFFF:
            return True
    return False


cdef inline str _checked_str(str text):
    if _has_surrogate(text):
        raise SerializationError("Cannot serialize a string with a lone surrogate")
    return text


cdef object _checked_int(object number):
    cdef int overflow = 0
    PyLong_AsLongLongAndOverflow(number, &overflow)
    if overflow == 0 or (overflow > 0 and number <= INT_MAX):
        return number
    raise SerializationError("Integer out of range", " (allowed: -2**63 .. 2**64-1)")


cdef inline object _checked_float(object number):
    if not isfinite(PyFloat_AS_DOUBLE(number)):
        raise SerializationError("Non-finite float")
    return number


cdef inline bint _dunder(str key) noexcept:
    return (
        PyUnicode_GET_LENGTH(key) >= 2
        and PyUnicode_READ_CHAR(key, 0) == 95  # "_"
        and PyUnicode_READ_CHAR(key, 1) == 95
    )


cdef inline bint _is_reserved(str key) except -1:
    return _dunder(key) and (key in _MARKERS or key.startswith(_RESERVED_PREFIX))


cdef _malformed(str tag, str detail):
    return SerializationError(f"Malformed {tag} form", f": {detail}")


cdef object _import_problem(object cls, object resolve_class):
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


cdef object _field_problem(tuple names):
    for name in names:
        if _is_reserved(name):
            return f"Reserved key {name!r}", " (a field name)"
    return None


cdef bint _is_pydantic_model(object cls) except -1:
    pydantic = sys.modules.get("pydantic")
    if pydantic is None:
        return False
    base = getattr(pydantic, "BaseModel", None)
    return isinstance(base, type) and issubclass(cls, base)


cdef object _exception_json(object exception):
    if isinstance(exception, BaseException):
        return {
            "type": type(exception).__name__,
            "message": safe_str(exception),
            "traceback": "".join(traceback.format_exception(exception)),
        }
    if isinstance(exception, dict):
        return exception
    return {"type": type(exception).__name__, "message": safe_str(exception)}


cdef object _parse_iso(dict value, str tag, object parse):
    text = value.get("value")
    if type(text) is not str:
        raise _malformed(tag, "'value' must be a string")
    try:
        return _uuid_parse(<str> text) if parse is None else parse(text)
    except Exception as exc:
        raise SerializationError(f"Invalid {tag} value {text!r}") from exc


cdef object _decode_timedelta(dict value):
    parts = (value.get("days"), value.get("seconds"), value.get("microseconds"))
    for part in parts:
        if type(part) is not int:
            raise _malformed("__timedelta__", "'days', 'seconds' and 'microseconds' must be integers")
    try:
        return _timedelta(parts[0], parts[1], parts[2])
    except Exception as exc:
        raise SerializationError("Invalid __timedelta__ value", f": {safe_str(exc)}") from exc


cdef class Codec:
    """Value <-> JSON tree, with the caches of what was learned about classes."""

    cdef object _resolve_class
    cdef object _task_result_type
    cdef object _task_error_type
    cdef object _sub_workflow_error_type
    cdef object _builtin_codes
    cdef dict _classes
    cdef dict _resolved

    def __init__(self, resolve_class, task_result_type, task_error_type,
                 sub_workflow_error_type, builtin_codes):
        self._resolve_class = resolve_class
        self._task_result_type = task_result_type
        self._task_error_type = task_error_type
        self._sub_workflow_error_type = sub_workflow_error_type
        self._builtin_codes = builtin_codes
        self._classes = {}
        self._resolved = {}

    def clear_caches(self):
        self._classes.clear()
        self._resolved.clear()

    # === encoding ==============================================================

    def encode(self, value, str path="value"):
        """`value` as a JSON tree; SerializationError naming `path` on failure."""
        try:
            return self._encode(value, 0, [])
        except SerializationError as exc:
            raise exc.locate(path) from None
        except Exception as exc:
            raise foreign_error("serializing", value, exc).locate(path) from exc

    def encode_args(self, args):
        """Positional arguments as a JSON array; errors at ``args[<i>]``."""
        return self.encode(args, "args")

    def encode_kwargs(self, kwargs):
        """Keyword arguments as a JSON object; errors at ``kwargs["<name>"]``."""
        return self.encode(kwargs, "kwargs")

    cdef object _encode(self, object value, Py_ssize_t depth, list stack):
        cdef object cls = type(value)
        if cls is str:
            return _checked_str(<str> value)
        if cls is int:
            return _checked_int(value)
        if cls is float:
            return _checked_float(value)
        if value is None or cls is bool:
            return value
        if cls is dict:
            return self._encode_mapping(value, depth, stack)
        if cls is list or cls is tuple:
            return self._encode_sequence(value, depth, stack)
        try:
            return self._encode_other(value, cls, depth, stack)
        except SerializationError:
            raise
        except Exception as exc:
            raise foreign_error("serializing", value, exc) from exc

    cdef int _enter(self, object value, Py_ssize_t depth, list stack) except -1:
        cdef Py_ssize_t i
        _need(depth)
        for i in range(len(stack)):
            if stack[i] is value:
                raise SerializationError("Circular reference")
        stack.append(value)
        return 0

    cdef str _key(self, object key, dict out, object mapping):
        cdef object skey = key if type(key) is str else str(key)
        if type(skey) is not str:
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

    cdef dict _encode_mapping(self, object value, Py_ssize_t depth, list stack):
        cdef dict out = {}
        cdef object current = None
        cdef str skey
        self._enter(value, depth, stack)
        try:
            if type(value) is dict:
                for key, item in (<dict> value).items():
                    # Plain str keys (the usual case) need only the checks of _key that can fail for them.
                    if (type(key) is str and not _dunder(<str> key) and not _has_surrogate(<str> key)
                            and key not in out):
                        skey = <str> key
                    else:
                        skey = self._key(key, out, value)
                    current = (key,)
                    out[skey] = self._encode(item, depth + 1, stack)
                    current = None
            else:
                for key, item in value.items():
                    skey = self._key(key, out, value)
                    current = (key,)
                    out[skey] = self._encode(item, depth + 1, stack)
                    current = None
        except SerializationError as exc:
            if current is not None:
                exc.add_segment(current)
            raise
        except Exception as exc:
            raise foreign_error("serializing", value, exc) from exc
        stack.pop()
        return out

    cdef list _encode_sequence(self, object value, Py_ssize_t depth, list stack):
        cdef list out
        cdef Py_ssize_t index = -1
        self._enter(value, depth, stack)
        try:
            if type(value) is list:
                out = []
                for item in <list> value:
                    index += 1
                    out.append(self._encode(item, depth + 1, stack))
            elif type(value) is tuple:
                out = []
                for item in <tuple> value:
                    index += 1
                    out.append(self._encode(item, depth + 1, stack))
            else:
                out = []
                for item in value:
                    index += 1
                    out.append(self._encode(item, depth + 1, stack))
        except SerializationError as exc:
            exc.add_segment(index)
            raise
        except Exception as exc:
            raise foreign_error("serializing", value, exc) from exc
        stack.pop()
        return out

    cdef dict _encode_fields(self, object value, tuple names, Py_ssize_t depth, list stack):
        cdef dict data = {}
        cdef object current = None
        try:
            for name in names:
                current = name
                data[name] = self._encode(getattr(value, name), depth, stack)
        except SerializationError as exc:
            exc.add_segment("." + current)
            raise
        except Exception as exc:
            err = foreign_error("serializing", value, exc)
            err.add_segment("." + current)
            raise err from exc
        return data

    cdef tuple _classify(self, object cls):
        cdef int kind
        details = None
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
            kind, details = DATACLASS, tuple([f.name for f in dataclasses.fields(cls)])
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

    cdef object _encode_other(self, object value, object cls, Py_ssize_t depth, list stack):
        cdef tuple info
        cdef int kind
        cdef object found
        # The common typed values first, by exact type (same rows as _classify).
        if cls is _DATETIME:
            _need(depth)
            return {"__datetime__": True, "value": _datetime_isoformat(value)}
        if cls is _UUID:
            _need(depth)
            return {"__uuid__": True, "value": _uuid_text(value)}
        if cls is _DECIMAL:
            _need(depth)
            return {"__decimal__": True, "value": _decimal_str(value)}
        if cls is _DATE:
            _need(depth)
            return {"__date__": True, "value": _date_isoformat(value)}
        found = self._classes.get(cls)
        if found is None:
            info = self._classify(cls)
        else:
            info = <tuple> found
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
            return {"__datetime__": True, "value": _datetime_isoformat(value)}
        if kind == DATE:
            _need(depth)
            return {"__date__": True, "value": _date_isoformat(value)}
        if kind == TIME:
            _need(depth)
            return {"__time__": True, "value": _time_isoformat(value)}
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
            return {"__uuid__": True, "value": _uuid_text(value)}
        if kind == DECIMAL:
            _need(depth)
            return {"__decimal__": True, "value": _decimal_str(value)}
        if kind == TASK_RESULT:
            return self._encode_task_result(value, depth, stack)
        if kind == TASK_ERROR:
            return self._encode_task_error(value, depth, stack)
        if kind == STRUCT or kind == DATACLASS:
            self._enter(value, depth + 1, stack)
            data = self._encode_fields(value, <tuple> info[3], depth + 2, stack)
            stack.pop()
            return {_TAG_OF_KIND[kind]: True, "module": info[1], "qualname": info[2], "data": data}
        if kind == PYDANTIC:
            return self._encode_pydantic(value, info, depth, stack)
        if kind == MAPPING:
            return self._encode_mapping(value, depth, stack)
        if kind == SEQUENCE:
            return self._encode_sequence(value, depth, stack)
        raise SerializationError(f"Cannot serialize value of type {cls.__name__}")

    cdef object _encode_pydantic(self, object value, tuple info, Py_ssize_t depth, list stack):
        cdef dict data = {}
        cdef object current = None
        self._enter(value, depth + 1, stack)
        dumped = value.model_dump(mode="json")
        if type(dumped) is not dict:
            raise SerializationError(
                f"Cannot serialize pydantic model {info[2]!r}",
                f": model_dump returned {type(dumped).__name__}, not dict",
            )
        try:
            for key, item in (<dict> dumped).items():
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

    cdef object _encode_task_result(self, object value, Py_ssize_t depth, list stack):
        ok = None
        err = None
        self._enter(value, depth, stack)
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

    cdef object _encode_task_error(self, object value, Py_ssize_t depth, list stack):
        cdef dict out = {"__task_error__": True}
        cdef str current = ".error_code"
        self._enter(value, depth, stack)
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
        except Exception as exc:
            err = foreign_error("serializing", value, exc)
            err.add_segment(current)
            raise err from exc
        stack.pop()
        return out

    cdef object _encode_error_code(self, object code, Py_ssize_t depth):
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

    def decode(self, value, str path="value"):
        """The value a JSON tree stands for; SerializationError naming `path` on failure."""
        try:
            return self._decode(value, 0)
        except SerializationError as exc:
            raise exc.locate(path) from None
        except Exception as exc:
            raise foreign_error("deserializing", value, exc).locate(path) from exc

    def decode_args(self, items):
        """Decoded positional arguments; errors at ``args[<i>]``."""
        return self.decode(items, "args")

    def decode_kwargs(self, items):
        """Decoded keyword arguments (the object itself is never a tagged form)."""
        try:
            if type(items) is not dict:
                raise SerializationError(
                    f"Cannot deserialize value of type {type(items).__name__}", " (not a JSON object)"
                )
            return self._decode_plain(<dict> items, 0)
        except SerializationError as exc:
            raise exc.locate("kwargs") from None
        except Exception as exc:
            raise foreign_error("deserializing", items, exc).locate("kwargs") from exc

    cdef object _decode(self, object value, Py_ssize_t depth):
        cdef object cls = type(value)
        if cls is str or cls is int or cls is float or cls is bool or value is None:
            return value
        if cls is list:
            return self._decode_list(<list> value, depth)
        if cls is dict:
            return self._decode_object(<dict> value, depth)
        raise SerializationError(
            f"Cannot deserialize value of type {cls.__name__}", " (not a JSON value)"
        )

    cdef list _decode_list(self, list value, Py_ssize_t depth):
        cdef list out = []
        cdef Py_ssize_t index = -1
        cdef object cls
        _need(depth)
        try:
            for item in value:
                index += 1
                cls = type(item)
                # Scalars inline: most array items are.
                if cls is str or cls is int or cls is float or cls is bool or item is None:
                    out.append(item)
                else:
                    out.append(self._decode(item, depth + 1))
        except SerializationError as exc:
            exc.add_segment(index)
            raise
        return out

    cdef dict _decode_plain(self, dict value, Py_ssize_t depth):
        cdef dict out = {}
        cdef object current = None
        cdef object cls
        _need(depth)
        try:
            for key, item in value.items():
                if type(key) is not str:
                    raise SerializationError(
                        f"Cannot deserialize an object key of type {type(key).__name__}"
                    )
                if _dunder(key) and key in _MARKERS:
                    raise SerializationError(f"Unexpected marker key {key!r}")
                cls = type(item)
                if cls is str or cls is int or cls is float or cls is bool or item is None:
                    out[key] = item
                else:
                    current = (key,)
                    out[key] = self._decode(item, depth + 1)
                    current = None
        except SerializationError as exc:
            if current is not None:
                exc.add_segment(current)
            raise
        return out

    cdef object _decode_object(self, dict value, Py_ssize_t depth):
        cdef object marker = None
        cdef int tag = 0
        for key in value:
            if type(key) is str and _dunder(<str> key):
                found = _TAG_OF_MARKER.get(key)
                if found is not None:
                    if marker is not None:
                        raise SerializationError(
                            "Malformed tagged form", f": more than one marker ({marker!r}, {key!r})"
                        )
                    marker = key
                    tag = found
        if marker is None:
            return self._decode_plain(value, depth)
        _need(depth)
        if tag == T_BUILTIN_CODE:
            raise _malformed(marker, "only valid as the error_code of a TaskError")
        if value[marker] is not True:
            raise _malformed(marker, "the marker must be true")
        if tag == T_DATETIME:
            return _parse_iso(value, marker, _datetime_fromisoformat)
        if tag == T_DATE:
            return _parse_iso(value, marker, _date_fromisoformat)
        if tag == T_TIME:
            return _parse_iso(value, marker, _time_fromisoformat)
        if tag == T_TIMEDELTA:
            return _decode_timedelta(value)
        if tag == T_UUID:
            return _parse_iso(value, marker, None)
        if tag == T_DECIMAL:
            return _parse_iso(value, marker, _DECIMAL)
        if tag == T_ENUM:
            return self._decode_enum(value, depth)
        if tag == T_DATACLASS or tag == T_STRUCT:
            return self._decode_fields(value, marker, depth)
        if tag == T_PYDANTIC:
            return self._decode_pydantic(value)
        if tag == T_TASK_RESULT:
            return self._decode_task_result(value, depth)
        return self._decode_task_error(value, depth)

    cdef tuple _class_for(self, dict value, str tag):
        module = value.get("module")
        qualname = value.get("qualname")
        if type(module) is not str or type(qualname) is not str:
            raise _malformed(tag, "'module' and 'qualname' must be strings")
        key = (tag, module, qualname)
        found = self._resolved.get(key)
        if found is not None:
            return <tuple> found
        cls = self._resolve_class(module, qualname)
        where = f"{module}:{qualname}"
        details = None
        if tag == "__enum__":
            if not (isinstance(cls, type) and issubclass(cls, Enum)):
                raise SerializationError(f"{where!r} is not an Enum class")
            details = dict(cls.__members__)  # a copy: enums cannot gain members
        elif tag == "__dataclass__":
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
                raise SerializationError(f"{where!r} is not a dataclass")
            fields = dataclasses.fields(cls)
            details = (
                frozenset([f.name for f in fields if f.init]),
                frozenset([f.name for f in fields if not f.init]),
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
        return <tuple> found

    cdef object _decode_enum(self, dict value, Py_ssize_t depth):
        cdef bint has_name = "name" in value
        if has_name:
            if type(value["name"]) is not str:
                raise _malformed("__enum__", "'name' must be a string")
        elif "value" not in value:
            raise _malformed("__enum__", "needs 'name' or 'value'")
        cls, members = self._class_for(value, "__enum__")
        if has_name:
            member = (<dict> members).get(value["name"])
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
        except Exception as exc:
            raise SerializationError(
                f"Enum {value['qualname']!r} has no member with value {safe_repr(raw)}"
            ) from exc

    cdef object _decode_fields(self, dict value, str tag, Py_ssize_t depth):
        cdef dict decoded = {}
        cdef dict kwargs
        cdef object current = None
        data = value.get("data")
        if type(data) is not dict:
            raise _malformed(tag, "'data' must be an object")
        cls, names = self._class_for(value, tag)
        init_names, late_names = names
        _need(depth + 1)
        try:
            for name, item in (<dict> data).items():
                current = name
                decoded[name] = self._decode(item, depth + 2)
        except SerializationError as exc:
            exc.add_segment("." + current)
            raise
        kwargs = {k: v for k, v in decoded.items() if k in init_names}
        try:
            instance = cls(**kwargs)
            for name, item in decoded.items():
                if name in late_names:
                    object.__setattr__(instance, name, item)
        except Exception as exc:
            raise SerializationError(
                f"Cannot rebuild {value['qualname']!r} of module {value['module']!r}",
                f": {type(exc).__name__}: {safe_str(exc)}",
            ) from exc
        return instance

    cdef object _decode_pydantic(self, dict value):
        if "data" not in value:
            raise _malformed("__pydantic_model__", "'data' is missing")
        cls, _ = self._class_for(value, "__pydantic_model__")
        try:
            return cls.model_validate(value["data"])
        except Exception as exc:
            raise SerializationError(
                f"Cannot rebuild {value['qualname']!r} of module {value['module']!r}",
                f": {type(exc).__name__}: {safe_str(exc)}",
            ) from exc

    cdef object _decode_task_result(self, dict value, Py_ssize_t depth):
        if len(value) != 3 or "ok" not in value or "err" not in value:
            raise _malformed(
                "__task_result__", "expected exactly the keys '__task_result__', 'ok' and 'err'"
            )
        err = value["err"]
        if err is not None:
            try:
                if type(err) is not dict or "__task_error__" not in err:
                    raise _malformed("__task_result__", "'err' must be a __task_error__ object")
                error = self._decode_object(<dict> err, depth + 1)
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

    cdef object _decode_task_error(self, dict value, Py_ssize_t depth):
        cdef dict fields = {}
        cdef str current = ".error_code"
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
                exception = self._decode_plain(<dict> exception, depth + 1)
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
        except Exception as exc:
            raise SerializationError(
                f"Cannot rebuild {error_type.__name__}", f": {type(exc).__name__}: {safe_str(exc)}"
            ) from exc

    cdef object _decode_error_code(self, object code, Py_ssize_t depth):
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
