"""Salesforce connector: sync queue, synced state, dead letters, review, moments.

Revision ID: salesforce_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tillsight.store.types import UtcDateTime

revision = "salesforce_0001"
down_revision = "0001"
branch_labels = ("salesforce",)
depends_on = None


def upgrade() -> None:
    """Create the connector's tables."""
    op.create_table(
        "salesforce_pending",
        sa.Column("customer_key", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("enqueued_at", UtcDateTime, nullable=False),
        sa.Column("last_attempt_at", UtcDateTime),
        sa.PrimaryKeyConstraint("customer_key", name="pk_salesforce_pending"),
    )
    op.create_table(
        "salesforce_synced",
        sa.Column("customer_key", sa.String(40), nullable=False),
        sa.Column("sf_id", sa.String(18)),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("synced_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("customer_key", name="pk_salesforce_synced"),
    )
    _create_problem_tables()
    _create_progress_tables()


def _create_problem_tables() -> None:
    op.create_table(
        "salesforce_dead_letters",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("customer_key", sa.String(40), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("record_hash", sa.String(64)),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("resolved_at", UtcDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_salesforce_dead_letters"),
    )
    op.create_index(
        "ix_salesforce_dead_letters_customer",
        "salesforce_dead_letters",
        ["customer_key"],
    )
    op.create_table(
        "salesforce_review",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("customer_key", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("resolved_at", UtcDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_salesforce_review"),
    )
    op.create_index(
        "ix_salesforce_review_customer", "salesforce_review", ["customer_key"]
    )


def _create_progress_tables() -> None:
    op.create_table(
        "salesforce_checkpoints",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cursor", sa.String(40), nullable=False),
        sa.Column("job_id", sa.String(18)),
        sa.Column("job_last_key", sa.String(40)),
        sa.Column("paused_until", UtcDateTime),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_salesforce_checkpoints"),
    )
    op.create_table(
        "salesforce_moments",
        sa.Column("moment_key", sa.String(64), nullable=False),
        sa.Column("customer_key", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("rule_id", sa.String(64)),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sf_event_id", sa.String(18)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("published_at", UtcDateTime),
        sa.PrimaryKeyConstraint("moment_key", name="pk_salesforce_moments"),
    )
    op.create_index(
        "ix_salesforce_moments_status",
        "salesforce_moments",
        ["status", "occurred_at"],
    )


def downgrade() -> None:
    """Drop the connector's tables."""
    op.drop_index("ix_salesforce_moments_status", "salesforce_moments")
    op.drop_table("salesforce_moments")
    op.drop_table("salesforce_checkpoints")
    op.drop_index("ix_salesforce_review_customer", "salesforce_review")
    op.drop_table("salesforce_review")
    op.drop_index("ix_salesforce_dead_letters_customer", "salesforce_dead_letters")
    op.drop_table("salesforce_dead_letters")
    op.drop_table("salesforce_synced")
    op.drop_table("salesforce_pending")
