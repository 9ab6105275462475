"""A batch of old sales is applied as a replay would apply it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.test_events import purchase
from tillsight.live.service import LiveService
from tillsight.loyalty.tables import rewards


def test_a_batch_of_old_sales_lapses_the_customer_once(
    client: TestClient, service: LiveService
) -> None:
    same_moment = "2024-01-01T10:00:00+00:00"
    batch = [purchase(f"B{n}", occurred_at=same_moment) for n in range(5)]

    response = client.post("/v1/events", json=batch)
    customer = client.get("/v1/customers/C1").json()

    with service.store.read() as conn:
        win_backs = conn.execute(
            select(rewards.c.event_id).where(rewards.c.kind == "win_back_incentive")
        ).all()
    lapses = [
        e
        for e in customer["timeline"]
        if e["kind"] == "rule_fired" and e["rule_id"] == "lapsed"
    ]
    assert response.status_code == 202
    assert [(e["event_id"], e["at"][:10]) for e in lapses] == [("B4", "2024-06-29")]
    assert [row.event_id for row in win_backs] == ["B4"]
    assert customer["stage"] == "lapsed"
