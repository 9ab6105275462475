"""Decode an import file one line at a time, so one bad line is one bad row.

A text stream that meets an undecodable byte stops the whole file. This
reader decodes each line on its own instead: a line that does not decode is
passed on with each bad byte as a lone surrogate (Python's ``surrogateescape``,
so writing it back with that handler gives the same bytes), and noted in
:attr:`TextLines.bad` with its number and the reason, for the reader to reject
the row that holds it.

A UTF-8 byte order mark (Excel's "CSV UTF-8") is dropped whatever the
mapping calls UTF-8. Encodings whose newline is not the byte ``\\n``
(UTF-16, UTF-32) cannot be split into lines before decoding; they are read
as one stream, and a bad byte there stops the file with an ``InputError``
naming the line.
"""

from __future__ import annotations

import codecs
import io
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from tillsight.errors import InputError

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def open_binary(path: str | Path) -> BinaryIO:
    """Open an import file for :class:`TextLines`, or say why it cannot be read."""
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise InputError([(str(path), f"cannot be read: {exc.strerror}")]) from exc


class TextLines:
    """Iterate the decoded lines of a binary file, noting lines that fail."""

    def __init__(
        self, file: BinaryIO, encoding: str, name: str, *, mapped: bool = True
    ) -> None:
        try:
            codec = codecs.lookup(encoding)
            splits = "\n,\r".encode(codec.name) == b"\n,\r"
        except LookupError as exc:
            raise InputError(
                [(name, f"encoding {encoding!r} is unknown; try utf-8 or latin-1")]
            ) from exc
        self.file = file
        self.name = name
        self.mapped = mapped  # a mapping says the encoding, so a reason may say so
        self.encoding = codec.name
        self.is_utf8 = codec.name in ("utf-8", "utf-8-sig")
        self.splits_by_byte = splits or self.is_utf8
        self.bad: deque[tuple[int, str]] = deque()
        self.current = ""

    def __iter__(self) -> Iterator[str]:
        return self._lines() if self.splits_by_byte else self._stream()

    def _lines(self) -> Iterator[str]:
        """Decode line by line; ends are ``\\n``, ``\\r\\n`` or a lone ``\\r``."""
        encoding = "utf-8" if self.is_utf8 else self.encoding
        first = self.file.readline()
        if self.is_utf8:
            first = first.removeprefix(codecs.BOM_UTF8)
        raws: Iterable[bytes] = chain((first,) if first else (), self.file)
        if first.rstrip(b"\r\n").find(b"\r") != -1:  # classic Mac: lone \r ends
            raws = (part for raw in raws for part in raw.splitlines(keepends=True))
        for number, raw in enumerate(raws, start=1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                text = self._decode(raw, number, encoding)
            self.current = text
            yield text

    def _decode(self, raw: bytes, number: int, encoding: str) -> str:
        """Decode a line, noting it as bad if it does not decode."""
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            self.bad.append((number, self._reason(raw, exc)))
            text = raw.decode(encoding, "surrogateescape")  # a rejects file
            # written with the same error handler gets the bytes back as they were
        self.current = text
        return text

    def _stream(self) -> Iterator[str]:
        text = io.TextIOWrapper(self.file, encoding=self.encoding, newline="")
        number = 1
        try:
            for line in text:
                self.current = line
                yield line
                number += 1
        except UnicodeDecodeError as exc:
            reason = _describe(self.encoding, exc, self.mapped)
            raise InputError([(self.name, f"line {number}: {reason}")]) from exc
        finally:
            text.detach()

    def _reason(self, raw: bytes, exc: UnicodeDecodeError) -> str:
        reason = _describe(self.encoding, exc, self.mapped)
        looks_utf16 = raw.startswith(_UTF16_BOMS) or raw.count(0) > len(raw) // 4
        if self.mapped and looks_utf16:
            reason += " (it looks like UTF-16: say `encoding: utf-16`)"
        return reason


def _describe(encoding: str, exc: UnicodeDecodeError, mapped: bool) -> str:
    label = "UTF-8" if encoding in ("utf-8", "utf-8-sig") else encoding
    byte = exc.object[exc.start]
    reason = f"not {label} text (byte 0x{byte:02x}); save the file as {label}"
    return reason + " or set `encoding:` in the mapping" if mapped else reason
