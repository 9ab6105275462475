"""Writing a batch: events, decisions, customer states and timers together.

Everything a batch decides is written in the caller's transaction (the
transactional outbox of DESIGN.md): either the events, the timeline, the
ledger, the outbox and the new states all land, or none of them does.
Re-writing a decision that is already there changes nothing (unique keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tillsight.core.decisions import Decision, Kind
from tillsight.core.state import CustomerState
from tillsight.core.timeconv import from_instant_us, instant_us
from tillsight.store import queries, schema
from tillsight.store.bulk import Bulk

if TYPE_CHECKING:
    from tillsight.loyalty.redemption import Outcome

_CHUNK = 500


def insert_ignoring_duplicates(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert rows; a row that breaks a unique key is skipped, atomically."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing()
    conn.execute(statement, list(rows))


def upsert(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: list[str]
) -> None:
    """Insert rows, or update every other column of the row with the same key."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    changes = {name: statement.excluded[name] for name in rows[0] if name not in keys}
    conn.execute(
        statement.on_conflict_do_update(index_elements=keys, set_=changes), list(rows)
    )


_TIMELINE_COLUMNS = (
    "customer_key",
    "at",
    "kind",
    "rule_id",
    "event_id",
    "subject",
    "detail",
    "superseded",
    "recorded_at",
)
_LEDGER_COLUMNS = (
    "customer_key",
    "at",
    "delta",
    "reason",
    "rule_id",
    "event_id",
    "corrects",
    "recorded_at",
)
_OUTBOX_COLUMNS = (
    "idempotency_key",
    "customer_key",
    "action",
    "name",
    "rule_id",
    "event_id",
    "at",
    "payload",
    "status",
    "attempts",
    "created_at",
)
_CUSTOMER_COLUMNS = (
    "key",
    "stage",
    "tier",
    "segments",
    "purchase_count",
    "lifetime_net_spend",
    "points_balance",
    "first_purchase_at",
    "last_purchase_at",
    "state",
    "created_at",
    "updated_at",
)


def write_decisions(
    conn: Connection,
    decisions: Iterable[Decision],
    recorded_at: datetime,
    *,
    ledger: bool = True,
) -> list[Outcome]:
    """Record decisions: points in the ledger, actions in the outbox, the rest
    (firings, stage, segment and tier changes, moments) on the timeline.

    Rewards that rules asked for become reward rows and reward codes that
    sales presented are redeemed, in the same transaction; the outcome of
    each redemption is returned.
    """
    # Imported here because the loyalty package writes through this module.
    from tillsight.loyalty.redemption import redeem_from_decisions
    from tillsight.loyalty.rewards import issue_from_decisions

    decisions = list(decisions)
    bulk = Bulk(conn)
    recorded = bulk.moment(recorded_at)
    timeline_rows: list[tuple[Any, ...]] = []
    ledger_rows: list[tuple[Any, ...]] = []
    outbox_rows: list[tuple[Any, ...]] = []
    for decision in decisions:
        at = bulk.instant(decision.at_us)
        if decision.kind is Kind.POINTS:
            if ledger:
                ledger_rows.append(_ledger_row(decision, at, recorded))
        elif decision.kind is Kind.ACTION:
            outbox_rows.append(_outbox_row(decision, at, recorded))
        else:
            timeline_rows.append(_timeline_row(bulk, decision, at, recorded))
    bulk.insert(
        schema.timeline, _TIMELINE_COLUMNS, timeline_rows, ignore_duplicates=True
    )
    bulk.insert(
        schema.points_ledger, _LEDGER_COLUMNS, ledger_rows, ignore_duplicates=True
    )
    bulk.insert(schema.outbox, _OUTBOX_COLUMNS, outbox_rows, ignore_duplicates=True)
    issue_from_decisions(conn, decisions, recorded_at)
    return redeem_from_decisions(conn, decisions, recorded_at)


