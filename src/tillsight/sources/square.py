"""Square webhooks to canonical events.

Contract of :func:`square_to_events`:

- It takes the parsed webhook body (``{merchant_id, type, event_id, created_at,
  data: {type, id, object}}``), already signature-checked, and returns an
  :class:`AdapterResult`: the events, or none and the reason they were ignored.
- A sale is keyed by its order: ``square:order:<order_id>``. A retry, a
  ``payment.updated`` after ``payment.created`` and an ``order.updated`` for the
  same sale all carry that id, so the event store keeps one of them.
- A refund is ``square:refund:<refund_id>``. Square records every refund in a
  *return order* of its own (``PaymentRefund.order_id``); that order's
  ``returns[].source_order_id`` names the sale, which becomes
  ``refunds_event_id``, and its return lines name the sale's lines.
- ``order.*`` events carry only a summary, and refunds need their return order,
  so both call ``fetch_order(order_id)``. It returns a RetrieveOrder body
  (``{"order": {...}}``) or a BatchRetrieveOrders body (``{"orders": [...]}``);
  ``SquareOrdersClient.retrieve_order`` is one. Payments use it when given, so
  that the event has the same lines whichever webhook arrives first; without
  it a payment becomes a sale with its amount and no lines.
- Only final states count: a payment or refund ``COMPLETED``, an order
  ``COMPLETED`` (an ``OPEN`` order is counted when its payment completes).
  Money is integer minor units; it becomes an exact ``Decimal`` using the
  currency's ISO 4217 exponent. Times are the object's ``created_at``, the
  till's time, never the delivery time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from tillsight.core.events import Event, EventType, Identity, Line
from tillsight.errors import NotFoundError, RemoteError
from tillsight.sources._payload import (
    AdapterResult,
    JSONObject,
    bad,
    currency,
    decimal,
    ignored,
    items,
    obj,
    optional_text,
    text,
    timestamp,
)

__all__ = ["OrderFetcher", "sale_event_id", "square_to_events"]

OrderFetcher = Callable[[str], Mapping[str, Any]]
"""Return the RetrieveOrder or BatchRetrieveOrders body for one order id."""

SOURCE = "square"

# ISO 4217 minor units that are not 2; Square amounts are in these units.
# fmt: off
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
    "KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0,
    "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}
# fmt: on
_PAYMENT_STATUSES = {"APPROVED", "PENDING", "COMPLETED", "CANCELED", "FAILED"}
_REFUND_STATUSES = {"PENDING", "COMPLETED", "REJECTED", "FAILED"}
_ORDER_STATES = {"OPEN", "COMPLETED", "CANCELED", "DRAFT"}


def sale_event_id(order_id: str) -> str:
    """Return the event id of the sale recorded in a Square order."""
    return f"square:order:{order_id}"


def square_to_events(
    payload: Mapping[str, Any], *, fetch_order: OrderFetcher | None = None
) -> AdapterResult:
    """Map one Square webhook body to canonical events."""
    delivery_id = optional_text(payload, "event_id", "event_id")
    kind = payload.get("type")
    if kind == "webhooks.test_notification":  # "Send test event" in Square's console
        return ignored("a test notification from Square", delivery_id)
    data = obj(payload, "data", "data")
    data_object = obj(data, "object", "data.object")

    if kind in ("payment.created", "payment.updated"):
        return _payment(data_object, fetch_order, delivery_id)
    if kind in ("refund.created", "refund.updated"):
        return _refund(data_object, _required(fetch_order, kind), delivery_id)
    if kind in ("order.created", "order.updated"):
        summary_key = "order_created" if kind == "order.created" else "order_updated"
        summary = obj(data_object, summary_key, f"data.object.{summary_key}")
        return _order(summary, summary_key, _required(fetch_order, kind), delivery_id)
    raise bad(
        "type",
        f"{kind!r} is not a Square webhook tillsight maps; subscribe to payment.*, "
        "refund.* and order.* events only",
    )


def _payment(
    data_object: JSONObject, fetch_order: OrderFetcher | None, delivery_id: str | None
) -> AdapterResult:
    path = "data.object.payment"
    payment = obj(data_object, "payment", path)
    status = _state(payment, "status", path, _PAYMENT_STATUSES)
    if status != "COMPLETED":
        return ignored(f"payment status {status} is not final", delivery_id)

    order_id = text(payment, "order_id", f"{path}.order_id")
    if fetch_order is None:
        sale = _sale_from_payment(payment, order_id)
        return AdapterResult((sale,), None, delivery_id)

    order = _fetch(fetch_order, order_id)
    state = optional_text(order, "state", "order.state")
    if state in ("CANCELED", "DRAFT"):
        return ignored(f"order {order_id} is {state}", delivery_id)
    return AdapterResult((_sale_from_order(order, payment),), None, delivery_id)


def _order(
    summary: JSONObject, key: str, fetch_order: OrderFetcher, delivery_id: str | None
) -> AdapterResult:
    path = f"data.object.{key}"
    state = _state(summary, "state", path, _ORDER_STATES)
    order_id = text(summary, "order_id", f"{path}.order_id")
    if state != "COMPLETED":
        return ignored(
            f"order {order_id} is {state}; an open order counts when its payment "
            "completes",
            delivery_id,
        )

    order = _fetch(fetch_order, order_id)
    state = _state(order, "state", "order", _ORDER_STATES)
    if state != "COMPLETED":
        return ignored(f"order {order_id} is {state} when fetched", delivery_id)
    if order.get("returns") and not order.get("line_items"):
        return ignored(
            f"order {order_id} is a return order; its refund webhook carries it",
            delivery_id,
        )
    return AdapterResult((_sale_from_order(order, None),), None, delivery_id)


def _refund(
    data_object: JSONObject, fetch_order: OrderFetcher, delivery_id: str | None
) -> AdapterResult:
    path = "data.object.refund"
    refund = obj(data_object, "refund", path)
    status = _state(refund, "status", path, _REFUND_STATUSES)
    if status != "COMPLETED":
        return ignored(f"refund status {status} is not final", delivery_id)

    refund_id = text(refund, "id", f"{path}.id")
    total, code = _money(refund, "amount_money", path)
    return_order = _fetch(fetch_order, text(refund, "order_id", f"{path}.order_id"))
    source_order_id, lines = _returned_lines(return_order, code)

    event = Event(
        event_id=f"square:refund:{refund_id}",
        type=EventType.RETURN,
        occurred_at=timestamp(refund.get("created_at"), f"{path}.created_at"),
        total=_not_negative(total, f"{path}.amount_money.amount"),
        currency=code,
        lines=lines,
        identity=_identity(return_order, None),
        store=optional_text(refund, "location_id", f"{path}.location_id"),
        source=SOURCE,
        refunds_event_id=sale_event_id(source_order_id) if source_order_id else None,
        refunded_line_ids=tuple(line.line_id for line in lines if line.line_id),
    )
    return AdapterResult((event,), None, delivery_id)


def _sale_from_payment(payment: JSONObject, order_id: str) -> Event:
    path = "data.object.payment"
    # amount_money leaves the tip out; a tip is not a purchase.
    total, code = _money(payment, "amount_money", path)

    return Event(
        event_id=sale_event_id(order_id),
        type=EventType.PURCHASE,
        occurred_at=timestamp(payment.get("created_at"), f"{path}.created_at"),
        total=_not_negative(total, f"{path}.amount_money.amount"),
        currency=code,
        identity=_identity(payment, payment),
        store=optional_text(payment, "location_id", f"{path}.location_id"),
        source=SOURCE,
    )


def _sale_from_order(order: JSONObject, payment: JSONObject | None) -> Event:
    order_id = text(order, "id", "order.id")
    total, code = _money(order, "total_money", "order")
    lines = tuple(
        _line(item, f"order.line_items[{index}]", code, item.get("uid"))
        for index, item in enumerate(items(order, "line_items", "order.line_items"))
    )
    if lines:
        total = sum((line.total for line in lines), Decimal(0))

    created_at = order.get("created_at")
    if created_at is None and payment is not None:
        created_at = payment.get("created_at")

    return Event(
        event_id=sale_event_id(order_id),
        type=EventType.PURCHASE,
        occurred_at=timestamp(created_at, "order.created_at"),
        total=_not_negative(total, "order.total_money.amount"),
        currency=code,
        lines=lines,
        identity=_identity(order, payment),
        store=optional_text(order, "location_id", "order.location_id"),
        source=SOURCE,
    )


def _returned_lines(
    return_order: JSONObject, code: str
) -> tuple[str | None, tuple[Line, ...]]:
    sources: set[str] = set()
    lines: list[Line] = []
    for index, entry in enumerate(items(return_order, "returns", "order.returns")):
        path = f"order.returns[{index}]"
        source = optional_text(entry, "source_order_id", f"{path}.source_order_id")
        if source:
            sources.add(source)
        for number, item in enumerate(
            items(entry, "return_line_items", f"{path}.return_line_items")
        ):
            item_path = f"{path}.return_line_items[{number}]"
            line_id = item.get("source_line_item_uid")
            lines.append(_line(item, item_path, code, line_id))

    # TODO: a return order that takes back lines of several sales is linked to
    # none of them, so those sales keep counting in full towards frequency rules.
    source_order_id = sources.pop() if len(sources) == 1 else None
    return source_order_id, tuple(lines)


def _line(item: JSONObject, path: str, code: str, line_id: object) -> Line:
    return Line(
        sku=optional_text(item, "catalog_object_id", f"{path}.catalog_object_id") or "",
        quantity=decimal(item.get("quantity"), f"{path}.quantity"),
        unit_price=_amount_in(item, "base_price_money", path, code),
        total=_amount_in(item, "total_money", path, code),
        description=optional_text(item, "name", f"{path}.name") or "",
        line_id=line_id if isinstance(line_id, str) and line_id else None,
    )


def _identity(holder: JSONObject, payment: JSONObject | None) -> Identity:
    customer_id = optional_text(holder, "customer_id", "customer_id")
    email = None
    if payment is not None:
        path = "data.object.payment"
        customer_id = customer_id or optional_text(
            payment, "customer_id", f"{path}.customer_id"
        )
        email = optional_text(
            payment, "buyer_email_address", f"{path}.buyer_email_address"
        )
    return Identity(
        customer_id=f"{SOURCE}:{customer_id}" if customer_id else None, email=email
    )


def _money(parent: JSONObject, key: str, path: str) -> tuple[Decimal, str]:
    money = obj(parent, key, f"{path}.{key}")
    code = currency(money.get("currency"), f"{path}.{key}.currency")
    amount = money.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise bad(
            f"{path}.{key}.amount",
            f"expected an integer amount in minor units, got {amount!r}",
        )
    return Decimal(amount).scaleb(-_EXPONENTS.get(code, 2)), code


def _amount_in(parent: JSONObject, key: str, path: str, code: str) -> Decimal:
    amount, found = _money(parent, key, path)
    if found != code:
        raise bad(f"{path}.{key}.currency", f"{found} differs from the order's {code}")
    return amount


def _state(parent: JSONObject, key: str, path: str, known: set[str]) -> str:
    value = text(parent, key, f"{path}.{key}")
    if value not in known:
        raise bad(f"{path}.{key}", f"{value!r} is not one of {sorted(known)}")
    return value


def _not_negative(total: Decimal, path: str) -> Decimal:
    if total < 0:
        raise bad(path, f"total {total} is negative")
    return total


def _required(fetch_order: OrderFetcher | None, kind: object) -> OrderFetcher:
    if fetch_order is None:
        # A RemoteError, so the service keeps the delivery for a retry.
        raise RemoteError(
            f"Square {kind} webhooks carry only a summary and the full order "
            "cannot be fetched: no Square access token is configured "
            "(TILLSIGHT_SQUARE_ACCESS_TOKEN)"
        )
    return fetch_order


def _fetch(fetch_order: OrderFetcher, order_id: str) -> JSONObject:
    body = fetch_order(order_id)
    single = body.get("order")
    found = [single] if isinstance(single, Mapping) else items(body, "orders", "orders")
    for order in found:
        if order.get("id") == order_id:
            return order
    raise NotFoundError(f"Square order {order_id!r} is not in the fetched body")
