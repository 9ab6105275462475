"""Replay: events from any source through the engine into the store.

Events are taken in batches. Each batch is one transaction: the new events,
the customers they resolve to, every decision and the new customer states
land together or not at all, so a run killed half-way can simply be run again
(events already stored are recognised by their id and skipped).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, Engine, select

from tillsight.core.decisions import Decision, Kind
from tillsight.core.engine import Engine as RuleEngine
from tillsight.core.events import Event
from tillsight.core.programme import Programme
from tillsight.core.runner import Runner
from tillsight.core.state import CustomerState
from tillsight.core.timeconv import from_instant_us, instant_us
from tillsight.errors import RowError, brief_reason
from tillsight.identity import identity_problems
from tillsight.ingest.sanity import event_problems
from tillsight.loyalty.guest import attribute_guest_sales
from tillsight.loyalty.redemption import Outcome
from tillsight.store import schema
from tillsight.store.customers import Directory, identity_secret
from tillsight.store.event_log import (
    as_stored,
    customer_history,
    insert_events,
    stored_events,
)
from tillsight.store.lock import replay_lock
from tillsight.store.merge import merge_customers
from tillsight.store.people import remember_contacts
from tillsight.store.writer import (
    replace_decisions,
    save_states,
    upsert,
    write_decisions,
)

log = structlog.get_logger("tillsight.replay")

CLOCK_SETTING = "clock_us"

#: How far past the wall clock a till's time may be (zones, skewed clocks).
#: A later event is refused: it would run every timer up to its time.
FUTURE_TOLERANCE = timedelta(days=1)


@dataclass(slots=True)
class Rejected:
    """An event the pipeline could not take, with the field and the reason."""

    event_id: str
    field: str
    reason: str
    event: Event | None = None

    def __post_init__(self) -> None:
        self.reason = brief_reason(self.reason)


@dataclass(slots=True)
class ReplaySummary:
    events_read: int = 0
    stored: int = 0
    duplicates: int = 0
    guests: int = 0
    rejected_rows: int = 0
    rejected_events: list[Rejected] = field(default_factory=list)
    decisions: int = 0
    firings: int = 0
    rebuilt_customers: int = 0
    until_behind_clock: datetime | None = None
    merged_customers: int = 0
    redemptions_applied: int = 0
    redemptions_refused: list[Rejected] = field(default_factory=list)
    clock: datetime | None = None


class Replayer:
    """Feeds events to the engine in (event time, event id) order, in batches."""

    def __init__(
        self,
        db: Engine,
        programme: Programme,
        *,
        batch_size: int = 20_000,
        on_progress: Callable[[int], None] | None = None,
        on_reject: Callable[[RowError], None] | None = None,
        on_wait: Callable[[], None] | None = None,
        region: str | None = "GB",
    ) -> None:
        """``region`` is where a phone number without a country code is read;
        ``on_wait`` is called when another replay holds the store (see
        :mod:`tillsight.store.lock`) and this one waits for it."""
        self.db = db
        self._on_wait = on_wait
        self._region = region
        self.programme = programme
        self.batch_size = batch_size
        self._on_progress = on_progress
        self._on_reject = on_reject
        self._conn: Connection | None = None
        self._engine = RuleEngine(programme)
        self._runner = Runner(self._engine, self._history)
        self._directory: Directory | None = None
        self._unsubmitted: set[str] = set()
        self.summary = ReplaySummary()

    def run(
        self, items: Iterable[Event | RowError], *, until: datetime | None = None
    ) -> ReplaySummary:
        """Replay everything, then run the clock to ``until`` (or the last event).

        One replay at a time writes to a store: a second waits for the first.
        """
        with replay_lock(self.db, self._on_wait), _collecting_rarely():
            return self._run(items, until)

    def _run(
        self, items: Iterable[Event | RowError], until: datetime | None
    ) -> ReplaySummary:
        with self.db.begin() as conn:
            self._directory = Directory(identity_secret(conn), self._region)
            self._runner.clock_us = _read_clock(conn)
        last_us = -1
        for batch in _batches(self._accepted(items), self.batch_size):
            with self.db.begin() as conn:
                last_us = max(last_us, self._apply_batch(conn, batch))
        clock_us = instant_us(until) + 1 if until is not None else last_us + 1
        if until is not None and clock_us < self._runner.clock_us:
            self.summary.until_behind_clock = until
        with self.db.begin() as conn:
            self._close(conn, clock_us)
        if self._runner.clock_us > 0:  # else no event or --until ever ran it
            self.summary.clock = from_instant_us(self._runner.clock_us - 1)
        return self.summary

    def _accepted(self, items: Iterable[Event | RowError]) -> Iterator[Event]:
        latest = datetime.now(UTC) + FUTURE_TOLERANCE
        for item in items:
            if isinstance(item, RowError):
                self.summary.rejected_rows += 1
                if self._on_reject is not None:
                    self._on_reject(item)
                continue
            self.summary.events_read += 1
            if item.occurred_at > latest:
                self.summary.rejected_events.append(_from_the_future(item, latest))
                continue
            if item.currency != self.programme.currency:
                self.summary.rejected_events.append(
                    Rejected(
                        item.event_id,
                        "currency",
                        f"{item.currency!r} is not the programme's currency "
                        f"{self.programme.currency!r}",
                        item,
                    )
                )
                continue
            problems = event_problems(item) or identity_problems(
                item.identity, self._region
            )
            if problems:
                self.summary.rejected_events.append(_unstorable(item, problems))
                continue
            yield item

    def _apply_batch(self, conn: Connection, batch: list[Event]) -> int:
        self._conn = conn
        now = datetime.now(UTC)
        fresh = attribute_guest_sales(conn, self._fresh(conn, batch), now)
        assert self._directory is not None
        keys = self._directory.resolve(conn, [e.identity for e in fresh], now)
        merges = self._directory.take_merges()
        keys = _follow_merges(keys, merges)
        insert_events(conn, list(zip(fresh, keys, strict=True)), now)
        remember_contacts(conn, zip(fresh, keys, strict=True), now)
        self._load_states(conn, {k for k in keys if k is not None})
        self._unsubmitted = {event.event_id for event in fresh}
        for survivor, others in merges:
            linked = (
                e.event_id for e, k in zip(fresh, keys, strict=True) if k == survivor
            )
            cause = next(linked, "identity-merge")
            self._merge(conn, survivor, others, cause, now)

        ordered = sorted(
            (
                (instant_us(e.occurred_at), e.event_id, e, k)
                for e, k in zip(fresh, keys, strict=True)
            ),
            key=lambda item: (item[0], item[1]),
        )
        decisions: list[Decision] = []
        for at_us, _id, event, key in ordered:
            self._unsubmitted.discard(event.event_id)
            if key is None:
                self.summary.guests += 1
                continue
            outcome = self._runner.submit(key, event, at_us)
            if outcome.rebuilt:
                # A rebuild holds the whole truth for its customer, so what
                # this batch decided for them before (a timer the clock fired
                # ahead of the late event, say) is written with it or not at all.
                decisions = [
                    d for d in decisions if d.customer_key not in outcome.rebuilt
                ]
            decisions.extend(outcome.decisions)
            for rebuilt_key, rebuilt in outcome.rebuilt.items():
                self._replace(conn, rebuilt_key, rebuilt, event.event_id, now)

        self._write(conn, decisions, {k for k in keys if k is not None}, now)
        if self._on_progress is not None:
            self._on_progress(len(batch))
        return max((item[0] for item in ordered), default=-1)

    def _fresh(self, conn: Connection, batch: list[Event]) -> list[Event]:
        """The events not stored yet; a known id with other content is refused.

        Fingerprints are worked out only for ids seen before, which is rare.
        """
        known = stored_events(conn, (e.event_id for e in batch))
        taken: dict[str, Event] = {}
        fresh: list[Event] = []
        for event in batch:
            earlier = taken.get(event.event_id)
            stored = known.get(event.event_id)
            if earlier is None and stored is None:
                taken[event.event_id] = event
                fresh.append(event)
                continue
            if stored is None:
                assert earlier is not None
                stored = as_stored(earlier)
            if stored.repeated_by(event):
                self.summary.duplicates += 1
            else:
                self.summary.rejected_events.append(_clash(event))
        self.summary.stored += len(fresh)
        return fresh

    def _close(self, conn: Connection, clock_us: int) -> None:
        """Run the clock: load customers whose timers fall due, fire them."""
        self._conn = conn
        now = datetime.now(UTC)
        timers = schema.timers
        due = conn.execute(
            select(timers.c.customer_key).where(
                timers.c.due_at < from_instant_us(clock_us)
            )
        ).scalars()
        self._load_states(conn, set(due))
        decisions = self._runner.advance(clock_us)
        self._write(conn, decisions, set(), now)

    def _write(
        self,
        conn: Connection,
        decisions: list[Decision],
        touched: set[str],
        now: datetime,
    ) -> None:
        outcomes = write_decisions(conn, decisions, now)
        self._count_redemptions(decisions, outcomes)
        self.summary.decisions += len(decisions)
        self.summary.firings += sum(d.kind is Kind.RULE_FIRED for d in decisions)
        dirty = touched | {d.customer_key for d in decisions}
        states = self._runner.states
        save_states(conn, (states[key] for key in sorted(dirty)), now)
        upsert(
            conn,
            schema.settings,
            [{"name": CLOCK_SETTING, "value": str(self._runner.clock_us)}],
            ["name"],
        )

    def _count_redemptions(
        self, decisions: list[Decision], outcomes: list[Outcome]
    ) -> None:
        presented = [d for d in decisions if d.kind is Kind.REDEMPTION and d.detail]
        for decision, outcome in zip(presented, outcomes, strict=True):
            if outcome.is_applied:
                self.summary.redemptions_applied += 1
                continue
            self.summary.redemptions_refused.append(
                Rejected(
                    event_id=decision.event_id or "",
                    field="redemptions",
                    reason=outcome.reason or "",
                )
            )

    def _replace(
        self,
        conn: Connection,
        key: str,
        decisions: list[Decision],
        cause: str,
        now: datetime,
    ) -> None:
        self.summary.rebuilt_customers += 1
        log.info("customer_rebuilt", customer=key, late_event=cause)
        state = self._runner.states[key]
        self.summary.firings += replace_decisions(conn, state, decisions, now, cause)

    def _merge(
        self,
        conn: Connection,
        survivor: str,
        others: list[str],
        cause: str,
        now: datetime,
    ) -> None:
        """Fold profiles that turned out to be one person into the survivor."""
        self._load_states(conn, {survivor, *others})
        merge_customers(conn, survivor, others, self._runner, now, cause)
        for other in others:
            self._runner.drop(other)
        self.summary.merged_customers += len(others)

    def _load_states(self, conn: Connection, keys: set[str]) -> None:
        missing = [key for key in keys if key not in self._runner.states]
        table = schema.customers
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            rows = conn.execute(
                select(table.c.key, table.c.state).where(table.c.key.in_(chunk))
            )
            for key, raw in rows:
                data: dict[str, Any] = orjson.loads(raw)
                state = (
                    CustomerState.from_json(data)
                    if data
                    else self._engine.new_state(key)
                )
                self._runner.add(state)

    def _history(self, key: str) -> list[Event]:
        """A customer's stored events, less those of this batch not yet applied."""
        assert self._conn is not None
        return [
            event
            for event in customer_history(self._conn, key)
            if event.event_id not in self._unsubmitted
        ]


