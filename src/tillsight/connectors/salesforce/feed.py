"""The feed: how changes reach the Salesforce queue without slowing the engine.

The engine and the replay never call the connector. Instead, every sync run
starts with ``run_feed``, which reads what changed since the previous run and
queues it, in one transaction that also moves the watermarks (rows of the
``settings`` table), so a feed killed half-way queues everything again::

    customers.updated_at >= watermark ──enqueue()──────> salesforce_pending
    timeline.id > watermark (stage_changed, tier_entered vip)
    rewards.id > watermark (issued, not held out) ──enqueue_moment()──>
                                                          salesforce_moments

Customers are read from ``watermark - overlap`` on, because a writer stamps
``updated_at`` when its transaction starts and commits later; the pairs
(customer, updated_at) already queued within that window are remembered, so
nobody is queued twice for the same change and equal timestamps are not lost.
Moments have stable keys (``enqueue_moment`` ignores a key it knows), so a
moment is queued once however often its row is read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    column,
    func,
    inspect,
    select,
    table,
    update,
)

from tillsight.connectors.salesforce import queue
from tillsight.connectors.salesforce.events import Moment, MomentKind, enqueue_moment
from tillsight.core.timeconv import instant_us
from tillsight.store import schema
from tillsight.store.types import UtcDateTime
from tillsight.store.writer import insert_ignoring_duplicates

log = structlog.get_logger("tillsight.salesforce")

CUSTOMERS_MARK = "salesforce_feed_customers"
TIMELINE_MARK = "salesforce_feed_timeline"
REWARDS_MARK = "salesforce_feed_rewards"
VIP_TIER = "vip"
DEFAULT_OVERLAP = timedelta(seconds=60)
_CHUNK = 1000

# Read without importing the loyalty package, which may not be installed.
rewards = table(
    "rewards",
    column("id"),
    column("issue_key"),
    column("customer_key"),
    column("kind"),
    column("rule_id"),
    column("held_out", Boolean),
    column("issued_at", UtcDateTime),
)


@dataclass(slots=True)
class FeedReport:
    """What a feed queued: customers for the sync, moments for publishing."""

    customers: int = 0
    moments: int = 0


def run_feed(
    engine: Engine,
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    now: datetime | None = None,
) -> FeedReport:
    """Queue the customers and moments that changed since the last feed."""
    at = now or queue.utc_now()
    report = FeedReport()
    with engine.begin() as conn:
        report.customers = feed_customers(conn, overlap=overlap, now=at)
        report.moments = feed_moments(conn, now=at)

    log.info("salesforce_feed_done", customers=report.customers, moments=report.moments)
    return report


def _claim(conn: Connection, name: str, initial: str) -> str:
    """Lock a watermark row for this transaction and return its value.

    Writing first makes two feeds run one after the other, and on SQLite it
    also waits for a writer in flight, so the read that follows sees it.
    """
    settings = schema.settings
    insert_ignoring_duplicates(conn, settings, [{"name": name, "value": initial}])
    where = settings.c.name == name
    conn.execute(update(settings).where(where).values(value=settings.c.value))
    return str(conn.execute(select(settings.c.value).where(where)).scalar_one())


def _store(conn: Connection, name: str, value: str) -> None:
    settings = schema.settings
    conn.execute(update(settings).where(settings.c.name == name).values(value=value))


def feed_customers(
    conn: Connection, *, overlap: timedelta = DEFAULT_OVERLAP, now: datetime
) -> int:
    """Queue the customers whose ``updated_at`` moved; advance the watermark.

    Merged customers are queued like any other: the sync marks their record
    merged (or skips it if Salesforce never saw them), never re-creates it.
    """
    mark = json.loads(_claim(conn, CUSTOMERS_MARK, "{}"))
    seen: dict[str, list[str]] = mark.get("seen", {})
    since = _parse(mark.get("at"))
    customers = schema.customers
    query = select(customers.c.key, customers.c.updated_at).order_by(
        customers.c.updated_at, customers.c.key
    )
    if since is not None:
        query = query.where(customers.c.updated_at >= since - overlap)

    window = _Window(overlap, since)
    queued = 0
    for part in conn.execute(query.execution_options(yield_per=_CHUNK)).partitions():
        fresh = [key for key, at in part if key not in seen.get(at.isoformat(), ())]
        queued += queue.enqueue(conn, fresh, now=now)
        window.add([(key, at) for key, at in part])

    _store(conn, CUSTOMERS_MARK, window.to_json())
    return queued


class _Window:
    """The newest ``updated_at`` read, and who was read within the overlap of it."""

    def __init__(self, overlap: timedelta, latest: datetime | None) -> None:
        self.overlap = overlap
        self.latest = latest
        self.rows: list[tuple[str, datetime]] = []

    def add(self, rows: list[tuple[str, datetime]]) -> None:
        """Take rows read in ``updated_at`` order, forgetting those now too old."""
        if not rows:
            return
        self.latest = max(rows[-1][1], self.latest or rows[-1][1])
        self.rows.extend(rows)
        if len(self.rows) > 10 * _CHUNK:
            self.rows = self._recent()

    def _recent(self) -> list[tuple[str, datetime]]:
        assert self.latest is not None
        oldest = self.latest - self.overlap
        return [(key, at) for key, at in self.rows if at >= oldest]

    def to_json(self) -> str:
        """Return the watermark as stored in ``settings``."""
        if self.latest is None:
            return "{}"
        seen: dict[str, list[str]] = {}
        for key, at in self._recent():
            seen.setdefault(at.isoformat(), []).append(key)
        return json.dumps({"at": self.latest.isoformat(), "seen": seen})


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def feed_moments(conn: Connection, *, now: datetime) -> int:
    """Turn new stage changes, VIP tiers and issued rewards into moments."""
    queued = _feed_timeline(conn, now)
    if inspect(conn).has_table("rewards"):
        queued += _feed_rewards(conn, now)
    return queued


def _feed_timeline(conn: Connection, now: datetime) -> int:
    # TODO: on PostgreSQL a transaction can commit a timeline row whose id is
    # below one a later transaction committed first; if a feed runs between
    # the two, that row's moment is never published and its Flow never starts.
    after = int(_claim(conn, TIMELINE_MARK, "0"))
    timeline = schema.timeline
    last = _last_id(conn, timeline.c.id)
    query = (
        select(timeline)
        .where(
            timeline.c.id > after,
            timeline.c.id <= last,
            timeline.c.kind.in_(["stage_changed", "tier_entered"]),
            timeline.c.superseded.is_(False),
        )
        .order_by(timeline.c.id)
    )
    moments = (_timeline_moment(row) for row in conn.execute(query))
    queued = _enqueue_moments(conn, moments, now)

    _store(conn, TIMELINE_MARK, str(max(after, last)))
    return queued


def _feed_rewards(conn: Connection, now: datetime) -> int:
    after = int(_claim(conn, REWARDS_MARK, "0"))
    last = _last_id(conn, rewards.c.id)
    query = (
        select(rewards)
        .where(rewards.c.id > after, rewards.c.id <= last)
        .where(rewards.c.held_out.is_(False))  # the control group is told nothing
        .order_by(rewards.c.id)
    )
    moments = (_reward_moment(row) for row in conn.execute(query))
    queued = _enqueue_moments(conn, moments, now)

    _store(conn, REWARDS_MARK, str(max(after, last)))
    return queued


def _last_id(conn: Connection, id_column: Any) -> int:
    """Return a table's highest id, read before its rows so none slips past."""
    maximum = conn.execute(select(func.coalesce(func.max(id_column), 0)))
    return int(maximum.scalar_one())


