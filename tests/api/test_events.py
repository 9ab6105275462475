"""``POST /v1/events`` through real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tillsight.live.service import LiveService


def purchase(event_id: str = "E1", **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": "purchase",
        "occurred_at": "2025-06-01T12:00:00+01:00",
        "currency": "GBP",
        "total": "75.00",
        "customer": {"customer_id": "C1"},
        "lines": [{"sku": "A", "quantity": 1, "unit_price": "75.00"}],
    }
    return event | changes


def test_first_purchase_answers_202_with_the_new_stage(client: TestClient) -> None:
    response = client.post("/v1/events", json=purchase())

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted"
    receipt = body["events"][0]
    assert receipt["stage"] == "new"
    assert {"rule_fired", "stage_changed"} <= {d["kind"] for d in receipt["decisions"]}


def test_same_event_again_answers_200_duplicate(client: TestClient) -> None:
    client.post("/v1/events", json=purchase())

    response = client.post("/v1/events", json=purchase())

    assert response.status_code == 200
    assert response.json()["events"][0]["status"] == "duplicate"


def test_same_event_id_for_another_customer_is_refused_and_kept(
    client: TestClient,
) -> None:
    client.post("/v1/events", json=purchase())

    response = client.post("/v1/events", json=purchase(customer={"customer_id": "C2"}))

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "event_id"
    assert "already stored with other content" in error["reason"]
    assert response.json()["quarantine_id"] is not None
    assert client.get("/v1/customers/C2").status_code == 404


@pytest.mark.parametrize(
    ("customer", "field"),
    [
        ({"email": "nobody-at-example"}, "customer.email"),
        ({"phone": "call me maybe"}, "customer.phone"),
    ],
)
def test_a_sale_named_only_by_an_unreadable_contact_is_refused(
    client: TestClient, customer: dict[str, str], field: str
) -> None:
    response = client.post("/v1/events", json=purchase(customer=customer))

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == field
    assert "nothing else names the customer" in error["reason"]
    assert next(iter(customer.values())) not in error["reason"]  # personal data


def test_an_unreadable_contact_beside_an_id_does_not_stop_the_sale(
    client: TestClient,
) -> None:
    event = purchase(customer={"customer_id": "C1", "email": "not-an-email"})

    response = client.post("/v1/events", json=event)

    assert response.status_code == 202


def test_batch_takes_every_event(client: TestClient) -> None:
    batch = [
        purchase(f"E{n}", occurred_at=f"2025-06-0{n}T12:00:00+01:00") for n in (1, 2, 3)
    ]

    response = client.post("/v1/events", json=batch)

    assert response.status_code == 202
    stages = [receipt["stage"] for receipt in response.json()["events"]]
    assert stages == ["new", "new", "active"]


def test_customer_shows_stage_and_timeline(client: TestClient) -> None:
    key = client.post("/v1/events", json=purchase()).json()["events"][0]["customer_id"]

    by_key = client.get(f"/v1/customers/{key}")
    by_pos_id = client.get("/v1/customers/C1")

    assert by_key.status_code == 200
    assert by_key.json() == by_pos_id.json()
    assert by_key.json()["stage"] == "new"
    assert by_key.json()["timeline"]


def test_firings_lists_rule_firings(client: TestClient) -> None:
    client.post("/v1/events", json=purchase())

    firings = client.get("/v1/firings").json()

    assert [firing["rule_id"] for firing in firings] == ["first_purchase"]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (purchase(type="sale"), "type"),
        ({k: v for k, v in purchase().items() if k != "event_id"}, "event_id"),
        (purchase(occurred_at="yesterday"), "occurred_at"),
        (purchase(total="75.01"), "total"),
        (purchase(currency="USD"), "currency"),
    ],
    ids=["unknown type", "missing id", "bad time", "total mismatch", "currency"],
)
def test_bad_event_answers_422_naming_the_field(
    client: TestClient, event: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/events", json=event)

    assert response.status_code == 422
    body = response.json()
    assert field in [error["field"] for error in body["errors"]]
    assert body["quarantine_id"] is not None


def test_bad_item_in_batch_is_named_by_index(client: TestClient) -> None:
    batch = [purchase("E1"), purchase("E2", total="oops")]

    response = client.post("/v1/events", json=batch)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["[1].total"]


def test_missing_key_is_401_and_wrong_scope_is_403(
    client: TestClient, service: LiveService
) -> None:
    reader = service.keys.create("reader", ["read"], service.ingestor.clock())

    anonymous = client.post(
        "/v1/events", json=purchase(), headers={"Authorization": ""}
    )
    forbidden = client.post(
        "/v1/events", json=purchase(), headers={"Authorization": f"Bearer {reader}"}
    )
    forged = client.post(
        "/v1/events", json=purchase(), headers={"Authorization": "Bearer tsk_00_nope"}
    )

    assert (anonymous.status_code, forbidden.status_code) == (401, 403)
    assert forged.status_code == 401


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    given = client.get("/v1/firings", headers={"x-request-id": "abc-123"})
    made = client.get("/v1/firings")

    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32


def test_openapi_documents_the_canonical_event(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    assert "CanonicalEvent" in document["components"]["schemas"]
    assert "/v1/webhooks/square" in document["paths"]
