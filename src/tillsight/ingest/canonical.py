"""The canonical event as JSON: what the HTTP API and JSON Lines files accept.

Money and quantities are exact. A JSON number should reach us as a ``Decimal``
(``json.loads(text, parse_float=Decimal)``, as :func:`read_jsonl` does); a
string such as ``"12.50"`` or an integer is read exactly too. A ``float`` that
another parser already made is read through its shortest repr, which gives
back the digits that were written for any amount of up to 15 significant
digits. Amounts are not rounded to the currency's minor unit: what the till
sent is what is kept.

A line tagged ``excluded`` (postage, fees: not a product) is kept on the event
but does not count towards the total. A line tagged ``discount`` carries its
sign in ``unit_price`` and ``total``: negative on a purchase (it lowers what was
paid), positive on a return (money given back). So an event's total is always
the sum of the totals of its lines that are not excluded.

Numbers must be ones a till could have written; anything else is an error
naming the field and the value, never a crash further on:

- a quantity is below ``QUANTITY_LIMIT`` (1,000,000) either side of zero;
- a unit price, a line total, an event total and a redemption amount are
  below ``AMOUNT_LIMIT`` (1,000,000,000 in the currency) either side of zero;
- each has at most ``DECIMAL_PLACES`` (6) decimal places, trailing zeros
  aside. A total computed as quantity × unit price is checked for size only.
- redeemed points are below ``POINTS_LIMIT`` (10^12).

The CSV reader applies the same bounds through :data:`QUANTITY` and
:data:`AMOUNT`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)

from tillsight.core.events import Event, EventType, Identity, Line, Redemption
from tillsight.errors import InputError

EXCLUDED_TAG = "excluded"
DISCOUNT_TAG = "discount"
QUANTITY_LIMIT = Decimal(10**6)
AMOUNT_LIMIT = Decimal(10**9)
DECIMAL_PLACES = 6
POINTS_LIMIT = 10**12


class Bound:
    """How large a quantity or an amount may be, and how many places it may have.

    ``fits(value, step)`` is one C call that raises ``InvalidOperation`` for a
    value out of bounds or not finite, and ``Inexact`` for one with too many
    decimal places: fast enough for every row of a file.
    """

    def __init__(self, noun: str, limit: Decimal, places: int) -> None:
        self.noun = noun
        self.limit = limit
        self.step = Decimal(1).scaleb(-places)
        digits = limit.adjusted() + places  # those of the largest value that fits
        self.fits = Context(prec=digits, traps=[InvalidOperation, Inexact]).quantize

    def problem(self, value: Decimal, text: str | None = None) -> str | None:
        """Say what is wrong with ``value`` (shown as ``text``), or None."""
        shown = str(value) if text is None else text
        if not value.is_finite():
            return f"'{shown}' is not a finite number"
        try:
            self.fits(value, self.step)
            return None
        except InvalidOperation:  # too large, or rounds up to too large
            too_large = self.size_problem(value, text)
            if too_large is not None:
                return too_large
        except Inexact:
            pass
        places = -self.step.as_tuple().exponent  # type: ignore[operator]
        return f"'{shown}' has more than {places} decimal places"

    def size_problem(self, value: Decimal, text: str | None = None) -> str | None:
        """Say whether ``value`` is too large, whatever its decimal places."""
        if abs(value) < self.limit:
            return None
        shown = str(value) if text is None else text
        return (
            f"'{shown}' is beyond any till: a {self.noun} must be under "
            f"{self.limit:,} in size"
        )


QUANTITY = Bound("quantity", QUANTITY_LIMIT, DECIMAL_PLACES)
AMOUNT = Bound("price or total", AMOUNT_LIMIT, DECIMAL_PLACES)


def localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """Read a wall-clock time in ``zone``.

    An ambiguous time (the hour repeated when clocks go back) is read as its
    first occurrence (``fold=0``). A time that does not exist (skipped when
    clocks go forward) raises ``ValueError``.
    """
    aware = naive.replace(tzinfo=zone, fold=0)
    round_trip = aware.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != naive:
        raise ValueError(
            f"does not exist in {zone.key} (the clocks went forward past it)"
        )
    return aware


def lines_total(lines: Iterable[Line]) -> Decimal:
    """Sum the totals of the lines that count: every line not tagged excluded."""
    total = Decimal(0)
    for line in lines:
        if EXCLUDED_TAG not in line.tags:
            total += line.total
    return total


# How a till writes a number: ASCII digits, at most one point, a sign, an
# exponent. Python's Decimal also reads "1_000", "١٢" and " 6 "; a till does not
# write those, and a spreadsheet that did may have changed the value too.
WRITTEN_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
NOT_WRITTEN_AS_A_NUMBER = "is not written as a number (ASCII digits, one point)"


def plain(number: Decimal) -> Decimal:
    """Give a finite number without a positive exponent: 1E+3 becomes 1000."""
    if number.as_tuple().exponent > 0:  # type: ignore[operator]
        return Decimal(format(number, "f"))
    return number


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"{value!r} is not a number or a numeric string")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    if isinstance(value, str) and not WRITTEN_NUMBER.fullmatch(value.strip()):
        raise ValueError(f"{value!r} {NOT_WRITTEN_AS_A_NUMBER}")
    return plain(number)


def _to_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(
            f"{value!r} is not a string; send ids as strings so that no digit is lost"
        )
    text = str(value).strip()
    if not text:
        raise ValueError("is empty")
    return text


Amount = Annotated[
    Decimal,
    PlainValidator(_to_decimal),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": ["string", "number"], "examples": ["12.50"]}),
]
Id = Annotated[
    str,
    PlainValidator(_to_id),
    WithJsonSchema({"type": "string", "examples": ["1001"]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CanonicalLine(_Strict):
    """One line; ``total`` defaults to quantity × unit price."""

    sku: Id
    description: str = ""
    quantity: Amount
    unit_price: Amount
    total: Amount | None = None
    tags: list[str] = Field(default_factory=list)
    line_id: Id | None = None


class CanonicalCustomer(_Strict):
    """Who the customer is, as far as the till knows; all optional."""

    customer_id: Id | None = None
    loyalty_id: Id | None = None
    email: str | None = None
    phone: str | None = None


class CanonicalRedemption(_Strict):
    """A reward code or points the till took as payment, with the money it took."""

    code: str | None = Field(default=None, min_length=4, max_length=64)
    points: int = Field(default=0, ge=0, lt=POINTS_LIMIT)
    amount: Amount = Decimal(0)


class CanonicalEvent(_Strict):
    """A purchase or a return in the shape the API and JSON Lines files accept."""

    event_id: Id
    type: Literal["purchase", "return"]
    occurred_at: str
    total: Amount | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    lines: list[CanonicalLine] = Field(default_factory=list)
    customer: CanonicalCustomer = Field(default_factory=CanonicalCustomer)
    store: str | None = None
    channel: str | None = None
    refunds_event_id: Id | None = None
    refunded_line_ids: list[Id] = Field(default_factory=list)
    redemptions: list[CanonicalRedemption] = Field(default_factory=list)


def parse_canonical(data: Any) -> CanonicalEvent:
    """Validate a decoded JSON value; raise ``InputError`` naming each bad field."""
    try:
        return CanonicalEvent.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            [(_field_path(e["loc"]), _reason(e)) for e in exc.errors()]
        ) from exc


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "(event)"


def _reason(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    shown = repr(error.get("input"))
    if error["type"] in ("missing", "extra_forbidden") or shown in message:
        return message  # nothing to add, or the message already shows the value
    return f"{message} (got {shown})"


def to_event(
    model: CanonicalEvent, default_zone: ZoneInfo, *, source: str = "api"
) -> Event:
    """Build the engine's event; a time without offset is read in ``default_zone``."""
    problems: list[tuple[str, str]] = []
    occurred_at = _occurred_at(model.occurred_at, default_zone, problems)
    lines = tuple(
        _line(line, index, problems) for index, line in enumerate(model.lines)
    )
    total = _event_total(model, lines, problems)
    _check_return_fields(model, problems)
    _check_tenders(model, total, problems)
    if problems or occurred_at is None:
        raise InputError(problems)

    return Event(
        event_id=model.event_id,
        type=EventType(model.type),
        occurred_at=occurred_at,
        total=total,
        currency=model.currency,
        lines=lines,
        identity=Identity(**model.customer.model_dump()),
        store=model.store,
        channel=model.channel,
        source=source,
        refunds_event_id=model.refunds_event_id,
        refunded_line_ids=tuple(model.refunded_line_ids),
        redemptions=tuple(
            Redemption(r.code, r.points, r.amount) for r in model.redemptions
        ),
    )


