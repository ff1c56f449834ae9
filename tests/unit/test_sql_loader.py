"""The named-query loader of horsies.sql and the packaged schema steps (no database)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from types import MappingProxyType

import pytest

import horsies.sql as sql_pkg
from horsies.db import schema as schema_mod
from horsies.sql import (
    SqlFileError,
    descriptions,
    load_queries,
    load_schema_steps,
    parse_queries,
    queries,
    schema_sql,
    schema_steps,
)

# -- parse_queries --------------------------------------------------------------


def test_parses_name_description_and_statement() -> None:
    text = """-- Header comment of the file.
-- It may span several lines.

-- name: task_get
-- Read one task.
SELECT *
FROM horsies_tasks
WHERE id = %(id)s;

-- name: task_delete_many
-- Delete tasks by id.
DELETE FROM horsies_tasks WHERE id = ANY(%(ids)s);
"""
    found = parse_queries(text, "x.sql")
    assert [q.name for q in found] == ["task_get", "task_delete_many"]
    first, second = found
    assert first.description == "Read one task."
    assert first.sql == "SELECT *\nFROM horsies_tasks\nWHERE id = %(id)s;"
    assert (first.source, first.line) == ("x.sql", 4)
    assert second.sql == "DELETE FROM horsies_tasks WHERE id = ANY(%(ids)s);"
    assert second.line == 10


def test_trailing_comments_belong_to_the_next_section() -> None:
    text = """-- name: a_get
-- First.
SELECT 1;

-- ---------------------------------------------------------------
-- Section header for what follows
-- ---------------------------------------------------------------

