"""Reading a request body with a cap, before anything parses it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request


@dataclass(frozen=True, slots=True)
class Body:
    """The raw bytes read, the size the sender announced or sent, and the cap."""

    raw: bytes
    size: int
    is_over_cap: bool
    is_truncated: bool


async def read_body(request: Request, cap: int, keep_up_to: int) -> Body:
    """Read at most ``keep_up_to`` bytes; say whether the body is over ``cap``.

    Over-sized bodies are still read up to ``keep_up_to`` so the quarantine can
    keep them; past that, reading stops and the body is marked truncated.
    """
    announced = _content_length(request)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > keep_up_to:
            kept = keep_up_to - (size - len(chunk))
            chunks.append(chunk[:kept])
            size = max(size, announced or 0)
            return Body(b"".join(chunks), size, True, True)
        chunks.append(chunk)
    raw = b"".join(chunks)
    return Body(raw, size, size > cap, False)


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None
