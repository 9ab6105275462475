"""Live service: quarantine, API keys, webhook deliveries, raw inbox.

Revision ID: live_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tillsight.store.types import UtcDateTime

revision = "live_0001"
down_revision = "0001"
branch_labels = ("live",)
depends_on = None


def upgrade() -> None:
    """Create the live service's tables."""
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(64)),
        sa.Column("delivery_id", sa.String(200)),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("errors", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("body_bytes", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("resolved_at", UtcDateTime),
        sa.Column("resolution", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
    )
    op.create_index("ix_quarantine_status", "quarantine", ["status", "id"])
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(120), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("revoked_at", UtcDateTime),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
    )
    _create_inbox_tables()


def _create_inbox_tables() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("event_ids", sa.Text, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint(
            "source", "delivery_id", name="uq_webhook_deliveries_delivery"
        ),
    )
    op.create_table(
        "raw_inbox",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_raw_inbox"),
    )


def downgrade() -> None:
    """Drop the live service's tables."""
    op.drop_table("raw_inbox")
    op.drop_table("webhook_deliveries")
    op.drop_table("api_keys")
    op.drop_index("ix_quarantine_status", "quarantine")
    op.drop_table("quarantine")
