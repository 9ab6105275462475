"""Identity: email and phone normalised; one event linking two profiles merges."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.test_events import purchase
from tillsight.live.service import LiveService
from tillsight.store import schema


def by(customer: dict[str, Any], event_id: str, day: str, total: str) -> dict[str, Any]:
    return purchase(
        event_id,
        customer=customer,
        occurred_at=f"2025-06-0{day}T12:00:00+01:00",
        total=total,
        lines=[{"sku": "A", "quantity": 1, "unit_price": total}],
    )


def test_email_and_phone_are_normalised(client: TestClient) -> None:
    first = client.post(
        "/v1/events", json=by({"email": " Ann@Example.COM "}, "E1", "1", "10.00")
    )
    second = client.post(
        "/v1/events", json=by({"email": "ann@example.com"}, "E2", "2", "10.00")
    )
    third = client.post(
        "/v1/events", json=by({"phone": "07911 123456"}, "E3", "3", "1")
    )
    fourth = client.post(
        "/v1/events", json=by({"phone": "+44 7911 123456"}, "E4", "4", "1")
    )

    keys = [
        r.json()["events"][0]["customer_id"] for r in (first, second, third, fourth)
    ]
    assert None not in keys
    assert keys[0] == keys[1]
    assert keys[2] == keys[3] != keys[0]


def test_event_linking_two_profiles_merges_them_b21(
    client: TestClient, service: LiveService
) -> None:
    email, phone = {"email": "ann@example.com"}, {"phone": "07911 123456"}
    c1 = client.post("/v1/events", json=by(email, "O1", "1", "50.00")).json()
    c2 = client.post("/v1/events", json=by(phone, "O2", "2", "100.00")).json()

    linked = client.post("/v1/events", json=by(email | phone, "O3", "3", "20.00"))

    survivor = c1["events"][0]["customer_id"]
    merged = c2["events"][0]["customer_id"]
    assert linked.json()["events"][0]["customer_id"] == survivor
    assert linked.json()["events"][0]["merged"] == [merged]
    profile = client.get(f"/v1/customers/{survivor}").json()
    assert profile["purchase_count"] == 3
    assert profile["points_balance"] == 170
    assert profile["stage"] == "active"
    assert client.get(f"/v1/customers/{merged}").json()["id"] == survivor
    welcomes = _actions(service, "welcome")
    assert len(welcomes) == 2, "each welcome went out once, none again"
    assert _ledger_total(service, survivor) == 170
    assert _ledger_total(service, merged) == 0
    assert _ledger(service, survivor) == [
        ("earn", "O1", 50),
        ("earn", "O2", 100),
        ("earn", "O3", 20),
    ]
    assert _ledger(service, merged)[-1] == ("merge_out", survivor, -100)


def _actions(service: LiveService, name: str) -> list[Any]:
    outbox = schema.outbox
    with service.store.read() as conn:
        return list(conn.execute(select(outbox).where(outbox.c.name == name)))


def _ledger_total(service: LiveService, key: str) -> int:
    ledger = schema.points_ledger
    with service.store.read() as conn:
        rows = conn.execute(
            select(ledger.c.delta).where(ledger.c.customer_key == key)
        ).scalars()
        return sum(rows)


def _ledger(service: LiveService, key: str) -> list[tuple[str, str, int]]:
    ledger = schema.points_ledger
    with service.store.read() as conn:
        rows = conn.execute(
            select(ledger.c.reason, ledger.c.event_id, ledger.c.delta)
            .where(ledger.c.customer_key == key)
            .order_by(ledger.c.at, ledger.c.id)
        )
        return [(reason, event_id, delta) for reason, event_id, delta in rows]
