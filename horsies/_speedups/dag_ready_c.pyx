"""Workflow readiness rule: the compiled twin of dag_ready_py (same names, results, errors).

The rule runs on C integers. Any value beyond +-2**61 (so that the sum of
three counts cannot overflow) takes a Python-object path that mirrors the
pure twin, so results stay exact at any size. The batch form reads lists,
tuples and native integer buffers in place, one row at a time, so that the
first bad row raises exactly what the pure twin raises for it.
"""

from cpython.buffer cimport PyBUF_FULL_RO, PyBuffer_Release, PyObject_GetBuffer
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.object cimport PyObject_IsTrue
from cpython.ref cimport Py_INCREF, PyObject
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from horsies._speedups._api import (
    INT_FORMATS,
    READINESS_ARGS,
    Join,
    Readiness,
    column_format_error,
    column_shape_error,
    column_type_error,
    counts_range_error,
    flag_type_error,
    int_type_error,
    length_error,
    overfull_error,
    row_error,
    unknown_join_error,
)

__all__ = ["Join", "Readiness", "evaluate_readiness", "evaluate_readiness_many"]


cdef extern from "Python.h":
    # Borrowed-pointer forms: the row loop touches list items without
    # reference counting and without calling any Python code.
    PyObject *_list_item "PyList_GET_ITEM" (PyObject *op, Py_ssize_t i)
    PyObject *_tuple_item "PyTuple_GET_ITEM" (PyObject *op, Py_ssize_t i)
    Py_ssize_t _list_size "PyList_GET_SIZE" (PyObject *op)
    bint _is_int "PyLong_Check" (PyObject *op)
    bint _is_exact_int "PyLong_CheckExact" (PyObject *op)
    bint _is_bool "PyBool_Check" (PyObject *op)
    long long _as_long_long "PyLong_AsLongLongAndOverflow" (PyObject *op, int *overflow)
    PyObject *_true "Py_True"


cdef enum:
    # results (Readiness values) and rule errors
    _WAIT = 0
    _RUN = 1
    _SKIP_IMPOSSIBLE = 2
    _SKIP_UPSTREAM = 3
    _E_JOIN = -1
    _E_RANGE = -2
    _E_OVERFULL = -3
    # what reading one value gave
    _OK = 0
    _BAD_TYPE = 1
    _BIG = 2  # beyond the C range, or a value the Python path must read
    # column kinds
    _LIST = 0
    _TUPLE = 1
    _BUFFER = 2

cdef long long _SMALL = 1LL << 61
cdef Py_ssize_t _FLAG = 2  # position of allow_failed_deps
cdef tuple _RESULTS = (_WAIT, _RUN, _SKIP_IMPOSSIBLE, _SKIP_UPSTREAM)


cdef inline int _rule(long long join, long long min_success, bint allow_failed_deps,
                      long long total, long long completed, long long failed,
                      long long skipped, long long ctx_pending) noexcept nogil:
    """The rule of workflows.md §16.4 on values within +-2**61; errors as _E_* codes."""
    cdef long long finished, need
    if join < 0 or join > 2:
        return _E_JOIN
    if (total < 1 or completed < 0 or failed < 0 or skipped < 0 or ctx_pending < 0
            or min_success < 0):
        return _E_RANGE
    finished = completed + failed + skipped
    if finished > total:
        return _E_OVERFULL
    if join == 0:
        if finished < total or ctx_pending > 0:
            return _WAIT
        if failed + skipped > 0 and not allow_failed_deps:
            return _SKIP_UPSTREAM
        return _RUN
    need = 1 if join == 1 else (min_success if min_success >= 1 else 1)
    if completed >= need:
        return _WAIT if ctx_pending > 0 else _RUN  # the context gate (§6.5)
    if completed + (total - finished) < need:
        return _SKIP_IMPOSSIBLE
    return _WAIT


cdef object _rule_error(int code, long long join, long long total, long long completed,
                        long long failed, long long skipped):
    if code == _E_JOIN:
        return unknown_join_error(join)
    if code == _E_RANGE:
        return counts_range_error()
    return overfull_error(total, completed, failed, skipped)


