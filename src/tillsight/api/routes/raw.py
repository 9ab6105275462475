"""``POST /v1/raw-events``: store the body and nothing else (benchmark baseline)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection

from tillsight.api.body import read_body
from tillsight.api.deps import Service, require
from tillsight.live.tables import raw_inbox

router = APIRouter(prefix="/v1", tags=["benchmark"])


@router.post("/raw-events", status_code=202)
async def post_raw(
    request: Request,
    service: Service,
    _key: Annotated[str, Depends(require("ingest"))],
) -> dict[str, int]:
    """Commit the raw body to ``raw_inbox``; the yardstick for ``/v1/events``."""
    settings = service.settings
    body = await read_body(request, settings.max_body_bytes, settings.max_body_bytes)
    now = service.ingestor.clock()

    def store(conn: Connection) -> int:
        statement = raw_inbox.insert().values(body=body.raw, received_at=now)
        return int(conn.execute(statement.returning(raw_inbox.c.id)).scalar_one())

    return {"id": await service.store.write_async(store)}
