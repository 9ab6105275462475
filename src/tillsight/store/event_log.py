"""The append-only event log: rows to events and back.

The stored payload keeps what the engine needs to rebuild a customer (lines,
links, tags) and no personal data: names, emails and phone numbers live in
``people``, reached through the customer key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Connection, select

from tillsight.core.events import Event, EventType, Identity, Line
from tillsight.store import schema

_CHUNK = 900


def event_row(
    event: Event, customer_key: str | None, received_at: datetime
) -> dict[str, Any]:
    """The ``events`` row for an event."""
    payload = {
        "lines": [
            [
                line.sku,
                str(line.quantity),
                str(line.unit_price),
                str(line.total),
                line.description,
                sorted(line.tags),
                line.line_id,
            ]
            for line in event.lines
        ],
        "refunded_line_ids": list(event.refunded_line_ids),
        "ids": [event.identity.customer_id, event.identity.loyalty_id],
    }
    return {
        "event_id": event.event_id,
        "source": event.source,
        "type": event.type.value,
        "occurred_at": event.occurred_at,
        "customer_key": customer_key,
        "store": event.store,
        "channel": event.channel,
        "currency": event.currency,
        "total": event.total,
        "refunds_event_id": event.refunds_event_id,
        "payload": orjson.dumps(payload).decode(),
        "received_at": received_at,
    }


def event_from_row(row: Any) -> Event:
    """Rebuild an event from its ``events`` row."""
    payload = orjson.loads(row.payload)
    customer_id, loyalty_id = payload["ids"]
    return Event(
        event_id=row.event_id,
        type=EventType(row.type),
        occurred_at=row.occurred_at,
        total=Decimal(row.total),
        currency=row.currency,
        lines=tuple(
            Line(
                sku,
                Decimal(qty),
                Decimal(unit),
                Decimal(total),
                desc,
                frozenset(tags),
                line_id,
            )
            for sku, qty, unit, total, desc, tags, line_id in payload["lines"]
        ),
        identity=Identity(customer_id=customer_id, loyalty_id=loyalty_id),
        store=row.store,
        channel=row.channel,
        source=row.source,
        refunds_event_id=row.refunds_event_id,
        refunded_line_ids=tuple(payload["refunded_line_ids"]),
    )


def known_event_ids(conn: Connection, event_ids: Iterable[str]) -> set[str]:
    """Which of these event ids are already in the log."""
    ids = list(event_ids)
    found: set[str] = set()
    column = schema.events.c.event_id
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
    return found


def customer_history(conn: Connection, key: str) -> Sequence[Event]:
    """Every event of a customer, in (event time, event id) order."""
    table = schema.events
    rows = conn.execute(
        select(table)
        .where(table.c.customer_key == key)
        .order_by(table.c.occurred_at, table.c.event_id)
    )
    return [event_from_row(row) for row in rows]
