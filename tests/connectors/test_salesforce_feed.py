"""The feed: changed customers and new moments reach the queue, once each."""

from __future__ import annotations

from datetime import timedelta

from salesforce_helpers import NOW, add_customer
from sqlalchemy import Engine, insert, select, update

from tillsight.connectors.salesforce.feed import run_feed
from tillsight.connectors.salesforce.tables import moments, pending
from tillsight.store.schema import customers, timeline


def queued(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(pending.c.customer_key, pending.c.version))
        return {row.customer_key: row.version for row in rows}


def touch(engine: Engine, key: str, seconds: float) -> None:
    """Change a customer with ``updated_at`` = NOW + seconds."""
    with engine.begin() as conn:
        conn.execute(
            update(customers)
            .where(customers.c.key == key)
            .values(updated_at=NOW + timedelta(seconds=seconds), points_balance=5)
        )


def test_the_first_feed_queues_every_customer(engine: Engine) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2")

    report = run_feed(engine, now=NOW)

    assert report.customers == 2
    assert queued(engine) == {"C1": 1, "C2": 1}


def test_a_feed_with_nothing_new_queues_nothing(engine: Engine) -> None:
    add_customer(engine, "C1")
    run_feed(engine, now=NOW)

    report = run_feed(engine, now=NOW)

    assert report.customers == 0
    assert queued(engine) == {"C1": 1}


def test_a_customer_stamped_like_the_watermark_but_committed_later_is_queued(
    engine: Engine,
) -> None:
    add_customer(engine, "C1")
    run_feed(engine, now=NOW)
    add_customer(engine, "C2")  # same updated_at as C1, committed after the feed

    report = run_feed(engine, now=NOW)

    assert report.customers == 1
    assert queued(engine) == {"C1": 1, "C2": 1}


def test_a_change_stamped_before_the_watermark_within_the_overlap_is_queued(
    engine: Engine,
) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2")
    touch(engine, "C1", 60)
    run_feed(engine, now=NOW)
    touch(engine, "C2", 30)  # a writer that stamped early and committed late

    report = run_feed(engine, now=NOW)

    assert report.customers == 1
    assert queued(engine) == {"C1": 1, "C2": 2}


def test_a_customer_changed_again_is_queued_again(engine: Engine) -> None:
    add_customer(engine, "C1")
    run_feed(engine, now=NOW)
    touch(engine, "C1", 5)

    report = run_feed(engine, now=NOW)

    assert report.customers == 1
    assert queued(engine) == {"C1": 2}


def add_timeline(engine: Engine, kind: str, subject: str, **values: object) -> None:
    row = {
        "customer_key": "C1",
        "at": NOW,
        "kind": kind,
        "rule_id": "r1",
        "event_id": f"e-{kind}-{subject}",
        "subject": subject,
        "superseded": False,
        "recorded_at": NOW,
        **values,
    }
    with engine.begin() as conn:
        conn.execute(insert(timeline).values(**row))


def test_stage_changes_and_vip_become_moments_once(engine: Engine) -> None:
    add_customer(engine, "C1")
    add_timeline(engine, "stage_changed", "active")
    add_timeline(engine, "tier_entered", "vip")
    add_timeline(engine, "tier_entered", "silver")
    add_timeline(engine, "segment_entered", "high_value")
    add_timeline(engine, "stage_changed", "lapsed", superseded=True)

    first = run_feed(engine, now=NOW)
    second = run_feed(engine, now=NOW)

    with engine.connect() as conn:
        kinds = sorted(conn.execute(select(moments.c.kind, moments.c.name)).all())
    assert (first.moments, second.moments) == (2, 0)
    assert kinds == [("stage_changed", "active"), ("vip_reached", "vip")]
