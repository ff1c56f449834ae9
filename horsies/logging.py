"""Log format of the command line and colour choice for terminal output.

Imported as a library, horsies only attaches a ``NullHandler`` to the
``horsies`` logger (:func:`install_null_handler`). The CLI, and every worker
child at the same level, calls :func:`configure_logging`, which replaces the
handlers of ``horsies`` with one stderr handler using :class:`HorsiesFormatter`::

    [HH:MM:SS] [component]   [LEVEL]    message
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TextIO

__all__ = [
    "LOGGER_NAME",
    "LOGLEVEL_NAMES",
    "HorsiesFormatter",
    "StderrHandler",
    "colors_enabled",
    "configure_logging",
    "get_logger",
    "install_null_handler",
    "parse_loglevel",
]

LOGGER_NAME = "horsies"
LOGLEVEL_NAMES: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_COMPONENT_WIDTH = 14
_LEVEL_WIDTH = 10
_TRUTHY = frozenset({"1", "true", "yes"})

_RESET = "\033[0m"
_LIGHT_BLUE = "\033[94m"
_WHITE = "\033[37m"
_LEVEL_COLORS: dict[str, str] = {
    "DEBUG": "\033[90m",  # gray
    "INFO": "\033[32m",  # green
    "WARNING": "\033[33m",  # yellow
    "ERROR": "\033[31m",  # red
    "CRITICAL": "\033[1;91m",  # bold bright red
}


def colors_enabled(stream: TextIO | None = None) -> bool:
    """Whether ANSI colours should be written to ``stream`` (default stderr).

    ``HORSIES_FORCE_COLOR`` (1/true/yes) wins, then ``NO_COLOR`` (any value),
    then whether the stream is a terminal.
    """
    force = os.environ.get("HORSIES_FORCE_COLOR", "").strip().lower()
    if force in _TRUTHY:
        return True
    if "NO_COLOR" in os.environ:
        return False
    target = sys.stderr if stream is None else stream
    isatty = getattr(target, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (ValueError, OSError):  # closed or detached stream
        return False


def parse_loglevel(value: str) -> int:
    """Turn a ``--loglevel`` value (any letter case) into a logging level.

    Raises ``ValueError`` for anything but DEBUG, INFO, WARNING, ERROR, CRITICAL.
    """
    name = value.strip().upper() if isinstance(value, str) else ""
    if name not in LOGLEVEL_NAMES:
        raise ValueError(
            f"invalid log level {value!r}; choose one of {', '.join(LOGLEVEL_NAMES)}"
        )
    return int(logging.getLevelName(name))


def _pad(text: str, width: int) -> str:
    # Keep at least one space between columns when a name overflows its column.
    return text.ljust(width) if len(text) < width else text + " "


class HorsiesFormatter(logging.Formatter):
    """``[HH:MM:SS] [component]   [LEVEL]    message``, optionally coloured."""

    def __init__(self, use_colors: bool = False) -> None:
        super().__init__()
        self.use_colors = use_colors

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        component = _pad(f"[{record.name.rsplit('.', 1)[-1]}]", _COMPONENT_WIDTH)
        level = _pad(f"[{record.levelname}]", _LEVEL_WIDTH)
        message = record.getMessage()
        if self.use_colors:
            level_color = _LEVEL_COLORS.get(record.levelname, _WHITE)
            line = (
                f"{_LIGHT_BLUE}[{stamp}]{_RESET} "
                f"{_WHITE}{component}{_RESET}"
                f"{level_color}{level}{_RESET}"
                f"{_WHITE}{message}{_RESET}"
            )
        else:
            line = f"[{stamp}] {component}{level}{message}"
        extra = self._trailer(record)
        return f"{line}\n{extra}" if extra else line

    def _trailer(self, record: logging.LogRecord) -> str:
        parts: list[str] = []
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
            parts.append(record.exc_text)
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return "\n".join(parts)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that always writes to the current ``sys.stderr``.

    Resolving the stream at emit time keeps logging working when stderr is
    swapped (test runners, daemonizers) after logging was configured.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(
    level: int | str = logging.INFO,
    *,
    use_colors: bool | None = None,
) -> logging.Logger:
    """Replace the handlers of the ``horsies`` logger with one stderr handler.

    ``level`` is a logging level or a ``--loglevel`` name. Records do not
    propagate to the root logger, so an application's own root configuration
    does not print them twice.
    """
    numeric = parse_loglevel(level) if isinstance(level, str) else int(level)
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(
        HorsiesFormatter(colors_enabled(sys.stderr) if use_colors is None else use_colors)
    )
    logger.addHandler(handler)
    logger.setLevel(numeric)
    logger.propagate = False
    return logger


def install_null_handler() -> None:
    """Library default: a ``NullHandler`` on ``horsies`` and nothing else."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def get_logger(component: str) -> logging.Logger:
    """The logger ``horsies.<component>``."""
    return logging.getLogger(f"{LOGGER_NAME}.{component}")