def replace_decisions(
    conn: Connection,
    state: CustomerState,
    decisions: list[Decision],
    recorded_at: datetime,
    cause_event_id: str,
) -> int:
    """After a rebuild: keep what still holds, supersede the rest, add the new;
    return how many rule firings are new to the timeline.

    An action is known by what it asks (see :func:`_asked`), not by its
    idempotency key: after a merge, the survivor's outbox holds actions keyed
    for the profile they were first decided for. Pending actions that no
    longer hold are marked ``superseded`` and never sent, and their rewards
    withdrawn; a superseded action that holds again is pending again, its
    reward back; actions already delivered are not taken back, nor asked for
    twice. The ledger is append-only, and is brought to the rebuilt one entry
    by entry (see :func:`_reconcile_ledger`), so each change keeps its reason,
    rule and event. Should the balance still differ from the ledger's sum, one
    ``rebuild`` entry naming the late event makes up the difference.
    """
    held = _flip_timeline(conn, state.key, {d.identity for d in decisions})
    asked = _settle_outbox(conn, state.key, decisions, recorded_at)
    fresh = [
        d for d in decisions if d.kind is not Kind.ACTION or _asked(d) not in asked
    ]
    write_decisions(conn, fresh, recorded_at, ledger=False)
    _reconcile_ledger(conn, state.key, decisions, recorded_at)
    _settle_ledger(conn, state, recorded_at, cause_event_id)
    return sum(d.kind is Kind.RULE_FIRED and d.identity not in held for d in decisions)


Asked = tuple[str, str, str, str, int]


def _asked(decision: Decision) -> Asked:
    """What an action asks: action, name, rule, event and time."""
    detail = decision.detail or {}
    return (
        detail.get("action", decision.subject),
        detail.get("name", decision.subject),
        decision.rule_id or "",
        decision.event_id or "",
        decision.at_us,
    )


def _settle_outbox(
    conn: Connection, key: str, decisions: list[Decision], recorded_at: datetime
) -> set[Asked]:
    """Supersede or revive the customer's actions; return what the outbox asks."""
    from tillsight.loyalty.rewards import restore_rewards, withdraw_rewards

    holding = {_asked(d) for d in decisions if d.kind is Kind.ACTION}
    outbox = schema.outbox
    rows = conn.execute(
        select(
            outbox.c.id,
            outbox.c.idempotency_key,
            outbox.c.status,
            outbox.c.action,
            outbox.c.name,
            outbox.c.rule_id,
            outbox.c.event_id,
            outbox.c.at,
        ).where(outbox.c.customer_key == key)
    ).all()
    asked: set[Asked] = set()
    stale: list[Any] = []
    revived: list[Any] = []
    for row in rows:
        what = (
            row.action,
            row.name,
            row.rule_id or "",
            row.event_id or "",
            instant_us(row.at),
        )
        asked.add(what)
        if row.status == "pending" and what not in holding:
            stale.append(row)
        elif row.status == "superseded" and what in holding:
            revived.append(row)
    for changed, status in ((stale, "superseded"), (revived, "pending")):
        if changed:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in changed]))
                .values(status=status)
            )
    withdraw_rewards(conn, [row.idempotency_key for row in stale], recorded_at)
    restore_rewards(conn, [row.idempotency_key for row in revived])
    return asked


def _flip_timeline(
    conn: Connection, key: str, wanted: set[tuple[Any, ...]]
) -> set[tuple[Any, ...]]:
    """Supersede the rows that no longer hold and revive those that hold again;
    return what the timeline held before."""
    table = schema.timeline
    rows = conn.execute(
        select(
            table.c.id,
            table.c.kind,
            table.c.rule_id,
            table.c.event_id,
            table.c.subject,
            table.c.at,
            table.c.superseded,
        ).where(table.c.customer_key == key)
    ).all()
    flips: list[dict[str, Any]] = []
    held: set[tuple[Any, ...]] = set()
    for row in rows:
        identity = (
            key,
            row.kind,
            row.rule_id,
            row.event_id,
            row.subject,
            instant_us(row.at),
        )
        if not row.superseded:
            held.add(identity)
        still_holds = identity in wanted
        if still_holds == row.superseded:
            flips.append({"row_id": row.id, "flag": not still_holds})
    if flips:
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(superseded=bindparam("flag")),
            flips,
        )
    return held


