"""The connector's own tables, on the shared ``metadata`` of the store.

``salesforce_pending`` is the queue: one row per customer whose profile changed
since it was last confirmed by Salesforce. ``version`` grows on every change, so
a sync run deletes a row only if nobody changed the customer again while the
record was in flight. The migration is ``store/migrations/versions/
salesforce_0001.py``; keep both in step.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from tillsight.store.schema import metadata
from tillsight.store.types import UtcDateTime

pending = Table(
    "salesforce_pending",
    metadata,
    Column("customer_key", String(40), primary_key=True),
    Column("version", Integer, nullable=False, default=1),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("enqueued_at", UtcDateTime, nullable=False),
    Column("last_attempt_at", UtcDateTime),
)

synced = Table(
    "salesforce_synced",
    metadata,
    Column("customer_key", String(40), primary_key=True),
    Column("sf_id", String(18)),
    Column("record_hash", String(64), nullable=False),
    Column("synced_at", UtcDateTime, nullable=False),
)

dead_letters = Table(
    "salesforce_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_key", String(40), nullable=False),
    Column("error_code", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("fields", Text, nullable=False, default="[]"),
    Column("record_hash", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime),
    Index("ix_salesforce_dead_letters_customer", "customer_key"),
)

review_items = Table(
    "salesforce_review",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_key", String(40), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime),
    Index("ix_salesforce_review_customer", "customer_key"),
)

checkpoints = Table(
    "salesforce_checkpoints",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("cursor", String(40), nullable=False, default=""),
    Column("job_id", String(18)),
    Column("job_last_key", String(40)),
    Column("paused_until", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
)

moments = Table(
    "salesforce_moments",
    metadata,
    Column("moment_key", String(64), primary_key=True),
    Column("customer_key", String(40), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", String(120), nullable=False),
    Column("rule_id", String(64)),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("sf_event_id", String(18)),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime),
    Index("ix_salesforce_moments_status", "status", "occurred_at"),
)
