"""Search box, help, error log and the confirmation of an action (monitoring.md §3.8-§3.10)."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from horsies.monitor.base import SearchHit

__all__ = ["ConfirmScreen", "ErrorEntry", "ErrorLogScreen", "HelpScreen", "SearchScreen",
           "help_text"]

Searcher = Callable[[str], Awaitable[list[SearchHit] | None]]

GLOBAL_KEYS = [("1-5", "switch tab"), ("/", "search"), ("?", "help"), ("r", "refresh now"),
               ("t", "next theme"), ("E", "error log"), ("q, ctrl+c", "quit"),
               ("esc", "close / back / quit"), ("ctrl+z", "suspend"),
               ("↑↓ j k", "move"), ("pgup pgdn home end", "page / first / last")]
CONTEXT_KEYS: dict[str, list[tuple[str, str]]] = {
    "dashboard": [],
    "workers": [("[ ]", "load history window")],
    "tasks": [("p c u o f x e", ("toggle Pending Claimed Running Completed Failed Cancelled "
                                "Expired")), ("a / n", "all / no statuses"),
              ("i", "retried only"), ("space", "expand worker row"),
              ("enter", "worker: task list; task id: detail"),
              ("tab / shift+tab", "sidebar sections (list)"), ("esc", "back")],
    "workflows": [("p u o f s x", "toggle Pending Running Completed Failed Paused Cancelled"),
                  ("a / n", "all / no statuses"), ("enter", "workflow detail")],
    "maintenance": [("R F X", ("requeue stale claimed / fail stale running / expire pending "
                              "(--allow-actions)"))],
    "detail": [("↑↓ pgup pgdn home end", "scroll"), ("[ ]", "previous / next"),
               ("y", "copy JSON"), ("esc", "close")],
}


def help_text(context: str) -> Text:
    text = Text()
    for title, keys in ((f"{context.capitalize()}", CONTEXT_KEYS.get(context, [])),
                        ("Global", GLOBAL_KEYS)):
        text.append(f"{title}\n", style="bold underline")
        for key, what in keys:
            text.append(f"  {key:<22}", style="bold cyan")
            text.append(f"{what}\n")
        text.append("\n")
    return text


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss_help", "close")]

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def compose(self) -> ComposeResult:
        yield Static(help_text(self.context), id="help-body", classes="overlay")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class ErrorEntry:
    def __init__(self, at: datetime.datetime, source: str, message: str) -> None:
        self.at, self.source, self.message = at, source, message

    def line(self) -> str:
        return f"{self.at:%H:%M:%S}  {self.source}: {self.message}"


class ErrorLogScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_log", "close"), Binding("y", "copy", "copy"),
                Binding("c", "clear", "clear")]

    def __init__(self, errors: list[ErrorEntry], clear: Callable[[], None]) -> None:
        super().__init__()
        self.errors = errors
        self._clear = clear

    def compose(self) -> ComposeResult:
        with Vertical(classes="overlay", id="error-log"):
            yield OptionList(*(Option(e.line()) for e in reversed(self.errors)),
                             id="error-list")

    def on_mount(self) -> None:
        self.query_one("#error-log").border_title = "Errors (newest first)  y copy  c clear"

    def action_copy(self) -> None:
        index = self.query_one("#error-list", OptionList).highlighted
        if index is not None:
            self.app.copy_to_clipboard(list(reversed(self.errors))[index].line())
            self.app.notify("copied to clipboard", timeout=2)

    def action_clear(self) -> None:
        self._clear()
        self.dismiss(None)

    def action_dismiss_log(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """`y` confirms; any other key cancels."""

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.question}\n\nPress y to run it, any other key to cancel."),
                     classes="overlay", id="confirm")

    def on_key(self, event: events.Key) -> None:
        event.stop()
        self.dismiss(event.key == "y")


class SearchScreen(ModalScreen[str | None]):
    """Filters as you type; Enter returns the key of the highlighted match."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "close"),
                Binding("ctrl+u", "clear_box", "clear", show=False),
                Binding("down", "move(1)", show=False), Binding("up", "move(-1)", show=False),
                Binding("pagedown", "move(10)", show=False),
                Binding("pageup", "move(-10)", show=False)]

    def __init__(self, searcher: Searcher | None) -> None:
        super().__init__()
        self.searcher = searcher
        self.hits: list[SearchHit] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="overlay", id="search"):
            yield Input(placeholder="search", id="search-box")
            yield Static("", id="search-note")
            yield OptionList(id="search-results")

    async def on_mount(self) -> None:
        self.query_one("#search-box").focus()
        await self._update("")

    async def on_input_changed(self, event: Input.Changed) -> None:
        await self._update(event.value)

    async def _update(self, text: str) -> None:
        note = self.query_one("#search-note", Static)
        results = self.query_one("#search-results", OptionList)
        if self.searcher is None:
            note.update("Nothing to search on this tab")
            return
        hits = await self.searcher(text) if text else []
        self.hits = hits or []
        results.clear_options()
        results.add_options([Option(h.label) for h in self.hits])
        if self.hits:
            results.highlighted = 0
        note.update("Start typing to search" if not text else
                    ("" if self.hits else "No matches found"))

    def action_move(self, step: int) -> None:
        results = self.query_one("#search-results", OptionList)
        if self.hits:
            current = results.highlighted or 0
            results.highlighted = max(0, min(len(self.hits) - 1, current + step))

    def action_clear_box(self) -> None:
        self.query_one("#search-box", Input).value = ""

    def on_input_submitted(self, event: Input.Submitted) -> None:
        index = self.query_one("#search-results", OptionList).highlighted
        self.dismiss(self.hits[index].key if self.hits and index is not None else None)

    def action_close(self) -> None:
        self.dismiss(None)
