"""The Reward Redemption Rate: redeemed / issued, sliced the way marketers ask.

Definitions, so that the CLI, the API and the HTML page agree:

- *issued* counts rewards that reached a customer: held-out rows (the control
  group) are not issued. *redeemed* counts those of them with a redemption.
- *to date* takes every reward issued up to ``as_of``; *matured* only those
  whose expiry has passed by ``as_of``, so that fresh rewards, which have not
  had their chance yet, do not pull the rate down.
- *median days to redeem* is over redeemed rewards, from issue to redemption.
- *revenue* is the sum of the baskets that redeemed a reward.
- Groups: ``stage`` (the customer's stage at issue), ``location`` (the store
  the reward was issued for), ``campaign`` and ``month`` (of issue, in the
  programme's zone).
- Control groups: per campaign, the share of rewarded and of held-out
  customers who bought again between issue and the reward's expiry.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, exists, func, select

from tillsight.errors import InputError
from tillsight.loyalty.tables import rewards
from tillsight.store import schema

DIMENSIONS = ("stage", "location", "campaign", "month")
NONE_LABEL = "(none)"
_RATE = Decimal("0.0001")
_DAYS = Decimal("0.1")
_CENTS = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class RewardFact:
    """One issued or held-out reward, as the report needs it."""

    stage: str
    location: str
    campaign: str
    month: str
    held_out: bool
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    basket: Decimal | None
    bought_again: bool

    def value(self, dimension: str) -> str:
        return str(getattr(self, dimension))


@dataclass(slots=True)
class RateRow:
    """Figures for one group (or for everything, with an empty ``group``)."""

    group: dict[str, str]
    issued: int = 0
    redeemed: int = 0
    matured_issued: int = 0
    matured_redeemed: int = 0
    revenue: Decimal = Decimal(0)
    days: list[Decimal] = field(default_factory=list)

    @property
    def rate(self) -> Decimal | None:
        return _ratio(self.redeemed, self.issued)

    @property
    def matured_rate(self) -> Decimal | None:
        return _ratio(self.matured_redeemed, self.matured_issued)

    @property
    def median_days(self) -> Decimal | None:
        if not self.days:
            return None
        return Decimal(statistics.median(self.days)).quantize(_DAYS)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON; rates and money as strings so that no digit is lost."""
        return {
            **self.group,
            "issued": self.issued,
            "redeemed": self.redeemed,
            "rate": _text(self.rate),
            "matured_issued": self.matured_issued,
            "matured_redeemed": self.matured_redeemed,
            "matured_rate": _text(self.matured_rate),
            "median_days_to_redeem": _text(self.median_days),
            "revenue": str(self.revenue.quantize(_CENTS)),
        }


@dataclass(slots=True)
class ControlRow:
    """A campaign's rewarded and held-out customers and who bought again."""

    campaign: str
    rewarded: int = 0
    rewarded_bought_again: int = 0
    held_out: int = 0
    held_out_bought_again: int = 0

    @property
    def rewarded_rate(self) -> Decimal | None:
        return _ratio(self.rewarded_bought_again, self.rewarded)

    @property
    def held_out_rate(self) -> Decimal | None:
        return _ratio(self.held_out_bought_again, self.held_out)

    @property
    def lift(self) -> Decimal | None:
        """Rewarded repurchase rate minus the held-out one (percentage points)."""
        if self.rewarded_rate is None or self.held_out_rate is None:
            return None
        return self.rewarded_rate - self.held_out_rate

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "rewarded": self.rewarded,
            "rewarded_bought_again": self.rewarded_bought_again,
            "rewarded_repurchase_rate": _text(self.rewarded_rate),
            "held_out": self.held_out,
            "held_out_bought_again": self.held_out_bought_again,
            "held_out_repurchase_rate": _text(self.held_out_rate),
            "lift": _text(self.lift),
        }


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """How many customers ever reached a stage, and how many are in it now."""

    stage: str
    reached: int
    current: int


@dataclass(slots=True)
class RedemptionReport:
    """The whole report at one moment."""

    as_of: datetime
    by: tuple[str, ...]
    rows: list[RateRow]
    total: RateRow
    control: list[ControlRow]
    funnel: list[FunnelStep]
    customers: int

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "by": list(self.by),
            "total": self.total.to_json(),
            "rows": [row.to_json() for row in self.rows],
            "control_groups": [row.to_json() for row in self.control],
            "funnel": [
                {"stage": s.stage, "reached": s.reached, "current": s.current}
                for s in self.funnel
            ],
            "customers": self.customers,
        }


