"""Live ingest: each call is one transaction from event to committed decision.

For every event: insert it (the unique ``event_id`` makes a repeat a no-op,
atomically, so two identical deliveries in parallel have one effect), resolve
the customer and lock it, merge profiles the event links, load the state,
apply the event with a runner on the wall clock (timers already due fire
first, a late event rebuilds the customer), then write the decisions and the
new state. The rows are the ones the replay writes for the same events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from tillsight.core.decisions import Decision
from tillsight.core.engine import Engine as RuleEngine
from tillsight.core.events import Event
from tillsight.core.programme import Programme
from tillsight.core.runner import Runner
from tillsight.core.state import CustomerState
from tillsight.core.timeconv import instant_us
from tillsight.errors import InputError
from tillsight.identity import identity_problems
from tillsight.ingest.sanity import event_problems
from tillsight.live import tables
from tillsight.live.identity import Resolver
from tillsight.live.store import LiveStore
from tillsight.loyalty.guest import attribute_guest_sales
from tillsight.pipeline import FUTURE_TOLERANCE
from tillsight.store import schema
from tillsight.store.bulk import Bulk
from tillsight.store.customers import identity_secret
from tillsight.store.event_log import Stored, customer_history, insert_event
from tillsight.store.merge import merge_customers
from tillsight.store.people import remember_contacts
from tillsight.store.writer import replace_decisions, save_states, write_decisions

log = structlog.get_logger("tillsight.live")

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """The time now, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A vendor's webhook delivery, deduplicated by ``(source, delivery_id)``."""

    source: str
    delivery_id: str
    topic: str


#: A webhook's event whose id is stored with other content: the vendor
#: changed the order after tillsight counted it. Nothing is applied.
CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of one event: accepted (with its decisions), duplicate, guest."""

    event_id: str
    status: str
    customer_key: str | None = None
    stage: str | None = None
    decisions: list[Decision] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)

    @property
    def is_duplicate(self) -> bool:
        return self.status == "duplicate"


class Ingestor:
    """Takes events one transaction at a time and answers with the decisions."""

    def __init__(
        self,
        store: LiveStore,
        programme: Programme,
        *,
        region: str | None = "GB",
        clock: Clock = wall_clock,
    ) -> None:
        self.store = store
        self.programme = programme
        self.clock = clock
        self._engine = RuleEngine(programme)
        secret = store.write(identity_secret)
        self._resolver = Resolver(store, secret, region)

    def check(self, events: Sequence[Event], *, indexed: bool = False) -> None:
        """Refuse what the engine must not take, naming the field and why.

        An event in another currency than the programme's, one dated more
        than a day past the service's clock (it would run every timer up to
        its date), and one that no store can keep (see
        :func:`~tillsight.ingest.sanity.event_problems`). An event id already
        stored with other content is refused too, but by :meth:`ingest`,
        inside its transaction: the insert finds the id taken, so a lookup
        costs nothing on the usual path.
        """
        latest = self.clock() + FUTURE_TOLERANCE
        problems: list[tuple[str, str]] = []
        for index, event in enumerate(events):
            where = f"[{index}]." if indexed else ""
            if event.currency != self.programme.currency:
                problems.append(
                    (
                        f"{where}currency",
                        f"{event.currency!r} is not supported: the programme counts "
                        f"{self.programme.currency} only",
                    )
                )
            if event.occurred_at > latest:
                problems.append(
                    (
                        f"{where}occurred_at",
                        f"{event.occurred_at.isoformat()} is more than a day past "
                        "the service's clock; check the till's clock",
                    )
                )
            problems += event_problems(event, prefix=where)
            problems += identity_problems(
                event.identity, self._resolver.region, prefix=where
            )
        if problems:
            raise InputError(problems)

    def ingest(
        self,
        events: Sequence[Event],
        delivery: Delivery | None = None,
        *,
        indexed: bool = False,
        same_id_same_content: bool = True,
    ) -> list[Receipt]:
        """Store and decide ``events`` in one transaction; a repeat changes nothing.

        Raises :class:`InputError`, with nothing stored, when an event fails
        :meth:`check` or when ``same_id_same_content`` holds and an event id
        is already stored with other content (events are never changed in
        place: a correction is a return or a new event). Webhook callers pass
        ``same_id_same_content=False``: a vendor's later update of an order
        (paid, fulfilled) keeps the order's id and is a repeat, and one that
        changed what the order says comes back with the status ``changed``,
        applied to nothing, for the caller to keep.
        """
        self.check(events, indexed=indexed)
        intake = _Intake(events, delivery, indexed, same_id_same_content)
        receipts = self.store.write(lambda conn: self._ingest(conn, intake))
        self._log(receipts)
        return receipts

    async def ingest_async(
        self, events: Sequence[Event], *, indexed: bool = False
    ) -> list[Receipt]:
        """:meth:`ingest` for a coroutine; the event loop goes on meanwhile."""
        self.check(events, indexed=indexed)
        intake = _Intake(events, None, indexed, True)
        receipts = await self.store.write_async(lambda conn: self._ingest(conn, intake))
        self._log(receipts)
        return receipts

    def _log(self, receipts: list[Receipt]) -> None:
        for receipt in receipts:
            log.info(
                "event_ingested",
                event_id=receipt.event_id,
                status=receipt.status,
                customer=receipt.customer_key,
                decisions=len(receipt.decisions),
            )

    def _ingest(self, conn: Connection, intake: _Intake) -> list[Receipt]:
        """Apply a batch in (event time, event id) order, then run the clock.

        One runner serves the batch and its clock moves with the events, so a
        batch of old sales is applied as a replay would apply it: a timer due
        between two of them fires once, at its time, not once per sale.
        """
        events = intake.events
        now = self.clock()
        delivery = intake.delivery
        if delivery is not None and not _record_delivery(conn, delivery, events, now):
            return [Receipt(event.event_id, "duplicate") for event in events]
        runner = Runner(self._engine, lambda k: customer_history(conn, k))
        order = sorted(
            range(len(events)),
            key=lambda n: (instant_us(events[n].occurred_at), events[n].event_id),
        )
        receipts: dict[int, Receipt] = {}
        clashes: list[tuple[str, str]] = []
        for n in order:
            receipt = self._one(conn, events[n], now, runner)
            receipts[n] = receipt
            if not receipt.is_duplicate:
                continue
            clash = _clash(conn, events[n], n if intake.indexed else None)
            if clash and intake.same_id_same_content:
                clashes += clash
            elif clash:  # a vendor changed an order it had sent: not applied
                receipts[n] = replace(receipt, status=CHANGED)
        if clashes:
            # Raising rolls the whole transaction back: nothing of it is kept.
            raise InputError(sorted(clashes))
        _catch_up(conn, runner, now)
        return [receipts[n] for n in range(len(events))]

    def _one(
        self, conn: Connection, event: Event, now: datetime, runner: Runner
    ) -> Receipt:
        seq = insert_event(conn, event, now)
        if seq is None:
            return Receipt(event.event_id, "duplicate")
        event = attribute_guest_sales(conn, [event], now)[0]
        resolution = self._resolver.resolve(conn, event.identity, now)
        key = resolution.key
        if key is None:
            return Receipt(event.event_id, "guest")
        bulk = Bulk(conn)
        bulk.execute(bulk.sql(_SET_CUSTOMER), (key, seq))
        remember_contacts(conn, [(event, key)], now, self._resolver.region)

        if resolution.merge:
            state, decisions = merge_customers(
                conn, key, resolution.merge, runner, now, event.event_id
            )
            for other in resolution.merge:
                runner.drop(other)
            mine = [d for d in decisions if d.event_id == event.event_id]
            merged = list(resolution.merge)
            return Receipt(event.event_id, "accepted", key, state.stage, mine, merged)
        if key not in runner.states:
            runner.add(load_state(conn, self._engine, key))
        state, decisions = _apply(conn, runner, key, event, now)
        return Receipt(event.event_id, "accepted", key, state.stage, decisions)


@dataclass(frozen=True, slots=True)
class _Intake:
    """One call's events and how to take them."""

    events: Sequence[Event]
    delivery: Delivery | None
    indexed: bool
    same_id_same_content: bool


