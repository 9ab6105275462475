"""Shopify webhook bodies to canonical events.

Shopify's documented order samples are test orders that were cancelled, so
they must be ignored as they are; the tests that need a paid order copy one
and change the named fields only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tillsight.core.events import EventType, Identity
from tillsight.errors import InputError
from tillsight.sources import shopify_to_events

Loader = Callable[[str], Any]

DOCS = "gadget_webhook_docs_samples_2026-04/"
EXEMPLARS = "gadget_anonymized_production_exemplars/"
PYTHON_API = "shopify_python_api_fixtures/"
EASTERN = timezone(timedelta(hours=-5))
# The docs samples' ids, exactly as the (precision-damaged) files hold them.
DOCS_ORDER_ID = "820982911946154500"
DOCS_LINE_IDS = (
    "487817672276298560",
    "789012345678901200",
    "890123456789012400",
    "976318377106520300",
    "315789986012684400",
)


def paid(order: dict[str, Any]) -> dict[str, Any]:
    """Turn Shopify's cancelled test sample into a live paid order."""
    return {**order, "test": False, "cancelled_at": None, "financial_status": "paid"}


def test_paid_order_maps_to_a_purchase_of_its_lines(shopify_sample: Loader) -> None:
    order = paid(shopify_sample(DOCS + "orders_paid.json"))

    result = shopify_to_events("orders/paid", order, webhook_id="W-1")

    (event,) = result.events
    assert event.event_id == f"shopify:order:{DOCS_ORDER_ID}"
    assert event.type is EventType.PURCHASE
    assert event.total == Decimal("414.95")
    assert event.currency == "USD"
    assert event.occurred_at == datetime(2021, 12, 31, 19, 0, tzinfo=EASTERN)
    assert event.source == "shopify"
    assert event.store is None
    assert tuple(line.line_id for line in event.lines) == DOCS_LINE_IDS
    assert [line.sku for line in event.lines][:2] == ["SKU2006-001", "LENS-PROTECT-2YR"]
    assert event.lines[0].description == "Aviator sunglasses"
    assert event.identity == Identity(
        customer_id="shopify:115310627314723950", email="john@example.com"
    )
    assert result.delivery_id == "W-1"


def test_line_total_is_net_of_its_discount_allocations(shopify_sample: Loader) -> None:
    order = paid(shopify_sample(DOCS + "orders_create.json"))
    refund = shopify_sample(DOCS + "refunds_create.json")
    # Shopify's refund sample shows the lounger line with two 5.00 allocations.
    lounger = refund["refund_line_items"][3]["line_item"]
    order["line_items"] = [*order["line_items"][:3], lounger, order["line_items"][4]]

    (event,) = shopify_to_events("orders/create", order, webhook_id=None).events

    assert event.lines[3].unit_price == Decimal("159.99")
    assert event.lines[3].total == Decimal("149.99")
    assert event.total == Decimal("404.95")


def test_order_without_line_items_uses_its_subtotal(shopify_sample: Loader) -> None:
    (order,) = shopify_sample(PYTHON_API + "orders.json")["orders"]

    (event,) = shopify_to_events("orders/updated", order, webhook_id=None).events

    assert event.event_id == "shopify:order:450789469"
    assert event.total == Decimal("597.00")
    assert event.lines == ()
    assert event.occurred_at == datetime(2008, 1, 10, 11, 0, tzinfo=EASTERN)
    assert event.identity == Identity(
        customer_id="shopify:207119551",
        email="bob.norman@hostmail.com",
        phone="+16136120707",
    )


@pytest.mark.parametrize(
    "sample",
    ["orders_create.json", "orders_paid.json", "orders_updated.json"],
)
def test_documented_test_orders_are_ignored(
    shopify_sample: Loader, sample: str
) -> None:
    result = shopify_to_events(
        "orders/create", shopify_sample(DOCS + sample), webhook_id=None
    )

    assert result.events == ()
    assert result.ignored_reason == f"order {DOCS_ORDER_ID} is a test order"


def test_cancelled_order_is_ignored(shopify_sample: Loader) -> None:
    order = {**shopify_sample(DOCS + "orders_cancelled.json"), "test": False}

    result = shopify_to_events("orders/updated", order, webhook_id=None)

    assert result.events == ()
    assert "cancelled" in (result.ignored_reason or "")


