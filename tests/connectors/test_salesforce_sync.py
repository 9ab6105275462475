"""Sync runs against the stand-in over real HTTP, with a real SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from salesforce_helpers import add_customer
from sqlalchemy import Engine, select, update

from tillsight.connectors.salesforce import (
    enqueue,
    queue_status,
    retry_dead_letters,
    run_sync,
)
from tillsight.connectors.salesforce.client import SalesforceClient
from tillsight.connectors.salesforce.config import SalesforceSettings
from tillsight.connectors.salesforce.standin_state import StandInState
from tillsight.connectors.salesforce.tables import (
    dead_letters,
    pending,
    review_items,
    synced,
)
from tillsight.store.schema import customers, people

KEY_FIELD = "Tillsight_Key__c"


def queue_keys(engine: Engine, *keys: str) -> None:
    with engine.begin() as conn:
        enqueue(conn, keys)


def rows(engine: Engine, table: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table)))


def upserts(standin: StandInState) -> int:
    return standin.count("PATCH", "/sobjects/")


def test_every_mapped_field_arrives_with_exact_values(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    add_customer(
        engine,
        "C1",
        stage="active",
        tier="vip",
        segments=["high_value", "wellness"],
        points_balance=1234,
        lifetime_net_spend=Decimal("2500.10"),
        last_purchase_at=datetime(2025, 8, 31, 17, 5, 9, 250000, tzinfo=UTC),
        email="c1@example.test",
        first_name="Ada",
        last_name="Lovelace",
        consent_email=True,
        consent_sms=False,
    )
    queue_keys(engine, "C1")

    report = run_sync(engine, client)

    assert report.status == "success"
    assert standin.record("Contact", KEY_FIELD, "C1") == {
        "Id": standin.record("Contact", KEY_FIELD, "C1")["Id"],
        KEY_FIELD: "C1",
        "Tillsight_Stage__c": "active",
        "Tillsight_Segments__c": "high_value;wellness",
        "Tillsight_Tier__c": "vip",
        "Tillsight_Points_Balance__c": 1234,
        "Tillsight_Lifetime_Spend__c": Decimal("2500.10"),
        "Tillsight_Last_Purchase_At__c": "2025-08-31T17:05:09.250Z",
        "Tillsight_Consent_Email__c": True,
        "Tillsight_Consent_SMS__c": False,
        "Email": "c1@example.test",
        "FirstName": "Ada",
        "LastName": "Lovelace",
    }


def test_non_ascii_names_arrive_intact(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    add_customer(engine, "C1", first_name="Zoë", last_name="Ødegård-Nakamura 中村")
    add_customer(engine, "C2", first_name="Ελένη", last_name="Παπαδοπούλου")
    queue_keys(engine, "C1", "C2")

    run_sync(engine, client)

    assert standin.record("Contact", KEY_FIELD, "C1")["LastName"] == (
        "Ødegård-Nakamura 中村"
    )
    assert standin.record("Contact", KEY_FIELD, "C1")["FirstName"] == "Zoë"
    assert standin.record("Contact", KEY_FIELD, "C2")["FirstName"] == "Ελένη"


def test_synced_state_keeps_the_salesforce_id_and_the_queue_empties(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2")
    queue_keys(engine, "C1", "C2")

    run_sync(engine, client)

    ids = {row.customer_key: row.sf_id for row in rows(engine, synced)}
    assert ids["C1"] == standin.record("Contact", KEY_FIELD, "C1")["Id"]
    assert rows(engine, pending) == []


def test_an_unchanged_profile_is_not_sent_again(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    add_customer(engine, "C1")
    queue_keys(engine, "C1")
    run_sync(engine, client)
    queue_keys(engine, "C1")

    report = run_sync(engine, client)

    assert (report.unchanged, upserts(standin)) == (1, 1)


def test_upsert_is_by_external_id_never_by_email(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    standin.seed("Contact", {"Email": "c1@example.test", "LastName": "Typed by hand"})
    add_customer(engine, "C1", email="c1@example.test")
    add_customer(engine, "C2")
    queue_keys(engine, "C1", "C2")

    run_sync(engine, client)

    assert len(standin.objects["Contact"]) == 3
    assert standin.count("PATCH", "/composite/sobjects/Contact/Tillsight_Key__c") == 1


def test_session_expiry_mid_sync_logs_in_once_and_upserts_each_profile_once(
    engine: Engine,
    standin: StandInState,
    make_client: Any,
    settings: SalesforceSettings,
) -> None:
    """B22: C1 -> 200, C2 -> 401 INVALID_SESSION_ID, log in, retry C2, then C3."""
    client = make_client(settings.model_copy(update={"batch_size": 1}))
    for key in ("C1", "C2", "C3"):
        add_customer(engine, key)
    queue_keys(engine, "C1", "C2", "C3")
    standin.expire_session_after(1)

    report = run_sync(engine, client)

    assert report.status == "success"
    assert len(standin.assertions) == 2
    assert standin.writes == {"C1": 1, "C2": 1, "C3": 1}
    assert [call.status for call in standin.calls] == [201, 401, 201, 201]


def test_a_second_401_after_logging_in_marks_the_item_failed_without_a_loop(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2")
    queue_keys(engine, "C1", "C2")
    standin.is_refusing_sessions = True

    report = run_sync(engine, client)

    assert (report.status, report.reason) == ("failed", "INVALID_SESSION_ID")
    assert len(standin.assertions) == 2
    assert standin.count() == 2
    assert {(r.status, r.last_error) for r in rows(engine, pending)} == {
        ("failed", "INVALID_SESSION_ID")
    }


def b23_customers(engine: Engine) -> None:
    add_customer(engine, "C1", email="c1@example.test", stage="LOYAL")
    add_customer(engine, "C2", email="c2@@example", stage="REPEAT")
    add_customer(engine, "C3", email="c3@example.test", stage="VIP")
    queue_keys(engine, "C1", "C2", "C3")


def test_partial_failure_is_reported_partial_and_only_the_bad_record_held(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    """B23 with allOrNone=false."""
    b23_customers(engine)

    report = run_sync(engine, client)

    assert report.status == "partial"
    assert {row.customer_key for row in rows(engine, synced)} == {"C1", "C3"}
    [letter] = rows(engine, dead_letters)
    assert (letter.customer_key, letter.error_code) == ("C2", "INVALID_EMAIL_ADDRESS")
    assert "c2@@example" in letter.message
    assert json.loads(letter.fields) == ["Email"]
    assert standin.writes == {"C1": 1, "C3": 1}


def test_all_or_none_changes_nothing_and_flags_all_three(
    engine: Engine,
    standin: StandInState,
    make_client: Any,
    settings: SalesforceSettings,
) -> None:
    """B23 with allOrNone=true: nothing written; C2 held, C1 and C3 queued."""
    client = make_client(settings.model_copy(update={"all_or_none": True}))
    b23_customers(engine)

    report = run_sync(engine, client)

    assert report.status == "partial"
    assert standin.writes == {}
    assert rows(engine, synced) == []
    assert [r.customer_key for r in rows(engine, dead_letters)] == ["C2"]
    assert {(r.customer_key, r.last_error) for r in rows(engine, pending)} == {
        ("C1", "ALL_OR_NONE_OPERATION_ROLLED_BACK"),
        ("C3", "ALL_OR_NONE_OPERATION_ROLLED_BACK"),
    }


def test_after_all_or_none_the_next_run_sends_the_good_records(
    engine: Engine,
    standin: StandInState,
    make_client: Any,
    settings: SalesforceSettings,
) -> None:
    client = make_client(settings.model_copy(update={"all_or_none": True}))
    b23_customers(engine)
    run_sync(engine, client)

    report = run_sync(engine, client)

    assert report.status == "success"
    assert standin.writes == {"C1": 1, "C3": 1}


def test_a_corrected_dead_letter_is_sent_when_the_profile_changes(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    b23_customers(engine)
    run_sync(engine, client)
    with engine.begin() as conn:
        conn.execute(
            update(people)
            .where(people.c.customer_key == "C2")
            .values(email="c2@example.test")
        )
        enqueue(conn, ["C2"])

    report = run_sync(engine, client)

    [letter] = rows(engine, dead_letters)
    assert report.status == "success"
    assert letter.resolved_at is not None
    assert standin.writes["C2"] == 1


def test_multiple_matches_answered_300_go_to_review_not_a_guess(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    standin.seed("Contact", {KEY_FIELD: "C1", "LastName": "One"})
    standin.seed("Contact", {KEY_FIELD: "C1", "LastName": "Two"})
    add_customer(engine, "C1")
    queue_keys(engine, "C1")

    report = run_sync(engine, client)

    [item] = rows(engine, review_items)
    detail = json.loads(item.detail)
    assert (report.status, item.customer_key) == ("partial", "C1")
    assert len(detail["matches"]) == 2
    assert standin.calls[-1].status == 300
    assert {r["LastName"] for r in standin.objects["Contact"].values()} == {
        "One",
        "Two",
    }
    assert rows(engine, pending) == []


def test_duplicate_external_id_in_a_collection_goes_to_review(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    standin.seed("Contact", {KEY_FIELD: "C1"})
    standin.seed("Contact", {KEY_FIELD: "C1"})
    add_customer(engine, "C1")
    add_customer(engine, "C2")
    queue_keys(engine, "C1", "C2")

    run_sync(engine, client)

    assert [r.reason for r in rows(engine, review_items)] == ["multiple_matches"]
    assert standin.writes == {"C2": 1}


def test_a_503_is_backed_off_and_the_batch_goes_through(
    engine: Engine, standin: StandInState, client: SalesforceClient, sleeps: Any
) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2")
    queue_keys(engine, "C1", "C2")
    standin.fail_next_503 = 1

    report = run_sync(engine, client)

    assert report.status == "success"
    assert [call.status for call in standin.calls] == [503, 200]
    assert sleeps == [0.0]


def test_503_past_the_retry_budget_stops_and_keeps_the_queue(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2")
    queue_keys(engine, "C1", "C2")
    standin.fail_next_503 = 10

    report = run_sync(engine, client)

    assert (report.status, report.reason) == ("failed", "HTTP_503")
    assert standin.count() == client.settings.http_retries + 1
    assert len(rows(engine, pending)) == 2


def test_a_locked_row_is_retried_alone(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    for key in ("C1", "C2", "C3"):
        add_customer(engine, key)
    queue_keys(engine, "C1", "C2", "C3")
    standin.locked_keys = {"C2"}

    report = run_sync(engine, client)

    assert report.status == "success"
    assert [call.records for call in standin.calls] == [3, 1]
    assert standin.writes == {"C1": 1, "C2": 1, "C3": 1}


def test_a_change_while_in_flight_stays_queued(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    add_customer(engine, "C1")
    queue_keys(engine, "C1")
    original = client.upsert_one

    def changed_during_send(record: Any) -> Any:
        queue_keys(engine, "C1")  # the engine commits a newer profile meanwhile
        return original(record)

    client.upsert_one = changed_during_send  # type: ignore[method-assign]
    run_sync(engine, client)

    assert [r.version for r in rows(engine, pending)] == [2]
    assert standin.writes == {"C1": 1}


@pytest.mark.parametrize("batches_before_kill", [1, 2])
def test_a_sync_stopped_half_way_resumes_losing_none(
    engine: Engine,
    standin: StandInState,
    make_client: Any,
    settings: SalesforceSettings,
    batches_before_kill: int,
) -> None:
    small = settings.model_copy(update={"batch_size": 10})
    keys = [f"C{n:03d}" for n in range(35)]
    for key in keys:
        add_customer(engine, key)
    queue_keys(engine, *keys)

    first = run_sync(engine, make_client(small), max_batches=batches_before_kill)
    second = run_sync(engine, make_client(small))

    assert first.synced == 10 * batches_before_kill
    assert second.status == "success"
    assert set(standin.writes) == set(keys)
    assert max(standin.writes.values()) == 1


def test_a_crash_after_salesforce_applied_sends_each_record_at_most_once_more(
    engine: Engine,
    standin: StandInState,
    make_client: Any,
    settings: SalesforceSettings,
) -> None:
    """The answer is lost (process killed) after Salesforce applied batch 2."""
    small = settings.model_copy(update={"batch_size": 10})
    keys = [f"C{n:03d}" for n in range(30)]
    for key in keys:
        add_customer(engine, key)
    queue_keys(engine, *keys)
    crashed = make_client(small)
    original = crashed.upsert_collection

    def applied_then_killed(records: Any, *, all_or_none: bool) -> Any:
        results = original(records, all_or_none=all_or_none)
        if standin.count("PATCH") == 2:
            raise KeyboardInterrupt  # the process dies before recording results
        return results

    crashed.upsert_collection = applied_then_killed  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run_sync(engine, crashed)
    run_sync(engine, make_client(small))

    assert set(standin.writes) == set(keys)
    assert sorted(standin.writes.values()) == [1] * 20 + [2] * 10
    assert queue_status(engine.connect())["pending"] == 0


def test_a_merged_customer_is_marked_merged_not_recreated(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2")
    queue_keys(engine, "C1", "C2")
    run_sync(engine, client)
    add_customer(engine, "C3", merged_into="C1")
    with engine.begin() as conn:
        conn.execute(
            update(customers).where(customers.c.key == "C2").values(merged_into="C1")
        )
    queue_keys(engine, "C2", "C3")

    run_sync(engine, client)

    assert standin.record("Contact", KEY_FIELD, "C2")["Tillsight_Merged_Into__c"] == (
        "C1"
    )
    assert standin.matches("Contact", KEY_FIELD, "C3") == []
    assert rows(engine, pending) == []


def test_retry_dead_letters_queues_them_again(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    b23_customers(engine)
    run_sync(engine, client)

    with engine.begin() as conn:
        retried = retry_dead_letters(conn)
        counts = queue_status(conn)

    assert retried == 1
    assert (counts["pending"], counts["dead_letters"], counts["synced"]) == (1, 1, 2)