def _clash(conn: Connection, event: Event, index: int | None) -> list[tuple[str, str]]:
    """The problem with a repeated event id, when the stored event differs."""
    row = conn.execute(_STORED, {"id_": event.event_id}).one_or_none()
    if row is None or Stored(row.fingerprint, row.payload).repeated_by(event):
        return []
    field_name = "event_id" if index is None else f"[{index}].event_id"
    return [
        (
            field_name,
            f"{event.event_id!r} is already stored with other content; send "
            "a correction as a return or as a new event",
        )
    ]


def _catch_up(conn: Connection, runner: Runner, now: datetime) -> None:
    """Fire the timers that fell due between the batch's last event and now."""
    decisions = runner.advance(instant_us(now))
    if not decisions:
        return
    write_decisions(conn, decisions, now)
    keys = sorted({d.customer_key for d in decisions})
    save_states(conn, [runner.states[k] for k in keys if k in runner.states], now)


def _apply(
    conn: Connection, runner: Runner, key: str, event: Event, now: datetime
) -> tuple[CustomerState, list[Decision]]:
    outcome = runner.submit(key, event)
    state = runner.states[key]
    # With a rebuild, ``outcome.decisions`` holds only other customers'
    # timers that the clock fired on the way; the rebuilt list is complete for
    # this customer, timers included where they still hold.
    write_decisions(conn, outcome.decisions, now)
    rebuilt = outcome.rebuilt.get(key)
    if rebuilt is not None:
        replace_decisions(conn, state, rebuilt, now, event.event_id)
        decisions = [d for d in rebuilt if d.event_id == event.event_id]
    else:
        decisions = outcome.decisions
    touched = {key} | {d.customer_key for d in outcome.decisions}
    states = runner.states
    save_states(conn, [states[k] for k in sorted(touched) if k in states], now)
    return state, decisions


def load_state(conn: Connection, engine: RuleEngine, key: str) -> CustomerState:
    """The customer's stored state (a new one for a blank profile)."""
    bulk = Bulk(conn)
    rows = bulk.execute(bulk.sql(_STATE), (key,))
    data: dict[str, Any] = orjson.loads(rows[0][0]) if rows and rows[0][0] else {}
    return CustomerState.from_json(data) if data else engine.new_state(key)


_STORED = select(schema.events.c.fingerprint, schema.events.c.payload).where(
    schema.events.c.event_id == bindparam("id_")
)
# The hot path's statements run on the driver's cursor (``store/bulk.py``).
_SET_CUSTOMER = "UPDATE events SET customer_key = ? WHERE seq = ?"
_STATE = "SELECT state FROM customers WHERE key = ?"


def _record_delivery(
    conn: Connection, delivery: Delivery, events: Sequence[Event], now: datetime
) -> bool:
    """Note a webhook delivery; False when the same delivery came before."""
    table = tables.webhook_deliveries
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(table)
        .values(
            source=delivery.source,
            delivery_id=delivery.delivery_id,
            topic=delivery.topic,
            outcome="events" if events else "ignored",
            event_ids=orjson.dumps([e.event_id for e in events]).decode(),
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
        .returning(table.c.id)
    )
    return conn.execute(statement).scalar_one_or_none() is not None
