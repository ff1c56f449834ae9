"""The worker: `horsies worker` or, inside a program, `Worker(app, config)`."""

from horsies.worker.config import WorkerConfig
from horsies.worker.main import Worker
from horsies.worker.run import run_worker

__all__ = ["Worker", "WorkerConfig", "run_worker"]
