"""The start-up banner printed by ``horsies worker`` and ``horsies scheduler``.

Layout (cli.md section 11): the braille horse, the ``horsies`` wordmark with the
version and tagline, a ``[config]`` section and a ``[tasks]`` section. Colours
are added only when enabled (see :func:`horsies.logging.colors_enabled`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from horsies.app import Horsies

__all__ = [
    "HORSE_LINES",
    "WORDMARK_LINES",
    "format_banner",
    "get_version",
    "print_banner",
    "render_banner",
]

# The picture and the wordmark are copied verbatim from the reference banner.
HORSE_LINES: tuple[str, ...] = (
    '⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⢀⣤⣶⣾⣿⣿⣿⣿⣷⣯⡀⠀⠀⠀⠀⠀⠀',
    '⠀ ⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⢀⣤⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣟⣿⣆⠀⠀⠀⠀',
    '⠀ ⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⢀⣴⣿⣿⣿⣿⣿⣿⣿⣿⡟⠹⣿⣿⣿⣿⣿⣦⡀⠀⠀⠀',
    '  ⠀⠀⠀⠀⠀⠀⠀⠀⢀⣀⣀⣀⣠⣴⣾⣿⣿⣿⣶⣶⣶⣤⣤⣤⣤⣤⣶⣾⣿⣿⣿⣿⣿⣿⣿⡟⠀⠀⠈⠉⠛⠻⡿⣿⣿⠂⠀',
    '⠀⠀⢀⣀⠀⢀⣀⣠⣶⣿⣿⠟⢛⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⡟⡐⠀⠀⠀⠀⠀⠀⠈⠋⡿⠁⠀⠀',
    '⠀⠀⠀⢹⣿⣿⣿⣿⣿⡿⠁⠀⢸⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣿⣯⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀',
    '⠀⠀⠀⠀⠛⠻⠿⠛⠉⠀⠀⠀⠈⢯⡻⣿⣿⣿⣿⣿⢿⣿⣿⣿⣿⣿⣿⡿⣿⣿⣿⣿⣿⣿⣿⣿⡿⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀',
    '  ⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠻⣷⣿⣿⣿⡟⠀⠙⠻⠿⠿⣿⣿⠃⣿⣿⣿⣿⣿⣿⣿⣿⡁⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀',
    '  ⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⢸⣿⣿⡿⠁⢀⠀⠀⠀⠀⠀⠂⠀⢿⣿⣿⣿⡍⠈⢁⣙⣿⢦⣄⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀',
    '  ⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⢰⣿⣿⠏⠀⠀⣼⠀⠀⠀⠀⠀⠀⠀⠀⠙⢿⣿⣷⠀⠀⠀⠀⠁⣿⡇⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀',
    '⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠈⠻⣿⣧⣀⢄⣿⡀⠀⠀⠀⠀⠀⠀⠀⠀⠈⢻⣿⣧⠀⠀⢀⣼⡟⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀⠀',
    '⠀⠀⠀⣀⠀⠀⠀⢀⡀⠀⠀⠀⡀⠀⠀⠀⣀⠛⣿⣷⣍⠛⣦⡀⠀⠂⢠⣷⣶⣾⡿⠟⠛⢃⠀⢠⣾⡟⠀⠀⠀⠀⡀⠀⠀⠀⡀⠀⠀⠀',
    '⠄⡤⠦⠤⠤⢤⡤⠡⠤⠤⢤⠬⠤⠤⠤⢤⠅⠀⠤⣿⣷⠄⠎⢻⣤⡦⠄⠀⠤⢵⠄⠠⠤⠬⣾⠏⠁⠀⠥⡤⠄⠠⠬⢦⡤⠀⠠⠵⢤⠠',
    '⠚⠒⠒⠒⡶⠚⠒⠒⠒⡰⠓⠒⠒⠒⢲⠓⠒⠒⠒⢻⠿⠀⠀⠚⢿⡷⠐⠒⠒⠚⡆⠒⠒⠒⠚⣖⠒⠒⠒⠚⢶⠒⠒⠒⠚⢶⠂⠐⠒⠛',
)
WORDMARK_LINES: tuple[str, ...] = (
    "    __                    _",
    "   / /_  ____  __________(_)__  _____",
    "  / __ \\/ __ \\/ ___/ ___/ / _ \\/ ___/",
    " / / / / /_/ / /  (__  ) /  __(__  )",
    "/_/ /_/\\____/_/  /____/_/\\___/____/",
)
# Column where the version (third line) and the tagline (fourth line) start.
_WORDMARK_TEXT_COLUMN = 43
TAGLINE = "distributed task queue"

_KEY_WIDTH = 13
_PASSWORD_MASK = "****"  # the banner masks with four stars, logs with three

_RESET = "\033[0m"
_CYAN = "\033[36m"
_WORDMARK = "\033[93;1m"  # bright yellow, bold
_SECTION = "\033[96;1m"  # bright cyan, bold
_DIM = "\033[2m"
_KEY = "\033[37;1m"  # white, bold
_VALUE = "\033[97m"  # bright white


def get_version() -> str:
    """The installed package version, or ``dev`` when it cannot be determined."""
    try:
        from importlib.metadata import version

        return version("horsies")
    except Exception:  # noqa: BLE001,S110 - not installed or broken metadata: try the source
        pass
    try:
        from horsies._version import __version__

        return str(__version__) or "dev"
    except Exception:  # noqa: BLE001 - a banner must never stop a start-up
        return "dev"


def _paint(text: str, code: str, use_colors: bool) -> str:
    return f"{code}{text}{_RESET}" if use_colors and text else text


def _wordmark(version: str) -> list[str]:
    lines = list(WORDMARK_LINES)
    lines[2] = lines[2].ljust(_WORDMARK_TEXT_COLUMN) + f"v{version}"
    lines[3] = lines[3].ljust(_WORDMARK_TEXT_COLUMN) + TAGLINE
    return lines


def format_banner(
    *,
    app_name: str,
    role: str,
    queue_mode: str,
    queues: Sequence[str],
    broker: str,
    tasks: Sequence[str],
    cluster_wide_cap: int | None = None,
    prefetch_buffer: int = 0,
    version: str | None = None,
    use_colors: bool = False,
) -> str:
    """Render the banner from plain values; ``broker`` must already be masked.

    The result has no trailing newline; it starts with an empty line and ends
    with one (after the task list).
    """
    ver = get_version() if version is None else version
    lines: list[str] = [""]
    lines += [_paint(line, _CYAN, use_colors) for line in HORSE_LINES]
    lines.append("")
    lines += [_paint(line, _WORDMARK, use_colors) for line in _wordmark(ver)]
    lines.append("")

    def section(name: str) -> str:
        return f"[{_paint(name, _SECTION, use_colors)}]"

    def item(key: str, value: str) -> str:
        bullet = _paint(".>", _DIM, use_colors)
        padded = _paint(f"{key}:".ljust(_KEY_WIDTH), _KEY, use_colors)
        return f"  {bullet} {padded}{_paint(value, _VALUE, use_colors)}"

    lines.append(section("config"))
    lines.append(item("app", app_name))
    lines.append(item("role", role))
    lines.append(item("queue_mode", queue_mode))
    lines.append(item("queues", ", ".join(queues)))
    lines.append(item("broker", broker))
    if cluster_wide_cap is not None:
        lines.append(item("cap", f"{cluster_wide_cap} (cluster-wide)"))
    if prefetch_buffer > 0:
        lines.append(item("prefetch", str(prefetch_buffer)))
    lines.append("")

    names = sorted(tasks)
    lines.append(f"{section('tasks')} ({len(names)} registered)")
    bullet = _paint(".", _DIM, use_colors)
    lines += [f"  {bullet} {_paint(name, _VALUE, use_colors)}" for name in names]
    lines.append("")
    return "\n".join(lines)


def _broker_display(config: Any) -> str:
    broker = getattr(config, "broker", None)
    url = getattr(broker, "database_url", None)
    if url:
        from horsies.config.postgres import mask_url

        return mask_url(str(url), _PASSWORD_MASK)
    data_dir = getattr(broker, "embedded_data_dir", None)
    if data_dir:
        return f"embedded PostgreSQL ({data_dir})"
    return "(not configured)"


def _queue_mode_name(mode: Any) -> str:
    name = getattr(mode, "name", None)
    return str(name if name is not None else mode).upper()


def render_banner(
    app: Horsies,
    role: str,
    *,
    queues: Sequence[str] | None = None,
    use_colors: bool = False,
    version: str | None = None,
) -> str:
    """The banner of ``app``; ``queues`` defaults to every configured queue."""
    config = app.config
    served = list(app.get_valid_queue_names()) if queues is None else list(queues)
    return format_banner(
        app_name=type(app).__name__,
        role=role,
        queue_mode=_queue_mode_name(config.queue_mode),
        queues=served,
        broker=_broker_display(config),
        tasks=list(app.list_tasks()),
        cluster_wide_cap=config.cluster_wide_cap,
        prefetch_buffer=config.prefetch_buffer,
        version=version,
        use_colors=use_colors,
    )


def print_banner(
    app: Horsies,
    role: str,
    *,
    queues: Sequence[str] | None = None,
    file: TextIO | None = None,
    use_colors: bool | None = None,
) -> None:
    """Print the banner to ``file`` (default stdout), coloured when enabled."""
    from horsies.logging import colors_enabled

    out = sys.stdout if file is None else file
    colored = colors_enabled(out) if use_colors is None else use_colors
    print(render_banner(app, role, queues=queues, use_colors=colored), file=out, flush=True)
