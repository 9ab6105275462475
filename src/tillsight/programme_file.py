"""Read a programme file (YAML) into a checked ``Programme``.

Errors name the line of the file and what is wrong with it. Numbers written in
the file are read as exact decimals, never as floats.
"""

from __future__ import annotations

import re
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tillsight.core.programme import Programme
from tillsight.errors import ProgrammeError

DEFAULT_PROGRAMME = "default.yaml"


class _ExactLoader(yaml.SafeLoader):
    """A safe loader for people's files.

    It reads ``1000.10`` as ``Decimal('1000.10')``, and only ``true`` and
    ``false`` as booleans: YAML 1.1 would read the key ``on:`` as ``True``.
    """


_ExactLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ExactLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    return Decimal(loader.construct_scalar(node).replace("_", ""))


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def load_programme(path: str | Path | None = None) -> Programme:
    """Load a programme file, or the bundled default programme when ``path`` is None."""
    if path is None:
        text = resources.files("tillsight.programmes").joinpath(DEFAULT_PROGRAMME)
        return parse_programme(text.read_text(encoding="utf-8"), DEFAULT_PROGRAMME)
    try:
        source = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProgrammeError(f"cannot read programme file {path}: {exc}") from exc
    return parse_programme(source, str(path))


def parse_programme(text: str, name: str = "<programme>") -> Programme:
    """Check programme text and build the ``Programme``."""
    try:
        root = yaml.compose(text, Loader=_ExactLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProgrammeError(f"{name}: not valid YAML: {problem}", line=line) from exc
    if root is None:
        raise ProgrammeError(f"{name}: the file is empty", line=1)
    data = _ExactLoader(text).get_single_data()
    if not isinstance(data, dict):
        raise ProgrammeError(f"{name}: the top level must be a mapping", line=1)
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
    where = ".".join(str(part) for part in loc) or "programme"
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling)"
    if error["type"] == "missing":
        message = "this key is required"
    value = error.get("input")
    shown = (
        "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
    )
    node = _node_at(root, loc)
    line = node.start_mark.line + 1 if node is not None else None
    return ProgrammeError(f"{name}: {where}: {message}{shown}", line=line)


def _node_at(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest YAML node along a validation error's path."""
    node = root
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
    return node


def _child(node: yaml.Node, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == str(part):
                return value
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        return node.value[part] if part < len(node.value) else None
    return None
