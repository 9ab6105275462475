"""Read a programme file (YAML) into a checked ``Programme``.

Errors name the line of the file and what is wrong with it. Numbers written in
the file are read as exact decimals, never as floats, and a key given twice in
one mapping is an error rather than the later one quietly winning.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from tillsight.core.programme import Programme
from tillsight.errors import ProgrammeError
from tillsight.yamlfile import StrictLoader, line_of, read_text, read_yaml

DEFAULT_PROGRAMME = "default.yaml"


def load_programme(path: str | Path | None = None) -> Programme:
    """Load a programme file, or the bundled default when ``path`` is None."""
    if path is None:
        text = resources.files("tillsight.programmes").joinpath(DEFAULT_PROGRAMME)
        return parse_programme(text.read_text(encoding="utf-8"), DEFAULT_PROGRAMME)
    try:
        source = read_text(Path(path), ProgrammeError)
    except OSError as exc:
        raise ProgrammeError(f"cannot read programme file {path}: {exc}") from exc
    return parse_programme(source, str(path))


def parse_programme(text: str, name: str = "<programme>") -> Programme:
    """Check programme text and build the ``Programme``."""
    data, root = read_yaml(text, name, ProgrammeError, StrictLoader)
    try:
        return Programme.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, root, name) from exc


def _first_error(exc: ValidationError, root: yaml.Node, name: str) -> ProgrammeError:
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith("@"):
        path, _, message = message[1:].partition(": ")
        loc = tuple(int(part) if part.isdigit() else part for part in path.split("."))
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling)"
    if error["type"] == "missing":
        message = "this key is required"
    where = ".".join(str(part) for part in loc) or "programme"
    value = error.get("input")
    shown = (
        "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
    )
    if isinstance(value, Decimal):
        shown = f" (got {value})"
    return ProgrammeError(f"{name}: {where}: {message}{shown}", line=line_of(root, loc))
