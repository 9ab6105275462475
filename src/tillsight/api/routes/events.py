"""``POST /v1/events``: canonical events, one or a batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from tillsight.api.body import read_body
from tillsight.api.deps import Service, require
from tillsight.api.schemas import ErrorOut, IngestOut
from tillsight.live.quarantine import Origin

router = APIRouter(prefix="/v1", tags=["events"])

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/CanonicalEvent"},
                        {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/CanonicalEvent"},
                        },
                    ]
                }
            }
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (401, "No API key, or an unknown one"),
        (403, "The key lacks the scope"),
        (413, "The body is over the cap; it is kept in the quarantine"),
        (422, "Bad input: each field and its reason; kept in the quarantine"),
    )
}


@router.post(
    "/events",
    status_code=202,
    response_model=IngestOut,
    responses={**ERRORS, 200: {"model": IngestOut, "description": "Duplicate"}},
    openapi_extra=_BODY,
)
async def post_events(
    request: Request,
    response: Response,
    service: Service,
    _key: Annotated[str, Depends(require("ingest"))],
) -> IngestOut:
    """Ingest one canonical event or a list of them; answer once committed.

    202 with the decisions when something new was stored, 200 when every
    event was already known (marked ``duplicate``).
    """
    settings = service.settings
    body = await read_body(
        request, settings.max_body_bytes, settings.quarantine_max_bytes
    )
    if body.is_over_cap:
        await run_in_threadpool(
            service.receiver.too_large, Origin("api"), body.raw, body.size
        )
    result = await service.receiver.canonical_async(body.raw)
    answer = IngestOut.of(result)
    response.status_code = 202 if answer.status == "accepted" else 200
    return answer
