"""Running a worker to completion: schema with retries, then the event loop."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from horsies.db.broker import is_transient
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


async def ensure_schema_with_retries(app: Horsies) -> bool:
    """Create the schema, retrying transient failures per WorkerResilienceConfig."""
    res = app.config.resilience
    attempt = 0
    while True:
        outcome = await app.get_broker().ensure_schema_initialized()
        if outcome.is_ok():
            return True
        error = outcome.err_value
        attempt += 1
        limit = res.db_retry_max_attempts
        if not error.retryable or (limit and attempt > limit):
            log.error("Database initialization failed: %s", error.message)
            return False
        delay = min(res.db_retry_initial_ms * 2 ** (attempt - 1), res.db_retry_max_ms) / 1000
        log.error("Database initialization failed: %s. Retrying in %.1fs (attempt %d/%s)",
                  error.message, delay, attempt, limit or "inf")
        await asyncio.sleep(delay)


async def _main(app: Horsies, config: WorkerConfig) -> int:
    if not await ensure_schema_with_retries(app):
        return 1
    await app.get_broker().close_async()
    worker = Worker(app, config)
    remove = install_signal_handlers(worker)
    try:
        return await worker.run_forever()
    except Exception as exc:
        log.error("worker failed: %s", exc, exc_info=not is_transient(exc))
        return 1
    finally:
        remove()


def run_worker(app: Horsies, config: WorkerConfig) -> int:
    """Run a worker until it is stopped; returns the process exit code."""
    app.set_role("worker")
    factory = _loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:  # type: ignore[arg-type]
        code = runner.run(_main(app, config))
    sys.stdout.flush()
    return code
