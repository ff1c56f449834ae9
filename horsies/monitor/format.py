"""How the monitor writes times, durations, ids and statuses (monitoring.md §3.1)."""

from __future__ import annotations

import datetime
import json
from typing import Any

from rich.text import Text

__all__ = [
    "STATUS_STYLES",
    "ago",
    "duration",
    "pretty_json",
    "short_id",
    "stamp",
    "stamp_short",
    "status_text",
]

STATUS_STYLES: dict[str, str] = {
    "PENDING": "yellow", "CLAIMED": "cyan", "RUNNING": "blue", "COMPLETED": "green",
    "FAILED": "red", "CANCELLED": "grey50", "EXPIRED": "grey35", "PAUSED": "magenta",
    "READY": "yellow", "ENQUEUED": "cyan", "SKIPPED": "grey50",
}


def short_id(value: str | None) -> str:
    return "-" if value is None else value[:8]


def stamp(at: datetime.datetime | None) -> str:
    """Detail views: ``YYYY-MM-DD HH:MM:SS UTC``."""
    if at is None:
        return "-"
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def stamp_short(at: datetime.datetime | None) -> str:
    """Tables: ``MM-DD HH:MM`` (UTC)."""
    return "-" if at is None else at.astimezone(datetime.UTC).strftime("%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    """``<s>s`` under a minute, ``<m>m <s>s`` under an hour, else ``<h>h <m>m``."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {s % 3600 // 60}m"


def ago(at: datetime.datetime | None, now: datetime.datetime) -> str:
    return "-" if at is None else f"{duration((now - at).total_seconds())} ago"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def _expand(value: Any) -> Any:
    """JSON strings that hold JSON themselves are shown as the JSON they hold."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                return _expand(json.loads(stripped))
            except ValueError:
                return value
        return value
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def pretty_json(stored: str | None) -> str:
    """Stored JSON text pretty-printed (nested JSON strings expanded); other text as is."""
    if stored is None:
        return "-"
    expanded = _expand(stored)
    if isinstance(expanded, str):
        return expanded
    return json.dumps(expanded, indent=2, sort_keys=False, default=str)
