"""Send results and errors, the payload fingerprint, and Call (tasks.md §7, §9.2)."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horsies import Call, Err, Ok, TaskSendError, TaskSendErrorCode, TaskSendPayload
from horsies.tasks.send_types import enqueue_sha

# --- TaskSendErrorCode -------------------------------------------------------------


def test_error_codes_are_a_str_enum_named_by_value() -> None:
    assert issubclass(TaskSendErrorCode, str)
    assert issubclass(TaskSendErrorCode, enum.Enum)
    assert [m.name for m in TaskSendErrorCode] == [
        "SEND_SUPPRESSED",
        "VALIDATION_FAILED",
        "ENQUEUE_FAILED",
        "PAYLOAD_MISMATCH",
    ]
    for member in TaskSendErrorCode:
        assert member.value == member.name
        assert member == member.name  # a str enum compares to its value
    assert TaskSendErrorCode("ENQUEUE_FAILED") is TaskSendErrorCode.ENQUEUE_FAILED


# --- TaskSendError -----------------------------------------------------------------

UTC_PLUS_5_30 = timezone(timedelta(hours=5, minutes=30))
UTC_MINUS_7 = timezone(timedelta(hours=-7))

PAYLOAD_FIELDS: dict[str, Any] = {
    "task_name": "send_mail",
    "queue_name": "emails",
    "priority": 7,
    "args_json": '["Zoë","😀"]',
    "kwargs_json": '{"naïve":true}',
    "sent_at": datetime(2031, 5, 4, 9, 30, 0, 123456, tzinfo=UTC_PLUS_5_30),
    "good_until": datetime(2031, 5, 4, 10, 30, tzinfo=UTC_MINUS_7),
    "enqueue_delay_seconds": 30,
    "task_options": '{"retry_policy":null,"good_until":"2031-05-04T10:30:00-07:00"}',
}


def make_payload(**changes: Any) -> TaskSendPayload:
    fields = {**PAYLOAD_FIELDS, **changes}
    return TaskSendPayload(**fields, enqueue_sha=enqueue_sha(**fields))


def test_send_error_fields_and_defaults() -> None:
    error = TaskSendError(TaskSendErrorCode.VALIDATION_FAILED, "bad")
    assert error.code is TaskSendErrorCode.VALIDATION_FAILED
    assert error.message == "bad"
    assert error.retryable is False
    assert error.task_id is None
    assert error.payload is None
    assert error.exception is None
    assert error.index is None
    assert error.task_ids is None
    assert [f.name for f in dataclasses.fields(TaskSendError)] == [
        "code", "message", "retryable", "task_id", "payload", "exception", "index", "task_ids",
    ]


def test_send_error_is_frozen_and_slotted() -> None:
    error = TaskSendError(TaskSendErrorCode.ENQUEUE_FAILED, "x", retryable=True, task_id="abc")
    assert dataclasses.is_dataclass(error)
    assert not hasattr(error, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        error.retryable = False  # type: ignore[misc]


def test_send_error_repr_and_str_show_only_code_retryable_and_task_id() -> None:
    secret = "card-4111-1111-1111-1111"
    payload = make_payload(args_json=f'["{secret}"]')
    error = TaskSendError(
        TaskSendErrorCode.ENQUEUE_FAILED,
        f"could not enqueue: {secret}",
        retryable=True,
        task_id="0190b3c1-0000-7000-8000-000000000001",
        payload=payload,
        exception=RuntimeError(secret),
        task_ids=("0190b3c1-0000-7000-8000-000000000001",),
    )
    for text in (repr(error), str(error)):
        assert secret not in text
        assert "ENQUEUE_FAILED" in text
        assert "True" in text
        assert "0190b3c1-0000-7000-8000-000000000001" in text
        assert "message" not in text
        assert "payload" not in text
        assert "exception" not in text
    plain = TaskSendError(TaskSendErrorCode.SEND_SUPPRESSED, "suppressed")
    assert "SEND_SUPPRESSED" in repr(plain)
    assert "False" in repr(plain)
    assert "None" in repr(plain)


def test_send_error_in_a_result() -> None:
    error = TaskSendError(TaskSendErrorCode.VALIDATION_FAILED, "bad")
    match Err(error):
        case Err(TaskSendError(code=TaskSendErrorCode.VALIDATION_FAILED)):
            pass
        case _:
            pytest.fail("pattern did not match")
    assert Ok(1).is_ok()


# --- TaskSendPayload and enqueue_sha -----------------------------------------------

# Written out by hand from tasks.md §7.4: no spaces, every non-ASCII character as
# \uXXXX (a surrogate pair beyond the BMP), timestamps converted to UTC.
CANONICAL = (
    r'["send_mail","emails",7,"[\"Zo\u00eb\",\"\ud83d\ude00\"]","{\"na\u00efve\":true}",'
    r'"2031-05-04T04:00:00.123456+00:00","2031-05-04T17:30:00.000000+00:00",30,'
    r'"{\"retry_policy\":null,\"good_until\":\"2031-05-04T10:30:00-07:00\"}"]'
)
CANONICAL_SHA = "be4fe1ff1f326eaef7e62fecde5574a2c40587c5ff5e327bdc3549c7d998212b"


def test_canonical_text_digest() -> None:
    assert CANONICAL.isascii()
    assert hashlib.sha256(CANONICAL.encode("utf-8")).hexdigest() == CANONICAL_SHA


def test_enqueue_sha_matches_the_hand_computed_digest() -> None:
    assert enqueue_sha(**PAYLOAD_FIELDS) == CANONICAL_SHA
    payload = make_payload()
    assert payload.enqueue_sha == CANONICAL_SHA


def test_enqueue_sha_with_nulls() -> None:
    canonical = '["t","default",100,null,null,"2031-01-01T00:00:00.000000+00:00",null,null,null]'
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert expected == "e3cb57a8a6c818beea8220b97947e3a010074f2253c837c4d5c3d3df7295ca64"
    assert enqueue_sha(
        task_name="t",
        queue_name="default",
        priority=100,
        args_json=None,
        kwargs_json=None,
        sent_at=datetime(2031, 1, 1, tzinfo=UTC),
        good_until=None,
        enqueue_delay_seconds=None,
        task_options=None,
    ) == expected


def test_enqueue_sha_timestamps_are_zero_padded_utc() -> None:
    # Years before 1000 keep four digits: YYYY-MM-DDTHH:MM:SS.ffffff+00:00.
    fields = {**PAYLOAD_FIELDS, "good_until": datetime(5, 1, 1, tzinfo=UTC)}
    canonical = CANONICAL.replace(
        "2031-05-04T17:30:00.000000+00:00", "0005-01-01T00:00:00.000000+00:00"
    )
    assert enqueue_sha(**fields) == hashlib.sha256(canonical.encode()).hexdigest()


def test_enqueue_sha_depends_on_the_instant_not_its_time_zone() -> None:
    same_instant = {
        "sent_at": PAYLOAD_FIELDS["sent_at"].astimezone(UTC),
        "good_until": PAYLOAD_FIELDS["good_until"].astimezone(timezone(timedelta(hours=9))),
    }
    assert enqueue_sha(**{**PAYLOAD_FIELDS, **same_instant}) == CANONICAL_SHA
    later = PAYLOAD_FIELDS["sent_at"] + timedelta(microseconds=1)
    assert enqueue_sha(**{**PAYLOAD_FIELDS, "sent_at": later}) != CANONICAL_SHA


@pytest.mark.parametrize(
    "field, value",
    [
        ("task_name", "send_mails"),
        ("queue_name", "email"),
        ("priority", 8),
        ("args_json", '["Zoe","😀"]'),
        ("kwargs_json", None),
        ("good_until", None),
        ("enqueue_delay_seconds", None),
        ("enqueue_delay_seconds", 0),
        ("task_options", None),
    ],
)
def test_every_field_enters_the_fingerprint(field: str, value: Any) -> None:
    sha = enqueue_sha(**{**PAYLOAD_FIELDS, field: value})
    assert sha != CANONICAL_SHA
    assert len(sha) == 64
    assert sha == sha.lower()
    int(sha, 16)


def test_payload_is_frozen_and_slotted() -> None:
    payload = make_payload()
    assert [f.name for f in dataclasses.fields(TaskSendPayload)] == [
        "task_name", "queue_name", "priority", "args_json", "kwargs_json", "sent_at",
        "good_until", "enqueue_delay_seconds", "task_options", "enqueue_sha",
    ]
    assert not hasattr(payload, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        payload.priority = 1  # type: ignore[misc]


# --- Call --------------------------------------------------------------------------


def test_call_holds_args_and_kwargs() -> None:
    call = Call(1, 2, mode="fast")
    assert call.args == (1, 2)
    assert call.kwargs == {"mode": "fast"}
    assert Call().args == ()
    assert Call().kwargs == {}


def test_call_equality() -> None:
    assert Call(1, 2, mode="fast") == Call(1, 2, mode="fast")
    assert Call(1, a=1, b=2) == Call(1, b=2, a=1)
    assert Call(1, 2) != Call(2, 1)
    assert Call(1, mode="fast") != Call(1, mode="slow")
    assert Call(1) != Call(1, x=None)
    assert Call(1) != (1,)
    assert Call() != None  # noqa: E711


def test_call_is_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(Call(1))
    with pytest.raises(TypeError):
        {Call(1)}  # noqa: B018


def test_call_repr_looks_like_the_call() -> None:
    assert repr(Call(1, 2, mode="fast")) == "Call(1, 2, mode='fast')"
    assert repr(Call()) == "Call()"
    assert repr(Call("a")) == "Call('a')"
    assert repr(Call(x=[1])) == "Call(x=[1])"


def test_call_is_read_only() -> None:
    keywords = {"mode": "fast"}
    call = Call(**keywords)
    keywords["mode"] = "slow"
    assert call.kwargs == {"mode": "fast"}  # a copy
    with pytest.raises(TypeError):
        call.kwargs["mode"] = "slow"  # type: ignore[index]
    with pytest.raises(AttributeError):
        call.args = (1,)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        call.kwargs = {}  # type: ignore[misc]
    assert call.kwargs == {"mode": "fast"}


@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63), st.text()), max_size=9))
def test_canonical_send_json_matches_the_standard_library(values: list[object]) -> None:
    # The fast path (orjson) must give byte-for-byte the text tasks.md §7.4 defines.
    import json

    from horsies.tasks.send_types import canonical_send_json

    expected = json.dumps(values, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    assert canonical_send_json(values) == expected
