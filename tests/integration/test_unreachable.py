"""A database that cannot be reached, and event loops that end right after a send.

- A send to a server that refuses connections answers with a retryable
  ENQUEUE_FAILED within the connect timeout, not after `pool_timeout`, and the
  library says once, with the URL masked, what it cannot reach; psycopg_pool's
  per-attempt lines never reach the user's log.
- `asyncio.run(send_async(...))` leaves no task of the library's behind, so
  the loop's shutdown never waits for one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from horsies.db.pool import CONNECT_TIMEOUT_S

APP = textwrap.dedent('''
    from horsies import AppConfig, Horsies, PostgresConfig, TaskError, TaskResult

    app = Horsies(AppConfig(broker=PostgresConfig(database_url="postgresql://unused@localhost/x")))


    @app.task("probe_add")
    def probe_add(a: int, b: int) -> TaskResult[int, TaskError]:
        return TaskResult(ok=a + b)
''')

UNREACHABLE = textwrap.dedent('''
    import asyncio, logging, sys, time
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    from probe_app import probe_add

    for label, send in (("sync", lambda: probe_add.send(1, 2)),
                        ("again", lambda: probe_add.send(1, 2)),
                        ("async", lambda: asyncio.run(probe_add.send_async(1, 2)))):
        started = time.monotonic()
        outcome = send()
        error = outcome.err_value
        print(label, round(time.monotonic() - started, 3), error.code.value, error.retryable)
''')


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    (tmp_path / "probe_app.py").write_text(APP)
    return tmp_path


def run_script(script: str, cwd: Path, url: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HORSIES_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def test_send_to_a_refusing_server_fails_fast_and_logs_once(probe_dir: Path) -> None:
    url = f"postgresql://shop:s3cret@127.0.0.1:{_closed_port()}/shop"
    done = run_script(UNREACHABLE, probe_dir, url, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert [(line[0], line[-2], line[-1]) for line in lines] == [
        ("sync", "ENQUEUE_FAILED", "True"), ("again", "ENQUEUE_FAILED", "True"),
        ("async", "ENQUEUE_FAILED", "True")]
    # The documented bound: one connection attempt (docs/reliability.md).
    assert all(float(line[-3]) < CONNECT_TIMEOUT_S for line in lines), done.stdout
    assert "psycopg.pool" not in done.stderr and "error connecting" not in done.stderr
    said = [line for line in done.stderr.splitlines() if "cannot reach the database" in line]
    assert len(said) == 1, done.stderr
    assert "s3cret" not in done.stderr and "shop:***@" in said[0]


class Relay:
    """A TCP port that forwards to the test server once `start()` is called;
    before that it refuses connections like a server that is down."""

    def __init__(self, pg_url: str) -> None:
        info = psycopg.conninfo.conninfo_to_dict(pg_url)
        host, port = str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)
        self.target: Any = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
        self.port = _closed_port()
        self.url = (f"postgresql://{info.get('user') or 'postgres'}@127.0.0.1:{self.port}/"
                    f"{info['dbname']}")

    def start(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, args=(server,), daemon=True).start()

    def _serve(self, server: socket.socket) -> None:
        while True:
            client, _ = server.accept()
            family = socket.AF_UNIX if isinstance(self.target, str) else socket.AF_INET
            upstream = socket.socket(family)
            upstream.connect(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()


def test_a_server_that_comes_back_is_used_again(pg_url: str, probe_dir: Path) -> None:
    relay = Relay(pg_url)
    script = textwrap.dedent('''
        import logging, sys
        logging.basicConfig(level=logging.INFO)
        from probe_app import probe_add
        print(probe_add.send(1, 2).err_value.code.value, flush=True)
        sys.stdin.readline()  # the server is up now
        print(probe_add.send(1, 2).is_ok(), flush=True)
    ''')
    env = {**os.environ, "HORSIES_DATABASE_URL": relay.url}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=probe_dir, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    first = proc.stdout.readline().strip()
    assert first == "ENQUEUE_FAILED", proc.communicate(timeout=10)[1]
    relay.start()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert out.strip() == "True", err
    assert "answers again" in err


def test_send_async_leaves_no_task_behind(apps: Any) -> None:
    async def main() -> set[asyncio.Task[Any]]:
        handle = (await apps.add.send_async(1, 2)).ok_value
        await handle.get_async(timeout_ms=1)
        return asyncio.all_tasks() - {asyncio.current_task()}

    apps.app.get_broker().ensure_schema()
    for _ in range(20):
        assert asyncio.run(main()) == set()
