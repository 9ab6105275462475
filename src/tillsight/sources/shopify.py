"""Shopify order and refund webhooks to canonical events.

Contract of :func:`shopify_to_events`:

- It takes the topic (``X-Shopify-Topic``), the parsed, signature-checked body
  and the delivery id (``X-Shopify-Webhook-Id``, returned as ``delivery_id`` for
  the caller's retry check), and returns an :class:`AdapterResult`.
- ``orders/create``, ``orders/paid`` and ``orders/updated`` for one order all
  become the same purchase, ``shopify:order:<id>``: Shopify sends several of
  them per sale and retries each, and the event store keeps one.
- ``refunds/create`` becomes a return ``shopify:refund:<id>`` linked to
  ``shopify:order:<order_id>``. Its total is what the successful refund
  transactions paid back, or, when the refund moved no money through a
  transaction, the subtotal of its refund line items.
- A purchase's total is the sum of its lines after their discount allocations
  (before tax and shipping); an order without line items uses its
  ``subtotal_price``. Amounts are read from the ``*_set.shop_money`` strings
  when present, so the payload currency (the shop's) is the event currency.
- Ids are JSON integers above 2**53 and are kept as text; an id that arrives as
  a float is refused, because its digits are already lost.
- Test, cancelled and unpaid orders are ignored with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from tillsight.core.events import Event, EventType, Identity, Line
from tillsight.sources._payload import (
    AdapterResult,
    JSONObject,
    bad,
    currency,
    decimal,
    identifier,
    ignored,
    items,
    optional_identifier,
    optional_text,
    timestamp,
)

__all__ = ["ORDER_TOPICS", "REFUND_TOPIC", "order_event_id", "shopify_to_events"]

SOURCE = "shopify"
ORDER_TOPICS = frozenset({"orders/create", "orders/paid", "orders/updated"})
REFUND_TOPIC = "refunds/create"

_PAID = {"paid", "partially_refunded", "refunded"}
_UNPAID = {"pending", "authorized", "partially_paid", "voided", "expired"}
_TRANSACTION_KINDS = {
    "authorization",
    "capture",
    "sale",
    "void",
    "refund",
    "change",
    "suggested_refund",
    "emv_authorization",
}
_TRANSACTION_STATUSES = {
    "pending",
    "failure",
    "success",
    "error",
    "awaiting_response",
    "unknown",
}


def shopify_to_events(
    topic: str, payload: Mapping[str, Any], *, webhook_id: str | None
) -> AdapterResult:
    """Map one Shopify webhook body to canonical events."""
    if topic in ORDER_TOPICS:
        return _order(payload, webhook_id)
    if topic == REFUND_TOPIC:
        return _refund(payload, webhook_id)
    raise bad(
        "topic",
        f"{topic!r} is not a Shopify topic tillsight maps; subscribe to "
        f"{', '.join(sorted(ORDER_TOPICS))} and {REFUND_TOPIC}",
    )


def order_event_id(order_id: str) -> str:
    """Return the event id of the purchase recorded in a Shopify order."""
    return f"shopify:order:{order_id}"


def _order(order: JSONObject, webhook_id: str | None) -> AdapterResult:
    order_id = identifier(order.get("id"), "id")
    if order.get("test") is True:
        return ignored(f"order {order_id} is a test order", webhook_id)
    if order.get("cancelled_at"):
        return ignored(f"order {order_id} is cancelled", webhook_id)
    status = optional_text(order, "financial_status", "financial_status")
    if status not in _PAID | _UNPAID:
        raise bad("financial_status", f"{status!r} is not a Shopify financial status")
    if status not in _PAID:
        return ignored(f"order {order_id} is {status}, not paid", webhook_id)

    code = currency(order.get("currency"), "currency")
    lines = tuple(
        _sale_line(item, f"line_items[{index}]")
        for index, item in enumerate(items(order, "line_items", "line_items"))
    )
    if lines:
        total = sum((line.total for line in lines), Decimal(0))
    else:
        total = _shop_amount(order, "subtotal_price", "")

    event = Event(
        event_id=order_event_id(order_id),
        type=EventType.PURCHASE,
        occurred_at=_occurred_at(order),
        total=_not_negative(total),
        currency=code,
        lines=lines,
        identity=_identity(order),
        store=optional_identifier(order, "location_id", "location_id"),
        source=SOURCE,
    )
    return AdapterResult((event,), None, webhook_id)


def _refund(refund: JSONObject, webhook_id: str | None) -> AdapterResult:
    refund_id = identifier(refund.get("id"), "id")
    order_id = identifier(refund.get("order_id"), "order_id")
    transactions = items(refund, "transactions", "transactions")
    paid_back = [
        (index, entry)
        for index, entry in enumerate(transactions)
        if _transaction_counts(entry, f"transactions[{index}]")
    ]
    if transactions and not paid_back:
        return ignored(
            f"refund {refund_id} has no successful refund transaction", webhook_id
        )

    refund_items = items(refund, "refund_line_items", "refund_line_items")
    lines = tuple(
        _refund_line(entry, f"refund_line_items[{index}]")
        for index, entry in enumerate(refund_items)
    )
    if paid_back:
        total = sum(
            (
                decimal(entry.get("amount"), f"transactions[{index}].amount")
                for index, entry in paid_back
            ),
            Decimal(0),
        )
    else:
        total = sum((line.total for line in lines), Decimal(0))

    event = Event(
        event_id=f"shopify:refund:{refund_id}",
        type=EventType.RETURN,
        occurred_at=_occurred_at(refund),
        total=_not_negative(total),
        currency=_refund_currency(refund, [entry for _, entry in paid_back]),
        lines=lines,
        store=_refund_store(refund_items),
        source=SOURCE,
        refunds_event_id=order_event_id(order_id),
        refunded_line_ids=tuple(line.line_id for line in lines if line.line_id),
    )
    return AdapterResult((event,), None, webhook_id)


def _sale_line(item: JSONObject, path: str) -> Line:
    quantity = decimal(item.get("quantity"), f"{path}.quantity")
    price = _shop_amount(item, "price", path)
    discounts = sum(
        (
            _shop_amount(allocation, "amount", f"{path}.discount_allocations[{n}]")
            for n, allocation in enumerate(
                items(item, "discount_allocations", f"{path}.discount_allocations")
            )
        ),
        Decimal(0),
    )

    return Line(
        sku=optional_text(item, "sku", f"{path}.sku") or "",
        quantity=quantity,
        unit_price=price,
        total=price * quantity - discounts,
        description=_title(item, path),
        tags=_product_tags(item, path),
        line_id=identifier(item.get("id"), f"{path}.id"),
    )


def _refund_line(entry: JSONObject, path: str) -> Line:
    sold = entry.get("line_item")
    sold = sold if isinstance(sold, Mapping) else {}
    quantity = decimal(entry.get("quantity"), f"{path}.quantity")
    price = _shop_amount(sold, "price", f"{path}.line_item")
    if entry.get("subtotal_set") is not None or entry.get("subtotal") is not None:
        total = _shop_amount(entry, "subtotal", path)
    else:
        total = price * quantity

    return Line(
        sku=optional_text(sold, "sku", f"{path}.line_item.sku") or "",
        quantity=quantity,
        unit_price=price,
        total=total,
        description=_title(sold, f"{path}.line_item"),
        line_id=identifier(entry.get("line_item_id"), f"{path}.line_item_id"),
    )


def _transaction_counts(entry: JSONObject, path: str) -> bool:
    kind = entry.get("kind")
    if kind not in _TRANSACTION_KINDS:
        raise bad(f"{path}.kind", f"{kind!r} is not a Shopify transaction kind")
    status = entry.get("status")
    if status not in _TRANSACTION_STATUSES:
        raise bad(f"{path}.status", f"{status!r} is not a Shopify transaction status")
    return bool(kind == "refund" and status == "success")


def _refund_currency(refund: JSONObject, paid_back: Sequence[JSONObject]) -> str:
    codes = {entry.get("currency") for entry in paid_back} - {None}
    if len(codes) > 1:
        raise bad("transactions", f"refund transactions mix currencies {codes}")
    if codes:
        return currency(codes.pop(), "transactions[].currency")

    candidates = [
        (f"refund_line_items[{index}].subtotal_set", entry.get("subtotal_set"))
        for index, entry in enumerate(
            items(refund, "refund_line_items", "refund_line_items")
        )
    ]
    candidates.append(("total_duties_set", refund.get("total_duties_set")))
    for path, money_set in candidates:
        shop = money_set.get("shop_money") if isinstance(money_set, Mapping) else None
        if isinstance(shop, Mapping) and shop.get("currency_code") is not None:
            code = shop["currency_code"]
            return currency(code, f"{path}.shop_money.currency_code")
    raise bad("currency", "the refund names no currency in its transactions or sets")


def _refund_store(refund_items: Sequence[JSONObject]) -> str | None:
    for index, entry in enumerate(refund_items):
        path = f"refund_line_items[{index}].location_id"
        location = optional_identifier(entry, "location_id", path)
        if location:
            return location
    return None


def _identity(order: JSONObject) -> Identity:
    customer = order.get("customer")
    customer = customer if isinstance(customer, Mapping) else {}
    customer_id = optional_identifier(customer, "id", "customer.id")

    email = (
        optional_text(customer, "email", "customer.email")
        or optional_text(order, "email", "email")
        or optional_text(order, "contact_email", "contact_email")
    )
    phone = optional_text(customer, "phone", "customer.phone") or optional_text(
        order, "phone", "phone"
    )
    return Identity(
        customer_id=f"{SOURCE}:{customer_id}" if customer_id else None,
        email=email,
        phone=phone,
    )


def _product_tags(item: JSONObject, path: str) -> frozenset[str]:
    # TODO: Shopify order webhooks carry no product tags, so tag-based rules
    # (wellness points) never fire for Shopify sales unless the caller attaches
    # the Product resource to each line as ``product`` before mapping.
    product = item.get("product")
    if not isinstance(product, Mapping):
        return frozenset()
    tags = product.get("tags")
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise bad(f"{path}.product.tags", "expected comma-separated text or a list")
    return frozenset(tag.strip() for tag in tags if tag.strip())


def _title(item: JSONObject, path: str) -> str:
    return (
        optional_text(item, "title", f"{path}.title")
        or optional_text(item, "name", f"{path}.name")
        or ""
    )


def _shop_amount(parent: JSONObject, key: str, path: str) -> Decimal:
    prefix = f"{path}." if path else ""
    money_set = parent.get(f"{key}_set")
    if isinstance(money_set, Mapping):
        shop = money_set.get("shop_money")
        if isinstance(shop, Mapping) and shop.get("amount") is not None:
            return decimal(shop["amount"], f"{prefix}{key}_set.shop_money.amount")
    return decimal(parent.get(key), f"{prefix}{key}")


def _occurred_at(record: JSONObject) -> datetime:
    if record.get("processed_at"):
        return timestamp(record["processed_at"], "processed_at")
    return timestamp(record.get("created_at"), "created_at")


def _not_negative(total: Decimal) -> Decimal:
    if total < 0:
        raise bad("total", f"total {total} is negative")
    return total
