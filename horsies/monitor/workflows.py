"""Tab 4, Workflows: workflows by status; Enter opens the workflow detail (§3.7)."""

from __future__ import annotations

import datetime
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Static

from horsies.monitor.base import SearchHit, StatusFilterTab, status_bindings
from horsies.monitor.feed import Flag
from horsies.monitor.format import duration, short_id, stamp_short, status_text
from horsies.monitor.tables import KeyedTable
from horsies.monitor.tasks import filter_bar
from horsies.monitoring import WorkflowRow

__all__ = ["WORKFLOW_STATUS_KEYS", "WorkflowsTab", "workflow_duration"]

WORKFLOW_STATUS_KEYS: dict[str, str] = {"p": "PENDING", "u": "RUNNING", "o": "COMPLETED",
                                        "f": "FAILED", "s": "PAUSED", "x": "CANCELLED"}
LIMIT = 100


def workflow_duration(w: WorkflowRow, now: datetime.datetime) -> str:
    if w.started_at is None:
        return "-"
    return duration(((w.completed_at or now) - w.started_at).total_seconds())


class WorkflowsTab(StatusFilterTab):
    source = "workflows"
    follows = frozenset({Flag.WORKFLOWS, Flag.TASKS})
    status_keys = WORKFLOW_STATUS_KEYS
    BINDINGS: ClassVar[list[BindingType]] = [*status_bindings(WORKFLOW_STATUS_KEYS)]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, statuses=frozenset({"PENDING", "RUNNING", "PAUSED"}))
        self.rows: list[WorkflowRow] = []

    def compose(self) -> ComposeResult:
        yield Static(id="workflow-filter-bar")
        yield Static("", id="workflows-empty")
        yield KeyedTable("ID", "Name", "Status", "Progress", "Duration", "Created",
                         id="workflows-table")

    def on_mount(self) -> None:
        self.query_one("#workflows-table").border_title = "Workflows"
        self.show_bar()

    def show_bar(self) -> None:
        self.query_one("#workflow-filter-bar", Static).update(
            filter_bar(WORKFLOW_STATUS_KEYS, self.statuses, None))

    async def load(self) -> None:
        empty = self.query_one("#workflows-empty", Static)
        table = self.query_one("#workflows-table", KeyedTable)
        if not self.statuses:
            empty.update("No statuses selected. Press [a] to select all.")
            table.replace([])
            return
        rows = await self.fetch("workflow list", self.monitor.broker.list_workflows(
            statuses=self.statuses, limit=LIMIT))
        if rows is None:
            return
        self.rows = rows
        empty.update("" if rows else "No workflows found for selected statuses.")
        now = datetime.datetime.now(datetime.UTC)
        table.replace([(w.id, (
            short_id(w.id), w.name, status_text(w.status.value),
            f"{w.completed_nodes + w.failed_nodes + w.skipped_nodes}/{w.total_nodes}",
            workflow_duration(w, now), stamp_short(w.created_at))) for w in rows])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.monitor.open_workflow([w.id for w in self.rows], str(event.row_key.value))

    def search(self, text: str) -> list[SearchHit] | None:
        needle = text.lower()
        return [SearchHit(f"{w.id}  {w.name}", w.id) for w in self.rows
                if needle in w.id.lower() or needle in w.name.lower()]

    def jump(self, key: str) -> None:
        table = self.query_one("#workflows-table", KeyedTable)
        table.select_and_mark(key)
        table.focus()
