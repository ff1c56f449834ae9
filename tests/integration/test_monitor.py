"""`horsies monitor` driven by textual's pilot against a real seeded database (monitoring.md §3).

Every wait is for an event (a load finished, a screen pushed), never a
fixed sleep; `until` polls the app between pilot pauses.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.timer import Timer

from horsies import Horsies
from horsies.monitor import MonitorApp
from horsies.monitor.base import TabView
from horsies.monitor.charts import LineChart
from horsies.monitor.dashboard import DashboardTab
from horsies.monitor.detail import TaskDetailScreen, WorkflowDetailScreen
from horsies.monitor.feed import FeedState, Flag
from horsies.monitor.overlays import ConfirmScreen, HelpScreen, SearchScreen
from horsies.monitor.tables import MARK_S, KeyedTable
from horsies.monitor.tasks import TasksTab
from horsies.monitor.workers import WorkersTab
from tests.conftest import DOWN_URL, drop_database, query, with_database
from tests.integration.monitor_seed import make_app, seed_all

SIZE = (160, 50)
ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integration.apps:app"


@pytest.fixture
def seeded(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Horsies, dict[str, Any]]]:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    app = make_app(pg_url)
    ids = seed_all(app, pg_url)
    yield app, ids
    app.get_broker().close()


async def until(pilot: Pilot[Any], check: Callable[[], bool], what: str,
                timeout: float = 30.0) -> None:
    """Poll `check` between pilot pauses; returns as soon as it holds, fails at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _holds(check):
            return
        await pilot.pause(0.05)
    if not check():
        raise AssertionError(f"never happened: {what}")


def _holds(check: Callable[[], bool]) -> bool:
    """A widget not mounted yet (a tab just switched to) is "not yet", not a failure."""
    try:
        return bool(check())
    except NoMatches:
        return False


async def tab_of(pilot: Pilot[Any], m: Any, name: str) -> Any:
    """The tab `name` once it is mounted."""
    await until(pilot, lambda: m.tab(name) is not None, f"tab {name} mounted")
    return m.tab(name)


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on its own event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def monitor(app: Horsies, url: str | None, **options: Any) -> MonitorApp:
    return MonitorApp(app.get_broker(), listen_url=url, **options)


def table(m: MonitorApp, selector: str) -> KeyedTable:
    return m.query_one(selector, KeyedTable)


def paused_timers(owner: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, Timer]]:
    """Make `owner.set_timer` record the delay asked for and return a real textual timer
    that is paused and fires 10 ms after the test resumes it."""
    made: list[tuple[float, Timer]] = []
    real = owner.set_timer

    def set_timer(delay: float, callback: Any = None, *, name: str | None = None,
                  pause: bool = False) -> Timer:
        timer: Timer = real(0.01, callback, name=name, pause=True)
        made.append((delay, timer))
        return timer

    monkeypatch.setattr(owner, "set_timer", set_timer)
    return made


@sync
async def test_tabs_load_and_show_the_seeded_data(seeded: tuple[Horsies, dict[str, Any]]) -> None:
    app, _ = seeded
    m = monitor(app, None)
    async with m.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: m.tab("dashboard").loads > 0, "dashboard loaded")
        assert "⚠ host-a cpu -% mem 90.0%" in str(m.query_one("#alerts").render())
        trend = m.query_one("#trend", LineChart)
        assert trend.times and len(trend.series) == 1
        assert trend.legend() == [f"Utilization: {trend.series[0].values[-1]:.1f}%"]
        assert "Utilization:" in str(trend.render())  # drawn by plotext with its legend
        await pilot.press("2")
        await until(pilot, lambda: m.tab("workers").loads > 0, "workers loaded")
        assert table(m, "#workers-table").keys() == ["wb", "wa", "wc"]
        assert table(m, "#dead-table").keys() == ["wdead", "wold"]
        load, usage = m.query_one("#load-chart", LineChart), m.query_one("#usage-chart", LineChart)
        await until(pilot, lambda: bool(load.times), "load history of wb")
        assert (load.legend(), usage.legend()) == (["Running", "Claimed"], ["CPU", "Mem"])
        assert len(load.series[0].values) == len(load.times) == len(usage.times)
        assert all(word in str(usage.render()) for word in ("Resource Usage", "CPU", "Mem"))
        await pilot.press("down")  # the details follow the selection
        await until(pilot, lambda: "host-b" in str(m.query_one("#worker-details").render()),
                    "details of wa")
        await pilot.press("5")
        await until(pilot, lambda: m.tab("maintenance").loads > 0, "maintenance loaded")
        assert "read-only" in str(m.query_one("#actions").render())
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(m.screen, HelpScreen), "help shown")
        await pilot.press("escape")
        theme = m.theme
        await pilot.press("t")
        assert m.theme != theme
        assert m.errors == []


