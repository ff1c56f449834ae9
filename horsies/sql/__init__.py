"""Every SQL statement horsies runs, loaded once from the ``*.sql`` files here.

Query files
    Every ``*.sql`` file in this package except ``schema.sql`` holds named
    queries. Each query starts with a ``-- name: <query_name>`` line, then one
    comment line describing it, then the statement, which runs up to the next
    ``-- name:`` line. Blank and comment lines before the first query are a
    file header. Names are lower-case identifiers (entity, verb, qualifier,
    ``_many`` for batch forms) and unique across all files. A malformed file
    raises :class:`SqlFileError` at import, so a broken query never ships
    silently.

``queries``
    Read-only mapping ``name -> statement text`` (``LiteralString``, so psycopg
    accepts it as trusted SQL). ``descriptions`` maps the same names to their
    one-line descriptions.

Schema files
    ``schema.sql`` is migration step 1; later steps are
    ``migrations/NNNN_slug.sql`` numbered from 0002 without gaps. Each step is
    a script of idempotent DDL. :func:`schema_steps` returns them in order and
    :func:`schema_sql` the whole script; only ``horsies.db.schema`` runs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import TYPE_CHECKING, LiteralString, NamedTuple

if TYPE_CHECKING:
    from psycopg import sql

__all__ = [
    "Query",
    "SchemaStep",
    "SqlFileError",
    "cycle_statement",
    "descriptions",
    "listen",
    "load_queries",
    "load_schema_steps",
    "parse_queries",
    "queries",
    "queue_channel",
    "schema_sql",
    "schema_steps",
]

SCHEMA_FILE = "schema.sql"
MIGRATIONS_DIR = "migrations"

_NAME_LINE = re.compile(r"^--\s*name:\s*(?P<name>.*?)\s*$")
_VALID_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_COMMENT = re.compile(r"^--(?P<text>.*)$")
_MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_[a-z0-9_]+\.sql$")


class SqlFileError(ValueError):
    """A ``.sql`` file of the package breaks the named-query or migration rules."""


class Query(NamedTuple):
    """One named query and where it was defined."""

    name: str
    description: str
    sql: LiteralString
    source: str
    line: int


class SchemaStep(NamedTuple):
    """One migration step: its version number, file name and DDL script."""

    version: int
    source: str
    sql: LiteralString


def parse_queries(text: str, source: str) -> list[Query]:
    """Split one file's text into its named queries, in file order."""
    found: list[Query] = []
    lines = text.splitlines()
    current: tuple[str, str, int] | None = None  # name, description, line of the name
    body: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        match = _NAME_LINE.match(line)
        if match is None:
            if current is None and line and not line.startswith("--"):
                raise SqlFileError(f"{source}:{i + 1}: statement before the first '-- name:' line")
            body.append(lines[i])
            i += 1
            continue
        if current is not None:
            found.append(_finish(current, body, source))
        name = match.group("name")
        if not _VALID_NAME.match(name):
            raise SqlFileError(
                f"{source}:{i + 1}: invalid query name {name!r} (use lower-case letters, "
                "digits and underscores, starting with a letter)"
            )
        description = _description(lines, i + 1)
        if description is None:
            raise SqlFileError(
                f"{source}:{i + 1}: query {name!r} needs a one-line '-- <description>' "
                "comment right after its '-- name:' line"
            )
        current, body = (name, description, i + 1), []
        i += 2
    if current is not None:
        found.append(_finish(current, body, source))
    return found


def _description(lines: list[str], index: int) -> str | None:
    if index >= len(lines):
        return None
    line = lines[index].strip()
    match = _COMMENT.match(line)
    if match is None or _NAME_LINE.match(line):
        return None
    text = match.group("text").strip()
    return text or None


def _finish(current: tuple[str, str, int], body: list[str], source: str) -> Query:
    name, description, line = current
    # Blank and comment lines at the end belong to whatever follows, not to this query.
    while body and (not body[-1].strip() or body[-1].strip().startswith("--")):
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    sql = "\n".join(row.rstrip() for row in body)
    if not any(row.strip() and not row.strip().startswith("--") for row in body):
        raise SqlFileError(f"{source}:{line}: query {name!r} has no statement")
    return Query(name, description, _trusted(sql), source, line)