def _from_the_future(event: Event, latest: datetime) -> Rejected:
    return Rejected(
        event.event_id,
        "occurred_at",
        f"{event.occurred_at.isoformat()} is after {latest.isoformat()}, a day "
        "past the time of this import; check the till's clock or the file's "
        "time format",
        event,
    )


def _unstorable(event: Event, problems: list[tuple[str, str]]) -> Rejected:
    """The first thing no store can keep about ``event``, naming any others."""
    field_name, reason = problems[0]
    others = [name for name, _ in problems[1:]]
    if others:
        reason += f" (also wrong: {', '.join(others)})"
    return Rejected(event.event_id, field_name, reason, event)


def _clash(event: Event) -> Rejected:
    return Rejected(
        event.event_id,
        "event_id",
        "was already imported with other content; events are never changed "
        "in place: send the change as a return or as a new event",
        event,
    )


def _follow_merges(
    keys: list[str | None], merges: list[tuple[str, list[str]]]
) -> list[str | None]:
    """Keys with every merged profile replaced by the one it merged into."""
    into: dict[str, str] = {}
    for survivor, others in merges:
        for other in others:
            into[other] = survivor
    for other, survivor in list(into.items()):
        while survivor in into:
            survivor = into[survivor]
        into[other] = survivor
    return [into.get(key, key) if key is not None else None for key in keys]


def _read_clock(conn: Connection) -> int:
    table = schema.settings
    value = conn.execute(
        select(table.c.value).where(table.c.name == CLOCK_SETTING)
    ).scalar_one_or_none()
    return int(value) if value is not None else 0


@contextmanager
def _collecting_rarely() -> Iterator[None]:
    """Run Python's cycle collector far less often for the length of a replay.

    A replay keeps every customer's state alive and makes few reference
    cycles, but its allocations set the collector off every 700 objects,
    and each older-generation pass walks every state: a third of a
    200,000-event replay went there (benchmarks/replay_bench.py).
    """
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 1_000)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _batches(items: Iterable[Event], size: int) -> Iterator[list[Event]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