@sync
async def test_task_filters_levels_and_detail(seeded: tuple[Horsies, dict[str, Any]]) -> None:
    app, ids = seeded
    m = monitor(app, None)
    async with m.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        tasks = await tab_of(pilot, m, "tasks")
        assert isinstance(tasks, TasksTab)
        await until(pilot, lambda: tasks.loads > 0, "tasks loaded")
        breakdown = table(m, "#breakdown")
        assert breakdown.keys() == ["w:w1", "w:w2", "w:TOTAL"]  # default: CLAIMED, RUNNING
        await pilot.press("n")
        await until(pilot, lambda: "No statuses selected" in str(
            m.query_one("#breakdown-empty").render()), "empty selection")
        await pilot.press("a")
        await until(pilot, lambda: breakdown.keys() == ["w:w1", "w:w2", "w:unassigned",
                                                        "w:TOTAL"], "all statuses")
        await until(pilot, lambda: not tasks._busy, "idle")
        await pilot.press("space")  # expand w1: its task ids under it
        assert breakdown.keys()[1:5] == [f"t:{t}" for t in tasks.breakdown[0].task_ids]
        await pilot.press("escape")  # collapse
        assert breakdown.keys()[1] == "w:w2"
        await pilot.press("down", "enter")  # level 2 for w2
        await until(pilot, lambda: tasks.level == 2 and table(m, "#task-list").keys() == [
            ids["tasks"]["r2"], ids["tasks"]["f1"]], "level 2 for w2")
        assert {r.claimed_by_worker_id for r in tasks.rows} == {"w2"}
        await pilot.press("f")  # toggle FAILED off: only the running one is left
        await until(pilot, lambda: [r.id for r in tasks.rows] == [ids["tasks"]["r2"]],
                    "filtered")
        await pilot.press("f")
        await until(pilot, lambda: len(tasks.rows) == 2, "unfiltered")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(m.screen, TaskDetailScreen)
                    and m.screen.loads > 0, "task detail")
        detail = m.screen
        assert isinstance(detail, TaskDetailScreen)
        assert detail.current == ids["tasks"]["r2"]
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: detail.current == ids["tasks"]["f1"] and detail.loads > 1,
                    "next task")
        assert any("Error Code" in line.plain and "BOOM" in line.plain for line in detail.lines)
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: detail.current == ids["tasks"]["r2"], "previous task")
        await pilot.press("escape", "escape")  # close the modal, then back to level 1
        await until(pilot, lambda: tasks.level == 1, "level 1")
        assert m.errors == []


