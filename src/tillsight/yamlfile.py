"""Reading people's YAML files: exact numbers, plain words, lines for errors.

Programme files and import mappings are written by hand, so their errors must
point at a line. ``read_text`` reads such a file and names the first line that
is not UTF-8; ``read_yaml`` returns the data and the node tree; and
``line_of`` finds the line that a validation error's path points at. Plain YAML
keeps the last of a key given twice without a word; ``StrictLoader`` refuses it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from tillsight.errors import ConfigError


class ExactLoader(yaml.SafeLoader):
    """A safe loader for people's files.

    It reads ``1000.10`` as ``Decimal('1000.10')``, and only ``true`` and
    ``false`` as booleans: YAML 1.1 would read the key ``on:`` as ``True``.
    """


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "").lower()
    # YAML writes not-a-number and infinity .nan and .inf; Decimal reads them
    # without the dot, and the model that checks the data refuses them by name.
    text = text.replace(".nan", "nan").replace(".inf", "inf")
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ConstructorError(
            problem=f"{text!r} is not a decimal number", problem_mark=node.start_mark
        ) from exc


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


class StrictLoader(ExactLoader):
    """An ``ExactLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Any, Any]:
        _refuse_repeated_keys(node)
        return super().construct_mapping(node, deep=deep)


def _refuse_repeated_keys(node: yaml.MappingNode) -> None:
    # Merged keys (``<<: *base``) may be overridden, so only plain ones count.
    seen: dict[tuple[str, str], yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag.endswith(":merge"):
            continue
        first = seen.setdefault((key.tag, key.value), key)
        if first is not key:
            raise ConstructorError(
                problem=f"key {key.value!r} is given twice "
                f"(first on line {first.start_mark.line + 1})",
                problem_mark=key.start_mark,
            )


def read_text(path: Path, error: type[ConfigError] = ConfigError) -> str:
    """Read a UTF-8 file; raise ``error`` naming the first line that is not.

    ``OSError`` is left to the caller, which knows what the file is for.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"line {line}: {path}: not UTF-8 (byte 0x{data[exc.start]:02x}); "
            "save the file as UTF-8"
        ) from exc


def read_yaml(
    text: str,
    name: str,
    error: type[ConfigError] = ConfigError,
    loader: type[ExactLoader] = ExactLoader,
) -> tuple[dict[str, Any], yaml.Node]:
    """Parse a YAML mapping; raise ``error`` with the line when it is not one."""
    try:
        root = yaml.compose(text, Loader=loader)
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        line, problem = _where_and_what(exc, text)
        where = f"line {line}: " if line is not None else ""
        raise error(f"{where}{name}: not valid YAML: {problem}") from exc
    if root is None or not isinstance(data, dict):
        raise error(f"line 1: {name}: the top level must be a mapping of keys")
    return data, root


def _where_and_what(exc: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    """The line a YAML error points at, if any, and what the problem is."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return line, f"the character U+{exc.character:04X} is not allowed"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return (mark.line + 1 if mark is not None else None), problem


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