def _enqueue_moments(
    conn: Connection, moments: Iterable[Moment | None], now: datetime
) -> int:
    wanted = [moment for moment in moments if moment is not None]
    return sum(enqueue_moment(conn, moment, now=now) for moment in wanted)


def _timeline_moment(row: Any) -> Moment | None:
    if row.kind == "stage_changed":
        kind = MomentKind.STAGE_CHANGED
    elif row.kind == "tier_entered" and row.subject == VIP_TIER:
        kind = MomentKind.VIP_REACHED
    else:
        return None
    identity = (row.customer_key, row.kind, row.rule_id or "", row.event_id or "")
    return Moment(
        # The decision's own idempotency key: the same moment, the same key.
        moment_key="tl-" + _digest([*identity, row.subject, str(instant_us(row.at))]),
        customer_key=row.customer_key,
        kind=kind,
        name=row.subject,
        occurred_at=row.at,
        rule_id=row.rule_id or None,
    )


def _reward_moment(row: Any) -> Moment:
    return Moment(
        moment_key="rw-" + _digest([row.issue_key]),
        customer_key=row.customer_key,
        kind=MomentKind.REWARD_ISSUED,
        name=row.kind,
        occurred_at=row.issued_at,
        rule_id=row.rule_id or None,
    )


def _digest(parts: Iterable[str]) -> str:
    """Return a short stable hash of the parts, for moment keys (<= 64 chars)."""
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:40]
