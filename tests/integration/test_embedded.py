"""The embedded development server (horsies.embedded) and the pg_url fixture.

Server-lifetime tests run the attaching processes as real subprocesses: a
process is attached until it calls stop() or exits, and the server must stop
after the last one leaves.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from horsies import embedded
from horsies.errors import ConfigurationError, ErrorCode

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="Unix-socket and process checks are POSIX-only"
)

# A process that attaches, reports, then waits for commands on stdin:
# "start" (attach again), "stop" (detach), "fork" (a forked child attaches and
# exits normally), EOF (exit).
_CHILD = textwrap.dedent(
    """
    import logging, os, sys
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    from horsies import embedded
    data_dir = sys.argv[1]
    print(embedded.start(data_dir), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "start":
            print(embedded.start(data_dir), flush=True)
        elif cmd == "stop":
            embedded.stop(data_dir)
            print("stopped", flush=True)
        elif cmd == "fork":
            pid = os.fork()
            if pid == 0:
                print("child", embedded.start(data_dir), flush=True)
                sys.exit(0)
            os.waitpid(pid, 0)
            print("forked", flush=True)
    """
)


class Attached:
    """A subprocess attached to the embedded server of ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
        self.url = self.read()

    def read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"child exited early: {self.finish()}")
        return line.strip()

    def send(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def finish(self) -> str:
        """Close stdin, wait for a normal exit, return stderr."""
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return err

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=60)


def _running(data_dir: Path) -> bool:
    return (data_dir / "cluster" / "postmaster.pid").exists()


def _attached_pids(data_dir: Path) -> list[int]:
    pids: list[int] = json.loads((data_dir / "cluster" / ".handle_pids.json").read_text())
    return pids


def _query(url: str, statement: str) -> Any:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute(statement).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under tmp_path: as root, the server runs as an unprivileged user that
    # must traverse the parents, and a concurrent pytest session resets the
    # permissions of /tmp/pytest-of-<user> to 0o700.
    parent = Path(tempfile.mkdtemp(prefix="horsies-embedded-test-"))
    try:
        yield parent / "pgdata"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_url_is_a_unix_socket_in_the_data_dir(data_dir: Path) -> None:
    try:
        url = embedded.start(data_dir)
        assert embedded.start(str(data_dir)) == url  # cached, same URL
        parts = urlsplit(url)
        assert parts.scheme == "postgresql"
        assert parts.hostname is None and parts.port is None
        (socket_dir,) = parse_qs(parts.query)["host"]
        assert Path(socket_dir).is_relative_to(data_dir.resolve())
        assert parts.path == "/postgres" and parts.username == "postgres"
        assert _query(url, "SHOW listen_addresses") == ""
        assert _query(url, "SELECT inet_server_addr()") is None
    finally:
        embedded.stop(data_dir)
    assert not _running(data_dir)
    assert (data_dir / "cluster" / "PG_VERSION").exists()  # data stays
    embedded.stop(data_dir)  # not attached: a no-op


def test_warning_is_logged_once_per_process(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="horsies")
    try:
        embedded.start(data_dir)
        embedded.start(data_dir)
    finally:
        embedded.stop(data_dir)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name.startswith("horsies")
    message = warnings[0].getMessage()
    assert str(data_dir.resolve()) in message
    assert "embedded development database" in message
    assert "not meant for production" in message


def test_data_survives_a_restart(data_dir: Path) -> None:
    url = embedded.start(data_dir)
    try:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (7)")
    finally:
        embedded.stop(data_dir)
    assert not _running(data_dir)
    url = embedded.start(data_dir)
    try:
        assert _query(url, "SELECT v FROM kept") == 7
    finally:
        embedded.stop(data_dir)


