"""Malformed rows found in the table give clear error values, never crashes.

The worker tests run a real `horsies worker` against rows written with SQL
(as a foreign producer or a hand edit could leave them) and check that each
ends FAILED with the documented code while the worker keeps serving.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from horsies import OperationalErrorCode, TaskStatus
from horsies.info import BrokerErrorCode
from horsies.tasks.handle import TaskHandle

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.apps:app"


def insert_row(url: str, task_name: str, args: str | None = None, kwargs: str | None = None,
               **extra: Any) -> str:
    task_id = str(uuid.uuid4())
    columns = {"id": task_id, "queue_name": "default", "task_name": task_name,
               "enqueue_sha": "x", "args": args, "kwargs": kwargs, **extra}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO horsies_tasks ({', '.join(columns)}) "
                     f"VALUES ({', '.join(['%s'] * len(columns))})", list(columns.values()))
    return task_id


def wait_terminal(url: str, ids: list[str], timeout: float = 20.0) -> dict[str, tuple[Any, ...]]:
    end = time.monotonic() + timeout
    while True:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT id::text, status, error_code, result FROM horsies_tasks "
                "WHERE id = ANY(%s::uuid[])", (ids,)).fetchall()
        found = {r[0]: r[1:] for r in rows}
        if all(found[i][0] in ("COMPLETED", "FAILED", "EXPIRED", "CANCELLED") for i in ids):
            return found
        if time.monotonic() > end:
            raise AssertionError(f"tasks never finished: {found}")
        time.sleep(0.05)


MISSING_CLASS = ('[{"__dataclass__":true,"module":"tests.integration.no_such_module",'
                 '"qualname":"Gone","data":{}}]')
MISSING_ATTR = ('[{"__dataclass__":true,"module":"tests.integration.apps",'
                '"qualname":"NoSuchClass","data":{}}]')
BAD_ROWS = {
    "args not JSON": ("{[not json", None, "Invalid JSON"),
    "args not an array": ('{"a":1}', None, "must be a JSON array"),
    "args a bare number": ("7", None, "must be a JSON array"),
    "kwargs not an object": ("[1]", "[2]", "must be a JSON object"),
    "kwargs not JSON": (None, "nope", "Invalid JSON"),
    "unimportable class": (MISSING_CLASS, None, "Cannot import module"),
    "class not in module": (MISSING_ATTR, None, "Cannot find 'NoSuchClass'"),
    "malformed tagged form": ('[{"__dataclass__":true}]', None, "Malformed __dataclass__"),
    "not a dataclass": ('[{"__dataclass__":true,"module":"tests.integration.apps",'
                        '"qualname":"add","data":{}}]', None, "is not a dataclass"),
    "bad datetime": ('[{"__datetime__":true,"value":"garbage"}]', None, "Invalid __datetime__"),
}


def test_malformed_rows_fail_with_serialization_or_resolution_errors(
    apps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    worker = start_worker([APP, "--processes=1"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    # `explode` raises if it ever runs; a decode failure must stop it first
    bad = {label: insert_row(pg_url, "explode", args, kwargs)
           for label, (args, kwargs, _) in BAD_ROWS.items()}
    unknown = insert_row(pg_url, "no_such_task", '["x"]')
    rows = wait_terminal(pg_url, [*bad.values(), unknown])

    for label, task_id in bad.items():
        status, error_code, _ = rows[task_id]
        handle: TaskHandle[Any] = TaskHandle(task_id, apps.app, broker_mode=True)
        error = handle.get(timeout_ms=0).err_value
        assert (status, error_code) == ("FAILED", "WORKER_SERIALIZATION_ERROR"), label
        assert error.error_code == OperationalErrorCode.WORKER_SERIALIZATION_ERROR, label
        assert error.message.startswith("could not decode the stored "), (label, error.message)
        assert BAD_ROWS[label][2] in error.message, (label, error.message)
        attempts = handle.info(include_attempts=True).ok_value.attempts
        assert [(a.outcome.value, a.error_code) for a in attempts] == [
            ("FAILED", "WORKER_SERIALIZATION_ERROR")], label

    status, error_code, _ = rows[unknown]
    assert (status, error_code) == ("FAILED", "WORKER_RESOLUTION_ERROR")
    error = TaskHandle(unknown, apps.app, broker_mode=True).get(timeout_ms=0).err_value
    assert error.error_code == OperationalErrorCode.WORKER_RESOLUTION_ERROR
    assert "no_such_task" in error.message

    # user code never ran (explode would have ended UNHANDLED_EXCEPTION) and the
    # worker, its child included, keeps serving
    assert apps.add.send(2, 3).ok_value.get(timeout_ms=20_000).ok_value == 5
    assert worker.stop() == 0


@pytest.mark.parametrize("stored", ["{not json", '{"ok": 1}', "[]", '"text"'])
def test_invalid_stored_result_is_an_error_value(apps: Any, pg_url: str, stored: str) -> None:
    task_id = insert_row(pg_url, "add", "[1,2]", status="COMPLETED", result=stored,
                         completed_at=datetime.now(UTC))
    handle: TaskHandle[Any] = TaskHandle(task_id, apps.app, broker_mode=True)
    error = handle.get(timeout_ms=1_000).err_value
    assert error.error_code == OperationalErrorCode.RESULT_DESERIALIZATION_ERROR
    assert error.message.startswith("stored result ")
    info = handle.info(include_result=True)
    assert info.is_err()
    assert info.err_value.code is BrokerErrorCode.TASK_INFO_QUERY_FAILED
    assert task_id in info.err_value.message and not info.err_value.retryable
    # without the result the row is still readable
    plain = handle.info().ok_value
    assert plain.status is TaskStatus.COMPLETED and plain.result is None


BAD_OPTIONS = {
    "options not JSON": "{not json",
    "options not an object": "[1, 2]",
    "policy not an object": '{"retry_policy": 5}',
    "auto_retry_for not a list": '{"retry_policy": {"auto_retry_for": 7}}',
    "intervals not numbers": '{"retry_policy": {"auto_retry_for": ["UNHANDLED_EXCEPTION"], '
                             '"intervals": ["soon"]}}',
    "delay out of range": '{"retry_policy": {"auto_retry_for": ["UNHANDLED_EXCEPTION"], '
                          '"intervals": [1e300], "jitter": false}}',
}


def test_malformed_task_options_do_not_stop_the_worker(
    apps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any
) -> None:
    worker = start_worker([APP, "--processes=1"], worker_env, cwd=REPO)
    worker.wait_for("Worker started")
    ids = {label: insert_row(pg_url, "explode", '["boom"]', task_options=options,
                             max_retries=2)
           for label, options in BAD_OPTIONS.items()}
    rows = wait_terminal(pg_url, list(ids.values()))
    for label, task_id in ids.items():
        # no retry can be derived from an unreadable policy: the task's own error stands
        assert rows[task_id][:2] == ("FAILED", "UNHANDLED_EXCEPTION"), label
    assert apps.add.send(2, 3).ok_value.get(timeout_ms=20_000).ok_value == 5
    assert worker.stop() == 0
