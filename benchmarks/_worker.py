"""`horsies worker` in a subprocess for the workloads, and the peak memory of its processes."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class Worker:
    """`horsies worker bench_app:app --processes=N` in a subprocess of its own session."""

    def __init__(self, url: str, workdir: Path, processes: int) -> None:
        env = dict(os.environ, HORSIES_DATABASE_URL=url, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "horsies.cli", "worker", "bench_app:app",
             f"--processes={processes}", "--loglevel=INFO"],
            cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        self.started = threading.Event()
        self.log_tail: collections.deque[str] = collections.deque(maxlen=40)  # for errors
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log_tail.append(line)
            if "Worker started" in line:
                self.started.set()

    def pids(self) -> list[int]:
        """The main process and its children (the worker's child processes)."""
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [pid] + [int(p) for p in children.split()]

    def failure(self, what: str) -> RuntimeError:
        return RuntimeError(f"{what}; its last log lines:\n{''.join(self.log_tail)}")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise self.failure(f"worker exited with status {self.proc.returncode}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class MemoryPeak:
    """Peak resident memory summed over all processes of some workers, sampled every 50 ms."""

    def __init__(self, workers: list[Worker]) -> None:
        self.peak = 0
        self._workers = workers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = sum(_rss(pid) for worker in self._workers for pid in worker.pids())
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak
