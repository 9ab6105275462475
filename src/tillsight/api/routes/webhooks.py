"""POS webhooks: Square and Shopify, authenticated by their signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool

from tillsight.api.body import Body, read_body
from tillsight.api.deps import Service
from tillsight.api.routes.events import ERRORS
from tillsight.api.schemas import IngestOut
from tillsight.errors import BodyTooLargeError
from tillsight.live.quarantine import Origin
from tillsight.live.service import LiveService

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post("/square", response_model=IngestOut, responses=ERRORS)
async def square(
    request: Request,
    service: Service,
    signature: Annotated[
        str | None, Header(alias="x-square-hmacsha256-signature")
    ] = None,
) -> IngestOut:
    """Take a Square webhook (payments, refunds, orders).

    The signature covers the notification URL and the raw body. A delivery
    with content that cannot be read is kept in the quarantine and answered
    200 ``quarantined``, so that Square stops resending it.
    """
    body = await _body(request, service)
    url = str(request.url)
    receiver = service.receiver
    await run_in_threadpool(receiver.verify_square, body.raw, signature, url)
    if body.is_over_cap:
        await run_in_threadpool(
            receiver.too_large, Origin("square"), body.raw, body.size
        )
    return IngestOut.of(await run_in_threadpool(receiver.square_verified, body.raw))


@router.post("/shopify", response_model=IngestOut, responses=ERRORS)
async def shopify(
    request: Request,
    service: Service,
    signature: Annotated[str | None, Header(alias="X-Shopify-Hmac-Sha256")] = None,
    topic: Annotated[str | None, Header(alias="X-Shopify-Topic")] = None,
    webhook_id: Annotated[str | None, Header(alias="X-Shopify-Webhook-Id")] = None,
) -> IngestOut:
    """Take a Shopify webhook (orders/create|paid|updated, refunds/create)."""
    body = await _body(request, service)
    receiver = service.receiver
    if body.is_over_cap:
        await run_in_threadpool(receiver.verify_shopify, body.raw, signature)
        origin = Origin("shopify", topic, webhook_id)
        await run_in_threadpool(receiver.too_large, origin, body.raw, body.size)
    result = await run_in_threadpool(
        receiver.shopify, body.raw, signature, topic, webhook_id
    )
    return IngestOut.of(result)


async def _body(request: Request, service: LiveService) -> Body:
    settings = service.settings
    body = await read_body(
        request, settings.max_body_bytes, settings.quarantine_max_bytes
    )
    if body.is_truncated:
        # Too big to keep whole, so its signature cannot be checked either.
        problem = ("(body)", f"is over {settings.quarantine_max_bytes} bytes")
        raise BodyTooLargeError("too_large", [problem], None)
    return body
