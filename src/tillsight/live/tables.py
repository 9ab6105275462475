"""Tables of the live service: quarantine, API keys, webhook deliveries.

They sit on the shared ``metadata`` of :mod:`tillsight.store.schema`; their
migration is ``live_0001`` (Alembic branch ``live``). Raw bodies kept in the
quarantine may hold personal data: they live in the database, never in logs.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from tillsight.store.schema import metadata
from tillsight.store.types import UtcDateTime

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(16), nullable=False),
    Column("topic", String(64)),
    Column("delivery_id", String(200)),
    Column("reason", String(32), nullable=False),
    Column("errors", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("body_bytes", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime),
    Column("resolution", Text),
    Index("ix_quarantine_status", "status", "id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", String(120), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(16), nullable=False),
    Column("delivery_id", String(200), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("event_ids", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    UniqueConstraint("source", "delivery_id", name="uq_webhook_deliveries_delivery"),
)

raw_inbox = Table(
    "raw_inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("body", LargeBinary, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)