def load_queries(directory: Traversable) -> dict[str, Query]:
    """Every named query of the ``*.sql`` files directly in `directory` except the schema."""
    loaded: dict[str, Query] = {}
    for entry in _sql_files(directory):
        if entry.name == SCHEMA_FILE:
            continue
        for query in parse_queries(entry.read_text(encoding="utf-8"), entry.name):
            previous = loaded.get(query.name)
            if previous is not None:
                raise SqlFileError(
                    f"{query.source}:{query.line}: query {query.name!r} is already defined "
                    f"at {previous.source}:{previous.line}"
                )
            loaded[query.name] = query
    return loaded


def _sql_files(directory: Traversable) -> Iterable[Traversable]:
    return sorted(
        (entry for entry in directory.iterdir() if entry.is_file() and entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )


def load_schema_steps(directory: Traversable) -> tuple[SchemaStep, ...]:
    """Step 1 from ``schema.sql``, then ``migrations/NNNN_slug.sql`` in order."""
    first = directory / SCHEMA_FILE
    if not first.is_file():
        raise SqlFileError(f"{SCHEMA_FILE} is missing")
    steps = [SchemaStep(1, SCHEMA_FILE, _script(first))]
    migrations = directory / MIGRATIONS_DIR
    if migrations.is_dir():
        for entry in _sql_files(migrations):
            match = _MIGRATION_FILE.match(entry.name)
            if match is None:
                raise SqlFileError(
                    f"{MIGRATIONS_DIR}/{entry.name}: migration files are named NNNN_slug.sql"
                )
            version = int(match.group("version"))
            expected = steps[-1].version + 1
            if version != expected:
                raise SqlFileError(
                    f"{MIGRATIONS_DIR}/{entry.name}: expected step {expected:04d} "
                    f"(steps are numbered from 0002 without gaps or duplicates)"
                )
            steps.append(SchemaStep(version, f"{MIGRATIONS_DIR}/{entry.name}", _script(entry)))
    return tuple(steps)


def _script(entry: Traversable) -> LiteralString:
    text = entry.read_text(encoding="utf-8")
    if not text.strip():
        raise SqlFileError(f"{entry.name}: empty schema step")
    return _trusted(text)


def _trusted(text: str) -> LiteralString:
    """SQL read from this package's own files is as trusted as a literal in the code."""
    return text  # mypy treats LiteralString as str; this is the one place we vouch for it


@cache
def schema_steps() -> tuple[SchemaStep, ...]:
    """The migration steps shipped with this build, in version order (read once)."""
    return load_schema_steps(files(__name__))


def schema_sql() -> LiteralString:
    """The whole schema as one idempotent DDL script (every step, in order)."""
    return _trusted("\n".join(step.sql for step in schema_steps()))


_QUERIES = load_queries(files(__name__))

queries: Mapping[str, LiteralString] = MappingProxyType(
    {name: query.sql for name, query in _QUERIES.items()}
)
descriptions: Mapping[str, str] = MappingProxyType(
    {name: query.description for name, query in _QUERIES.items()}
)


def queue_channel(queue: str) -> str:
    """The notification channel of one queue (any text a queue name may hold)."""
    return f"task_queue_{queue}"


def listen(channel: str) -> sql.Composed:
    """``LISTEN`` on `channel`, quoted as an identifier: a channel named after a
    queue may hold quotes, semicolons or spaces."""
    from psycopg import sql

    return sql.SQL(queries["channel_listen"]).format(channel=sql.Identifier(channel))


def cycle_statement(most_slots: int) -> LiteralString:
    """`worker_cycle` for a worker whose cycles start at most `most_slots` tasks
    (the limit is part of the plan; see the statement)."""
    from psycopg import sql

    text = sql.SQL(queries["worker_cycle"]).format(run_limit=sql.Literal(max(0, most_slots)))
    return _trusted(text.as_string())