@pytest.mark.parametrize(
    "status", ["pending", "authorized", "partially_paid", "voided", "expired"]
)
def test_unpaid_order_is_ignored(shopify_sample: Loader, status: str) -> None:
    order = {
        **paid(shopify_sample(DOCS + "orders_create.json")),
        "financial_status": status,
    }

    result = shopify_to_events("orders/create", order, webhook_id=None)

    assert result.events == ()
    assert f"is {status}, not paid" in (result.ignored_reason or "")


def test_authorized_python_api_order_is_ignored(shopify_sample: Loader) -> None:
    order = shopify_sample(PYTHON_API + "order.json")["order"]

    result = shopify_to_events("orders/create", order, webhook_id=None)

    assert result.ignored_reason == "order 450789469 is authorized, not paid"


def test_b08_every_delivery_of_one_order_maps_to_one_event_id(
    shopify_sample: Loader,
) -> None:
    order = paid(shopify_sample(DOCS + "orders_paid.json"))
    deliveries = [
        ("orders/paid", "W-1"),
        ("orders/paid", "W-1"),
        ("orders/paid", "W-1"),
        ("orders/updated", "W-2"),
        ("orders/create", "W-3"),
    ]

    results = [shopify_to_events(t, order, webhook_id=w) for t, w in deliveries]

    assert {result.events for result in results} == {results[0].events}
    assert [result.delivery_id for result in results] == [
        "W-1",
        "W-1",
        "W-1",
        "W-2",
        "W-3",
    ]


def test_refund_total_is_its_successful_refund_transactions(
    shopify_sample: Loader,
) -> None:
    refund = shopify_sample(DOCS + "refunds_create.json")

    (event,) = shopify_to_events("refunds/create", refund, webhook_id=None).events

    assert event.event_id == "shopify:refund:890088186047892400"
    assert event.type is EventType.RETURN
    assert event.total == Decimal("85.00")
    assert event.currency == "USD"
    assert event.refunds_event_id == f"shopify:order:{DOCS_ORDER_ID}"
    assert event.refunded_line_ids == DOCS_LINE_IDS
    assert [line.total for line in event.lines] == [
        Decimal("89.99"),
        Decimal("19.99"),
        Decimal("24.99"),
        Decimal("159.99"),
        Decimal("119.99"),
    ]
    assert event.occurred_at == datetime(2021, 12, 31, 19, 0, tzinfo=EASTERN)


def test_python_api_refund_maps_with_lines_priced_from_the_sale(
    shopify_sample: Loader,
) -> None:
    refund = shopify_sample(PYTHON_API + "refund.json")["refund"]

    (event,) = shopify_to_events("refunds/create", refund, webhook_id=None).events

    assert event.event_id == "shopify:refund:509562969"
    assert event.total == Decimal("209.00")
    assert event.refunds_event_id == "shopify:order:450789469"
    assert event.refunded_line_ids == ("703073504", "466157049")
    assert [line.total for line in event.lines] == [Decimal("199.00")] * 2
    assert event.occurred_at == datetime(
        2016, 6, 20, 13, 35, 6, tzinfo=timezone(timedelta(hours=-4))
    )


def test_refund_without_transactions_totals_its_line_subtotals(
    shopify_sample: Loader,
) -> None:
    refund = {**shopify_sample(DOCS + "refunds_create.json"), "transactions": []}

    (event,) = shopify_to_events("refunds/create", refund, webhook_id=None).events

    assert event.total == Decimal("414.95")
    assert event.currency == "USD"


def test_refund_whose_transactions_all_failed_is_ignored(
    shopify_sample: Loader,
) -> None:
    refund = shopify_sample(DOCS + "refunds_create.json")
    for transaction in refund["transactions"]:
        transaction["status"] = "failure"

    result = shopify_to_events("refunds/create", refund, webhook_id=None)

    assert result.events == ()
    assert "no successful refund transaction" in (result.ignored_reason or "")


