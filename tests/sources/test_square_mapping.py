"""Square webhook bodies to canonical events.

Square's published samples are used as they are wherever they map; where a
test needs a variant (a completed order, a payment pointing at the sample
order) it copies the sample and changes the named fields only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tillsight.core.events import EventType, Identity
from tillsight.errors import InputError, NotFoundError, RemoteError
from tillsight.sources import square_to_events

Loader = Callable[[str], Any]

SAMPLE_ORDER_ID = "CAISENgvlJ6jLWAzERDzjyHVybY"
REFUND_ID = "KkAkhdMsgzn59SM8A89WgKwekxLZY_ptNBVqHYxt5gAdfcobBe4u1AZsXhoz06KTtuq9Ls24P"
RETURN_ORDER_ID = "haOyDuHiqtAXMk0d8pDKXpL7Jg4F"


def fetcher(*bodies: Mapping[str, Any]) -> Callable[[str], Mapping[str, Any]]:
    """Answer like RetrieveOrder from a fixed set of bodies."""
    by_id = {body["order"]["id"]: body for body in bodies}

    def fetch(order_id: str) -> Mapping[str, Any]:
        return by_id.get(order_id, {"orders": []})

    return fetch


def refuse_fetch(order_id: str) -> Mapping[str, Any]:
    raise AssertionError(f"fetched {order_id} although the webhook is not final")


def completed(retrieve_body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(retrieve_body)
    body["order"]["state"] = "COMPLETED"
    return body


def return_order(source_order_id: str | None) -> dict[str, Any]:
    """Build a return order shaped like Square's OrderReturn documentation."""
    returned: dict[str, Any] = {
        "uid": "return-1",
        "return_line_items": [
            {
                "uid": "rli-1",
                "source_line_item_uid": "ULkg0tQTRK2bkU9fNv3IJD",
                "name": "Item 1",
                "quantity": "1",
                "catalog_object_id": "VARIATION-1",
                "base_price_money": {"amount": 1000, "currency": "USD"},
                "total_money": {"amount": 1000, "currency": "USD"},
            }
        ],
    }
    if source_order_id is not None:
        returned["source_order_id"] = source_order_id
    return {
        "order": {
            "id": RETURN_ORDER_ID,
            "location_id": "NAQ1FHV6ZJ8YV",
            "state": "COMPLETED",
            "created_at": "2020-02-06T21:27:41.836Z",
            "customer_id": "CUST-9",
            "returns": [returned],
        }
    }


def test_completed_payment_maps_to_a_purchase_keyed_by_its_order(
    square_sample: Loader,
) -> None:
    payload = square_sample("PaymentUpdatedEvent")

    result = square_to_events(payload)

    (event,) = result.events
    assert event.event_id == "square:order:03O3USaPaAaFnI6kkwB1JxGgBsUZY"
    assert event.type is EventType.PURCHASE
    assert event.total == Decimal("1.00")
    assert event.currency == "USD"
    assert event.occurred_at == datetime(2020, 11, 22, 21, 16, 51, 86000, tzinfo=UTC)
    assert event.store == "S8GWD5R9QB376"
    assert event.source == "square"
    assert event.is_guest
    assert result.delivery_id == "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc"
    assert result.ignored_reason is None


@pytest.mark.parametrize(
    ("sample", "status"),
    [("PaymentCreatedEvent", "APPROVED"), ("RefundCreatedEvent", "PENDING")],
)
def test_samples_that_are_not_final_are_ignored_with_a_reason(
    square_sample: Loader, sample: str, status: str
) -> None:
    result = square_to_events(square_sample(sample), fetch_order=refuse_fetch)

    assert result.events == ()
    assert result.ignored_reason is not None
    assert status in result.ignored_reason


@pytest.mark.parametrize("status", ["PENDING", "FAILED", "CANCELED", "APPROVED"])
def test_payment_statuses_that_are_not_final_are_ignored(
    square_sample: Loader, status: str
) -> None:
    payload = square_sample("PaymentUpdatedEvent")
    payload["data"]["object"]["payment"]["status"] = status

    result = square_to_events(payload)

    assert result.events == ()
    assert f"payment status {status}" in (result.ignored_reason or "")


def test_payment_created_updated_and_a_retry_share_one_event_id(
    square_sample: Loader,
) -> None:
    created = square_sample("PaymentCreatedEvent")
    created["data"]["object"]["payment"]["status"] = "COMPLETED"
    updated = square_sample("PaymentUpdatedEvent")

    ids = {
        square_to_events(body).events[0].event_id
        for body in (created, updated, updated)
    }

    assert ids == {"square:order:03O3USaPaAaFnI6kkwB1JxGgBsUZY"}


