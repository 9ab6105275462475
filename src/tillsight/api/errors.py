"""The one place where tillsight errors become HTTP statuses.

Routes raise tillsight errors and never ``HTTPException``; this handler picks
the status from the error's class (most specific first) and answers with the
message, the per-field errors of an ``InputError`` and the request id.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tillsight.errors import (
    AuthError,
    BodyTooLargeError,
    ConfigError,
    ConflictError,
    FetchFailedError,
    InputError,
    NotFoundError,
    QuarantinedError,
    RateLimitedError,
    RemoteError,
    ScopeError,
    StoreError,
    TillsightError,
)

log = structlog.get_logger("tillsight.api")

#: Error classes and their statuses; the first class that matches wins.
STATUSES: tuple[tuple[type[TillsightError], int], ...] = (
    (BodyTooLargeError, 413),
    (FetchFailedError, 503),
    (InputError, 422),
    (ScopeError, 403),
    (AuthError, 401),
    (NotFoundError, 404),
    (ConflictError, 409),
    (RateLimitedError, 503),
    (RemoteError, 502),
    (ConfigError, 503),
    (StoreError, 503),
)


def status_for(exc: TillsightError) -> int:
    """The HTTP status for a tillsight error."""
    for kind, status in STATUSES:
        if isinstance(exc, kind):
            return status
    return 500


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(TillsightError, _tillsight_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


async def _tillsight_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TillsightError)
    status = status_for(exc)
    body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, StoreError):
        # The driver's words and the statement are for the log, not callers.
        body["message"] = (
            "the store could not complete the request; the service log has "
            "the details under this response's x-request-id"
        )
    if isinstance(exc, InputError):
        body["errors"] = [{"field": f, "reason": r} for f, r in exc.errors]
    if isinstance(exc, ConflictError):
        body["code"] = exc.code
    if isinstance(exc, QuarantinedError):
        body["reason"] = exc.reason
        body["quarantine_id"] = exc.quarantine_id
    if isinstance(exc, AuthError):
        # The message names the check that failed, never the body or the key.
        log.warning("request_refused", route=_route(request), why=str(exc))
    elif status >= 500:
        log.error("request_failed", error=type(exc).__name__, why=str(exc))
    return JSONResponse(body, status_code=status)


def _route(request: Request) -> str:
    template = getattr(request.scope.get("route"), "path", None)
    return template if isinstance(template, str) else "(no route)"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(part) for part in error["loc"]),
            "reason": error["msg"],
        }
        for error in exc.errors()
    ]
    body = {"error": "InputError", "message": "invalid request", "errors": errors}
    return JSONResponse(body, status_code=422)
