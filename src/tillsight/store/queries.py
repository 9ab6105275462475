"""Reading profiles, timelines and counts back out of the store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from tillsight.errors import NotFoundError, brief_reason
from tillsight.store import schema


@dataclass(frozen=True, slots=True)
class Profile:
    key: str
    stage: str | None
    tier: str | None
    segments: list[str]
    purchase_count: int
    lifetime_net_spend: Decimal
    points_balance: int
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    identities: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str
    rule_id: str
    event_id: str
    subject: str
    detail: dict[str, Any] | None
    superseded: bool


@dataclass(slots=True)
class LedgerEntry:
    """One points entry as it stands: corrections folded into what they correct.

    ``delta`` is what the entry comes to now; ``first_delta`` is what it was
    first written as, which differs when a late event corrected it;
    ``last_id`` is the ledger row written last for it (what a new correction
    names).
    """

    at: datetime
    delta: int
    reason: str
    rule_id: str
    event_id: str
    first_delta: int
    last_id: int

    @property
    def corrected(self) -> bool:
        return self.delta != self.first_delta


def ledger(conn: Connection, key: str) -> list[LedgerEntry]:
    """A customer's points ledger in event time, each entry with its corrections
    added in, so the running balance follows the customer's history."""
    table = schema.points_ledger
    rows = conn.execute(
        select(
            table.c.id,
            table.c.at,
            table.c.delta,
            table.c.reason,
            table.c.rule_id,
            table.c.event_id,
        )
        .where(table.c.customer_key == key)
        .order_by(table.c.id)
    )
    entries: dict[tuple[Any, ...], LedgerEntry] = {}
    for row_id, at, delta, reason, rule_id, event_id in rows:
        found = entries.get((at, reason, rule_id, event_id))
        if found is not None:
            found.delta += delta
            found.last_id = row_id
            continue
        entries[(at, reason, rule_id, event_id)] = LedgerEntry(
            at, delta, reason, rule_id or "", event_id or "", delta, row_id
        )
    return sorted(entries.values(), key=lambda entry: entry.at)


def find_customer_key(conn: Connection, reference: str) -> str:
    """The key for a customer key, a POS customer id or a loyalty id.

    A profile merged into another answers with the one it was merged into.
    """
    customers = schema.customers
    if conn.execute(
        select(customers.c.key).where(customers.c.key == reference)
    ).first():
        return survivor(conn, reference)
    identities = schema.identities
    key = conn.execute(
        select(identities.c.customer_key).where(
            identities.c.kind.in_(("customer", "loyalty")),
            identities.c.value == reference,
        )
    ).scalar()
    if key is None:
        raise NotFoundError(
            "no customer with key, customer id or loyalty id "
            + brief_reason(repr(reference))
        )
    return survivor(conn, str(key))


def survivor(conn: Connection, key: str) -> str:
    """The profile that ``key`` was merged into, through any merges since."""
    customers = schema.customers
    for _ in range(100):  # a merge chain is short; this only stops a loop
        merged_into = conn.execute(
            select(customers.c.merged_into).where(customers.c.key == key)
        ).scalar_one_or_none()
        if merged_into is None:
            return key
        key = str(merged_into)
    return key


def profile(conn: Connection, key: str) -> Profile:
    """The profile columns of one customer."""
    customers = schema.customers
    row = conn.execute(select(customers).where(customers.c.key == key)).first()
    if row is None:
        raise NotFoundError(f"no customer with key {key!r}")
    identities = schema.identities
    pairs = conn.execute(
        select(identities.c.kind, identities.c.value)
        .where(
            identities.c.customer_key == key,
            identities.c.kind.in_(("customer", "loyalty")),
        )
        .order_by(identities.c.kind)
    ).all()
    return Profile(
        key=row.key,
        stage=row.stage,
        tier=row.tier,
        segments=orjson.loads(row.segments),
        purchase_count=row.purchase_count,
        lifetime_net_spend=Decimal(row.lifetime_net_spend),
        points_balance=row.points_balance,
        first_purchase_at=row.first_purchase_at,
        last_purchase_at=row.last_purchase_at,
        identities=[(kind, value) for kind, value in pairs],
    )