@sync
async def test_workflows_and_their_detail(seeded: tuple[Horsies, dict[str, Any]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    app, ids = seeded
    wf = ids["workflows"]
    m = monitor(app, None)
    async with m.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        view = await tab_of(pilot, m, "workflows")
        await until(pilot, lambda: view.loads > 0, "workflows loaded")
        listing = table(m, "#workflows-table")
        # default: PENDING, RUNNING, PAUSED, newest first
        assert listing.keys() == [wf["SUB"], wf["PENDING"], wf["RUNNING"], wf["PAUSED"]]
        await pilot.press("a")
        await until(pilot, lambda: len(listing.keys()) == 7, "all statuses")
        listing.select(wf["RUNNING"])
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(m.screen, WorkflowDetailScreen)
                    and m.screen.loads > 0, "workflow detail")
        assert isinstance(m.screen, WorkflowDetailScreen)
        text = [line.plain for line in m.screen.lines]
        assert "Layer 0" in text and "Layer 3" in text
        assert any("✗ Task 1" in line for line in text)
        assert any("quorum(1)" in line for line in text)
        assert any("sub:wf_child" in line for line in text)
        assert any(line.strip() == "error: BOOM: it broke" for line in text)
        detail = m.screen
        timers = paused_timers(detail, monkeypatch)
        await pilot.press("slash")  # search inside the modal
        await until(pilot, lambda: isinstance(m.screen, SearchScreen), "search box")
        await pilot.press(*"quorum")
        search = m.screen
        assert isinstance(search, SearchScreen)
        await until(pilot, lambda: len(search.hits) == 1, "one line matches")
        await pilot.press("enter")  # scrolls to the line and marks it for MARK_S seconds
        await until(pilot, lambda: m.screen is detail, "back in the modal")
        quorum = next(i for i, line in enumerate(text) if "quorum(1)" in line)
        assert detail.marked_line == quorum
        assert [delay for delay, _ in timers] == [MARK_S] == [3.0]
        timers[0][1].resume()  # the mark's timer runs out
        await until(pilot, lambda: detail.marked_line is None, "mark cleared by its timer")
        await pilot.press("escape")
        await until(pilot, lambda: m.screen is m.screen_stack[0], "closed")
        assert m.errors == []


@sync
async def test_search_on_the_workers_tab(seeded: tuple[Horsies, dict[str, Any]],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = seeded
    m = monitor(app, None)
    async with m.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        workers = await tab_of(pilot, m, "workers")
        await until(pilot, lambda: workers.loads > 0, "workers loaded")
        listing = table(m, "#workers-table")
        timers = paused_timers(listing, monkeypatch)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(m.screen, SearchScreen), "search box")
        search = m.screen
        assert isinstance(search, SearchScreen)
        await pilot.press(*"host-b")
        await until(pilot, lambda: [h.key for h in search.hits] == ["wa", "wc"], "matches")
        await pilot.press("down", "enter")
        await until(pilot, lambda: listing.selected_key == "wc", "jumped")
        # the match is marked for MARK_S seconds, through a refresh too
        assert listing.mark.key == "wc" and [d for d, _ in timers] == [3.0]
        assert str(listing.get_row("wc")[0]).startswith("» ")
        loads = workers.loads
        m.refresh_tab(workers)
        await until(pilot, lambda: workers.loads > loads, "refreshed")
        assert str(listing.get_row("wc")[0]).startswith("» ")
        timers[0][1].resume()  # the mark's timer runs out
        await until(pilot, lambda: listing.mark.key is None, "mark cleared by its timer")
        assert not str(listing.get_row("wc")[0]).startswith("»")
        assert listing.selected_key == "wc"


@sync
async def test_a_notification_refreshes_only_the_visible_tab(
        seeded: tuple[Horsies, dict[str, Any]], pg_url: str) -> None:
    app, _ = seeded
    m = monitor(app, pg_url)
    async with m.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: m.feed_state is FeedState.LIVE, "listening")
        await pilot.press("3")
        tasks, workers, dash = [await tab_of(pilot, m, name)
                                for name in ("tasks", "workers", "dashboard")]
        # the catch-up flush after connecting, then the tab's own first load
        await until(pilot, lambda: len(m.flushes) == 1 and tasks.loads > 0, "settled")
        await until(pilot, lambda: not tasks._busy, "idle")
        before = (tasks.loads, workers.loads, dash.loads)
        # three notifications of two kinds in one transaction: one debounced refresh
        query(pg_url, "SELECT pg_notify('horsies_worker_state', 'w'), pg_notify('task_new', 'x'),"
                      " pg_notify('task_done', 'y')")
        await until(pilot, lambda: len(m.flushes) == 2, "debounced flush")
        assert m.flushes[1] == frozenset({Flag.TASKS, Flag.WORKERS})
        await until(pilot, lambda: tasks.loads == before[0] + 1, "tasks refreshed")
        assert (workers.loads, dash.loads) == before[1:]  # not visible: not refreshed
        query(pg_url, "SELECT pg_notify('horsies_workflow_status', 'z')")
        await until(pilot, lambda: len(m.flushes) == 3, "workflow flush")
        assert m.flushes[2] == frozenset({Flag.WORKFLOWS})
        await pilot.pause(0.05)
        assert tasks.loads == before[0] + 1  # Tasks does not follow workflows
        assert "● live" in str(m.query_one("#status-bar").render())


@sync
async def test_a_lost_listener_shows_reconnecting(seeded: tuple[Horsies, dict[str, Any]]) -> None:
    app, _ = seeded
    m = monitor(app, DOWN_URL)
    async with m.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: m.feed_state is FeedState.RECONNECTING, "reconnecting")
        await until(pilot, lambda: "◌ reconnecting" in str(m.query_one("#status-bar").render()),
                    "shown")
        await until(pilot, lambda: m.tab("dashboard").loads > 0, "still polled")


@sync
async def test_a_listener_killed_by_the_server_reconnects_without_a_restart(
        seeded: tuple[Horsies, dict[str, Any]], pg_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from horsies.monitor import feed

    monkeypatch.setattr(feed, "RECONNECT_S", 0.2)
    app, _ = seeded
    m = monitor(app, pg_url)
    async with m.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: m.feed_state is FeedState.LIVE, "listening")
        killed = query(pg_url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND query LIKE 'LISTEN %%' "
                       "AND pid <> pg_backend_pid()")
        assert killed and killed[0][0] >= 1
        await until(pilot, lambda: m.feed_state is FeedState.RECONNECTING, "reconnecting")
        await until(pilot, lambda: m.feed_state is FeedState.LIVE, "listening again")
        await until(pilot, lambda: "reconnecting" not in str(
            m.query_one("#status-bar").render()), "the status bar says so")
        assert m.errors == []


