"""The `horsies monitor` application: tabs, status bar, refresh rules (monitoring.md §3).

Everything shown is read through the broker's inspection methods; the app
never writes, except the recovery actions when started with --allow-actions.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from horsies.config import RecoveryConfig
from horsies.db.broker import PostgresBroker
from horsies.monitor.base import SearchHit, TabView
from horsies.monitor.dashboard import DashboardTab
from horsies.monitor.detail import DetailScreen, TaskDetailScreen, WorkflowDetailScreen
from horsies.monitor.feed import Feed, FeedState, Flag, stop
from horsies.monitor.maintenance import READ_ONLY, MaintenanceTab
from horsies.monitor.overlays import (
    ConfirmScreen,
    ErrorEntry,
    ErrorLogScreen,
    HelpScreen,
    SearchScreen,
)
from horsies.monitor.tasks import TasksTab
from horsies.monitor.workers import WorkersTab
from horsies.monitor.workflows import WorkflowsTab

__all__ = ["THEMES", "MonitorApp"]

THEMES = ("textual-dark", "textual-light", "nord", "gruvbox", "catppuccin-mocha",
          "catppuccin-latte")
TABS: tuple[tuple[str, str, type[TabView]], ...] = (
    ("dashboard", "1 Dashboard", DashboardTab), ("workers", "2 Workers", WorkersTab),
    ("tasks", "3 Tasks", TasksTab), ("workflows", "4 Workflows", WorkflowsTab),
    ("maintenance", "5 Maint", MaintenanceTab))
TICK_S = 0.5
FEED_MARKS = {FeedState.LIVE: "● live", FeedState.POLLING: "○ polling",
              FeedState.RECONNECTING: "◌ reconnecting"}


class MonitorApp(App[int]):
    CSS_PATH = "styles.tcss"
    TITLE = "horsies monitor"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(str(n), f"show_tab('{name}')", show=False)
          for n, (name, _, _) in enumerate(TABS, start=1)),
        Binding("slash", "search", show=False), Binding("question_mark", "help", show=False),
        Binding("r", "refresh_now", show=False), Binding("t", "next_theme", show=False),
        Binding("E", "errors", show=False), Binding("q", "quit", show=False),
        Binding("ctrl+c", "quit", show=False, priority=True),
        Binding("escape", "go_back", show=False), Binding("ctrl+z", "suspend_process", show=False),
    ]

    def __init__(self, broker: PostgresBroker, *, listen_url: str | None,
                 theme: str = "textual-dark", allow_actions: bool = False,
                 recovery: RecoveryConfig | None = None) -> None:
        super().__init__()
        self.broker = broker
        self.listen_url = listen_url
        self.start_theme = theme
        self.allow_actions = allow_actions
        self.recovery = recovery
        self.errors: list[ErrorEntry] = []
        self.loading_now: set[str] = set()
        self.feed_state = FeedState.POLLING
        self.flushes: list[frozenset[Flag]] = []  # every debounced set of flags, for tests
        self._feed_task: asyncio.Task[None] | None = None
        self._feed: Feed | None = None
        self._views: dict[str, TabView] = {}  # tab name -> its view, filled by compose

    # -- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text("horsies monitor", style="bold"), id="title")
        with TabbedContent(initial="tab-dashboard", id="tabs"):
            for name, label, view in TABS:
                with TabPane(label, id=f"tab-{name}"):
                    self._views[name] = view(id=name)
                    yield self._views[name]
        yield Static("", id="status-bar")

    async def on_mount(self) -> None:
        self.theme = self.start_theme
        if self.listen_url is not None:
            self._feed = Feed(self.listen_url, self.on_flags, self._feed_changed)
            self._feed.watch({"default", *self.broker._configured_queues()})
            self._feed_task = asyncio.create_task(self._feed.run())
        self.set_interval(TICK_S, self._tick)
        self._show_status()
        self.refresh_tab(self.visible_tab)
        self.call_after_refresh(self.visible_tab.focus_main)

    async def on_unmount(self) -> None:
        await stop(self._feed_task)

    # The tabs live on the base screen; `App.query` would search the modal on top.

    @property
    def base(self) -> Screen[object]:
        return self.screen_stack[0]

    # The tab views are kept as composed, not queried: a tab switched to while its
    # pane is still being mounted is not found by a query yet, and a timer or a
    # notification may ask for it at that moment (its load waits for the mount).

    @property
    def visible_tab(self) -> TabView:
        active = self.base.query_one("#tabs", TabbedContent).active.removeprefix("tab-")
        return self._views[active]

    def tab(self, name: str) -> TabView:
        return self._views[name]

    # -- refresh (§3.2) ---------------------------------------------------------------

    def refresh_tab(self, tab: TabView) -> None:
        self.run_worker(tab.refresh_data(), group=tab.source)

    def _tick(self) -> None:
        tab = self.visible_tab
        live = self.feed_state is FeedState.LIVE
        every = tab.poll_live_s if live else tab.poll_idle_s
        if time.monotonic() - tab.last_started >= every:
            self.refresh_tab(tab)
        self._show_status()

    def on_flags(self, flags: frozenset[Flag]) -> None:
        """One debounced set of flags: refresh the visible tab and an open detail that follow them."""
        self.flushes.append(flags)
        tab = self.visible_tab
        if tab.follows & flags:
            self.refresh_tab(tab)
        top = self.screen
        if isinstance(top, DetailScreen) and top.follows & flags:
            self.run_worker(top.refresh_data(), group="detail")

    def watch_queues(self, queues: list[str]) -> None:
        """Queues seen in the data: their channels tell of sends (see feed.py)."""
        if self._feed is not None:
            self._feed.watch(queues)

    def _feed_changed(self, state: FeedState) -> None:
        self.feed_state = state
        self._show_status()

    def loading(self, source: str, busy: bool) -> None:
        (self.loading_now.add if busy else self.loading_now.discard)(source)
        self._show_status()

    def record_error(self, source: str, message: str) -> None:
        self.errors.append(ErrorEntry(datetime.datetime.now(datetime.UTC), source, message))
        self._show_status()

    def _show_status(self) -> None:
        if not self.screen_stack or not self.base.query("#status-bar"):
            return
        text = Text(FEED_MARKS[self.feed_state] + "  ",
                    style="green" if self.feed_state is FeedState.LIVE else "yellow")
        last = self.visible_tab.last_loaded
        text.append(f"updated {last:%H:%M:%S}  " if last else "updated -  ")
        if self.loading_now:
            text.append(f"loading: {', '.join(sorted(self.loading_now))}  ", style="dim")
        if self.errors:
            text.append(f"{len(self.errors)} errors (E)  ", style="bold red")
        text.append("/ search  ? help  1-5 tabs  t theme  q quit", style="dim")
        self.base.query_one("#status-bar", Static).update(text)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_tab(self.visible_tab)
        self.call_after_refresh(self.visible_tab.focus_main)

    # -- actions ----------------------------------------------------------------------

    def action_show_tab(self, name: str) -> None:
        self.base.query_one("#tabs", TabbedContent).active = f"tab-{name}"

    def action_refresh_now(self) -> None:
        self.refresh_tab(self.visible_tab)
        self.notify("refreshed", timeout=2)

    def action_next_theme(self) -> None:
        index = THEMES.index(self.theme) if self.theme in THEMES else -1
        self.theme = THEMES[(index + 1) % len(THEMES)]

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.visible_tab.source))

    def action_errors(self) -> None:
        if self.errors:
            self.push_screen(ErrorLogScreen(self.errors, self._clear_errors))

    def _clear_errors(self) -> None:
        self.errors.clear()
        self._show_status()

    def action_go_back(self) -> None:
        if not self.visible_tab.back():
            self.exit(0)

    def action_search(self) -> None:
        top = self.screen
        if isinstance(top, DetailScreen):
            lines = [line.plain for line in top.lines]

            async def in_modal(text: str) -> list[SearchHit] | None:
                needle = text.lower()
                return [SearchHit(line.strip(), str(i)) for i, line in enumerate(lines)
                        if needle in line.lower()]

            self.push_screen(SearchScreen(in_modal),
                             lambda key: top.scroll_to_line(int(key)) if key else None)
            return
        tab = self.visible_tab
        searcher = None if tab.search("") is None and tab.source == "maintenance" else (
            tab.search_async)
        self.push_screen(SearchScreen(searcher), lambda key: tab.jump(key) if key else None)

    def open_task(self, ids: list[str], task_id: str) -> None:
        self.push_screen(TaskDetailScreen(ids, task_id))

    def open_workflow(self, ids: list[str], workflow_id: str) -> None:
        self.push_screen(WorkflowDetailScreen(ids, workflow_id))

    def show_worker(self, worker_id: str) -> None:
        self.action_show_tab("workers")
        self.tab("workers").jump(worker_id)

    # -- maintenance actions (§3.8) -----------------------------------------------------

    def _thresholds(self) -> tuple[int, int]:
        r = self.recovery
        return ((r.claimed_stale_threshold_ms, r.running_stale_threshold_ms) if r is not None
                else (120_000, 300_000))

    def actions_help(self) -> Text:
        if not self.allow_actions:
            return Text(READ_ONLY, style="dim")
        claimed, running = self._thresholds()
        return Text(f"R  requeue CLAIMED tasks stale for {claimed} ms\n"
                    f"F  fail or retry RUNNING tasks stale for {running} ms\n"
                    "X  expire PENDING tasks past good_until")

    def confirm_action(self, kind: str) -> None:
        if not self.allow_actions:
            return
        claimed, running = self._thresholds()
        question = {"requeue": f"Requeue CLAIMED tasks stale for {claimed} ms?",
                    "fail": f"Mark RUNNING tasks stale for {running} ms as failed "
                            "(or retry them)?",
                    "expire": "Expire PENDING tasks past their good_until?"}[kind]

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._run_action(kind), group="action")

        self.push_screen(ConfirmScreen(question), answered)

    async def _run_action(self, kind: str) -> None:
        claimed, running = self._thresholds()
        if kind == "requeue":
            outcome, verb = await self.broker.requeue_stale_claimed(claimed), "requeued"
        elif kind == "fail":
            outcome, verb = await self.broker.mark_stale_tasks_as_failed(running), "failed"
        else:
            outcome, verb = await self.broker.expire_pending_tasks(), "expired"
        if outcome.is_err():
            self.record_error(kind, outcome.err_value.message)
            self.notify(outcome.err_value.message, severity="error", timeout=4)
        else:
            self.notify(f"{verb} {outcome.ok_value} task(s)", timeout=2)
        self.refresh_tab(self.visible_tab)