# --- the Python-object path: values beyond the C range (mirrors dag_ready_py) ----------


def _rule_objects(join, min_success, allow_failed_deps, total, completed, failed, skipped,
                  ctx_pending):
    if join not in (0, 1, 2):
        raise unknown_join_error(join)
    if total < 1 or min(completed, failed, skipped, ctx_pending, min_success) < 0:
        raise counts_range_error()
    finished = completed + failed + skipped
    if finished > total:
        raise overfull_error(total, completed, failed, skipped)
    if join == 0:
        if finished < total or ctx_pending > 0:
            return _WAIT
        if failed + skipped > 0 and not allow_failed_deps:
            return _SKIP_UPSTREAM
        return _RUN
    need = 1 if join == 1 else max(min_success, 1)
    if completed >= need:
        return _WAIT if ctx_pending > 0 else _RUN
    if completed + (total - finished) < need:
        return _SKIP_IMPOSSIBLE
    return _WAIT


cdef object _row_objects(Py_ssize_t index, tuple row):
    cdef list values = []
    cdef Py_ssize_t position
    for position in range(8):
        value = row[position]
        if position == _FLAG:
            if not isinstance(value, int):
                raise flag_type_error(f"{READINESS_ARGS[position]}[{index}]", value)
            values.append(1 if value else 0)
        elif isinstance(value, bool) or not isinstance(value, int):
            raise int_type_error(f"{READINESS_ARGS[position]}[{index}]", value)
        else:
            values.append(int(value))
    try:
        return _rule_objects(values[0], values[1], values[2] != 0, *values[3:])
    except ValueError as exc:
        raise row_error(index, exc) from None


cdef list _rows_objects(tuple args, Py_ssize_t start):
    """Rows `start`.. of the batch through the Python-object path."""
    columns = [
        arg if type(arg) is list or type(arg) is tuple else memoryview(arg).tolist()
        for arg in args
    ]
    return [_row_objects(index, tuple([column[index] for column in columns]))
            for index in range(start, len(columns[0]))]


# --- one node ---------------------------------------------------------------------------


cdef inline int _read_int(object value, long long *out) noexcept:
    """_OK with the value in `out`, _BAD_TYPE for a non-int (or a bool), or _BIG."""
    cdef int overflow = 0
    cdef long long v
    cdef PyObject *p = <PyObject *> value
    if _is_bool(p) or not _is_int(p):
        return _BAD_TYPE
    v = _as_long_long(p, &overflow)
    if overflow != 0 or v > _SMALL or v < -_SMALL:
        return _BIG
    out[0] = v
    return _OK


cdef inline int _arg(str name, object value, long long *out) except -1:
    """Like _read_int, raising the TypeError of argument `name` instead of _BAD_TYPE."""
    cdef int status = _read_int(value, out)
    if status == _BAD_TYPE:
        raise int_type_error(name, value)
    return status


def evaluate_readiness(join, min_success, allow_failed_deps, total, completed, failed, skipped,
                       ctx_pending):
    """What happens to one PENDING node: a `Readiness` value (workflows.md §16.4)."""
    cdef long long j = 0, m = 0, t = 0, c = 0, f = 0, s = 0, x = 0
    cdef int code
    cdef int big = _arg("join", join, &j)
    big |= _arg("min_success", min_success, &m)
    if not isinstance(allow_failed_deps, int):
        raise flag_type_error("allow_failed_deps", allow_failed_deps)
    cdef bint allow = PyObject_IsTrue(allow_failed_deps)
    big |= _arg("total", total, &t)
    big |= _arg("completed", completed, &c)
    big |= _arg("failed", failed, &f)
    big |= _arg("skipped", skipped, &s)
    big |= _arg("ctx_pending", ctx_pending, &x)
    if big:
        return _rule_objects(int(join), int(min_success), allow, int(total), int(completed),
                             int(failed), int(skipped), int(ctx_pending))
    code = _rule(j, m, allow, t, c, f, s, x)
    if code < 0:
        raise _rule_error(code, j, t, c, f, s)
    return code


