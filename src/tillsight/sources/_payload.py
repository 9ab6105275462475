"""Reading webhook JSON safely: paths, ids, money and times.

Every reader names the JSON path of a bad value in the ``InputError`` it raises,
so that a rejected webhook says exactly which field to look at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tillsight.core.events import Event
from tillsight.errors import InputError
from tillsight.ingest.canonical import AMOUNT

JSONObject = Mapping[str, Any]

_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class AdapterResult:
    """What one webhook delivery became.

    ``events`` is empty when the delivery is valid but says nothing the engine
    counts (a pending payment, a test order); ``ignored_reason`` then says why,
    for the caller's log. ``delivery_id`` is the vendor's id for this delivery,
    for deduplicating retries before any business key is looked at.
    """

    events: tuple[Event, ...]
    ignored_reason: str | None = None
    delivery_id: str | None = None


def ignored(reason: str, delivery_id: str | None) -> AdapterResult:
    """Build a result that carries no event, only the reason why."""
    return AdapterResult(events=(), ignored_reason=reason, delivery_id=delivery_id)


def bad(path: str, reason: str) -> InputError:
    """Build the error for one bad field."""
    return InputError([(path, reason)])


def obj(parent: JSONObject, key: str, path: str) -> JSONObject:
    """Return the object at ``key``, which must be present."""
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise bad(path, f"expected an object, got {_kind(value)}")
    return value


def items(parent: JSONObject, key: str, path: str) -> Sequence[JSONObject]:
    """Return the list of objects at ``key``; a missing key is an empty list."""
    value = parent.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise bad(path, f"expected a list, got {_kind(value)}")
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise bad(f"{path}[{index}]", f"expected an object, got {_kind(entry)}")
    return value


def text(parent: JSONObject, key: str, path: str) -> str:
    """Return the non-empty string at ``key``."""
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise bad(path, f"expected a non-empty string, got {_kind(value)}")
    return value


def optional_text(parent: JSONObject, key: str, path: str) -> str | None:
    """Return the string at ``key``, or None when it is missing, null or empty."""
    value = parent.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad(path, f"expected a string, got {_kind(value)}")
    return value


def identifier(value: object, path: str) -> str:
    """Return an id as text, exactly as sent.

    Shopify ids are integers above 2**53; a float has already lost digits, so it
    is refused rather than rounded into someone else's order.
    """
    if isinstance(value, bool) or value is None:
        raise bad(path, f"expected an id, got {_kind(value)}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, float):
        raise bad(
            path,
            f"id {value!r} is a float and may have lost digits; parse the body "
            "with integers intact",
        )
    raise bad(path, f"expected an id, got {_kind(value)}")


def optional_identifier(parent: JSONObject, key: str, path: str) -> str | None:
    """Return the id at ``key`` as text, or None when it is missing or null."""
    value = parent.get(key)
    if value is None or value == "":
        return None
    return identifier(value, path)


def currency(value: object, path: str) -> str:
    """Return an ISO 4217 code; whether tillsight supports it is the caller's call."""
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise bad(path, f"{value!r} is not an ISO 4217 currency code like 'USD'")
    return value


def decimal(value: object, path: str) -> Decimal:
    """Return a decimal amount written as a string, an integer or a Decimal.

    A float is read through its shortest repr, which is the text the JSON held.
    """
    if isinstance(value, bool):
        raise bad(path, f"expected a decimal amount, got {_kind(value)}")
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, int | Decimal):
        amount = Decimal(value)
    elif not isinstance(value, str):
        raise bad(path, f"expected a decimal amount, got {_kind(value)}")
    else:
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise bad(path, f"{value!r} is not a decimal amount like '12.50'") from None
    if not amount.is_finite():
        raise bad(path, f"{value!r} is not a decimal amount like '12.50'")
    # Bounded as it is read: an adapter multiplies before the event is checked,
    # and 1E+999999 times itself is past what Decimal can hold.
    too_large = AMOUNT.size_problem(amount)
    if too_large is not None:
        raise bad(path, too_large)
    return amount


def timestamp(value: object, path: str) -> datetime:
    """Return an RFC 3339 time; a time without an offset is refused."""
    if not isinstance(value, str):
        raise bad(path, f"expected an RFC 3339 timestamp, got {_kind(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad(
            path, f"{value!r} is not an RFC 3339 timestamp like '2024-05-01T09:30:00Z'"
        ) from None
    if moment.utcoffset() is None:
        raise bad(path, f"{value!r} has no UTC offset")
    return moment


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return type(value).__name__
