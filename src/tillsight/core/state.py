"""A customer's state, as the engine keeps it between events.

Times are held as integer microseconds: ``at_us`` is the instant (UTC epoch),
``local_us`` the wall-clock reading in the programme's zone, used for day
windows so that a DST change never moves a boundary. The state serialises to
plain JSON-ready data so the store can keep it as a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

#: Orders a timer firing after every event at the same instant.
TIMER_SUFFIX = "\uffff"


@dataclass(slots=True)
class PurchaseRecord:
    """A purchase as far as the rules care: when, how much, how much refunded."""

    event_id: str
    at_us: int
    local_us: int
    total: Decimal
    refunded: Decimal = Decimal(0)
    counting: bool = True
    points: int = 0
    points_reversed: int = 0
    points_redeemed: int = 0
    points_refund_basis: Decimal = Decimal(0)
    #: Tagged-line points by line; None (not an empty dict) when there are
    #: none, which is most purchases: a million empty dicts cost 64 MB.
    line_points: dict[str, int] | None = None
    #: Bonus points that rules awarded for this purchase, taken back by a
    #: full refund.
    points_awarded: int = 0
    #: Money left to refund on each of the sale's line ids; None when the
    #: sale's lines carry no ids (returns can then only be bounded in total).
    lines_left: dict[str, Decimal] | None = None

    @property
    def net(self) -> Decimal:
        return self.total - self.refunded

    def extra_json(self) -> list[Any]:
        """The fields added after v1 snapshots, as a JSON-ready list."""
        return [
            self.points_redeemed,
            str(self.points_refund_basis),
            self.line_points or {},
            self.points_awarded,
            {key: str(left) for key, left in (self.lines_left or {}).items()},
        ]


@dataclass(slots=True)
class Lot:
    """Points credited by one event, spent first in first out, maybe expiring."""

    event_id: str
    at_us: int
    expires_us: int | None
    remaining: int


@dataclass(slots=True)
class ReturnRecord:
    event_id: str
    at_us: int
    local_us: int
    total: Decimal
    linked_event_id: str | None = None


@dataclass(slots=True)
class Timer:
    rule_id: str
    due_us: int
    cause_event_id: str


@dataclass(slots=True)
class CustomerState:
    """Everything the engine knows about one customer."""

    key: str
    stage: str | None = None
    segments: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    tier: str | None = None
    purchases: list[PurchaseRecord] = field(default_factory=list)
    returns: list[ReturnRecord] = field(default_factory=list)
    lifetime_net_spend: Decimal = Decimal(0)
    points_balance: int = 0
    lots: list[Lot] = field(default_factory=list)
    held: dict[str, bool] = field(default_factory=dict)
    fired_once: set[str] = field(default_factory=set)
    timers: dict[str, Timer] = field(default_factory=dict)
    position_us: int = -(2**62)
    position_id: str = ""
    #: How each points tender was answered when it was first presented, by
    #: ``"<event id>#<index>"``: True when the points were taken. The till
    #: acted on that answer, so a rebuild gives the same one.
    tenders: dict[str, bool] = field(default_factory=dict)

    @property
    def purchase_count(self) -> int:
        """Purchases that still count (not refunded in full)."""
        return sum(1 for purchase in self.purchases if purchase.counting)

    @property
    def last_counting_purchase(self) -> PurchaseRecord | None:
        for purchase in reversed(self.purchases):
            if purchase.counting:
                return purchase
        return None

    @property
    def first_purchase(self) -> PurchaseRecord | None:
        return self.purchases[0] if self.purchases else None

    def is_late(self, at_us: int, event_id: str) -> bool:
        """Tell whether an event sorts at or before something already applied."""
        return (at_us, event_id) <= (self.position_us, self.position_id)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the store's snapshot."""
        return {
            "v": 1,
            "key": self.key,
            "stage": self.stage,
            "segments": self.segments,
            "tiers": self.tiers,
            "tier": self.tier,
            "purchases": [
                [
                    p.event_id,
                    p.at_us,
                    p.local_us,
                    str(p.total),
                    str(p.refunded),
                    p.counting,
                    p.points,
                    p.points_reversed,
                    *p.extra_json(),
                ]
                for p in self.purchases
            ],
            "returns": [
                [r.event_id, r.at_us, r.local_us, str(r.total), r.linked_event_id]
                for r in self.returns
            ],
            "lifetime_net_spend": str(self.lifetime_net_spend),
            "points_balance": self.points_balance,
            "lots": [
                [t.event_id, t.at_us, t.expires_us, t.remaining] for t in self.lots
            ],
            "held": self.held,
            "fired_once": sorted(self.fired_once),
            "timers": [
                [t.rule_id, t.due_us, t.cause_event_id] for t in self.timers.values()
            ],
            "position": [self.position_us, self.position_id],
            "tenders": self.tenders,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CustomerState:
        """Rebuild a state from ``to_json`` output."""
        return cls(
            key=data["key"],
            stage=data["stage"],
            segments=dict(data["segments"]),
            tiers=dict(data["tiers"]),
            tier=data["tier"],
            purchases=[_purchase_from_json(p) for p in data["purchases"]],
            returns=[
                ReturnRecord(r[0], r[1], r[2], Decimal(r[3]), r[4])
                for r in data["returns"]
            ],
            lifetime_net_spend=Decimal(data["lifetime_net_spend"]),
            points_balance=data["points_balance"],
            lots=_lots_from_json(data),
            held=dict(data["held"]),
            fired_once=set(data["fired_once"]),
            timers={t[0]: Timer(t[0], t[1], t[2]) for t in data["timers"]},
            position_us=data["position"][0],
            position_id=data["position"][1],
            tenders=dict(data.get("tenders", {})),
        )


def _purchase_from_json(p: list[Any]) -> PurchaseRecord:
    """A purchase record; snapshots written before points lots lack the extras."""
    record = PurchaseRecord(
        p[0], p[1], p[2], Decimal(p[3]), Decimal(p[4]), p[5], p[6], p[7]
    )
    if len(p) > 8:
        record.points_redeemed = p[8]
        record.points_refund_basis = Decimal(p[9])
        record.line_points = dict(p[10]) or None
    if len(p) > 11:
        record.points_awarded = p[11]
        lines_left = {key: Decimal(left) for key, left in p[12].items()}
        record.lines_left = lines_left or None
    return record


def _lots_from_json(data: dict[str, Any]) -> list[Lot]:
    """Lots; an older snapshot's balance becomes one lot that never expires."""
    if "lots" in data:
        return [Lot(t[0], t[1], t[2], t[3]) for t in data["lots"]]
    balance = int(data["points_balance"])
    return [Lot("", -1, None, balance)] if balance > 0 else []
