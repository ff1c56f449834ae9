"""The task and workflow detail modals (monitoring.md §3.6, §3.7)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from horsies.monitor.feed import Flag
from horsies.monitor.format import STATUS_STYLES, duration, pretty_json, stamp, status_text
from horsies.monitor.tables import Mark
from horsies.monitoring import TaskDetail, WorkflowDetail, WorkflowNodeRow

if TYPE_CHECKING:
    from horsies.monitor.app import MonitorApp

__all__ = ["DetailScreen", "TaskDetailScreen", "WorkflowDetailScreen", "dag_layers",
           "task_lines", "workflow_lines"]

MARK_LINE_STYLE = "bold black on yellow"  # a search match, for 3 seconds (§3.9)
NODE_SYMBOLS = {"COMPLETED": "✓", "FAILED": "✗", "RUNNING": "▶", "ENQUEUED": "◎",
                "PENDING": "○", "READY": "○", "SKIPPED": "⊘"}


def _section(title: str, style: str = "bold underline") -> list[Text]:
    return [Text(""), Text(title, style=style)]


def _field(name: str, value: str | Text) -> Text:
    line = Text(f"{name:<12} ", style="bold")
    line.append(value)
    return line


def _block(text: str, style: str = "") -> list[Text]:
    return [Text(line, style=style) for line in text.splitlines()]


def task_lines(t: TaskDetail) -> list[Text]:
    lines = [_field("Task Name", t.task_name), _field("Task ID", t.id),
             _field("Queue", t.queue_name), _field("Status", status_text(t.status.value))]
    if t.error_code:
        lines.append(_field("Error Code", Text(t.error_code, style="red")))
    lines += [_field("Priority", str(t.priority)),
              _field("Retries", f"{t.retry_count} / {t.max_retries}")]
    if t.workflow_id:
        lines.append(_field("Workflow", f"{t.workflow_name} ({t.workflow_id}) node "
                                        f"{t.node_task_index} {t.node_id or ''}".rstrip()))
    lines += _section("Worker Info")
    lines += [_field("Worker ID", t.claimed_by_worker_id or "-"),
              _field("Hostname", t.worker_hostname or "-"),
              _field("PID", "-" if t.worker_pid is None else str(t.worker_pid)),
              _field("Process", t.worker_process_name or "-")]
    lines += _section("Timeline")
    for name, at in (("Created", t.created_at), ("Sent", t.sent_at), ("Enqueued", t.enqueued_at),
                     ("Claimed", t.claimed_at), ("Lease until", t.claim_expires_at),
                     ("Started", t.started_at), ("Completed", t.completed_at),
                     ("Failed", t.failed_at), ("Next retry", t.next_retry_at),
                     ("Good until", t.good_until)):
        lines.append(_field(name, stamp(at)))
    if t.attempts:
        lines += _section("Attempts")
        for a in t.attempts:
            took = "-" if a.finished_at is None else duration(
                (a.finished_at - a.started_at).total_seconds())
            error = f" | {a.error_code}: {a.error_message}" if a.error_code else ""
            lines.append(Text(f"Attempt {a.attempt} | {a.outcome.value} | retry: "
                              f"{'yes' if a.will_retry else 'no'} | {took}{error}"))
            if a.failed_reason:
                lines.append(Text(f"    {a.failed_reason}", style="dim"))
    lines += _section("Arguments")
    lines += _block(f"args: {pretty_json(t.args)}") + _block(f"kwargs: {pretty_json(t.kwargs)}")
    if t.status.value == "COMPLETED":
        lines += _section("Result", "bold green") + _block(pretty_json(t.result), "green")
    elif t.status.value in ("FAILED", "EXPIRED"):
        lines += _section("Error", "bold red") + _block(pretty_json(t.result), "red")
        if t.failed_reason:
            lines += _block(t.failed_reason, "red")
    return lines


def dag_layers(nodes: list[WorkflowNodeRow]) -> list[list[WorkflowNodeRow]]:
    """Layer of a node: one more than its deepest dependency's; roots are layer 0."""
    layer: dict[int, int] = {}
    by_index = {n.task_index: n for n in nodes}

    def depth(index: int, seen: frozenset[int]) -> int:
        if index not in layer:
            deps = [d for d in by_index[index].dependencies if d in by_index and d not in seen]
            layer[index] = 1 + max((depth(d, seen | {index}) for d in deps), default=-1)
        return layer[index]

    for n in nodes:
        depth(n.task_index, frozenset())
    out: list[list[WorkflowNodeRow]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in nodes:
        out[layer[n.task_index]].append(n)
    return out


def _node_error(n: WorkflowNodeRow) -> str:
    try:
        stored: Any = json.loads(n.error or n.result or "{}")
    except ValueError:
        return n.error or ""
    found = stored.get("err", stored) if isinstance(stored, dict) else {}
    if isinstance(found, dict) and "error_code" in found:
        return f"{found['error_code']}: {found.get('message', '')}"
    return n.error or ""


def workflow_lines(w: WorkflowDetail) -> list[Text]:
    done = w.completed_nodes + w.failed_nodes + w.skipped_nodes
    pct = 100 * done / w.total_nodes if w.total_nodes else 0.0
    bar = "█" * round(pct / 5) + "░" * (20 - round(pct / 5))
    lines = [_field("Name", w.name), _field("ID", w.id),
             _field("Status", status_text(w.status.value)), _field("On Error", w.on_error),
             _field("Progress", f"{done}/{w.total_nodes} {bar} {pct:.0f}%"),
             _field("Success", f"{w.completed_nodes}/{w.total_nodes}")]
    if w.output_task_index is not None:
        lines.append(_field("Output Task", str(w.output_task_index)))
    if w.success_policy is not None:
        lines.append(_field("Success Policy", json.dumps(w.success_policy,
                                                         separators=(",", ":"))))
    if w.parent_workflow_id:
        lines.append(_field("Parent", f"{w.parent_workflow_name} ({w.parent_workflow_id})"))
    lines += _section("Timeline")
    for name, at in (("Sent", w.sent_at), ("Created", w.created_at), ("Started", w.started_at),
                     ("Completed", w.completed_at), ("Updated", w.updated_at)):
        lines.append(_field(name, stamp(at)))
    lines += _section("Task Counts")
    lines.append(Text(f"completed {w.completed_nodes}  failed {w.failed_nodes}  running "
                      f"{w.running_nodes}  enqueued {w.enqueued_nodes}  pending/ready "
                      f"{w.pending_nodes}  skipped {w.skipped_nodes}"))
    lines += _section("Task DAG")
    for k, layer in enumerate(dag_layers(w.nodes)):
        lines.append(Text(f"Layer {k}", style="bold"))
        for n in layer:
            join = {"any": "any", "quorum": f"quorum({n.min_success})"}.get(n.join_type, "")
            notes = [note for note in (
                "allow_failed" if n.allow_failed_deps else "",
                f"pri:{n.priority}" if n.priority != 100 else "",
                f"sub:{n.sub_workflow_name}" if n.is_subworkflow else "") if note]
            style = STATUS_STYLES.get(n.status.value, "")
            line = Text(f"  {NODE_SYMBOLS.get(n.status.value, '?')} ", style=style)
            line.append(f"Task {n.task_index} {n.node_id or n.task_name}  deps: "
                        f"{n.dependencies}  {join}  {' '.join(notes)}".rstrip())
            lines.append(line)
            second = (f"error: {_node_error(n)}" if n.status.value == "FAILED"
                      else n.status.value)
            lines.append(Text(f"      {second}", style=style))
    if w.status.value == "COMPLETED":
        lines += _section("Result", "bold green") + _block(pretty_json(w.result), "green")
    elif w.status.value == "FAILED":
        lines += _section("Error", "bold red") + _block(pretty_json(w.error), "red")
    elif w.status.value == "PAUSED":
        lines += (_section("Paused Error", "bold magenta")
                  + _block(pretty_json(w.error), "magenta"))
    return lines


class DetailScreen(ModalScreen[None]):
    """A scrollable modal over one item of a list; `[`/`]` move along the list."""

    follows: frozenset[Flag] = frozenset()
    what = "item"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_detail", "close"),
                Binding("left_square_bracket", "step(-1)", "previous"),
                Binding("right_square_bracket", "step(1)", "next"),
                Binding("y", "copy", "copy JSON"),
                # A modal screen does not pass keys on to the app's bindings.
                Binding("slash", "app.search", show=False)]

    def __init__(self, ids: list[str], current: str) -> None:
        super().__init__()
        self.ids = ids or [current]
        self.index = self.ids.index(current) if current in self.ids else 0
        self.lines: list[Text] = []
        self.payload: dict[str, Any] | None = None
        self.loads = 0
        self.mark = Mark(self, lambda old, new: self._show_lines())  # a line index, as text

    @property
    def monitor(self) -> MonitorApp:
        from horsies.monitor.app import MonitorApp

        assert isinstance(self.app, MonitorApp)
        return self.app

    @property
    def current(self) -> str:
        return self.ids[self.index]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-scroll"):
            yield Static("loading…", id="detail-body")

    async def on_mount(self) -> None:
        self.query_one("#detail-scroll").focus()
        await self.refresh_data()

    async def refresh_data(self) -> None:
        lines, payload = await self.render_item(self.current)
        if lines is not None:
            self.lines, self.payload = lines, payload
            self._show_lines()
            self.query_one("#detail-scroll").border_title = (
                f"{self.what} {self.index + 1}/{len(self.ids)}  [ ] prev/next  y copy  esc close")
        self.loads += 1

    def _show_lines(self) -> None:
        lines = list(self.lines)
        if self.mark.key is not None and int(self.mark.key) < len(lines):
            index = int(self.mark.key)
            lines[index] = lines[index].copy()
            lines[index].stylize(MARK_LINE_STYLE)
        self.query_one("#detail-body", Static).update(Text("\n").join(lines))

    async def render_item(self, item_id: str) -> tuple[list[Text] | None, dict[str, Any] | None]:
        raise NotImplementedError

    async def action_step(self, step: int) -> None:
        index = self.index + step
        if 0 <= index < len(self.ids):
            self.index = index
            self.mark.drop()  # a line of the previous item
            self.query_one("#detail-scroll", VerticalScroll).scroll_home(animate=False)
            await self.refresh_data()

    def action_copy(self) -> None:
        if self.payload is not None:
            self.app.copy_to_clipboard(json.dumps(self.payload, indent=2, default=str))
            self.app.notify(f"{self.what} JSON copied", timeout=2)

    def action_dismiss_detail(self) -> None:
        self.dismiss(None)

    def scroll_to_line(self, index: int) -> None:
        """A search jump: scroll to the line and mark it for 3 seconds."""
        self.query_one("#detail-scroll", VerticalScroll).scroll_to(y=index, animate=False)
        self.mark.set(str(index))

    @property
    def marked_line(self) -> int | None:
        return None if self.mark.key is None else int(self.mark.key)


class TaskDetailScreen(DetailScreen):
    follows = frozenset({Flag.TASKS})
    what = "Task"

    async def render_item(self, item_id: str) -> tuple[list[Text] | None, dict[str, Any] | None]:
        outcome = await self.monitor.broker.get_task_detail(item_id)
        if outcome.is_err():
            self.monitor.record_error("task detail", outcome.err_value.message)
            return None, None
        detail = outcome.ok_value
        if detail is None:
            return [Text(f"Task {item_id} not found")], None
        return task_lines(detail), msgspec.to_builtins(detail)


class WorkflowDetailScreen(DetailScreen):
    follows = frozenset({Flag.WORKFLOWS, Flag.TASKS})
    what = "Workflow"

    async def render_item(self, item_id: str) -> tuple[list[Text] | None, dict[str, Any] | None]:
        outcome = await self.monitor.broker.get_workflow_detail(item_id)
        if outcome.is_err():
            self.monitor.record_error("workflow detail", outcome.err_value.message)
            return None, None
        detail = outcome.ok_value
        if detail is None:
            return [Text(f"Workflow {item_id} not found")], None
        data = msgspec.to_builtins(detail)
        tasks = data.pop("nodes")
        return workflow_lines(detail), {"workflow": data, "tasks": tasks}
