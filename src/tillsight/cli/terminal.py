"""The console every command writes to, safe from what the data holds.

Event ids, SKUs, reasons and request bodies come from outside. A terminal acts
on control characters in them (an escape sequence can clear the screen, move
the cursor or retitle the window), and bidirectional overrides make text read
in another order than it is stored. The console writes each such character as
a visible ``\\x1b`` or ``\\u202e`` escape instead; its own colours are untouched.

Rich markup is off unless a call asks for it (``markup=True``), so a ``[/]`` in
the data is printed, not read as a tag; such a call escapes what it interpolates.
Emoji codes are off too: ``:thumbs_up:`` in a description stays as it is.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

_UNSAFE = [
    *range(0x00, 0x09),
    *range(0x0B, 0x20),
    *range(0x7F, 0xA0),
    *range(0x2028, 0x202F),  # line and paragraph separators, then bidi
    *range(0x2066, 0x206A),
    *range(0xD800, 0xE000),  # lone surrogates: bytes of a name that is not text
]
_ESCAPES = {code: ascii(chr(code))[1:-1] for code in _UNSAFE}


def shown(text: str) -> str:
    """Give ``text`` with its control characters written as escapes."""
    return text.translate(_ESCAPES)


class SafeConsole(Console):
    """A Rich console that escapes control characters in the text it is given."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(shown(text), **options)


def make_console(*, stderr: bool = False) -> Console:
    """The console for a command's output (or its errors, with ``stderr``)."""
    return SafeConsole(stderr=stderr, markup=False, emoji=False)
