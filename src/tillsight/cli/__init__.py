"""The ``tillsight`` command line."""

from __future__ import annotations

import contextlib
import os
import sys

import typer
from rich.markup import escape
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from tillsight.cli import history, kpi, live, lookup, loyalty, salesforce
from tillsight.cli.terminal import make_console
from tillsight.errors import StoreError, TillsightError

app = typer.Typer(
    name="tillsight",
    help="Point-of-sale transactions in, customer lifecycle journeys out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
history.register(app)
lookup.register(app)
live.register(app)
salesforce.register(app)
loyalty.register(app)
kpi.register(app)


def main() -> None:
    """Run the CLI; errors end with a one-line message, not a traceback.

    Tillsight's own errors exit with their code. What the machine refuses
    (a file that cannot be written, a full disk, a store that is read-only or
    gone) is told the same way, naming the file or the database's words.
    Typer itself answers usage mistakes (an unknown command, a missing
    argument) with a short message and exit code 2.
    """
    try:
        app()
    except TillsightError as exc:
        _fail(str(exc), exc.exit_code)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename is not None else ""
        _fail(f"{exc.strerror or exc}{where}", 1)
    except DBAPIError as exc:
        _fail(f"the store refused: {exc.orig}", StoreError.exit_code)
    except SQLAlchemyError as exc:
        _fail(f"the store refused: {exc}", StoreError.exit_code)


def _fail(message: str, code: int) -> None:
    _quiet_stdout()
    make_console(stderr=True).print(
        f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False
    )
    sys.exit(code)


def _quiet_stdout() -> None:
    """Point stdout at nothing, so that flushing it at exit cannot fail again."""
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
