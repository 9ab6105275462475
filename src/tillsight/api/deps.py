"""Dependencies shared by the routes: the service and API-key scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from tillsight.live.service import LiveService

_bearer = HTTPBearer(auto_error=False, description="An API key: tsk_<id>_<secret>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_service(request: Request) -> LiveService:
    """The service the app was made with (async: FastAPI runs a sync
    dependency in a thread, a hop that costs more than this function)."""
    service: LiveService = request.app.state.service
    return service


Service = Annotated[LiveService, Depends(get_service)]


def require(scope: str) -> Callable[..., Awaitable[str]]:
    """A dependency that checks the request's API key has ``scope``."""

    async def check(
        service: Service,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header: Annotated[str | None, Security(_header)],
    ) -> str:
        token = bearer.credentials if bearer is not None else header
        # A key checked in the last few seconds needs no thread and no query.
        key_id = service.keys.require_cached(token, scope)
        if key_id is not None:
            return key_id
        return await run_in_threadpool(service.keys.require, token, scope)

    return check
