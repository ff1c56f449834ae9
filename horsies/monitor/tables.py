"""A DataTable that keeps its cursor on the same row key across refreshes."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from horsies.monitor.format import ago, short_id
from horsies.monitoring import DeadWorker

__all__ = ["KeyedTable", "dead_worker_rows"]

Cell = str | Text


class KeyedTable(DataTable[Cell]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]

    def __init__(self, *columns: str, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._headers = columns

    def on_mount(self) -> None:
        self.add_columns(*self._headers)

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
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self.select(keep)

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