def timeline(
    conn: Connection, key: str, *, include_superseded: bool = False
) -> list[TimelineEntry]:
    """Every decision for a customer, oldest first: firings and changes from the
    timeline, points from the ledger and asked-for actions from the outbox."""
    entries = _decisions(conn, key, include_superseded)
    entries += _points(conn, key)
    entries += _actions(conn, key, include_superseded)
    return sorted(entries, key=lambda entry: (entry.at, _KIND_ORDER.get(entry.kind, 3)))


_KIND_ORDER = {
    "points": 0,
    "points_shortfall": 0,
    "return_mismatch": 1,
    "rule_fired": 1,
    "moment": 2,
    "segment_entered": 3,
    "segment_left": 3,
    "tier_entered": 3,
    "action": 4,
    "stage_changed": 5,
}


def _decisions(
    conn: Connection, key: str, include_superseded: bool
) -> list[TimelineEntry]:
    table = schema.timeline
    query = select(table).where(table.c.customer_key == key)
    if not include_superseded:
        query = query.where(~table.c.superseded)
    return [
        TimelineEntry(
            at=row.at,
            kind=row.kind,
            rule_id=row.rule_id,
            event_id=row.event_id,
            subject=row.subject,
            detail=orjson.loads(row.detail) if row.detail else None,
            superseded=row.superseded,
        )
        for row in conn.execute(query.order_by(table.c.at, table.c.id))
    ]


def _points(conn: Connection, key: str) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=entry.at,
            kind="points",
            rule_id=entry.rule_id,
            event_id=entry.event_id,
            subject=entry.reason,
            detail={"delta": entry.delta}
            | ({"first_delta": entry.first_delta} if entry.corrected else {}),
            superseded=False,
        )
        for entry in ledger(conn, key)
    ]


def _actions(
    conn: Connection, key: str, include_superseded: bool
) -> list[TimelineEntry]:
    outbox = schema.outbox
    query = select(outbox).where(outbox.c.customer_key == key)
    if not include_superseded:
        query = query.where(outbox.c.status != "superseded")
    return [
        TimelineEntry(
            at=row.at,
            kind="action",
            rule_id=row.rule_id or "",
            event_id=row.event_id or "",
            subject=f"{row.action}:{row.name}",
            detail={"status": row.status},
            superseded=row.status == "superseded",
        )
        for row in conn.execute(query.order_by(outbox.c.id))
    ]


def stage_counts(conn: Connection) -> dict[str, Counter[str]]:
    """How many customers are in each stage, segment and tier."""
    customers = schema.customers
    live = customers.c.merged_into.is_(None)
    counts: dict[str, Counter[str]] = {
        "stage": Counter(),
        "segment": Counter(),
        "tier": Counter(),
    }
    for stage, number in conn.execute(
        select(customers.c.stage, func.count()).where(live).group_by(customers.c.stage)
    ):
        counts["stage"][stage or "(no stage yet)"] = number
    for tier, number in conn.execute(
        select(customers.c.tier, func.count()).where(live).group_by(customers.c.tier)
    ):
        counts["tier"][tier or "(no tier)"] = number
    for (raw,) in conn.execute(select(customers.c.segments).where(live)):
        counts["segment"].update(orjson.loads(raw))
    return counts


def firings(conn: Connection) -> Iterator[tuple[str, str, datetime, str]]:
    """Every rule firing that still holds: customer, rule, time, event id."""
    table = schema.timeline
    rows = conn.execute(
        select(table.c.customer_key, table.c.rule_id, table.c.at, table.c.event_id)
        .where(table.c.kind == "rule_fired", ~table.c.superseded)
        .order_by(table.c.at, table.c.customer_key, table.c.rule_id)
        .execution_options(yield_per=5000)
    )
    for row in rows:
        yield row.customer_key, row.rule_id, row.at, row.event_id
