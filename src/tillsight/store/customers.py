"""Who is who: resolving identity hints to opaque customer keys."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, select, tuple_

from tillsight.core.events import Identity
from tillsight.identity import hints
from tillsight.store import schema
from tillsight.store.bulk import Bulk
from tillsight.store.writer import insert_ignoring_duplicates

_CHUNK = 400
_SECRET_SETTING = "identity_secret"


def new_customer_key() -> str:
    """An opaque, unguessable customer key that says nothing about the person."""
    return "cus_" + secrets.token_hex(10)


def identity_secret(conn: Connection) -> bytes:
    """The key for the blind index of emails and phones, made on first use."""
    table = schema.settings
    found = conn.execute(
        select(table.c.value).where(table.c.name == _SECRET_SETTING)
    ).scalar_one_or_none()
    if found is None:
        insert_ignoring_duplicates(
            conn, table, [{"name": _SECRET_SETTING, "value": secrets.token_hex(32)}]
        )
        return identity_secret(conn)
    return bytes.fromhex(found)


class Directory:
    """Resolves identities to customer keys, creating customers on first sight.

    Lookups are cached for the life of the directory, so a replay asks the
    database about each hint once.
    """

    def __init__(self, secret: bytes, region: str | None = "GB") -> None:
        self._secret = secret
        self._region = region
        self._cache: dict[tuple[str, str], str] = {}
        self.merges: list[tuple[str, list[str]]] = []

    @property
    def region(self) -> str | None:
        """Where a phone number without a country code is read."""
        return self._region

    def resolve(
        self, conn: Connection, identities: Sequence[Identity], now: datetime
    ) -> list[str | None]:
        """A key for each identity (None for a guest), in the same order."""
        per_event = [hints(i, self._secret, self._region) for i in identities]
        self._load(conn, {pair for pairs in per_event for pair in pairs})
        new_customers: list[str] = []
        new_pairs: list[tuple[str, str, str]] = []
        keys = [
            self._key_for(pairs, now, new_customers, new_pairs) for pairs in per_event
        ]
        insert_blank_customers(conn, new_customers, now)
        claim_hints(conn, new_pairs)
        return keys

    def _key_for(
        self,
        pairs: list[tuple[str, str]],
        now: datetime,
        new_customers: list[str],
        new_pairs: list[tuple[str, str, str]],
    ) -> str | None:
        if not pairs:
            return None
        found = [self._cache[pair] for pair in pairs if pair in self._cache]
        key = found[0] if found else None
        others = sorted({other for other in found if other != key})
        if key is not None and others:
            self._merge_later(key, others)
        if key is None:
            key = new_customer_key()
            new_customers.append(key)
        for kind, value in pairs:
            if (kind, value) not in self._cache:
                self._cache[(kind, value)] = key
                new_pairs.append((kind, value, key))
        return key

    def _merge_later(self, survivor: str, others: list[str]) -> None:
        """Note that these profiles are one person: the strongest hint's wins.

        The caller merges them (``take_merges``); from now on every hint of the
        others resolves to the survivor.
        """
        self.merges.append((survivor, others))
        for pair, owner in self._cache.items():
            if owner in others:
                self._cache[pair] = survivor

    def take_merges(self) -> list[tuple[str, list[str]]]:
        """The merges found since the last call, oldest first."""
        merges, self.merges = self.merges, []
        return merges

    def _load(self, conn: Connection, pairs: set[tuple[str, str]]) -> None:
        unknown = [pair for pair in pairs if pair not in self._cache]
        table = schema.identities
        columns = tuple_(table.c.kind, table.c.value)
        for start in range(0, len(unknown), _CHUNK):
            chunk = unknown[start : start + _CHUNK]
            rows = conn.execute(
                select(table.c.kind, table.c.value, table.c.customer_key).where(
                    columns.in_(chunk)
                )
            )
            for kind, value, key in rows:
                self._cache[(kind, value)] = key


def insert_blank_customers(
    conn: Connection, keys: Sequence[str], now: datetime
) -> None:
    """Insert profiles that have no events applied yet."""
    bulk = Bulk(conn)
    stamp = bulk.moment(now)
    zero = bulk.money(Decimal(0))
    bulk.insert(
        schema.customers,
        _BLANK_COLUMNS,
        [(key, "[]", 0, zero, 0, "{}", stamp, stamp) for key in keys],
    )


def claim_hints(conn: Connection, rows: Sequence[tuple[str, str, str]]) -> None:
    """Give each ``(kind, value)`` hint to its customer key; a hint already
    held by someone is left to its holder (atomic: racing claims, one wins)."""
    Bulk(conn).insert(
        schema.identities,
        ("kind", "value", "customer_key"),
        rows,
        ignore_duplicates=True,
    )


_BLANK_COLUMNS = (
    "key",
    "segments",
    "purchase_count",
    "lifetime_net_spend",
    "points_balance",
    "state",
    "created_at",
    "updated_at",
)
