"""Small builders for events in tests: one line per event unless told."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tillsight.core.events import Event, EventType, Identity, Line


def at(text: str) -> datetime:
    """An aware datetime from ISO text with an offset."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, "test times carry an offset"
    return moment


def sale(
    event_id: str,
    when: str,
    amount: str,
    *,
    customer: str = "C1",
    tags: frozenset[str] = frozenset(),
    lines: tuple[str, ...] | None = None,
    store: str | None = "S1",
) -> Event:
    """A purchase; ``lines`` gives several line totals that add up to the total."""
    totals = [Decimal(value) for value in (lines or (amount,))]
    return Event(
        event_id=event_id,
        type=EventType.PURCHASE,
        occurred_at=at(when),
        total=sum(totals, Decimal(0)),
        currency="GBP",
        lines=tuple(
            Line(f"SKU{n}", Decimal(1), total, total, tags=tags, line_id=f"L{n}")
            for n, total in enumerate(totals)
        ),
        identity=Identity(customer_id=customer),
        store=store,
    )


def refund(
    event_id: str,
    when: str,
    amount: str,
    *,
    of: str | None = None,
    customer: str = "C1",
) -> Event:
    """A return of ``amount``, linked to sale ``of`` when given."""
    value = Decimal(amount)
    return Event(
        event_id=event_id,
        type=EventType.RETURN,
        occurred_at=at(when),
        total=value,
        currency="GBP",
        lines=(Line("SKU0", Decimal(1), value, value),),
        identity=Identity(customer_id=customer),
        store="S1",
        refunds_event_id=of,
    )


def day_2025(month_day: str) -> datetime:
    """10:00 UTC on a day of 2025 written ``MM-DD``."""
    return datetime.fromisoformat(f"2025-{month_day}T10:00:00+00:00")


def reward_row(
    keys: dict[str, str],
    name: str,
    customer: str,
    stage: str | None,
    where: str | None,
    campaign: str,
    issued: str,
    expires: str,
    redeemed: str | None,
    basket: str | None,
    *,
    kind: str = "surprise",
) -> dict[str, object]:
    """A ``rewards`` row of a hand-made history; names starting H are held out."""
    return {
        "issue_key": f"test:{name}",
        "customer_key": keys[customer],
        "kind": kind,
        "value": Decimal("5.00"),
        "offer": "",
        "campaign": campaign,
        "stage_at_issue": stage,
        "store": where,
        "source": "test",
        "held_out": name.startswith("H"),
        "issued_at": day_2025(issued),
        "expires_at": day_2025(expires),
        "redeemed_at": day_2025(redeemed) if redeemed else None,
        "redeemed_basket": Decimal(basket) if basket else None,
    }
