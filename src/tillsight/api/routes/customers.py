"""Reading back: a customer's profile and timeline, and rule firings."""

from __future__ import annotations

from itertools import islice
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tillsight.api.deps import Service, require
from tillsight.api.routes.events import ERRORS
from tillsight.api.schemas import CustomerOut, FiringOut
from tillsight.store import queries

router = APIRouter(prefix="/v1", tags=["customers"])


@router.get("/customers/{customer_id}", response_model=CustomerOut, responses=ERRORS)
def get_customer(
    customer_id: str,
    service: Service,
    _key: Annotated[str, Depends(require("read"))],
    superseded: bool = False,
) -> CustomerOut:
    """A customer by key, POS customer id or loyalty id (merged ids follow)."""
    with service.store.read() as conn:
        key = queries.find_customer_key(conn, customer_id)
        profile = queries.profile(conn, key)
        entries = queries.timeline(conn, key, include_superseded=superseded)
    return CustomerOut.of(profile, entries)


@router.get("/firings", response_model=list[FiringOut], responses=ERRORS)
def get_firings(
    service: Service,
    _key: Annotated[str, Depends(require("read"))],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[FiringOut]:
    """Rule firings that still hold, oldest first."""
    with service.store.read() as conn:
        rows = list(islice(queries.firings(conn), limit))
    return [
        FiringOut(customer_id=key, rule_id=rule, at=at, event_id=event_id)
        for key, rule, at, event_id in rows
    ]
