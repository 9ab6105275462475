"""Failures other loyalty systems shipped (shared CASES.md), on the cases programme.

B01, B03, B04, B05 and B19 are about counting, windows, refunds and money; the
duplicate cases (B07, B08) are in tests/store, where duplicates are caught.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tillsight.core.decisions import Decision, Kind
from tillsight.core.engine import Engine
from tillsight.core.events import Event
from tillsight.core.state import CustomerState
from tillsight.core.timeconv import instant_us

from factories import at, refund, sale


def replay(
    engine: Engine, events: list[Event], until: str | None = None
) -> tuple[CustomerState, list[Decision]]:
    until_us = instant_us(datetime.fromisoformat(until)) + 1 if until else None
    return engine.replay("C1", events, until_us=until_us)


def points(decisions: list[Decision]) -> list[int]:
    return [d.detail["delta"] for d in decisions if d.kind is Kind.POINTS and d.detail]


def journeys(decisions: list[Decision]) -> list[str]:
    return [d.subject for d in decisions if d.kind is Kind.ACTION]


def test_b01_full_refund_reverses_points_and_the_stage(cases_engine: Engine) -> None:
    events = [
        sale("E1", "2025-03-01T10:00:00+00:00", "120.00"),
        refund("E2", "2025-03-02T10:00:00+00:00", "120.00", of="E1"),
    ]

    state, decisions = replay(cases_engine, events)

    assert points(decisions) == [120, -120]
    assert state.points_balance == 0
    assert state.lifetime_net_spend == Decimal("0.00")
    assert state.stage is None
    assert journeys(decisions) == ["journey:welcome"]


def test_b03_partial_refund_reverses_its_share_and_clears_big_spender(
    cases_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-04-01T12:00:00+01:00", "1200.00"),
        refund("E2", "2025-04-03T12:00:00+01:00", "300.00", of="E1"),
    ]

    state, decisions = replay(cases_engine, events)

    assert state.points_balance == 900
    assert "big_spender" not in state.segments
    assert [d.subject for d in decisions if d.kind is Kind.SEGMENT_LEFT] == [
        "big_spender"
    ]
    assert journeys(decisions).count("journey:big_spender") == 1


def test_b03_a_sale_of_exactly_1000_is_not_a_big_spender(cases_engine: Engine) -> None:
    state, _ = replay(
        cases_engine, [sale("E1", "2025-04-01T12:00:00+01:00", "1000.00")]
    )

    assert "big_spender" not in state.segments


def test_b04_a_refunded_order_stops_counting_without_counting_negative(
    cases_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-05T10:00:00+00:00", "20.00"),
        sale("E2", "2025-01-20T10:00:00+00:00", "20.00"),
        refund("E3", "2025-01-21T10:00:00+00:00", "20.00", of="E2"),
        sale("E4", "2025-02-01T10:00:00+00:00", "20.00"),
        sale("E5", "2025-02-10T10:00:00+00:00", "20.00"),
    ]

    state_at_e4, _ = replay(cases_engine, events[:4])
    _, decisions = replay(cases_engine, events)

    assert state_at_e4.stage == "repeat"
    loyal = [d for d in decisions if d.kind is Kind.RULE_FIRED and d.rule_id == "loyal"]
    assert [d.event_id for d in loyal] == ["E5"]
    assert journeys(decisions).count("journey:loyal") == 1


def test_b05_refund_takes_the_inactivity_clock_back_to_the_last_kept_purchase(
    cases_engine: Engine,
) -> None:
    events = [
        sale("E1", "2024-06-01T10:00:00+00:00", "50.00"),
        sale("E2", "2024-10-01T10:00:00+00:00", "40.00"),
        refund("E3", "2024-10-05T10:00:00+00:00", "40.00", of="E2"),
    ]

    state, decisions = replay(cases_engine, events, until="2025-04-05T00:00:00+00:00")

    lapses = [
        d for d in decisions if d.kind is Kind.RULE_FIRED and d.rule_id == "lapsed"
    ]
    # 180 calendar days of London wall clock from 11:00 BST is 11:00 GMT; the
    # case counts 180 x 24 hours (10:00Z). DESIGN.md's wall-clock rule wins: a
    # DST change does not move the boundary. The bug signatures (a lapse in
    # 2025, from O2 or from the refund) are what the case guards against.
    assert [d.at_us for d in lapses] == [instant_us(at("2024-11-28T11:00:00+00:00"))]
    assert journeys(decisions).count("journey:win_back") == 1
    assert state.stage == "lapsed"


def test_b19_line_totals_add_up_exactly_and_1000_is_not_over_1000(
    cases_engine: Engine,
) -> None:
    event = sale(
        "E1", "2025-05-01T10:00:00+01:00", "", lines=("999.70", "0.20", "0.10")
    )

    state, _ = replay(cases_engine, [event])

    assert event.total == Decimal("1000.00")
    assert "big_spender" not in state.segments


def test_b19_cumulative_spend_reaches_vip_exactly_at_the_twelfth_sale(
    cases_engine: Engine,
) -> None:
    events = [sale("E01", "2025-05-01T10:00:00+01:00", "1999.00", customer="C2")]
    events += [
        sale(f"E{n + 2:02d}", f"2025-05-02T10:0{n}:00+01:00", "0.10", customer="C2")
        for n in range(10)
    ]

    state, decisions = cases_engine.replay("C2", events)

    vip = [d.event_id for d in decisions if d.kind is Kind.TIER_ENTERED]
    assert state.lifetime_net_spend == Decimal("2000.00")
    assert vip == ["E11"]
