"""Tab 5, Maintenance: snapshot ages, dead workers, stale and expired tasks, actions (§3.8)."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Static

from horsies.monitor.base import SearchHit, TabView
from horsies.monitor.format import duration, short_id
from horsies.monitor.tables import KeyedTable, dead_worker_rows
from horsies.monitoring import SnapshotAgeBucket

__all__ = ["MaintenanceTab", "snapshot_table"]

READ_ONLY = "read-only (start with --allow-actions to enable)"
STALE_MINUTES = 2
LISTED = 5


def snapshot_table(buckets: list[SnapshotAgeBucket]) -> Table:
    most = max((b.snapshot_count for b in buckets), default=0) or 1
    table = Table("Age Bucket", "Snapshots", "Workers", "", expand=True, box=None)
    for b in buckets:
        bar = "█" * round(30 * b.snapshot_count / most)
        table.add_row(b.label, str(b.snapshot_count), str(b.unique_workers),
                      Text(bar, style="cyan"))
    return table


def _stale_text(stale: list[dict[str, Any]], expired: list[dict[str, Any]]) -> Text:
    text = Text()
    text.append(f"Stale RUNNING (no heartbeat for {STALE_MINUTES} min): {len(stale)}\n",
                style="bold")
    for row in stale[:LISTED]:
        text.append(f"  {short_id(row['id'])}  {row['task_name']}  on "
                    f"{row['worker_hostname'] or '-'}\n")
    text.append(f"Expired PENDING (past good_until): {len(expired)}\n", style="bold")
    for row in expired[:LISTED]:
        late: datetime.timedelta = row["expired_for"]
        text.append(f"  {short_id(row['id'])}  {row['task_name']}  "
                    f"{duration(late.total_seconds())} late\n")
    return text


class MaintenanceTab(TabView):
    source = "maintenance"
    follows = frozenset()
    poll_idle_s = 30.0
    poll_live_s = 30.0
    BINDINGS: ClassVar[list[BindingType]] = [Binding("R", "recover('requeue')", show=False),
                Binding("F", "recover('fail')", show=False),
                Binding("X", "recover('expire')", show=False)]

    def compose(self) -> ComposeResult:
        with Horizontal(id="maint-top"):
            yield Static("", id="snapshot-ages", classes="panel")
            yield Static("", id="stale", classes="panel")
        yield KeyedTable("Worker ID", "Hostname", "PID", "Last Seen", "Tasks",
                         id="maint-dead-table")
        yield Static("", id="actions", classes="panel")

    def on_mount(self) -> None:
        self.query_one("#snapshot-ages").border_title = "Snapshot Age Distribution"
        self.query_one("#stale").border_title = "Stale and expired"
        self.query_one("#maint-dead-table").border_title = "Dead Workers"
        self.query_one("#actions").border_title = "Actions"
        self.query_one("#actions", Static).update(self.monitor.actions_help())

    async def load(self) -> None:
        b = self.monitor.broker
        buckets, dead, stale, expired = await asyncio.gather(
            self.fetch("snapshot ages", b.get_snapshot_age_distribution()),
            self.fetch("dead workers", b.get_dead_workers()),
            self.fetch("stale tasks", b.get_stale_tasks(STALE_MINUTES)),
            self.fetch("expired tasks", b.get_expired_tasks()))
        if buckets is not None:
            self.query_one("#snapshot-ages", Static).update(snapshot_table(buckets))
        if dead is not None:
            table = self.query_one("#maint-dead-table", KeyedTable)
            table.replace(dead_worker_rows(dead, datetime.datetime.now(datetime.UTC)))
            table.border_subtitle = "" if dead else "No dead workers"
        if stale is not None and expired is not None:
            self.query_one("#stale", Static).update(_stale_text(stale, expired))

    def action_recover(self, kind: str) -> None:
        self.monitor.confirm_action(kind)

    def search(self, text: str) -> list[SearchHit] | None:
        return None  # nothing to search here (the box says so)
