"""``/v1/rewards``: issue (admin), look up (read), redeem (ingest), over HTTP.

C1 and C2 have each bought once. The service's clock stands at 2025-06-10
09:00 UTC, so a win-back incentive issued now (45 days) expires on 2025-07-25
at 10:00 UTC (09:00 in London plus 45 days, still summer time).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tillsight.api import create_app
from tillsight.live.service import LiveService
from tillsight.loyalty.tables import redemption_attempts, rewards

UNKNOWN = "3333-4444-6666"


def purchase(event_id: str, customer: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "purchase",
        "occurred_at": "2025-06-01T12:00:00+01:00",
        "currency": "GBP",
        "total": "30.00",
        "customer": {"customer_id": customer},
        "lines": [{"sku": "A", "quantity": 1, "unit_price": "30.00"}],
    }


@pytest.fixture
def shoppers(client: TestClient) -> TestClient:
    response = client.post(
        "/v1/events", json=[purchase("E1", "C1"), purchase("E2", "C2")]
    )
    assert response.status_code == 202, response.text
    return client


@pytest.fixture
def keys(service: LiveService) -> dict[str, str]:
    now = service.ingestor.clock()
    return {
        scope: service.keys.create(scope, [scope], now) for scope in ("ingest", "read")
    }


@pytest.fixture
def anonymous(service: LiveService) -> Iterator[TestClient]:
    yield TestClient(create_app(service))


def issue(client: TestClient, customer: str = "C1") -> dict[str, Any]:
    response = client.post(
        "/v1/rewards", json={"customer_id": customer, "kind": "win_back_incentive"}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refusal(response: Any) -> str:
    """The reason code of a 409, which its message also starts with."""
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "ConflictError"
    assert str(body["message"]).startswith(body["code"] + ":")
    return str(body["code"])


def attempts(service: LiveService) -> list[tuple[str, str | None]]:
    table = redemption_attempts
    with service.store.read() as conn:
        rows = conn.execute(
            select(table.c.outcome, table.c.reason).order_by(table.c.id)
        )
        return [(row.outcome, row.reason) for row in rows]


ROUTES = [
    ("POST", "/v1/rewards", {"customer_id": "C1", "kind": "win_back_incentive"}),
    ("GET", f"/v1/rewards/{UNKNOWN}", None),
    ("POST", f"/v1/rewards/{UNKNOWN}/redeem", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_rewards_route_needs_a_key(
    anonymous: TestClient, method: str, path: str, body: Any
) -> None:
    response = anonymous.request(method, path, json=body)

    assert response.status_code == 401
    assert "missing API key" in response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "scope"),
    [
        (*ROUTES[0], "read"),
        (*ROUTES[0], "ingest"),
        (*ROUTES[1], "ingest"),
        (*ROUTES[2], "read"),
    ],
)
def test_a_key_without_the_routes_scope_gets_403(
    shoppers: TestClient,
    service: LiveService,
    keys: dict[str, str],
    method: str,
    path: str,
    body: Any,
    scope: str,
) -> None:
    response = shoppers.request(method, path, json=body, headers=bearer(keys[scope]))

    assert response.status_code == 403
    assert "lacks the" in response.json()["message"]
    with service.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(rewards)).scalar() == 0
    assert attempts(service) == []


def test_issue_get_redeem_then_redeem_again_is_refused(
    shoppers: TestClient, service: LiveService, keys: dict[str, str]
) -> None:
    issued = issue(shoppers)
    code = issued["code"]
    till = bearer(keys["ingest"])

    looked_up = shoppers.get(
        f"/v1/rewards/{code.lower()}", headers=bearer(keys["read"])
    )
    redeemed = shoppers.post(
        f"/v1/rewards/{code}/redeem",
        json={"customer_id": "C1", "store": "Leeds", "basket": "30.00"},
        headers=till,
    )
    again = shoppers.post(
        f"/v1/rewards/{code}/redeem", json={"customer_id": "C1"}, headers=till
    )

    assert issued["kind"] == "win_back_incentive" and issued["value"] == "10.00"
    assert issued["issued_at"] == "2025-06-10T09:00:00+00:00"
    assert issued["expires_at"] == "2025-07-25T09:00:00+00:00"
    assert issued["redeemed_at"] is None
    assert looked_up.status_code == 200 and looked_up.json() == issued
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["redeemed_at"] == "2025-06-10T09:00:00+00:00"
    assert refusal(again) == "VOUCHER_ALREADY_USED"
    assert "already been redeemed" in again.json()["message"]
    assert attempts(service) == [
        ("applied", None),
        ("refused", "VOUCHER_ALREADY_USED"),
    ]


def test_an_admin_key_may_redeem_too(shoppers: TestClient) -> None:
    code = issue(shoppers)["code"]

    response = shoppers.post(f"/v1/rewards/{code}/redeem", json={})

    assert response.status_code == 200, response.text


def test_an_expired_code_is_refused_and_stays_unused(
    shoppers: TestClient, service: LiveService
) -> None:
    issued = issue(shoppers)
    code = issued["code"]

    response = shoppers.post(
        f"/v1/rewards/{code}/redeem",
        json={"customer_id": "C1", "at": "2025-07-25T09:00:00+00:00"},
    )

    assert refusal(response) == "REWARD_EXPIRED"
    assert shoppers.get(f"/v1/rewards/{code}").json()["redeemed_at"] is None
    assert attempts(service) == [("refused", "REWARD_EXPIRED")]


def test_a_use_dated_before_the_issue_is_refused_so_expiry_cannot_be_dodged(
    shoppers: TestClient, service: LiveService
) -> None:
    code = issue(shoppers)["code"]

    response = shoppers.post(
        f"/v1/rewards/{code}/redeem",
        json={"customer_id": "C1", "at": "2000-01-01T00:00:00+00:00"},
    )

    assert refusal(response) == "REWARD_NOT_YET_ISSUED"
    assert shoppers.get(f"/v1/rewards/{code}").json()["redeemed_at"] is None
    assert attempts(service) == [("refused", "REWARD_NOT_YET_ISSUED")]


def test_someone_elses_code_is_refused_and_stays_theirs(
    shoppers: TestClient, service: LiveService
) -> None:
    code = issue(shoppers, "C1")["code"]

    by_c2 = shoppers.post(f"/v1/rewards/{code}/redeem", json={"customer_id": "C2"})
    by_c1 = shoppers.post(f"/v1/rewards/{code}/redeem", json={"customer_id": "C1"})

    assert refusal(by_c2) == "REWARD_NOT_YOURS"
    assert by_c1.status_code == 200
    assert attempts(service) == [("refused", "REWARD_NOT_YOURS"), ("applied", None)]


def test_an_unknown_code_is_404_to_look_up_and_409_to_redeem(
    shoppers: TestClient, service: LiveService
) -> None:
    looked_up = shoppers.get(f"/v1/rewards/{UNKNOWN}")
    redeemed = shoppers.post(f"/v1/rewards/{UNKNOWN}/redeem", json={})

    assert looked_up.status_code == 404
    assert refusal(redeemed) == "REWARD_UNKNOWN"
    assert attempts(service) == [("refused", "REWARD_UNKNOWN")]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"customer_id": "C9", "kind": "win_back_incentive"}, "C9"),
        ({"customer_id": "C1", "kind": "mystery"}, "mystery"),
    ],
)
def test_issuing_to_an_unknown_customer_or_kind_is_404(
    shoppers: TestClient, body: dict[str, str], named: str
) -> None:
    response = shoppers.post("/v1/rewards", json=body)

    assert response.status_code == 404
    assert named in response.json()["message"]


def test_a_negative_basket_is_422(shoppers: TestClient) -> None:
    code = issue(shoppers)["code"]

    response = shoppers.post(f"/v1/rewards/{code}/redeem", json={"basket": "-1"})

    assert response.status_code == 422
    assert shoppers.get(f"/v1/rewards/{code}").json()["redeemed_at"] is None


def test_a_guest_sale_with_a_code_redeems_it_for_its_owner(
    shoppers: TestClient, service: LiveService
) -> None:
    issued = issue(shoppers)
    guest_sale = purchase("G1", "C1") | {
        "occurred_at": "2025-06-10T09:30:00+00:00",  # after the reward's issue
        "customer": {},
        "redemptions": [{"code": issued["code"], "amount": "10.00"}],
    }

    response = shoppers.post("/v1/events", json=guest_sale)

    receipt = response.json()["events"][0]
    redeemed = shoppers.get(f"/v1/rewards/{issued['code']}").json()
    assert response.status_code == 202, response.text
    assert receipt["status"] == "accepted"
    assert receipt["customer_id"] == issued["customer_key"]
    assert redeemed["redeemed_event_id"] == "G1"
    assert attempts(service) == [("applied", None)]


def test_a_sale_taking_more_off_than_the_reward_is_worth_is_refused(
    shoppers: TestClient, service: LiveService
) -> None:
    issued = issue(shoppers)
    worth = Decimal(issued["value"])
    sale = purchase("G2", "C1") | {
        "occurred_at": "2025-06-10T09:30:00+00:00",
        "customer": {"customer_id": "C1"},
        "redemptions": [{"code": issued["code"], "amount": str(worth + 5)}],
    }

    shoppers.post("/v1/events", json=sale)

    assert shoppers.get(f"/v1/rewards/{issued['code']}").json()["redeemed_at"] is None
    assert attempts(service) == [("refused", "REWARD_OVER_VALUE")]
