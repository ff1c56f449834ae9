"""Create or migrate the horsies schema (lifecycle-and-schema.md §9).

``ensure_schema_initialized(conn)`` / ``ensure_schema_initialized_async(aconn)``:

1. fast path: one short read; when the recorded version equals
   ``CURRENT_SCHEMA_VERSION`` return at once (no lock, no DDL);
2. otherwise open a transaction and take ``pg_advisory_xact_lock(SCHEMA_LOCK_KEY)``,
   which serializes initialization across every process on the database;
3. re-read the version under the lock, refuse a newer schema or a
   non-versioned horsies schema (:class:`SchemaVersionError`, not retryable);
4. apply every missing step of ``horsies.sql.schema_steps()`` and record one
   ``horsies_schema_version`` row per step;
5. commit: the DDL and the version rows land together or not at all.

Both return the schema version now in the database. Database and connection
failures propagate as ``psycopg`` exceptions (the broker turns them into
``SCHEMA_INIT_FAILED`` with ``retryable`` set for connection-level errors).
The connection must not be inside a transaction; it is left idle, in the
autocommit mode it came with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, LiteralString, cast

import psycopg
from psycopg import pq
from psycopg.rows import tuple_row

from horsies.errors import ErrorCode, HorsiesError
from horsies.sql import SchemaStep, schema_steps

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "SCHEMA_LOCK_KEY",
    "SchemaVersionError",
    "ensure_schema_initialized",
    "ensure_schema_initialized_async",
    "read_schema_version",
    "read_schema_version_async",
]

#: Schema version this build creates and understands.
CURRENT_SCHEMA_VERSION: Final = 4

#: Advisory lock key serializing schema initialization: the first 8 bytes of
#: ``sha256(b"horsies:schema:v1")`` read as a big-endian signed 64-bit integer.
#: Fixed rather than derived from the URL: advisory locks are already scoped
#: to one database, and differently spelled URLs must still exclude each other.
SCHEMA_LOCK_KEY: Final = 6194151126714960738

_PROBE: LiteralString = (
    "SELECT to_regclass('horsies_schema_version') IS NOT NULL,"
    " to_regclass('horsies_tasks') IS NOT NULL"
)
_MAX_VERSION: LiteralString = "SELECT max(version) FROM horsies_schema_version"
# READ COMMITTED so the re-read after the lock sees what the previous holder
# committed, whatever the server's default isolation; notices ("already
# exists, skipping") are noise on a re-run.
_BEGIN: LiteralString = (
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED;"
    " SET LOCAL client_min_messages = warning"
)
_LOCK: LiteralString = "SELECT pg_advisory_xact_lock(%s)"
_RECORD: LiteralString = (
    "INSERT INTO horsies_schema_version (version) VALUES (%s) ON CONFLICT (version) DO NOTHING"
)


@dataclass(eq=False)
class SchemaVersionError(HorsiesError):
    """The database holds a schema this build must not touch; retrying cannot help."""

    default_code: ClassVar[ErrorCode | None] = ErrorCode.BROKER_INIT_FAILED
    retryable: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class _Probe:
    found: int | None  # MAX(version); None when the version table is missing or empty
    has_version_table: bool
    has_tasks_table: bool


def _steps_to_apply(probe: _Probe) -> Sequence[SchemaStep]:
    """The steps still missing, or raise when the schema must not be touched."""
    found = probe.found
    if found is not None and found > CURRENT_SCHEMA_VERSION:
        raise SchemaVersionError(
            f"database schema v{found} is newer than this horsies build supports "
            f"(v{CURRENT_SCHEMA_VERSION})"
        )
    if not probe.has_version_table and probe.has_tasks_table:
        raise SchemaVersionError(
            "database has a horsies_tasks table but no horsies_schema_version table: "
            "adopting an existing non-versioned horsies schema is not supported"
        ).with_help("use a new database, or drop the existing horsies tables first")
    steps = schema_steps()
    if steps[-1].version != CURRENT_SCHEMA_VERSION:
        raise RuntimeError(
            f"packaged schema steps end at v{steps[-1].version}, "
            f"expected v{CURRENT_SCHEMA_VERSION}"
        )
    return [step for step in steps if step.version > (found or 0)]


def _require_idle(status: pq.TransactionStatus) -> None:
    if status != pq.TransactionStatus.IDLE:
        raise psycopg.ProgrammingError(
            "schema initialization needs a connection that is not inside a transaction"
        )


# -- sync -----------------------------------------------------------------------


def _probe(conn: psycopg.Connection[Any]) -> _Probe:
    # Tuple rows whatever row factory the caller's connection uses.
    with conn.cursor(row_factory=tuple_row) as cur:
        has_version, has_tasks = _one(cur.execute(_PROBE).fetchone())
        found = None
        if has_version:
            found = _one(cur.execute(_MAX_VERSION).fetchone())[0]
    return _Probe(_version(found), bool(has_version), bool(has_tasks))


def read_schema_version(conn: psycopg.Connection[Any]) -> int | None:
    """The schema version recorded in the database, ``None`` when not initialized.

    Read-only; never creates anything. Safe inside or outside a transaction.
    """
    with conn.transaction():
        return _probe(conn).found


def ensure_schema_initialized(conn: psycopg.Connection[Any]) -> int:
    """Create or migrate the schema if needed; return the version now in place."""
    _require_idle(conn.info.transaction_status)
    with conn.transaction():
        if _probe(conn).found == CURRENT_SCHEMA_VERSION:
            return CURRENT_SCHEMA_VERSION
    with conn.transaction():
        with conn.cursor() as cur:
            cur.execute(_BEGIN, prepare=False)
            cur.execute(_LOCK, (SCHEMA_LOCK_KEY,))
        probe = _probe(conn)
        if probe.found == CURRENT_SCHEMA_VERSION:
            return CURRENT_SCHEMA_VERSION
        steps = _steps_to_apply(probe)  # raises: the transaction rolls back
        with conn.cursor() as cur:
            for step in steps:
                cur.execute(step.sql, prepare=False)
                cur.execute(_RECORD, (step.version,))
    return CURRENT_SCHEMA_VERSION


# -- async ----------------------------------------------------------------------


async def _probe_async(aconn: psycopg.AsyncConnection[Any]) -> _Probe:
    async with aconn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(_PROBE)
        has_version, has_tasks = _one(await cur.fetchone())
        found = None
        if has_version:
            await cur.execute(_MAX_VERSION)
            found = _one(await cur.fetchone())[0]
    return _Probe(_version(found), bool(has_version), bool(has_tasks))


async def read_schema_version_async(aconn: psycopg.AsyncConnection[Any]) -> int | None:
    """Async twin of :func:`read_schema_version`."""
    async with aconn.transaction():
        return (await _probe_async(aconn)).found


async def ensure_schema_initialized_async(aconn: psycopg.AsyncConnection[Any]) -> int:
    """Async twin of :func:`ensure_schema_initialized`."""
    _require_idle(aconn.info.transaction_status)
    async with aconn.transaction():
        if (await _probe_async(aconn)).found == CURRENT_SCHEMA_VERSION:
            return CURRENT_SCHEMA_VERSION
    async with aconn.transaction():
        async with aconn.cursor() as cur:
            await cur.execute(_BEGIN, prepare=False)
            await cur.execute(_LOCK, (SCHEMA_LOCK_KEY,))
        probe = await _probe_async(aconn)
        if probe.found == CURRENT_SCHEMA_VERSION:
            return CURRENT_SCHEMA_VERSION
        steps = _steps_to_apply(probe)
        async with aconn.cursor() as cur:
            for step in steps:
                await cur.execute(step.sql, prepare=False)
                await cur.execute(_RECORD, (step.version,))
    return CURRENT_SCHEMA_VERSION


def _version(value: object) -> int | None:
    return None if value is None else int(cast(int, value))


def _one(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if row is None:  # an aggregate or a to_regclass() probe always returns a row
        raise psycopg.InterfaceError("expected one row, got none")
    return row
