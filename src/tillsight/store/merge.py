"""Merging customer profiles that turned out to be one person.

The survivor takes the others' identities, events, timeline, actions, rewards
and points. The survivor is then rebuilt from the combined history with the
engine, and its decisions replaced as after a late event: an action asked
for either profile, and asked again by the rebuild (same action, name, rule,
event and time), stays as it was, with its reward; one that no longer holds
is superseded, and its reward withdrawn. Its ledger gains the
other's entries one by one, each with its reason and event (the rebuild's
ledger reconciliation), and the old key's ledger is closed with one
``merge_out`` entry naming the survivor, so both still add up. The old
customers row stays, marked ``merged_into``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy import Connection, delete, func, select, update

from tillsight.core.decisions import Decision
from tillsight.core.runner import Runner
from tillsight.core.state import CustomerState
from tillsight.loyalty.tables import rewards
from tillsight.store import schema
from tillsight.store.writer import replace_decisions, save_states

log = structlog.get_logger("tillsight.store")


def merge_customers(
    conn: Connection,
    survivor: str,
    others: Sequence[str],
    runner: Runner,
    now: datetime,
    cause_event_id: str,
) -> tuple[CustomerState, list[Decision]]:
    """Fold ``others`` into ``survivor`` and rebuild it; return state, decisions."""
    for other in others:
        _move_behaviour(conn, other, survivor, now)
    answered = runner.state(survivor).tenders
    for other in others:
        if other in runner.states:
            answered.update(runner.states[other].tenders)
    decisions = runner.rebuild(survivor)
    state = runner.states[survivor]
    replace_decisions(conn, state, decisions, now, cause_event_id)
    save_states(conn, [state], now)

    log.info("customers_merged", customer=survivor, merged=list(others))
    return state, decisions


def _move_behaviour(conn: Connection, other: str, survivor: str, now: datetime) -> None:
    tables = (schema.identities, schema.events, schema.timeline, schema.outbox)
    for table in (*tables, rewards):
        conn.execute(
            update(table)
            .where(table.c.customer_key == other)
            .values(customer_key=survivor)
        )
    _transfer_points(conn, other, survivor, now)
    _move_person(conn, other, survivor)
    conn.execute(delete(schema.timers).where(schema.timers.c.customer_key == other))
    customers = schema.customers
    conn.execute(
        update(customers)
        .where(customers.c.key == other)
        .values(merged_into=survivor, points_balance=0, state="{}", updated_at=now)
    )


def _transfer_points(
    conn: Connection, other: str, survivor: str, now: datetime
) -> None:
    ledger = schema.points_ledger
    balance = int(
        conn.execute(
            select(func.coalesce(func.sum(ledger.c.delta), 0)).where(
                ledger.c.customer_key == other
            )
        ).scalar_one()
    )
    if not balance:
        return
    conn.execute(
        ledger.insert().values(
            customer_key=other,
            at=now,
            delta=-balance,
            reason="merge_out",
            rule_id="",
            event_id=survivor,
            corrects=0,
            recorded_at=now,
        )
    )


def _move_person(conn: Connection, other: str, survivor: str) -> None:
    if _has_person(conn, other) and not _has_person(conn, survivor):
        # TODO: when both profiles hold contact details the survivor keeps its
        # own and the other's stay on the merged row, so an operator must copy
        # a newer email or phone by hand.
        people = schema.people
        conn.execute(
            update(people)
            .where(people.c.customer_key == other)
            .values(customer_key=survivor)
        )


def _has_person(conn: Connection, key: str) -> bool:
    people = schema.people
    found = conn.execute(
        select(people.c.customer_key).where(people.c.customer_key == key)
    ).first()
    return found is not None
