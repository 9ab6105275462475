"""Rewards in the store: issued by rules and operators, redeemed once at a till.

Every test runs on SQLite and on PostgreSQL (``db_url``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from loyalty_helpers import basket
from sqlalchemy import Engine, func, select

from tillsight.core.events import Event
from tillsight.core.programme import Programme
from tillsight.loyalty import codes
from tillsight.loyalty.rewards import customer_rewards, insert_rewards, issue
from tillsight.loyalty.tables import redemption_attempts, rewards
from tillsight.pipeline import Replayer, ReplaySummary
from tillsight.store import queries, schema
from tillsight.store.db import connect

from factories import at, sale


@pytest.fixture
def store(db_url: str) -> Iterator[Engine]:
    engine = connect(db_url)
    yield engine
    engine.dispose()


def replay(
    store: Engine, programme: Programme, events: list[Event], until: str | None = None
) -> ReplaySummary:
    return Replayer(store, programme).run(events, until=at(until) if until else None)


def key_of(store: Engine, reference: str) -> str:
    with store.connect() as conn:
        return queries.find_customer_key(conn, reference)


def third_purchases(customer: str, store_id: str = "S1") -> list[Event]:
    return [
        sale(
            f"{customer}-{n}",
            f"2025-03-0{n}T10:00:00+00:00",
            "20.00",
            customer=customer,
            store=store_id,
        )
        for n in (1, 2, 3)
    ]


def give(store: Engine, programme: Programme, customer: str, when: str) -> str:
    """Issue a surprise reward by hand; return its code."""
    key = key_of(store, customer)
    with store.begin() as conn:
        reward = issue(conn, programme, key, "surprise", at=at(when))
    assert reward.code is not None
    return reward.code


def attempts(store: Engine) -> list[tuple[str | None, str, str | None]]:
    table = redemption_attempts
    with store.connect() as conn:
        rows = conn.execute(
            select(table.c.event_id, table.c.outcome, table.c.reason).order_by(
                table.c.id
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_rule_reward_becomes_a_reward_row_with_code_stage_store_and_expiry(
    store: Engine, programme: Programme
) -> None:
    customers = [f"C{n}" for n in range(1, 9)]
    events = [e for c in customers for e in third_purchases(c, store_id="Leeds")]

    replay(store, programme, events)

    with store.connect() as conn:
        rows = conn.execute(select(rewards).order_by(rewards.c.id)).all()
    assert len(rows) == len(customers)
    for row in rows:
        assert (row.kind, row.campaign, row.source) == ("surprise", "spring", "rule")
        assert (row.stage_at_issue, row.store) == ("active", "Leeds")
        assert row.value == Decimal("5.00")
        assert row.issued_at == at("2025-03-03T10:00:00+00:00")
        assert row.expires_at == at("2025-04-02T09:00:00+00:00")  # 10:00 BST
        held_out = codes.is_held_out(row.customer_key, "spring", 50)
        assert row.held_out is held_out
        assert (row.code is None) is held_out


def test_a_timer_reward_is_issued_to_the_lapsed_stage(
    store: Engine, programme: Programme
) -> None:
    events = [sale("E1", "2024-01-05T10:00:00+00:00", "20.00", store="York")]

    replay(store, programme, events, until="2024-12-31T00:00:00+00:00")

    with store.connect() as conn:
        row = conn.execute(select(rewards)).one()
    assert (row.kind, row.stage_at_issue, row.store) == ("win_back", "lapsed", "York")
    assert row.issued_at == at("2024-07-03T10:00:00+01:00")


def test_replaying_the_same_history_twice_issues_each_reward_once(
    store: Engine, programme: Programme
) -> None:
    events = third_purchases("C1")

    replay(store, programme, events)
    replay(store, programme, events)

    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rewards)).scalar() == 1


def test_a_code_on_a_sale_redeems_the_reward_and_the_sale_earns_on_net_paid(
    store: Engine, programme: Programme
) -> None:
    replay(store, programme, [sale("E1", "2025-03-01T10:00:00+00:00", "10.00")])
    code = give(store, programme, "C1", "2025-03-01T12:00:00+00:00")
    redeeming = basket(
        "E2",
        "2025-03-05T10:00:00+00:00",
        {"A": "30.00"},
        code=codes.display(code).lower(),
        code_value="5.00",
    )

    summary = replay(store, programme, [redeeming])
    replay(store, programme, [redeeming])

    with store.connect() as conn:
        row = conn.execute(select(rewards)).one()
        balance = queries.profile(conn, key_of(store, "C1")).points_balance
    assert summary.redemptions_applied == 1
    assert row.redeemed_at == at("2025-03-05T10:00:00+00:00")
    assert (row.redeemed_event_id, row.redeemed_basket) == ("E2", Decimal("30.00"))
    assert attempts(store) == [("E2", "applied", None)]
    assert balance == 10 + 25


@pytest.mark.parametrize(
    ("presented_by", "when", "code_of", "reason"),
    [
        ("C1", "2025-04-02T09:00:00+00:00", "issued", "REWARD_EXPIRED"),
        ("C1", "2025-03-05T10:00:00+00:00", "unknown", "REWARD_UNKNOWN"),
        ("C2", "2025-03-05T10:00:00+00:00", "issued", "REWARD_NOT_YOURS"),
    ],
)
def test_a_bad_code_is_refused_with_its_reason_and_the_sale_still_counts(
    store: Engine,
    programme: Programme,
    presented_by: str,
    when: str,
    code_of: str,
    reason: str,
) -> None:
    replay(
        store,
        programme,
        [
            sale("E1", "2025-03-01T10:00:00+00:00", "10.00"),
            sale("E9", "2025-03-01T10:00:00+00:00", "10.00", customer="C2"),
        ],
    )
    code = give(store, programme, "C1", "2025-03-03T10:00:00+00:00")
    presented = code if code_of == "issued" else "ZZZZ-ZZZZ-ZZZZ"
    event = basket(
        "E2",
        when,
        {"A": "30.00"},
        customer=presented_by,
        code=presented,
        code_value="5.00",
    )

    summary = replay(store, programme, [event])

    with store.connect() as conn:
        profile = queries.profile(conn, key_of(store, presented_by))
        redeemed = conn.execute(select(rewards.c.redeemed_at)).scalar()
    assert [(r.event_id, r.reason) for r in summary.redemptions_refused] == [
        ("E2", reason)
    ]
    assert attempts(store) == [("E2", "refused", reason)]
    assert redeemed is None
    assert profile.purchase_count == 2


def test_a_code_used_once_is_refused_on_the_next_sale(
    store: Engine, programme: Programme
) -> None:
    replay(store, programme, [sale("E1", "2025-03-01T10:00:00+00:00", "10.00")])
    code = give(store, programme, "C1", "2025-03-02T10:00:00+00:00")
    first = basket("E2", "2025-03-05T10:00:00+00:00", {"A": "30.00"}, code=code)
    second = basket("E3", "2025-03-05T10:00:00+00:00", {"A": "30.00"}, code=code)

    summary = replay(store, programme, [first, second])

    assert summary.redemptions_applied == 1
    assert attempts(store) == [
        ("E2", "applied", None),
        ("E3", "refused", "VOUCHER_ALREADY_USED"),
    ]


def test_b13_one_batch_applies_one_points_tender_and_refuses_the_other(
    store: Engine, programme: Programme
) -> None:
    replay(store, programme, [sale("E0", "2025-06-01T10:00:00+01:00", "500.00")])
    tenders = [
        basket(
            f"E{n}",
            "2025-07-02T10:00:00+01:00",
            {"A": "5.00"},
            points=500,
            points_value="5.00",
        )
        for n in (1, 2)
    ]

    summary = replay(store, programme, tenders)

    ledger = schema.points_ledger
    with store.connect() as conn:
        total = conn.execute(select(func.sum(ledger.c.delta))).scalar()
        balance = queries.profile(conn, key_of(store, "C1")).points_balance
    assert summary.redemptions_applied == 1
    assert [(r.event_id, r.reason) for r in summary.redemptions_refused] == [
        ("E2", "INSUFFICIENT_POINTS")
    ]
    assert balance == total == 0
    assert attempts(store) == [("E2", "refused", "INSUFFICIENT_POINTS")]


def test_an_operator_reward_expires_at_the_same_wall_clock_time(
    store: Engine, programme: Programme
) -> None:
    replay(store, programme, [sale("E1", "2025-03-01T10:00:00+00:00", "10.00")])
    key = key_of(store, "C1")

    with store.begin() as conn:
        issue(conn, programme, key, "win_back", at=at("2025-03-20T12:00:00+00:00"))
        [reward] = customer_rewards(conn, key)

    assert reward.expires_at - reward.issued_at == timedelta(days=45, hours=-1)
    assert reward.stage_at_issue == "new"
    assert reward.source == "operator"


def test_a_code_another_reward_has_is_redrawn_and_a_known_issue_key_skipped(
    store: Engine, programme: Programme
) -> None:
    replay(store, programme, third_purchases("C1"))
    key = key_of(store, "C1")
    taken = give(store, programme, "C1", "2025-03-04T10:00:00+00:00")
    row = {
        "issue_key": "import:clash",
        "customer_key": key,
        "kind": "surprise",
        "value": Decimal("5.00"),
        "campaign": "surprise",
        "source": "import",
        "held_out": False,
        "code": taken,
        "issued_at": at("2025-03-05T10:00:00+00:00"),
        "expires_at": at("2025-04-05T10:00:00+00:00"),
    }

    with store.begin() as conn:
        insert_rewards(conn, [row, row], at("2025-03-05T10:00:00+00:00"))
    with store.begin() as conn:
        insert_rewards(
            conn, [row | {"value": Decimal("9.00")}], at("2025-03-06T10:00:00+00:00")
        )

    with store.connect() as conn:
        found = conn.execute(
            select(rewards.c.code, rewards.c.value).where(
                rewards.c.issue_key == "import:clash"
            )
        ).all()
    assert len(found) == 1
    code, value = found[0]
    assert code is not None and code != taken
    assert value == Decimal("5.00")
