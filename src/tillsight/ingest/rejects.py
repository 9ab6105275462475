"""Rejected rows, the file they are written to, and the tally of an import.

A rejects file can be fixed by hand and imported again as it is: a CSV puts
``_line``, ``_field`` and ``_reason`` first (the CSV reader ignores them, as it
ignores any column the mapping does not name) and the original columns after,
so a row with more fields than its header leaves them in line; rejecting a
rejects file again replaces those three rather than adding three more. A JSON
Lines file keeps each original object and adds a ``_rejected`` key (which the
JSON Lines reader drops); rejecting it again replaces that key, and a line that
was no JSON object is wrapped once, as ``_original``.

A rejected row keeps its bytes: the file is written in the encoding the input
was read in, and bytes that were not text in it are written back as they were.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tillsight.core.events import Event, EventType
from tillsight.errors import RowError

REJECT_COLUMNS = ("_line", "_field", "_reason")
REJECT_KEY = "_rejected"
ORIGINAL_KEY = "_original"  # holds a rejected line that was no JSON object


class RejectedRow(RowError):
    """A row error that keeps the row as it was read, to write it back out.

    ``raw`` is the row's fields (CSV, with ``header``) or its text (JSON Lines).
    ``text`` is a CSV row's line as it was read, when its fields could not be
    told apart (a stray quote); the rejects file then keeps that line as it is.
    ``transaction_id`` groups the rows of one rejected transaction.
    """

    def __init__(
        self,
        line: int,
        errors: list[tuple[str, str]],
        *,
        raw: Sequence[str] | str,
        header: Sequence[str] | None = None,
        transaction_id: str | None = None,
    ) -> None:
        super().__init__(line, errors)
        self.raw = raw
        self.header = header
        self.transaction_id = transaction_id
        self.text: str | None = None


class RejectsWriter:
    """Write rejected rows to ``path``; the file is made only if a row comes.

    The format follows the first row: CSV if it carries a header, else JSON
    Lines. Use as a context manager.
    """

    def __init__(
        self, path: str | Path, encoding: str = "utf-8", delimiter: str = ","
    ) -> None:
        """``encoding`` and ``delimiter`` are the input's, so that the file can
        be replayed with the same mapping."""
        self.path = Path(path)
        self.encoding = encoding
        self.delimiter = delimiter
        self.written = 0
        self._file: IO[str] | None = None
        self._csv: Any = None
        self._kept: list[int] = []

    def __enter__(self) -> RejectsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the file, if one was opened."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, row: RowError) -> None:
        """Append one rejected row with its line, field and reason."""
        fields = "; ".join(field for field, _ in row.errors)
        reasons = "; ".join(reason for _, reason in row.errors)
        if isinstance(row, RejectedRow) and row.header is not None:
            self._write_csv(row, row.header, [str(row.line), fields, reasons])
        else:
            self._write_jsonl(row)
        self.written += 1

    def _write_csv(
        self, row: RejectedRow, header: Sequence[str], extra: list[str]
    ) -> None:
        if self._file is None:
            self._file = self._open(newline="")
            self._csv = csv.writer(self._file, delimiter=self.delimiter)
            self._kept = [
                i for i, name in enumerate(header) if name not in REJECT_COLUMNS
            ]
            self._csv.writerow([*REJECT_COLUMNS, *(header[i] for i in self._kept)])
        notes = [self._writable(text) for text in extra]
        if row.text is not None:  # the line as it was, stray quote and all
            text = row.text
            if tuple(header[: len(REJECT_COLUMNS)]) == REJECT_COLUMNS:
                text = self._without_notes(text)
            self._file.write(f"{self._line(notes)}{self.delimiter}{text}\r\n")
            return
        raw = row.raw
        # A short row stays short (no empty fields added), so that it is
        # refused again until someone fixes it.
        values = [raw[i] for i in self._kept if i < len(raw)]
        self._csv.writerow([*notes, *values, *raw[len(header) :]])

    def _line(self, fields: list[str]) -> str:
        """Fields as one CSV line of this file, without its line end."""
        line = io.StringIO()
        csv.writer(line, delimiter=self.delimiter, lineterminator="").writerow(fields)
        return line.getvalue()

    def _without_notes(self, text: str) -> str:
        """A rejects file's line without the notes an earlier round put first.

        The notes are skipped field by field rather than read with the csv
        module, which refuses the whole line when a later field is over its
        size limit: the very row that was rejected for it.
        """
        at = 0
        for _ in REJECT_COLUMNS:
            end = _field_end(text, at, self.delimiter)
            if end is None or not text.startswith(self.delimiter, end):
                return text
            at = end + len(self.delimiter)
        return text[at:]

    def _write_jsonl(self, row: RowError) -> None:
        if self._file is None:
            self._file = self._open()
        errors = [{"field": f, "reason": r} for f, r in row.errors]
        found = {"line": row.line} if row.line > 0 else {}  # 0: not from a file line
        note = self._writable(
            json.dumps({**found, "errors": errors}, ensure_ascii=False)
        )
        raw = row.raw if isinstance(row, RejectedRow) else ""
        self._file.write(_with_note(str(raw), note) + "\n")

    def _open(self, newline: str | None = None) -> IO[str]:
        return self.path.open(
            "w", encoding=self.encoding, errors="surrogateescape", newline=newline
        )

    def _writable(self, text: str) -> str:
        """Our own note as text the file's encoding can hold (escapes if not)."""
        try:
            text.encode(self.encoding)
        except UnicodeEncodeError:
            escaped = text.encode("ascii", "backslashreplace")
            return escaped.decode("ascii")
        return text


