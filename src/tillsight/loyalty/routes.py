"""Rewards over HTTP: issue (admin), look up (read), redeem (a till's key).

A refused redemption answers 409 with its code (``VOUCHER_ALREADY_USED``,
``REWARD_EXPIRED``, ``REWARD_UNKNOWN``, ``REWARD_NOT_YOURS``,
``REWARD_WITHDRAWN``, ``REWARD_NOT_YET_ISSUED``) after the attempt has been
recorded.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from tillsight.api.deps import Service, require
from tillsight.loyalty.redemption import Attempt, redeem
from tillsight.loyalty.rewards import get_by_code, issue
from tillsight.store import queries

router = APIRouter(prefix="/v1/rewards", tags=["rewards"])


class IssueIn(BaseModel):
    """A reward to issue by hand."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(description="Customer key, POS id or loyalty id.")
    kind: str = Field(description="A reward kind of the programme.")
    campaign: str | None = None
    store: str | None = None


class RedeemIn(BaseModel):
    """Who presents the code, where, and on which sale."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str | None = None
    event_id: str | None = None
    store: str | None = None
    basket: Decimal | None = Field(default=None, ge=0)
    at: datetime | None = None


@router.post("", status_code=status.HTTP_201_CREATED)
def issue_reward(
    body: IssueIn,
    service: Service,
    _key: Annotated[str, Depends(require("admin"))],
) -> dict[str, Any]:
    """Issue a reward of a programme kind to a customer."""
    now = service.ingestor.clock()

    def work(conn: Any) -> dict[str, Any]:
        key = queries.find_customer_key(conn, body.customer_id)
        reward = issue(
            conn,
            service.programme,
            key,
            body.kind,
            at=now,
            source="api",
            campaign=body.campaign,
            store=body.store,
        )
        return reward.to_json()

    return service.store.write(work)


@router.get("/{code}")
def get_reward(
    code: str, service: Service, _key: Annotated[str, Depends(require("read"))]
) -> dict[str, Any]:
    """A reward by its code."""
    with service.store.read() as conn:
        return get_by_code(conn, code).to_json()


@router.post("/{code}/redeem")
def redeem_reward(
    code: str,
    body: RedeemIn,
    service: Service,
    _key: Annotated[str, Depends(require("ingest"))],
) -> dict[str, Any]:
    """Use a reward once; a second use, even at the same instant, gets 409."""
    now = service.ingestor.clock()

    def work(conn: Any) -> Any:
        key = None
        if body.customer_id is not None:
            key = queries.find_customer_key(conn, body.customer_id)
        attempt = Attempt(
            code=code,
            at=body.at or now,
            customer_key=key,
            event_id=body.event_id,
            store=body.store,
            basket=body.basket,
        )
        return redeem(conn, attempt, now)

    outcome = service.store.write(work)
    outcome.raise_if_refused()
    with service.store.read() as conn:
        return get_by_code(conn, code).to_json()
