"""Many customers, one clock: the order-keeping loop around the engine.

The runner holds customer states, a heap of armed timers and the clock (in
event time during a replay, in wall time when serving). Timers fire in due
order as the clock passes them. An event that sorts before what its customer
has already applied is *late*: the runner rebuilds that customer from its whole
history, so aggregates and firings end exactly as if events had come in order,
and reports the rebuild so the store can supersede what no longer holds.

Still pure: the history of a customer comes from a function the caller passes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tillsight.core.decisions import Decision
from tillsight.core.engine import Engine
from tillsight.core.events import Event
from tillsight.core.state import CustomerState
from tillsight.core.timeconv import instant_us

History = Callable[[str], Sequence[Event]]


@dataclass(slots=True)
class Outcome:
    """What one step of the runner decided.

    ``decisions`` are new decisions, in order. ``rebuilt`` maps the key of each
    customer that was rebuilt to the complete list of its decisions: the store
    keeps those that still hold, adds the new ones and supersedes the rest.
    """

    decisions: list[Decision] = field(default_factory=list)
    rebuilt: dict[str, list[Decision]] = field(default_factory=dict)


class Runner:
    """Drives the engine over many customers in (event time, event id) order."""

    def __init__(self, engine: Engine, history: History, clock_us: int = 0) -> None:
        self.engine = engine
        self.states: dict[str, CustomerState] = {}
        self.clock_us = clock_us
        self._history = history
        self._heap: list[tuple[int, str, str]] = []
        self._pushed: dict[tuple[str, str], int] = {}

    def add(self, state: CustomerState) -> None:
        """Take charge of a customer state (a new one or one from the store).

        The clock moves up to what the state has already applied: a rebuild
        never goes back on a timer the customer saw fire.
        """
        self.states[state.key] = state
        self.clock_us = max(self.clock_us, state.position_us + 1)
        self._push_timers(state)

    def drop(self, key: str) -> None:
        """Forget a customer (merged into another); its timers go quiet."""
        self.states.pop(key, None)

    def state(self, key: str) -> CustomerState:
        """The customer's state, made new if the runner has never seen it."""
        state = self.states.get(key)
        if state is None:
            state = self.engine.new_state(key)
            self.states[key] = state
        return state

    def submit(self, key: str, event: Event, at_us: int | None = None) -> Outcome:
        """Apply an event for a customer, first moving the clock up to it."""
        if at_us is None:
            at_us = instant_us(event.occurred_at)
        outcome = Outcome(self.advance(at_us))
        state = self.state(key)
        if state.is_late(at_us, event.event_id):
            # The rebuild holds the whole truth for this customer, including
            # any timer the clock just fired for it from the old state.
            outcome.decisions = [d for d in outcome.decisions if d.customer_key != key]
            outcome.rebuilt[key] = self.rebuild(key)
        else:
            outcome.decisions.extend(self.engine.apply(state, event, at_us))
            self._push_timers(state)
        return outcome

    def advance(self, clock_us: int) -> list[Decision]:
        """Move the clock forward; fire every timer due strictly before it."""
        self.clock_us = max(self.clock_us, clock_us)
        decisions: list[Decision] = []
        heap = self._heap
        while heap and heap[0][0] < self.clock_us:
            due_us, key, rule_id = heapq.heappop(heap)
            if self._pushed.get((key, rule_id)) == due_us:
                del self._pushed[(key, rule_id)]
            state = self.states.get(key)
            timer = state.timers.get(rule_id) if state is not None else None
            if state is None or timer is None or timer.due_us != due_us:
                continue
            decisions.extend(self.engine.fire_timers(state, before_us=due_us + 1))
            self._push_timers(state)
        return decisions

    def rebuild(self, key: str) -> list[Decision]:
        """Build a customer again from its whole history, up to the clock."""
        events = sorted(
            self._history(key),
            key=lambda event: (instant_us(event.occurred_at), event.event_id),
        )
        before = self.states.get(key)
        state, decisions = self.engine.replay(
            key,
            events,
            until_us=self.clock_us,
            tenders=before.tenders if before is not None else None,
        )
        self.states[key] = state
        self._push_timers(state)
        return decisions

    def _push_timers(self, state: CustomerState) -> None:
        for timer in state.timers.values():
            slot = (state.key, timer.rule_id)
            if self._pushed.get(slot) == timer.due_us:
                continue
            self._pushed[slot] = timer.due_us
            heapq.heappush(self._heap, (timer.due_us, state.key, timer.rule_id))
