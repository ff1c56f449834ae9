"""``horsies db init`` / ``horsies db status``: the schema, explicitly (cli.md section 10)."""

from __future__ import annotations

import sys
from typing import Annotated, Any, NoReturn

import typer

from horsies.cli._common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ModuleArgument,
    locate_app_or_exit,
    resolve_database_url,
)
from horsies.logging import configure_logging

__all__ = ["db_app", "format_status", "init", "status"]

db_app = typer.Typer(
    name="db",
    help="Create or inspect the horsies database schema.",
    no_args_is_help=True,
    add_completion=False,
)

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "-d",
        "--database-url",
        metavar="URL",
        help="Database to use; otherwise MODULE's, then HORSIES_DATABASE_URL, then DATABASE_URL.",
        show_default=False,
    ),
]

_DB_MODULE_HELP_NOTE = (
    "MODULE is an optional app locator (MODULE:ATTR or a file path) whose "
    "database is used when --database-url is not given."
)


def _database_url(module: str | None, database_url: str | None) -> str:
    # Only the URL is needed: the app module is imported, its task modules are not.
    app = None
    if not (database_url and database_url.strip()) and module:
        app = locate_app_or_exit(module).app
    try:
        return resolve_database_url(database_url, app)
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. the embedded server did not start
        _fail(exc)


def _fail(exc: BaseException) -> NoReturn:
    render = getattr(exc, "format_rust_style", None)
    text = render() if callable(render) else f"error: {exc}"
    print(text, file=sys.stderr, flush=True)
    raise typer.Exit(EXIT_ERROR)


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def _supported_version() -> int:
    from horsies.db.schema import CURRENT_SCHEMA_VERSION

    return int(CURRENT_SCHEMA_VERSION)


def _init_schema(url: str) -> int:
    from horsies.db.schema import ensure_schema_initialized

    with _connect(url) as conn:  # the function runs its own transaction
        return int(ensure_schema_initialized(conn))


def _read_version(url: str) -> int | None:
    from horsies.db.schema import read_schema_version

    with _connect(url) as conn:
        found = read_schema_version(conn)
    return None if found is None else int(found)


def format_status(found: int | None, supported: int) -> str:
    """The line printed by ``horsies db status``."""
    if found is None:
        return "database schema: not initialized"
    return f"database schema: v{found} (this build supports v{supported})"


@db_app.command(
    "init", help=f"Create or upgrade the schema once (no retries).\n\n{_DB_MODULE_HELP_NOTE}"
)
def init(module: ModuleArgument = None, database_url: DatabaseUrlOption = None) -> None:
    """Create or upgrade the schema."""
    configure_logging("WARNING")
    try:
        url = _database_url(module, database_url)
        version = _init_schema(url)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - printed, exit code 1
        _fail(exc)
    typer.echo(f"schema v{version} ready")
    raise typer.Exit(EXIT_OK)


@db_app.command(
    "status", help=f"Show the schema version without changing anything.\n\n{_DB_MODULE_HELP_NOTE}"
)
def status(module: ModuleArgument = None, database_url: DatabaseUrlOption = None) -> None:
    """Show the schema version."""
    configure_logging("WARNING")
    try:
        url = _database_url(module, database_url)
        found = _read_version(url)
        supported = _supported_version()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - printed, exit code 1
        _fail(exc)
    typer.echo(format_status(found, supported))
    raise typer.Exit(EXIT_OK if found == supported else EXIT_ERROR)