# --- many nodes -------------------------------------------------------------------------


ctypedef struct _Column:
    int kind  # _LIST, _TUPLE or _BUFFER
    PyObject *seq  # the list or tuple (borrowed: the caller's argument keeps it alive)
    Py_ssize_t length
    Py_buffer view  # for _BUFFER
    bint is_signed
    Py_ssize_t itemsize
    Py_ssize_t stride
    Py_ssize_t suboffset  # -1 unless the buffer stores pointers (PIL style)


cdef int _open_column(_Column *col, str name, object value) except -1:
    """Check one argument and prepare to read it; a buffer stays exported until closed."""
    cdef str fmt
    if type(value) is list or type(value) is tuple:
        col.kind = _LIST if type(value) is list else _TUPLE
        col.seq = <PyObject *> value
        col.length = len(value)
        return 0
    try:
        PyObject_GetBuffer(value, &col.view, PyBUF_FULL_RO)
    except TypeError:
        raise column_type_error(name, value) from None
    col.kind = _BUFFER
    fmt = col.view.format.decode("latin-1") if col.view.format != NULL else "B"
    if fmt not in INT_FORMATS:
        raise column_format_error(name, fmt)
    if col.view.ndim != 1:
        raise column_shape_error(name, col.view.ndim)
    col.length = col.view.shape[0]
    col.itemsize = col.view.itemsize
    col.stride = col.view.strides[0] if col.view.strides != NULL else col.view.itemsize
    col.suboffset = (col.view.suboffsets[0] if col.view.suboffsets != NULL else -1)
    col.is_signed = fmt[len(fmt) - 1] in "bhilqn"
    if col.itemsize not in (1, 2, 4, 8):
        raise column_format_error(name, fmt)
    return 0


cdef inline int _read_buffer(_Column *col, Py_ssize_t i, long long *out) noexcept:
    """Element `i` of a buffer column, as _read_int reads an int."""
    cdef char *p = <char *> col.view.buf + i * col.stride
    cdef int8_t i8
    cdef int16_t i16
    cdef int32_t i32
    cdef int64_t i64
    cdef uint8_t u8
    cdef uint16_t u16
    cdef uint32_t u32
    cdef uint64_t u64
    if col.suboffset >= 0:
        p = (<char **> p)[0] + col.suboffset
    # memcpy: buffers need not be aligned (a cast memoryview of a bytes slice)
    if col.is_signed:
        if col.itemsize == 1:
            memcpy(&i8, p, 1)
            i64 = i8
        elif col.itemsize == 2:
            memcpy(&i16, p, 2)
            i64 = i16
        elif col.itemsize == 4:
            memcpy(&i32, p, 4)
            i64 = i32
        else:
            memcpy(&i64, p, 8)
        if i64 > _SMALL or i64 < -_SMALL:
            return _BIG
        out[0] = i64
        return _OK
    if col.itemsize == 1:
        memcpy(&u8, p, 1)
        u64 = u8
    elif col.itemsize == 2:
        memcpy(&u16, p, 2)
        u64 = u16
    elif col.itemsize == 4:
        memcpy(&u32, p, 4)
        u64 = u32
    else:
        memcpy(&u64, p, 8)
    if u64 > <uint64_t> _SMALL:
        return _BIG
    out[0] = <long long> u64
    return _OK


cdef inline int _read(_Column *col, Py_ssize_t i, long long *out) noexcept:
    """Element `i` of a count column: _OK, _BAD_TYPE or _BIG."""
    cdef PyObject *item
    cdef int overflow = 0
    cdef long long v
    if col.kind == _BUFFER:
        return _read_buffer(col, i, out)
    if col.kind == _LIST:
        if i >= _list_size(col.seq):  # the list shrank: let the Python path decide
            return _BIG
        item = _list_item(col.seq, i)
    else:
        item = _tuple_item(col.seq, i)
    if _is_bool(item) or not _is_int(item):
        return _BAD_TYPE
    v = _as_long_long(item, &overflow)
    if overflow != 0 or v > _SMALL or v < -_SMALL:
        return _BIG
    out[0] = v
    return _OK


