"""Attach to and detach from a pgserver-managed cluster, with horsies' errors.

pgserver keeps the pids of attached processes in ``<cluster>/.handle_pids.json``
and stops the server when the last one leaves. A process killed without
running its exit hooks stays in that list forever and would keep the server
alive, so dead pids are pruned before every attach and detach. pgserver's own
exit hook is replaced by the package's (``horsies.embedded``), which prunes
first and then lets pgserver do the detach.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from horsies.errors import ConfigurationError, ErrorCode

CLUSTER_DIR = "cluster"
LOCK_FILE = "embedded.lock"
_OWN_ENTRIES = frozenset({CLUSTER_DIR, LOCK_FILE, ".DS_Store"})
_PIDS_FILE = ".handle_pids.json"
_LOG_FILE = "log"
# Long enough for another process to run initdb and start the server.
LOCK_TIMEOUT_SECONDS = 300.0
_LOG_TAIL_LINES = 15
_INSTALL_HELP = "install the embedded extra: pip install 'horsies[embedded]'"


@dataclass(frozen=True, slots=True)
class Attachment:
    """This process's handle on the server of one data directory."""

    root: Path
    pid: int
    url: str
    server: Any  # pgserver.PostgresServer


def attach(root: Path) -> Attachment:
    """Create, start or attach under the data directory's lock."""
    modules = _import_pgserver()
    _prepare_root(root)
    lock = _acquire_lock(modules["fasteners"], root)
    try:
        cluster = root / CLUSTER_DIR
        server_cls = modules["pgserver"].PostgresServer
        errors = _PgserverErrors()
        try:
            _prune_dead(server_cls, modules["psutil"], cluster)
            with errors:
                server = modules["pgserver"].get_server(cluster, cleanup_mode="stop")
                url = str(server.get_uri())
        except Exception as exc:
            _abandon(server_cls, cluster)
            raise _failure("could not be started", root, exc, errors.messages) from exc
        # Detaching at exit is done by horsies.embedded, which prunes first.
        atexit.unregister(server._cleanup)
    finally:
        lock.release()
    return Attachment(root=root, pid=os.getpid(), url=url, server=server)


def detach(attachment: Attachment) -> None:
    """Leave the server; pgserver stops it when no other attached process remains."""
    server = attachment.server
    server_cls = type(server)
    try:
        psutil = importlib.import_module("psutil")
        _prune_dead(server_cls, psutil, Path(server.pgdata))
        server._cleanup()
    except Exception as exc:
        raise _failure("could not be stopped", attachment.root, exc) from exc
    finally:
        _discard(server_cls, Path(server.pgdata))


def forget(attachment: Attachment) -> None:
    """Drop an attachment inherited across fork without touching the server."""
    _discard(type(attachment.server), Path(attachment.server.pgdata))


def _import_pgserver() -> dict[str, ModuleType]:
    try:
        with warnings.catch_warnings():
            _ignore_runtime_dir_warning()
            return {
                name: importlib.import_module(name)
                for name in ("pgserver", "fasteners", "psutil")
            }
    except Exception as exc:
        raise ConfigurationError(
            message="the embedded development database needs the pgserver package",
            code=ErrorCode.BROKER_INIT_FAILED,
            notes=[f"cause: {type(exc).__name__}: {exc}"],
            help_text=_INSTALL_HELP,
        ) from exc


def _ignore_runtime_dir_warning() -> None:
    # pgserver asks platformdirs for the runtime directory at import; without
    # XDG_RUNTIME_DIR platformdirs warns and falls back to a usable default.
    try:
        from platformdirs import RuntimeDirWarning
    except ImportError:
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    else:
        warnings.simplefilter("ignore", RuntimeDirWarning)


def _prepare_root(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        strangers = sorted(p.name for p in root.iterdir() if p.name not in _OWN_ENTRIES)
    except OSError as exc:
        raise _failure("could not be set up", root, exc) from exc
    if strangers:
        shown = ", ".join(strangers[:5]) + (", ..." if len(strangers) > 5 else "")
        raise ConfigurationError(
            message=f"the directory {root} holds something other than an embedded database",
            code=ErrorCode.BROKER_INIT_FAILED,
            notes=[f"unexpected entries: {shown}"],
            help_text="use a new or empty directory for the embedded development database",
        )


def _acquire_lock(fasteners: ModuleType, root: Path) -> Any:
    lock = fasteners.InterProcessLock(str(root / LOCK_FILE))
    try:
        acquired = lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
    except Exception as exc:
        raise _failure("could not be set up", root, exc) from exc
    if not acquired:
        raise ConfigurationError(
            message="the embedded development database could not be started",
            code=ErrorCode.BROKER_INIT_FAILED,
            notes=[
                f"data directory: {root}",
                f"timed out after {LOCK_TIMEOUT_SECONDS:.0f} s waiting for {root / LOCK_FILE}",
            ],
        )
    return lock


def _prune_dead(server_cls: Any, psutil: ModuleType, cluster: Path) -> None:
    """Remove pids of processes that died without detaching."""
    path = cluster / _PIDS_FILE
    with server_cls._lock:  # the lock pgserver takes around this file
        if not path.exists():
            return
        try:
            pids = [int(p) for p in json.loads(path.read_text())]
            torn = False
        except (ValueError, TypeError):
            pids, torn = [], True  # a writer was killed mid-write; start afresh
        alive = [pid for pid in pids if _is_alive(psutil, pid)]
        if torn or alive != pids:
            path.write_text(json.dumps(alive))


def _is_alive(psutil: ModuleType, pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # exists but cannot be inspected


def _discard(server_cls: Any, cluster: Path) -> None:
    instance = server_cls._instances.pop(cluster.resolve(), None)
    if instance is not None:
        atexit.unregister(instance._cleanup)


class _PgserverErrors(logging.Handler):
    """Collects pgserver's error records: they carry initdb's and pg_ctl's output."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().strip())

    def __enter__(self) -> _PgserverErrors:
        logging.getLogger("pgserver").addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger("pgserver").removeHandler(self)


def _abandon(server_cls: Any, cluster: Path) -> None:
    """After a failed attach: leave (stopping a server this process started), forget."""
    instance = server_cls._instances.get(cluster.resolve())
    if instance is None:
        return
    atexit.unregister(instance._cleanup)
    try:
        instance._cleanup()
    except Exception:  # noqa: BLE001 - the original failure is what gets reported
        pass
    server_cls._instances.pop(cluster.resolve(), None)


def _failure(
    what: str, root: Path, exc: BaseException, details: list[str] | None = None
) -> ConfigurationError:
    notes = [f"data directory: {root}", f"cause: {type(exc).__name__}: {exc}"]
    notes.extend(_clip(message) for message in details or [])
    if isinstance(exc, (subprocess.CalledProcessError, subprocess.TimeoutExpired)):
        tail = _log_tail(root / CLUSTER_DIR / _LOG_FILE)
        if tail:
            notes.append("server log (last lines):\n" + tail)
    return ConfigurationError(
        message=f"the embedded development database {what}",
        code=ErrorCode.BROKER_INIT_FAILED,
        notes=notes,
    )


def _clip(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else "... " + text[-limit:]


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_LOG_TAIL_LINES:])
