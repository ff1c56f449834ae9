"""Running a worker to completion: schema with retries, then the event loop."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from horsies.db.broker import is_transient
from horsies.worker.children import Child
from horsies.worker.config import WorkerConfig
from horsies.worker.main import Worker, install_signal_handlers

if TYPE_CHECKING:
    from horsies.app import Horsies

log = logging.getLogger("horsies.worker")


def _loop_factory() -> object:
    try:
        import uvloop
    except ImportError:  # Windows
        log.debug("uvloop is not available; using the standard event loop")
        return asyncio.new_event_loop
    return uvloop.new_event_loop


async def ensure_schema_with_retries(
    app: Horsies, stopping: Callable[[], bool] = lambda: False
) -> bool:
    """Create the schema, retrying transient failures per WorkerResilienceConfig.

    Returns False on a permanent failure, or when `stopping()` turns true
    between attempts (a signal arrived while the database was unreachable).
    """
    res = app.config.resilience
    attempt = 0
    while not stopping():
        outcome = await app.get_broker().ensure_schema_initialized()
        if outcome.is_ok():
            return True
        error = outcome.err_value
        attempt += 1
        if not error.retryable or not res.retry_allowed(attempt):
            log.error("Database initialization failed: %s", error.message)
            return False
        delay = res.backoff_ms(attempt) / 1000
        log.error("Database initialization failed: %s. Retrying in %.1fs (attempt %d/%s)",
                  error.message, delay, attempt, res.db_retry_max_attempts or "inf")
        end = asyncio.get_running_loop().time() + delay
        while not stopping() and asyncio.get_running_loop().time() < end:
            await asyncio.sleep(0.1)
    return False


async def _main(app: Horsies, config: WorkerConfig, spawned: list[Child] | None) -> int:
    worker = Worker(app, config, spawned)
    remove = install_signal_handlers(worker)
    try:
        ready = await ensure_schema_with_retries(app, lambda: worker.stopping)
        await app.get_broker().close_async()
        if worker.stopping or not ready:
            for child in spawned or ():
                child.kill()
            if worker.stopping:
                log.info("Worker stopped")
                return 0
            return 1
        return await worker.run_forever()
    except Exception as exc:
        log.error("worker failed: %s", exc, exc_info=not is_transient(exc))
        return 1
    finally:
        remove()


def run_worker(app: Horsies, config: WorkerConfig, spawned: list[Child] | None = None) -> int:
    """Run a worker until it is stopped; returns the process exit code.

    `spawned`: its children, started already (`spawn_children`)."""
    app.set_role("worker")
    factory = _loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:  # type: ignore[arg-type]
        code = runner.run(_main(app, config, spawned))
    sys.stdout.flush()
    return code