cdef inline int _read_flag(_Column *col, Py_ssize_t i, long long *out) noexcept:
    """Element `i` of the allow_failed_deps column as 0 or 1: _OK, _BAD_TYPE or _BIG."""
    cdef PyObject *item
    cdef int overflow = 0
    cdef long long v
    if col.kind == _BUFFER:
        # any integer is a valid flag: only its being zero matters
        if _read_buffer(col, i, &v) == _OK:
            out[0] = v != 0
        else:
            out[0] = 1
        return _OK
    if col.kind == _LIST:
        if i >= _list_size(col.seq):
            return _BIG
        item = _list_item(col.seq, i)
    else:
        item = _tuple_item(col.seq, i)
    if _is_bool(item):
        out[0] = item == _true
        return _OK
    if not _is_int(item):
        return _BAD_TYPE
    if not _is_exact_int(item):  # a subclass may define __bool__: the Python path calls it
        return _BIG
    v = _as_long_long(item, &overflow)
    out[0] = overflow != 0 or v != 0
    return _OK


cdef Py_ssize_t _fast_rows(_Column *cols, Py_ssize_t n, signed char *codes) except -1:
    """Evaluate rows in order into `codes` until one needs the Python path.

    Returns the number of rows done (n when all were); raises for the first bad row.
    """
    cdef long long v[8]
    cdef Py_ssize_t i
    cdef int k, status, code
    for i in range(n):
        for k in range(8):
            if k == _FLAG:
                status = _read_flag(&cols[k], i, &v[k])
            else:
                status = _read(&cols[k], i, &v[k])
            if status == _BAD_TYPE:
                raise _element_type_error(cols, k, i)
            if status == _BIG:
                # earlier columns are fine; later ones are checked by the Python path,
                # so a type error further right in this row is still found first
                return i
        code = _rule(v[0], v[1], v[2] != 0, v[3], v[4], v[5], v[6], v[7])
        if code < 0:
            raise row_error(i, _rule_error(code, v[0], v[3], v[4], v[5], v[6]))
        codes[i] = <signed char> code
    return n


cdef object _element_type_error(_Column *cols, int k, Py_ssize_t i):
    cdef PyObject *item = (_list_item(cols[k].seq, i) if cols[k].kind == _LIST
                           else _tuple_item(cols[k].seq, i))
    name = f"{READINESS_ARGS[k]}[{i}]"
    if k == _FLAG:
        return flag_type_error(name, <object> item)
    return int_type_error(name, <object> item)


cdef list _results(signed char *codes, Py_ssize_t n):
    cdef list out = PyList_New(n)
    cdef Py_ssize_t i
    for i in range(n):
        value = _RESULTS[codes[i]]
        Py_INCREF(value)
        PyList_SET_ITEM(out, i, value)
    return out


def evaluate_readiness_many(join, min_success, allow_failed_deps, total, completed, failed,
                            skipped, ctx_pending):
    """`evaluate_readiness` over equal-length columns: one result per row."""
    cdef tuple args = (join, min_success, allow_failed_deps, total, completed, failed, skipped,
                       ctx_pending)
    cdef _Column cols[8]
    cdef int k
    cdef Py_ssize_t n, done
    cdef signed char *codes = NULL
    memset(cols, 0, sizeof(cols))
    try:
        for k in range(8):
            _open_column(&cols[k], READINESS_ARGS[k], args[k])
        n = cols[0].length
        for k in range(1, 8):
            if cols[k].length != n:
                raise length_error(READINESS_ARGS[k], cols[k].length, n)
        codes = <signed char *> malloc(n if n > 0 else 1)
        if codes == NULL:
            raise MemoryError()
        done = _fast_rows(cols, n, codes)
        if done == n:
            return _results(codes, n)
        return _results(codes, done) + _rows_objects(args, done)
    finally:
        free(codes)
        for k in range(8):
            if cols[k].kind == _BUFFER:  # set only once the buffer was exported
                PyBuffer_Release(&cols[k].view)
