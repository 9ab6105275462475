"""API keys with scopes, stored as hashes.

A key reads ``tsk_<key id>_<secret>``. Only the SHA-256 of the secret is
stored (the secret is 32 random bytes, so a slow hash would add nothing);
the full key is shown once, when it is made. Scopes: ``ingest`` (send
events), ``read`` (customers, firings), ``admin`` (everything, including the
quarantine). Verified keys are remembered for a few seconds so that a busy
client does not cost a query per request; a revoked key stops working
within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from tillsight.errors import AuthError, ConfigError, NotFoundError, ScopeError
from tillsight.live.store import LiveStore
from tillsight.live.tables import api_keys

SCOPES = ("ingest", "read", "admin")
PREFIX = "tsk_"
_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never its secret."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


class Keys:
    """Makes, checks, lists and revokes API keys."""

    def __init__(self, store: LiveStore) -> None:
        self.store = store
        self._verified: dict[str, tuple[float, tuple[str, ...]]] = {}

    def create(self, name: str, scopes: Iterable[str], now: datetime) -> str:
        """Make a key and return it in full (the only time it is shown)."""
        wanted = tuple(sorted(set(scopes)))
        unknown = [scope for scope in wanted if scope not in SCOPES]
        if unknown or not wanted:
            raise ConfigError(
                f"scopes {unknown or '(none)'} are not valid; choose from {SCOPES}"
            )
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = {
            "key_id": key_id,
            "name": name,
            "secret_hash": _hash(secret),
            "scopes": ",".join(wanted),
            "created_at": now,
        }
        self.store.write(lambda conn: conn.execute(api_keys.insert().values(row)))
        return f"{PREFIX}{key_id}_{secret}"

    def require(self, token: str | None, scope: str) -> str:
        """Check a key and its scope; return the key id."""
        if not token:
            raise AuthError("missing API key: send it as 'Authorization: Bearer …'")
        key_id, scopes = self._scopes(token)
        return _in_scope(key_id, scopes, scope)

    def require_cached(self, token: str | None, scope: str) -> str | None:
        """:meth:`require` from memory alone; None when the database must say."""
        cached = self._verified.get(token) if token else None
        if token is None or cached is None or cached[0] <= time.monotonic():
            return None
        return _in_scope(_key_id(token), cached[1], scope)

    def list(self) -> list[ApiKey]:
        """Every key, newest first."""
        with self.store.read() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at.desc()))
            return [
                ApiKey(
                    row.key_id,
                    row.name,
                    tuple(row.scopes.split(",")),
                    row.created_at,
                    row.revoked_at,
                )
                for row in rows
            ]

    def revoke(self, key_id: str, now: datetime) -> None:
        """Stop a key from working."""

        def work(conn: Connection) -> int:
            result = conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return result.rowcount

        if not self.store.write(work):
            raise NotFoundError(f"no active API key {key_id!r}")
        self._verified.clear()

    def _scopes(self, token: str) -> tuple[str, tuple[str, ...]]:
        cached = self._verified.get(token)
        if cached is not None and cached[0] > time.monotonic():
            return _key_id(token), cached[1]
        key_id, _, secret = token.removeprefix(PREFIX).partition("_")
        if not token.startswith(PREFIX) or not secret:
            raise AuthError("malformed API key: expected tsk_<id>_<secret>")
        with self.store.read() as conn:
            row = conn.execute(
                select(api_keys.c.secret_hash, api_keys.c.scopes).where(
                    api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)
                )
            ).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            raise AuthError("unknown or revoked API key")
        scopes = tuple(row.scopes.split(","))
        self._verified[token] = (time.monotonic() + _CACHE_SECONDS, scopes)
        return key_id, scopes


def _in_scope(key_id: str, scopes: tuple[str, ...], scope: str) -> str:
    if scope not in scopes and "admin" not in scopes:
        raise ScopeError(f"API key {key_id} lacks the {scope!r} scope")
    return key_id


def _key_id(token: str) -> str:
    return token[len(PREFIX) :].split("_", 1)[0]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
