"""A DataTable that keeps its cursor on the same row key across refreshes, and the
3-second mark a search jump leaves on its match (monitoring.md §3.9)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message_pump import MessagePump
from textual.timer import Timer
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowDoesNotExist

from horsies.monitor.format import ago, short_id
from horsies.monitoring import DeadWorker

__all__ = ["MARK_S", "KeyedTable", "Mark", "dead_worker_rows"]

Cell = str | Text
MARK_S = 3.0  # how long a search match stays marked
MARK_STYLE = "bold yellow"
MARK_PREFIX = "» "


class Mark:
    """The key a search jump marked; a textual timer clears it after MARK_S seconds.

    `show(old, new)` redraws what was marked and what is marked now (either may
    be None). A new mark replaces the previous one and restarts the timer.
    """

    def __init__(self, owner: MessagePump, show: Callable[[str | None, str | None], None]) -> None:
        self._owner = owner
        self._show = show
        self.key: str | None = None
        self.timer: Timer | None = None

    def set(self, key: str) -> None:
        if self.timer is not None:
            self.timer.stop()
        old, self.key = self.key, key
        self._show(old, key)
        self.timer = self._owner.set_timer(MARK_S, self.clear, name="search-mark")

    def drop(self) -> None:
        """Remove the mark now (what it marked is no longer shown)."""
        if self.timer is not None:
            self.timer.stop()
        self.timer = None
        self.key = None

    def clear(self) -> None:
        """The timer's callback: the mark is gone."""
        self.timer = None
        old, self.key = self.key, None
        if old is not None:
            self._show(old, None)


class KeyedTable(DataTable[Cell]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]

    def __init__(self, *columns: str, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._headers = columns
        self._column_keys: list[ColumnKey] = []
        self._cells: dict[str, Sequence[Cell]] = {}
        self.mark = Mark(self, self._show_mark)

    def on_mount(self) -> None:
        self._column_keys = self.add_columns(*self._headers)

    def _styled(self, key: str, cells: Sequence[Cell]) -> Sequence[Cell]:
        if key != self.mark.key:
            return cells
        out: list[Cell] = []
        for i, cell in enumerate(cells):
            text = Text(cell) if isinstance(cell, str) else cell.copy()
            text.stylize(MARK_STYLE)
            out.append(Text(MARK_PREFIX, style=MARK_STYLE) + text if i == 0 else text)
        return out

    def _show_mark(self, old: str | None, new: str | None) -> None:
        for key in (old, new):
            if key is None or key not in self._cells:
                continue
            try:
                for column, cell in zip(self._column_keys, self._styled(key, self._cells[key]),
                                        strict=False):
                    self.update_cell(key, column, cell, update_width=True)
            except RowDoesNotExist:
                pass  # replaced meanwhile: the next `replace` draws it

    @property
    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return None if key is None else str(key)

    def replace(self, rows: Sequence[tuple[str, Sequence[Cell]]]) -> None:
        """New rows (key, cells); the cursor stays on the row it was on when it still exists."""
        keep = self.selected_key
        self.clear()
        self._cells = {}
        for key, cells in rows:
            self._cells[key] = cells
            self.add_row(*self._styled(key, cells), key=key)
        self.select(keep)

    def select_and_mark(self, key: str) -> bool:
        """A search jump: select the row and mark it for MARK_S seconds."""
        if not self.select(key):
            return False
        self.mark.set(key)
        return True

    def select(self, key: str | None) -> bool:
        if key is None:
            return False
        try:
            index = self.get_row_index(key)
        except Exception:  # noqa: BLE001 - textual's RowDoesNotExist: the row is gone
            return False
        self.move_cursor(row=index)
        return True

    def keys(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]


def dead_worker_rows(dead: Sequence[DeadWorker],
                     now: datetime.datetime) -> list[tuple[str, Sequence[Cell]]]:
    return [(d.worker_id, (short_id(d.worker_id), d.hostname, str(d.pid), ago(d.last_seen, now),
                           str(d.tasks_at_death))) for d in dead]
