"""Database fixtures, markers and the report header shared by the whole suite.

The server is ``HORSIES_TEST_DATABASE_URL`` when set, else an embedded server
(``horsies.embedded``) in a temporary directory for the session. A template
database holding the horsies schema is built once; each test that asks for
``pg_url`` gets a fresh clone of it, dropped afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

# Worker processes started from the CLI, and the shared test app (tests/workers.py).
pytest_plugins = ["tests.workers"]

TESTS_DIR = Path(__file__).resolve().parent
TEST_DATABASE_ENV = "HORSIES_TEST_DATABASE_URL"
# Subdirectory of tests/ -> markers given to every test collected from it.
_DIR_MARKERS = {"integration": ("pg",), "e2e": ("pg", "e2e")}

_template_state: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    # The suite chooses its database itself; an override meant for an
    # application must not redirect configs built by tests.
    os.environ.pop("HORSIES_DATABASE_URL", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            area = Path(item.path).resolve().relative_to(TESTS_DIR).parts[0]
        except (ValueError, IndexError):
            continue
        for name in _DIR_MARKERS.get(area, ()):
            item.add_marker(getattr(pytest.mark, name))


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [_speedups_line(), _psycopg_line(), _postgres_line()]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _template_state:
        terminalreporter.write_line(f"template database: {_template_state['state']}")


# -- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of the test server's maintenance database (session scope)."""
    external = os.environ.get(TEST_DATABASE_ENV, "").strip()
    if external:
        yield _normalize(external)
        return
    from horsies import embedded

    data_dir = tempfile.mkdtemp(prefix="horsies-test-pg-")
    try:
        yield embedded.start(data_dir)
    finally:
        try:
            embedded.stop(data_dir)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(pg_server_url: str) -> Iterator[str]:
    """Name of a template database holding the horsies schema (when it exists)."""
    name = f"horsies_tmpl_{os.getpid()}_{secrets.token_hex(3)}"
    with _admin(pg_server_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        _template_state["state"] = _init_template(with_database(pg_server_url, name))
        yield name
    finally:
        with _admin(pg_server_url) as conn:
            drop_database(conn, name)


@pytest.fixture
def pg_url(pg_server_url: str, pg_template: str) -> Iterator[str]:
    """URL of a fresh database cloned from the template, dropped after the test."""
    name = f"horsies_t_{secrets.token_hex(6)}"
    with _admin(pg_server_url) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(pg_template)
            )
        )
    try:
        yield with_database(pg_server_url, name)
    finally:
        with _admin(pg_server_url) as conn:
            drop_database(conn, name)


# -- helpers ----------------------------------------------------------------


# A server that refuses connections: the "database is down" case.
DOWN_URL = "postgresql://nobody@127.0.0.1:1/none"


def read_only(url: str) -> str:
    """`url` whose sessions refuse every write (the embedded server's URL has a query)."""
    return f"{url}{'&' if '?' in url else '?'}options=-c%20default_transaction_read_only%3Don"


def query(url: str, text: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement in its own autocommit connection; its rows, if any."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(text, params)
        return cur.fetchall() if cur.description else []


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database ``name``."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def drop_database(conn: psycopg.Connection[Any], name: str) -> None:
    """Terminate the database's sessions, then drop it."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
    conn.execute(
        sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force)
    )


def _admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def _normalize(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return scheme.removesuffix("+psycopg") + sep + rest


def _init_template(url: str) -> str:
    try:
        from horsies.db.schema import ensure_schema_initialized
    except ImportError as exc:
        return f"empty (horsies.db.schema not importable: {exc})"
    with psycopg.connect(url) as conn:
        ensure_schema_initialized(conn)
        conn.commit()
    return "horsies schema applied"


def _speedups_line() -> str:
    try:
        import horsies._speedups as speedups
    except Exception as exc:  # noqa: BLE001 - the header must not fail
        return f"horsies._speedups: not importable ({type(exc).__name__}: {exc})"
    line = f"horsies._speedups: IMPL={getattr(speedups, 'IMPL', '?')}"
    error = getattr(speedups, "IMPL_ERROR", None)
    return f"{line} (IMPL_ERROR: {error})" if error else line


def _psycopg_line() -> str:
    libpq = psycopg.pq.version()
    return (
        f"psycopg: {psycopg.__version__}, impl={psycopg.pq.__impl__},"
        f" libpq {libpq // 10000}.{libpq % 10000}"
    )


def _postgres_line() -> str:
    external = os.environ.get(TEST_DATABASE_ENV, "").strip()
    if external:
        try:
            with psycopg.connect(_normalize(external), connect_timeout=5) as conn:
                version = conn.execute("SHOW server_version").fetchone()
            return f"PostgreSQL: {version[0] if version else '?'} ({TEST_DATABASE_ENV})"
        except psycopg.Error as exc:
            return f"PostgreSQL: unreachable via {TEST_DATABASE_ENV} ({exc})"
    return f"PostgreSQL: {_embedded_version()} (embedded, started on first use)"


def _embedded_version() -> str:
    # Ask the bundled pg_config instead of starting a server for the header.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return "not available (pgserver is not installed)"
    exe = "pg_config.exe" if os.name == "nt" else "pg_config"
    pg_config = Path(spec.origin).parent / "pginstall" / "bin" / exe
    try:
        out = subprocess.run(
            [str(pg_config), "--version"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    return out.strip().removeprefix("PostgreSQL ")
