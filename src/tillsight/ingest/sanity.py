"""What no store can keep, refused the same way whatever door an event came in by.

The canonical reader, the webhook adapters and the file readers each build
events their own way; :func:`event_problems` looks at the finished event, so
the same input gets the same answer on SQLite and on PostgreSQL:

- every text is UTF-8 (a lone surrogate such as ``\\ud800`` is not) and holds
  no NUL character, which PostgreSQL refuses in text where SQLite keeps it;
- an identifier (event, customer, loyalty, store, channel, sku and line ids)
  is one line of visible text: it holds no control character such as a line
  break (U+2028 and U+2029 too) or an escape, which would also reach a
  terminal that shows it, and no invisible one (a zero-width space, a
  direction override, a byte order mark) that would make two ids look one;
- a text kept in a column of fixed size fits it; the sizes are the columns'
  own, read from :mod:`tillsight.store.schema`;
- quantities and amounts stay within :data:`~tillsight.ingest.canonical.QUANTITY`
  and :data:`~tillsight.ingest.canonical.AMOUNT`; totals, which may be worked
  out as quantity times price, are held to the size only;
- nothing happened before 1900-01-01 UTC: an earlier time is a till's clock
  or a time format gone wrong (history before 1970 is kept; year 1 would
  overflow the time arithmetic).

Field names are those of the canonical JSON (``lines[0].sku``,
``customer.email``), whichever source the event came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, String

from tillsight.core.events import Event
from tillsight.ingest.canonical import AMOUNT, QUANTITY
from tillsight.store import schema

__all__ = ["EARLIEST", "column_size", "event_problems", "text_problem"]

#: The first moment an event may carry.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)


def column_size(column: ColumnElement[Any]) -> int:
    """How many characters a ``String`` column holds."""
    size = column.type.length if isinstance(column.type, String) else None
    assert size is not None, f"{column} is not a String of a fixed size"
    return size


_EVENT_ID = column_size(schema.events.c.event_id)
_STORE = column_size(schema.events.c.store)
_CHANNEL = column_size(schema.events.c.channel)
_REFUNDS = column_size(schema.events.c.refunds_event_id)
# Loyalty and customer ids are looked up as they are, in ``identities.value``;
# emails and phones are looked up through a hash, so their length is free.
_IDENTITY = column_size(schema.identities.c.value)

_fits_quantity, _QUANTITY_STEP = QUANTITY.fits, QUANTITY.step
_fits_amount, _AMOUNT_STEP, _AMOUNT_LIMIT = AMOUNT.fits, AMOUNT.step, AMOUNT.limit

_Field = tuple[str, str | None, int | None]


def event_problems(event: Event, *, prefix: str = "") -> list[tuple[str, str]]:
    """Say what about ``event`` no store can keep, as ``(field, reason)`` pairs.

    ``prefix`` goes before every field name: ``"[3]."`` for a batch's fourth
    event.
    """
    return [] if _looks_clean(event) else _all_problems(event, prefix)


def _all_problems(event: Event, prefix: str) -> list[tuple[str, str]]:
    """Every problem of ``event``, field by field: the slow, naming path."""
    problems: list[tuple[str, str]] = []
    for name, value, limit in _texts(event):
        if value is not None:
            reason = text_problem(value, limit)
            if reason is None and _is_identifier(name):
                reason = _control_problem(value)
            if reason is not None:
                problems.append((prefix + name, reason))

    for name, reason in _number_problems(event):
        problems.append((prefix + name, reason))

    if event.occurred_at < EARLIEST:
        problems.append(
            (
                prefix + "occurred_at",
                f"{event.occurred_at.isoformat()} is before 1900; check the "
                "till's clock or the time format",
            )
        )
    return problems


def _looks_clean(event: Event) -> bool:
    """Whether ``event`` surely has no problem, in a few microseconds.

    Every live and replayed event comes through here and nearly all are
    clean, so the texts are checked joined and the numbers by the bounds'
    own one-call checks; only an event that fails is looked at field by
    field. Any text that :func:`_texts` yields must be in ``parts`` too.
    """
    identity = event.identity
    parts = [
        event.event_id,
        event.store or "",
        event.channel or "",
        event.refunds_event_id or "",
        identity.customer_id or "",
        identity.loyalty_id or "",
        identity.email or "",
        identity.phone or "",
        event.note,
        *event.refunded_line_ids,
    ]
    for line in event.lines:
        parts += (line.sku, line.description, line.line_id or "", *line.tags)
    for redemption in event.redemptions:
        parts.append(redemption.code or "")
    joined = "".join(parts)
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    ids = [*parts[:6], *event.refunded_line_ids]
    for line in event.lines:
        ids += (line.sku, line.line_id or "")
    if _has_control("".join(ids)):
        return False

    if (
        "\x00" in joined
        or len(event.event_id) > _EVENT_ID
        or len(event.store or "") > _STORE
        or len(event.channel or "") > _CHANNEL
        or len(event.refunds_event_id or "") > _REFUNDS
        or len(identity.customer_id or "") > _IDENTITY
        or len(identity.loyalty_id or "") > _IDENTITY
    ):
        return False

    # Offsets are under a day, so any year after 1900 is after its start.
    at = event.occurred_at
    return (at.year > EARLIEST.year or at >= EARLIEST) and _numbers_fit(event)


def _numbers_fit(event: Event) -> bool:
    """Whether every quantity and amount surely fits its bound.

    A value that fits comes back from ``fits`` equal to itself; a NaN comes
    back quietly, but unequal, and makes an ordering comparison raise.
    """
    try:
        if not abs(event.total) < _AMOUNT_LIMIT:
            return False
        for line in event.lines:
            if (
                not abs(line.total) < _AMOUNT_LIMIT
                or _fits_quantity(line.quantity, _QUANTITY_STEP) != line.quantity
                or _fits_amount(line.unit_price, _AMOUNT_STEP) != line.unit_price
            ):
                return False
        for redemption in event.redemptions:
            if _fits_amount(redemption.amount, _AMOUNT_STEP) != redemption.amount:
                return False
    except ArithmeticError:  # too large, too many places, or not a number
        return False
    return True


def _texts(event: Event) -> Iterator[_Field]:
    """Every text of the event, named, with the size of its column if any."""
    identity = event.identity
    yield "event_id", event.event_id, _EVENT_ID
    yield "store", event.store, _STORE
    yield "channel", event.channel, _CHANNEL
    yield "refunds_event_id", event.refunds_event_id, _REFUNDS
    yield "customer.customer_id", identity.customer_id, _IDENTITY
    yield "customer.loyalty_id", identity.loyalty_id, _IDENTITY
    yield "customer.email", identity.email, None
    yield "customer.phone", identity.phone, None
    yield "note", event.note, None
    for index, line in enumerate(event.lines):
        at = f"lines[{index}]"
        yield f"{at}.sku", line.sku, None
        yield f"{at}.description", line.description, None
        yield f"{at}.line_id", line.line_id, None
        for tag in line.tags:
            yield f"{at}.tags", tag, None
    for index, line_id in enumerate(event.refunded_line_ids):
        yield f"refunded_line_ids[{index}]", line_id, None
    for index, redemption in enumerate(event.redemptions):
        yield f"redemptions[{index}].code", redemption.code, None


# Control characters, then the invisible ones: zero-width spaces and joiners,
# direction marks and overrides, word joiners, the byte order mark.
_has_control = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]"
).search
_IDENTIFIERS = re.compile(
    r"(event_id|store|channel|refunds_event_id|customer\.(customer|loyalty)_id"
    r"|lines\[\d+\]\.(sku|line_id)|refunded_line_ids\[\d+\])"
).fullmatch


def _is_identifier(name: str) -> bool:
    return _IDENTIFIERS(name) is not None


def _control_problem(value: str) -> str | None:
    found = _has_control(value)
    if found is None:
        return None
    code = ord(found.group())
    return (
        f"holds a control or invisible character (U+{code:04X}) at character "
        f"{found.start() + 1}; an id is one line of visible text"
    )


def text_problem(value: str, limit: int | None = None) -> str | None:
    """Say why ``value`` cannot be stored in a column of ``limit`` characters.

    The reason never shows the value: it may be personal data, and a lone
    surrogate in it could not be written to a log or a table either.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(value[exc.start])
        return (
            f"is not UTF-8 text: character {exc.start + 1} is U+{code:04X}, "
            "a lone surrogate"
        )
    if "\x00" in value:
        return (
            f"holds a NUL character (U+0000) at character {value.index(chr(0)) + 1}; "
            "remove it"
        )
    if limit is not None and len(value) > limit:
        return f"is {len(value):,} characters long, over the limit of {limit:,}"
    return None


def _number_problems(event: Event) -> Iterator[tuple[str, str]]:
    """The quantities and amounts of ``event`` that no till could have written."""
    total = _total_problem(event.total)
    if total is not None:
        yield "total", total
    for index, line in enumerate(event.lines):
        at = f"lines[{index}]"
        for name, reason in (
            ("quantity", QUANTITY.problem(line.quantity)),
            ("unit_price", AMOUNT.problem(line.unit_price)),
            ("total", _total_problem(line.total)),
        ):
            if reason is not None:
                yield f"{at}.{name}", reason
    for index, redemption in enumerate(event.redemptions):
        reason = AMOUNT.problem(redemption.amount)
        if reason is not None:
            yield f"redemptions[{index}].amount", reason


def _total_problem(total: Decimal) -> str | None:
    # A total worked out as quantity times price may have more decimal places
    # than a till prints; only its size matters.
    if not total.is_finite():
        return AMOUNT.problem(total)
    return AMOUNT.size_problem(total)
