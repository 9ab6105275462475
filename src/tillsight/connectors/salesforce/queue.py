"""The sync queue and what the connector remembers, as plain store operations.

Every function takes a ``Connection`` and leaves the transaction to the caller,
so the engine can enqueue inside the transaction that changed a profile, and a
sync run can confirm a batch in one transaction after Salesforce answered.

A pending row is removed only when its ``version`` is still the one that was
sent: a change that lands while a record is in flight keeps the row queued.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Table, and_, delete, func, insert, select, update

from tillsight.connectors.salesforce.client import RecordError
from tillsight.connectors.salesforce.tables import (
    checkpoints,
    dead_letters,
    moments,
    pending,
    review_items,
    synced,
)

log = structlog.get_logger("tillsight.salesforce")

ENQUEUE_CHUNK = 500


def utc_now() -> datetime:
    """Return the current instant; the default clock of the connector."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PendingRow:
    """A queued customer and the version of its change that is being sent."""

    customer_key: str
    version: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a backfill stands, or until when syncing is paused."""

    name: str
    state: str
    cursor: str = ""
    job_id: str | None = None
    job_last_key: str | None = None
    paused_until: datetime | None = None


def upsert_row(
    conn: Connection,
    table: Table,
    values: dict[str, Any],
    update_values: dict[str, Any],
) -> None:
    """Insert a row, or update it if its primary key is already there."""
    keys = {col.name: values[col.name] for col in table.primary_key.columns}
    condition = and_(*(table.c[name] == value for name, value in keys.items()))
    changed = conn.execute(update(table).where(condition).values(**update_values))
    if changed.rowcount == 0:
        conn.execute(insert(table).values(**values))


def enqueue(
    conn: Connection, customer_keys: Iterable[str], *, now: datetime | None = None
) -> int:
    """Queue the customers whose profile changed; one row per customer.

    Call it inside the transaction that changed the profiles. A customer already
    queued gets a new version, so a record in flight is sent again afterwards.
    Keys are handled a chunk at a time, a few statements per chunk, so that a
    first feed of a large store does not cost two statements per customer.
    """
    at = now or utc_now()
    keys = sorted(set(customer_keys))
    fresh = {"status": "pending", "attempts": 0, "last_error": None}
    for start in range(0, len(keys), ENQUEUE_CHUNK):
        chunk = keys[start : start + ENQUEUE_CHUNK]
        in_chunk = pending.c.customer_key.in_(chunk)
        conn.execute(
            update(pending)
            .where(in_chunk)
            .values(version=pending.c.version + 1, enqueued_at=at, **fresh)
        )
        known = set(
            conn.execute(select(pending.c.customer_key).where(in_chunk)).scalars()
        )
        rows = [
            {"customer_key": key, "version": 1, "enqueued_at": at, **fresh}
            for key in chunk
            if key not in known
        ]
        if rows:
            conn.execute(insert(pending), rows)
    return len(keys)


def pending_page(conn: Connection, after_key: str, limit: int) -> list[PendingRow]:
    """Return up to ``limit`` queued customers with keys after ``after_key``."""
    query = (
        select(pending.c.customer_key, pending.c.version)
        .where(pending.c.customer_key > after_key)
        .order_by(pending.c.customer_key)
        .limit(limit)
    )
    return [PendingRow(row.customer_key, row.version) for row in conn.execute(query)]


def synced_state(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Return ``key -> (sf_id, record_hash)`` of the customers already synced."""
    query = select(synced).where(synced.c.customer_key.in_(keys))
    return {
        row.customer_key: (row.sf_id or "", row.record_hash)
        for row in conn.execute(query)
    }


def drop(conn: Connection, row: PendingRow) -> None:
    """Remove a queued customer unless it changed again meanwhile."""
    conn.execute(
        delete(pending).where(
            pending.c.customer_key == row.customer_key,
            pending.c.version == row.version,
        )
    )


def confirm(
    conn: Connection,
    customer_key: str,
    sf_id: str | None,
    digest: str,
    now: datetime,
    *,
    dequeue: PendingRow | None = None,
) -> None:
    """Record that Salesforce holds this record; dequeue the row that sent it."""
    values = {"record_hash": digest, "synced_at": now}
    if sf_id:
        values["sf_id"] = sf_id
    upsert_row(
        conn, synced, {"customer_key": customer_key, "sf_id": sf_id, **values}, values
    )
    conn.execute(
        update(dead_letters)
        .where(
            dead_letters.c.customer_key == customer_key,
            dead_letters.c.resolved_at.is_(None),
        )
        .values(resolved_at=now)
    )
    if dequeue is not None:
        drop(conn, dequeue)


