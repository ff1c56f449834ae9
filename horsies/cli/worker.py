"""``horsies worker``: run a worker (cli.md section 5, workers.md section 2)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from horsies.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    LoglevelOption,
    ModuleArgument,
    ModuleOption,
    debug_imports_enabled,
    locate_app_or_exit,
    positive_seconds,
    print_error,
    print_errors,
    resolve_module_argument,
    usage_error,
)
from horsies.logging import configure_logging, get_logger, parse_loglevel

if TYPE_CHECKING:
    from horsies.app import Horsies

__all__ = ["default_processes", "import_tasks_for_start", "parse_queue_list", "served_queues",
           "worker"]

WORKER_HELP = """Run a worker: claim tasks from PostgreSQL and run them in child processes.

SIGTERM or SIGINT (Ctrl+C) starts a graceful shutdown; a second one forces it.

Examples:

  horsies worker shop.workers.instance:app

  horsies worker shop/workers/instance.py --processes 12 --loglevel DEBUG

  horsies worker shop.workers.instance:app --queues payments,mail --max-claim-batch 4
"""


def default_processes() -> int:
    """The default of ``--processes``: the CPU count, 1 if unknown."""
    return os.cpu_count() or 1


def parse_queue_list(raw: str) -> list[str]:
    """``"a, b,,a"`` → ``["a", "b"]``: stripped, empty entries dropped, first seen kept."""
    names = [name.strip() for name in raw.split(",")]
    return list(dict.fromkeys(name for name in names if name))


def _check_queues_option(value: str | None) -> str | None:
    if value is not None and not parse_queue_list(value):
        raise typer.BadParameter("give at least one queue name (NAME[,NAME...])")
    return value


def served_queues(app: Horsies, raw: str | None) -> list[str]:
    """The queues to serve, in configuration order; exit code 2 for unknown names."""
    from horsies.errors import ConfigurationError, ErrorCode

    valid = list(app.get_valid_queue_names())
    if raw is None:
        return valid
    wanted = parse_queue_list(raw)
    unknown = [name for name in wanted if name not in valid]
    if unknown:
        usage_error(
            ConfigurationError(
                f"unknown queue name(s) in --queues: {', '.join(unknown)}",
                code=ErrorCode.CLI_INVALID_ARGS,
                notes=[f"valid queues: {', '.join(valid)}"],
                help_text="--queues takes configured queue names, separated by commas",
            ).with_location(None)
        )
    return [name for name in valid if name in wanted]


def import_tasks_for_start(app: Horsies) -> bool:
    """Import the discovered task modules with sends suppressed.

    Prints the error and returns ``False`` when an import fails.
    """
    from horsies.errors import HorsiesError

    log = get_logger("cli")
    app.suppress_sends(True)
    try:
        imported = app.import_task_modules()
    except HorsiesError as exc:
        print_error(exc)
        return False
    except Exception as exc:  # noqa: BLE001 - check() normally reports these first
        log.error("Failed to import task modules: %s: %s", type(exc).__name__, exc)
        return False
    finally:
        app.suppress_sends(False)
    if debug_imports_enabled():
        log.debug("Imported task modules: %s", imported)
        log.debug("Registered tasks: %s", app.list_tasks())
    return True


def worker(
    module: ModuleArgument = None,
    module_option: ModuleOption = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            metavar="N",
            help="Child processes, i.e. tasks run at once.",
            show_default="the CPU count",
        ),
    ] = None,
    loglevel: Annotated[str, LoglevelOption] = "INFO",
    max_claim_batch: Annotated[
        int,
        typer.Option(
            "--max-claim-batch",
            min=1,
            metavar="N",
            help="Most rows taken from one queue in one claim pass.",
        ),
    ] = 2,
    max_claim_per_worker: Annotated[
        int,
        typer.Option(
            "--max-claim-per-worker",
            min=0,
            metavar="N",
            help="Ceiling on claimed-but-not-running tasks; 0 = automatic "
            "(processes in hard-cap mode, processes + prefetch_buffer in soft-cap mode).",
        ),
    ] = 0,
    max_run_size: Annotated[
        int,
        typer.Option(
            "--max-run-size",
            min=1,
            metavar="N",
            help="Most tasks handed to a child at once when no cap is configured; "
            "1 turns runs off.",
        ),
    ] = 256,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            metavar="NAME[,NAME...]",
            callback=_check_queues_option,
            help="Serve only these configured queues (comma-separated).",
            show_default="all configured queues",
        ),
    ] = None,
    shutdown_timeout: Annotated[
        float | None,
        typer.Option(
            "--shutdown-timeout",
            metavar="SECONDS",
            callback=positive_seconds,
            help="Bound on the graceful drain at shutdown, in seconds (> 0).",
            show_default="wait indefinitely",
        ),
    ] = None,
) -> None:
    """Run a worker."""
    configure_logging(loglevel)
    log = get_logger("cli")
    log.info("Starting horsies worker with loglevel=%s", loglevel)
    locator = resolve_module_argument(module, module_option, "worker")
    try:
        code = _run(locator, processes, loglevel, max_claim_batch, max_claim_per_worker,
                    max_run_size, queues, shutdown_timeout)
    except KeyboardInterrupt:
        # A signal before the worker installed its own handlers: still a requested stop.
        log.info("Worker interrupted before it started")
        code = EXIT_OK
    raise typer.Exit(code)


def _run(
    locator: str,
    processes: int | None,
    loglevel: str,
    max_claim_batch: int,
    max_claim_per_worker: int,
    max_run_size: int,
    queues: str | None,
    shutdown_timeout: float | None,
) -> int:
    import horsies.worker as workers
    from horsies.banner import print_banner
    from horsies.worker.config import WorkerConfig

    log = get_logger("cli")
    located = locate_app_or_exit(locator)
    app = located.app
    app.set_role("worker")
    log.info("horsies running as worker")
    served = served_queues(app, queues)
    log.info("Worker will process queues: [%s]", ", ".join(served))
    config = WorkerConfig(
        app_locator=located.child_locator,
        queues=None if queues is None else served,
        processes=default_processes() if processes is None else processes,
        max_claim_batch=max_claim_batch,
        max_claim_per_worker=max_claim_per_worker,
        max_run_size=max_run_size,
        imports=[],
        sys_path_roots=list(located.sys_path_roots),
        loglevel=parse_loglevel(loglevel),
        shutdown_timeout_s=shutdown_timeout,
    )
    # The children import the app while this process checks it, prints the
    # banner and connects: the first task starts as soon as one is ready.
    children = workers.spawn_children(config)
    try:
        errors = app.check(live=False)
        if errors:
            print_errors(errors, "worker-startup")
            return EXIT_ERROR
        if not import_tasks_for_start(app):
            return EXIT_ERROR
        print_banner(app, "worker", queues=served)

        # run_worker's first step is the schema check (workers.md section 2 step 6).
        log.info("Ensuring Postgres schema and triggers are initialized...")
        started, children = children, []
        return int(workers.run_worker(app, config, started))
    finally:
        for child in children:  # not handed to a worker
            child.kill()
