"""`horsies demo`: a self-contained run that shows horsies working end to end."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from horsies.cli._common import LoglevelOption, checked_database_url, positive_seconds

if TYPE_CHECKING:
    import asyncio

    from horsies.demo.report import DemoReport
    from horsies.demo.run import DemoSettings

DEMO_HELP = (
    "Run a worker and a throughput test on a temporary embedded database (or --database-url), "
    "then time round trips on the idle worker; print throughput and latency."
)


def _database_url(option: str | None) -> str | None:
    """``--database-url``, else ``HORSIES_DATABASE_URL``, checked; ``None`` for neither."""
    if option and option.strip():
        return checked_database_url(option.strip(), "--database-url")
    value = os.environ.get("HORSIES_DATABASE_URL", "").strip()
    return checked_database_url(value, "HORSIES_DATABASE_URL") if value else None


def demo(
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="Use this database instead of a temporary embedded one.")] = None,
    tasks: Annotated[int, typer.Option(
        "--tasks", min=1, max=10_000_000, help="Tasks enqueued in the throughput run.")] = 100_000,
    processes: Annotated[int | None, typer.Option(
        "--processes", min=1, help="Worker child processes (default: CPU count).")] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, max=100_000, help="Calls per send_many.")] = 1000,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0.001, callback=positive_seconds,
        help="Seconds to wait for all tasks.")] = 300.0,
    keep_data: Annotated[bool, typer.Option(
        "--keep-data", help="Keep the rows the demo created.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Run even if other workers are active on the database.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    loglevel: Annotated[str, LoglevelOption] = "WARNING",
) -> None:
    """Run the demo."""
    from horsies.config import mask_url
    from horsies.demo import database
    from horsies.demo.run import DemoSettings
    from horsies.logging import configure_logging, parse_loglevel

    configure_logging(parse_loglevel(loglevel))
    url = _database_url(database_url)
    directory = None
    if url is None:
        if importlib.util.find_spec("pgserver") is None:
            typer.echo("horsies demo needs --database-url or the 'embedded' extra: "
                       "pip install 'horsies[embedded]'", err=True)
            raise typer.Exit(1)
        url, directory = database.temporary_database()
    settings = DemoSettings(
        url=url, label="embedded PostgreSQL (temporary)" if directory else mask_url(url),
        tasks=tasks, processes=processes or os.cpu_count() or 1, batch_size=batch_size,
        timeout=timeout, keep_data=keep_data)
    try:
        report = _run(settings, force, as_json)
    finally:
        if directory is not None:
            database.drop_temporary_database(directory)
    _print(report, as_json)


def _run(settings: DemoSettings, force: bool, as_json: bool) -> DemoReport:
    """The demo, or a clean exit: 1 on a database error, 130 on Ctrl+C."""
    import asyncio  # not at module level: worker children import this module via the CLI

    import psycopg

    from horsies.demo import database, progress
    from horsies.demo.run import DemoError, run_demo

    try:
        if not force and database.active_workers(settings.url):
            typer.echo("other horsies workers are active on this database; "
                       "use --force to run anyway", err=True)
            raise typer.Exit(1)
        with asyncio.Runner(loop_factory=_loop_factory()) as runner, \
                progress.DemoProgress(progress.wanted(as_json)) as shown:
            return runner.run(run_demo(settings, shown))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except psycopg.Error as exc:  # unreachable server, refused login, missing database
        typer.echo(f"error: could not use the database {settings.label}: {exc}", err=True)
        raise typer.Exit(1) from None
    except DemoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop, as `horsies worker` uses, where it is installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _print(report: DemoReport, as_json: bool) -> None:
    from horsies.banner import get_version
    from horsies.demo.report import format_report

    if as_json:
        typer.echo(json.dumps(report.as_json()))
    else:
        typer.echo(format_report(report, get_version()))
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer) -> None:
    app.command("demo", help=DEMO_HELP, short_help="Run a throughput and latency demo.")(demo)
