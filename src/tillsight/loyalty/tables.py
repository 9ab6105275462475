"""Tables of rewards and redemption attempts (migration ``loyalty_0001``).

A reward row is issued once (``issue_key`` is unique) and redeemed at most
once: redemption is a conditional update on ``redeemed_at IS NULL``. A reward
whose rule no longer holds after a late event, and which was not redeemed, is
withdrawn (``withdrawn_at``, migration ``loyalty_0002``): its code is refused
and it no longer counts as issued. Every refused attempt is kept with its
reason. Neither table holds personal data;
customers are referenced by their opaque key.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from tillsight.store.schema import metadata
from tillsight.store.types import Money, UtcDateTime

rewards = Table(
    "rewards",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issue_key", String(80), nullable=False, unique=True),
    Column("code", String(32), unique=True),
    Column("customer_key", String(40), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("value", Money),
    Column("offer", Text, nullable=False, default=""),
    Column("campaign", String(64), nullable=False),
    Column("stage_at_issue", String(64)),
    Column("store", String(120)),
    Column("source", String(16), nullable=False),
    Column("rule_id", String(64)),
    Column("event_id", String(200)),
    Column("held_out", Boolean, nullable=False, default=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("redeemed_at", UtcDateTime),
    Column("redeemed_event_id", String(200)),
    Column("redeemed_store", String(120)),
    Column("redeemed_basket", Money),
    Column("withdrawn_at", UtcDateTime),
    Column("recorded_at", UtcDateTime, nullable=False),
    CheckConstraint("held_out OR code IS NOT NULL", name="code_unless_held_out"),
    CheckConstraint("expires_at > issued_at", name="expires_after_issue"),
    Index("ix_rewards_customer", "customer_key"),
    Index("ix_rewards_campaign_issued", "campaign", "issued_at"),
)

redemption_attempts = Table(
    "redemption_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("attempt_key", String(240), nullable=False, unique=True),
    Column("code", String(64)),
    Column("points", Integer, nullable=False, default=0),
    Column("reward_id", Integer),
    Column("customer_key", String(40)),
    Column("event_id", String(200)),
    Column("channel", String(16), nullable=False),
    Column("store", String(120)),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(40)),
    Column("attempted_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_redemption_attempts_reward", "reward_id"),
    Index("ix_redemption_attempts_customer", "customer_key"),
)
