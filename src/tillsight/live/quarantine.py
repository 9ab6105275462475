"""The quarantine: requests that could not become events, kept to be fixed.

Nothing a sender gave us is dropped. A request whose body is not JSON, names
an unknown type, misses fields, counts in a currency the programme does not,
or is over the size cap, is kept here with its raw body, the reason and the
per-field errors. An operator lists and reads the entries, fixes a body and
retries it (``tillsight quarantine list|show|retry``). Webhook retries of the
same delivery do not pile up: a waiting entry with the same source and
delivery id is reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import Connection, select, update

from tillsight.errors import (
    NotFoundError,
    QuarantinedError,
)
from tillsight.live.store import LiveStore
from tillsight.live.tables import quarantine
from tillsight.sealing import seal, unseal

WAITING = "waiting"
RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Entry:
    """One quarantined request."""

    id: int
    source: str
    topic: str | None
    delivery_id: str | None
    reason: str
    errors: list[tuple[str, str]]
    body: bytes
    body_bytes: int
    status: str
    received_at: datetime
    resolved_at: datetime | None
    resolution: str | None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from, as much as retrying it needs."""

    source: str
    topic: str | None = None
    delivery_id: str | None = None
    entry_id: int | None = None


class Quarantine:
    """Keeps, lists and resolves quarantined requests."""

    def __init__(self, store: LiveStore) -> None:
        self.store = store

    def keep(
        self,
        origin: Origin,
        reason: str,
        errors: list[tuple[str, str]],
        body: bytes,
        *,
        body_bytes: int | None = None,
        now: datetime,
    ) -> int:
        """Store the request, or refresh the waiting entry of the same
        delivery when the body is the same (a vendor's retry): a delivery id
        sent again with another body is kept as an entry of its own."""
        row: dict[str, object] = {
            "source": origin.source,
            "topic": origin.topic,
            "delivery_id": origin.delivery_id,
            "reason": reason,
            "errors": orjson.dumps(errors).decode(),
            "body": seal(body),
            "body_bytes": len(body) if body_bytes is None else body_bytes,
            "status": WAITING,
            "received_at": now,
        }
        return self.store.write(lambda conn: _keep(conn, row, body))

    def entries(self, *, status: str | None = WAITING) -> list[Entry]:
        """Entries, oldest first; all of them when ``status`` is None."""
        query = select(quarantine).order_by(quarantine.c.id)
        if status is not None:
            query = query.where(quarantine.c.status == status)
        with self.store.read() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def get(self, entry_id: int) -> Entry:
        """One entry; ``NotFoundError`` names the id when it is not there."""
        with self.store.read() as conn:
            row = conn.execute(
                select(quarantine).where(quarantine.c.id == entry_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no quarantine entry {entry_id}")
        return _entry(row)

    def update(
        self,
        entry_id: int,
        *,
        body: bytes | None = None,
        failure: QuarantinedError | None = None,
        resolution: str | None = None,
        now: datetime,
    ) -> None:
        """Record a retry: a new body, a new failure, or the resolution."""
        values: dict[str, object] = {}
        if body is not None:
            values |= {"body": seal(body), "body_bytes": len(body)}
        if failure is not None:
            values |= {
                "reason": failure.reason,
                "errors": orjson.dumps(failure.errors).decode(),
            }
        if resolution is not None:
            values |= {"status": RESOLVED, "resolved_at": now, "resolution": resolution}
        if values:
            self.store.write(
                lambda conn: conn.execute(
                    update(quarantine)
                    .where(quarantine.c.id == entry_id)
                    .values(**values)
                )
            )


def _keep(conn: Connection, row: dict[str, object], body: bytes) -> int:
    if row["delivery_id"] is not None:
        waiting = conn.execute(
            select(quarantine.c.id, quarantine.c.body).where(
                quarantine.c.source == row["source"],
                quarantine.c.delivery_id == row["delivery_id"],
                quarantine.c.status == WAITING,
            )
        )
        for found, sealed in waiting:
            if unseal(bytes(sealed)) == body:
                update_row = update(quarantine).where(quarantine.c.id == found)
                conn.execute(update_row.values(row))
                return int(found)
    new_id = conn.execute(
        quarantine.insert().values(row).returning(quarantine.c.id)
    ).scalar_one()
    return int(new_id)


def _entry(row: object) -> Entry:
    data = row._mapping  # type: ignore[attr-defined]
    return Entry(
        id=data["id"],
        source=data["source"],
        topic=data["topic"],
        delivery_id=data["delivery_id"],
        reason=data["reason"],
        errors=[(field, reason) for field, reason in orjson.loads(data["errors"])],
        body=unseal(bytes(data["body"])),
        body_bytes=data["body_bytes"],
        status=data["status"],
        received_at=data["received_at"],
        resolved_at=data["resolved_at"],
        resolution=data["resolution"],
    )