def _field_end(text: str, start: int, delimiter: str) -> int | None:
    """Where the CSV field that begins at ``start`` ends, if it is well formed."""
    if not text.startswith('"', start):
        end = text.find(delimiter, start)
        return len(text) if end == -1 else end
    at = start + 1
    while True:
        close = text.find('"', at)
        if close == -1:
            return None
        if not text.startswith('"', close + 1):
            return close + 1
        at = close + 2  # a doubled quote stands for one


_DECODER = json.JSONDecoder()
_NOTE_HEAD = f'{{"{REJECT_KEY}": '


def _with_note(raw: str, note: str) -> str:
    """Put the note into the original object's text without re-encoding it.

    An earlier note (the line came from a rejects file) is replaced, and text
    that an earlier round wrapped as ``_original`` is unwrapped first.
    """
    text = _unwrapped(_without_note(raw.strip()))
    head = _NOTE_HEAD + note
    if text.startswith("{") and text.endswith("}"):
        rest = text[1:].lstrip()
        return head + ("}" if rest.startswith("}") else ", " + rest)
    return head + f", {json.dumps(ORIGINAL_KEY)}: {json.dumps(text)}}}"


def _without_note(text: str) -> str:
    """The text without the note this writer puts first, if it has one."""
    if not text.startswith(_NOTE_HEAD):
        return text
    try:
        _, end = _DECODER.raw_decode(text, len(_NOTE_HEAD))
    except ValueError:
        return text
    rest = text[end:].lstrip()
    return "{" + (rest[1:].lstrip() if rest.startswith(",") else rest)


def _unwrapped(text: str) -> str:
    """The original text, if ``text`` is only an ``_original`` wrapper."""
    if not text.startswith(f'{{"{ORIGINAL_KEY}"'):
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict) and list(data) == [ORIGINAL_KEY]:
        original = data[ORIGINAL_KEY]
        return original if isinstance(original, str) else text
    return text


@dataclass(slots=True)
class ImportSummary:
    """What an import read, kept and rejected."""

    rows_read: int = 0
    transactions: int = 0
    purchases: int = 0
    returns: int = 0
    guest_transactions: int = 0
    rejected_rows: int = 0
    rejected_transactions: int = 0
    _last_rejected: str | None = field(default=None, repr=False, compare=False)

    def add(self, item: Event | RowError, *, rows: int | None = None) -> None:
        """Count an event (``rows`` defaults to its number of lines) or a reject."""
        if isinstance(item, Event):
            self._add_event(item, max(1, len(item.lines)) if rows is None else rows)
        else:
            self._add_reject(item)

    def _add_event(self, event: Event, rows: int) -> None:
        self._last_rejected = None
        self.rows_read += rows
        self.transactions += 1
        if event.type is EventType.PURCHASE:
            self.purchases += 1
        else:
            self.returns += 1
        if event.is_guest:
            self.guest_transactions += 1

    def _add_reject(self, row: RowError) -> None:
        self.rows_read += 1
        self.rejected_rows += 1
        key = row.transaction_id if isinstance(row, RejectedRow) else None
        if key is None or key != self._last_rejected:
            self.rejected_transactions += 1
        self._last_rejected = key
