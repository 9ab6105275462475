"""Reward codes presented on guest sales: a code names the customer it was for.

A till that takes a reward code without naming the customer has still sold to
someone: most likely the code's owner. The sale is attributed to the owner
before identity resolution, so the code goes through the usual redemption of a
sale (a second use, an expiry or a race is refused and recorded as for any
sale) and the sale earns the owner's points and counts toward their stage.

A code that no reward has, or whose owner has no POS or loyalty id to name, is
presented as it is: redeemed, or refused with its reason, and recorded in
``redemption_attempts`` with the sale. Either way the redemption is never
dropped, which would let the same voucher be used again at another till.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import structlog
from sqlalchemy import Connection, select

from tillsight.core.events import Event, EventType, Identity
from tillsight.loyalty import codes
from tillsight.loyalty.redemption import Attempt, redeem
from tillsight.loyalty.tables import rewards
from tillsight.store import schema

log = structlog.get_logger("tillsight.loyalty")


def attribute_guest_sales(
    conn: Connection, events: Sequence[Event], recorded_at: datetime
) -> list[Event]:
    """Give each guest sale that carries a reward code its owner's identity.

    Call it on new events, before their identities are resolved; the other
    events come back as they were. Codes of sales that cannot be attributed
    are redeemed (or refused) here, in the caller's transaction.
    """
    return [_attribute(conn, event, recorded_at) for event in events]


def _attribute(conn: Connection, event: Event, recorded_at: datetime) -> Event:
    presented = [r.code for r in event.redemptions if r.code]
    if not presented or not event.is_guest or event.type is not EventType.PURCHASE:
        return event

    owner = _owner_identity(conn, presented)
    if owner is not None:
        log.info("guest_sale_attributed", event_id=event.event_id)
        return replace(event, identity=owner)

    for index, redemption in enumerate(event.redemptions):
        if redemption.code:
            redeem(conn, _guest_attempt(event, index, redemption.code), recorded_at)
    return event


def _owner_identity(conn: Connection, presented: Sequence[str]) -> Identity | None:
    """The POS and loyalty ids of the first presented code's owner, if any."""
    wanted = [codes.normalise(code) for code in presented]
    found = dict(
        conn.execute(
            select(rewards.c.code, rewards.c.customer_key).where(
                rewards.c.code.in_(wanted)
            )
        ).all()
    )
    owner = next((found[code] for code in wanted if code in found), None)
    if owner is None:
        return None

    table = schema.identities
    ids = dict(
        conn.execute(
            select(table.c.kind, table.c.value).where(
                table.c.customer_key == owner,
                table.c.kind.in_(("customer", "loyalty")),
            )
        ).all()
    )
    identity = Identity(customer_id=ids.get("customer"), loyalty_id=ids.get("loyalty"))
    return None if identity.is_empty else identity


def _guest_attempt(event: Event, index: int, code: str) -> Attempt:
    # The key is the one a named customer's sale would use, so that a sale
    # presented again (or attributed later) records its attempt once.
    return Attempt(
        code=code,
        at=event.occurred_at,
        event_id=event.event_id,
        store=event.store,
        basket=event.total,
        channel="till",
        attempt_key=f"till:{event.event_id}#redeem#{index}",
    )