def add_dead_letter(
    conn: Connection,
    customer_key: str,
    error: RecordError,
    digest: str | None,
    now: datetime,
    *,
    dequeue: PendingRow | None = None,
) -> None:
    """Keep a record Salesforce rejected, with its message, until it is fixed."""
    conn.execute(
        insert(dead_letters).values(
            customer_key=customer_key,
            error_code=error.code,
            message=error.message,
            fields=json.dumps(list(error.fields)),
            record_hash=digest,
            created_at=now,
        )
    )
    if dequeue is not None:
        drop(conn, dequeue)


def add_review_item(
    conn: Connection,
    customer_key: str,
    reason: str,
    detail: Any,
    now: datetime,
    *,
    dequeue: PendingRow | None = None,
) -> None:
    """Hand a record to a person (an external id that matches many records)."""
    conn.execute(
        insert(review_items).values(
            customer_key=customer_key,
            reason=reason,
            detail=json.dumps(detail, ensure_ascii=False),
            created_at=now,
        )
    )
    if dequeue is not None:
        drop(conn, dequeue)


def mark_failed(
    conn: Connection, rows: Iterable[PendingRow], error: str, now: datetime
) -> None:
    """Keep customers queued, counting the attempt and saying why it failed."""
    for row in rows:
        conn.execute(
            update(pending)
            .where(pending.c.customer_key == row.customer_key)
            .values(
                status="failed",
                attempts=pending.c.attempts + 1,
                last_error=error,
                last_attempt_at=now,
            )
        )


def retry_dead_letters(
    conn: Connection, keys: Iterable[str] | None = None, *, now: datetime | None = None
) -> int:
    """Queue again the customers with open dead letters (after a fix in the CRM)."""
    query = select(dead_letters.c.customer_key).where(
        dead_letters.c.resolved_at.is_(None)
    )
    if keys is not None:
        query = query.where(dead_letters.c.customer_key.in_(list(keys)))
    return enqueue(conn, {row.customer_key for row in conn.execute(query)}, now=now)


def load_checkpoint(conn: Connection, name: str) -> Checkpoint | None:
    """Return the named checkpoint, if there is one."""
    row = conn.execute(select(checkpoints).where(checkpoints.c.name == name)).first()
    if row is None:
        return None
    return Checkpoint(
        name=row.name,
        state=row.state,
        cursor=row.cursor,
        job_id=row.job_id,
        job_last_key=row.job_last_key,
        paused_until=row.paused_until,
    )


def save_checkpoint(conn: Connection, checkpoint: Checkpoint, now: datetime) -> None:
    """Write a checkpoint, replacing the one of the same name."""
    values = {
        "state": checkpoint.state,
        "cursor": checkpoint.cursor,
        "job_id": checkpoint.job_id,
        "job_last_key": checkpoint.job_last_key,
        "paused_until": checkpoint.paused_until,
        "updated_at": now,
    }
    upsert_row(conn, checkpoints, {"name": checkpoint.name, **values}, values)


LIMIT_CHECKPOINT = "api_limit"


def pause_for_limit(conn: Connection, now: datetime, hours: float) -> datetime:
    """Stop every connector call until ``now + hours``: the daily limit is used up."""
    until = now + timedelta(hours=hours)
    save_checkpoint(
        conn, Checkpoint(LIMIT_CHECKPOINT, "paused", paused_until=until), now
    )
    log.warning("salesforce_paused_for_limit", until=until.isoformat())
    return until


def limit_paused_until(conn: Connection, now: datetime) -> datetime | None:
    """Return when the limit pause ends, or None if calls may be made now."""
    checkpoint = load_checkpoint(conn, LIMIT_CHECKPOINT)
    if checkpoint is None or checkpoint.paused_until is None:
        return None
    return checkpoint.paused_until if now < checkpoint.paused_until else None


def queue_status(conn: Connection) -> dict[str, int]:
    """Count what waits, what failed and what needs a person (for ``status``)."""

    def count(table: Table, *conditions: Any) -> int:
        query = select(func.count()).select_from(table).where(*conditions)
        return int(conn.execute(query).scalar_one())

    return {
        "pending": count(pending, pending.c.status == "pending"),
        "failed": count(pending, pending.c.status == "failed"),
        "synced": count(synced),
        "dead_letters": count(dead_letters, dead_letters.c.resolved_at.is_(None)),
        "review": count(review_items, review_items.c.resolved_at.is_(None)),
        "moments_pending": count(moments, moments.c.status == "pending"),
    }
