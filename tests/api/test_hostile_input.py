"""Hostile input: every door answers in words, keeps the body and stores nothing.

A lone surrogate, a NUL, an id longer than its column, a time in year 1, a
quantity of 10^30, a body nested a thousand levels deep: each goes through
real HTTP on SQLite and on PostgreSQL, which must give the same answer, and
through a replay. ``event_problems`` is also tested on its own, field by field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from api.test_events import purchase
from live.helpers import completed_payment, shopify_signature, square_signature
from tillsight.core.events import Event, Identity, Line, Redemption
from tillsight.errors import QuarantinedError
from tillsight.ingest import sanity
from tillsight.ingest.sanity import event_problems
from tillsight.live.service import LiveService
from tillsight.pipeline import Replayer
from tillsight.programme_file import load_programme
from tillsight.store import schema
from tillsight.store.db import connect

from factories import sale

LONE = "\ud800"
SQUARE_URL = "http://testserver/v1/webhooks/square"


def line(**changes: Any) -> dict[str, Any]:
    return {"sku": "A", "quantity": 1, "unit_price": "75.00"} | changes


def nested(depth: int) -> bytes:
    return b'{"event_id": "E1", "lines": ' + b"[" * depth + b"]" * depth + b"}"


def stored_rows(service: LiveService) -> tuple[int, int]:
    """How many events and customers the store holds."""
    with service.store.read() as conn:
        events, customers = (
            int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (schema.events, schema.customers)
        )
    return events, customers


CANONICAL = {
    "surrogate in event_id": (purchase(LONE), "event_id"),
    "surrogate in store": (purchase(store=f"Leeds{LONE}"), "store"),
    "surrogate in description": (
        purchase(lines=[line(description=LONE)]),
        "lines[0].description",
    ),
    "surrogate in sku": (purchase(lines=[line(sku=LONE)]), "lines[0].sku"),
    "surrogate in email": (
        purchase(customer={"email": f"ann{LONE}@example.test"}),
        "customer.email",
    ),
    "surrogate in loyalty id": (
        purchase(customer={"loyalty_id": LONE}),
        "customer.loyalty_id",
    ),
    "surrogate in customer id": (
        purchase(customer={"customer_id": f"C{LONE}"}),
        "customer.customer_id",
    ),
    "NUL in event_id": (purchase("E\x001"), "event_id"),
    "NUL in store": (purchase(store="\x00"), "store"),
    "NUL in loyalty id": (
        purchase(customer={"loyalty_id": "L\x001"}),
        "customer.loyalty_id",
    ),
    "event_id too long": (purchase("E" * 201), "event_id"),
    "store too long": (purchase(store="S" * 121), "store"),
    "loyalty id too long": (
        purchase(customer={"loyalty_id": "L" * 321}),
        "customer.loyalty_id",
    ),
    "refunds_event_id too long": (
        purchase(type="return", refunds_event_id="E" * 201),
        "refunds_event_id",
    ),
    "year 1": (purchase(occurred_at="0001-01-01T00:00:00Z"), "occurred_at"),
    "year 1 east of UTC": (
        purchase(occurred_at="0001-01-01T00:00:00+05:00"),
        "occurred_at",
    ),
    "a second before 1900": (
        purchase(occurred_at="1899-12-31T23:59:59Z"),
        "occurred_at",
    ),
    "second of a batch": (
        [purchase("E1"), purchase("E2", store=LONE)],
        "[1].store",
    ),
}


@pytest.mark.parametrize(("event", "field"), CANONICAL.values(), ids=CANONICAL)
def test_an_event_no_store_can_keep_is_422_kept_and_not_stored(
    client: TestClient, service: LiveService, event: Any, field: str
) -> None:
    body = json.dumps(event).encode()

    response = client.post("/v1/events", content=body)

    assert response.status_code == 422
    answer = response.json()
    assert field in [error["field"] for error in answer["errors"]]
    entry = service.quarantine.get(answer["quarantine_id"])
    assert (entry.reason, entry.body) == ("invalid_event", body)
    assert stored_rows(service) == (0, 0)
    assert client.get("/v1/customers/C1").status_code == 404


@pytest.mark.parametrize("depth", [1_000, 30_000])
def test_a_body_nested_too_deeply_is_bad_json_kept_in_the_quarantine(
    client: TestClient, service: LiveService, depth: int
) -> None:
    body = nested(depth)

    response = client.post("/v1/events", content=body)

    assert response.status_code == 422
    answer = response.json()
    assert [error["field"] for error in answer["errors"]] == ["(body)"]
    assert "nested too deeply" in answer["errors"][0]["reason"]
    entry = service.quarantine.get(answer["quarantine_id"])
    assert (entry.reason, entry.body) == ("bad_json", body)
    assert stored_rows(service) == (0, 0)


def test_a_body_that_decodes_but_is_too_deep_to_read_is_bad_json(
    service: LiveService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def too_deep(data: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("tillsight.live.receiver.parse_canonical", too_deep)
    body = json.dumps(purchase()).encode()

    with pytest.raises(QuarantinedError, match="nested too deeply") as caught:
        service.receiver.canonical(body)

    assert caught.value.quarantine_id is not None
    entry = service.quarantine.get(caught.value.quarantine_id)
    assert (entry.reason, entry.body) == ("bad_json", body)


def test_texts_and_times_at_the_limits_are_taken(
    client: TestClient, service: LiveService
) -> None:
    event = purchase(
        "E" * 200,
        store="S" * 120,
        occurred_at="1900-01-01T00:00:00Z",
        customer={"loyalty_id": "L" * 320},
    )

    response = client.post("/v1/events", json=event)

    assert response.status_code == 202
    assert stored_rows(service) == (1, 1)


def send_shopify(http: TestClient, body: bytes, webhook_id: str = "W-1") -> Any:
    headers = {
        "X-Shopify-Hmac-Sha256": shopify_signature(body),
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Webhook-Id": webhook_id,
    }
    return http.post("/v1/webhooks/shopify", content=body, headers=headers)


def send_square(http: TestClient, body: bytes) -> Any:
    signature = square_signature(SQUARE_URL, body)
    headers = {"x-square-hmacsha256-signature": signature}
    return http.post("/v1/webhooks/square", content=body, headers=headers)


def paid_order(**item: Any) -> bytes:
    order = {
        "id": 820982911946154508,
        "financial_status": "paid",
        "currency": "GBP",
        "processed_at": "2025-06-01T10:00:00+01:00",
        "customer": {"id": 115310627314723954},
        "line_items": [
            {"id": 1, "title": "Tea", "sku": "T1", "quantity": 1, "price": "9.50"}
            | item
        ],
    }
    return json.dumps(order).encode()


def payment(**changes: Any) -> bytes:
    delivery = completed_payment()
    found = delivery["data"]["object"]["payment"]
    found["amount_money"]["currency"] = "GBP"
    found.update(changes)
    return json.dumps(delivery).encode()


WEBHOOKS = {
    "Shopify title with a lone surrogate": (
        "shopify",
        paid_order(title=f"Tea{LONE}"),
        "lines[0].description",
    ),
    "Shopify quantity of 1e30": (
        "shopify",
        paid_order(quantity="1e30"),
        "line_items[0].quantity",  # refused as the adapter reads it
    ),
    "Shopify price of 1E+400": (
        "shopify",
        paid_order(price="1E+400"),
        "line_items[0].price",
    ),
    "Shopify price and quantity past what Decimal holds": (
        "shopify",
        paid_order(price="1E+999999", quantity="1E+999999"),
        "line_items[0].quantity",
    ),
    "Square amount of 10^30": (
        "square",
        payment(amount_money={"amount": 10**30, "currency": "GBP"}),
        "total",
    ),
    "Square time in year 1": (
        "square",
        payment(created_at="0001-01-01T00:00:00Z"),
        "occurred_at",
    ),
    "Square customer id with a lone surrogate": (
        "square",
        payment(customer_id=LONE),
        "customer.customer_id",
    ),
    "Square location with a NUL": (
        "square",
        payment(location_id="S8\x00"),
        "store",
    ),
}


@pytest.mark.parametrize(("vendor", "body", "field"), WEBHOOKS.values(), ids=WEBHOOKS)
def test_a_signed_webhook_no_store_can_keep_is_kept_and_not_stored(
    client: TestClient, service: LiveService, vendor: str, body: bytes, field: str
) -> None:
    send = send_shopify if vendor == "shopify" else send_square

    response = send(client, body)

    # A vendor cannot fix a body by sending it again: kept, answered as received.
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "quarantined"
    assert field in [error["field"] for error in answer["errors"]]
    entry = service.quarantine.get(answer["quarantine_id"])
    assert (entry.source, entry.body) == (vendor, body)
    assert stored_rows(service) == (0, 0)


@pytest.mark.parametrize(
    "delivery_id",
    [LONE, "e\x00", "e" * 201],
    ids=["lone surrogate", "NUL", "too long"],
)
def test_a_square_delivery_id_no_table_can_keep_is_kept_without_it(
    client: TestClient, service: LiveService, delivery_id: str
) -> None:
    delivery = completed_payment()
    delivery["event_id"] = delivery_id
    delivery["data"]["object"]["payment"]["amount_money"]["currency"] = "GBP"
    body = json.dumps(delivery).encode()

    response = send_square(client, body)

    answer = response.json()
    assert answer["status"] == "quarantined"
    assert [error["field"] for error in answer["errors"]] == ["event_id"]
    entry = service.quarantine.get(answer["quarantine_id"])
    assert (entry.reason, entry.delivery_id, entry.body) == (
        "invalid_webhook",
        None,
        body,
    )
    assert stored_rows(service) == (0, 0)


def test_a_shopify_webhook_id_too_long_to_store_is_kept_without_it(
    client: TestClient, service: LiveService
) -> None:
    body = paid_order()

    response = send_shopify(client, body, webhook_id="W" * 201)

    answer = response.json()
    assert answer["status"] == "quarantined"
    assert [error["field"] for error in answer["errors"]] == ["X-Shopify-Webhook-Id"]
    entry = service.quarantine.get(answer["quarantine_id"])
    assert (entry.delivery_id, entry.topic, entry.body) == (None, "orders/paid", body)
    assert stored_rows(service) == (0, 0)


def test_a_shopify_body_nested_too_deeply_is_kept_as_bad_json(
    client: TestClient, service: LiveService
) -> None:
    body = nested(5_000)

    response = send_shopify(client, body)

    answer = response.json()
    assert (answer["status"], answer["reason"]) == ("quarantined", "bad_json")
    assert service.quarantine.get(answer["quarantine_id"]).body == body


def clean_event(**changes: Any) -> Event:
    return replace(sale("E1", "2025-06-01T12:00:00+01:00", "75.00"), **changes)


def test_a_clean_event_has_no_problems() -> None:
    assert event_problems(clean_event()) == []


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"event_id": f"E{LONE}"}, "event_id", "U+D800, a lone surrogate"),
        ({"channel": "pos\x00"}, "channel", "NUL character (U+0000) at character 4"),
        ({"store": "S" * 121}, "store", "121 characters long, over the limit of 120"),
        ({"note": LONE}, "note", "lone surrogate"),
        ({"refunded_line_ids": ("L0", LONE)}, "refunded_line_ids[1]", "surrogate"),
        ({"total": Decimal("1e9")}, "total", "beyond any till"),
        ({"total": Decimal("NaN")}, "total", "not a finite number"),
        (
            {"occurred_at": datetime.fromisoformat("1899-12-31T23:59:59.999999+00:00")},
            "occurred_at",
            "is before 1900; check the till's clock or the time format",
        ),
        (
            {"identity": Identity(customer_id="C1\nC2")},
            "customer.customer_id",
            "control or invisible character (U+000A) at character 3; an id is one line",
        ),
        ({"event_id": "E\x1b[2J"}, "event_id", "invisible character (U+001B)"),
        (
            {"identity": Identity(customer_id="C\u200bX")},
            "customer.customer_id",
            "U+200B",
        ),
        ({"refunded_line_ids": ("L\u2028",)}, "refunded_line_ids[0]", "U+2028"),
    ],
    ids=[
        *("surrogate", "NUL", "too long", "note", "line ids", "total", "NaN"),
        *("1899", "newline in an id", "escape in an id", "line separator"),
        "zero-width space",
    ],
)
def test_each_problem_names_its_canonical_field(
    changes: dict[str, Any], field: str, words: str
) -> None:
    problems = event_problems(clean_event(**changes))

    assert [name for name, _ in problems] == [field]
    assert words in problems[0][1]


def one_line(**changes: Any) -> tuple[Line, ...]:
    return (replace(Line("A", Decimal(1), Decimal(75), Decimal(75)), **changes),)


EVERY_FIELD = {
    "event_id": {"event_id": "E\x00"},
    "store": {"store": "\x00"},
    "channel": {"channel": "c" * 41},
    "refunds_event_id": {"refunds_event_id": "E" * 201},
    "customer.customer_id": {"identity": Identity(customer_id="C" * 321)},
    "customer.loyalty_id": {"identity": Identity(loyalty_id="\x00")},
    "customer.email": {"identity": Identity(email=LONE)},
    "customer.phone": {"identity": Identity(phone=f"+44{LONE}")},
    "note": {"note": "\x00"},
    "lines[0].sku": {"lines": one_line(sku=LONE)},
    "lines[0].description": {"lines": one_line(description="\x00")},
    "lines[0].line_id": {"lines": one_line(line_id=LONE)},
    "lines[0].tags": {"lines": one_line(tags=frozenset({"\x00"}))},
    "refunded_line_ids[0]": {"refunded_line_ids": (LONE,)},
    "redemptions[0].code": {"redemptions": (Redemption(f"AB{LONE}CD"),)},
    "total": {"total": Decimal("-1e9")},
    "lines[0].quantity": {"lines": one_line(quantity=Decimal("NaN"))},
    "lines[0].unit_price": {"lines": one_line(unit_price=Decimal("0.0000001"))},
    "lines[0].total": {"lines": one_line(total=Decimal("Infinity"))},
    "redemptions[0].amount": {"redemptions": (Redemption("CODE1", 0, Decimal(10**9)),)},
    "occurred_at": {"occurred_at": datetime.fromisoformat("0001-01-01T00:00:00Z")},
}


@pytest.mark.parametrize(("field", "changes"), EVERY_FIELD.items(), ids=EVERY_FIELD)
def test_every_field_is_checked_on_its_own(field: str, changes: dict[str, Any]) -> None:
    problems = event_problems(clean_event(**changes))

    assert [name for name, _ in problems] == [field]


def test_every_line_and_redemption_is_checked_under_the_batch_prefix() -> None:
    good = Line("A", Decimal(1), Decimal("5"), Decimal("5"), line_id="L0")
    bad = Line(
        "B\x00",
        Decimal("1e30"),
        Decimal("0.0000001"),
        Decimal("5"),
        description=LONE,
        tags=frozenset({"ok", f"x{LONE}"}),
    )
    event = clean_event(
        lines=(good, bad),
        identity=Identity(customer_id="C1", email=LONE, loyalty_id="L" * 321),
        redemptions=(Redemption("GOOD1"), Redemption(None, 10, Decimal("1e10"))),
    )

    fields = [name for name, _ in event_problems(event, prefix="[3].")]

    assert fields == [
        "[3].customer.loyalty_id",
        "[3].customer.email",
        "[3].lines[1].sku",
        "[3].lines[1].description",
        "[3].lines[1].tags",
        "[3].lines[1].quantity",
        "[3].lines[1].unit_price",
        "[3].redemptions[1].amount",
    ]


def test_a_worked_out_total_is_held_to_its_size_not_its_places() -> None:
    third = Decimal("0.333333")
    worked_out = Line("A", third, third, third * third)  # 12 decimal places

    problems = event_problems(clean_event(lines=(worked_out,), total=third * third))

    assert problems == []


#: Changes that leave an event clean, each at the edge of a limit.
AT_THE_EDGE = [
    {"event_id": "E" * 200},
    {"store": "S" * 120},
    {"identity": Identity(customer_id="C" * 320, email="ann@example.test")},
    {"lines": one_line(quantity=Decimal("999999.999999"), description="Café")},
    {"lines": one_line(unit_price=Decimal("-999999999.999999"), tags=frozenset())},
    {"lines": one_line(total=Decimal("0.333333") * Decimal("0.333333"))},
    {"total": Decimal("999999999.9999999")},
    {"redemptions": (Redemption(None, 5, Decimal("0.000001")),)},
    {"occurred_at": datetime.fromisoformat("1900-01-01T00:00:00+00:00")},
    {"occurred_at": datetime.fromisoformat("1899-12-31T22:00:00-05:00")},
]

#: Changes that spoil an event by the least amount.
PAST_THE_EDGE = [
    {"event_id": "E" * 201},
    {"identity": Identity(customer_id="C" * 321)},
    {"lines": one_line(quantity=Decimal("1000000"))},
    {"total": Decimal("1000000000")},
    {"occurred_at": datetime.fromisoformat("1900-01-01T00:59:59.999999+01:00")},
]
ANY_CHANGE = AT_THE_EDGE + PAST_THE_EDGE + list(EVERY_FIELD.values())


@given(st.lists(st.sampled_from(ANY_CHANGE), max_size=3))
def test_the_quick_look_passes_exactly_the_events_without_problems(
    changes: list[dict[str, Any]],
) -> None:
    event = clean_event(**{k: v for change in changes for k, v in change.items()})

    looks_clean = sanity._looks_clean(event)

    assert looks_clean == (sanity._all_problems(event, "") == [])


@pytest.fixture
def store(db_url: str) -> Iterator[Engine]:
    engine = connect(db_url)
    yield engine
    engine.dispose()


def test_replay_refuses_an_unstorable_event_and_stores_the_rest(
    store: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20.00"),
        sale("E2", "2025-01-02T10:00:00+00:00", "20.00", store=f"S{LONE}"),
        sale("E3", "2025-01-03T10:00:00+00:00", "20.00", customer="C\x00"),
        sale("E4", "0001-01-01T00:00:00+05:00", "20.00"),
        sale("E5", "2025-01-05T10:00:00+00:00", "20.00", customer="C5"),
    ]

    summary = Replayer(store, load_programme(), batch_size=2).run(events)

    refused = [(r.event_id, r.field) for r in summary.rejected_events]
    assert refused == [
        ("E2", "store"),
        ("E3", "customer.customer_id"),
        ("E4", "occurred_at"),
    ]
    assert summary.stored == 2
    with store.connect() as conn:
        kept = conn.execute(select(schema.events.c.event_id)).scalars()
        assert sorted(kept) == ["E1", "E5"]


def test_an_oversized_webhook_with_an_unstorable_id_is_still_kept(
    client: TestClient, service: LiveService
) -> None:
    body = b'{"padding": "' + b"x" * (128 * 1024) + b'"}'  # over the 64 KiB cap
    headers = {
        "X-Shopify-Hmac-Sha256": shopify_signature(body),
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Webhook-Id": "W" * 5000,
    }

    response = client.post("/v1/webhooks/shopify", content=body, headers=headers)

    assert response.status_code == 413
    entry = service.quarantine.get(response.json()["quarantine_id"])
    assert (entry.reason, entry.body, entry.delivery_id) == ("too_large", body, None)


@pytest.mark.parametrize(
    "url",
    [
        "/v1/customers/%00",
        "/v1/customers/a%00b",
        "/v1/rewards/%00",
        "/v1/firings?x=%00",
    ],
)
def test_a_nul_in_the_url_is_refused_the_same_on_both_stores(
    client: TestClient, url: str
) -> None:
    response = client.get(url)

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "(url)", "reason": "holds a NUL character"}
    ]


def test_a_store_failure_answers_503_without_the_statement_or_values(
    client: TestClient, service: LiveService
) -> None:
    client.post("/v1/events", json=purchase("E1"))
    with service.store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE timeline RENAME TO timeline_gone")

    response = client.get("/v1/customers/C1")

    assert response.status_code == 503
    message = response.json()["message"]
    assert "x-request-id" in message
    assert "SELECT" not in message and "C1" not in message
    assert response.headers["x-request-id"]


def test_an_integer_past_pythons_digit_limit_is_bad_json_saying_so(
    client: TestClient, service: LiveService
) -> None:
    body = b'{"event_id": "E1", "total": 1' + b"0" * 5000 + b"}"

    response = client.post("/v1/events", content=body)

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert "digits" in error["reason"] and "UTF-8" not in error["reason"]
    assert service.quarantine.get(response.json()["quarantine_id"]).body == body


def test_a_body_naming_a_key_twice_is_bad_json_not_the_last_value(
    client: TestClient, service: LiveService
) -> None:
    event = json.dumps(purchase())
    body = (event[:-1] + ', "currency": "USD"}').encode()

    response = client.post("/v1/events", content=body)

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error == {
        "field": "(body)",
        "reason": "is not JSON: key 'currency' appears twice in one object",
    }
    entry = service.quarantine.get(response.json()["quarantine_id"])
    assert (entry.reason, entry.body) == ("bad_json", body)
    assert stored_rows(service) == (0, 0)
