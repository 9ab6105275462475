"""Fingerprints no longer depend on the order of an event's lines.

Every stored event's fingerprint is worked out again from what the log keeps
of it, so that a file exported again with its lines in another order reads as
a repeat rather than a clash.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

from tillsight.store import schema
from tillsight.store.event_log import event_from_row, fingerprint

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 5_000
#: The columns this revision knows; later ones may add more.
_READ = (
    "event_id",
    "type",
    "occurred_at",
    "total",
    "currency",
    "store",
    "channel",
    "source",
    "refunds_event_id",
    "payload",
)


def upgrade() -> None:
    """Work the fingerprints out again, a batch of events at a time."""
    conn = op.get_bind()
    events = schema.events
    update = (
        sa.update(events)
        .where(events.c.event_id == sa.bindparam("id"))
        .values(fingerprint=sa.bindparam("print"))
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.select(*(events.c[name] for name in _READ))
            .where(events.c.event_id > after)
            .order_by(events.c.event_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        changes = [
            {
                "id": row.event_id,
                "print": fingerprint(event_from_row(row), orjson.loads(row.payload)),
            }
            for row in rows
        ]
        conn.execute(update, changes)
        after = rows[-1].event_id


def downgrade() -> None:
    """Nothing to undo: a fingerprint in either form tells repeats apart."""
