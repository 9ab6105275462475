"""Request ids and the one log line per request, as plain ASGI middleware."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("tillsight.api")

HEADER = "x-request-id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestContext:
    """Bind a request id (the caller's, when it is safe, or a new one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        started = time.perf_counter()
        status = 500
        app = self.app if not _holds_nul(scope) else _NUL_REFUSED

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await app(scope, receive, send_with_id)
            finally:
                log.info(
                    "request_handled",
                    method=scope["method"],
                    route=_route_template(scope),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )


def _holds_nul(scope: Scope) -> bool:
    """Whether the URL holds a NUL character, which no id of ours does and
    PostgreSQL refuses in text (it would answer 503, not 404)."""
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query


_NUL_REFUSED = JSONResponse(
    {
        "error": "InputError",
        "message": "invalid request",
        "errors": [{"field": "(url)", "reason": "holds a NUL character"}],
    },
    status_code=422,
)


def _route_template(scope: Scope) -> str:
    """The matched route's template, never the path itself.

    Paths carry customer ids, emails and reward codes (which work like cash),
    so the log names ``/v1/customers/{customer_id}`` instead.
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else "(no route)"


def _request_id(scope: Scope) -> str:
    headers: list[Any] = scope.get("headers", [])
    for name, value in headers:
        if name == HEADER.encode():
            text: str = value.decode("latin-1")
            if _SAFE_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex
