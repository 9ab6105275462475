"""Reading people's YAML files: exact numbers, plain words, lines for errors.

Programme files and import mappings are written by hand, so their errors must
point at a line. ``read_yaml`` returns the data and the node tree, and
``line_of`` finds the line that a validation error's path points at.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import yaml

from tillsight.errors import ConfigError


class ExactLoader(yaml.SafeLoader):
    """A safe loader for people's files.

    It reads ``1000.10`` as ``Decimal('1000.10')``, and only ``true`` and
    ``false`` as booleans: YAML 1.1 would read the key ``on:`` as ``True``.
    """


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    return Decimal(loader.construct_scalar(node).replace("_", ""))


ExactLoader.yaml_implicit_resolvers = {
    first: [pair for pair in resolvers if pair[0] != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ExactLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
ExactLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def read_yaml(
    text: str, name: str, error: type[ConfigError] = ConfigError
) -> tuple[dict[str, Any], yaml.Node]:
    """Parse a YAML mapping; raise ``error`` with the line when it is not one."""
    try:
        root = yaml.compose(text, Loader=ExactLoader)
        data = yaml.load(text, Loader=ExactLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{where}{name}: not valid YAML: {problem}") from exc
    if root is None or not isinstance(data, dict):
        raise error(f"line 1: {name}: the top level must be a mapping of keys")
    return data, root


def line_of(root: yaml.Node, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest key or item along a path that exists."""
    node = root
    line = root.start_mark.line + 1
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node, line = child
    return line


def _child(node: yaml.Node, part: Any) -> tuple[yaml.Node, int] | None:
    """The node under a key or index, and the line of that key or item."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == str(part):
                return value, key.start_mark.line + 1
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        items: list[yaml.Node] = node.value
        if part < len(items):
            return items[part], items[part].start_mark.line + 1
    return None
