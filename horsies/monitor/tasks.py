"""Tab 3, Tasks: the breakdown by worker (level 1) and a filtered task list (level 2), §3.5."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, DataTable, SelectionList, Static

from horsies.monitor.base import SearchHit, StatusFilterTab, status_bindings
from horsies.monitor.feed import Flag
from horsies.monitor.format import STATUS_STYLES, duration, short_id, status_text
from horsies.monitor.tables import Cell, KeyedTable
from horsies.monitoring import FacetValue, TaskBreakdownRow, TaskFilter, TaskRow

__all__ = ["TASK_STATUS_KEYS", "TasksTab", "filter_bar", "task_age"]

# key -> status; `r` is refresh everywhere, so Running is `u` (monitoring.md §3.11)
TASK_STATUS_KEYS: dict[str, str] = {"p": "PENDING", "c": "CLAIMED", "u": "RUNNING",
                                     "o": "COMPLETED", "f": "FAILED", "x": "CANCELLED",
                                     "e": "EXPIRED"}
SEARCH_LIMIT = 500
ALL_WORKERS = "TOTAL"


def filter_bar(keys: dict[str, str], selected: frozenset[str], retried: bool | None) -> Text:
    """`[p] Pending  [c] Claimed ...`, the selected ones highlighted."""
    text = Text()
    for key, status in keys.items():
        style = f"bold reverse {STATUS_STYLES.get(status, '')}" if status in selected else "dim"
        text.append(f" {key} {status.capitalize()} ", style=style)
        text.append(" ")
    if retried is not None:
        text.append(" i retried only ", style="bold reverse" if retried else "dim")
    text.append("   a all  n none", style="dim")
    return text


def task_age(t: TaskRow, now: datetime.datetime) -> str:
    since = {"COMPLETED": t.completed_at, "FAILED": t.failed_at,
             "RUNNING": t.started_at}.get(t.status.value) or t.enqueued_at
    return duration((now - since).total_seconds())


class TasksTab(StatusFilterTab):
    source = "tasks"
    follows = frozenset({Flag.TASKS})
    status_keys = TASK_STATUS_KEYS
    BINDINGS: ClassVar[list[BindingType]] = [
        *status_bindings(TASK_STATUS_KEYS),
        Binding("i", "toggle_retried", show=False), Binding("space", "expand", show=False),
    ]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, statuses=frozenset({"CLAIMED", "RUNNING"}))
        self.retried_only = False
        self.breakdown: list[TaskBreakdownRow] = []
        self.expanded: set[str] = set()
        self.level = 1
        self.worker: str = ALL_WORKERS  # level 2: a worker id, "unassigned" or TOTAL
        self.rows: list[TaskRow] = []
        self.picked: dict[str, set[str]] = {"task_names": set(), "queues": set(),
                                            "error_codes": set()}
        self._filling = False

    def compose(self) -> ComposeResult:
        yield Static(id="task-filter-bar")
        with ContentSwitcher(initial="tasks-level1", id="tasks-switcher"):
            with Vertical(id="tasks-level1"):
                yield Static("", id="breakdown-empty")
                yield KeyedTable("Worker ID", "Total", "Pending", "Claimed", "Running",
                                 "Completed", "Failed", "Cancelled", "Expired", "Retried",
                                 id="breakdown")
            with Vertical(id="tasks-level2"):
                yield KeyedTable("Task ID", "Task Name", "Queue", "Status", "Error Code",
                                 "Retry", "Age", id="task-list")
                with Vertical(id="task-sidebar"):
                    yield Static(id="sidebar-status")
                    yield SelectionList[str](id="task_names")
                    yield SelectionList[str](id="queues")
                    yield SelectionList[str](id="error_codes")
                yield Static("", id="task-list-empty")

    def on_mount(self) -> None:
        for section, title in (("task_names", "Tasks"), ("queues", "Queues"),
                               ("error_codes", "Errors")):
            self.query_one(f"#{section}").border_title = title
        self.query_one("#sidebar-status").border_title = "Status"
        self.show_bar()

    # -- filters ------------------------------------------------------------------

    def show_bar(self) -> None:
        self.query_one("#task-filter-bar", Static).update(
            filter_bar(TASK_STATUS_KEYS, self.statuses, self.retried_only))
        lines = [Text(("✓ " if s in self.statuses else "  ") + s.capitalize())
                 for s in TASK_STATUS_KEYS.values()]
        self.query_one("#sidebar-status", Static).update(Text("\n").join(lines))

    async def action_toggle_retried(self) -> None:
        self.retried_only = not self.retried_only
        await self.filters_changed()

    def task_filter(self, text: str | None = None) -> TaskFilter:
        worker = None if self.worker in (ALL_WORKERS, "unassigned") else self.worker
        return TaskFilter(statuses=self.statuses, worker_id=worker,
                          unassigned=self.worker == "unassigned",
                          retried_only=self.retried_only,
                          task_names=frozenset(self.picked["task_names"]),
                          queues=frozenset(self.picked["queues"]),
                          error_codes=frozenset(self.picked["error_codes"]), text=text)

    # -- loading ------------------------------------------------------------------

    async def load(self) -> None:
        if self.level == 1:
            await self._load_breakdown()
        else:
            await self._load_list()

    async def _load_breakdown(self) -> None:
        empty = self.query_one("#breakdown-empty", Static)
        table = self.query_one("#breakdown", KeyedTable)
        if not self.statuses:
            empty.update("No statuses selected. Press [a] to select all.")
            self.breakdown = []
            table.replace([])  # emptied, not hidden: it keeps the focus and the tab's keys
            return
        rows = await self.fetch("task breakdown", self.monitor.broker.get_task_breakdown(
            statuses=self.statuses, retried_only=self.retried_only))
        if rows is None:
            return
        self.breakdown = rows
        matched = rows[-1].total if rows else 0
        empty.update("" if matched else "No tasks found for selected statuses.")
        self._fill_breakdown()

    def _fill_breakdown(self) -> None:
        out: list[tuple[str, Sequence[Cell]]] = []
        for r in self.breakdown:
            total = r.worker_id == ALL_WORKERS
            mark = "" if total or not r.task_ids else ("▾ " if r.worker_id in self.expanded
                                                       else "▸ ")
            counts = (r.total, r.pending, r.claimed, r.running, r.completed, r.failed,
                      r.cancelled, r.expired, r.retried)
            style = "bold" if total else ""
            out.append((f"w:{r.worker_id}", (Text(mark + r.worker_id, style=style),
                                              *(Text(str(n), style=style) for n in counts))))
            if r.worker_id in self.expanded:
                for task_id, retries in zip(r.task_ids, r.retry_counts, strict=True):
                    out.append((f"t:{task_id}", (Text(f"    {task_id}", style="dim"),
                                                  f"retries {retries}")))
        self.query_one("#breakdown", KeyedTable).replace(out)

    async def _load_list(self) -> None:
        b = self.monitor.broker
        task_filter = self.task_filter()
        empty = self.query_one("#task-list-empty", Static)
        if not self.statuses:
            empty.update("No statuses selected. Press [a] to select all.")
            self.query_one("#task-list", KeyedTable).replace([])
            return
        rows, facets = await asyncio.gather(
            self.fetch("task list", b.list_tasks(task_filter)),
            self.fetch("task facets", b.get_task_facets(task_filter)))
        if facets is not None:
            self._fill_section("task_names", facets.task_names)
            self._fill_section("queues", facets.queues)
            self._fill_section("error_codes", facets.error_codes)
        if rows is None:
            return
        self.rows = rows
        narrowed = any(self.picked.values()) or self.retried_only
        empty.update("" if rows else ("No tasks match the current filters." if narrowed
                                      else "No tasks found."))
        now = datetime.datetime.now(datetime.UTC)
        self.query_one("#task-list", KeyedTable).replace([(t.id, (
            short_id(t.id), t.task_name, t.queue_name, status_text(t.status.value),
            t.error_code or "-", f"{t.retry_count}/{t.max_retries}", task_age(t, now)))
            for t in rows])

    def _fill_section(self, section: str, values: list[FacetValue]) -> None:
        widget: SelectionList[str] = self.query_one(f"#{section}", SelectionList)
        chosen = self.picked[section]
        self._filling = True
        try:
            widget.clear_options()
            shown = {v.value for v in values}
            widget.add_options([(f"{v.value} ({v.count})", v.value, v.value in chosen)
                                for v in values])
            widget.add_options([(f"{v} (0)", v, True) for v in sorted(chosen - shown)])
        finally:
            self._filling = False

    async def on_selection_list_selected_changed(
            self, event: SelectionList.SelectedChanged[str]) -> None:
        if self._filling or event.selection_list.id not in self.picked:
            return
        self.picked[event.selection_list.id] = set(event.selection_list.selected)
        await self._load_list()

    # -- navigation ---------------------------------------------------------------

    def _title(self) -> None:
        who = "All Workers" if self.worker == ALL_WORKERS else self.worker
        self.query_one("#task-list").border_title = f"Tasks — {who}"

    async def open_level2(self, worker: str) -> None:
        self.level, self.worker = 2, worker
        self.picked = {k: set() for k in self.picked}
        self.query_one("#tasks-switcher", ContentSwitcher).current = "tasks-level2"
        self._title()
        self.query_one("#task-list", KeyedTable).focus()
        await self.refresh_data()

    def back(self) -> bool:
        focused = self.screen.focused
        if self.level == 2 and isinstance(focused, SelectionList):
            self.query_one("#task-list").focus()
            return True
        if self.level == 2:
            self.level = 1
            self.query_one("#tasks-switcher", ContentSwitcher).current = "tasks-level1"
            self.query_one("#breakdown").focus()
            self.run_worker(self.refresh_data(), exclusive=False)
            return True
        if self.expanded:
            self.expanded.clear()
            self._fill_breakdown()
            return True
        return False

    def action_expand(self) -> None:
        if self.level != 1:
            return
        table = self.query_one("#breakdown", KeyedTable)
        key = table.selected_key or ""
        if key.startswith("t:"):
            key = self._owner(key[2:])
        worker = key.removeprefix("w:")
        if worker and worker != ALL_WORKERS:
            self.expanded ^= {worker}
            self._fill_breakdown()
            table.select(f"w:{worker}")

    def _owner(self, task_id: str) -> str:
        for r in self.breakdown:
            if task_id in r.task_ids:
                return f"w:{r.worker_id}"
        return ""

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        if event.data_table.id == "breakdown":
            if key.startswith("w:"):
                await self.open_level2(key[2:])
            else:
                owner = self._owner(key[2:])[2:]
                ids = next((r.task_ids for r in self.breakdown if r.worker_id == owner), [])
                self.monitor.open_task(ids, key[2:])
        elif event.data_table.id == "task-list":
            self.monitor.open_task([t.id for t in self.rows], key)

    # -- search -------------------------------------------------------------------

    async def search_async(self, text: str) -> list[SearchHit] | None:
        if self.level == 2:
            if not text:
                return []
            rows = await self.fetch("task search", self.monitor.broker.list_tasks(
                self.task_filter(text), limit=SEARCH_LIMIT))
            return [SearchHit(f"{t.id}  {t.task_name}  {t.status.value}", f"t:{t.id}")
                    for t in rows or []]
        needle = text.lower()
        hits = []
        for r in self.breakdown[:-1]:
            if needle in r.worker_id.lower():
                hits.append(SearchHit(f"worker {r.worker_id}", f"w:{r.worker_id}"))
            hits += [SearchHit(f"task {t}  ({r.worker_id})", f"t:{t}") for t in r.task_ids
                     if needle in t]
        return hits

    def jump(self, key: str) -> None:
        if self.level == 2:
            table = self.query_one("#task-list", KeyedTable)
            if not table.select_and_mark(key[2:]):
                self.monitor.open_task([key[2:]], key[2:])  # found by the server, not listed
            return
        table = self.query_one("#breakdown", KeyedTable)
        if key.startswith("t:") and (owner := self._owner(key[2:])[2:]):
            self.expanded.add(owner)
            self._fill_breakdown()
        table.select_and_mark(key)
        table.focus()