-- name: b_get
-- Second.
SELECT 2;
"""
    a, b = parse_queries(text, "x.sql")
    assert a.sql == "SELECT 1;"
    assert b.sql == "SELECT 2;"


def test_comments_inside_a_statement_are_kept() -> None:
    text = "-- name: a_get\n-- First.\nSELECT 1 -- one\n  -- inner note\n  + 1;\n"
    (a,) = parse_queries(text, "x.sql")
    assert a.sql == "SELECT 1 -- one\n  -- inner note\n  + 1;"


def test_tolerates_spacing_and_crlf() -> None:
    text = "--name:   a_get  \r\n--   Described.  \r\nSELECT 1;\r\n"
    (a,) = parse_queries(text, "x.sql")
    assert (a.name, a.description, a.sql) == ("a_get", "Described.", "SELECT 1;")


def test_empty_file_has_no_queries() -> None:
    assert parse_queries("", "x.sql") == []
    assert parse_queries("-- only a header\n\n", "x.sql") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: a_get\nSELECT 1;\n", r"x\.sql:1: query 'a_get' needs a one-line"),
        ("-- name: a_get\n--\nSELECT 1;\n", r"x\.sql:1: query 'a_get' needs a one-line"),
        ("-- name: a_get\n", r"x\.sql:1: query 'a_get' needs a one-line"),
        ("-- name: a_get\n-- name: b_get\n-- B.\nSELECT 1;\n", r"query 'a_get' needs"),
        ("-- name: a_get\n-- A.\n\n-- name: b_get\n-- B.\nSELECT 1;\n", r"x\.sql:1: query 'a_get' has no statement"),
        ("-- name: a_get\n-- A.\n-- just a comment\n", r"query 'a_get' has no statement"),
        ("SELECT 1;\n-- name: a_get\n-- A.\nSELECT 2;\n", r"x\.sql:1: statement before the first"),
        ("-- name: Task_Get\n-- A.\nSELECT 1;\n", r"invalid query name 'Task_Get'"),
        ("-- name: task-get\n-- A.\nSELECT 1;\n", r"invalid query name 'task-get'"),
        ("-- name: 1task\n-- A.\nSELECT 1;\n", r"invalid query name '1task'"),
        ("-- name:\n-- A.\nSELECT 1;\n", r"invalid query name ''"),
        ("-- name: two words\n-- A.\nSELECT 1;\n", r"invalid query name 'two words'"),
    ],
)
def test_malformed_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(SqlFileError, match=message):
        parse_queries(text, "x.sql")


def test_sql_file_error_is_a_value_error() -> None:
    assert issubclass(SqlFileError, ValueError)


# -- load_queries ---------------------------------------------------------------


def _write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text, encoding="utf-8")


def test_loads_every_sql_file_except_the_schema(tmp_path: Path) -> None:
    _write(tmp_path, "tasks.sql", "-- name: task_get\n-- T.\nSELECT 1;\n")
    _write(tmp_path, "workers.sql", "-- name: worker_get\n-- W.\nSELECT 2;\n")
    _write(tmp_path, "schema.sql", "CREATE TABLE t (id int);\n")
    _write(tmp_path, "notes.txt", "-- name: ignored\n-- I.\nSELECT 3;\n")
    (tmp_path / "migrations").mkdir()
    _write(tmp_path / "migrations", "0002_more.sql", "ALTER TABLE t ADD COLUMN x int;\n")
    loaded = load_queries(tmp_path)
    assert sorted(loaded) == ["task_get", "worker_get"]
    assert loaded["worker_get"].source == "workers.sql"


def test_duplicate_names_across_files_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.sql", "-- name: task_get\n-- A.\nSELECT 1;\n")
    _write(tmp_path, "b.sql", "\n\n-- name: task_get\n-- B.\nSELECT 2;\n")
    with pytest.raises(
        SqlFileError, match=r"b\.sql:3: query 'task_get' is already defined at a\.sql:1"
    ):
        load_queries(tmp_path)


def test_duplicate_names_in_one_file_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.sql", "-- name: x_get\n-- A.\nSELECT 1;\n-- name: x_get\n-- B.\nSELECT 2;\n")
    with pytest.raises(SqlFileError, match=r"a\.sql:4: query 'x_get' is already defined at a\.sql:1"):
        load_queries(tmp_path)


# -- the packaged queries -------------------------------------------------------


def test_packaged_mapping_is_read_only() -> None:
    assert isinstance(queries, MappingProxyType)
    assert isinstance(descriptions, MappingProxyType)
    with pytest.raises(TypeError):
        queries["x"] = "SELECT 1"  # type: ignore[index]


def test_packaged_queries_are_well_formed() -> None:
    assert set(queries) == set(descriptions)
    for name, text in queries.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
        assert text.strip() == text and text
        assert descriptions[name]


def test_every_query_file_of_the_package_is_picked_up() -> None:
    directory = Path(sql_pkg.__file__).parent
    expected: set[str] = set()
    for path in directory.glob("*.sql"):
        if path.name != "schema.sql":
            expected |= {q.name for q in parse_queries(path.read_text("utf-8"), path.name)}
    assert set(queries) == expected


# -- schema steps ---------------------------------------------------------------


def test_schema_steps_start_with_schema_sql(tmp_path: Path) -> None:
    _write(tmp_path, "schema.sql", "CREATE TABLE t (id int);\n")
    (tmp_path / "migrations").mkdir()
    _write(tmp_path / "migrations", "0002_add_x.sql", "ALTER TABLE t ADD COLUMN IF NOT EXISTS x int;\n")
    _write(tmp_path / "migrations", "0003_add_y.sql", "ALTER TABLE t ADD COLUMN IF NOT EXISTS y int;\n")
    steps = load_schema_steps(tmp_path)
    assert [(s.version, s.source) for s in steps] == [
        (1, "schema.sql"),
        (2, "migrations/0002_add_x.sql"),
        (3, "migrations/0003_add_y.sql"),
    ]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["0003_skip.sql"], r"expected step 0002"),
        (["0002_a.sql", "0002_b.sql"], r"0002_b\.sql: expected step 0003"),
        (["0001_again.sql"], r"expected step 0002"),
        (["2_short.sql"], r"named NNNN_slug\.sql"),
        (["0002-dash.sql"], r"named NNNN_slug\.sql"),
        (["0002_Upper.sql"], r"named NNNN_slug\.sql"),
    ],
)
def test_badly_numbered_migrations_are_refused(
    tmp_path: Path, names: list[str], message: str
) -> None:
    _write(tmp_path, "schema.sql", "CREATE TABLE t (id int);\n")
    (tmp_path / "migrations").mkdir()
    for name in names:
        _write(tmp_path / "migrations", name, "SELECT 1;\n")
    with pytest.raises(SqlFileError, match=message):
        load_schema_steps(tmp_path)


def test_missing_or_empty_schema_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SqlFileError, match="schema.sql is missing"):
        load_schema_steps(tmp_path)
    _write(tmp_path, "schema.sql", "  \n")
    with pytest.raises(SqlFileError, match="empty schema step"):
        load_schema_steps(tmp_path)


def test_packaged_steps_match_the_current_version() -> None:
    steps = schema_steps()
    assert [s.version for s in steps] == list(range(1, schema_mod.CURRENT_SCHEMA_VERSION + 1))
    assert steps[0].source == "schema.sql"
    assert schema_sql() == "\n".join(s.sql for s in steps)


def test_schema_lock_key_derivation() -> None:
    digest = hashlib.sha256(b"horsies:schema:v1").digest()
    assert schema_mod.SCHEMA_LOCK_KEY == int.from_bytes(digest[:8], "big", signed=True)


def test_schema_names_every_spec_object() -> None:
    text = schema_sql()
    for name in [
        "horsies_tasks", "horsies_task_attempts", "horsies_heartbeats",
        "horsies_worker_states", "horsies_schema_version",
        "idx_horsies_tasks_claimable", "idx_horsies_tasks_lease", "idx_horsies_tasks_inflight",
        "idx_horsies_tasks_owner", "idx_horsies_tasks_deadline",
        "idx_horsies_tasks_status_updated", "idx_horsies_tasks_error_code",
        "uq_horsies_task_attempts_task_attempt", "ck_horsies_task_attempts_outcome",
        "idx_horsies_task_attempts_error_code", "idx_horsies_task_attempts_finished_at",
        "idx_horsies_heartbeats_task_role_sent", "idx_horsies_heartbeats_sent_brin",
        "horsies_notify_task_new", "horsies_task_new_trigger",
        "horsies_notify_task_requeue", "horsies_task_requeue_trigger",
        "horsies_notify_task_done", "horsies_task_done_trigger",
        "horsies_notify_task_status_change", "horsies_task_status_insert_trigger",
        "horsies_task_status_update_trigger", "horsies_notify_worker_state_change",
        "horsies_worker_state_notify_trigger",
    ]:
        assert re.search(rf"\b{name}\b", text), name


def test_schema_ddl_is_idempotent_by_construction() -> None:
    """Every CREATE can be re-run: IF NOT EXISTS, OR REPLACE, or a preceding DROP IF EXISTS."""
    statements = re.findall(r"^\s*(CREATE\b[^\n]*)", schema_sql(), flags=re.MULTILINE)
    assert statements
    dropped = set(re.findall(r"DROP TRIGGER IF EXISTS (\w+)", schema_sql()))
    for line in statements:
        if line.startswith("CREATE TRIGGER"):
            assert line.split()[2] in dropped, line
        else:
            assert "IF NOT EXISTS" in line or "OR REPLACE" in line, line
