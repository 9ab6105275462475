"""Who sent this event: identity hints to one customer key, under lock.

Unlike the replay's cached ``Directory``, this resolver asks the database on
every event, because other service processes create and merge customers at
the same time. New hints are claimed with an atomic insert and read back, so
two requests racing for a brand-new customer end with one key. When an
event's hints belong to two or more customers, they are the same person: the
caller merges the others into the survivor (the owner of the strongest hint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, delete

from tillsight.core.events import Identity
from tillsight.identity import hints
from tillsight.live.store import LiveStore
from tillsight.store import schema
from tillsight.store.bulk import Bulk
from tillsight.store.customers import (
    claim_hints,
    insert_blank_customers,
    new_customer_key,
)

Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Resolution:
    """The customer an event belongs to and the profiles to merge into it."""

    key: str | None
    merge: list[str] = field(default_factory=list)


class Resolver:
    """Resolves identities to customer keys inside the caller's transaction."""

    def __init__(self, store: LiveStore, secret: bytes, region: str | None) -> None:
        self._store = store
        self._secret = secret
        self._region = region

    @property
    def region(self) -> str | None:
        """The country a phone number without a country code is read in."""
        return self._region

    def resolve(
        self, conn: Connection, identity: Identity, now: datetime
    ) -> Resolution:
        """Find or make the customer; lock every customer involved."""
        pairs = hints(identity, self._secret, self._region)
        if not pairs:
            return Resolution(None)
        owners = _owners(conn, pairs)
        keys = _keys_in_order(pairs, owners)
        made = None
        if not keys:
            made = new_customer_key()
            insert_blank_customers(conn, [made], now)
            keys = [made]
        self._store.lock_customers(conn, keys)

        missing = sorted(pair for pair in pairs if pair not in owners)
        if missing:
            keys = self._claim(conn, pairs, missing, keys[0], made)
        return Resolution(keys[0], keys[1:])

    def _claim(
        self,
        conn: Connection,
        pairs: list[Pair],
        missing: list[Pair],
        key: str,
        made: str | None,
    ) -> list[str]:
        """Insert the new hints for ``key``; hints another request won stay its."""
        claim_hints(conn, [(kind, value, key) for kind, value in missing])
        keys = _keys_in_order(pairs, _owners(conn, pairs))
        if made is not None and made not in keys:
            # Another request made this customer first; ours was never used.
            conn.execute(delete(schema.customers).where(schema.customers.c.key == made))
        self._store.lock_customers(conn, keys)
        return keys


def _owners(conn: Connection, pairs: Sequence[Pair]) -> dict[Pair, str]:
    """Who holds each of these hints (on the driver's cursor: the hot path)."""
    bulk = Bulk(conn)
    wanted = " OR ".join(["(kind = ? AND value = ?)"] * len(pairs))
    rows = bulk.execute(
        bulk.sql(f"SELECT kind, value, customer_key FROM identities WHERE {wanted}"),
        [part for pair in pairs for part in pair],
    )
    return {(kind, value): key for kind, value, key in rows}


def _keys_in_order(pairs: Sequence[Pair], owners: dict[Pair, str]) -> list[str]:
    """Distinct owners, the owner of the strongest hint first."""
    keys: list[str] = []
    for pair in pairs:
        key = owners.get(pair)
        if key is not None and key not in keys:
            keys.append(key)
    return keys
