"""The benchmark server: a given URL or a temporary embedded one, scratch databases on it."""

from __future__ import annotations

import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


def with_database(url: str, name: str) -> str:
    """The same server URL with another database name."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def server(url: str | None) -> Iterator[str]:
    """`url` as it is, or a temporary embedded server stopped and removed on exit."""
    if url is not None:
        yield url
        return
    from horsies import embedded

    datadir = tempfile.mkdtemp(prefix="horsies-bench-")
    try:
        yield embedded.start(datadir)
    finally:
        embedded.stop(datadir)
        shutil.rmtree(datadir, ignore_errors=True)


@contextmanager
def embedded_kept(datadir: str) -> Iterator[str]:
    """The embedded server of `datadir`, started (created when new) and stopped on exit; the directory stays."""
    from horsies import embedded

    try:
        yield embedded.start(datadir)
    finally:
        embedded.stop(datadir)


@contextmanager
def scratch_database(server_url: str, prefix: str = "horsies_bench") -> Iterator[str]:
    """A new empty database on the server (a unique name: runs may overlap), dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_settings(url: str) -> str:
    """What the figures depend on: the server's version and its durability and memory settings."""
    with psycopg.connect(url) as conn:
        values = [conn.execute(f"SHOW {name}").fetchone() for name in
                  ("server_version", "shared_buffers", "synchronous_commit")]
    version, buffers, sync = (row[0] if row else "?" for row in values)
    return f"PostgreSQL {version}, shared_buffers={buffers}, synchronous_commit={sync}"
