"""Tab 1, Dashboard: capacity, task and workflow counts, queues, trend, alerts (monitoring.md §3.3)."""

from __future__ import annotations

import asyncio

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Static

from horsies.monitor.base import SearchHit, TabView
from horsies.monitor.charts import LineChart, Series
from horsies.monitor.feed import Flag
from horsies.monitor.format import STATUS_STYLES, duration
from horsies.monitoring import (
    ClusterSummary,
    DeadWorker,
    QueueStats,
    TaskStatusCounts,
    UtilizationPoint,
    WorkerAlerts,
    WorkflowSummary,
)

__all__ = ["DashboardTab", "alert_lines", "capacity_text"]

TERMINAL_WINDOW_S = 86_400


def _bar(pct: float, width: int = 20) -> str:
    filled = round(max(0.0, min(pct, 100.0)) / 100 * width)
    return "█" * filled + "░" * (width - filled)


def capacity_text(s: ClusterSummary) -> Text:
    util = s.utilization_pct or 0.0
    text = Text()
    text.append(f"Active Workers  {s.active_workers}\n", style="bold")
    text.append(f"Total Capacity  {s.total_capacity}\n", style="bold")
    text.append(f"Utilization     {util:.1f}%  {_bar(util)}\n", style="bold")
    text.append(f"Running Tasks   {s.total_running}\n\n", style="bold")
    cpu = "-" if s.avg_cpu_percent is None else f"{s.avg_cpu_percent:.1f}%"
    mem = "-" if s.avg_memory_percent is None else f"{s.avg_memory_percent:.1f}%"
    text.append(f"Claimed {s.total_claimed}   avg CPU {cpu}   avg Mem {mem}")
    return text


def _counts_table(rows: list[tuple[str, int]], total: int) -> Table:
    table = Table("Status", "Count", expand=True, box=None)
    for name, count in rows:
        table.add_row(Text(name, style=STATUS_STYLES.get(name.upper(), "")), str(count))
    table.add_row(Text("Total", style="bold"), Text(str(total), style="bold"))
    return table


def _queues_table(stats: list[QueueStats]) -> Table:
    table = Table("Queue", "Prio", "Cap", "Pending", "Scheduled", "Claimed", "Running",
                  "Failed (1h)", "Oldest", "Workers", expand=True, box=None)
    for q in stats:
        table.add_row(q.name, "-" if q.priority is None else str(q.priority),
                      "-" if q.max_concurrency is None else str(q.max_concurrency),
                      str(q.pending), str(q.scheduled), str(q.claimed), str(q.running),
                      str(q.failed), duration(q.oldest_pending_age_s), str(q.workers))
    return table


def alert_lines(alerts: WorkerAlerts, dead: list[DeadWorker]) -> list[str]:
    lines = []
    for o in alerts.overloaded:
        cpu = "-" if o.cpu_percent is None else f"{o.cpu_percent:.1f}"
        mem = "-" if o.memory_percent is None else f"{o.memory_percent:.1f}"
        lines.append(f"⚠ {o.hostname} cpu {cpu}% mem {mem}%")
    for s in alerts.stale_claims:
        lines.append(f"⚠ {s.hostname} claimed {s.tasks_claimed} vs running {s.tasks_running}")
    if dead:
        lines.append(f"✖ {len(dead)} dead worker(s), see Workers")
    return lines