def _occurred_at(
    text: str, zone: ZoneInfo, problems: list[tuple[str, str]]
) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else localize(parsed, zone)
    except ValueError as exc:
        reason = str(exc) if "exist" in str(exc) else "is not an ISO 8601 time"
        problems.append(("occurred_at", f"{text!r} {reason}"))
        return None


def _line(line: CanonicalLine, index: int, problems: list[tuple[str, str]]) -> Line:
    at = f"lines[{index}]"
    if line.quantity <= 0:
        problems.append((f"{at}.quantity", f"{line.quantity} is not above zero"))
    _check(problems, f"{at}.quantity", QUANTITY.problem(line.quantity))
    _check(problems, f"{at}.unit_price", AMOUNT.problem(line.unit_price))
    if line.total is None:
        total = line.quantity * line.unit_price
        _check(problems, f"{at}.total", AMOUNT.size_problem(total))
    else:
        total = line.total
        _check(problems, f"{at}.total", AMOUNT.problem(total))
    return Line(
        sku=line.sku,
        quantity=line.quantity,
        unit_price=line.unit_price,
        total=total,
        description=line.description,
        tags=frozenset(line.tags),
        line_id=line.line_id,
    )


def _check(problems: list[tuple[str, str]], field: str, problem: str | None) -> None:
    if problem is not None:
        problems.append((field, problem))


