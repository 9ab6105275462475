"""Decode an import file one line at a time, so one bad line is one bad row.

A text stream that meets an undecodable byte stops the whole file. This
reader decodes each line on its own instead: a line that does not decode is
passed on with each bad byte as a lone surrogate (Python's ``surrogateescape``,
so writing it back with that handler gives the same bytes), and noted in
:attr:`TextLines.bad` with its number and the reason, for the reader to reject
the row that holds it.

A UTF-8 byte order mark (Excel's "CSV UTF-8") is dropped whatever the
mapping calls UTF-8. Encodings whose newline is not the byte ``\\n``
(UTF-16, UTF-32, EBCDIC) cannot be split into lines before decoding; they are
decoded as one stream, each bad byte marked as a lone surrogate so that the
line holding it is still noted on its own. UTF-16 and UTF-32 cannot write a
lone byte back, so there the kept line holds U+FFFD in its place. A file
that ``utf-16`` or ``utf-32`` cannot start on (no byte order mark) stops
with an ``InputError`` naming the file and the mapping's setting.

Close a :class:`TextLines` (``contextlib.closing``) inside the ``with`` of its
file: that stops its line iterator before the file closes.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from collections.abc import Generator, Iterable
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from tillsight.errors import InputError

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_CHUNK_BYTES = 1 << 16
_MARK = "tillsight-mark"
_is_marked = re.compile("[\udc00-\udcff]").search
_low_marks = re.compile("[\udc00-\udc7f]+")
_all_marks = re.compile("[\udc00-\udcff]+")
_stream_lines = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)").finditer


def _mark(exc: UnicodeError) -> tuple[str, int]:
    """Stand in for each undecodable byte with a lone surrogate, U+DC00 + byte.

    A decoder never gives a lone surrogate for good text, so the mark shows
    which line held the bad byte; from 0x80 up it is ``surrogateescape``'s.
    """
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), exc.end


codecs.register_error(_MARK, _mark)


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
        self.setting = encoding
        self.encoding = codec.name
        self.is_utf8 = codec.name in ("utf-8", "utf-8-sig")
        self.splits_by_byte = splits or self.is_utf8
        self.bad: deque[tuple[int, str]] = deque()
        self.current = ""
        self._reading: Generator[str, None, None] | None = None

    def close(self) -> None:
        """Stop reading, so that no line iterator outlives the file it reads."""
        if self._reading is not None:
            self._reading.close()
            self._reading = None

    def __iter__(self) -> Generator[str, None, None]:
        self._reading = self._lines() if self.splits_by_byte else self._stream()
        return self._reading

    def _lines(self) -> Generator[str, None, None]:
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

    def _stream(self) -> Generator[str, None, None]:
        """Decode as one stream; ends are ``\\n``, ``\\r\\n`` or a lone ``\\r``."""
        decoder = codecs.getincrementaldecoder(self.encoding)(_MARK)
        number, rest = 0, ""
        while True:
            chunk = self.file.read(_CHUNK_BYTES)
            text = rest + self._decode_chunk(decoder, chunk)
            if number == 0:
                text = text.removeprefix("\ufeff")  # utf-16-le keeps its mark
            end = 0
            for found in _stream_lines(text):
                if chunk and found.end() == len(text) and text.endswith("\r"):
                    break  # the next chunk may start with its "\n"
                end = found.end()
                number += 1
                yield self._checked(found.group(), number)
            rest = text[end:]
            if not chunk:
                break
        if rest:
            yield self._checked(rest, number + 1)

    def _decode_chunk(self, decoder: codecs.IncrementalDecoder, chunk: bytes) -> str:
        try:
            return decoder.decode(chunk, final=not chunk)
        except UnicodeError as exc:  # not a bad byte: UTF-16 or -32 without a BOM
            raise InputError([(self.name, self._unstartable(chunk))]) from exc

    def _unstartable(self, chunk: bytes) -> str:
        """Say why ``utf-16`` or ``utf-32`` cannot start on this file."""
        label = self.encoding.upper()
        reason = (
            f"the mapping says `encoding: {self.setting}`, but the file does not "
            f"start with a byte order mark, which {label} needs to tell its byte "
            "order"
        )
        if chunk.count(0) > len(chunk) // 4:
            return reason + (
                f"; if it is {label} without one, say `encoding: "
                f"{self.encoding}-le` (or `{self.encoding}-be`)"
            )
        return reason + (
            f"; it does not look like {label} (too few zero bytes): set "
            "`encoding:` to the one it was saved in, such as utf-8 or latin-1"
        )

    def _checked(self, line: str, number: int) -> str:
        """Note the line if a byte in it did not decode, and keep what can be."""
        found = _is_marked(line)
        if found is not None:
            start = found.start()
            run = _all_marks.match(line, start)
            assert run is not None
            bad = bytes(ord(mark) - 0xDC00 for mark in run.group())
            reason = _describe(self.encoding, bad, self.mapped)
            self.bad.append((number, reason))
            line = self._writable(line)
        self.current = line
        return line

    def _writable(self, line: str) -> str:
        """The line with each mark that a rejects file cannot write back replaced.

        ``surrogateescape`` writes back a byte from 0x80 up, but not in UTF-16
        or UTF-32, whose encoders refuse a lone byte.
        """
        lost = "\ufffd"
        try:
            lost.encode(self.encoding)
        except UnicodeEncodeError:
            lost = "?"
        if self.encoding.startswith(("utf-16", "utf-32")):
            return _all_marks.sub(lambda marks: lost * len(marks.group()), line)
        return _low_marks.sub(lambda marks: lost * len(marks.group()), line)

    def _reason(self, raw: bytes, exc: UnicodeDecodeError) -> str:
        bad = exc.object[exc.start : exc.start + 1]
        reason = _describe(self.encoding, bad, self.mapped)
        looks_utf16 = raw.startswith(_UTF16_BOMS) or raw.count(0) > len(raw) // 4
        if self.mapped and looks_utf16:
            reason += " (it looks like UTF-16: say `encoding: utf-16`)"
        return reason


def _describe(encoding: str, bad: bytes, mapped: bool) -> str:
    label = "UTF-8" if encoding in ("utf-8", "utf-8-sig") else encoding
    shown = " ".join(f"0x{byte:02x}" for byte in bad[:4])
    what = "byte" if len(bad) == 1 else "bytes"
    reason = f"not {label} text ({what} {shown}); save the file as {label}"
    return reason + " or set `encoding:` in the mapping" if mapped else reason
