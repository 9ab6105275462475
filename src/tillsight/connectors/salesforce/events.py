"""Lifecycle moments published to Salesforce as Platform Events.

The engine's write path calls ``enqueue_moment`` in the transaction that records
a stage change, a VIP tier or a reward; ``publish_moments`` later sends what is
waiting, up to 200 events per sObject Collections call. The moment key is the
table's primary key, so enqueueing the same moment twice has one effect, and a
published moment is never sent again. The key also travels as ``Event_Id__c``:
if a run dies between Salesforce's answer and our commit, the moment is sent a
second time and subscribers drop it by that id.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, insert, select, update

from tillsight.connectors.salesforce import queue
from tillsight.connectors.salesforce.client import RecordResult, SalesforceClient
from tillsight.connectors.salesforce.config import SalesforceSettings
from tillsight.connectors.salesforce.profiles import sf_datetime
from tillsight.connectors.salesforce.tables import moments
from tillsight.errors import AuthError, RateLimitedError, RemoteError

log = structlog.get_logger("tillsight.salesforce")

Clock = Callable[[], datetime]


class MomentKind(enum.StrEnum):
    """The moments Salesforce flows can start a journey on."""

    STAGE_CHANGED = "stage_changed"
    VIP_REACHED = "vip_reached"
    REWARD_ISSUED = "reward_issued"


@dataclass(frozen=True, slots=True)
class Moment:
    """One lifecycle moment: ``moment_key`` is unique per moment, ever."""

    moment_key: str
    customer_key: str
    kind: MomentKind
    name: str
    occurred_at: datetime
    rule_id: str | None = None


@dataclass(slots=True)
class PublishReport:
    """What a publish run did; ``status`` as for a sync run."""

    status: str = "success"
    published: int = 0
    failed: int = 0
    calls: int = 0
    reason: str = ""


def enqueue_moment(
    conn: Connection, moment: Moment, *, now: datetime | None = None
) -> bool:
    """Queue a moment for publishing; False if that moment key is already known."""
    known = conn.execute(
        select(moments.c.moment_key).where(moments.c.moment_key == moment.moment_key)
    ).first()
    if known is not None:
        return False

    conn.execute(
        insert(moments).values(
            moment_key=moment.moment_key,
            customer_key=moment.customer_key,
            kind=str(moment.kind),
            name=moment.name,
            rule_id=moment.rule_id,
            occurred_at=moment.occurred_at,
            status="pending",
            attempts=0,
            created_at=now or queue.utc_now(),
        )
    )
    return True


def event_record(row: Any, settings: SalesforceSettings) -> dict[str, Any]:
    """Build the Platform Event record of a queued moment."""
    fields = settings.events
    return {
        "attributes": {"type": fields.object},
        fields.customer_key: row.customer_key,
        fields.kind: row.kind,
        fields.name: row.name,
        fields.occurred_at: sf_datetime(row.occurred_at),
        fields.rule: row.rule_id,
        fields.event_id: row.moment_key,
    }


def publish_moments(
    engine: Engine,
    client: SalesforceClient,
    *,
    limit: int = 1000,
    clock: Clock = queue.utc_now,
) -> PublishReport:
    """Publish waiting moments, oldest first, and record each event's result."""
    report = PublishReport()
    calls_before = client.calls
    with engine.connect() as conn:
        if queue.limit_paused_until(conn, clock()) is not None:
            report.status, report.reason = "paused", "REQUEST_LIMIT_EXCEEDED"
            return report
        rows = conn.execute(
            select(moments)
            .where(moments.c.status == "pending")
            .order_by(moments.c.occurred_at, moments.c.moment_key)
            .limit(limit)
        ).all()

    for start in range(0, len(rows), client.settings.batch_size):
        batch = list(rows[start : start + client.settings.batch_size])
        if not _publish_batch(engine, client, batch, report, clock):
            break

    report.calls = client.calls - calls_before
    log.info("salesforce_moments_published", status=report.status, n=report.published)
    return report


def _publish_batch(
    engine: Engine,
    client: SalesforceClient,
    batch: list[Any],
    report: PublishReport,
    clock: Clock,
) -> bool:
    records = [event_record(row, client.settings) for row in batch]
    try:
        results = client.create_collection(records)
    except RateLimitedError:
        with engine.begin() as conn:
            queue.pause_for_limit(conn, clock(), client.settings.limit_pause_hours)
        report.status, report.reason = "stopped", "REQUEST_LIMIT_EXCEEDED"
        return False
    except (AuthError, RemoteError) as exc:
        log.error("salesforce_moments_alert", reason=type(exc).__name__)
        report.status, report.reason = "failed", type(exc).__name__
        return False

    with engine.begin() as conn:
        for row, result in zip(batch, results, strict=True):
            _record(conn, row.moment_key, result, report, clock())
    return True


def _record(
    conn: Connection,
    key: str,
    result: RecordResult,
    report: PublishReport,
    now: datetime,
) -> None:
    where = moments.c.moment_key == key
    if result.is_success:
        values: dict[str, Any] = {
            "status": "published",
            "sf_event_id": result.sf_id,
            "published_at": now,
        }
        report.published += 1
    else:
        error = f"{result.code}: {result.errors[0].message}" if result.errors else ""
        # A bad event stays bad when resent; keep it aside with the reason.
        values = {"status": "failed", "last_error": error}
        report.failed += 1
        if report.status == "success":
            report.status = "partial"
    conn.execute(
        update(moments).where(where).values(attempts=moments.c.attempts + 1, **values)
    )
