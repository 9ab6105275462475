"""The Reward Redemption Rate on a small hand-made history, every figure
worked out by hand (as of 2025-06-30):

    reward  customer stage   store campaign issued  expires redeemed  basket
    R1      C1       new     Leeds A        03-01   03-31   03-05     40.00
    R2      C2       new     Leeds A        03-01   03-31   -
    R3      C3       active  York  A        03-10   04-09   03-20     60.00
    R4      C4       active  York  B        06-20   07-20   -
    R5      C1       lapsed  York  B        06-01   07-01   06-02     25.50
    H1      C2       held out of A          03-01   03-31
    H2      C4       held out of A          03-01   03-31

Purchases in the windows: C1 on 03-05, C4 on 03-15, C3 on 03-20, C1 on 06-02.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete

from tillsight.core.programme import Programme
from tillsight.kpi.redemption import RedemptionReport, redemption_report
from tillsight.kpi.report import render
from tillsight.loyalty.rewards import insert_rewards
from tillsight.loyalty.tables import rewards
from tillsight.pipeline import Replayer
from tillsight.programme_file import load_programme
from tillsight.store import queries
from tillsight.store.db import connect

from factories import at, reward_row, sale

AS_OF = at("2025-06-30T00:00:00+00:00")
PROGRAMME = Path(__file__).parents[1] / "loyalty" / "loyalty_programme.yaml"
HISTORY = [
    ("R1", "C1", "new", "Leeds", "A", "03-01", "03-31", "03-05", "40.00"),
    ("R2", "C2", "new", "Leeds", "A", "03-01", "03-31", None, None),
    ("R3", "C3", "active", "York", "A", "03-10", "04-09", "03-20", "60.00"),
    ("R4", "C4", "active", "York", "B", "06-20", "07-20", None, None),
    ("R5", "C1", "lapsed", "York", "B", "06-01", "07-01", "06-02", "25.50"),
    ("H1", "C2", None, None, "A", "03-01", "03-31", None, None),
    ("H2", "C4", None, None, "A", "03-01", "03-31", None, None),
]


@pytest.fixture(scope="module")
def programme() -> Programme:
    return load_programme(PROGRAMME)


@pytest.fixture
def store(db_url: str, programme: Programme) -> Iterator[Engine]:
    engine = connect(db_url)
    sales = [
        sale(f"{c}-0", "2025-01-10T10:00:00+00:00", "10.00", customer=c)
        for c in ("C1", "C2", "C3", "C4")
    ]
    sales += [
        sale("C1-1", "2025-03-05T10:00:00+00:00", "40.00", customer="C1"),
        sale("C4-1", "2025-03-15T10:00:00+00:00", "15.00", customer="C4"),
        sale("C3-1", "2025-03-20T10:00:00+00:00", "60.00", customer="C3"),
        sale("C1-2", "2025-06-02T10:00:00+00:00", "25.50", customer="C1"),
    ]
    Replayer(engine, programme).run(sales)
    with engine.begin() as conn:
        conn.execute(delete(rewards))
        keys = {c: queries.find_customer_key(conn, c) for c in ("C1", "C2", "C3", "C4")}
        insert_rewards(
            conn, [reward_row(keys, *item) for item in HISTORY], datetime.now(UTC)
        )
    yield engine
    engine.dispose()


def report(
    store: Engine, programme: Programme, by: tuple[str, ...]
) -> RedemptionReport:
    with store.connect() as conn:
        return redemption_report(
            conn, programme.zone, ["new", "active", "lapsed"], by=by, as_of=AS_OF
        )


def test_totals_count_issued_rewards_and_leave_the_control_group_out(
    store: Engine, programme: Programme
) -> None:
    total = report(store, programme, ()).total.to_json()

    assert total == {
        "issued": 5,
        "redeemed": 3,
        "rate": "0.6000",
        "matured_issued": 3,
        "matured_redeemed": 2,
        "matured_rate": "0.6667",
        "median_days_to_redeem": "4.0",
        "revenue": "125.50",
    }


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        (
            "stage",
            {
                ("active",): (2, 1, "0.5000", "1.0000", "10.0", "60.00"),
                ("lapsed",): (1, 1, "1.0000", None, "1.0", "25.50"),
                ("new",): (2, 1, "0.5000", "0.5000", "4.0", "40.00"),
            },
        ),
        (
            "location",
            {
                ("Leeds",): (2, 1, "0.5000", "0.5000", "4.0", "40.00"),
                ("York",): (3, 2, "0.6667", "1.0000", "5.5", "85.50"),
            },
        ),
        (
            "month",
            {
                ("2025-03",): (3, 2, "0.6667", "0.6667", "7.0", "100.00"),
                ("2025-06",): (2, 1, "0.5000", None, "1.0", "25.50"),
            },
        ),
    ],
)
def test_the_rate_by_group_to_date_and_matured(
    store: Engine,
    programme: Programme,
    by: str,
    expected: dict[tuple[str, ...], tuple[Any, ...]],
) -> None:
    rows = report(store, programme, (by,)).rows

    found = {
        tuple(row.group.values()): (
            row.issued,
            row.redeemed,
            str(row.rate),
            None if row.matured_rate is None else str(row.matured_rate),
            str(row.median_days),
            row.to_json()["revenue"],
        )
        for row in rows
    }
    assert found == expected


def test_control_groups_show_the_lift_of_a_campaign_with_a_holdout(
    store: Engine, programme: Programme
) -> None:
    control = report(store, programme, ("campaign",)).control

    assert [row.to_json() for row in control] == [
        {
            "campaign": "A",
            "rewarded": 3,
            "rewarded_bought_again": 2,
            "rewarded_repurchase_rate": "0.6667",
            "held_out": 2,
            "held_out_bought_again": 1,
            "held_out_repurchase_rate": "0.5000",
            "lift": "0.1667",
        }
    ]


def test_the_funnel_counts_customers_who_reached_each_stage(
    store: Engine, programme: Programme
) -> None:
    result = report(store, programme, ())

    assert result.customers == 4
    assert [(s.stage, s.reached, s.current) for s in result.funnel] == [
        ("new", 4, 4),
        ("active", 0, 0),
        ("lapsed", 0, 0),
    ]


def test_the_html_page_is_self_contained_with_charts(
    store: Engine, programme: Programme, tmp_path: Path
) -> None:
    whole = report(store, programme, ())
    slices = {d: report(store, programme, (d,)).rows for d in ("stage", "location")}

    page = render(whole, slices, "Reward Redemption Rate")

    assert page.count("<svg") == 4
    assert "60.0%" in page and "+16.7 pts" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<script" not in page