def test_completed_order_webhook_maps_the_fetched_line_items(
    square_sample: Loader,
) -> None:
    payload = square_sample("OrderUpdatedEvent")
    payload["data"]["object"]["order_updated"]["order_id"] = SAMPLE_ORDER_ID
    payload["data"]["object"]["order_updated"]["state"] = "COMPLETED"
    fetch = fetcher(completed(square_sample("RetrieveOrderResponse")))

    (event,) = square_to_events(payload, fetch_order=fetch).events

    assert event.event_id == f"square:order:{SAMPLE_ORDER_ID}"
    assert event.total == Decimal("5.50")
    assert event.occurred_at == datetime(2020, 5, 18, 16, 30, 49, 614000, tzinfo=UTC)
    assert event.store == "D7AVYMEAPJ3A3"
    assert [line.description for line in event.lines] == ["Item 1", "Item 2"]
    assert [line.quantity for line in event.lines] == [Decimal(1), Decimal(2)]
    assert [line.unit_price for line in event.lines] == [
        Decimal("5.00"),
        Decimal("3.00"),
    ]
    assert [line.total for line in event.lines] == [Decimal("2.50"), Decimal("3.00")]
    assert [line.line_id for line in event.lines] == [
        "ULkg0tQTRK2bkU9fNv3IJD",
        "mumY8Nun4BC5aKe2yyx5a",
    ]


def test_payment_and_order_webhooks_for_one_sale_map_to_the_same_event(
    square_sample: Loader,
) -> None:
    payment = square_sample("PaymentUpdatedEvent")
    payment["data"]["object"]["payment"]["order_id"] = SAMPLE_ORDER_ID
    order = square_sample("OrderCreatedEvent")
    order["data"]["object"]["order_created"]["order_id"] = SAMPLE_ORDER_ID
    order["data"]["object"]["order_created"]["state"] = "COMPLETED"
    fetch = fetcher(completed(square_sample("RetrieveOrderResponse")))

    from_payment = square_to_events(payment, fetch_order=fetch).events
    from_order = square_to_events(order, fetch_order=fetch).events

    assert from_payment == from_order
    assert from_payment[0].total == Decimal("5.50")


def test_payment_reads_lines_from_a_batch_retrieve_body(square_sample: Loader) -> None:
    payment = square_sample("PaymentUpdatedEvent")
    payment["data"]["object"]["payment"]["order_id"] = "CAISEM82RcpmcFBM0TfOyiHV3es"
    batch = square_sample("BatchRetrieveOrdersResponse")

    (event,) = square_to_events(payment, fetch_order=lambda _: batch).events

    assert event.total == Decimal("75.99")
    assert [line.total for line in event.lines] == [Decimal("15.99"), Decimal("60.00")]
    # The batch sample has no created_at, so the payment's time stands in.
    assert event.occurred_at == datetime(2020, 11, 22, 21, 16, 51, 86000, tzinfo=UTC)


@pytest.mark.parametrize("sample", ["OrderCreatedEvent", "OrderUpdatedEvent"])
def test_open_order_samples_are_ignored_without_fetching(
    square_sample: Loader, sample: str
) -> None:
    result = square_to_events(square_sample(sample), fetch_order=refuse_fetch)

    assert result.events == ()
    assert "OPEN" in (result.ignored_reason or "")


def test_order_still_open_when_fetched_is_ignored(square_sample: Loader) -> None:
    payload = square_sample("OrderUpdatedEvent")
    payload["data"]["object"]["order_updated"]["order_id"] = SAMPLE_ORDER_ID
    payload["data"]["object"]["order_updated"]["state"] = "COMPLETED"
    fetch = fetcher(square_sample("RetrieveOrderResponse"))

    result = square_to_events(payload, fetch_order=fetch)

    assert result.events == ()
    assert "OPEN when fetched" in (result.ignored_reason or "")


def test_return_order_is_not_counted_as_a_sale(square_sample: Loader) -> None:
    payload = square_sample("OrderCreatedEvent")
    payload["data"]["object"]["order_created"]["order_id"] = RETURN_ORDER_ID
    payload["data"]["object"]["order_created"]["state"] = "COMPLETED"

    result = square_to_events(payload, fetch_order=fetcher(return_order("SALE-1")))

    assert result.events == ()
    assert "return order" in (result.ignored_reason or "")


def test_completed_refund_maps_to_a_return_linked_to_the_sale(
    square_sample: Loader,
) -> None:
    fetch = fetcher(return_order(SAMPLE_ORDER_ID))

    result = square_to_events(square_sample("RefundUpdatedEvent"), fetch_order=fetch)

    (event,) = result.events
    assert event.event_id == f"square:refund:{REFUND_ID}"
    assert event.type is EventType.RETURN
    assert event.total == Decimal("10.00")
    assert event.currency == "USD"
    assert event.occurred_at == datetime(2020, 2, 6, 21, 27, 41, 836000, tzinfo=UTC)
    assert event.store == "NAQ1FHV6ZJ8YV"
    assert event.refunds_event_id == f"square:order:{SAMPLE_ORDER_ID}"
    assert event.refunded_line_ids == ("ULkg0tQTRK2bkU9fNv3IJD",)
    assert event.identity == Identity(customer_id="square:CUST-9")


