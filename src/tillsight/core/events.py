"""The canonical event: one till transaction, whatever POS it came from."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

_ZERO = Decimal(0)


class EventType(enum.StrEnum):
    """What happened at the till."""

    PURCHASE = "purchase"
    RETURN = "return"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a transaction.

    On a return, ``quantity`` and ``total`` are positive: they say how much was
    taken back and refunded.
    """

    sku: str
    quantity: Decimal
    unit_price: Decimal
    total: Decimal
    description: str = ""
    tags: frozenset[str] = frozenset()
    line_id: str | None = None


@dataclass(frozen=True, slots=True)
class Redemption:
    """A reward code or points that the till took as part of a payment.

    ``amount`` is the money it took off the basket; ``points`` is how many
    points were spent (zero for a code).
    """

    code: str | None = None
    points: int = 0
    amount: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Identity:
    """What the till knows about who the customer is; any field may be missing."""

    customer_id: str | None = None
    loyalty_id: str | None = None
    email: str | None = None
    phone: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.customer_id or self.loyalty_id or self.email or self.phone)


@dataclass(frozen=True, slots=True)
class Event:
    """A purchase, a return or a points adjustment, as the engine sees it.

    ``occurred_at`` is always timezone-aware: the edges read a time without an
    offset in the programme's zone before they build an event. ``total`` is the
    sum paid after discounts (a purchase) or refunded (a return), never negative.
    A return may name the sale it refunds (``refunds_event_id``) and the lines of
    that sale (``refunded_line_ids``). A purchase may carry ``redemptions``
    (reward codes, points as a tender); a return never spends anything. An
    adjustment is an operator's change of the points balance by
    ``points_delta``, with a ``note`` saying why.
    """

    event_id: str
    type: EventType
    occurred_at: datetime
    total: Decimal
    currency: str
    lines: tuple[Line, ...] = ()
    identity: Identity = field(default_factory=Identity)
    store: str | None = None
    channel: str | None = None
    source: str = "api"
    refunds_event_id: str | None = None
    refunded_line_ids: tuple[str, ...] = ()
    redemptions: tuple[Redemption, ...] = ()
    points_delta: int = 0
    note: str = ""

    @property
    def paid(self) -> Decimal:
        """What the customer paid in money: the total less vouchers and points."""
        # A tender only ever takes money off, whatever a source sent.
        taken = sum((max(r.amount, _ZERO) for r in self.redemptions), _ZERO)
        return max(self.total - taken, _ZERO)

    @property
    def is_guest(self) -> bool:
        return self.identity.is_empty

    @property
    def tags(self) -> frozenset[str]:
        """Every tag on any line of the event."""
        found: set[str] = set()
        for line in self.lines:
            found |= line.tags
        return frozenset(found)
