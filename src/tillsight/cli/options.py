"""Options that several commands share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from tillsight.store.db import connect

Database = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="TILLSIGHT_DATABASE_URL",
        help=(
            "SQLAlchemy URL of the store, or the path of a SQLite file "
            "(default: sqlite:///tillsight.db)."
        ),
        show_default=False,
    ),
]
ProgrammeFile = Annotated[
    Path | None,
    typer.Option(
        "--programme",
        envvar="TILLSIGHT_PROGRAMME",
        help="Programme file (YAML); the bundled default programme if not given.",
        show_default=False,
    ),
]


@contextmanager
def open_store(url: str | None, *, reading: bool = False) -> Iterator[Engine]:
    """The store at ``--db`` for one command, its connections closed after.

    A command that is only ``reading`` refuses a SQLite file that is not there.
    """
    store = connect(url, must_exist=reading)
    try:
        yield store
    finally:
        store.dispose()
