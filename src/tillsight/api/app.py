"""The FastAPI application: routes, error mapping, request ids, timers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tillsight.api import errors
from tillsight.api.middleware import RequestContext
from tillsight.api.routes import customers, events, raw, webhooks
from tillsight.ingest.canonical import CanonicalEvent
from tillsight.kpi import routes as kpi_routes
from tillsight.live.service import LiveService
from tillsight.loyalty import routes as reward_routes

DESCRIPTION = """\
Point-of-sale events in, customer lifecycle decisions out.

Send canonical events to `POST /v1/events` with an API key
(`Authorization: Bearer tsk_…`, made with `tillsight keys create`), or point
Square and Shopify webhooks at `/v1/webhooks/square` and `/v1/webhooks/shopify`.
Every answer comes after the decision is committed.
"""


def create_app(service: LiveService, *, close_on_shutdown: bool = False) -> FastAPI:
    """Build the app around a running service; timers run while it is up."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start_timers()
        try:
            yield
        finally:
            if close_on_shutdown:
                service.close()
            else:
                service.stop_timers()

    app = FastAPI(
        title="tillsight",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(RequestContext)
    errors.install(app)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.include_router(customers.router)
    app.include_router(reward_routes.router)
    app.include_router(kpi_routes.router)
    if service.settings.raw_endpoint:
        app.include_router(raw.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document plus the canonical event's schema."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schema = CanonicalEvent.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    found = document.setdefault("components", {}).setdefault("schemas", {})
    found.update(schema.pop("$defs", {}))
    found["CanonicalEvent"] = schema
    app.openapi_schema = document
    return document
