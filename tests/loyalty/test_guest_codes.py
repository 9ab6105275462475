"""A reward code on a guest sale is the owner's: the sale is attributed to them.

C1 buys for 100.00 on 03-01 and is given a win-back reward (10.00) on 03-02.
A till then takes that code on a sale of 30.00 without naming anyone (G1):
the sale becomes C1's, the code is used, and C1 earns 20 points on the 20.00
paid in money (30.00 less the 10.00 voucher), so C1's balance is 120.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from loyalty_helpers import basket
from sqlalchemy import Engine, func, select

from tillsight.core.events import Event, Identity
from tillsight.core.programme import Programme
from tillsight.loyalty import rewards as reward_store
from tillsight.loyalty.guest import attribute_guest_sales
from tillsight.loyalty.rewards import Reward
from tillsight.loyalty.tables import redemption_attempts, rewards
from tillsight.pipeline import Replayer
from tillsight.store import queries, schema
from tillsight.store.db import connect

from factories import at, sale


@pytest.fixture
def store(db_url: str, programme: Programme) -> Iterator[Engine]:
    engine = connect(db_url)
    Replayer(engine, programme).run([sale("E1", "2025-03-01T10:00:00+00:00", "100")])
    yield engine
    engine.dispose()


def issue_to(store: Engine, programme: Programme, customer: str) -> Reward:
    with store.begin() as conn:
        key = queries.find_customer_key(conn, customer)
        return reward_store.issue(
            conn, programme, key, "win_back", at=at("2025-03-02T10:00:00+00:00")
        )


def guest_sale(event_id: str, when: str, code: str) -> Event:
    named = basket(event_id, when, {"A": "30.00"}, code=code, code_value="10.00")
    return replace(named, identity=Identity())


def replay_attributed(store: Engine, programme: Programme, events: list[Event]) -> None:
    """Attribute guest sales, then replay: what the replay should do itself."""
    with store.begin() as conn:
        attributed = attribute_guest_sales(conn, events, datetime.now(UTC))
    Replayer(store, programme).run(attributed)


def attempts(store: Engine) -> list[tuple[str | None, str, str | None, str | None]]:
    table = redemption_attempts
    with store.connect() as conn:
        rows = conn.execute(
            select(table.c.event_id, table.c.outcome, table.c.reason, table.c.channel)
            .where(table.c.channel == "till")
            .order_by(table.c.attempted_at)
        )
        return [tuple(row) for row in rows]


def test_a_guest_sale_with_a_customers_code_redeems_it_for_that_customer(
    store: Engine, programme: Programme
) -> None:
    reward = issue_to(store, programme, "C1")
    code = reward.display_code
    assert code is not None

    replay_attributed(
        store, programme, [guest_sale("G1", "2025-03-10T10:00:00+00:00", code.lower())]
    )

    with store.connect() as conn:
        used = conn.execute(select(rewards).where(rewards.c.id == reward.id)).one()
        profile = queries.profile(conn, reward.customer_key)
        owner = conn.execute(
            select(schema.events.c.customer_key).where(schema.events.c.event_id == "G1")
        ).scalar_one()
    assert used.redeemed_at == at("2025-03-10T10:00:00+00:00")
    assert used.redeemed_event_id == "G1"
    assert owner == reward.customer_key
    assert profile.points_balance == 120
    assert attempts(store) == [("G1", "applied", None, "till")]


def test_the_same_code_on_a_second_guest_sale_is_refused_and_recorded(
    store: Engine, programme: Programme
) -> None:
    reward = issue_to(store, programme, "C1")
    code = reward.code
    assert code is not None

    replay_attributed(
        store,
        programme,
        [
            guest_sale("G1", "2025-03-10T10:00:00+00:00", code),
            guest_sale("G2", "2025-03-11T10:00:00+00:00", code),
        ],
    )

    with store.connect() as conn:
        used = conn.execute(select(rewards).where(rewards.c.id == reward.id)).one()
    assert used.redeemed_event_id == "G1"
    assert attempts(store) == [
        ("G1", "applied", None, "till"),
        ("G2", "refused", "VOUCHER_ALREADY_USED", "till"),
    ]


def test_an_unknown_code_on_a_guest_sale_is_recorded_as_refused(
    store: Engine, programme: Programme
) -> None:
    event = guest_sale("G1", "2025-03-10T10:00:00+00:00", "NOPE-NOPE-NOPE")

    with store.begin() as conn:
        [same] = attribute_guest_sales(conn, [event], datetime.now(UTC))

    assert same is event
    assert attempts(store) == [("G1", "refused", "REWARD_UNKNOWN", "till")]


def test_a_code_whose_owner_has_no_pos_id_is_still_redeemed(
    store: Engine, programme: Programme
) -> None:
    by_email = replace(
        sale("M1", "2025-03-01T11:00:00+00:00", "50"),
        identity=Identity(email="someone@example.test"),
    )
    Replayer(store, programme).run([by_email])
    with store.begin() as conn:
        key = conn.execute(
            select(schema.events.c.customer_key).where(schema.events.c.event_id == "M1")
        ).scalar_one()
        reward = reward_store.issue(
            conn, programme, key, "win_back", at=at("2025-03-02T10:00:00+00:00")
        )
    assert reward.code is not None
    event = guest_sale("G1", "2025-03-10T10:00:00+00:00", reward.code)

    with store.begin() as conn:
        [same] = attribute_guest_sales(conn, [event], datetime.now(UTC))
        used = conn.execute(select(rewards).where(rewards.c.id == reward.id)).one()

    assert same.is_guest
    assert used.redeemed_event_id == "G1"
    assert attempts(store) == [("G1", "applied", None, "till")]


def test_sales_that_name_a_customer_are_left_as_they_are(
    store: Engine, programme: Programme
) -> None:
    named = basket("S2", "2025-03-10T10:00:00+00:00", {"A": "30"}, code="X")

    with store.begin() as conn:
        [same] = attribute_guest_sales(conn, [named], datetime.now(UTC))
        tried = conn.execute(select(func.count()).select_from(redemption_attempts))

        assert same is named
        assert tried.scalar_one() == 0


def test_the_replay_itself_redeems_a_code_on_a_guest_sale(
    store: Engine, programme: Programme
) -> None:
    reward = issue_to(store, programme, "C1")
    assert reward.code is not None

    Replayer(store, programme).run(
        [guest_sale("G1", "2025-03-10T10:00:00+00:00", reward.code)]
    )

    with store.connect() as conn:
        used = conn.execute(select(rewards).where(rewards.c.id == reward.id)).one()
    assert used.redeemed_event_id == "G1"
