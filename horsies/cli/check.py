"""``horsies check``: validate an app without starting anything (cli.md section 7)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from horsies.cli._common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    LoglevelOption,
    ModuleArgument,
    ModuleOption,
    locate_app_or_exit,
    print_errors,
    resolve_module_argument,
)
from horsies.logging import configure_logging

__all__ = ["check", "speedups_line"]

CHECK_HELP = """Validate an app without starting anything.

Runs the phased validation that workers and schedulers run at start
(task imports, workflows, schedules, runtime policy); with --live also connects to the
database and runs SELECT 1. Nothing in the database is created or changed.

Examples:

  horsies check shop.workers.instance:app

  horsies check shop.workers.instance:app --live
"""


def speedups_line() -> str:
    """Which implementation of the hot paths is in use, for the check report."""
    try:
        from horsies._speedups import IMPL, IMPL_ERROR
    except ImportError as exc:
        return f"speedups: unavailable ({exc})"
    if IMPL_ERROR:
        return f"speedups: {IMPL} ({IMPL_ERROR})"
    return f"speedups: {IMPL}"


def check(
    module: ModuleArgument = None,
    module_option: ModuleOption = None,
    loglevel: Annotated[str, LoglevelOption] = "WARNING",
    live: Annotated[
        bool,
        typer.Option("--live", help="Also connect to the database and run SELECT 1."),
    ] = False,
) -> None:
    """Validate an app."""
    configure_logging(loglevel)
    locator = resolve_module_argument(module, module_option, "check")
    try:
        located = locate_app_or_exit(locator)
        errors = located.app.check(live=live)
        task_count = len(located.app.list_tasks())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if errors:
        print_errors(errors, "check")
        raise typer.Exit(EXIT_ERROR)
    typer.echo(f"ok: all validations passed\n  {task_count} task(s) registered")
    typer.echo(f"  {speedups_line()}")
    raise typer.Exit(EXIT_OK)
