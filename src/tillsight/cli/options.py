"""Options that several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Database = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="TILLSIGHT_DATABASE_URL",
        help="SQLAlchemy URL of the store [default: sqlite:///tillsight.db].",
        show_default=False,
    ),
]
ProgrammeFile = Annotated[
    Path | None,
    typer.Option(
        "--programme",
        envvar="TILLSIGHT_PROGRAMME",
        help="Programme file (YAML) [default: the bundled default programme].",
        show_default=False,
    ),
]
