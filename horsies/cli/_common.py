"""Shared pieces of the commands: options, app locator loading, error output.

Nothing here imports psycopg or the app machinery at module level, so that
``horsies --help`` stays fast; :func:`locate_app` imports them when it runs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from horsies.locator import (
    LOCATOR_FORMS,
    LocatedApp,
    debug_imports_enabled,
    dotted_name_for,
    import_module_file,
    is_file_locator,
    load_app,
    locate_app,
    split_locator,
)
from horsies.logging import LOGLEVEL_NAMES, get_logger, parse_loglevel

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.errors import HorsiesError

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "LOCATOR_FORMS",
    "LocatedApp",
    "LoglevelOption",
    "ModuleArgument",
    "ModuleOption",
    "checked_database_url",
    "debug_imports_enabled",
    "dotted_name_for",
    "import_module_file",
    "is_file_locator",
    "load_app",
    "locate_app",
    "locate_app_or_exit",
    "positive_seconds",
    "print_error",
    "print_errors",
    "resolve_database_url",
    "resolve_module_argument",
    "split_locator",
    "usage_error",
    "validate_loglevel",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


_MODULE_HELP = (
    "The app: MODULE:ATTR (shop.workers.instance:app), a module whose Horsies "
    "instance is discovered, or a file path (shop/workers/instance.py[:app])."
)


def _log() -> logging.Logger:
    return get_logger("cli")


# -- options shared by several commands ---------------------------------------


def validate_loglevel(value: str) -> str:
    """typer callback for ``--loglevel``: the upper-case name, or exit code 2."""
    try:
        parse_loglevel(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not one of {', '.join(LOGLEVEL_NAMES)} (any letter case)"
        ) from None
    return value.strip().upper()


ModuleArgument = Annotated[
    str | None,
    typer.Argument(metavar="MODULE", help=_MODULE_HELP, show_default=False),
]
ModuleOption = Annotated[
    str | None,
    typer.Option(
        "-m",
        "--module",
        metavar="MODULE",
        help="The app, as an option instead of the MODULE argument.",
        show_default=False,
    ),
]


LoglevelOption = typer.Option(
    "--loglevel",
    metavar="LEVEL",
    callback=validate_loglevel,
    help=f"Log level: {', '.join(LOGLEVEL_NAMES)} (any letter case).",
)


# -- output -------------------------------------------------------------------


def print_error(error: BaseException) -> None:
    """Print an error to stderr: a ``HorsiesError`` in its rendered form."""
    render = getattr(error, "format_rust_style", None)
    text = render() if callable(render) else f"error: {error}"
    print(text, file=sys.stderr, flush=True)


def print_errors(errors: Sequence[HorsiesError], phase: str = "check") -> None:
    """Print collected errors as a validation report to stderr."""
    from horsies.errors import ValidationReport

    report = ValidationReport(phase)
    for error in errors:
        report.add(error)
    print(report.format_rust_style(), file=sys.stderr, flush=True)


def positive_seconds(value: float | None) -> float | None:
    """typer callback for a number of seconds: > 0 and finite (NaN is refused too)."""
    if value is not None and not 0 < value < float("inf"):
        raise typer.BadParameter(f"{value} is not a positive number of seconds")
    return value


def usage_error(error: BaseException) -> NoReturn:
    """Print ``error`` and end the command with exit code 2."""
    print_error(error)
    raise typer.Exit(EXIT_USAGE)


# -- the MODULE argument ------------------------------------------------------


def resolve_module_argument(positional: str | None, option: str | None, command: str) -> str:
    """The locator given positionally or with ``-m``; exit code 2 when missing or conflicting."""
    from horsies.errors import ConfigurationError, ErrorCode

    forms = LOCATOR_FORMS.replace("<command>", command)
    if positional and option and positional != option:
        usage_error(
            ConfigurationError(
                "conflicting module paths provided",
                code=ErrorCode.CLI_INVALID_ARGS,
                notes=[f"--module={option!r} conflicts with the MODULE argument {positional!r}"],
                help_text=f"give the module path once, in one of these forms:\n{forms}",
            ).with_location(None)
        )
    locator = positional or option
    if not locator or not locator.strip():
        usage_error(
            ConfigurationError(
                "module path is required",
                code=ErrorCode.CLI_INVALID_ARGS,
                notes=["no MODULE argument and no -m/--module option given"],
                help_text=f"give the module path in one of these forms:\n{forms}",
            ).with_location(None)
        )
    return locator.strip()


# -- locating the app ---------------------------------------------------------


def locate_app_or_exit(locator: str) -> LocatedApp:
    """:func:`locate_app`, printing the error and exiting with code 1 on failure."""
    from horsies.errors import HorsiesError

    try:
        return locate_app(locator)
    except HorsiesError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_ERROR) from None


# -- database URL of monitor / db ---------------------------------------------


def resolve_database_url(
    database_url: str | None, app: Horsies | None, *, names: str = "--database-url or MODULE"
) -> str:
    """URL precedence of cli.md section 8: option, app, HORSIES_DATABASE_URL, DATABASE_URL.

    The result has no ``+psycopg`` driver suffix. Without any source the
    command ends with exit code 2; an unsupported URL with exit code 2 when it
    came from ``--database-url``, 1 when it came from the environment.
    """
    if database_url and database_url.strip():
        return checked_database_url(database_url.strip(), "--database-url")
    if app is not None:
        return app.config.broker.resolve_url()
    for variable in ("HORSIES_DATABASE_URL", "DATABASE_URL"):
        value = os.environ.get(variable, "").strip()
        if value:
            return checked_database_url(value, variable)
    print(
        f"error: no database given; pass {names}, or set HORSIES_DATABASE_URL or DATABASE_URL",
        file=sys.stderr,
        flush=True,
    )
    raise typer.Exit(EXIT_USAGE)


def checked_database_url(url: str, source: str) -> str:
    """``url`` without its ``+psycopg`` suffix, or the command ends with HRS-203.

    ``source`` names where the URL came from: a value given on the command line
    (``--database-url``) is a usage error (exit code 2), one read from the
    environment an error (exit code 1). The error shows only the URL's scheme,
    so a password in a malformed URL is never printed.
    """
    from horsies.config.postgres import database_url_error, strip_driver_suffix

    error = database_url_error(url, source)
    if error is None:
        return strip_driver_suffix(url)
    if source.startswith("--"):
        usage_error(error)
    print_error(error)
    raise typer.Exit(EXIT_ERROR)