def test_second_process_attaches_and_last_exit_stops(data_dir: Path) -> None:
    first = Attached(data_dir)
    second = Attached(data_dir)
    assert second.url == first.url
    assert sorted(_attached_pids(data_dir)) == sorted([first.proc.pid, second.proc.pid])
    assert second.send("start") == first.url  # idempotent within a process

    err_first = first.finish()
    assert _running(data_dir)
    assert _query(second.url, "SELECT 1") == 1

    err_second = second.finish()
    assert not _running(data_dir)
    with pytest.raises(psycopg.OperationalError):
        _query(first.url, "SELECT 1")
    for err in (err_first, err_second):
        assert err.count("WARNING horsies") == 1, err
        assert "not meant for production" in err


def test_concurrent_first_uses_share_one_server(data_dir: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(e for _, e in outputs)
    assert len({out.strip() for out, _ in outputs}) == 1
    assert not _running(data_dir)


def test_stop_keeps_server_for_other_processes(data_dir: Path) -> None:
    other = Attached(data_dir)
    url = embedded.start(data_dir)
    assert url == other.url
    embedded.stop(data_dir)
    assert _running(data_dir)
    assert os.getpid() not in _attached_pids(data_dir)
    assert other.send("stop") == "stopped"
    assert not _running(data_dir)
    other.finish()


def test_restart_after_stop_in_same_process(data_dir: Path) -> None:
    child = Attached(data_dir)
    assert child.send("stop") == "stopped"
    assert not _running(data_dir)
    assert child.send("start") == child.url
    assert _running(data_dir)
    assert _attached_pids(data_dir) == [child.proc.pid]
    child.finish()
    assert not _running(data_dir)


def test_killed_process_does_not_keep_server_alive(data_dir: Path) -> None:
    victim = Attached(data_dir)
    survivor = Attached(data_dir)
    victim.kill()
    assert _running(data_dir)
    survivor.finish()
    assert not _running(data_dir)


def test_forked_child_attaches_on_its_own(data_dir: Path) -> None:
    parent = Attached(data_dir)
    assert parent.send("fork") == f"child {parent.url}"
    assert parent.read() == "forked"
    assert _running(data_dir)  # the child's exit did not detach the parent
    assert _attached_pids(data_dir) == [parent.proc.pid]
    parent.finish()
    assert not _running(data_dir)


def test_directory_holding_something_else_is_rejected(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError) as info:
        embedded.start(data_dir)
    assert info.value.code == ErrorCode.BROKER_INIT_FAILED
    assert any("notes.txt" in note for note in info.value.notes)
    assert not (data_dir / "cluster").exists()


def test_unusable_directory_is_hrs_211(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError) as info:
        embedded.start(blocker / "pgdata")
    assert info.value.code == ErrorCode.BROKER_INIT_FAILED
    assert any("cause:" in note for note in info.value.notes)


def test_initdb_failure_carries_its_output(data_dir: Path) -> None:
    (data_dir / "cluster" / "leftover").mkdir(parents=True)  # not a cluster, not empty
    with pytest.raises(ConfigurationError) as info:
        embedded.start(data_dir)
    assert info.value.code == ErrorCode.BROKER_INIT_FAILED
    assert any("initdb" in note and "not empty" in note for note in info.value.notes)


def test_missing_pgserver_is_hrs_211(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pgserver", None)
    with pytest.raises(ConfigurationError) as info:
        embedded.start(data_dir)
    assert info.value.code == ErrorCode.BROKER_INIT_FAILED
    assert info.value.help_text is not None and "horsies[embedded]" in info.value.help_text


# -- the pg_url fixture --------------------------------------------------------

_seen_databases: list[str] = []


@pytest.mark.parametrize("round_", [1, 2])
def test_pg_url_databases_are_isolated(pg_url: str, pg_server_url: str, round_: int) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None
        assert conn.execute("SELECT to_regclass('public.isolation_probe')").fetchone() == (None,)
        conn.execute("CREATE TABLE isolation_probe (v int)")
    assert name[0] not in _seen_databases
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert not existing & set(_seen_databases)  # earlier clones were dropped
    _seen_databases.append(name[0])


def test_pg_url_holds_the_horsies_schema(pg_url: str) -> None:
    pytest.importorskip("horsies.db.schema")
    with psycopg.connect(pg_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
    assert "horsies_tasks" in tables
