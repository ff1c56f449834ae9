"""``horsies scheduler``: run the scheduler (cli.md section 6, scheduling.md section 7)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from horsies.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    LoglevelOption,
    ModuleArgument,
    ModuleOption,
    locate_app_or_exit,
    print_error,
    print_errors,
    resolve_module_argument,
)
from horsies.logging import configure_logging, get_logger

if TYPE_CHECKING:
    from horsies.app import Horsies

__all__ = ["SCHEDULER_HELP", "import_tasks_skipping_failures", "register", "scheduler"]

SCHEDULER_HELP = """Run the scheduler: enqueue the tasks of AppConfig.schedule on their timetable.

Each slot of each enabled entry becomes one task, even with several schedulers
on one database. SIGTERM or SIGINT (Ctrl+C) stops it after the current tick.

Examples:

  horsies scheduler shop.workers.instance:app

  horsies scheduler shop/workers/instance.py --loglevel DEBUG
"""


def import_tasks_skipping_failures(app: Horsies) -> None:
    """Import the discovered task modules with sends suppressed; a failure is a warning."""
    log = get_logger("cli")
    app.suppress_sends(True)
    try:
        for entry in app.get_discovered_task_modules():
            try:
                app.import_task_modules([entry])
            except Exception as exc:  # noqa: BLE001 - logged and skipped (cli.md section 6)
                log.warning("Could not import task module %s (skipped): %s: %s",
                            entry, type(exc).__name__, exc)
    finally:
        app.suppress_sends(False)


def scheduler(
    module: ModuleArgument = None,
    module_option: ModuleOption = None,
    loglevel: Annotated[str, LoglevelOption] = "INFO",
) -> None:
    """Run the scheduler."""
    configure_logging(loglevel)
    log = get_logger("cli")
    log.info("Starting scheduler with loglevel=%s", loglevel)
    locator = resolve_module_argument(module, module_option, "scheduler")
    try:
        code = _run(locator)
    except KeyboardInterrupt:
        # A signal before the scheduler installed its own handlers: still a requested stop.
        log.info("Scheduler interrupted before it started")
        code = EXIT_OK
    raise typer.Exit(code)


def _run(locator: str) -> int:
    from horsies.banner import print_banner

    log = get_logger("cli")
    app = locate_app_or_exit(locator).app
    app.set_role("scheduler")
    log.info("horsies running as scheduler")
    config = app.config.schedule
    if config is None:
        log.error("Schedule configuration not found in app config")
        return EXIT_ERROR
    if not config.enabled:
        log.warning("Scheduler is disabled in config")
        return EXIT_ERROR
    errors = app.check(live=False)
    if errors:
        print_errors(errors, "scheduler-startup")
        return EXIT_ERROR
    import_tasks_skipping_failures(app)
    print_banner(app, "scheduler")
    enabled = config.enabled_schedules()
    log.info("Scheduler: %d/%d schedules enabled", len(enabled), len(config.schedules))

    from horsies.scheduler.validation import entry_error

    for entry in enabled:
        error = entry_error(app, entry)
        if error is not None:
            print_error(error)
            return EXIT_ERROR

    from horsies.scheduler.run import run_scheduler

    log.info("Ensuring Postgres schema and triggers are initialized...")
    return run_scheduler(app, config)


def register(app: typer.Typer) -> None:
    app.command("scheduler", help=SCHEDULER_HELP, short_help="Run the scheduler.")(scheduler)