@sync
async def test_actions_need_allow_actions_and_a_confirmation(
        seeded: tuple[Horsies, dict[str, Any]]) -> None:
    app, _ = seeded
    m = monitor(app, None, allow_actions=True)
    async with m.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await until(pilot, lambda: m.tab("maintenance").loads > 0, "maintenance loaded")
        await pilot.press("X")
        await until(pilot, lambda: isinstance(m.screen, ConfirmScreen), "confirmation")
        await pilot.press("n")  # anything but y cancels
        await until(pilot, lambda: not isinstance(m.screen, ConfirmScreen), "cancelled")
        await pilot.press("R")
        await until(pilot, lambda: isinstance(m.screen, ConfirmScreen), "confirmation")
        await pilot.press("y")
        await until(pilot, lambda: any("requeued" in n.message for n in m._notifications),
                    "outcome shown")
        assert m.errors == []


# -- a real worker ----------------------------------------------------------------------


@pytest.mark.e2e
@sync
async def test_the_dashboard_follows_a_real_worker_through_notifications(
        apps: Any, pg_url: str, worker_env: dict[str, str], start_worker: Any) -> None:
    """A `horsies worker` drains tasks while the dashboard runs with polling off: every
    refresh after the first comes from the notifications the worker's writes produce."""
    sent = 12
    m = MonitorApp(apps.app.get_broker(), listen_url=pg_url)
    async with m.run_test(size=SIZE) as pilot:
        for view in m.query(TabView):  # no polling: only notifications refresh
            view.poll_idle_s = view.poll_live_s = 3600.0
        dash = await tab_of(pilot, m, "dashboard")
        assert isinstance(dash, DashboardTab)
        await until(pilot, lambda: m.feed_state is FeedState.LIVE and len(m.flushes) >= 1
                    and dash.counts is not None and not dash._busy, "live and loaded")
        assert dash.counts is not None and dash.counts.total == 0
        loads, flushes = dash.loads, len(m.flushes)

        # a send notifies only its queue's channel, which the monitor listens on
        assert (await apps.add.send_many_async([(i, i) for i in range(sent)])).is_ok()
        await until(pilot, lambda: dash.counts is not None and dash.counts.pending == sent,
                    "the sent tasks counted as pending (task_new)")

        worker = start_worker([APP, "--processes=2"], worker_env, cwd=ROOT)
        await until(pilot, lambda: dash.counts is not None and dash.counts.completed == sent
                    and dash.summary is not None and dash.summary.active_workers == 1,
                    "all tasks completed by one live worker", timeout=90.0)
        assert dash.counts is not None
        assert (dash.counts.pending, dash.counts.claimed, dash.counts.running) == (0, 0, 0)
        # at most one load per debounced flush: nothing was polled
        assert 0 < dash.loads - loads <= len(m.flushes) - flushes
        assert any(Flag.TASKS in f for f in m.flushes[flushes:])
        assert any(Flag.WORKERS in f for f in m.flushes[flushes:])

        await pilot.press("2")
        workers = await tab_of(pilot, m, "workers")
        assert isinstance(workers, WorkersTab)
        await until(pilot, lambda: len(table(m, "#workers-table").keys()) == 1,
                    "the live worker listed")
        (state,) = workers.states.values()
        assert state.pid == worker.proc.pid and state.processes == 2
        assert m.errors == []


# -- the command ------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HORSIES_DATABASE_URL", None)
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "horsies", "monitor", *args], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


@pytest.mark.e2e
def test_the_command_refuses_bad_databases_cleanly(pg_server_url: str) -> None:
    empty = f"horsies_empty_{uuid.uuid4().hex[:8]}"
    query(pg_server_url, f"CREATE DATABASE {empty}")
    try:
        cases = [(["--database-url", "mysql://x@y/z"], 2, "postgresql"),
                 (["--database-url", DOWN_URL], 1, "cannot connect to the database"),
                 (["--database-url", with_database(pg_server_url, empty)], 1,
                  "no horsies schema"),
                 ([], 2, "no database given")]
        for args, code, message in cases:
            done = run_cli(*args)
            assert done.returncode == code, (args, done.stderr)
            assert message in done.stderr, (args, done.stderr)
            assert "Traceback" not in done.stderr + done.stdout, args
    finally:
        import psycopg

        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            drop_database(admin, empty)
