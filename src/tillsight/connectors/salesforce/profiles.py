"""Profiles as Salesforce sees them: read from the store, turned into records.

A record is the field dictionary sent to Salesforce. Its hash, over a canonical
JSON form, tells the sync whether Salesforce already holds exactly this record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, RowMapping, select

from tillsight.connectors.salesforce.config import SalesforceSettings
from tillsight.sealing import unseal_text
from tillsight.store.schema import customers, people

Record = dict[str, Any]

# The deployed spend field has scale 2; the store keeps up to 6 decimals on
# PostgreSQL and the written text on SQLite, so both are brought to cents.
CENTS = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Profile:
    """What tillsight tells Salesforce about one customer."""

    customer_key: str
    stage: str | None = None
    segments: tuple[str, ...] = ()
    tier: str | None = None
    points_balance: int = 0
    lifetime_net_spend: Decimal = Decimal("0")
    last_purchase_at: datetime | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    consent_email: bool = False
    consent_sms: bool = False
    merged_into: str | None = field(default=None, kw_only=True)


def read_profiles(conn: Connection, keys: Iterable[str]) -> dict[str, Profile]:
    """Read the profiles of the given customers; unknown keys are left out."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}

    c, p = customers.c, people.c
    query = (
        select(
            *(c.key, c.stage, c.segments, c.tier, c.points_balance),
            *(c.lifetime_net_spend, c.last_purchase_at, c.merged_into),
            *(p.email, p.first_name, p.last_name, p.consent_email, p.consent_sms),
        )
        .select_from(customers.outerjoin(people))
        .where(customers.c.key.in_(wanted))
    )
    return {row.key: _profile_from_row(row._mapping) for row in conn.execute(query)}


def _profile_from_row(row: RowMapping) -> Profile:
    return Profile(
        customer_key=row["key"],
        stage=row["stage"],
        segments=tuple(sorted(json.loads(row["segments"] or "[]"))),
        tier=row["tier"],
        points_balance=int(row["points_balance"] or 0),
        lifetime_net_spend=Decimal(row["lifetime_net_spend"] or 0),
        last_purchase_at=row["last_purchase_at"],
        email=unseal_text(row["email"]),
        first_name=row["first_name"],
        last_name=row["last_name"],
        consent_email=bool(row["consent_email"]),
        consent_sms=bool(row["consent_sms"]),
        merged_into=row["merged_into"],
    )


def sf_datetime(value: datetime) -> str:
    """Format an instant the way Salesforce writes dateTime values (UTC, ms)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def to_record(profile: Profile, settings: SalesforceSettings) -> Record:
    """Build the Salesforce field values of a profile, keyed by API name.

    A merged customer is reduced to the pointer at the surviving customer, so
    that the CRM record is marked merged rather than refreshed.
    """
    fields = settings.fields
    record: Record = {settings.external_id_field: profile.customer_key}
    if profile.merged_into is not None:
        if fields.merged_into is not None:
            record[fields.merged_into] = profile.merged_into
        return record

    values: dict[str, Any] = {
        "stage": profile.stage,
        "segments": ";".join(profile.segments) or None,
        "tier": profile.tier,
        "points_balance": profile.points_balance,
        "lifetime_net_spend": profile.lifetime_net_spend.quantize(
            CENTS, rounding=ROUND_HALF_UP
        ),
        "last_purchase_at": (
            sf_datetime(profile.last_purchase_at) if profile.last_purchase_at else None
        ),
        "consent_email": profile.consent_email,
        "consent_sms": profile.consent_sms,
    }
    for attr, api_name in fields.owned().items():
        if attr in values:
            record[api_name] = values[attr]

    _add_person_fields(record, profile, settings)
    return record


def _add_person_fields(
    record: Record, profile: Profile, settings: SalesforceSettings
) -> None:
    fields = settings.fields
    last_name = profile.last_name or settings.last_name_fallback
    person = (
        (fields.email, profile.email),
        (fields.first_name, profile.first_name),
        (fields.last_name, last_name),
    )
    for api_name, value in person:
        # Only known values: tillsight must not wipe what a person typed in the CRM.
        if api_name is not None and value:
            record[api_name] = value
    if settings.record_type_id is not None:
        record["RecordTypeId"] = settings.record_type_id


def dumps_exact(value: Any) -> str:
    """Encode JSON with decimals written exactly, never through a float."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k))}:{dumps_exact(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ",".join(dumps_exact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def record_hash(record: Record) -> str:
    """Hash a record so that an unchanged profile is never sent twice."""
    canonical = dumps_exact(dict(sorted(record.items())))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
