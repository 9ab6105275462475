"""Canonical JSON events: exact money, clear field errors, a faithful inverse."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tillsight.errors import InputError
from tillsight.ingest import event_to_json, parse_canonical, to_event

LONDON = ZoneInfo("Europe/London")


def payload(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": "shop:1001",
        "type": "purchase",
        "occurred_at": "2024-05-01T12:00:00",
        "currency": "GBP",
        "lines": [
            {"sku": "A", "quantity": 2, "unit_price": "4.50"},
            {"sku": "B", "quantity": "1", "unit_price": "0.10"},
        ],
        "customer": {"customer_id": "123456789012345678"},
    }
    body.update(changes)
    return body


def convert(body: dict[str, Any]) -> Any:
    return to_event(parse_canonical(body), LONDON)


def problems(body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as caught:
        convert(body)
    return caught.value.errors


def test_a_missing_total_is_the_sum_of_the_lines():
    event = convert(payload())

    assert event.total == Decimal("9.10")
    assert event.occurred_at.utcoffset() == timedelta(hours=1)


def test_a_total_that_differs_from_the_lines_names_both():
    assert problems(payload(total="9.00")) == [
        ("total", "9.00 differs from the sum of the lines, 9.10")
    ]


def test_a_negative_unit_price_is_named_not_the_total_it_makes():
    body = payload(lines=[{"sku": "A", "quantity": 1, "unit_price": "-10.00"}])

    assert problems(body) == [
        ("lines[0].unit_price", "-10.00 is negative, which makes the event's total "
         "-10.00"),
    ]  # fmt: skip


def test_json_numbers_parsed_as_decimal_stay_exact():
    body = json.loads(json.dumps(payload(total=9.1)), parse_float=Decimal)

    assert convert(body).total == Decimal("9.1")


def test_a_time_with_an_offset_keeps_it():
    event = convert(payload(occurred_at="2024-05-01T12:00:00Z"))

    assert event.occurred_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
        ({"type": "refund"}, "type", "'refund'"),
        ({"total": "ten"}, "total", "'ten' is not a number"),
        ({"total": True}, "total", "True is not a number"),
        ({"total": "NaN"}, "total", "not a finite number"),
        ({"currency": "pounds"}, "currency", "'pounds'"),
        ({"occurred_at": "2024-03-31T01:30:00"}, "occurred_at", "does not exist"),
        ({"occurred_at": "yesterday"}, "occurred_at", "'yesterday' is not an ISO"),
        ({"customer": {"customer_id": 1.2e17}}, "customer.customer_id", "not a str"),
        ({"refunds_event_id": "shop:1"}, "refunds_event_id", "only allowed on a"),
        ({"lines": [], "total": None}, "total", "no lines to sum"),
    ],
)
def test_a_bad_field_is_named_with_its_value(change, field, fragment):
    found = problems(payload(**change))

    assert [name for name, _ in found] == [field]
    assert fragment in found[0][1]


def test_a_bad_line_field_is_named_by_its_path():
    body = payload()
    body["lines"][1]["quantity"] = "-1"

    assert problems(body) == [("lines[1].quantity", "-1 is not above zero")]


def test_an_integer_id_is_kept_as_its_exact_digits():
    event = convert(payload(customer={"customer_id": 123456789012345678}))

    assert event.identity.customer_id == "123456789012345678"


def test_an_event_survives_the_trip_to_json_and_back():
    event = to_event(
        parse_canonical(payload(store="s1", channel="pos")), LONDON, source="api"
    )

    again = to_event(parse_canonical(event_to_json(event)), LONDON, source="api")

    assert again == event


def test_a_return_linked_to_its_sale_round_trips():
    body = payload(
        type="return",
        refunds_event_id="shop:1000",
        refunded_line_ids=["L1"],
        lines=[{"sku": "A", "quantity": 1, "unit_price": "4.50", "line_id": "L9"}],
    )
    event = convert(body)

    assert convert(event_to_json(event)) == event
    assert event.refunded_line_ids == ("L1",)


# Up to 10 lines of 99 units: their sum stays under the bound on totals, 10^9.
money = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False)


@given(st.lists(st.tuples(st.integers(1, 99), money), min_size=1, max_size=10))
def test_money_never_becomes_a_float(items):
    lines = [{"sku": "X", "quantity": q, "unit_price": str(p)} for q, p in items]
    text = json.dumps(payload(lines=lines))

    event = convert(json.loads(text, parse_float=Decimal))

    assert event.total == sum((q * p for q, p in items), Decimal(0))
    assert json.loads(json.dumps(event_to_json(event)))["total"] == str(event.total)
