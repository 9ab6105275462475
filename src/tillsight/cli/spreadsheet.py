"""CSV cells that a spreadsheet opens as text, never as a formula.

Store names, event ids and campaign names come from tills and webhooks; a cell
starting with ``=``, ``+``, ``-``, ``@`` or a control character would run as a
formula in Excel or LibreOffice. Such text gets a leading apostrophe, the
usual guard; numbers are left alone.
"""

from __future__ import annotations

from typing import Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """The value, made safe to open in a spreadsheet if it is risky text."""
    if not isinstance(value, str) or not value.startswith(_TRIGGERS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def row(values: dict[str, Any]) -> dict[str, Any]:
    """Every cell of a CSV row made safe."""
    return {name: cell(value) for name, value in values.items()}
