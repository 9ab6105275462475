"""Read canonical events from a JSON Lines file, one event per line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from tillsight import jsontext
from tillsight.core.events import Event
from tillsight.errors import InputError, RowError
from tillsight.ingest.canonical import parse_canonical, to_event
from tillsight.ingest.rejects import ORIGINAL_KEY, REJECT_KEY, RejectedRow
from tillsight.ingest.textfile import TextLines, open_binary

_INT_DIGITS = 4_000  # below Python's default limit of 4,300 for int(str)


def read_jsonl(
    path: str | Path, default_zone: ZoneInfo, *, source: str = "jsonl"
) -> Iterator[Event | RowError]:
    """Yield an event per good line and a ``RowError`` per bad one.

    Blank lines are skipped, and so is a UTF-8 byte order mark. A
    ``_rejected`` key, which a rejects file adds to each line, is dropped, so
    a fixed rejects file imports as it is. Every row error is a
    :class:`RejectedRow` that keeps the line's text; a line that is not UTF-8
    is one of them, its bad bytes kept (see :mod:`tillsight.ingest.textfile`).
    """
    with (
        open_binary(path) as file,
        closing(TextLines(file, "utf-8", str(path), mapped=False)) as lines,
    ):
        bad = lines.bad
        for number, text in enumerate(lines, start=1):
            text = text.rstrip("\r\n")
            if bad and bad[0][0] == number:
                _, reason = bad.popleft()
                yield RejectedRow(number, [("(line)", reason)], raw=text)
            elif text.strip():
                yield _read_line(text, number, default_zone, source)


def _read_line(
    text: str, number: int, zone: ZoneInfo, source: str, *, unwrap: bool = True
) -> Event | RejectedRow:
    try:
        data = jsontext.loads(text, parse_float=Decimal, parse_int=_integer)
    except (json.JSONDecodeError, jsontext.DuplicateKeyError) as exc:
        reason = f"is not valid JSON: {jsontext.problem(exc, one_line=True)}"
        return RejectedRow(number, [("(line)", reason)], raw=text)
    except RecursionError:
        reason = "nests arrays or objects deeper than any event does"
        return RejectedRow(number, [("(line)", reason)], raw=text)
    if isinstance(data, dict):
        data.pop(REJECT_KEY, None)
        original = data.get(ORIGINAL_KEY)
        wrapped = list(data) == [ORIGINAL_KEY] and isinstance(original, str)
        if wrapped and unwrap:  # a line a rejects file wrapped: read it as it was
            return _read_line(str(original), number, zone, source, unwrap=False)

    try:
        return to_event(parse_canonical(data), zone, source=source)
    except InputError as exc:
        return RejectedRow(number, exc.errors, raw=text)


def _integer(text: str) -> int | Decimal:
    """Read a JSON integer; one of thousands of digits, which ``int`` refuses
    to read, becomes a ``Decimal`` for the bounds checks to reject."""
    return int(text) if len(text) <= _INT_DIGITS else Decimal(text)