def _event_total(
    model: CanonicalEvent, lines: tuple[Line, ...], problems: list[tuple[str, str]]
) -> Decimal:
    if model.total is None and not lines:
        problems.append(("total", "is missing and there are no lines to sum"))
        return Decimal(0)

    summed = lines_total(lines)
    if model.total is None:
        _check(problems, "total", AMOUNT.size_problem(summed))
    else:
        unreadable = AMOUNT.problem(model.total)
        _check(problems, "total", unreadable)
        if unreadable is None and lines and model.total != summed:
            problems.append(
                ("total", f"{model.total} differs from the sum of the lines, {summed}")
            )
    total = summed if model.total is None else model.total
    if total < 0:
        problems.extend(_negative_total(model, lines, total))
    return total


def _negative_total(
    model: CanonicalEvent, lines: tuple[Line, ...], total: Decimal
) -> list[tuple[str, str]]:
    """Name the fields the event gave that made its total negative.

    A total the event gave is named itself; one summed from the lines names
    each negative unit price or line total behind it, for the sender to find.
    A negative quantity is already named as not above zero.
    """
    if model.total is not None:
        return [("total", f"{total} is negative")]
    problems: list[tuple[str, str]] = []
    is_named = False
    for index, (given, line) in enumerate(zip(model.lines, lines, strict=True)):
        if line.total >= 0 or EXCLUDED_TAG in line.tags:
            continue
        is_named = True
        if given.quantity < 0:
            continue
        field, value = (
            ("unit_price", given.unit_price)
            if given.unit_price < 0
            else ("total", line.total)
        )
        problems.append(
            (
                f"lines[{index}].{field}",
                f"{value} is negative, which makes the event's total {total}",
            )
        )
    return problems if is_named else [("total", f"{total} is negative")]


def _check_return_fields(
    model: CanonicalEvent, problems: list[tuple[str, str]]
) -> None:
    for index, redemption in enumerate(model.redemptions):
        where = f"redemptions[{index}]"
        problem = AMOUNT.problem(redemption.amount)
        if problem is None and redemption.amount < 0:
            problem = f"{redemption.amount} is negative: a tender takes money off"
        _check(problems, f"{where}.amount", problem)
        if redemption.code is None and not redemption.points:
            problems.append((where, "names neither a reward code nor points"))
    if model.type == "return":
        if model.redemptions:
            problems.append(("redemptions", "a return never spends a reward"))
        return
    if model.refunds_event_id is not None:
        problems.append(("refunds_event_id", "is only allowed on a return"))
    if model.refunded_line_ids:
        problems.append(("refunded_line_ids", "is only allowed on a return"))


def _check_tenders(
    model: CanonicalEvent, total: Decimal, problems: list[tuple[str, str]]
) -> None:
    """Rewards and points cannot pay more than the sale comes to."""
    try:
        tendered = sum((r.amount for r in model.redemptions), Decimal(0))
    except ArithmeticError:
        return  # an amount out of bounds, already named
    if tendered > total >= 0:  # a negative total is an error of its own
        problems.append(
            (
                "redemptions",
                f"take {tendered} off a sale of {total}: rewards and points "
                "cannot pay more than the sale",
            )
        )


def event_to_json(event: Event) -> dict[str, Any]:
    """Turn an event back into canonical JSON (money as strings, time with offset)."""
    identity = {
        name: value
        for name in ("customer_id", "loyalty_id", "email", "phone")
        if (value := getattr(event.identity, name)) is not None
    }
    payload: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type.value,
        "occurred_at": event.occurred_at.isoformat(),
        "total": str(event.total),
        "currency": event.currency,
        "lines": [_line_to_json(line) for line in event.lines],
        "customer": identity,
        "store": event.store,
        "channel": event.channel,
        "refunds_event_id": event.refunds_event_id,
        "refunded_line_ids": list(event.refunded_line_ids),
    }
    if event.redemptions:
        payload["redemptions"] = [
            {"code": r.code, "points": r.points, "amount": str(r.amount)}
            for r in event.redemptions
        ]
    return payload


def _line_to_json(line: Line) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "description": line.description,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price),
        "total": str(line.total),
        "tags": sorted(line.tags),
        "line_id": line.line_id,
    }
