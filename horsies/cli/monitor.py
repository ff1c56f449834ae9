"""``horsies monitor``: the terminal dashboard (cli.md section 8, monitoring.md section 3)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from horsies.cli._common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ModuleArgument,
    locate_app_or_exit,
    resolve_database_url,
)

if TYPE_CHECKING:
    from horsies.config import RecoveryConfig

__all__ = ["MONITOR_HELP", "monitor", "preflight", "register"]

MONITOR_HELP = (
    "Open the terminal dashboard (needs the 'monitor' extra). MODULE is an optional app "
    "locator whose database and recovery thresholds are used."
)
MISSING_EXTRA = "horsies monitor needs the 'monitor' extra: pip install 'horsies[monitor]'"
CONNECT_TIMEOUT_S = 5


def _fail(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return typer.Exit(EXIT_ERROR)


def preflight(url: str) -> str | None:
    """Why the dashboard cannot start on `url` (unreachable, no schema), or None.

    Checked before the screen is taken, so the message is printed on a normal terminal.
    """
    import psycopg

    from horsies.db.schema import read_schema_version

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            found = read_schema_version(conn)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot connect to the database: {first}"
    if found is None:
        return ("the database has no horsies schema; run 'horsies db init' or start a worker "
                "first (the monitor never creates it)")
    return None


def monitor(
    module: ModuleArgument = None,
    database_url: Annotated[str | None, typer.Option(
        "-d", "--database-url", metavar="URL", show_default=False,
        help="Database to watch; otherwise MODULE's, then HORSIES_DATABASE_URL, "
             "then DATABASE_URL.")] = None,
    no_listen: Annotated[bool, typer.Option(
        "--no-listen", help="Do not use LISTEN; refresh by polling only.")] = False,
    theme: Annotated[str, typer.Option(
        "--theme", metavar="NAME", help="Initial theme; any textual theme name.")
    ] = "textual-dark",
    allow_actions: Annotated[bool, typer.Option(
        "--allow-actions", help="Enable the maintenance actions (R, F, X).")] = False,
) -> None:
    """Open the terminal dashboard."""
    try:
        import textual  # noqa: F401 - only checks that the extra is installed
        import textual_plotext  # noqa: F401
    except ImportError:
        print(MISSING_EXTRA, file=sys.stderr, flush=True)
        raise typer.Exit(EXIT_ERROR) from None
    recovery: RecoveryConfig | None = None
    app = None
    if not (database_url and database_url.strip()) and module:
        app = locate_app_or_exit(module).app
    if app is not None:
        recovery = app.config.recovery
    try:
        url = resolve_database_url(database_url, app)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. the embedded server did not start
        raise _fail(str(exc)) from None
    from textual.theme import BUILTIN_THEMES

    if theme not in BUILTIN_THEMES:
        print(f"error: unknown theme {theme!r}; one of {', '.join(sorted(BUILTIN_THEMES))}",
              file=sys.stderr, flush=True)
        raise typer.Exit(EXIT_USAGE)
    problem = preflight(url)
    if problem is not None:
        raise _fail(problem)
    raise typer.Exit(_run(url, app, no_listen=no_listen, theme=theme,
                          allow_actions=allow_actions, recovery=recovery))


def _run(url: str, app: object, *, no_listen: bool, theme: str, allow_actions: bool,
         recovery: RecoveryConfig | None) -> int:
    from horsies.app import Horsies
    from horsies.config import PostgresConfig
    from horsies.db.broker import PostgresBroker
    from horsies.monitor import MonitorApp

    broker = (app.get_broker() if isinstance(app, Horsies)
              else PostgresBroker(PostgresConfig(database_url=url)))
    dashboard = MonitorApp(broker, listen_url=None if no_listen else url, theme=theme,
                           allow_actions=allow_actions, recovery=recovery)
    try:
        dashboard.run()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        broker.close()
    return EXIT_OK if dashboard.return_code in (None, 0) else EXIT_ERROR


def register(root: typer.Typer) -> None:
    root.command("monitor", help=MONITOR_HELP, short_help="Open the terminal dashboard.")(monitor)
