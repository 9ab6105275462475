"""Tiers from rolling spend with requalification; an upgrade fires once."""

from __future__ import annotations

import pytest

from tillsight.core.decisions import Decision, Kind
from tillsight.core.engine import Engine
from tillsight.core.programme import Programme, Tiers

from factories import refund, sale

ROLLING = {
    "basis": "rolling_net_spend",
    "window_days": 365,
    "requalify_after_days": 365,
    "levels": [
        {
            "id": "silver",
            "min_spend": "500",
            "on_enter": [{"action": "sms", "name": "silver"}],
        },
        {
            "id": "gold",
            "min_spend": "1000",
            "on_enter": [{"action": "sms", "name": "gold"}],
        },
    ],
}


@pytest.fixture(scope="module")
def rolling(programme: Programme) -> Engine:
    tiers = Tiers.model_validate(ROLLING)
    return Engine(programme.model_copy(update={"tiers": tiers}))


def entered(decisions: list[Decision]) -> list[tuple[str, str | None]]:
    return [(d.subject, d.event_id) for d in decisions if d.kind is Kind.TIER_ENTERED]


def sms(decisions: list[Decision]) -> list[str]:
    return [d.subject for d in decisions if d.subject.startswith("sms:")]


def test_an_upgrade_fires_its_actions_once(rolling: Engine) -> None:
    events = [
        sale("E1", "2024-01-01T10:00:00+00:00", "600.00"),
        sale("E2", "2024-01-11T10:00:00+00:00", "600.00"),
        sale("E3", "2024-01-21T10:00:00+00:00", "100.00"),
        sale("E4", "2024-02-01T10:00:00+00:00", "900.00"),
    ]

    state, decisions = rolling.replay("C1", events)

    assert entered(decisions) == [("silver", "E1"), ("gold", "E2")]
    assert sms(decisions) == ["sms:silver", "sms:gold"]
    assert state.tier == "gold"


def test_rolling_spend_counts_only_the_window(rolling: Engine) -> None:
    events = [
        sale("E1", "2024-01-01T10:00:00+00:00", "400.00"),
        sale("E2", "2025-01-02T10:00:00+00:00", "400.00"),
    ]

    state, decisions = rolling.replay("C1", events)

    assert entered(decisions) == []
    assert state.tier is None


def test_a_tier_is_earned_again_after_the_requalification_period(
    rolling: Engine,
) -> None:
    events = [
        sale("E1", "2024-01-01T10:00:00+00:00", "1200.00"),
        sale("E2", "2025-02-01T10:00:00+00:00", "100.00"),
        sale("E3", "2025-02-10T10:00:00+00:00", "1000.00"),
    ]

    state_after_e2, _ = rolling.replay("C1", events[:2])
    state, decisions = rolling.replay("C1", events)

    assert state_after_e2.tier is None
    assert entered(decisions) == [("gold", "E1"), ("gold", "E3")]
    assert state.tier == "gold"


def test_within_the_requalification_period_a_tier_is_kept_after_a_return(
    rolling: Engine,
) -> None:
    events = [
        sale("E1", "2024-01-01T10:00:00+00:00", "1200.00"),
        refund("E2", "2024-02-01T10:00:00+00:00", "1000.00", of="E1"),
        sale("E3", "2024-03-01T10:00:00+00:00", "900.00"),
    ]

    state, decisions = rolling.replay("C1", events)

    assert entered(decisions) == [("gold", "E1")]
    assert state.tier == "gold"
