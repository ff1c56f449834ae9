"""The codec (serialization.md): both twins through `impl`, then the public layer."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import subprocess
import sys
import uuid
from collections import OrderedDict, defaultdict, deque
from decimal import Decimal
from types import MappingProxyType

import orjson
import pydantic
import pytest

import horsies.codec as public
from horsies._speedups._api import DEPTH_LIMIT, SerializationError
from horsies.codes import ContractCode, OperationalErrorCode, OutcomeCode
from horsies.result import Ok
from horsies.task_result import SubWorkflowError, TaskError, TaskResult
from tests.speedups import strategies as s

MOD = s.__name__


@pytest.fixture
def codec(impl):
    return impl.codec()


def text(codec, value, path="value"):
    return orjson.dumps(codec.encode(value, path)).decode()


def fails(codec, value, path="value"):
    with pytest.raises(SerializationError) as info:
        codec.encode(value, path)
    return str(info.value)


def decode_fails(codec, tree, path="value"):
    with pytest.raises(SerializationError) as info:
        codec.decode(tree, path)
    return str(info.value)


def roundtrip(codec, value):
    return codec.decode(orjson.loads(orjson.dumps(codec.encode(value))))


# --- wire format (§2) ----------------------------------------------------------------------------


def test_compact_text_keeps_non_ascii_and_order(codec):
    assert text(codec, {"b": [1, 2.5, "é✓"], "a": None, "c": True}) == (
        '{"b":[1,2.5,"é✓"],"a":null,"c":true}'
    )


def test_spec_example(codec):
    value = {"when": dt.date(2031, 1, 2), "ids": (4, 5)}
    assert text(codec, value) == '{"when":{"__date__":true,"value":"2031-01-02"},"ids":[4,5]}'
    assert roundtrip(codec, value) == {"when": dt.date(2031, 1, 2), "ids": [4, 5]}


@pytest.mark.parametrize("number", [2**64 - 1, -(2**63), 0, s.MyInt(7)])
def test_integer_bounds_are_inclusive(codec, number):
    assert codec.encode(number) == number and type(codec.encode(number)) is int


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**40])
def test_integers_out_of_range(codec, number):
    assert fails(codec, [number], "args") == (
        "Integer out of range at args[0] (allowed: -2**63 .. 2**64-1)"
    )


@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf"), s.MyFloat("inf")])
def test_non_finite_floats(codec, number):
    assert fails(codec, {"ratio": number}, "kwargs") == 'Non-finite float at kwargs["ratio"]'


def test_lone_surrogates_are_refused(codec):
    assert fails(codec, ["ok", "a\udc80"]) == (
        "Cannot serialize a string with a lone surrogate at value[1]"
    )
    assert fails(codec, {"k\ud800": 1}) == (
        "Cannot serialize a mapping key with a lone surrogate at value"
    )
    assert codec.encode(["\U0001f600", "\uffff", "é"]) == ["\U0001f600", "\uffff", "é"]


def test_deterministic(codec):
    value = {"x": [dt.datetime(2031, 1, 1), Decimal("1.10"), uuid.UUID(int=1)], "y": s.Item("a", 2)}
    assert text(codec, value) == text(codec, value)


# --- supported types (§3) and tagged forms (§4) --------------------------------------------------


def test_scalars_and_subclasses(codec):
    assert codec.encode([None, True, False, 3, 2.5, "x"]) == [None, True, False, 3, 2.5, "x"]
    encoded = codec.encode([s.MyStr("abc"), s.MyInt(5), s.MyFloat(1.5)])
    assert encoded == ["abc", 5, 1.5]
    assert [type(v) for v in encoded] == [str, int, float]


def test_sequences_become_lists(codec):
    value = [(1, 2), deque([3]), range(2), s.Pair(1, "b"), [4]]
    assert codec.encode(value) == [[1, 2], [3], [0, 1], [1, "b"], [4]]
    assert roundtrip(codec, (1, (2,))) == [1, [2]]


def test_mappings_become_dicts(codec):
    d = defaultdict(list, a=[1])
    value = [OrderedDict(b=1, a=2), d, MappingProxyType({"z": 0})]
    assert codec.encode(value) == [{"b": 1, "a": 2}, {"a": [1]}, {"z": 0}]
    assert type(roundtrip(codec, OrderedDict(a=1))) is dict


def test_keys_are_stringified(codec):
    value = {1: "a", False: "b", None: "c", s.Color.RED: "d", 2.5: "e", s.Level.HIGH: "f"}
    assert codec.encode(value) == {
        "1": "a",
        "False": "b",
        "None": "c",
        "Color.RED": "d",
        "2.5": "e",
        "2": "f",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            dt.datetime(2031, 3, 9, 17, 45, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            '{"__datetime__":true,"value":"2031-03-09T17:45:00+02:00"}',
        ),
        (
            dt.datetime(2031, 3, 9, 17, 45, 1, 5),
            '{"__datetime__":true,"value":"2031-03-09T17:45:01.000005"}',
        ),
        (dt.date(2031, 3, 9), '{"__date__":true,"value":"2031-03-09"}'),
        (dt.time(7, 5, tzinfo=dt.timezone.utc), '{"__time__":true,"value":"07:05:00+00:00"}'),
        (
            dt.timedelta(days=2, hours=1),
            '{"__timedelta__":true,"days":2,"seconds":3600,"microseconds":0}',
        ),
        (
            dt.timedelta(microseconds=-1),
            '{"__timedelta__":true,"days":-1,"seconds":86399,"microseconds":999999}',
        ),
        (
            uuid.UUID("0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"),
            '{"__uuid__":true,"value":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}',
        ),
        (Decimal("19.90"), '{"__decimal__":true,"value":"19.90"}'),
        (Decimal("NaN"), '{"__decimal__":true,"value":"NaN"}'),
        (Decimal("-Infinity"), '{"__decimal__":true,"value":"-Infinity"}'),
        (s.Color.GREEN, f'{{"__enum__":true,"module":"{MOD}","qualname":"Color","name":"GREEN"}}'),
        (s.Color.CRIMSON, f'{{"__enum__":true,"module":"{MOD}","qualname":"Color","name":"RED"}}'),
        (s.Perm.R | s.Perm.X, f'{{"__enum__":true,"module":"{MOD}","qualname":"Perm","value":5}}'),
        (
            s.Outer.Kind.A,
            f'{{"__enum__":true,"module":"{MOD}","qualname":"Outer.Kind","name":"A"}}',
        ),
    ],
)
def test_tagged_forms(codec, value, expected):
    assert text(codec, value) == expected
    back = roundtrip(codec, value)
    assert type(back) is type(value)
    assert back == value or (isinstance(value, Decimal) and value.is_nan() and back.is_nan())


def test_enums_keep_identity(codec):
    for member in [
        s.Level.HIGH,
        s.Mode.FAST,
        s.Bits.A | s.Bits.B,
        s.Perm(0),
        s.Shape.LINE,
        OperationalErrorCode.BROKER_ERROR,
    ]:
        assert roundtrip(codec, member) is member


def test_dataclass_form(codec):
    item = s.Item("K-77", 3)
    assert text(codec, item) == (
        f'{{"__dataclass__":true,"module":"{MOD}","qualname":"Item","data":{{"sku":"K-77","qty":3}}}}'
    )
    nested = s.Item("K-77", {"unit_price": Decimal("19.90")})
    assert roundtrip(codec, nested) == nested


def test_dataclass_init_false_frozen_and_post_init(codec):
    late = s.WithLate(4)
    late.note = [dt.date(2031, 1, 1)]
    late.doubled = 99  # stored value wins over what __post_init__ computes
    encoded = codec.encode(late)
    assert encoded["data"] == {
        "a": 4,
        "doubled": 99,
        "note": [{"__date__": True, "value": "2031-01-01"}],
    }
    back = roundtrip(codec, late)
    assert (back.a, back.doubled, back.note) == (4, 99, [dt.date(2031, 1, 1)])
    assert roundtrip(codec, s.Frozen(1, (2,))) == s.Frozen(1, [2])
    assert roundtrip(codec, s.Outer.Inner(x=1)) == s.Outer.Inner(x=1)


def test_struct_form(codec):
    vec = s.Vec(1.5, dt.date(2031, 1, 1))
    assert text(codec, vec) == (
        f'{{"__msgspec_struct__":true,"module":"{MOD}","qualname":"Vec",'
        '"data":{"x":1.5,"y":{"__date__":true,"value":"2031-01-01"}}}'
    )
    assert roundtrip(codec, vec) == vec
    assert roundtrip(codec, s.Labeled(name="a", extra={"k": [1]})) == s.Labeled(
        name="a", extra={"k": [1]}
    )


def test_pydantic_form(codec):
    model = s.Model(name="n", when=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc), tags=["t"])
    assert codec.encode(model) == {
        "__pydantic_model__": True,
        "module": MOD,
        "qualname": "Model",
        "data": {"name": "n", "when": "2031-01-01T00:00:00Z", "tags": ["t"]},
    }
    assert roundtrip(codec, model) == model


def test_pydantic_v1_models_are_refused(codec):
    from pydantic import v1

    class Old(v1.BaseModel):
        a: int = 1

    assert fails(codec, Old()) == "Cannot serialize value of type Old at value"


def test_pydantic_dump_failures_are_reported(codec):
    message = fails(codec, {"m": s.Loose(value=object())})
    assert message.startswith(
        'Error while serializing value of type Loose at value["m"]: PydanticSerializationError: '
    )
    # data follows pydantic's JSON rules: NaN becomes null, a set a list
    assert codec.encode(s.Loose(value=float("nan")))["data"] == {"value": None}
    assert codec.encode(s.Loose(value={"k": {3}}))["data"] == {"value": {"k": [3]}}


@pytest.mark.parametrize(
    "value",
    [
        b"x",
        bytearray(b"x"),
        memoryview(b"x"),
        {1},
        frozenset(),
        object(),
        len,
        int,
        lambda: 1,
        iter([]),
        (x for x in []),
    ],
)
def test_refused_types(codec, value):
    assert fails(codec, {"v": value}, "kwargs") == (
        f'Cannot serialize value of type {type(value).__name__} at kwargs["v"]'
    )


# --- importability (§6) --------------------------------------------------------------------------


def _class_in(module: str, name: str = "Draft"):
    cls = dataclasses.make_dataclass(name, [("a", int)])
    cls.__module__ = module
    return cls


def test_classes_from_main_are_refused(codec):
    for module in ("__main__", "__mp_main__"):
        draft = _class_in(module)
        assert fails(codec, (draft(1),), "args") == (
            f"Cannot serialize 'Draft' defined in '{module}' at args[0]: "
            "move the class to an importable module"
        )


def test_local_classes_are_refused(codec):
    @dataclasses.dataclass
    class Local:
        a: int

    message = fails(codec, Local(1))
    assert message.startswith(
        "Cannot serialize 'test_local_classes_are_refused.<locals>.Local' defined in "
    )
    assert message.endswith("at value: define the class at module level, not inside a function")


def test_classes_not_importable_by_name_are_refused(codec):
    ghost = _class_in(MOD, "Ghost")
    assert fails(codec, ghost(1)) == (
        f"Cannot serialize 'Ghost' defined in '{MOD}' at value: "
        "the class cannot be imported under that name"
    )
    twin = _class_in(MOD, "Item")  # same name as a real class, but not that class
    assert fails(codec, twin(1)).endswith("the class cannot be imported under that name")


def test_reserved_field_names_are_refused(codec):
    assert (
        fails(codec, [s.ReservedField(1)]) == "Reserved key '__date__' at value[0] (a field name)"
    )


# --- mapping rules (§5) --------------------------------------------------------------------------


def test_key_collision_names_both_keys(codec):
    assert fails(codec, {"totals": {2: 1, "2": 3}}, "kwargs") == (
        "Mapping key collision at kwargs[\"totals\"]: 2 and '2' both become '2'"
    )
    assert fails(codec, {None: 1, "None": 2}) == (
        "Mapping key collision at value: None and 'None' both become 'None'"
    )


@pytest.mark.parametrize("key", s.RESERVED_KEYS + ["__horsies_anything"])
def test_reserved_keys_are_refused_anywhere(codec, key):
    assert (
        fails(codec, (1, {"meta": {key: 1}}), "args")
        == f"Reserved key '{key}' at args[1][\"meta\"]"
    )
    error = TaskError(error_code="E", data={key: 1})
    assert (
        fails(codec, TaskResult(err=error), "result") == f"Reserved key '{key}' at result.err.data"
    )
    assert fails(codec, s.Item("a", {key: 1})) == f"Reserved key '{key}' at value.qty"


def test_almost_reserved_keys_are_fine(codec):
    keys = ["__", "_date_", "__date", "date__", "__horsie", "__init__", "x__uuid__"]
    assert list(codec.encode({k: 1 for k in keys})) == keys


# --- paths in error messages (§10) ---------------------------------------------------------------


def test_error_paths(codec):
    assert fails(codec, {"order": s.Item("x", {1})}, "kwargs") == (
        'Cannot serialize value of type set at kwargs["order"].qty'
    )
    assert fails(codec, {"rows": [1, 2, 3, {1}]}, "kwargs") == (
        'Cannot serialize value of type set at kwargs["rows"][3]'
    )
    assert fails(codec, {2: [{"a": {"b": b""}}]}) == (
        'Cannot serialize value of type bytes at value[2][0]["a"]["b"]'
    )
    assert fails(codec, {'q"\\': {1}}) == 'Cannot serialize value of type set at value["q\\"\\\\"]'
    assert fails(codec, s.Vec(1, [s.Color.RED, {1}])) == (
        "Cannot serialize value of type set at value.y[1]"
    )
    assert fails(codec, TaskResult(ok=[{1}]), "result") == (
        "Cannot serialize value of type set at result.ok[0]"
    )


def test_circular_references(codec):
    tree = s.Node(1)
    tree.children.append(tree)
    assert (
        fails(codec, {"tree": tree}, "kwargs") == 'Circular reference at kwargs["tree"].children[0]'
    )
    loop: list = [1]
    loop.append({"again": loop})
    assert fails(codec, loop) == 'Circular reference at value[1]["again"]'
    args: list = []
    outer = (args,)
    args.append(outer)
    assert fails(codec, outer, "args") == "Circular reference at args[0][0]"


def test_shared_objects_are_encoded_twice(codec):
    shared = [1, 2]
    back = roundtrip(codec, {"a": shared, "b": shared})
    assert back == {"a": [1, 2], "b": [1, 2]} and back["a"] is not back["b"]


def test_nesting_limit(codec):
    deep: list = []
    for _ in range(DEPTH_LIMIT - 1):
        deep = [deep]
    assert orjson.loads(text(codec, deep)) == deep
    assert codec.decode(orjson.loads(text(codec, deep))) == deep
    assert fails(codec, [deep]).startswith("Nesting too deep at value[0][0]")
    assert fails(codec, [deep]).endswith(f"(limit: {DEPTH_LIMIT} levels)")
    assert decode_fails(codec, [deep]).startswith("Nesting too deep at value[0]")
    # tagged forms count their own levels
    near: list = [dt.date(2031, 1, 1)]
    for _ in range(DEPTH_LIMIT - 2):
        near = [near]
    assert codec.encode(near) is not None
    assert fails(codec, [near]).startswith("Nesting too deep")


def test_user_code_errors_are_wrapped(codec):
    class Exploding(dict):
        def items(self):
            raise RuntimeError("boom")

    assert fails(codec, {"x": Exploding()}) == (
        'Error while serializing value of type Exploding at value["x"]: RuntimeError: boom'
    )

    class BadKey:
        def __str__(self):
            raise ValueError("no str")

        def __hash__(self):
            return 1

    assert fails(codec, [{BadKey(): 1}]) == (
        "Error while serializing value of type dict at value[0]: ValueError: no str"
    )


# --- results and errors (§8) ---------------------------------------------------------------------


def test_task_result_envelopes(codec):
    assert (
        text(codec, TaskResult(ok={"n": 1})) == '{"__task_result__":true,"ok":{"n":1},"err":null}'
    )
    assert text(codec, TaskResult(ok=None)) == '{"__task_result__":true,"ok":null,"err":null}'
    error = TaskError(
        error_code=OperationalErrorCode.UNHANDLED_EXCEPTION,
        message="Unhandled exception in task sync_calendar: KeyError: 'tz'",
        data={"exception_type": "KeyError"},
        exception={"type": "KeyError", "message": "'tz'", "traceback": "Traceback ..."},
    )
    assert text(codec, TaskResult(err=error)) == (
        '{"__task_result__":true,"ok":null,"err":{"__task_error__":true,'
        '"error_code":{"__builtin_task_code__":"UNHANDLED_EXCEPTION"},'
        '"message":"Unhandled exception in task sync_calendar: KeyError: \'tz\'",'
        '"data":{"exception_type":"KeyError"},'
        '"exception":{"type":"KeyError","message":"\'tz\'","traceback":"Traceback ..."}}}'
    )
    back = roundtrip(codec, TaskResult(err=error))
    assert back == TaskResult(err=error)
    assert back.err.error_code is OperationalErrorCode.UNHANDLED_EXCEPTION


def test_fixed_fallback_text_is_what_the_codec_writes(codec):
    result = TaskResult(
        err=TaskError(
            error_code=OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
            message="secondary serialization failure",
        )
    )
    assert text(codec, result) == public.FALLBACK_ERROR_JSON


def test_task_error_codes_and_data(codec):
    user = TaskError(error_code="CARD_DECLINED", data={"when": dt.date(2031, 1, 1)})
    encoded = codec.encode(user)
    assert encoded["error_code"] == "CARD_DECLINED"
    back = roundtrip(codec, user)
    assert back.error_code == "CARD_DECLINED" and type(back.error_code) is str
    assert back.data == {"when": dt.date(2031, 1, 1)}
    assert roundtrip(codec, TaskError()) == TaskError()
    assert (
        roundtrip(codec, TaskError(error_code=OutcomeCode.TASK_EXPIRED)).error_code
        is OutcomeCode.TASK_EXPIRED
    )


def test_live_exceptions_are_stored_as_dicts(codec):
    try:
        {}["tz"]
    except KeyError as exc:
        caught = exc
    encoded = codec.encode(TaskError(error_code="E", exception=caught))
    stored = encoded["exception"]
    assert stored["type"] == "KeyError" and stored["message"] == "'tz'"
    assert stored["traceback"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'tz'" in stored["traceback"]
    back = roundtrip(codec, TaskError(error_code="E", exception=caught))
    assert back.exception == stored
    odd = codec.encode(TaskError(exception=42))
    assert odd["exception"] == {"type": "int", "message": "42"}
    assert "exception" not in codec.encode(TaskError())


def test_sub_workflow_errors(codec):
    summary = s.Labeled(name="child", extra={"failed": 2})
    error = SubWorkflowError(
        error_code=OutcomeCode.SUBWORKFLOW_FAILED,
        message="Subworkflow c1 failed with status FAILED",
        sub_workflow_id="c1",
        sub_workflow_summary=summary,
    )
    encoded = codec.encode(error)
    assert list(encoded)[-2:] == ["sub_workflow_id", "sub_workflow_summary"]
    back = roundtrip(codec, TaskResult(err=error))
    assert type(back.err) is SubWorkflowError
    assert back.err.sub_workflow_id == "c1" and back.err.sub_workflow_summary == summary


def test_task_error_field_checks(codec):
    assert fails(codec, TaskError(message=3), "result") == (
        "TaskError.message must be a str or None, got int at result.message"
    )
    assert fails(codec, TaskResult(err=ValueError("x")), "result") == (
        "TaskResult.err must be a TaskError, got ValueError at result.err"
    )
    assert fails(codec, TaskResult(err=TaskError(data={1})), "result") == (
        "Cannot serialize value of type set at result.err.data"
    )
    bad_sub = SubWorkflowError(sub_workflow_id=5, sub_workflow_summary=None)
    assert fails(codec, bad_sub) == (
        "SubWorkflowError.sub_workflow_id must be a str, got int at value.sub_workflow_id"
    )


# --- decoding ------------------------------------------------------------------------------------


def test_decode_plain_json_is_copied(codec):
    tree = {"a": [1, {"b": None}], "__horsies_workflow_meta__": {"x": 1}}
    back = codec.decode(tree)
    assert back == tree and back is not tree and back["a"] is not tree["a"]


def test_decode_refuses_non_json_values(codec):
    assert decode_fails(codec, {"a": (1, 2)}) == (
        'Cannot deserialize value of type tuple at value["a"] (not a JSON value)'
    )
    assert decode_fails(codec, {1: 2}) == "Cannot deserialize an object key of type int at value"


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        (
            {"__date__": False, "value": "2031-01-01"},
            "Malformed __date__ form at value: the marker must be true",
        ),
        (
            {"__date__": 1, "value": "2031-01-01"},
            "Malformed __date__ form at value: the marker must be true",
        ),
        (
            {"__date__": True, "value": 5},
            "Malformed __date__ form at value: 'value' must be a string",
        ),
        ({"__date__": True}, "Malformed __date__ form at value: 'value' must be a string"),
        ({"__date__": True, "value": "2031-13-01"}, "Invalid __date__ value '2031-13-01' at value"),
        ({"__uuid__": True, "value": "xyz"}, "Invalid __uuid__ value 'xyz' at value"),
        ({"__decimal__": True, "value": "1,5"}, "Invalid __decimal__ value '1,5' at value"),
        (
            {"__date__": True, "__uuid__": True, "value": "x"},
            "Malformed tagged form at value: more than one marker ('__date__', '__uuid__')",
        ),
        (
            {"__timedelta__": True, "days": 1, "seconds": True, "microseconds": 0},
            "Malformed __timedelta__ form at value: "
            "'days', 'seconds' and 'microseconds' must be integers",
        ),
        (
            {"__builtin_task_code__": "BROKER_ERROR"},
            "Malformed __builtin_task_code__ form at value: "
            "only valid as the error_code of a TaskError",
        ),
        (
            {"__task_result__": True, "ok": 1},
            "Malformed __task_result__ form at value: expected exactly "
            "the keys '__task_result__', 'ok' and 'err'",
        ),
        (
            {"__task_result__": True, "ok": None, "err": "boom"},
            "Malformed __task_result__ form at value.err: 'err' must be a __task_error__ object",
        ),
        (
            {"__task_error__": True, "message": 1},
            "Malformed __task_error__ form at value.message: 'message' must be a string or null",
        ),
        (
            {"__task_error__": True, "error_code": {"__builtin_task_code__": "NOPE"}},
            "Unknown built-in error code 'NOPE' at value.error_code",
        ),
        (
            {"__task_error__": True, "error_code": "BROKER_ERROR"},
            "Cannot rebuild TaskError at value: ValueError: "
            "'BROKER_ERROR' is a reserved built-in error code "
            "(OperationalErrorCode.BROKER_ERROR). Pass the enum member directly.",
        ),
        (
            {"__task_error__": True, "exception": "x"},
            "Malformed __task_error__ form at value.exception: "
            "'exception' must be an object or null",
        ),
        (
            {"__enum__": True, "module": MOD, "qualname": "Color"},
            "Malformed __enum__ form at value: needs 'name' or 'value'",
        ),
        (
            {"__enum__": True, "module": MOD, "qualname": "Color", "name": "BLUE"},
            "Enum 'Color' has no member 'BLUE' at value",
        ),
        (
            {"__enum__": True, "module": MOD, "qualname": "Color", "value": 9},
            "Enum 'Color' has no member with value 9 at value",
        ),
        (
            {"__enum__": True, "module": MOD, "qualname": "Item", "name": "A"},
            f"'{MOD}:Item' is not an Enum class at value",
        ),
        (
            {"__dataclass__": True, "module": MOD, "qualname": "Vec", "data": {}},
            f"'{MOD}:Vec' is not a dataclass at value",
        ),
        (
            {"__msgspec_struct__": True, "module": MOD, "qualname": "Item", "data": {}},
            f"'{MOD}:Item' is not a msgspec Struct at value",
        ),
        (
            {"__pydantic_model__": True, "module": MOD, "qualname": "Item", "data": {}},
            f"'{MOD}:Item' is not a pydantic model at value",
        ),
        (
            {"__dataclass__": True, "module": MOD, "qualname": "Item", "data": []},
            "Malformed __dataclass__ form at value: 'data' must be an object",
        ),
        (
            {"__dataclass__": True, "module": 1, "qualname": "Item", "data": {}},
            "Malformed __dataclass__ form at value: 'module' and 'qualname' must be strings",
        ),
        (
            {"__pydantic_model__": True, "module": MOD, "qualname": "Model"},
            "Malformed __pydantic_model__ form at value: 'data' is missing",
        ),
    ],
)
def test_malformed_forms(codec, tree, message):
    assert decode_fails(codec, tree) == message


def test_timedelta_out_of_range(codec):
    tree = {"__timedelta__": True, "days": 10**12, "seconds": 0, "microseconds": 0}
    assert decode_fails(codec, tree).startswith("Invalid __timedelta__ value at value: ")


def test_class_resolution_errors(codec):
    moved = {"__dataclass__": True, "module": "billing.models", "qualname": "LineItem", "data": {}}
    assert decode_fails(codec, [moved], "args") == (
        "Cannot import module 'billing.models' for 'LineItem' at args[0]: ModuleNotFoundError: "
        "No module named 'billing'; was it moved or renamed without leaving a re-export behind?"
    )
    gone = {"__dataclass__": True, "module": MOD, "qualname": "Outer.Gone", "data": {}}
    assert decode_fails(codec, gone) == (
        f"Cannot find 'Outer.Gone' in module '{MOD}' at value: "
        "was it moved or renamed without leaving a re-export behind?"
    )


def test_constructor_errors(codec):
    missing = {"__dataclass__": True, "module": MOD, "qualname": "Item", "data": {"qty": 2}}
    message = decode_fails(codec, missing)
    assert message.startswith(f"Cannot rebuild 'Item' of module '{MOD}' at value: TypeError: ")
    checked = {"__dataclass__": True, "module": MOD, "qualname": "Checked", "data": {"n": -1}}
    assert decode_fails(codec, {"c": checked}) == (
        f"Cannot rebuild 'Checked' of module '{MOD}' at value[\"c\"]: "
        "ValueError: n must not be negative"
    )
    invalid = {"__pydantic_model__": True, "module": MOD, "qualname": "Model", "data": {"name": 1}}
    assert decode_fails(codec, invalid).startswith(
        f"Cannot rebuild 'Model' of module '{MOD}' at value: ValidationError: "
    )


def test_removed_fields_are_ignored(codec):
    tree = {
        "__dataclass__": True,
        "module": MOD,
        "qualname": "Item",
        "data": {"sku": "a", "qty": 2, "colour": "red"},
    }
    assert codec.decode(tree) == s.Item("a", 2)
    tree = {"__msgspec_struct__": True, "module": MOD, "qualname": "Vec", "data": {"x": 1, "z": 3}}
    assert codec.decode(tree) == s.Vec(1)


def test_decode_paths(codec):
    tree = {
        "rows": [
            1,
            {
                "__dataclass__": True,
                "module": MOD,
                "qualname": "Node",
                "data": {"value": 1, "children": [{"__date__": True, "value": "x"}]},
            },
        ]
    }
    assert decode_fails(codec, tree, "kwargs") == (
        "Invalid __date__ value 'x' at kwargs[\"rows\"][1].children[0]"
    )
    bad_ok = {"__task_result__": True, "ok": {"__uuid__": True, "value": "?"}, "err": None}
    assert decode_fails(codec, bad_ok, "result") == "Invalid __uuid__ value '?' at result.ok"


def test_decode_args_and_kwargs(codec):
    assert codec.decode_args([1, {"__date__": True, "value": "2031-01-01"}]) == [
        1,
        dt.date(2031, 1, 1),
    ]
    assert codec.decode_kwargs({"a": [1], "__horsies_workflow_meta__": {"x": 1}}) == {
        "a": [1],
        "__horsies_workflow_meta__": {"x": 1},
    }
    with pytest.raises(SerializationError) as info:
        codec.decode_kwargs({"__uuid__": True, "value": "x"})
    assert str(info.value) == "Unexpected marker key '__uuid__' at kwargs"
    with pytest.raises(SerializationError) as info:
        codec.decode_args([0, {"__date__": True, "value": "?"}])
    assert str(info.value) == "Invalid __date__ value '?' at args[1]"
    assert codec.encode_args((1, "a")) == [1, "a"]
    assert codec.encode_kwargs({"a": (1,)}) == {"a": [1]}


def test_nested_task_results(codec):
    inner = TaskResult(ok=[TaskResult(err=TaskError(error_code="X"))])
    assert roundtrip(codec, {"r": inner}) == {"r": inner}


def test_caches_can_be_cleared(codec):
    tree = {"__enum__": True, "module": MOD, "qualname": "Color", "name": "RED"}
    assert codec.decode(tree) is s.Color.RED
    codec.encode(s.Item("a"))
    codec.clear_caches()
    assert codec.decode(tree) is s.Color.RED


# --- the public module ---------------------------------------------------------------------------


def test_public_names():
    for name in [
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
    ]:
        assert hasattr(public, name) and name in public.__all__
    assert issubclass(public.SerializationError, Exception)


def test_public_round_trip_example():
    result = public.dumps_json({"when": dt.date(2031, 1, 2), "ids": (4, 5)})
    assert result == Ok('{"when":{"__date__":true,"value":"2031-01-02"},"ids":[4,5]}')
    back = public.rehydrate_value(public.loads_json(result.ok_value).ok_value)
    assert back == Ok({"when": dt.date(2031, 1, 2), "ids": [4, 5]})
    assert public.to_jsonable((1, dt.date(2031, 1, 2))) == Ok(
        [1, {"__date__": True, "value": "2031-01-02"}]
    )


def test_public_functions_return_err():
    error = public.dumps_json({"x": {1}}).err_value
    assert isinstance(error, SerializationError)
    assert str(error) == 'Cannot serialize value of type set at value["x"]'
    assert (
        str(public.dumps_json({1}, path="result").err_value)
        == "Cannot serialize value of type set at result"
    )
    assert public.to_jsonable(float("nan")).is_err()
    # a TaskResult is named "result" unless told otherwise
    assert str(public.dumps_json(TaskResult(ok={1})).err_value) == (
        "Cannot serialize value of type set at result.ok"
    )
    assert str(public.to_jsonable(TaskResult(ok={1}), path="r").err_value).endswith("at r.ok")
    assert public.rehydrate_value({"__date__": True}).is_err()


def test_loads_json():
    assert public.loads_json(None) == Ok(None)
    assert public.loads_json("") == Ok(None)
    assert public.loads_json('{"a":[1,2.5,"é"]}') == Ok({"a": [1, 2.5, "é"]})
    for bad in ["NaN", "[Infinity]", "[-Infinity]", "[1e400]", "{", "{'a': 1}"]:
        error = public.loads_json(bad)
        assert error.is_err() and str(error.err_value).startswith("Invalid JSON: "), bad


def test_arguments():
    assert public.args_to_json((1, "a", None)) == Ok('[1,"a",null]')
    assert public.kwargs_to_json({"n": 1, "when": dt.date(2031, 1, 1)}) == Ok(
        '{"n":1,"when":{"__date__":true,"value":"2031-01-01"}}'
    )
    assert str(public.args_to_json((1, {"meta": {"__uuid__": 1}})).err_value) == (
        "Reserved key '__uuid__' at args[1][\"meta\"]"
    )
    assert str(public.kwargs_to_json({"rows": [0, 1, 2, {1}]}).err_value) == (
        'Cannot serialize value of type set at kwargs["rows"][3]'
    )
    assert public.json_to_args(None) == Ok([])
    assert public.json_to_kwargs(None) == Ok({})
    assert public.json_to_args([1, {"__date__": True, "value": "2031-01-01"}]) == Ok(
        [1, dt.date(2031, 1, 1)]
    )
    assert public.json_to_kwargs({"a": [1]}) == Ok({"a": [1]})
    assert str(public.json_to_args({"a": 1}).err_value) == (
        "Positional arguments must be a JSON array, got an object"
    )
    assert (
        str(public.json_to_kwargs([1]).err_value)
        == "Keyword arguments must be a JSON object, got an array"
    )
    assert str(public.json_to_args(["x", {"__date__": True, "value": 1}]).err_value) == (
        "Malformed __date__ form at args[1]: 'value' must be a string"
    )


def test_task_result_from_json():
    ok = public.task_result_from_json({"__task_result__": True, "ok": [1], "err": None})
    assert ok == Ok(TaskResult(ok=[1]))
    stored = orjson.loads(
        public.dumps_json(
            TaskResult(
                err=TaskError(
                    error_code=ContractCode.RETURN_TYPE_MISMATCH,
                    message="m",
                    data={"d": dt.date(2031, 1, 1)},
                )
            )
        ).ok_value
    )
    failed = public.task_result_from_json(stored).ok_value
    assert failed.err_value.error_code is ContractCode.RETURN_TYPE_MISMATCH
    assert failed.err_value.data == {"d": dt.date(2031, 1, 1)}
    for bad in [
        None,
        [],
        {"ok": 1, "err": None},
        {"__task_result__": False, "ok": 1, "err": None},
        {"__task_result__": True, "ok": 1, "err": None, "x": 1},
    ]:
        result = public.task_result_from_json(bad)
        assert result.is_err() and str(result.err_value).startswith(
            "Malformed result envelope at result"
        ), bad
    bad_error = public.task_result_from_json(
        {"__task_result__": True, "ok": None, "err": {"__task_error__": True, "message": 5}}
    )
    assert str(bad_error.err_value) == (
        "Malformed __task_error__ form at result.err.message: 'message' must be a string or null"
    )
    assert public.task_result_from_json({"__task_result__": True, "ok": None, "err": []}).is_err()


def test_hydration_errors_become_results(caplog):
    stored = {
        "__task_result__": True,
        "err": None,
        "ok": {
            "__dataclass__": True,
            "module": "billing.models",
            "qualname": "LineItem",
            "data": {},
        },
    }
    with caplog.at_level(logging.WARNING, logger="horsies"):
        result = public.task_result_from_json(stored)
    assert result.is_ok()
    error = result.ok_value.err_value
    assert error.error_code is ContractCode.PYDANTIC_HYDRATION_ERROR
    assert error.message.startswith(
        "Cannot import module 'billing.models' for 'LineItem' at result.ok"
    )
    assert error.data == {}
    assert any(
        r.levelno == logging.WARNING and "billing.models" in r.getMessage() for r in caplog.records
    )


def test_serialize_error_payload():
    good = TaskResult(
        err=TaskError(
            error_code=OperationalErrorCode.WORKER_SERIALIZATION_ERROR,
            message="bad",
            data={"task_name": "t"},
        )
    )
    assert orjson.loads(public.serialize_error_payload(good))["err"]["data"] == {"task_name": "t"}
    broken = TaskResult(err=TaskError(error_code="E", data={1, 2}))
    assert public.serialize_error_payload(broken) == public.FALLBACK_ERROR_JSON
    assert public.FALLBACK_ERROR_JSON == (
        '{"__task_result__":true,"ok":null,"err":{"__task_error__":true,"error_code":'
        '{"__builtin_task_code__":"WORKER_SERIALIZATION_ERROR"},"message":"secondary serialization '
        'failure","data":null}}'
    )


def test_clear_caches_forgets_resolved_classes(monkeypatch):
    tree = {"__dataclass__": True, "module": MOD, "qualname": "Item", "data": {"sku": "a"}}
    assert type(public.rehydrate_value(tree).ok_value) is s.Item
    assert f"{MOD}:Item" in public._CLASS_CACHE

    @dataclasses.dataclass
    class Replacement:
        sku: str

    monkeypatch.setattr(s, "Item", Replacement)
    assert type(public.rehydrate_value(tree).ok_value) is not Replacement  # still cached
    public.clear_caches()
    assert public._CLASS_CACHE == {}
    assert type(public.rehydrate_value(tree).ok_value) is Replacement
    monkeypatch.undo()
    public.clear_caches()


def test_pydantic_is_never_imported_by_the_codec():
    code = (
        "import sys, datetime, horsies.codec as c\n"
        "assert c.dumps_json({'a': [1, datetime.date(2031, 1, 1)]}).is_ok()\n"
        "assert c.rehydrate_value({'a': 1}).is_ok()\n"
        "print('pydantic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_pydantic_models_need_pydantic():
    assert pydantic.BaseModel is not None  # loaded here, so models are recognised
    assert public.dumps_json(s.Loose(value=1)).is_ok()
