"""Tables. Behaviour lives in the events, ledger and timeline; personal data
lives apart, in ``people`` and ``identities``, referenced by the opaque
customer key, so that it can be encrypted or erased without touching a KPI."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from tillsight.store.types import Money, UtcDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

customers = Table(
    "customers",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("stage", String(64)),
    Column("tier", String(64)),
    Column("segments", Text, nullable=False, default="[]"),
    Column("purchase_count", Integer, nullable=False, default=0),
    Column("lifetime_net_spend", Money, nullable=False, default=0),
    Column("points_balance", BigInteger, nullable=False, default=0),
    Column("first_purchase_at", UtcDateTime),
    Column("last_purchase_at", UtcDateTime),
    Column("state", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("merged_into", String(40)),
)

identities = Table(
    "identities",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("value", String(320), primary_key=True),
    Column("customer_key", String(40), ForeignKey("customers.key"), nullable=False),
    Index("ix_identities_customer", "customer_key"),
)

people = Table(
    "people",
    metadata,
    Column("customer_key", String(40), ForeignKey("customers.key"), primary_key=True),
    Column("email", Text),
    Column("phone", Text),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("consent_email", Boolean, nullable=False, default=False),
    Column("consent_sms", Boolean, nullable=False, default=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("fingerprint", String(32)),
    Column("source", String(40), nullable=False),
    Column("type", String(16), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("customer_key", String(40)),
    Column("store", String(120)),
    Column("channel", String(40)),
    Column("currency", String(3), nullable=False),
    Column("total", Money, nullable=False),
    Column("refunds_event_id", String(200)),
    Column("payload", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_events_customer_time", "customer_key", "occurred_at"),
    Index("ix_events_occurred_at", "occurred_at"),
)

timeline = Table(
    "timeline",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_key", String(40), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("rule_id", String(64)),
    Column("event_id", String(200)),
    Column("subject", String(120), nullable=False, default=""),
    Column("detail", Text),
    Column("superseded", Boolean, nullable=False, default=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "customer_key",
        "kind",
        "rule_id",
        "event_id",
        "subject",
        "at",
        name="uq_timeline_decision",
    ),
    Index("ix_timeline_customer_at", "customer_key", "at"),
    Index("ix_timeline_kind_at", "kind", "at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("customer_key", String(40), nullable=False),
    Column("action", String(32), nullable=False),
    Column("name", String(120), nullable=False),
    Column("rule_id", String(64)),
    Column("event_id", String(200)),
    Column("at", UtcDateTime, nullable=False),
    Column("payload", Text),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    Index("ix_outbox_status", "status", "id"),
)

timers = Table(
    "timers",
    metadata,
    Column("customer_key", String(40), primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("due_at", UtcDateTime, nullable=False),
    Column("cause_event_id", String(200)),
    Index("ix_timers_due", "due_at"),
)

settings = Table(
    "settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

points_ledger = Table(
    "points_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_key", String(40), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("rule_id", String(64)),
    Column("event_id", String(200)),
    Column("corrects", Integer),
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "customer_key",
        "reason",
        "rule_id",
        "event_id",
        "at",
        "corrects",
        name="uq_points_ledger_entry",
    ),
    Index("ix_points_ledger_customer", "customer_key", "at"),
)
