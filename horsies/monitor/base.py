"""What every tab shares: loading through the broker with the rules of monitoring.md §3.2.

A tab loads one or more data sources. A load of a source is skipped while the
previous one is still running; a failed query keeps what is on screen and is
recorded in the app's error log.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, TypeVar

from textual.binding import Binding
from textual.containers import Vertical

from horsies.info import BrokerOperationError
from horsies.monitor.feed import Flag
from horsies.result import Err, Ok

if TYPE_CHECKING:
    from horsies.monitor.app import MonitorApp

__all__ = ["SearchHit", "StatusFilterTab", "TabView", "status_bindings"]

T = TypeVar("T")


class SearchHit:
    """One match of the search box: its label and where Enter jumps."""

    def __init__(self, label: str, key: str) -> None:
        self.label = label
        self.key = key


class TabView(Vertical):
    """A tab's body. Subclasses set the class attributes and implement `load`."""

    source = "tab"
    follows: frozenset[Flag] = frozenset()
    poll_idle_s = 5.0  # between refreshes while the listener is not connected
    poll_live_s = 15.0  # the safety net while it is

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.loads = 0  # completed loads, for the status bar and tests
        self.last_loaded: datetime.datetime | None = None
        self.last_started = 0.0
        self._busy = False
        self._again = False

    @property
    def monitor(self) -> MonitorApp:
        from horsies.monitor.app import MonitorApp

        app = self.app
        assert isinstance(app, MonitorApp)
        return app

    async def refresh_data(self) -> None:
        if not self.is_mounted:
            return  # not on screen yet: the next tick loads it
        if self._busy:
            # Skipped while the previous load runs; one more follows it so that a
            # filter changed meanwhile is applied.
            self._again = True
            return
        self._busy = True
        self.last_started = time.monotonic()
        self.monitor.loading(self.source, True)
        try:
            await self.load()
            self.loads += 1
            self.last_loaded = datetime.datetime.now(datetime.UTC)
        except Exception as exc:  # noqa: BLE001 - a broken panel must not end the dashboard
            self._again = False
            if self.is_attached:
                self.monitor.record_error(self.source, f"{type(exc).__name__}: {exc}")
        finally:
            self._busy = False
            self.monitor.loading(self.source, False)
        if self._again and self.is_attached:
            self._again = False
            self.monitor.refresh_tab(self)

    async def load(self) -> None:
        raise NotImplementedError

    async def fetch(self, what: str,
                    call: Awaitable[Ok[T] | Err[BrokerOperationError]]) -> T | None:
        """The value of one broker call, or None after recording its error."""
        outcome = await call
        if isinstance(outcome, Err):
            self.monitor.record_error(what, outcome.err_value.message)
            return None
        return outcome.ok_value

    def focus_main(self) -> None:
        """Give focus to the tab's main table, so that the tab's keys reach it."""
        from horsies.monitor.tables import KeyedTable

        for table in self.query(KeyedTable):
            if table.display and table.parent is not None and table.parent.display:
                table.focus()
                return

    def back(self) -> bool:
        """Esc inside the tab: True when it went back a level."""
        return False

    def search(self, text: str) -> list[SearchHit] | None:
        """Matches among the loaded rows; None when the tab has nothing to search."""
        return None

    async def search_async(self, text: str) -> list[SearchHit] | None:
        return self.search(text)

    def jump(self, key: str) -> None:
        """Select what a search hit names."""


def status_bindings(keys: Mapping[str, str]) -> list[Binding]:
    """One key per status toggles it; [a] selects all, [n] none."""
    return [*(Binding(k, f"toggle('{s}')", show=False) for k, s in keys.items()),
            Binding("a", "all_statuses", show=False), Binding("n", "no_statuses", show=False)]


class StatusFilterTab(TabView):
    """A tab whose rows are filtered by a set of statuses toggled from the keyboard."""

    status_keys: Mapping[str, str] = {}  # key -> status

    def __init__(self, *, id: str, statuses: frozenset[str]) -> None:
        super().__init__(id=id)
        self.statuses = statuses

    def show_bar(self) -> None:
        """Show the filter as it now is."""

    async def filters_changed(self) -> None:
        self.show_bar()
        await self.refresh_data()

    async def action_toggle(self, status: str) -> None:
        self.statuses = self.statuses ^ {status}
        await self.filters_changed()

    async def action_all_statuses(self) -> None:
        self.statuses = frozenset(self.status_keys.values())
        await self.filters_changed()

    async def action_no_statuses(self) -> None:
        self.statuses = frozenset()
        await self.filters_changed()
