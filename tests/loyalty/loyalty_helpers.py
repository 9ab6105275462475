"""Builders for sales with lines, codes and points tenders, and ledger reads."""

from __future__ import annotations

from decimal import Decimal

from tillsight.core.decisions import Decision, Kind
from tillsight.core.events import Event, EventType, Identity, Line, Redemption

from factories import at


def basket(
    event_id: str,
    when: str,
    lines: dict[str, str],
    *,
    customer: str = "C1",
    points: int = 0,
    points_value: str = "0",
    code: str | None = None,
    code_value: str = "0",
    tags: dict[str, str] | None = None,
    store: str = "S1",
) -> Event:
    """A purchase of named lines, maybe paid in part with points or a code."""
    redemptions: list[Redemption] = []
    if points:
        redemptions.append(Redemption(points=points, amount=Decimal(points_value)))
    if code is not None:
        redemptions.append(Redemption(code=code, amount=Decimal(code_value)))
    built = tuple(
        Line(
            f"SKU-{line_id}",
            Decimal(1),
            Decimal(total),
            Decimal(total),
            tags=frozenset([tags[line_id]])
            if tags and line_id in tags
            else frozenset(),
            line_id=line_id,
        )
        for line_id, total in lines.items()
    )
    return Event(
        event_id=event_id,
        type=EventType.PURCHASE,
        occurred_at=at(when),
        total=sum((line.total for line in built), Decimal(0)),
        currency="GBP",
        lines=built,
        identity=Identity(customer_id=customer),
        store=store,
        redemptions=tuple(redemptions),
    )


def line_refund(
    event_id: str,
    when: str,
    of: str,
    lines: dict[str, str],
    *,
    customer: str = "C1",
    total: str | None = None,
) -> Event:
    """A return naming the lines of sale ``of`` that it takes back."""
    built = tuple(
        Line(f"SKU-{lid}", Decimal(1), Decimal(v), Decimal(v), line_id=lid)
        for lid, v in lines.items()
    )
    summed = sum((line.total for line in built), Decimal(0))
    return Event(
        event_id=event_id,
        type=EventType.RETURN,
        occurred_at=at(when),
        total=Decimal(total) if total is not None else summed,
        currency="GBP",
        lines=built,
        identity=Identity(customer_id=customer),
        store="S1",
        refunds_event_id=of,
        refunded_line_ids=tuple(lines),
    )


def adjustment(
    event_id: str, when: str, delta: int, note: str, *, customer: str = "C1"
) -> Event:
    """An operator's points adjustment."""
    return Event(
        event_id=event_id,
        type=EventType.ADJUSTMENT,
        occurred_at=at(when),
        total=Decimal(0),
        currency="GBP",
        identity=Identity(customer_id=customer),
        source="operator",
        points_delta=delta,
        note=note,
    )


def ledger(decisions: list[Decision]) -> list[tuple[str, str, int]]:
    """Points entries as (reason, event id, delta)."""
    return [
        (d.subject, d.event_id or "", int(d.detail["delta"]))
        for d in decisions
        if d.kind is Kind.POINTS and d.detail
    ]


def redemptions(decisions: list[Decision]) -> list[dict[str, object]]:
    return [d.detail for d in decisions if d.kind is Kind.REDEMPTION and d.detail]
