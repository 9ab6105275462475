"""Response bodies, as the OpenAPI document shows them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from tillsight.core.decisions import Decision
from tillsight.core.timeconv import from_instant_us
from tillsight.live.ingest import Receipt
from tillsight.live.receiver import Result
from tillsight.store.queries import Profile, TimelineEntry


class DecisionOut(BaseModel):
    """One decision: what changed, by which rule, because of which event."""

    kind: str
    rule_id: str | None
    subject: str
    at: datetime
    event_id: str | None
    detail: dict[str, Any] | None = None

    @classmethod
    def of(cls, decision: Decision) -> DecisionOut:
        return cls(
            kind=decision.kind.value,
            rule_id=decision.rule_id,
            subject=decision.subject,
            at=from_instant_us(decision.at_us),
            event_id=decision.event_id,
            detail=decision.detail,
        )


class ReceiptOut(BaseModel):
    """What became of one event."""

    event_id: str
    status: str
    customer_id: str | None
    stage: str | None
    decisions: list[DecisionOut]
    merged: list[str]

    @classmethod
    def of(cls, receipt: Receipt) -> ReceiptOut:
        return cls(
            event_id=receipt.event_id,
            status=receipt.status,
            customer_id=receipt.customer_key,
            stage=receipt.stage,
            decisions=[DecisionOut.of(d) for d in receipt.decisions],
            merged=receipt.merged,
        )


class IngestOut(BaseModel):
    """The answer to an event, a batch or a webhook delivery."""

    status: str
    events: list[ReceiptOut]
    ignored_reason: str | None = None
    reason: str | None = None
    quarantine_id: int | None = None
    errors: list[dict[str, str]] | None = None

    @classmethod
    def of(cls, result: Result) -> IngestOut:
        kept = result.quarantined
        if kept is not None:
            return cls(
                status="quarantined",
                events=[],
                reason=kept.reason,
                quarantine_id=kept.quarantine_id,
                errors=[{"field": f, "reason": r} for f, r in kept.errors],
            )
        receipts = [ReceiptOut.of(r) for r in result.receipts]
        if not receipts:
            status = "ignored"
        elif all(r.is_duplicate for r in result.receipts):
            status = "duplicate"
        else:
            status = "accepted"
        return cls(status=status, events=receipts, ignored_reason=result.ignored_reason)


class TimelineOut(BaseModel):
    """One entry of a customer's timeline."""

    at: datetime
    kind: str
    rule_id: str
    event_id: str
    subject: str
    detail: dict[str, Any] | None
    superseded: bool

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineOut:
        return cls(
            at=entry.at,
            kind=entry.kind,
            rule_id=entry.rule_id,
            event_id=entry.event_id,
            subject=entry.subject,
            detail=entry.detail,
            superseded=entry.superseded,
        )


class CustomerOut(BaseModel):
    """A customer's profile (no personal data) and timeline."""

    id: str
    stage: str | None
    tier: str | None
    segments: list[str]
    purchase_count: int
    lifetime_net_spend: Decimal
    points_balance: int
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    identities: list[tuple[str, str]]
    timeline: list[TimelineOut]

    @classmethod
    def of(cls, profile: Profile, entries: list[TimelineEntry]) -> CustomerOut:
        return cls(
            id=profile.key,
            stage=profile.stage,
            tier=profile.tier,
            segments=profile.segments,
            purchase_count=profile.purchase_count,
            lifetime_net_spend=_money(profile.lifetime_net_spend),
            points_balance=profile.points_balance,
            first_purchase_at=profile.first_purchase_at,
            last_purchase_at=profile.last_purchase_at,
            identities=profile.identities,
            timeline=[TimelineOut.of(e) for e in entries],
        )


def _money(value: Decimal) -> Decimal:
    """The same digits from either store (PostgreSQL pads to six places)."""
    cents = value.quantize(Decimal("0.01"))
    return cents if cents == value else value.normalize()


class FiringOut(BaseModel):
    """A rule firing that still holds."""

    customer_id: str
    rule_id: str
    at: datetime
    event_id: str


class ErrorOut(BaseModel):
    """An error: its class, message and, for bad input, each field's reason."""

    error: str
    message: str
    errors: list[dict[str, str]] | None = None
    reason: str | None = None
    quarantine_id: int | None = None
