"""Contact details, kept apart from behaviour and sealed at rest.

The till's email and phone for a customer are what a CRM needs to reach them;
they live in ``people`` only, sealed with the data key (``tillsight.sealing``),
so erasing a person or losing a database copy exposes no address. Matching
customers never needs them: identities hold keyed hashes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.dialects import postgresql, sqlite

from tillsight.core.events import Event
from tillsight.identity import normalise_email, normalise_phone
from tillsight.sealing import seal_text
from tillsight.store import schema


def remember_contacts(
    conn: Connection,
    events: Iterable[tuple[Event, str | None]],
    now: datetime,
    region: str | None = "GB",
) -> None:
    """Keep the latest email and phone each customer's events named."""
    latest: dict[str, dict[str, Any]] = {}
    for event, key in events:
        identity = event.identity
        if key is None or not (identity.email or identity.phone):
            continue
        email = normalise_email(identity.email) if identity.email else None
        phone = normalise_phone(identity.phone, region) if identity.phone else None
        row = latest.setdefault(
            key, {"customer_key": key, "email": None, "phone": None}
        )
        row["email"] = seal_text(email) if email else row["email"]
        row["phone"] = seal_text(phone) if phone else row["phone"]
    rows = [row | {"updated_at": now} for row in latest.values()]
    rows = [row for row in rows if row["email"] or row["phone"]]
    if rows:
        _upsert(conn, rows)


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    people = schema.people
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(people)
    fresh = statement.excluded
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_key"],
            set_={
                "email": func.coalesce(fresh.email, people.c.email),
                "phone": func.coalesce(fresh.phone, people.c.phone),
                "updated_at": fresh.updated_at,
            },
        ),
        rows,
    )