def parse_dimensions(text: str | Sequence[str]) -> tuple[str, ...]:
    """Read ``stage,location`` into dimensions; name a bad one and the choices."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    wanted = tuple(part.strip() for part in parts if part.strip())
    bad = [part for part in wanted if part not in DIMENSIONS]
    if bad:
        raise InputError([("by", f"{bad[0]!r} is not one of {', '.join(DIMENSIONS)}")])
    return wanted


def redemption_report(
    conn: Connection,
    zone: ZoneInfo,
    stages: Sequence[str],
    *,
    by: Sequence[str] = (),
    as_of: datetime,
) -> RedemptionReport:
    """Compute the redemption report from the store as it is at ``as_of``."""
    facts = reward_facts(conn, zone, as_of)
    dimensions = parse_dimensions(by)
    groups: dict[tuple[str, ...], RateRow] = {}
    total = RateRow({})
    for fact in facts:
        if fact.held_out:
            continue
        values = tuple(fact.value(d) for d in dimensions)
        row = groups.setdefault(
            values, RateRow(dict(zip(dimensions, values, strict=True)))
        )
        _count(row, fact, as_of)
        _count(total, fact, as_of)
    customers, funnel = stage_funnel(conn, stages)
    return RedemptionReport(
        as_of=as_of,
        by=dimensions,
        rows=[groups[key] for key in sorted(groups)],
        total=total,
        control=control_groups(facts),
        funnel=funnel,
        customers=customers,
    )


def reward_facts(conn: Connection, zone: ZoneInfo, as_of: datetime) -> list[RewardFact]:
    """Every reward issued up to ``as_of`` and not withdrawn, with whether its
    customer bought again."""
    events = schema.events
    bought_again = exists().where(
        and_(
            events.c.customer_key == rewards.c.customer_key,
            events.c.type == "purchase",
            events.c.occurred_at > rewards.c.issued_at,
            events.c.occurred_at <= rewards.c.expires_at,
            events.c.occurred_at <= as_of,
        )
    )
    query = select(rewards, bought_again.label("bought_again")).where(
        rewards.c.issued_at <= as_of, rewards.c.withdrawn_at.is_(None)
    )
    return [_fact(row, zone, as_of) for row in conn.execute(query)]


def control_groups(facts: Iterable[RewardFact]) -> list[ControlRow]:
    """Repurchase of rewarded and held-out customers, for campaigns with both."""
    rows: dict[str, ControlRow] = {}
    for fact in facts:
        row = rows.setdefault(fact.campaign, ControlRow(fact.campaign))
        if fact.held_out:
            row.held_out += 1
            row.held_out_bought_again += fact.bought_again
        else:
            row.rewarded += 1
            row.rewarded_bought_again += fact.bought_again
    return [rows[name] for name in sorted(rows) if rows[name].held_out]


def stage_funnel(
    conn: Connection, stages: Sequence[str]
) -> tuple[int, list[FunnelStep]]:
    """Customers, then per stage: how many ever reached it and how many are in it."""
    customers, timeline = schema.customers, schema.timeline
    live = customers.c.merged_into.is_(None)
    total = conn.execute(select(func.count()).where(live)).scalar_one()
    reached: dict[str, int] = {
        subject: count
        for subject, count in conn.execute(
            select(timeline.c.subject, func.count(timeline.c.customer_key.distinct()))
            .where(timeline.c.kind == "stage_changed", ~timeline.c.superseded)
            .group_by(timeline.c.subject)
        )
    }
    current: dict[str | None, int] = {
        stage: count
        for stage, count in conn.execute(
            select(customers.c.stage, func.count())
            .where(live)
            .group_by(customers.c.stage)
        )
    }
    steps = [
        FunnelStep(stage, int(reached.get(stage, 0)), int(current.get(stage, 0)))
        for stage in stages
    ]
    return int(total), steps


def _count(row: RateRow, fact: RewardFact, as_of: datetime) -> None:
    is_redeemed = fact.redeemed_at is not None and fact.redeemed_at <= as_of
    row.issued += 1
    row.redeemed += is_redeemed
    if fact.expires_at <= as_of:
        row.matured_issued += 1
        row.matured_redeemed += is_redeemed
    if is_redeemed and fact.redeemed_at is not None:
        row.revenue += fact.basket or Decimal(0)
        seconds = Decimal((fact.redeemed_at - fact.issued_at).total_seconds())
        row.days.append(seconds / 86_400)


def _fact(row: Any, zone: ZoneInfo, as_of: datetime) -> RewardFact:
    redeemed_at = (
        row.redeemed_at if row.redeemed_at and row.redeemed_at <= as_of else None
    )
    return RewardFact(
        stage=row.stage_at_issue or NONE_LABEL,
        location=row.store or NONE_LABEL,
        campaign=row.campaign,
        month=row.issued_at.astimezone(zone).strftime("%Y-%m"),
        held_out=bool(row.held_out),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        redeemed_at=redeemed_at,
        basket=row.redeemed_basket,
        bought_again=bool(row.bought_again),
    )


def _ratio(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(_RATE)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
