"""``GET /v1/kpis/redemption``: the redemption report as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tillsight.api.deps import Service, require
from tillsight.errors import InputError
from tillsight.kpi.redemption import redemption_report

router = APIRouter(prefix="/v1/kpis", tags=["kpis"])


@router.get("/redemption")
def get_redemption(
    service: Service,
    _key: Annotated[str, Depends(require("read"))],
    by: Annotated[
        str, Query(description="Comma-separated: stage, location, campaign, month.")
    ] = "",
    as_of: Annotated[
        datetime | None, Query(description="ISO time with offset; default: now.")
    ] = None,
) -> dict[str, Any]:
    """Redeemed / issued, to date and matured, by the groups asked for."""
    if as_of is not None and as_of.tzinfo is None:
        raise InputError([("as_of", f"{as_of.isoformat()} has no UTC offset")])
    programme = service.programme
    with service.store.read() as conn:
        report = redemption_report(
            conn,
            programme.zone,
            [stage.id for stage in programme.stages],
            by=by,
            as_of=as_of or service.ingestor.clock(),
        )
    return report.to_json()