def _reconcile_ledger(
    conn: Connection, key: str, decisions: list[Decision], recorded_at: datetime
) -> None:
    """Append what turns the stored ledger into the rebuilt one, entry by entry.

    An entry is known by its reason, rule, event and time. One the rebuild
    has and the ledger lacks (a late sale's earn) is added as it is; one
    whose amount changed, or that the rebuild no longer has, gets a
    correction for the difference, dated as the entry and naming the last
    row it corrects (``corrects``).
    """
    ledger = schema.points_ledger
    Entry = tuple[str, str, str, int]
    wanted: dict[Entry, int] = {}
    for decision in decisions:
        if decision.kind is Kind.POINTS and decision.detail is not None:
            entry = (
                decision.subject,
                decision.rule_id or "",
                decision.event_id or "",
                decision.at_us,
            )
            wanted[entry] = wanted.get(entry, 0) + int(decision.detail["delta"])
    stored: dict[Entry, tuple[int, int]] = {
        (e.reason, e.rule_id, e.event_id, instant_us(e.at)): (e.delta, e.last_id)
        for e in queries.ledger(conn, key)
    }
    bulk = Bulk(conn)
    recorded = bulk.moment(recorded_at)
    changes: list[tuple[Any, ...]] = []
    for entry in [*wanted, *(e for e in stored if e not in wanted)]:
        total, last_id = stored.get(entry, (0, 0))
        difference = wanted.get(entry, 0) - total
        if difference:
            reason, rule_id, event_id, at_us = entry
            at = bulk.instant(at_us)
            changes.append(
                (key, at, difference, reason, rule_id, event_id, last_id, recorded)
            )
    bulk.insert(ledger, _LEDGER_COLUMNS, changes, ignore_duplicates=False)


def _settle_ledger(
    conn: Connection, state: CustomerState, recorded_at: datetime, cause: str
) -> None:
    ledger = schema.points_ledger
    total = conn.execute(
        select(func.coalesce(func.sum(ledger.c.delta), 0)).where(
            ledger.c.customer_key == state.key
        )
    ).scalar_one()
    difference = state.points_balance - int(total)
    if difference:
        # Dated at the last event the customer's state has seen, in event time
        # like every other entry, so it sorts among them.
        seen = state.position_us
        conn.execute(
            ledger.insert().values(
                customer_key=state.key,
                at=from_instant_us(seen) if seen > 0 else recorded_at,
                delta=difference,
                reason="rebuild",
                rule_id="",
                event_id=cause,
                corrects=0,
                recorded_at=recorded_at,
            )
        )


def save_states(
    conn: Connection, states: Iterable[CustomerState], now: datetime
) -> None:
    """Store each customer's snapshot, its profile columns and its timers."""
    bulk = Bulk(conn)
    stamp = bulk.moment(now)
    rows: list[tuple[Any, ...]] = []
    timer_rows: list[tuple[Any, ...]] = []
    keys: list[str] = []
    for state in states:
        keys.append(state.key)
        rows.append(_customer_row(bulk, state, stamp))
        timer_rows.extend(
            (state.key, timer.rule_id, bulk.instant(timer.due_us), timer.cause_event_id)
            for timer in state.timers.values()
        )
    bulk.upsert(
        schema.customers, _CUSTOMER_COLUMNS, rows, key="key", keep=("created_at",)
    )
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        markers = ", ".join("?" * len(chunk))
        bulk.execute(
            bulk.sql(f"DELETE FROM timers WHERE customer_key IN ({markers})"), chunk
        )
    bulk.insert(
        schema.timers,
        ("customer_key", "rule_id", "due_at", "cause_event_id"),
        timer_rows,
    )


def _customer_row(bulk: Bulk, state: CustomerState, stamp: Any) -> tuple[Any, ...]:
    first = state.first_purchase
    last = state.last_counting_purchase
    return (
        state.key,
        state.stage,
        state.tier,
        orjson.dumps(sorted(state.segments)).decode(),
        state.purchase_count,
        bulk.money(state.lifetime_net_spend),
        state.points_balance,
        bulk.instant(first.at_us) if first else None,
        bulk.instant(last.at_us) if last else None,
        orjson.dumps(state.to_json()).decode(),
        stamp,
        stamp,
    )


def _timeline_row(
    bulk: Bulk, decision: Decision, at: Any, recorded: Any
) -> tuple[Any, ...]:
    return (
        decision.customer_key,
        at,
        decision.kind.value,
        decision.rule_id or "",
        decision.event_id or "",
        decision.subject,
        orjson.dumps(decision.detail).decode() if decision.detail else None,
        bulk.flag(False),
        recorded,
    )


def _ledger_row(decision: Decision, at: Any, recorded: Any) -> tuple[Any, ...]:
    assert decision.detail is not None
    return (
        decision.customer_key,
        at,
        decision.detail["delta"],
        decision.subject,
        decision.rule_id or "",
        decision.event_id or "",
        0,
        recorded,
    )


def _outbox_row(decision: Decision, at: Any, recorded: Any) -> tuple[Any, ...]:
    action, name, *_ = _asked(decision)
    return (
        decision.idempotency_key,
        decision.customer_key,
        action,
        name,
        decision.rule_id,
        decision.event_id,
        at,
        orjson.dumps(decision.detail or {}).decode(),
        "pending",
        0,
        recorded,
    )
