"""Live progress of the demo's steps with rich, on a terminal only.

Off (stdout is not a terminal, or --json), every call is a no-op, so the
report is the only output and stays parseable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from rich.progress import Progress, Task
    from rich.text import Text

SetDone = Callable[[int], None]


def _ignore(done: int) -> None:
    pass


def _rate_column() -> object:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Tasks per second over the last seconds (rich's own estimate)."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} tasks/s" if speed else "", style="progress.data.speed")

    return RateColumn()


class DemoProgress:
    """One bar per step (enqueue, drain, round trips) with done/total, rate, elapsed time."""

    def __init__(self, enabled: bool) -> None:
        self._progress: Progress | None = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                _rate_column(), TimeElapsedColumn(),  # type: ignore[arg-type]
                console=Console(file=sys.stdout),
            )

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def step(self, name: str, total: int) -> SetDone:
        """Add a bar; the returned function sets how many of `total` are done."""
        progress = self._progress
        if progress is None:
            return _ignore
        bar = progress.add_task(name, total=total)

        def set_done(done: int) -> None:
            progress.update(bar, completed=done)

        return set_done


def wanted(as_json: bool) -> bool:
    """Progress is shown only for a person watching a terminal."""
    return not as_json and sys.stdout.isatty()
