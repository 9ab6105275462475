"""Any arrival order ends in the same state and firings as time order."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tillsight.core.decisions import Decision, Kind
from tillsight.core.engine import Engine
from tillsight.core.events import Event, EventType, Identity, Line, Redemption
from tillsight.core.runner import Runner
from tillsight.core.timeconv import instant_us
from tillsight.programme_file import load_programme

ENGINE = Engine(load_programme())
START = datetime(2024, 1, 1, tzinfo=UTC)
UNTIL_US = instant_us(START + timedelta(days=800))


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Event]]:
    """Purchases and returns (linked or not, full or partial) for 3 customers."""
    count = draw(st.integers(min_value=1, max_value=14))
    events: list[tuple[str, Event]] = []
    for n in range(count):
        customer = draw(st.sampled_from(["A", "B", "C"]))
        # Few distinct days, so equal timestamps and 90/180-day edges happen.
        day = draw(st.integers(min_value=0, max_value=400)) // 30 * 30
        when = START + timedelta(days=day, hours=draw(st.integers(0, 2)))
        earlier = [
            e for c, e in events if c == customer and e.type is EventType.PURCHASE
        ]
        is_return = bool(earlier) and draw(st.booleans()) and draw(st.booleans())
        amount = Decimal(draw(st.sampled_from(["5.00", "40.00", "999.99", "1200.00"])))
        linked = is_return and draw(st.booleans())
        link = draw(st.sampled_from(earlier)) if linked else None
        if link is not None and draw(st.booleans()):
            amount = link.total
        event = _event(f"E{n:02d}", when, amount, is_return, link, customer)
        events.append((customer, event))
    return events


def _event(
    event_id: str,
    when: datetime,
    amount: Decimal,
    is_return: bool,
    link: Event | None,
    customer: str,
) -> Event:
    return Event(
        event_id=event_id,
        type=EventType.RETURN if is_return else EventType.PURCHASE,
        occurred_at=when,
        total=amount,
        currency="GBP",
        lines=(Line("S", Decimal(1), amount, amount),),
        identity=Identity(customer_id=customer),
        refunds_event_id=link.event_id if link else None,
    )


def _run(arrivals: list[tuple[str, Event]]) -> tuple[dict[str, object], set[tuple]]:
    stored: dict[str, list[Event]] = defaultdict(list)
    runner = Runner(ENGINE, lambda key: stored[key])
    held: dict[str, list[Decision]] = defaultdict(list)
    for customer, event in arrivals:
        stored[customer].append(event)
        outcome = runner.submit(customer, event)
        for decision in outcome.decisions:
            held[decision.customer_key].append(decision)
        for key, decisions in outcome.rebuilt.items():
            held[key] = list(decisions)
    for decision in runner.advance(UNTIL_US):
        held[decision.customer_key].append(decision)
    states = {key: state.to_json() for key, state in runner.states.items()}
    return states, {d.identity for decisions in held.values() for d in decisions}


@settings(max_examples=300, deadline=None)
@given(history=histories(), data=st.data())
def test_any_arrival_order_gives_the_time_order_result(
    history: list[tuple[str, Event]], data: st.DataObject
) -> None:
    in_order = sorted(history, key=lambda item: (item[1].occurred_at, item[1].event_id))
    shuffled = data.draw(st.permutations(history))

    expected_states, expected_decisions = _run(in_order)
    states, decisions = _run(shuffled)

    assert states == expected_states
    assert decisions == expected_decisions


@st.composite
def histories_with_tenders(draw: st.DrawFn) -> list[tuple[str, Event]]:
    """The histories above, with points tendered on some purchases."""
    events = draw(histories())
    tendered: list[tuple[str, Event]] = []
    for customer, event in events:
        if event.type is EventType.PURCHASE and draw(st.booleans()):
            points = draw(st.sampled_from([10, 500, 1200, 5000]))
            amount = min(Decimal(points) / 100, event.total)
            tender = Redemption(points=points, amount=amount)
            event = replace(event, redemptions=(tender,))
        tendered.append((customer, event))
    return tendered


def _answers(decisions: list[Decision]) -> dict[str, str]:
    return {
        d.event_id or "": d.detail["status"]
        for d in decisions
        if d.kind is Kind.REDEMPTION and d.detail and "points" in d.detail
    }


@settings(max_examples=300, deadline=None)
@given(history=histories_with_tenders(), data=st.data())
def test_a_points_tender_keeps_its_first_answer_in_any_arrival_order(
    history: list[tuple[str, Event]], data: st.DataObject
) -> None:
    stored: dict[str, list[Event]] = defaultdict(list)
    runner = Runner(ENGINE, lambda key: stored[key])
    held: dict[str, list[Decision]] = defaultdict(list)
    first: dict[str, str] = {}
    for customer, event in data.draw(st.permutations(history)):
        stored[customer].append(event)
        outcome = runner.submit(customer, event)
        held[customer].extend(outcome.decisions)
        for key, decisions in outcome.rebuilt.items():
            held[key] = list(decisions)
        answered = _answers(held[customer]).get(event.event_id)
        if answered is not None:
            first.setdefault(event.event_id, answered)

    final = {k: v for d in held.values() for k, v in _answers(d).items()}
    assert final == first
    for key, state in runner.states.items():
        ledger = [d for d in held[key] if d.kind is Kind.POINTS and d.detail]
        assert state.points_balance >= 0
        assert state.points_balance == sum(d.detail["delta"] for d in ledger)
