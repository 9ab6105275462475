"""JSON read strictly: an object that names one key twice is an error.

Python's ``json`` keeps the last of two equal keys without a word, so a body
with ``"total"`` twice would be read as whichever came second, and what a
signature or a reviewer saw first would not be what was imported. Every
reader of outside JSON (JSON Lines files, the events API, webhooks) goes
through :func:`loads`.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKeyError(ValueError):
    """An object in the text names one key twice."""


def loads(text: str | bytes, **options: Any) -> Any:
    """``json.loads`` that raises :class:`DuplicateKeyError` on a repeated key."""
    return json.loads(text, object_pairs_hook=_unique, **options)


def problem(exc: ValueError, *, one_line: bool = False) -> str:
    """Say what is wrong with text that :func:`loads` refused.

    ``one_line`` leaves out the line number, for text that is one line of a
    file (whose own number the caller gives).
    """
    if not isinstance(exc, json.JSONDecodeError):
        return str(exc)
    # Some of json's messages end in "at" and expect the position after it.
    what = exc.msg.removesuffix(" at")
    where = (
        f"column {exc.colno}" if one_line else f"line {exc.lineno} column {exc.colno}"
    )
    return f"{what} at {where}"


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKeyError(f"key {key!r} appears twice in one object")
        found[key] = value
    return found
