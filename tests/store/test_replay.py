"""Replay into a real store, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from tillsight.core.events import Event, Identity, Redemption
from tillsight.loyalty.tables import rewards
from tillsight.pipeline import Replayer, ReplaySummary
from tillsight.programme_file import load_programme
from tillsight.store import queries, schema
from tillsight.store.db import connect

from factories import refund, sale

PROGRAMME = load_programme()


@pytest.fixture
def store(db_url: str) -> Engine:
    engine = connect(db_url)
    yield engine
    engine.dispose()


def replay(
    store: Engine, events: list[Event], until: str | None = None
) -> ReplaySummary:
    moment = datetime.fromisoformat(until) if until else None
    return Replayer(store, PROGRAMME, batch_size=3).run(events, until=moment)


def row_counts(store: Engine) -> dict[str, int]:
    tables = ("customers", "events", "timeline", "outbox", "points_ledger", "timers")
    with store.connect() as conn:
        return {
            name: conn.execute(
                select(func.count()).select_from(schema.metadata.tables[name])
            ).scalar_one()
            for name in tables
        }


def fired_rules(store: Engine) -> Counter[str]:
    with store.connect() as conn:
        return Counter(rule for _key, rule, _at, _event in queries.firings(conn))


HISTORY = [
    sale("E1", "2025-01-01T10:00:00+00:00", "20.00"),
    sale("E2", "2025-01-15T10:00:00+00:00", "1500.00"),
    refund("R1", "2025-01-16T10:00:00+00:00", "20.00", of="E1"),
    sale("E3", "2025-02-01T10:00:00+00:00", "30.00"),
    sale("E4", "2025-02-02T10:00:00+00:00", "1000.00"),
    sale("G1", "2025-02-02T11:00:00+00:00", "9.99", customer=""),
]


def test_replay_records_firings_profile_and_outbox(store: Engine) -> None:
    summary = replay(store, HISTORY, until="2025-12-31T00:00:00+00:00")

    assert summary.stored == 6
    assert summary.guests == 1
    # E1 is refunded in full before E3 and E4, so E4 is the third that counts.
    assert fired_rules(store) == Counter(
        {
            "first_purchase": 1,
            "high_value_purchase": 1,
            "return_processed": 1,
            "active_engaged": 1,
            "tier:vip": 1,
            "lapsed": 1,
        }
    )
    with store.connect() as conn:
        key = queries.find_customer_key(conn, "C1")
        profile = queries.profile(conn, key)
        pending = conn.execute(select(func.count()).select_from(schema.outbox)).scalar()
    assert profile.stage == "lapsed"
    assert profile.lifetime_net_spend == Decimal("2530.00")
    assert profile.purchase_count == 3
    assert profile.points_balance == 20 + 1500 - 20 + 30 + 1000
    assert pending == 8


def test_importing_the_same_events_twice_changes_nothing(store: Engine) -> None:
    replay(store, HISTORY)
    before = row_counts(store)

    summary = replay(store, HISTORY)

    assert summary.duplicates == len(HISTORY)
    assert summary.stored == 0
    assert row_counts(store) == before


def test_b07_status_updates_of_one_order_earn_once(store: Engine) -> None:
    updates = [sale("shop:order:O1", "2025-05-01T09:00:00+00:00", "80.00")] * 4

    summary = replay(store, updates)

    assert summary.stored == 1 and summary.duplicates == 3
    with store.connect() as conn:
        key = queries.find_customer_key(conn, "C1")
        assert queries.profile(conn, key).points_balance == 80
        earns = conn.execute(
            select(func.count()).select_from(schema.points_ledger)
        ).scalar()
    assert earns == 1


def test_late_event_in_a_later_import_rebuilds_the_customer(store: Engine) -> None:
    replay(store, [HISTORY[0], HISTORY[3]], until="2025-02-10T00:00:00+00:00")
    late = [sale("L1", "2025-01-20T10:00:00+00:00", "15.00")]

    summary = replay(store, [*late, sale("E9", "2025-02-05T10:00:00+00:00", "5.00")])

    assert summary.rebuilt_customers == 1
    assert fired_rules(store)["active_engaged"] == 1
    with store.connect() as conn:
        key = queries.find_customer_key(conn, "C1")
        balance = queries.profile(conn, key).points_balance
        ledger_sum = conn.execute(
            select(func.sum(schema.points_ledger.c.delta)).where(
                schema.points_ledger.c.customer_key == key
            )
        ).scalar()
    assert balance == ledger_sum == 20 + 15 + 30 + 5


def ledger_rows(store: Engine) -> list[tuple[str, str, int]]:
    table = schema.points_ledger
    with store.connect() as conn:
        rows = conn.execute(
            select(table.c.reason, table.c.event_id, table.c.delta).order_by(
                table.c.at, table.c.id
            )
        )
        return [(reason, event_id, delta) for reason, event_id, delta in rows]


def test_a_late_event_s_points_keep_their_reasons_in_the_ledger(
    store: Engine,
) -> None:
    replay(store, [sale("E1", "2025-01-01T10:00:00+00:00", "40.00")])
    replay(store, [refund("R1", "2025-01-10T10:00:00+00:00", "10.00", of="E1")])

    late = [
        sale("L1", "2025-01-05T10:00:00+00:00", "15.00"),
        refund("R0", "2025-01-02T10:00:00+00:00", "40.00", of="E1"),
    ]
    assert replay(store, late).rebuilt_customers > 0
    # R0 now refunds E1 in full, so R1 takes back nothing: its -10 is
    # corrected, next to it, and no lump "rebuild" entry is needed.
    assert ledger_rows(store) == [
        ("earn", "E1", 40),
        ("reverse", "R0", -40),
        ("earn", "L1", 15),
        ("reverse", "R1", -10),
        ("reverse", "R1", 10),
    ]
    with store.connect() as conn:
        key = queries.find_customer_key(conn, "C1")
        assert queries.profile(conn, key).points_balance == 15
        folded = queries.ledger(conn, key)
    assert [(e.reason, e.event_id, e.delta, e.first_delta) for e in folded] == [
        ("earn", "E1", 40, 40),
        ("reverse", "R0", -40, -40),
        ("earn", "L1", 15, 15),
        ("reverse", "R1", 0, -10),
    ]


def test_guest_sale_is_stored_but_attributed_to_no_one(store: Engine) -> None:
    guest = sale("G1", "2025-02-02T11:00:00+00:00", "9.99", customer="")
    assert guest.identity == Identity(customer_id="")

    replay(store, [guest])

    with store.connect() as conn:
        row = conn.execute(select(schema.events)).one()
        customers = conn.execute(select(func.count()).select_from(schema.customers))
        assert customers.scalar() == 0
    assert row.customer_key is None
    assert Decimal(row.total) == Decimal("9.99")


def _person(event_id: str, when: str, amount: str, **hints: str) -> Event:
    event = sale(event_id, when, amount, customer="")
    return replace(event, identity=Identity(**hints))


def test_b21_an_event_that_links_two_profiles_merges_them(store: Engine) -> None:
    replay(
        store,
        [
            _person(
                "O1", "2025-07-01T09:00:00+01:00", "50.00", email="Ann@Example.test"
            ),
            _person("O2", "2025-07-02T09:00:00+01:00", "100.00", phone="07911 123456"),
        ],
    )

    summary = replay(
        store,
        [
            _person(
                "O3",
                "2025-08-01T09:00:00+01:00",
                "1.00",
                email="ann@example.test",
                phone="+447911123456",
            )
        ],
    )

    with store.connect() as conn:
        live = conn.execute(
            select(schema.customers).where(schema.customers.c.merged_into.is_(None))
        ).all()
        welcomes = (
            conn.execute(
                select(schema.outbox.c.status).where(schema.outbox.c.name == "welcome")
            )
            .scalars()
            .all()
        )
    assert summary.merged_customers == 1
    assert len(live) == 1
    assert live[0].points_balance == 151
    assert live[0].purchase_count == 3
    # Each profile was welcomed before they were known to be one person; the
    # merge asks for nothing again and the second, not yet sent, is withdrawn.
    assert sorted(welcomes) == ["pending", "superseded"]


def test_same_event_id_with_other_content_is_refused_not_skipped(
    store: Engine,
) -> None:
    replay(store, [sale("E1", "2025-01-01T10:00:00+00:00", "20.00")])

    summary = replay(store, [sale("E1", "2025-01-01T10:00:00+00:00", "99.00")])

    assert summary.duplicates == 0
    assert [(r.event_id, r.field) for r in summary.rejected_events] == [
        ("E1", "event_id")
    ]
    with store.connect() as conn:
        total = conn.execute(select(schema.events.c.total)).scalar_one()
    assert Decimal(total) == Decimal("20.00")


def test_an_event_dated_after_tomorrow_is_refused_and_runs_no_timer(
    store: Engine,
) -> None:
    events = [
        sale("E1", "2025-01-01T10:00:00+00:00", "20.00"),
        sale("E2", "2101-01-05T10:00:00+00:00", "2.50", customer="C2"),
    ]

    summary = replay(store, events)

    assert [(r.event_id, r.field) for r in summary.rejected_events] == [
        ("E2", "occurred_at")
    ]
    assert fired_rules(store)["lapsed"] == 0


def test_an_event_before_1970_is_applied_like_any_other(store: Engine) -> None:
    summary = replay(store, [sale("B1", "1900-01-01T10:00:00+00:00", "10.00")])

    assert summary.stored == 1
    assert fired_rules(store)["first_purchase"] == 1


def test_a_reward_whose_rule_a_late_event_undoes_is_withdrawn(store: Engine) -> None:
    replay(
        store,
        [sale("E1", "2025-01-01T10:00:00+00:00", "20.00")],
        until="2025-12-31T00:00:00+00:00",
    )

    replay(store, [sale("L1", "2025-05-01T10:00:00+01:00", "20.00")])

    with store.connect() as conn:
        rows = conn.execute(
            select(rewards.c.event_id, rewards.c.withdrawn_at).where(
                rewards.c.kind == "win_back_incentive"
            )
        ).all()
        outbox = conn.execute(
            select(schema.outbox.c.event_id, schema.outbox.c.status).where(
                schema.outbox.c.name == "win_back_incentive"
            )
        ).all()
    by_cause = {event_id: withdrawn is not None for event_id, withdrawn in rows}
    assert by_cause == {"E1": True, "L1": False}
    assert sorted(outbox) == [("E1", "superseded"), ("L1", "pending")]


def test_within_one_batch_a_repeat_is_skipped_and_a_clash_refused(
    store: Engine,
) -> None:
    first = sale("E1", "2025-01-01T10:00:00+00:00", "20.00")
    clash = sale("E1", "2025-01-01T10:00:00+00:00", "99.00")

    summary = replay(store, [first, first, clash])

    assert (summary.stored, summary.duplicates) == (1, 1)
    assert [r.event_id for r in summary.rejected_events] == ["E1"]


@pytest.mark.parametrize(
    "change",
    [
        lambda event: replace(event, lines=event.lines[::-1]),
        lambda event: replace(event, total=Decimal("30.0")),
    ],
    ids=["lines reordered", "10.0 for 10.00"],
)
def test_a_transaction_sent_again_in_another_form_is_a_repeat(
    store: Engine, change: Callable[[Event], Event]
) -> None:
    first = sale("E1", "2025-01-01T10:00:00+00:00", "30.00", lines=("10.00", "20.00"))
    again = change(first)

    replay(store, [first])
    summary = replay(store, [again])

    assert (summary.stored, summary.duplicates, summary.rejected_events) == (0, 1, [])


def test_a_sale_sent_again_for_another_customer_is_a_clash(store: Engine) -> None:
    first = sale("E1", "2025-01-01T10:00:00+00:00", "30.00", customer="C1")

    replay(store, [first])
    summary = replay(store, [replace(first, identity=Identity(customer_id="C2"))])
    again = replay(store, [replace(first, identity=Identity(customer_id=" C1 "))])
    unnamed = replay(store, [replace(first, identity=Identity())])

    assert [r.event_id for r in summary.rejected_events] == ["E1"]
    assert "other content" in summary.rejected_events[0].reason
    assert (again.duplicates, again.rejected_events) == (1, [])
    assert (unnamed.duplicates, unnamed.rejected_events) == (1, [])


def test_a_sale_named_only_by_an_unreadable_email_is_refused(store: Engine) -> None:
    event = sale("E1", "2025-01-01T10:00:00+00:00", "30.00")
    event = replace(event, identity=Identity(email="nobody-at-example"))

    summary = replay(store, [event])

    assert summary.stored == 0
    assert [(r.event_id, r.field) for r in summary.rejected_events] == [
        ("E1", "customer.email")
    ]


def test_the_migration_works_out_fingerprints_again_for_stored_events(
    db_url: str,
) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    engine = connect(db_url)
    first = sale("E1", "2025-01-01T10:00:00+00:00", "30.00", lines=("20.00", "10.00"))
    replay(engine, [first])
    with engine.begin() as conn:  # as 0002 left it: a fingerprint of line order
        conn.execute(schema.events.update().values(fingerprint="0" * 32))
    config = Config()
    location = resources.files("tillsight.store").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    engine.dispose()

    engine = connect(db_url)  # migrates to the head again
    summary = replay(engine, [replace(first, lines=first.lines[::-1])])
    engine.dispose()

    assert (summary.stored, summary.duplicates, summary.rejected_events) == (0, 1, [])


def test_contact_details_are_kept_sealed_and_read_back(store: Engine) -> None:
    from tillsight.connectors.salesforce.profiles import read_profiles

    event = _person(
        "P1",
        "2025-07-01T09:00:00+01:00",
        "10.00",
        customer_id="C9",
        email=" Ann@Example.test ",
        phone="07911 123456",
    )

    replay(store, [event])

    with store.connect() as conn:
        row = conn.execute(select(schema.people)).one()
        profile = read_profiles(conn, [row.customer_key])[row.customer_key]
    assert "example" not in (row.email + row.phone).lower()
    assert profile.email == "ann@example.test"


def test_until_before_the_clock_is_reported_not_silently_dropped(
    store: Engine,
) -> None:
    replay(
        store,
        [sale("E1", "2025-01-01T10:00:00+00:00", "20.00")],
        until="2025-12-31T00:00:00+00:00",
    )

    summary = replay(store, [], until="2025-03-01T00:00:00+00:00")

    assert summary.until_behind_clock == datetime.fromisoformat(
        "2025-03-01T00:00:00+00:00"
    )
    assert fired_rules(store)["lapsed"] == 1


def test_returns_that_do_not_fit_their_sale_and_spent_points_show_on_the_timeline(
    store: Engine,
) -> None:
    paid_with_points = replace(
        sale("E2", "2025-01-02T10:00:00+00:00", "40.00"),
        redemptions=(Redemption(points=40, amount=Decimal("4.00")),),
    )
    replay(
        store,
        [
            sale("E1", "2025-01-01T10:00:00+00:00", "40.00"),
            paid_with_points,
            refund("R1", "2025-01-03T10:00:00+00:00", "40.00", of="E1"),
            refund("R2", "2025-01-04T10:00:00+00:00", "40.00", of="E1"),
            refund("R3", "2025-01-05T10:00:00+00:00", "9.00", of="E1", customer="C2"),
        ],
    )

    with store.connect() as conn:
        mine = queries.timeline(conn, queries.find_customer_key(conn, "C1"))
        theirs = queries.timeline(conn, queries.find_customer_key(conn, "C2"))

    def notes(entries: list[queries.TimelineEntry]) -> list[tuple[str, str, str]]:
        wanted = ("return_mismatch", "points_shortfall")
        return [(e.kind, e.subject, e.event_id) for e in entries if e.kind in wanted]

    assert notes(mine) == [
        ("points_shortfall", "reverse", "R1"),
        ("return_mismatch", "more_than_the_sale", "R2"),
    ]
    assert notes(theirs) == [("return_mismatch", "unknown_sale", "R3")]


def _paid_with_points(event_id: str, when: str, points: int) -> Event:
    return replace(
        sale(event_id, when, "40.00"),
        redemptions=(Redemption(points=points, amount=Decimal(points) / 100),),
    )


def test_points_the_till_took_stay_taken_when_a_late_return_lands_before_them(
    store: Engine,
) -> None:
    replay(
        store,
        [
            sale("E1", "2025-01-01T10:00:00+00:00", "40.00"),
            _paid_with_points("E2", "2025-01-05T10:00:00+00:00", 40),
        ],
    )
    late = [refund("R0", "2025-01-02T10:00:00+00:00", "40.00", of="E1")]

    summary = replay(store, late)

    assert summary.rebuilt_customers == 1
    assert summary.redemptions_refused == []
    with store.connect() as conn:
        key = queries.find_customer_key(conn, "C1")
        entries = queries.timeline(conn, key)
        folded = queries.ledger(conn, key)
        balance = queries.profile(conn, key).points_balance
    tenders = [e.detail for e in entries if e.kind == "redemption"]
    assert [(t["points"], t["status"]) for t in tenders] == [(40, "applied")]
    shortfalls = [e.detail for e in entries if e.kind == "points_shortfall"]
    assert shortfalls == [{"wanted": 40, "taken": 0, "shortfall": 40}]
    # R0 took E1's 40 back, so E2's tender found nothing left to take; E2
    # earned on the money paid, 40.00 less 0.40 of points.
    assert [(e.reason, e.event_id, e.delta, e.first_delta) for e in folded] == [
        ("earn", "E1", 40, 40),
        ("reverse", "R0", -40, -40),
        ("redeem", "E2", 0, -40),
        ("earn", "E2", 39, 39),
    ]
    assert balance == 39


def test_a_refused_points_tender_stays_refused_when_a_late_sale_lands_before_it(
    store: Engine,
) -> None:
    replay(
        store,
        [
            sale("E1", "2025-01-01T10:00:00+00:00", "10.00"),
            _paid_with_points("E2", "2025-01-05T10:00:00+00:00", 40),
        ],
    )
    late = [sale("L1", "2025-01-02T10:00:00+00:00", "100.00")]

    assert replay(store, late).rebuilt_customers == 1

    with store.connect() as conn:
        key = queries.find_customer_key(conn, "C1")
        entries = queries.timeline(conn, key)
        folded = queries.ledger(conn, key)
    tenders = [e.detail for e in entries if e.kind == "redemption"]
    assert [(t["status"], t.get("reason")) for t in tenders] == [
        ("refused", "INSUFFICIENT_POINTS")
    ]
    assert [(e.reason, e.event_id) for e in folded] == [
        ("earn", "E1"),
        ("earn", "L1"),
        ("earn", "E2"),
    ]


def test_a_tender_refused_before_a_merge_stays_refused_after_it(
    store: Engine,
) -> None:
    # Known only by phone, the customer had no points, so the till was told
    # no. Merged with the email profile the points would have been there; the
    # merge must not spend them after the fact.
    tender = replace(
        _person("O2", "2025-07-03T09:00:00+01:00", "40.00", phone="07911 123456"),
        redemptions=(Redemption(points=40, amount=Decimal("0.40")),),
    )
    replay(
        store,
        [
            _person("O1", "2025-07-01T09:00:00+01:00", "40.00", email="a@b.test"),
            tender,
        ],
    )

    summary = replay(
        store,
        [
            _person(
                "O3",
                "2025-08-01T09:00:00+01:00",
                "1.00",
                email="a@b.test",
                phone="+447911123456",
            )
        ],
    )

    assert summary.merged_customers == 1
    with store.connect() as conn:
        survivor = conn.execute(
            select(schema.customers.c.key).where(
                schema.customers.c.merged_into.is_(None)
            )
        ).scalar_one()
        entries = queries.timeline(conn, survivor)
        balance = queries.profile(conn, survivor).points_balance
    tenders = [e.detail for e in entries if e.kind == "redemption"]
    assert [t["status"] for t in tenders] == ["refused"]
    assert balance == 40 + 39 + 1


def test_a_timer_fired_ahead_of_a_late_event_in_the_same_batch_is_not_kept(
    store: Engine,
) -> None:
    # The first import moves the clock to December. In the second, C1 runs
    # the clock past B's lapse due on 30 June (from B1) before B2, which
    # sorts before that lapse, rebuilds B: the June lapse no longer holds.
    replay(store, [sale("X1", "2025-12-01T10:00:00+00:00", "10.00", customer="X")])
    later = [
        sale("B1", "2025-01-01T10:00:00+00:00", "10.00", customer="B"),
        sale("C1", "2025-02-01T10:00:00+00:00", "10.00", customer="C"),
        sale("B2", "2025-03-01T10:00:00+00:00", "10.00", customer="B"),
    ]

    assert replay(store, later).rebuilt_customers == 1

    with store.connect() as conn:
        key = queries.find_customer_key(conn, "B")
        lapses = [
            (e.event_id, e.at.date().isoformat())
            for e in queries.timeline(conn, key)
            if e.kind == "rule_fired" and e.rule_id == "lapsed"
        ]
        win_backs = conn.execute(
            select(func.count()).where(
                schema.outbox.c.customer_key == key,
                schema.outbox.c.name == "win_back",
                schema.outbox.c.status == "pending",
            )
        ).scalar_one()
    assert lapses == [("B2", "2025-08-28")]
    assert win_backs == 1


def test_a_merge_keeps_what_was_asked_for_the_profile_it_folds_in(
    store: Engine,
) -> None:
    # The phone profile bought first, and its third purchase issued a surprise
    # reward; the email profile bought later. Whichever key survives, the
    # combined history asks for the phone profile's welcome and reward again,
    # and those are the ones already in the outbox.
    replay(
        store,
        [
            _person("P1", "2025-06-01T09:00:00+01:00", "10.00", phone="07911 123456"),
            _person("P2", "2025-06-02T09:00:00+01:00", "10.00", phone="07911 123456"),
            _person("P3", "2025-06-03T09:00:00+01:00", "10.00", phone="07911 123456"),
            _person("M1", "2025-06-04T09:00:00+01:00", "10.00", email="b@example.test"),
        ],
    )
    with store.connect() as conn:
        before = conn.execute(
            select(rewards.c.code, rewards.c.held_out, rewards.c.event_id)
        ).all()

    summary = replay(
        store,
        [
            _person(
                "L1",
                "2025-06-05T09:00:00+01:00",
                "10.00",
                email="b@example.test",
                phone="+447911123456",
            )
        ],
    )

    with store.connect() as conn:
        survivor = conn.execute(
            select(schema.customers.c.key).where(
                schema.customers.c.merged_into.is_(None)
            )
        ).scalar_one()
        outbox = conn.execute(
            select(
                schema.outbox.c.customer_key,
                schema.outbox.c.name,
                schema.outbox.c.event_id,
                schema.outbox.c.status,
            ).order_by(schema.outbox.c.event_id, schema.outbox.c.name)
        ).all()
        after = conn.execute(
            select(
                rewards.c.code,
                rewards.c.held_out,
                rewards.c.event_id,
                rewards.c.customer_key,
                rewards.c.withdrawn_at,
            )
        ).all()
    assert summary.merged_customers == 1
    assert [tuple(row) for row in outbox] == [
        (survivor, "welcome", "M1", "superseded"),
        (survivor, "welcome", "P1", "pending"),
        (survivor, "surprise_and_delight", "P3", "pending"),
    ]
    assert [(r.code, r.held_out, r.event_id) for r in after] == [tuple(before[0])]
    assert [(r.customer_key, r.withdrawn_at) for r in after] == [(survivor, None)]


def test_an_action_superseded_by_a_late_event_comes_back_when_it_holds_again(
    store: Engine,
) -> None:
    # E3 is the third purchase in 90 days until E1's late refund; E0, later
    # still, makes it the third again: the same surprise, at the same time.
    replay(
        store,
        [
            sale("E1", "2025-01-01T10:00:00+00:00", "20.00"),
            sale("E2", "2025-01-10T10:00:00+00:00", "20.00"),
            sale("E3", "2025-01-20T10:00:00+00:00", "20.00"),
        ],
    )

    def surprise() -> tuple[str, bool]:
        with store.connect() as conn:
            status = conn.execute(
                select(schema.outbox.c.status).where(
                    schema.outbox.c.name == "surprise_and_delight"
                )
            ).scalar_one()
            withdrawn = conn.execute(select(rewards.c.withdrawn_at)).scalar_one()
        return status, withdrawn is not None

    first = surprise()
    replay(store, [refund("R1", "2025-01-15T10:00:00+00:00", "20.00", of="E1")])
    refunded = surprise()
    replay(store, [sale("E0", "2025-01-17T10:00:00+00:00", "20.00")])

    assert (first, refunded, surprise()) == (
        ("pending", False),
        ("superseded", True),
        ("pending", False),
    )


def test_the_summary_counts_the_firings_a_late_event_brings(store: Engine) -> None:
    replay(store, [sale("E2", "2025-03-01T10:00:00+00:00", "10.00")])

    # E1 moves the first purchase to January: first_purchase fires anew at
    # E1 (its firing at E2 no longer holds), and nothing else changes.
    summary = replay(store, [sale("E1", "2025-01-01T10:00:00+00:00", "10.00")])

    assert summary.rebuilt_customers == 1
    assert summary.firings == 1
    assert fired_rules(store) == Counter({"first_purchase": 1})