def test_refund_created_and_updated_share_one_event_id(square_sample: Loader) -> None:
    created = square_sample("RefundCreatedEvent")
    created["data"]["object"]["refund"]["status"] = "COMPLETED"
    fetch = fetcher(return_order(SAMPLE_ORDER_ID))

    first = square_to_events(created, fetch_order=fetch).events[0]
    second = square_to_events(square_sample("RefundUpdatedEvent"), fetch_order=fetch)

    assert first.event_id == second.events[0].event_id


def test_unlinked_refund_names_no_sale(square_sample: Loader) -> None:
    fetch = fetcher(return_order(None))

    (event,) = square_to_events(
        square_sample("RefundUpdatedEvent"), fetch_order=fetch
    ).events

    assert event.refunds_event_id is None
    assert event.total == Decimal("10.00")


@pytest.mark.parametrize(
    ("amount", "code", "expected"),
    [
        (550, "USD", Decimal("5.50")),
        (1500, "JPY", Decimal("1500")),
        (1234, "KWD", Decimal("1.234")),
        (5, "GBP", Decimal("0.05")),
        (0, "EUR", Decimal("0.00")),
    ],
)
def test_minor_units_become_exact_decimals_by_currency(
    square_sample: Loader, amount: int, code: str, expected: Decimal
) -> None:
    payload = square_sample("PaymentUpdatedEvent")
    payload["data"]["object"]["payment"]["amount_money"] = {
        "amount": amount,
        "currency": code,
    }

    (event,) = square_to_events(payload).events

    assert event.total == expected
    assert str(event.total) == str(expected)
    assert event.currency == code


def test_identity_comes_from_the_payment(square_sample: Loader) -> None:
    payload = square_sample("PaymentUpdatedEvent")
    payment = payload["data"]["object"]["payment"]
    payment["customer_id"] = "JDKYHBWT1D4F8MFH63DBMEN8Y4"
    payment["buyer_email_address"] = "buyer@example.com"

    (event,) = square_to_events(payload).events

    assert event.identity == Identity(
        customer_id="square:JDKYHBWT1D4F8MFH63DBMEN8Y4", email="buyer@example.com"
    )


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("amount_money", "amount"), 1.0, "data.object.payment.amount_money.amount"),
        (
            ("amount_money", "currency"),
            "usd",
            "data.object.payment.amount_money.currency",
        ),
        (("created_at",), "2020-11-22T21:16:51", "data.object.payment.created_at"),
        (("created_at",), "yesterday", "data.object.payment.created_at"),
        (("status",), "SETTLED", "data.object.payment.status"),
        (("order_id",), None, "data.object.payment.order_id"),
    ],
)
def test_bad_payment_fields_raise_input_error_naming_the_field(
    square_sample: Loader, path: tuple[str, ...], value: object, field: str
) -> None:
    payload = square_sample("PaymentUpdatedEvent")
    target = payload["data"]["object"]["payment"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(InputError) as caught:
        square_to_events(payload)

    assert caught.value.errors[0][0] == field


@pytest.mark.parametrize("kind", ["customer.created", "webhooks.something_else", None])
def test_unknown_type_raises_input_error_naming_type(
    square_sample: Loader, kind: str | None
) -> None:
    payload = square_sample("PaymentUpdatedEvent")
    payload["type"] = kind

    with pytest.raises(InputError) as caught:
        square_to_events(payload)

    assert caught.value.errors[0][0] == "type"


def test_body_without_data_raises_input_error_naming_data() -> None:
    with pytest.raises(InputError) as caught:
        square_to_events({"type": "payment.updated", "event_id": "e1"})

    assert caught.value.errors[0][0] == "data"


@pytest.mark.parametrize("sample", ["OrderUpdatedEvent", "RefundUpdatedEvent"])
def test_order_and_refund_webhooks_need_a_fetch_function(
    square_sample: Loader, sample: str
) -> None:
    payload = square_sample(sample)
    payload["data"]["object"].get("order_updated", {})["state"] = "COMPLETED"

    with pytest.raises(RemoteError, match="TILLSIGHT_SQUARE_ACCESS_TOKEN"):
        square_to_events(payload)


def test_order_missing_from_the_fetched_body_is_not_found(
    square_sample: Loader,
) -> None:
    with pytest.raises(NotFoundError, match=RETURN_ORDER_ID):
        square_to_events(square_sample("RefundUpdatedEvent"), fetch_order=fetcher())
