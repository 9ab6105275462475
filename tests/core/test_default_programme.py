"""Every row of the default programme (DESIGN.md), through the pure engine."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from tillsight.core.decisions import Decision, Kind
from tillsight.core.engine import Engine
from tillsight.core.events import Event
from tillsight.core.state import CustomerState
from tillsight.core.timeconv import instant_us

from factories import at, refund, sale


def run(
    engine: Engine, events: list[Event], until: str | None = None
) -> tuple[CustomerState, list[Decision]]:
    until_us = instant_us(datetime.fromisoformat(until)) + 1 if until else None
    return engine.replay("C1", events, until_us=until_us)


def fired(decisions: list[Decision], rule: str) -> list[str | None]:
    return [
        d.event_id for d in decisions if d.kind is Kind.RULE_FIRED and d.rule_id == rule
    ]


def actions(decisions: list[Decision]) -> list[str]:
    return [d.subject for d in decisions if d.kind is Kind.ACTION]


def test_first_purchase_enters_new_and_starts_welcome(default_engine: Engine) -> None:
    state, decisions = run(
        default_engine, [sale("E1", "2025-01-01T10:00:00+00:00", "20")]
    )

    assert state.stage == "new"
    assert fired(decisions, "first_purchase") == ["E1"]
    assert "journey:welcome" in actions(decisions)


def test_first_purchase_fires_once_ever(default_engine: Engine) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20"),
        refund("R1", "2025-01-02T10:00:00+00:00", "20", of="E1"),
        sale("E2", "2025-01-03T10:00:00+00:00", "20"),
    ]

    _, decisions = run(default_engine, events)

    assert fired(decisions, "first_purchase") == ["E1"]


def test_third_purchase_within_90_days_enters_active(default_engine: Engine) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20"),
        sale("E2", "2025-02-01T10:00:00+00:00", "20"),
        sale("E3", "2025-03-01T10:00:00+00:00", "20"),
    ]

    state, decisions = run(default_engine, events)

    assert state.stage == "active"
    assert fired(decisions, "active_engaged") == ["E3"]
    assert "reward:surprise_and_delight" in actions(decisions)


def test_purchase_exactly_90_days_back_is_inside_the_window(
    default_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20"),
        sale("E2", "2025-02-01T10:00:00+00:00", "20"),
        sale("E3", "2025-04-01T10:00:00+01:00", "20"),  # 10:00 wall clock
    ]

    _, decisions = run(default_engine, events)

    assert fired(decisions, "active_engaged") == ["E3"]


def test_purchase_a_minute_past_90_days_is_outside_the_window(
    default_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20"),
        sale("E2", "2025-02-01T10:00:00+00:00", "20"),
        sale("E3", "2025-04-01T10:01:00+01:00", "20"),
    ]

    _, decisions = run(default_engine, events)

    assert fired(decisions, "active_engaged") == []


def test_window_counts_calendar_days_across_a_dst_change(
    default_engine: Engine,
) -> None:
    # 10:00 wall clock in January (GMT) and 10:00 wall clock 90 days later
    # (BST) are 89 days 23 hours apart in absolute time, and still 90 days.
    events = [
        sale("E1", "2025-01-05T10:00:00+00:00", "20"),
        sale("E2", "2025-03-01T10:00:00+00:00", "20"),
        sale("E3", "2025-04-05T10:00:00+01:00", "20"),
    ]

    _, decisions = run(default_engine, events)

    assert fired(decisions, "active_engaged") == ["E3"]


def test_active_rule_is_edge_triggered(default_engine: Engine) -> None:
    events = [
        sale(f"E{n}", f"2025-01-{n:02d}T10:00:00+00:00", "20") for n in range(1, 7)
    ]

    _, decisions = run(default_engine, events)

    assert fired(decisions, "active_engaged") == ["E3"]


def test_active_fires_again_after_the_count_drops_below_three(
    default_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20"),
        sale("E2", "2025-01-02T10:00:00+00:00", "20"),
        sale("E3", "2025-01-03T10:00:00+00:00", "20"),
        sale("E4", "2025-06-01T10:00:00+01:00", "20"),
        sale("E5", "2025-06-02T10:00:00+01:00", "20"),
        sale("E6", "2025-06-03T10:00:00+01:00", "20"),
    ]

    _, decisions = run(default_engine, events)

    assert fired(decisions, "active_engaged") == ["E3", "E6"]


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("1000.00", []), ("1000.01", ["E1"]), ("2400.00", ["E1"])],
)
def test_high_value_means_strictly_over_1000(
    default_engine: Engine, amount: str, expected: list[str]
) -> None:
    state, decisions = run(
        default_engine, [sale("E1", "2025-01-01T10:00:00+00:00", amount)]
    )

    assert fired(decisions, "high_value_purchase") == expected
    assert ("high_value" in state.segments) is bool(expected)


def test_high_value_fires_each_time_but_treatment_happens_once(
    default_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "1500"),
        sale("E2", "2025-01-02T10:00:00+00:00", "1500"),
    ]

    _, decisions = run(default_engine, events)

    assert fired(decisions, "high_value_purchase") == ["E1", "E2"]
    assert actions(decisions).count("offer:vip_exclusive_treatment") == 1


def test_return_is_a_service_interaction_and_leaves_the_stage(
    default_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20"),
        refund("R1", "2025-01-05T10:00:00+00:00", "5"),
        refund("R2", "2025-01-06T10:00:00+00:00", "5"),
    ]

    state, decisions = run(default_engine, events)

    assert state.stage == "new"
    assert fired(decisions, "return_processed") == ["R1", "R2"]
    moments = [d.subject for d in decisions if d.kind is Kind.MOMENT]
    assert moments == ["service_interaction", "service_interaction"]
    assert actions(decisions).count("survey:satisfaction") == 2


def test_no_purchase_in_180_days_lapses_at_the_due_time(default_engine: Engine) -> None:
    state, decisions = run(
        default_engine,
        [sale("E1", "2025-01-01T10:00:00+00:00", "20")],
        until="2025-12-31T00:00:00+00:00",
    )

    lapses = [
        d for d in decisions if d.rule_id == "lapsed" and d.kind is Kind.RULE_FIRED
    ]
    assert state.stage == "lapsed"
    assert [d.at_us for d in lapses] == [instant_us(at("2025-06-30T10:00:00+01:00"))]
    assert lapses[0].event_id == "E1"
    assert {"journey:win_back", "reward:win_back_incentive"} <= set(actions(decisions))


def test_purchase_at_exactly_the_due_time_rearms_before_the_timer_fires(
    default_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20"),
        sale("E2", "2025-06-30T10:00:00+01:00", "20"),
    ]

    state, decisions = run(default_engine, events, until="2025-07-01T00:00:00+00:00")

    assert fired(decisions, "lapsed") == []
    assert state.timers["lapsed"].cause_event_id == "E2"


def test_purchase_a_second_after_the_due_time_is_a_won_back_customer(
    default_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20"),
        sale("E2", "2025-06-30T10:00:01+01:00", "20"),
    ]

    state, decisions = run(default_engine, events)

    assert fired(decisions, "lapsed") == ["E1"]
    assert fired(decisions, "won_back") == ["E2"]
    assert state.stage == "returning"
    assert "end_journey:win_back" in actions(decisions)


def test_a_return_does_not_reset_the_inactivity_clock(default_engine: Engine) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20"),
        refund("R1", "2025-05-01T10:00:00+01:00", "5"),
    ]

    _, decisions = run(default_engine, events, until="2025-07-01T00:00:00+00:00")

    assert fired(decisions, "lapsed") == ["E1"]


def test_vip_tier_is_reached_when_lifetime_net_spend_reaches_2500(
    default_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "1000"),
        refund("R1", "2025-01-02T10:00:00+00:00", "100"),
        sale("E2", "2025-01-03T10:00:00+00:00", "1500"),
        sale("E3", "2025-01-04T10:00:00+00:00", "100"),
        sale("E4", "2025-01-05T10:00:00+00:00", "900"),
    ]

    state, decisions = run(default_engine, events)

    assert fired(decisions, "tier:vip") == ["E3"]
    assert state.tier == "vip"
    assert actions(decisions).count("sms:vip_congratulations") == 1


def test_vip_tier_is_entered_once_even_after_dropping_below(
    default_engine: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "2500"),
        refund("R1", "2025-01-02T10:00:00+00:00", "500", of="E1"),
        sale("E2", "2025-01-03T10:00:00+00:00", "600"),
    ]

    state, decisions = run(default_engine, events)

    assert fired(decisions, "tier:vip") == ["E1"]
    assert state.tier == "vip"


def test_screening_line_awards_wellness_points(default_engine: Engine) -> None:
    tagged = frozenset({"preventative-screening"})
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "40", tags=tagged),
        sale("E2", "2025-01-02T10:00:00+00:00", "40"),
    ]

    state, decisions = run(default_engine, events)

    assert fired(decisions, "wellness_screening") == ["E1"]
    assert "email:wellness_points" in actions(decisions)
    assert state.points_balance == 40 + 200 + 40


@pytest.mark.parametrize(
    ("refunded", "balance"),
    [("40", 40), ("10", 40 + 200 + 30)],
    ids=["full refund takes the award back", "partial refund keeps it"],
)
def test_wellness_points_follow_their_sale_s_refund(
    default_engine: Engine, refunded: str, balance: int
) -> None:
    tagged = frozenset({"preventative-screening"})
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "40", tags=tagged),
        sale("E2", "2025-01-02T10:00:00+00:00", "40"),
        refund("R1", "2025-01-03T10:00:00+00:00", refunded, of="E1"),
    ]

    state, _ = run(default_engine, events)

    assert state.points_balance == balance
    again = CustomerState.from_json(state.to_json())
    assert again.purchases[0].points_awarded == state.purchases[0].points_awarded


def test_equal_timestamps_are_ordered_by_event_id(default_engine: Engine) -> None:
    same = "2025-01-01T10:00:00+00:00"
    events = [sale("A", same, "20"), sale("B", same, "20"), sale("C", same, "20")]

    _, decisions = run(default_engine, events)

    assert fired(decisions, "first_purchase") == ["A"]
    assert fired(decisions, "active_engaged") == ["C"]


def test_a_second_lapse_is_won_back_too(default_engine: Engine) -> None:
    events = [
        sale("E1", "2011-01-03T12:00:00+00:00", "10"),
        sale("E2", "2011-07-22T12:00:00+01:00", "10"),
        sale("E3", "2012-02-08T12:00:00+00:00", "10"),
        sale("E4", "2012-02-18T12:00:00+00:00", "10"),
    ]

    state, decisions = run(default_engine, events)

    assert fired(decisions, "lapsed") == ["E1", "E2"]
    assert fired(decisions, "won_back") == ["E2", "E3"]
    assert state.stage == "returning"


def test_a_lapsed_customer_refunding_an_older_sale_is_not_lapsed_again(
    default_engine: Engine,
) -> None:
    # E2's lapse fired in June; the refund takes the clock back to E1, whose
    # 180 days are long gone. "No purchase for 180 days" held before and after.
    events = [
        sale("E1", "2024-01-01T10:00:00+00:00", "20.00"),
        sale("E2", "2024-01-02T10:00:00+00:00", "20.00"),
        refund("R2", "2024-08-01T10:00:00+00:00", "20.00", of="E2"),
    ]

    state, decisions = run(default_engine, events, until="2025-12-31T00:00:00+00:00")

    assert fired(decisions, "lapsed") == ["E2"]
    assert actions(decisions).count("journey:win_back") == 1
    assert actions(decisions).count("reward:win_back_incentive") == 1
    assert (state.stage, state.timers) == ("lapsed", {})


def test_a_won_back_customer_whose_sale_is_refunded_lapses_again_at_the_refund(
    default_engine: Engine,
) -> None:
    # E2 won the customer back; refunded in full, it no longer counts, and no
    # purchase that counts is left within 180 days: the condition becomes
    # true at R2, so the lapse fires there, named after it.
    events = [
        sale("E1", "2024-01-01T10:00:00+00:00", "20.00"),
        sale("E2", "2024-09-01T10:00:00+01:00", "20.00"),
        refund("R2", "2024-09-05T10:00:00+01:00", "20.00", of="E2"),
    ]

    state, decisions = run(default_engine, events, until="2025-12-31T00:00:00+00:00")

    lapses = [
        (d.event_id, d.at_us)
        for d in decisions
        if d.kind is Kind.RULE_FIRED and d.rule_id == "lapsed"
    ]
    assert lapses == [
        ("E1", instant_us(at("2024-06-29T10:00:00+01:00"))),
        ("R2", instant_us(at("2024-09-05T10:00:00+01:00"))),
    ]
    assert fired(decisions, "won_back") == ["E2"]
    assert (state.stage, state.timers) == ("lapsed", {})


def test_window_count_sees_purchases_in_the_repeated_autumn_hour(
    default_engine: Engine,
) -> None:
    # 01:30 BST, then 01:10 GMT: the second reads earlier on the wall clock
    # although it happened later. Both count at E3. E4's 90 days open at
    # 01:20 on 30 October by the wall clock, so E1 is inside and E2 is not:
    # the count holds at three through E4 and E5, and the rule, already
    # true, does not fire again.
    events = [
        sale("E1", "2011-10-30T01:30:00+01:00", "10"),
        sale("E2", "2011-10-30T01:10:00+00:00", "10"),
        sale("E3", "2011-12-01T12:00:00+00:00", "10"),
        sale("E4", "2012-01-28T01:20:00+00:00", "10"),
        sale("E5", "2012-01-29T12:00:00+00:00", "10"),
    ]

    _, decisions = run(default_engine, events)
    _, without_e1 = run(default_engine, [e for e in events if e.event_id != "E1"])
    _, without_e2 = run(default_engine, [e for e in events if e.event_id != "E2"])

    assert fired(decisions, "active_engaged") == ["E3"]
    assert fired(without_e1, "active_engaged") == ["E5"]
    assert fired(without_e2, "active_engaged") == ["E4"]


def mismatches(decisions: list[Decision]) -> list[tuple[str | None, str, object]]:
    return [
        (d.event_id, d.subject, (d.detail or {}).get("taken_back"))
        for d in decisions
        if d.kind is Kind.RETURN_MISMATCH
    ]


@pytest.mark.parametrize(
    ("returns", "net_spend", "expected"),
    [
        pytest.param(
            [refund("R1", "2025-01-02T10:00:00+00:00", "100", of="E1")],
            "0",
            [("R1", "more_than_the_sale", "40")],
            id="a refund larger than its sale",
        ),
        pytest.param(
            [
                refund("R1", "2025-01-02T10:00:00+00:00", "40", of="E1"),
                refund("R2", "2025-01-03T10:00:00+00:00", "40", of="E1"),
            ],
            "0",
            [("R2", "more_than_the_sale", "0")],
            id="a second full refund of one sale",
        ),
        pytest.param(
            [
                refund("R1", "2025-01-02T10:00:00+00:00", "30", of="E1"),
                refund("R2", "2025-01-03T10:00:00+00:00", "30", of="E1"),
            ],
            "0",
            [("R2", "more_than_the_sale", "10")],
            id="partial refunds that add up to more than the sale",
        ),
        pytest.param(
            [refund("R1", "2025-01-02T10:00:00+00:00", "15", of="E9")],
            "25",
            [("R1", "unknown_sale", "15")],
            id="a refund of a sale the customer never made",
        ),
        pytest.param(
            [refund("R1", "2024-12-31T10:00:00+00:00", "15", of="E1")],
            "25",
            [("R1", "unknown_sale", "15")],
            id="a refund dated before its sale",
        ),
        pytest.param(
            [refund("R1", "2025-01-02T10:00:00+00:00", "40", of="E1")],
            "0",
            [],
            id="a full refund is no mismatch",
        ),
    ],
)
def test_a_return_that_does_not_fit_its_sale_is_noted_and_bounded(
    default_engine: Engine,
    returns: list[Event],
    net_spend: str,
    expected: list[tuple[str, str, str]],
) -> None:
    events = [sale("E1", "2025-01-01T10:00:00+00:00", "40"), *returns]
    events.sort(key=lambda event: (event.occurred_at, event.event_id))

    state, decisions = run(default_engine, events)

    assert state.lifetime_net_spend == Decimal(net_spend)
    assert mismatches(decisions) == expected
    assert fired(decisions, "return_processed") == [r.event_id for r in returns]
