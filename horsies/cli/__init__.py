"""The ``horsies`` command line (typer).

Each command lives in its own module and is registered here on the root app.
Command modules import heavy dependencies (psycopg, the worker) inside their
functions, so that ``horsies --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from horsies.cli.check import CHECK_HELP, check
from horsies.cli.db import db_app
from horsies.cli.worker import WORKER_HELP, worker

__all__ = ["app", "main"]

app = typer.Typer(
    name="horsies",
    help="horsies: a PostgreSQL-backed task queue and workflow engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from horsies.banner import get_version

        typer.echo(f"horsies {get_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """horsies: a PostgreSQL-backed task queue and workflow engine."""


app.command("worker", help=WORKER_HELP, short_help="Run a worker.")(worker)
app.command("check", help=CHECK_HELP, short_help="Validate an app without starting anything.")(
    check
)
app.add_typer(db_app, name="db")


def _register_optional(name: str) -> None:
    """Register the command module ``horsies.cli.<name>`` when it exists.

    The module may define ``register(app)``, a typer sub-app named ``app``, or
    a command function named like the module.
    """
    import importlib

    qualified = f"{__name__}.{name}"
    try:
        module: Any = importlib.import_module(qualified)
    except ModuleNotFoundError as exc:
        if exc.name != qualified:  # the module exists but one of its imports is broken
            raise
        return
    if callable(getattr(module, "register", None)):
        module.register(app)
    elif isinstance(getattr(module, "app", None), typer.Typer):
        app.add_typer(module.app, name=name)
    elif callable(getattr(module, name, None)):
        app.command(name)(getattr(module, name))


# Commands whose modules may not exist in every build: registered when present.
for _name in ("scheduler", "monitor", "demo"):
    _register_optional(_name)


def main() -> None:
    """Console-script entry point: ``horsies``."""
    app(prog_name="horsies")
