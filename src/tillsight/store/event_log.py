"""The append-only event log: rows to events and back.

The stored payload keeps what the engine needs to rebuild a customer (lines,
links, tags) and no personal data: names, emails and phone numbers live in
``people``, reached through the customer key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Connection, select

from tillsight.core.events import Event, EventType, Identity, Line, Redemption
from tillsight.store import schema
from tillsight.store.bulk import Bulk

_CHUNK = 900


EVENT_COLUMNS = (
    "fingerprint",
    "event_id",
    "source",
    "type",
    "occurred_at",
    "customer_key",
    "store",
    "channel",
    "currency",
    "total",
    "refunds_event_id",
    "payload",
    "received_at",
)
_INSERT_ONE = {
    is_postgres: (
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
        f"VALUES ({', '.join([marker] * len(EVENT_COLUMNS))}) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING seq"
    )
    for is_postgres, marker in ((False, "?"), (True, "%s"))
}


def insert_events(
    conn: Connection,
    events: Sequence[tuple[Event, str | None]],
    received_at: datetime,
) -> None:
    """Append events (with their customer keys) to the log in one statement."""
    bulk = Bulk(conn)
    received = bulk.moment(received_at)
    rows = [event_values(bulk, event, key, received) for event, key in events]
    bulk.insert(schema.events, EVENT_COLUMNS, rows)


def insert_event(conn: Connection, event: Event, received_at: datetime) -> int | None:
    """Append one event without a customer yet; its ``seq``, or None when
    its id is already stored (atomic: two racing inserts store it once)."""
    bulk = Bulk(conn)
    row = event_values(bulk, event, None, bulk.moment(received_at))
    found = bulk.execute(_INSERT_ONE[bulk.is_postgres], row)
    return found[0][0] if found else None


def event_values(
    bulk: Bulk, event: Event, customer_key: str | None, received: Any
) -> tuple[Any, ...]:
    """The ``events`` row for an event, in :data:`EVENT_COLUMNS` order."""
    return _values(
        event,
        customer_key,
        bulk.moment(event.occurred_at),
        bulk.money(event.total),
        received,
    )


def _values(
    event: Event, customer_key: str | None, occurred: Any, total: Any, received: Any
) -> tuple[Any, ...]:
    payload = _payload(event)
    return (
        fingerprint(event, payload),
        event.event_id,
        event.source,
        event.type.value,
        occurred,
        customer_key,
        event.store,
        event.channel,
        event.currency,
        total,
        event.refunds_event_id,
        orjson.dumps(payload).decode(),
        received,
    )


def fingerprint(event: Event, payload: dict[str, Any] | None = None) -> str:
    """What the event says, as a short hash: the same id with another
    fingerprint is a correction or a clash, not a repeat.

    Neither the order of the lines (or of the refunded line ids) nor the
    trailing zeros of an amount are content: a till that exports a
    transaction's lines in another order, or writes 10.0 for 10.00, sends the
    same transaction. (PostgreSQL also gives amounts back with six places.)
    """
    body = dict(payload if payload is not None else _payload(event))
    body.pop("ids", None)
    lines = [_line_content(line) for line in body["lines"]]
    body["lines"] = sorted(lines, key=orjson.dumps) if len(lines) > 1 else lines
    body["refunded_line_ids"] = sorted(body["refunded_line_ids"])
    if "redemptions" in body:
        body["redemptions"] = [
            [code, points, _amount(amount)]
            for code, points, amount in body["redemptions"]
        ]
    content = [
        event.type.value,
        event.occurred_at.astimezone(UTC).isoformat(),
        _amount(str(event.total)),
        event.currency,
        event.store,
        event.channel,
        event.refunds_event_id,
        body,
    ]
    return hashlib.sha256(orjson.dumps(content)).hexdigest()[:32]


def _line_content(line: list[Any]) -> list[Any]:
    """A payload line with its quantity, price and total in one form."""
    sku, quantity, unit_price, total, *rest = line
    return [sku, _amount(quantity), _amount(unit_price), _amount(total), *rest]


def _amount(text: str) -> str:
    """A decimal without trailing zeros: 10.00, 10.0 and 10 are all 10.

    Every event is fingerprinted as it is stored, so text that is already in
    that form (``2.55``, ``10``: most of it) is given back as it is.
    """
    if "E" not in text and "e" not in text:
        if "." in text:
            if text[-1] not in "0." and text.lstrip("-")[0] != ".":
                return text
        elif _PLAIN_INTEGER(text):
            return text
    return format(Decimal(text).normalize(), "f")


_PLAIN_INTEGER = re.compile(r"-?[1-9][0-9]*|0").fullmatch


def _payload(event: Event) -> dict[str, Any]:
    payload: dict[str, Any] = {
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
    if event.redemptions:
        payload["redemptions"] = [
            [r.code, r.points, str(r.amount)] for r in event.redemptions
        ]
    if event.type is EventType.ADJUSTMENT:
        payload["adjustment"] = [event.points_delta, event.note]
    return payload


def event_from_row(row: Any) -> Event:
    """Rebuild an event from its ``events`` row."""
    payload = orjson.loads(row.payload)
    customer_id, loyalty_id = payload["ids"]
    delta, note = payload.get("adjustment", (0, ""))
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
        redemptions=tuple(
            Redemption(code, points, Decimal(amount))
            for code, points, amount in payload.get("redemptions", ())
        ),
        points_delta=delta,
        note=note,
    )


@dataclass(frozen=True, slots=True)
class Stored:
    """What the log holds of an event, to tell a repeat from a clash."""

    fingerprint: str | None
    payload: str

    def repeated_by(self, event: Event) -> bool:
        """Whether ``event`` says what the stored event says.

        The content must match (see :func:`fingerprint`; a row stored before
        fingerprints has none and matches any), and a customer or loyalty id
        that ``event`` names must be the stored one: the same sale for another
        customer is a clash. A resend naming no one repeats the stored event
        (the sale may have been given its owner, see ``loyalty.guest``).
        """
        if self.fingerprint is not None and self.fingerprint != fingerprint(event):
            return False
        named = [event.identity.customer_id, event.identity.loyalty_id]
        if not any(named):
            return True
        stored = orjson.loads(self.payload)["ids"]
        return [_id(value) for value in named] == [_id(value) for value in stored]


def as_stored(event: Event) -> Stored:
    """What the log would hold of ``event``."""
    return Stored(fingerprint(event), orjson.dumps(_payload(event)).decode())


def _id(value: str | None) -> str | None:
    return value.strip() or None if value else None


def stored_events(conn: Connection, event_ids: Iterable[str]) -> dict[str, Stored]:
    """Which of these event ids are already in the log, and what it holds."""
    ids = list(event_ids)
    found: dict[str, Stored] = {}
    table = schema.events
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = conn.execute(
            select(table.c.event_id, table.c.fingerprint, table.c.payload).where(
                table.c.event_id.in_(chunk)
            )
        )
        found.update(
            {row.event_id: Stored(row.fingerprint, row.payload) for row in rows}
        )
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