class DashboardTab(TabView):
    source = "dashboard"
    follows = frozenset(Flag)
    poll_idle_s = 2.0

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.alerts: WorkerAlerts | None = None
        self.summary: ClusterSummary | None = None  # the figures last shown, for tests
        self.counts: TaskStatusCounts | None = None

    def compose(self) -> ComposeResult:
        with Grid(id="dash-grid"):
            yield Static("No cluster data available", id="capacity", classes="panel")
            yield Static("No task data available", id="task-counts", classes="panel")
            yield Static("No workflow data available", id="workflow-counts", classes="panel")
            yield LineChart("", empty="No trend data available", percent=True, id="trend",
                            classes="panel")
            yield Static("No active alerts", id="alerts", classes="panel")
        yield Static("", id="queues", classes="panel")

    def on_mount(self) -> None:
        titles = {"#capacity": "Cluster Capacity",
                  "#task-counts": "Task Status Distribution (terminal: last 24 h)",
                  "#workflow-counts": "Workflow Summary",
                  "#trend": "Cluster Utilization Trend (1h)",
                  "#alerts": "Active Alerts", "#queues": "Queues"}
        for selector, title in titles.items():
            self.query_one(selector).border_title = title

    async def load(self) -> None:
        b = self.monitor.broker
        (summary, counts, queues, trend), (alerts, dead, workflows) = await asyncio.gather(
            asyncio.gather(
                self.fetch("cluster summary", b.get_cluster_summary()),
                self.fetch("task counts", b.get_task_status_counts(
                    terminal_window_s=TERMINAL_WINDOW_S)),
                self.fetch("queue stats", b.get_queue_stats()),
                self.fetch("utilization trend", b.get_utilization_trend())),
            asyncio.gather(
                self.fetch("worker alerts", b.get_worker_alerts()),
                self.fetch("dead workers", b.get_dead_workers()),
                self.fetch("workflow summary", b.get_workflow_summary())))
        if summary is not None:
            self._show_capacity(summary)
        if counts is not None:
            self._show_counts(counts)
        if queues is not None:
            self.monitor.watch_queues([q.name for q in queues])
            self.query_one("#queues", Static).update(_queues_table(queues))
        if trend is not None:
            self._show_trend(trend)
        if workflows is not None:
            self._show_workflows(workflows)
        if alerts is not None and dead is not None:
            self.alerts = alerts
            lines = alert_lines(alerts, dead)
            self.query_one("#alerts", Static).update(
                Text("\n".join(lines), style="yellow") if lines else "No active alerts")

    def _show_capacity(self, s: ClusterSummary) -> None:
        self.summary = s
        panel = self.query_one("#capacity", Static)
        panel.update(capacity_text(s) if s.active_workers else "No cluster data available")

    def _show_counts(self, c: TaskStatusCounts) -> None:
        self.counts = c
        rows = [("Pending", c.pending), ("Claimed", c.claimed), ("Running", c.running),
                ("Completed", c.completed), ("Failed", c.failed), ("Cancelled", c.cancelled),
                ("Expired", c.expired)]
        self.query_one("#task-counts", Static).update(_counts_table(rows, c.total))

    def _show_workflows(self, w: WorkflowSummary) -> None:
        rows = [("Running", w.running), ("Pending", w.pending), ("Paused", w.paused),
                ("Completed", w.completed), ("Failed", w.failed), ("Cancelled", w.cancelled)]
        panel = self.query_one("#workflow-counts", Static)
        panel.update(_counts_table(rows, w.total) if w.total else "No workflow data available")

    def _show_trend(self, points: list[UtilizationPoint]) -> None:
        label = f"Utilization: {points[-1].utilization_pct:.1f}%" if points else ""
        self.query_one("#trend", LineChart).draw(
            [p.bucket_start for p in points],
            [Series(label, [p.utilization_pct for p in points], "cyan")])

    def search(self, text: str) -> list[SearchHit] | None:
        if self.alerts is None:
            return []
        needle = text.lower()
        found = [(o.worker_id, o.hostname) for o in self.alerts.overloaded]
        found += [(s.worker_id, s.hostname) for s in self.alerts.stale_claims]
        return [SearchHit(f"{w}  {h}", w) for w, h in dict.fromkeys(found)
                if needle in w.lower() or needle in h.lower()]

    def jump(self, key: str) -> None:
        # An alert names a worker: show it on the Workers tab.
        self.monitor.show_worker(key)
