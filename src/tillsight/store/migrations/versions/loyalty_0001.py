"""Loyalty: rewards and redemption attempts.

Revision ID: loyalty_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tillsight.store.types import Money, UtcDateTime

revision = "loyalty_0001"
down_revision = "0001"
branch_labels = ("loyalty",)
depends_on = None


def upgrade() -> None:
    """Create the rewards and redemption_attempts tables."""
    op.create_table(
        "rewards",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("issue_key", sa.String(80), nullable=False),
        sa.Column("code", sa.String(32)),
        sa.Column("customer_key", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("value", Money),
        sa.Column("offer", sa.Text, nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("stage_at_issue", sa.String(64)),
        sa.Column("store", sa.String(120)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(64)),
        sa.Column("event_id", sa.String(200)),
        sa.Column("held_out", sa.Boolean, nullable=False),
        sa.Column("issued_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("redeemed_at", UtcDateTime),
        sa.Column("redeemed_event_id", sa.String(200)),
        sa.Column("redeemed_store", sa.String(120)),
        sa.Column("redeemed_basket", Money),
        sa.Column("recorded_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rewards"),
        sa.UniqueConstraint("issue_key", name="uq_rewards_issue_key"),
        sa.UniqueConstraint("code", name="uq_rewards_code"),
        sa.CheckConstraint(
            "held_out OR code IS NOT NULL", name="ck_rewards_code_unless_held_out"
        ),
        sa.CheckConstraint(
            "expires_at > issued_at", name="ck_rewards_expires_after_issue"
        ),
    )
    op.create_index("ix_rewards_customer", "rewards", ["customer_key"])
    op.create_index("ix_rewards_campaign_issued", "rewards", ["campaign", "issued_at"])
    _create_attempts()


def _create_attempts() -> None:
    op.create_table(
        "redemption_attempts",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("attempt_key", sa.String(240), nullable=False),
        sa.Column("code", sa.String(64)),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("reward_id", sa.Integer),
        sa.Column("customer_key", sa.String(40)),
        sa.Column("event_id", sa.String(200)),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("store", sa.String(120)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(40)),
        sa.Column("attempted_at", UtcDateTime, nullable=False),
        sa.Column("recorded_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_redemption_attempts"),
        sa.UniqueConstraint("attempt_key", name="uq_redemption_attempts_attempt_key"),
    )
    op.create_index(
        "ix_redemption_attempts_reward", "redemption_attempts", ["reward_id"]
    )
    op.create_index(
        "ix_redemption_attempts_customer", "redemption_attempts", ["customer_key"]
    )


def downgrade() -> None:
    """Drop the loyalty tables."""
    op.drop_table("redemption_attempts")
    op.drop_table("rewards")
