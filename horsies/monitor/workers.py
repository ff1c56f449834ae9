"""Tab 2, Workers: active workers, the selected one's details and load, dead workers (§3.4)."""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from horsies.monitor.base import SearchHit, TabView
from horsies.monitor.charts import LineChart, Series
from horsies.monitor.feed import Flag
from horsies.monitor.format import duration, short_id, stamp
from horsies.monitor.tables import KeyedTable, dead_worker_rows
from horsies.monitoring import WorkerState, WorkerStatePoint

__all__ = ["WINDOWS", "WorkersTab", "worker_details"]

WINDOWS: tuple[tuple[str, int], ...] = (("5m", 300), ("30m", 1800), ("1h", 3600),
                                        ("6h", 21600), ("24h", 86400))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def worker_details(w: WorkerState) -> Text:
    queues = []
    for q in w.queues:
        prio = (w.queue_priorities or {}).get(q)
        cap = (w.queue_max_concurrency or {}).get(q)
        queues.append(q if prio is None and cap is None else f"{q} (prio {prio}, cap {cap})")
    lines = [
        f"Worker     {w.worker_id}", f"Hostname   {w.hostname}",
        f"Version    {w.horsies_version or '-'}", f"Lifecycle  {w.lifecycle}",
        f"Uptime     {duration(w.uptime_s)}", f"Started    {stamp(w.worker_started_at)}",
        f"Queues     {', '.join(queues) or '-'}",
        f"Tasks      Running: {w.tasks_running}, Claimed: {w.tasks_claimed}",
        (f"Claiming   max_claim_batch {w.max_claim_batch}, max_claim_per_worker "
        f"{w.max_claim_per_worker}, cluster_wide_cap {w.cluster_wide_cap or '-'}"),
        "Recovery",
    ]
    for key, value in (w.recovery_config or {}).items():
        lines.append(f"  {key}: {json.dumps(value)}")
    return Text("\n".join(lines))


class WorkersTab(TabView):
    source = "workers"
    follows = frozenset({Flag.WORKERS})
    poll_idle_s = 3.0
    BINDINGS: ClassVar[list[BindingType]] = [Binding("left_square_bracket", "window(-1)", "shorter window", show=False),
                Binding("right_square_bracket", "window(1)", "longer window", show=False)]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.states: dict[str, WorkerState] = {}
        self.window = 1  # 30m

    def compose(self) -> ComposeResult:
        with Horizontal(id="workers-top"):
            yield KeyedTable("Worker ID", "Hostname", "PID", "Tasks", "Claimed", "CPU%",
                             "Mem%", "Uptime", id="workers-table")
            yield Static("No worker selected", id="worker-details", classes="panel")
        with Horizontal(id="history", classes="panel"):
            yield LineChart("Tasks", empty="No worker selected", id="load-chart")
            yield LineChart("Resource Usage", empty="No worker selected", percent=True,
                            id="usage-chart")
        yield KeyedTable("Worker ID", "Hostname", "PID", "Last Seen", "Tasks", id="dead-table")

    def on_mount(self) -> None:
        self.query_one("#workers-table").border_title = "Active Workers"
        self.query_one("#worker-details").border_title = "Worker Details"
        self.query_one("#dead-table").border_title = "Dead Workers"
        self._title_history()

    def _title_history(self) -> None:
        label = WINDOWS[self.window][0]
        self.query_one("#history").border_title = f"Load History ({label}) [use [ ] to change]"

    async def load(self) -> None:
        b = self.monitor.broker
        states, dead = await asyncio.gather(self.fetch("worker states", b.get_worker_states()),
                                            self.fetch("dead workers", b.get_dead_workers()))
        now = datetime.datetime.now(datetime.UTC)
        if states is not None:
            self.states = {w.worker_id: w for w in states}
            self.monitor.watch_queues([q for w in states for q in w.queues])
            table = self.query_one("#workers-table", KeyedTable)
            table.replace([(w.worker_id, (
                short_id(w.worker_id), w.hostname, str(w.pid),
                f"{w.tasks_running}/{w.processes}", str(w.tasks_claimed), _pct(w.cpu_percent),
                _pct(w.memory_percent), duration(w.uptime_s))) for w in states])
            table.border_subtitle = "" if states else "No active workers"
        if dead is not None:
            dead_table = self.query_one("#dead-table", KeyedTable)
            dead_table.replace(dead_worker_rows(dead, now))
            dead_table.border_subtitle = "" if dead else "No dead workers"
        await self._show_selected()

    @property
    def selected(self) -> WorkerState | None:
        key = self.query_one("#workers-table", KeyedTable).selected_key
        return None if key is None else self.states.get(key)

    async def _show_selected(self) -> None:
        worker = self.selected
        details = self.query_one("#worker-details", Static)
        details.update("No worker selected" if worker is None else worker_details(worker))
        points: list[WorkerStatePoint] | None = []
        if worker is not None:
            points = await self.fetch("worker history", self.monitor.broker.get_worker_history(
                window_s=WINDOWS[self.window][1], worker_id=worker.worker_id))
        if points is None:
            return
        empty = "No worker selected" if worker is None else "No load history available"
        times = [p.snapshot_at for p in points]
        self.query_one("#load-chart", LineChart).draw(times, [
            Series("Running", [float(p.tasks_running) for p in points], "blue+"),
            Series("Claimed", [float(p.tasks_claimed) for p in points], "cyan")], empty)
        self.query_one("#usage-chart", LineChart).draw(times, [
            Series("CPU", [p.cpu_percent or 0.0 for p in points], "orange"),
            Series("Mem", [p.memory_percent or 0.0 for p in points], "magenta")], empty)

    async def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "workers-table":
            await self._show_selected()

    async def action_window(self, step: int) -> None:
        self.window = max(0, min(len(WINDOWS) - 1, self.window + step))
        self._title_history()
        await self._show_selected()

    def search(self, text: str) -> list[SearchHit] | None:
        needle = text.lower()
        return [SearchHit(f"{w.worker_id}  {w.hostname}", w.worker_id)
                for w in self.states.values()
                if needle in w.worker_id.lower() or needle in w.hostname.lower()]

    def jump(self, key: str) -> None:
        table = self.query_one("#workers-table", KeyedTable)
        table.select_and_mark(key)
        table.focus()
