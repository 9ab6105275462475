"""Points in the pure core: earning on net paid, tenders, reversals, expiry.

B02, B13, B17 and B19 of the shared CASES.md, on the loyalty test programme
(1 point per whole GBP of net paid, points expiring after 12 months).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loyalty_helpers import adjustment, basket, ledger, line_refund, redemptions

from tillsight.core.decisions import Decision, Kind
from tillsight.core.engine import Engine
from tillsight.core.events import Event
from tillsight.core.programme import Programme
from tillsight.core.state import CustomerState
from tillsight.core.timeconv import instant_us

from factories import at, refund, sale


def run(
    engine: Engine, events: list[Event], until: str | None = None
) -> tuple[CustomerState, list[Decision]]:
    until_us = instant_us(datetime.fromisoformat(until)) + 1 if until else None
    return engine.replay("C1", events, until_us=until_us)


def test_b02_refund_of_a_sale_paid_with_points_never_charges_them_again(
    engine: Engine,
) -> None:
    events = [
        sale("E0", "2025-01-10T10:00:00+00:00", "600.00"),
        basket(
            "E1",
            "2025-03-01T10:00:00+00:00",
            {"A": "10.00", "B": "20.00"},
            points=500,
            points_value="5.00",
        ),
        line_refund("E2", "2025-03-05T10:00:00+00:00", "E1", {"A": "10.00"}),
    ]

    state, decisions = run(engine, events)

    assert ledger(decisions) == [
        ("earn", "E0", 600),
        ("redeem", "E1", -500),
        ("earn", "E1", 25),
        ("reverse", "E2", -8),
    ]
    assert state.points_balance == 117


def test_full_refund_of_a_sale_paid_with_points_gives_the_points_back(
    engine: Engine,
) -> None:
    events = [
        sale("E0", "2025-01-10T10:00:00+00:00", "600.00"),
        basket(
            "E1",
            "2025-03-01T10:00:00+00:00",
            {"A": "10.00", "B": "20.00"},
            points=500,
            points_value="5.00",
        ),
        refund("E2", "2025-03-05T10:00:00+00:00", "30.00", of="E1"),
    ]

    state, decisions = run(engine, events)

    assert ledger(decisions)[-2:] == [("reverse", "E2", -25), ("restore", "E2", 500)]
    assert state.points_balance == 600


def test_a_second_full_refund_restores_nothing_more(engine: Engine) -> None:
    events = [
        sale("E0", "2025-01-10T10:00:00+00:00", "600.00"),
        basket("E1", "2025-03-01T10:00:00+00:00", {"A": "30.00"}, points=500),
        refund("E2", "2025-03-05T10:00:00+00:00", "30.00", of="E1"),
        refund("E3", "2025-03-06T10:00:00+00:00", "30.00", of="E1"),
    ]

    state, decisions = run(engine, events)

    assert [row for row in ledger(decisions) if row[1] == "E3"] == []
    assert state.points_balance == 600


def test_b13_two_tenders_against_one_balance_apply_one_and_refuse_one(
    engine: Engine,
) -> None:
    events = [
        sale("E0", "2025-06-01T10:00:00+01:00", "500.00"),
        basket(
            "E1",
            "2025-07-02T10:00:00+01:00",
            {"A": "5.00"},
            points=500,
            points_value="5.00",
        ),
        basket(
            "E2",
            "2025-07-02T10:00:00+01:00",
            {"A": "5.00"},
            points=500,
            points_value="5.00",
        ),
    ]

    state, decisions = run(engine, events)

    assert [(r["status"], r.get("reason")) for r in redemptions(decisions)] == [
        ("applied", None),
        ("refused", "INSUFFICIENT_POINTS"),
    ]
    assert state.points_balance == 0


def test_b17_expiry_writes_off_only_the_unspent_rest_of_the_oldest_lot(
    engine: Engine,
) -> None:
    events = [
        sale("E1", "2024-01-10T10:00:00+00:00", "300.00"),
        sale("E2", "2024-06-01T10:00:00+00:00", "200.00"),
        basket(
            "E3",
            "2024-07-01T10:00:00+00:00",
            {"A": "2.50"},
            points=250,
            points_value="2.50",
        ),
    ]

    state, decisions = run(engine, events, until="2025-02-01T00:00:00+00:00")

    expiries = [d for d in decisions if d.subject == "expire"]
    assert state.points_balance == 200
    assert [(d.event_id, d.detail and d.detail["delta"]) for d in expiries] == [
        ("E1", -50)
    ]
    assert expiries[0].at_us == instant_us(at("2025-01-10T10:00:00+00:00"))


@pytest.mark.parametrize(
    ("spent_at", "status"),
    [
        ("2025-03-30T10:59:59+00:00", "applied"),
        ("2025-03-30T11:00:00+00:00", "applied"),
        ("2025-03-30T11:00:01+00:00", "refused"),
    ],
)
def test_a_lot_expires_at_its_wall_clock_time_in_the_stores_zone(
    engine: Engine, spent_at: str, status: str
) -> None:
    # Earned at 12:00 GMT; twelve months later London is on BST, so the lot
    # expires at 12:00 BST = 11:00Z. It can still be spent at that instant.
    events = [
        sale("E1", "2024-03-30T12:00:00+00:00", "100.00"),
        basket("E2", spent_at, {"A": "1.00"}, points=100, points_value="1.00"),
    ]

    _, decisions = run(engine, events)

    assert [r["status"] for r in redemptions(decisions)] == [status]


def test_partial_refund_without_lines_reverses_points_pro_rata(engine: Engine) -> None:
    events = [
        sale("E1", "2025-04-01T12:00:00+01:00", "1200.00"),
        refund("E2", "2025-04-03T12:00:00+01:00", "300.00", of="E1"),
    ]

    state, decisions = run(engine, events)

    assert ledger(decisions) == [("earn", "E1", 1200), ("reverse", "E2", -300)]
    assert state.points_balance == 900


def test_refund_of_a_sale_that_used_a_reward_code_reverses_what_was_paid(
    engine: Engine,
) -> None:
    events = [
        basket(
            "E1",
            "2025-03-01T10:00:00+00:00",
            {"A": "30.00"},
            code="ABCD-EFGH-JKMN",
            code_value="5.00",
        ),
        refund("E2", "2025-03-05T10:00:00+00:00", "30.00", of="E1"),
    ]

    state, decisions = run(engine, events)

    assert ledger(decisions) == [("earn", "E1", 25), ("reverse", "E2", -25)]
    assert [r["code"] for r in redemptions(decisions)] == ["ABCD-EFGH-JKMN"]
    assert state.points_balance == 0


def test_refund_of_points_already_spent_stops_at_zero_and_records_the_shortfall(
    engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-03-01T10:00:00+00:00", "100.00"),
        basket(
            "E2",
            "2025-03-02T10:00:00+00:00",
            {"A": "10.00"},
            points=80,
            points_value="0.80",
        ),
        refund("E3", "2025-03-03T10:00:00+00:00", "100.00", of="E1"),
    ]

    state, decisions = run(engine, events)

    shortfalls = [d.detail for d in decisions if d.kind is Kind.POINTS_SHORTFALL]
    assert ledger(decisions)[-1] == ("reverse", "E3", -29)
    assert shortfalls == [{"wanted": 100, "taken": 29, "shortfall": 71}]
    assert state.points_balance == 0


@pytest.mark.parametrize(
    ("returned", "reversed_points"),
    [
        ({"A": "50.00"}, 50 + 200),
        ({"B": "30.00"}, 30),
        ({"A": "50.00", "B": "30.00"}, 80 + 200),
    ],
)
def test_a_return_naming_lines_takes_back_their_points_and_tagged_points(
    engine: Engine, returned: dict[str, str], reversed_points: int
) -> None:
    events = [
        basket(
            "E1",
            "2025-03-01T10:00:00+00:00",
            {"A": "50.00", "B": "30.00"},
            tags={"A": "preventative-screening"},
        ),
        line_refund("E2", "2025-03-05T10:00:00+00:00", "E1", returned),
    ]

    state, decisions = run(engine, events)

    assert ledger(decisions)[0] == ("earn", "E1", 80 + 200)
    assert ledger(decisions)[1] == ("reverse", "E2", -reversed_points)
    assert state.points_balance == 280 - reversed_points


def tagged_basket() -> Event:
    return basket(
        "E1",
        "2025-03-01T10:00:00+00:00",
        {"A": "50.00", "B": "30.00"},
        tags={"A": "preventative-screening"},
    )


@pytest.mark.parametrize(
    ("second", "lines", "balance"),
    [
        pytest.param(
            {"A": "50.00"},
            {"A": "already refunded"},
            280 - 250,
            id="the same line twice",
        ),
        pytest.param(
            {"Z": "50.00"},
            {"Z": "not a line of the sale"},
            280 - 250,
            id="a line the sale does not have",
        ),
    ],
)
def test_a_line_gives_back_its_money_and_points_once(
    engine: Engine, second: dict[str, str], lines: dict[str, str], balance: int
) -> None:
    events = [
        tagged_basket(),
        line_refund("E2", "2025-03-05T10:00:00+00:00", "E1", {"A": "50.00"}),
        line_refund("E3", "2025-03-06T10:00:00+00:00", "E1", second),
    ]

    state, decisions = run(engine, events)

    assert [row for row in ledger(decisions) if row[1] == "E3"] == []
    assert state.points_balance == balance
    assert state.lifetime_net_spend == 30
    assert state.purchases[0].refunded == 50
    (mismatch,) = [d for d in decisions if d.kind is Kind.RETURN_MISMATCH]
    assert (mismatch.event_id, mismatch.subject) == ("E3", "lines_do_not_fit")
    assert mismatch.detail == {
        "sale": "E1",
        "refund": "50.00",
        "left_of_sale": "30.00",
        "lines": lines,
        "taken_back": "0.00",
    }


def test_a_line_refunded_for_more_than_it_cost_gives_back_only_its_cost(
    engine: Engine,
) -> None:
    events = [
        tagged_basket(),
        line_refund("E2", "2025-03-05T10:00:00+00:00", "E1", {"B": "45.00"}),
    ]

    state, decisions = run(engine, events)

    assert ledger(decisions)[1] == ("reverse", "E2", -30)
    assert state.lifetime_net_spend == 50
    (mismatch,) = [d for d in decisions if d.kind is Kind.RETURN_MISMATCH]
    assert mismatch.detail is not None
    assert mismatch.detail["lines"] == {"B": "more than the 30.00 left of it"}
    assert mismatch.detail["taken_back"] == "30.00"


def test_two_returns_of_different_lines_take_back_the_whole_sale(
    engine: Engine,
) -> None:
    events = [
        tagged_basket(),
        line_refund("E2", "2025-03-05T10:00:00+00:00", "E1", {"A": "50.00"}),
        line_refund("E3", "2025-03-06T10:00:00+00:00", "E1", {"B": "30.00"}),
    ]

    state, decisions = run(engine, events)

    assert state.points_balance == 0
    assert state.purchases[0].counting is False
    assert [d for d in decisions if d.kind is Kind.RETURN_MISMATCH] == []
    again = CustomerState.from_json(state.to_json())
    assert again.purchases[0].lines_left == {"A": 0, "B": 0}


def test_a_partial_return_that_names_no_line_keeps_the_tagged_points(
    engine: Engine,
) -> None:
    events = [
        basket(
            "E1",
            "2025-03-01T10:00:00+00:00",
            {"A": "50.00", "B": "30.00"},
            tags={"A": "preventative-screening"},
        ),
        refund("E2", "2025-03-05T10:00:00+00:00", "40.00", of="E1"),
    ]

    state, _ = run(engine, events)

    assert state.points_balance == 280 - 40


def test_b19_each_tiny_sale_earns_its_point_with_no_currency_rounding(
    engine: Engine,
) -> None:
    events = [
        sale(f"E{n:02d}", f"2025-05-02T10:0{n}:00+01:00", "1.10") for n in range(10)
    ]

    state, decisions = run(engine, events)

    assert [delta for _, _, delta in ledger(decisions)] == [1] * 10
    assert state.points_balance == 10


def test_adjustments_add_and_take_away_but_never_below_zero(engine: Engine) -> None:
    events = [
        sale("E1", "2025-03-01T10:00:00+00:00", "40.00"),
        adjustment("A1", "2025-03-02T10:00:00+00:00", 50, "goodwill, late parcel"),
        adjustment("A2", "2025-03-03T10:00:00+00:00", -120, "correction"),
    ]

    state, decisions = run(engine, events)

    assert ledger(decisions) == [
        ("earn", "E1", 40),
        ("adjust", "A1", 50),
        ("adjust", "A2", -90),
    ]
    assert state.points_balance == 0


def test_lots_survive_a_snapshot_and_an_old_snapshot_becomes_one_lot(
    engine: Engine,
) -> None:
    state, _ = run(engine, [sale("E1", "2025-03-01T10:00:00+00:00", "40.00")])
    old = state.to_json()
    del old["lots"]

    again = CustomerState.from_json(state.to_json())
    legacy = CustomerState.from_json(old)

    assert again.lots == state.lots
    assert [lot.remaining for lot in legacy.lots] == [40]
    assert legacy.lots[0].expires_us is None


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["sale", "refund", "spend", "adjust"]),
        st.integers(min_value=1, max_value=400),
        st.integers(min_value=1, max_value=40),
    ),
    max_size=25,
)


def _history(steps: list[tuple[str, int, int]]) -> list[Event]:
    events: list[Event] = []
    sales: list[str] = []
    moment = at("2024-01-01T10:00:00+00:00")
    for n, (kind, amount, gap_days) in enumerate(steps):
        moment += timedelta(days=gap_days)
        iso, event_id = moment.isoformat(), f"E{n:03d}"
        if kind == "sale" or not sales:
            events.append(sale(event_id, iso, f"{amount}.50"))
            sales.append(event_id)
        elif kind == "refund":
            events.append(refund(event_id, iso, f"{amount}.00", of=sales[-1]))
        elif kind == "spend":
            events.append(basket(event_id, iso, {"A": "9.00"}, points=amount))
        else:
            events.append(adjustment(event_id, iso, amount - 200, "test"))
    return events


@settings(max_examples=60, deadline=None)
@given(_STEPS)
def test_the_balance_is_the_sum_of_the_ledger_and_of_the_lots_and_never_negative(
    programme: Programme, steps: list[tuple[str, int, int]]
) -> None:
    engine = Engine(programme)
    state = engine.new_state("C1")
    total = 0

    for event in _history(steps):
        for decision in engine.apply(state, event):
            if decision.kind is Kind.POINTS and decision.detail:
                total += decision.detail["delta"]
        assert state.points_balance == total
        assert state.points_balance == sum(lot.remaining for lot in state.lots)
        assert state.points_balance >= 0
    for decision in engine.fire_timers(state, before_us=2**62):
        if decision.kind is Kind.POINTS and decision.detail:
            total += decision.detail["delta"]

    assert total == state.points_balance == 0
    assert state.lots == []
