"""Running the scheduler to completion: schema with retries, then the tick loop.

Reuses the worker's event loop choice (uvloop where available) and its
schema start-up with retries (lifecycle-and-schema.md §9.3).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from horsies.db.broker import is_transient
from horsies.scheduler.service import Scheduler
from horsies.worker.run import _loop_factory, ensure_schema_with_retries

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.config.schedule import ScheduleConfig

__all__ = ["run_scheduler"]

log = logging.getLogger("horsies.scheduler")


def _install_signal_handlers(stop: Callable[[], None]) -> Callable[[], None]:
    """SIGTERM and SIGINT stop the scheduler before its next tick."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            continue
        installed.append(sig)

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove


async def _main(app: Horsies, config: ScheduleConfig) -> int:
    scheduler = Scheduler(app, config)
    remove = _install_signal_handlers(scheduler.request_stop)
    try:
        ready = await ensure_schema_with_retries(app, lambda: scheduler.stopping)
        if scheduler.stopping:
            log.info("Scheduler stopped")
            return 0
        if not ready:
            return 1
        await scheduler.run_forever()
        return 0
    except Exception as exc:
        log.error("scheduler failed: %s", exc, exc_info=not is_transient(exc))
        return 1
    finally:
        remove()
        await scheduler.close()
        await app.get_broker().close_async()


def run_scheduler(app: Horsies, config: ScheduleConfig) -> int:
    """Run the scheduler until SIGTERM/SIGINT; returns the process exit code."""
    app.set_role("scheduler")
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:  # type: ignore[arg-type]
        code = runner.run(_main(app, config))
    sys.stdout.flush()
    return code
