"""The ``tillsight`` command line."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from tillsight.cli import history, kpi, live, lookup, loyalty, salesforce
from tillsight.cli.terminal import make_console
from tillsight.errors import TillsightError

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
    """Run the CLI; tillsight errors end with their message, not a traceback.

    Typer itself answers usage mistakes (an unknown command, a missing
    argument) with a short message and exit code 2.
    """
    try:
        app()
    except TillsightError as exc:
        make_console(stderr=True).print(
            f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False
        )
        sys.exit(exc.exit_code)
