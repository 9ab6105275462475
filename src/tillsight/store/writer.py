"""Writing a batch: events, decisions, customer states and timers together.

Everything a batch decides is written in the caller's transaction (the
transactional outbox of DESIGN.md): either the events, the timeline, the
ledger, the outbox and the new states all land, or none of them does.
Re-writing a decision that is already there changes nothing (unique keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tillsight.core.decisions import Decision, Kind
from tillsight.core.state import CustomerState
from tillsight.core.timeconv import from_instant_us, instant_us
from tillsight.store import schema

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


def write_decisions(
    conn: Connection,
    decisions: Iterable[Decision],
    recorded_at: datetime,
    *,
    ledger: bool = True,
) -> None:
    """Record decisions on the timeline, the points ledger and the outbox."""
    timeline_rows: list[dict[str, Any]] = []
    ledger_rows: list[dict[str, Any]] = []
    outbox_rows: list[dict[str, Any]] = []
    for decision in decisions:
        at = from_instant_us(decision.at_us)
        timeline_rows.append(_timeline_row(decision, at, recorded_at))
        if decision.kind is Kind.POINTS and ledger:
            ledger_rows.append(_ledger_row(decision, at, recorded_at))
        elif decision.kind is Kind.ACTION:
            outbox_rows.append(_outbox_row(decision, at, recorded_at))
    insert_ignoring_duplicates(conn, schema.timeline, timeline_rows)
    insert_ignoring_duplicates(conn, schema.points_ledger, ledger_rows)
    insert_ignoring_duplicates(conn, schema.outbox, outbox_rows)


def replace_decisions(
    conn: Connection,
    state: CustomerState,
    decisions: list[Decision],
    recorded_at: datetime,
    cause_event_id: str,
) -> None:
    """After a rebuild: keep what still holds, supersede the rest, add the new.

    The ledger is append-only: if the rebuilt balance differs from the sum of
    the ledger, one ``rebuild`` entry naming the late event makes up the
    difference. Actions that already went out are not unsent.
    """
    table = schema.timeline
    wanted = {d.identity: d for d in decisions}
    rows = conn.execute(
        select(
            table.c.id,
            table.c.kind,
            table.c.rule_id,
            table.c.event_id,
            table.c.subject,
            table.c.at,
            table.c.superseded,
        ).where(table.c.customer_key == state.key)
    ).all()
    flips: list[dict[str, Any]] = []
    for row in rows:
        identity = (
            state.key,
            row.kind,
            row.rule_id,
            row.event_id,
            row.subject,
            instant_us(row.at),
        )
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
    write_decisions(conn, decisions, recorded_at, ledger=False)
    _settle_ledger(conn, state, recorded_at, cause_event_id)


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
        conn.execute(
            ledger.insert().values(
                customer_key=state.key,
                at=recorded_at,
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
    rows: list[dict[str, Any]] = []
    timer_rows: list[dict[str, Any]] = []
    keys: list[str] = []
    for state in states:
        keys.append(state.key)
        rows.append(_customer_row(state, now))
        timer_rows.extend(
            {
                "customer_key": state.key,
                "rule_id": timer.rule_id,
                "due_at": from_instant_us(timer.due_us),
                "cause_event_id": timer.cause_event_id,
            }
            for timer in state.timers.values()
        )
    for start in range(0, len(rows), _CHUNK):
        upsert(conn, schema.customers, rows[start : start + _CHUNK], ["key"])
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        conn.execute(
            delete(schema.timers).where(schema.timers.c.customer_key.in_(chunk))
        )
    if timer_rows:
        conn.execute(schema.timers.insert(), timer_rows)


def _customer_row(state: CustomerState, now: datetime) -> dict[str, Any]:
    first = state.first_purchase
    last = state.last_counting_purchase
    return {
        "key": state.key,
        "stage": state.stage,
        "tier": state.tier,
        "segments": orjson.dumps(sorted(state.segments)).decode(),
        "purchase_count": state.purchase_count,
        "lifetime_net_spend": state.lifetime_net_spend,
        "points_balance": state.points_balance,
        "first_purchase_at": from_instant_us(first.at_us) if first else None,
        "last_purchase_at": from_instant_us(last.at_us) if last else None,
        "state": orjson.dumps(state.to_json()).decode(),
        "created_at": now,
        "updated_at": now,
    }


def _timeline_row(
    decision: Decision, at: datetime, recorded_at: datetime
) -> dict[str, Any]:
    return {
        "customer_key": decision.customer_key,
        "at": at,
        "kind": decision.kind.value,
        "rule_id": decision.rule_id or "",
        "event_id": decision.event_id or "",
        "subject": decision.subject,
        "detail": orjson.dumps(decision.detail).decode() if decision.detail else None,
        "superseded": False,
        "recorded_at": recorded_at,
    }


def _ledger_row(
    decision: Decision, at: datetime, recorded_at: datetime
) -> dict[str, Any]:
    assert decision.detail is not None
    return {
        "customer_key": decision.customer_key,
        "at": at,
        "delta": decision.detail["delta"],
        "reason": decision.subject,
        "rule_id": decision.rule_id or "",
        "event_id": decision.event_id or "",
        "corrects": 0,
        "recorded_at": recorded_at,
    }


def _outbox_row(
    decision: Decision, at: datetime, recorded_at: datetime
) -> dict[str, Any]:
    detail = decision.detail or {}
    return {
        "idempotency_key": decision.idempotency_key,
        "customer_key": decision.customer_key,
        "action": detail.get("action", decision.subject),
        "name": detail.get("name", decision.subject),
        "rule_id": decision.rule_id,
        "event_id": decision.event_id,
        "at": at,
        "payload": orjson.dumps(detail).decode(),
        "status": "pending",
        "attempts": 0,
        "created_at": recorded_at,
    }