def test_eighteen_digit_ids_keep_every_digit(shopify_sample: Loader) -> None:
    refund = shopify_sample(DOCS + "refunds_create.json")
    refund["order_id"] = 820982911946154508

    (event,) = shopify_to_events("refunds/create", refund, webhook_id=None).events

    assert event.refunds_event_id == "shopify:order:820982911946154508"


@pytest.mark.parametrize("field", ["id", "order_id"])
def test_float_id_is_refused_rather_than_rounded(
    shopify_sample: Loader, field: str
) -> None:
    refund = shopify_sample(DOCS + "refunds_create.json")
    refund[field] = float(refund[field])

    with pytest.raises(InputError) as caught:
        shopify_to_events("refunds/create", refund, webhook_id=None)

    assert caught.value.errors[0][0] == field
    assert "float" in caught.value.errors[0][1]


def test_float_customer_id_is_refused(shopify_sample: Loader) -> None:
    order = paid(shopify_sample(DOCS + "orders_paid.json"))
    order["customer"] = {**order["customer"], "id": 1.1531062731472395e17}

    with pytest.raises(InputError) as caught:
        shopify_to_events("orders/paid", order, webhook_id=None)

    assert caught.value.errors[0][0] == "customer.id"


def test_product_tags_attached_to_a_line_become_line_tags(
    shopify_sample: Loader,
) -> None:
    order = paid(shopify_sample(DOCS + "orders_paid.json"))
    first = {
        **order["line_items"][0],
        "product": {"tags": "eyewear, preventative-screening"},
    }
    order["line_items"] = [first, *order["line_items"][1:]]

    (event,) = shopify_to_events("orders/paid", order, webhook_id=None).events

    assert event.lines[0].tags == frozenset({"eyewear", "preventative-screening"})
    assert event.tags == frozenset({"eyewear", "preventative-screening"})


@pytest.mark.parametrize(
    ("sample", "topic", "field"),
    [
        ("2024-01_orders_1.json", "orders/create", "financial_status"),
        ("2025-04_orders_1.json", "orders/updated", "financial_status"),
        ("2025-04_orders_2.json", "orders/create", "id"),
        ("2025-04_orders_3.json", "orders/paid", "id"),
        ("2025-04_refunds_1.json", "refunds/create", "transactions[0].kind"),
        ("2025-04_refunds_2.json", "refunds/create", "transactions[0].kind"),
    ],
)
def test_anonymised_production_bodies_raise_input_error_naming_the_field(
    shopify_sample: Loader, sample: str, topic: str, field: str
) -> None:
    with pytest.raises(InputError) as caught:
        shopify_to_events(topic, shopify_sample(EXEMPLARS + sample), webhook_id=None)

    assert caught.value.errors[0][0] == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "dollars"}, "currency"),
        ({"processed_at": "2021-12-31 19:00:00"}, "processed_at"),
        ({"processed_at": None, "created_at": None}, "created_at"),
        ({"financial_status": "settled"}, "financial_status"),
        ({"line_items": "none"}, "line_items"),
    ],
)
def test_bad_order_fields_raise_input_error_naming_the_field(
    shopify_sample: Loader, change: dict[str, Any], field: str
) -> None:
    order = {**paid(shopify_sample(DOCS + "orders_paid.json")), **change}

    with pytest.raises(InputError) as caught:
        shopify_to_events("orders/paid", order, webhook_id=None)

    assert caught.value.errors[0][0] == field


def test_bad_line_price_names_the_line(shopify_sample: Loader) -> None:
    order = paid(shopify_sample(DOCS + "orders_paid.json"))
    broken = {**order["line_items"][1], "price_set": None, "price": "n/a"}
    order["line_items"] = [order["line_items"][0], broken]

    with pytest.raises(InputError) as caught:
        shopify_to_events("orders/paid", order, webhook_id=None)

    assert caught.value.errors[0][0] == "line_items[1].price"


@pytest.mark.parametrize("topic", ["orders/cancelled", "customers/create", ""])
def test_unknown_topic_raises_input_error_naming_topic(
    shopify_sample: Loader, topic: str
) -> None:
    with pytest.raises(InputError) as caught:
        shopify_to_events(
            topic, shopify_sample(DOCS + "orders_paid.json"), webhook_id=None
        )

    assert caught.value.errors[0][0] == "topic"
