"""Rewards can be withdrawn when the decision that issued them is superseded.

Revision ID: loyalty_0002
Revises: loyalty_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tillsight.store.types

revision = "loyalty_0002"
down_revision = "loyalty_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("withdrawn_at", tillsight.store.types.UtcDateTime(length=40))
        )


def downgrade() -> None:
    with op.batch_alter_table("rewards", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_at")
