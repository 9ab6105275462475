"""``GET /v1/kpis/redemption`` agrees with ``tillsight kpi redemption --format json``.

A hand-made history, every figure worked out here, as of 2025-06-30 00:00 UTC.
Purchases: C1, C2 and C3 on 01-10; C1 again on 03-05; C3 again on 05-11.

    reward  customer stage  store  campaign  issued  expires  redeemed  basket
    R1      C1       new    Leeds  A         03-01   03-31    03-05     40.00
    R2      C2       new    Leeds  A         03-01   03-31    -
    R3      C3       new    York   B         05-01   05-31    05-11     20.00
    R4      C1       active York   B         06-20   07-20    -
    H1      C3       held out of A           03-01   03-31

- Issued 4 (H1 is the control group), redeemed 2: rate 0.5000.
- Matured (expired by 06-30): R1, R2, R3, of which R1 and R3 redeemed: 0.6667.
- Days to redeem: R1 4, R3 10, median 7.0. Revenue 40.00 + 20.00 = 60.00.
- Leeds: 2 issued, 1 redeemed, matured 1/2. York: 2 issued, 1 redeemed,
  matured 1/1, R4 not yet matured.
- Campaign A's control: rewarded C1 (bought on 03-05, inside 03-01..03-31) and
  C2 (did not), 0.5000; held-out C3 (bought on 01-10 and 05-11, outside),
  0.0000; lift 0.5000. Campaign B has no held-out customers, so no row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete
from typer.testing import CliRunner

from tillsight.api import create_app
from tillsight.cli import app as cli
from tillsight.live.service import LiveService
from tillsight.loyalty.rewards import insert_rewards
from tillsight.loyalty.tables import rewards
from tillsight.store import queries

from factories import day_2025, reward_row

AS_OF = "2025-06-30T00:00:00+00:00"
HISTORY = [
    ("R1", "C1", "new", "Leeds", "A", "03-01", "03-31", "03-05", "40.00"),
    ("R2", "C2", "new", "Leeds", "A", "03-01", "03-31", None, None),
    ("R3", "C3", "new", "York", "B", "05-01", "05-31", "05-11", "20.00"),
    ("R4", "C1", "active", "York", "B", "06-20", "07-20", None, None),
    ("H1", "C3", None, None, "A", "03-01", "03-31", None, None),
]
PURCHASES = [("C1", "01-10"), ("C2", "01-10"), ("C3", "01-10")]
PURCHASES += [("C1", "03-05"), ("C3", "05-11")]


def purchase(customer: str, month_day: str) -> dict[str, Any]:
    return {
        "event_id": f"{customer}-{month_day}",
        "type": "purchase",
        "occurred_at": day_2025(month_day).isoformat(),
        "currency": "GBP",
        "total": "10.00",
        "customer": {"customer_id": customer},
        "lines": [{"sku": "A", "quantity": 1, "unit_price": "10.00"}],
    }


@pytest.fixture
def history(client: TestClient, service: LiveService) -> TestClient:
    sent = client.post("/v1/events", json=[purchase(*p) for p in PURCHASES])
    assert sent.status_code == 202, sent.text

    def replace_rewards(conn: Any) -> None:
        conn.execute(delete(rewards))  # only the hand-made history counts
        keys = {c: queries.find_customer_key(conn, c) for c in ("C1", "C2", "C3")}
        rows = [
            reward_row(keys, *item, kind="surprise_and_delight") for item in HISTORY
        ]
        insert_rewards(conn, rows, datetime.now(UTC))

    service.store.write(replace_rewards)
    return client


def from_cli(db_url: str, by: str) -> Any:
    result = CliRunner().invoke(
        cli,
        ["kpi", "redemption", "--format", "json", "--as-of", AS_OF, "--db", db_url]
        + (["--by", by] if by else []),
        env={"TILLSIGHT_PROGRAMME": None},
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_totals_are_the_hand_worked_figures(history: TestClient) -> None:
    response = history.get("/v1/kpis/redemption", params={"as_of": AS_OF})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["as_of"] == AS_OF
    assert body["total"] == {
        "issued": 4,
        "redeemed": 2,
        "rate": "0.5000",
        "matured_issued": 3,
        "matured_redeemed": 2,
        "matured_rate": "0.6667",
        "median_days_to_redeem": "7.0",
        "revenue": "60.00",
    }
    assert body["customers"] == 3
    assert body["control_groups"] == [
        {
            "campaign": "A",
            "rewarded": 2,
            "rewarded_bought_again": 1,
            "rewarded_repurchase_rate": "0.5000",
            "held_out": 1,
            "held_out_bought_again": 0,
            "held_out_repurchase_rate": "0.0000",
            "lift": "0.5000",
        }
    ]


def test_the_rate_by_store_is_the_hand_worked_figures(history: TestClient) -> None:
    response = history.get(
        "/v1/kpis/redemption", params={"as_of": AS_OF, "by": "location"}
    )

    rows = [
        (r["location"], r["issued"], r["redeemed"], r["matured_rate"], r["revenue"])
        for r in response.json()["rows"]
    ]
    assert rows == [
        ("Leeds", 2, 1, "0.5000", "40.00"),
        ("York", 2, 1, "1.0000", "20.00"),
    ]


@pytest.mark.parametrize("by", ["", "location", "stage", "location,campaign"])
def test_the_api_and_the_command_line_give_the_same_figures(
    history: TestClient, db_url: str, by: str
) -> None:
    response = history.get("/v1/kpis/redemption", params={"as_of": AS_OF, "by": by})

    assert response.status_code == 200, response.text
    assert response.json() == from_cli(db_url, by)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"by": "colour"}, "by"), ({"as_of": "2025-06-30T00:00:00"}, "as_of")],
)
def test_a_bad_group_or_a_time_without_offset_is_422(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    response = client.get("/v1/kpis/redemption", params=params)

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_the_default_moment_is_the_services_clock(history: TestClient) -> None:
    body = history.get("/v1/kpis/redemption").json()

    assert body["as_of"] == "2025-06-10T09:00:00+00:00"
    assert body["total"]["issued"] == 3


def test_the_report_needs_a_key_with_the_read_scope(
    service: LiveService, client: TestClient
) -> None:
    now = service.ingestor.clock()
    ingest = service.keys.create("till", ["ingest"], now)
    read = service.keys.create("analyst", ["read"], now)
    anonymous = TestClient(create_app(service))

    without = anonymous.get("/v1/kpis/redemption")
    wrong = anonymous.get("/v1/kpis/redemption", headers={"X-API-Key": ingest})
    right = anonymous.get("/v1/kpis/redemption", headers={"X-API-Key": read})

    assert without.status_code == 401
    assert wrong.status_code == 403
    assert right.status_code == 200
