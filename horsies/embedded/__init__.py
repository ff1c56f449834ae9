"""The embedded development PostgreSQL server (extra ``embedded``).

``start(data_dir)`` creates, starts or attaches to a private server whose
cluster lives in ``data_dir``; ``stop(data_dir)`` detaches this process. The
server runs while at least one attached process is alive and is stopped when
the last one detaches or exits. The heavy lifting (initdb, pg_ctl, the list of
attached processes) is done by the ``pgserver`` package; this module adds the
per-directory lock, the per-process cache, pruning of processes that died
without detaching, and horsies' errors.

Layout of ``data_dir``::

    data_dir/
      embedded.lock   serializes concurrent first uses
      cluster/        the PostgreSQL cluster (initdb needs an empty directory)
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from pathlib import Path

from horsies.embedded._server import Attachment, attach, detach, forget

__all__ = ["start", "stop"]

_logger = logging.getLogger("horsies.broker")

# Attachments of this process, keyed by resolved data directory. Entries
# inherited through fork carry the parent's pid and are treated as absent.
_attached: dict[Path, Attachment] = {}
_warned: set[Path] = set()
_guard = threading.Lock()


def start(data_dir: str | os.PathLike[str]) -> str:
    """Create, start or attach to the embedded server of ``data_dir``; return its URL.

    Idempotent within a process: later calls return the cached URL.
    Raises ``ConfigurationError`` ``HRS-211`` when ``pgserver`` is missing or
    the server cannot be created or started.
    """
    root = _resolve(data_dir)
    with _guard:
        current = _attached.get(root)
        if current is not None and current.pid == os.getpid():
            return current.url
        if current is not None:
            forget(current)  # inherited from the parent across fork
        attachment = attach(root)
        _attached[root] = attachment
        first_warning = root not in _warned
        _warned.add(root)
    if first_warning:
        _logger.warning(
            "the embedded development database in %s is in use and is not meant for production",
            root,
        )
    return attachment.url


def stop(data_dir: str | os.PathLike[str]) -> None:
    """Detach this process; stop the server when no other attached process remains.

    A no-op when this process is not attached. The data directory stays.
    """
    root = _resolve(data_dir)
    with _guard:
        current = _attached.pop(root, None)
        if current is None:
            return
        if current.pid != os.getpid():
            forget(current)
            return
        detach(current)


def _resolve(data_dir: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(data_dir)).expanduser().resolve()


def _detach_all_at_exit() -> None:
    with _guard:
        mine = [a for a in _attached.values() if a.pid == os.getpid()]
        _attached.clear()
    for attachment in mine:
        try:
            detach(attachment)
        except Exception:  # noqa: BLE001 - nothing useful can be done at exit
            pass


def _after_fork_in_child() -> None:
    global _guard
    _guard = threading.Lock()
    _warned.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

atexit.register(_detach_all_at_exit)
