"""End to end: the real sample replayed, then ``tillsight salesforce sync``.

Real HTTP to the stand-in on a loopback port, a real store (SQLite, and once
PostgreSQL), the real CLI. What arrives in the stand-in is compared with the
customers table, and its record of calls and writes proves that a sync killed
half-way sends each record at most once more and loses none.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select, update
from typer.testing import CliRunner

from tillsight.cli import app
from tillsight.connectors.salesforce import sync as sync_module
from tillsight.connectors.salesforce.standin import RunningStandIn
from tillsight.connectors.salesforce.standin_state import StandInState
from tillsight.core.engine import Engine as RuleEngine
from tillsight.core.runner import Runner
from tillsight.core.state import CustomerState
from tillsight.ingest.csv_source import read_csv
from tillsight.ingest.mapping import load_mapping
from tillsight.loyalty.tables import rewards
from tillsight.pipeline import Replayer
from tillsight.programme_file import load_programme
from tillsight.store import schema
from tillsight.store.db import connect
from tillsight.store.event_log import customer_history
from tillsight.store.merge import merge_customers

EXAMPLES = Path(__file__).parents[2] / "examples"
SLICE = EXAMPLES / "data" / "online-retail-customer-slice.csv"
MAPPING = EXAMPLES / "mappings" / "online-retail.yaml"
KEY = "Tillsight_Key__c"
LATER_LINES = """\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
590001,22138,BAKING SET 9 PIECE RETROSPOT,3,2011-12-12 10:00:00,4.95,17920.0,UK
590002,23255,CHILDRENS CUTLERY CIRCUS PARADE,4,2011-12-12 11:00:00,4.15,16360.0,UK
590003,22138,BAKING SET 9 PIECE RETROSPOT,2,2011-12-12 12:00:00,4.95,99901.0,UK
"""
# Record fields compared with the customers table (profile attribute -> field).
PROFILE_FIELDS = {
    "stage": "Tillsight_Stage__c",
    "tier": "Tillsight_Tier__c",
    "segments": "Tillsight_Segments__c",
    "points_balance": "Tillsight_Points_Balance__c",
    "lifetime_net_spend": "Tillsight_Lifetime_Spend__c",
    "last_purchase_at": "Tillsight_Last_Purchase_At__c",
}

runner = CliRunner()


def replay(url: str, csv_path: Path) -> None:
    """Replay a till export into the store, as ``tillsight replay`` does."""
    store = connect(url)
    Replayer(store, load_programme()).run(read_csv(csv_path, load_mapping(MAPPING)))
    store.dispose()


@pytest.fixture(scope="module")
def replayed_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One replay of the real sample, copied by each test that needs it."""
    path = tmp_path_factory.mktemp("replayed") / "tillsight.db"
    replay(f"sqlite:///{path}", SLICE)
    return path


@pytest.fixture
def store_url(replayed_sample: Path, tmp_path: Path) -> str:
    copy = tmp_path / "tillsight.db"
    shutil.copy(replayed_sample, copy)
    return f"sqlite:///{copy}"


@pytest.fixture
def store(store_url: str) -> Iterator[Engine]:
    engine = connect(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def config(
    tmp_path: Path, server: RunningStandIn, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A mapping file like examples/salesforce/standin.yaml, for this stand-in."""
    path = tmp_path / "salesforce.yaml"
    path.write_text(
        f"login_url: {server.url}\n"
        "auth:\n"
        "  flow: client_credentials\n"
        f"  client_id: {server.state.client_id}\n"
        "last_name_fallback: Customer\n"
        "batch_size: 50\n"
        "backoff_s: 0\n"
    )
    monkeypatch.setenv("TILLSIGHT_SALESFORCE_CLIENT_SECRET", server.state.client_secret)
    return path


def sync(config: Path, url: str, *extra: str) -> Any:
    """Run ``tillsight salesforce sync`` and return the CLI result."""
    args = ["salesforce", "sync", "--config", str(config), "--db", url, *extra]
    return runner.invoke(app, args, catch_exceptions=True)


def expected_fields(row: Any) -> dict[str, Any]:
    """Write a customers row as its Salesforce fields, independently of the code."""
    last = row.last_purchase_at
    return {
        "Tillsight_Stage__c": row.stage,
        "Tillsight_Tier__c": row.tier,
        "Tillsight_Segments__c": ";".join(sorted(json.loads(row.segments))) or None,
        "Tillsight_Points_Balance__c": row.points_balance,
        "Tillsight_Lifetime_Spend__c": Decimal(row.lifetime_net_spend),
        "Tillsight_Last_Purchase_At__c": (
            last.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z") if last else None
        ),
    }


def buyers(store: Engine) -> Sequence[Any]:
    """Return the customers with a purchase who were not merged into another."""
    customers = schema.customers
    with store.connect() as conn:
        return conn.execute(
            select(customers).where(
                customers.c.purchase_count > 0, customers.c.merged_into.is_(None)
            )
        ).all()


def arrived(standin: StandInState, key: str) -> dict[str, Any]:
    record = standin.record("Contact", KEY, key)
    return {field: record.get(field) for field in PROFILE_FIELDS.values()}


def assert_in_step(standin: StandInState, store: Engine) -> None:
    rows = buyers(store)
    assert rows
    for row in rows:
        assert arrived(standin, row.key) == expected_fields(row), row.key


def test_every_buyer_arrives_with_the_fields_of_the_customers_table(
    store: Engine, store_url: str, config: Path, standin: StandInState
) -> None:
    result = sync(config, store_url)

    assert result.exit_code == 0, result.output
    assert_in_step(standin, store)
    assert len(standin.objects["Contact"]) == 445
    assert set(standin.writes.values()) == {1}
    assert standin.count("PATCH", "composite/sobjects/Contact") == 9


def moment_counts(store: Engine) -> Counter[str]:
    """Count the moments the store holds: stage changes, VIP, rewards."""
    timeline, live = schema.timeline, schema.timeline.c.superseded.is_(False)
    with store.connect() as conn:
        stages = conn.execute(
            select(func.count()).where(timeline.c.kind == "stage_changed", live)
        ).scalar_one()
        vips = conn.execute(
            select(func.count()).where(
                timeline.c.kind == "tier_entered", timeline.c.subject == "vip", live
            )
        ).scalar_one()
        issued = conn.execute(
            select(func.count()).where(rewards.c.held_out.is_(False))
        ).scalar_one()
    return Counter(stage_changed=stages, vip_reached=vips, reward_issued=issued)


def test_stage_and_vip_moments_are_published_once(
    store: Engine, store_url: str, config: Path, standin: StandInState
) -> None:
    sync(config, store_url)
    sync(config, store_url)

    ids = Counter(event["Event_Id__c"] for event in standin.events)
    kinds = Counter(event["Kind__c"] for event in standin.events)
    assert set(ids.values()) == {1}
    assert kinds == moment_counts(store)
    assert kinds["stage_changed"] > 700 and kinds["vip_reached"] > 50


def test_a_second_sync_sends_nothing(
    store_url: str, config: Path, standin: StandInState
) -> None:
    sync(config, store_url)
    calls_before = len(standin.calls)

    result = sync(config, store_url)

    assert result.exit_code == 0, result.output
    assert len(standin.calls) == calls_before


def profiles(store: Engine) -> dict[str, dict[str, Any]]:
    return {row.key: expected_fields(row) for row in buyers(store)}


def test_a_later_file_sends_only_the_customers_it_changed(
    store: Engine, store_url: str, config: Path, standin: StandInState, tmp_path: Path
) -> None:
    sync(config, store_url)
    before, writes_before = profiles(store), Counter(standin.writes)
    later = tmp_path / "later.csv"
    later.write_text(LATER_LINES)

    replay(store_url, later)
    result = sync(config, store_url)

    after = profiles(store)
    changed = {key for key, fields in after.items() if before.get(key) != fields}
    sent = set((standin.writes - writes_before).keys())
    assert result.exit_code == 0, result.output
    assert sent == changed
    assert 3 <= len(sent) < 50
    assert_in_step(standin, store)


def test_a_sync_stopped_after_some_batches_resumes_where_it_stopped(
    store: Engine, store_url: str, config: Path, standin: StandInState
) -> None:
    first = sync(config, store_url, "--max-batches", "3")
    sent_first = len(standin.writes)

    second = sync(config, store_url)

    assert (first.exit_code, second.exit_code) == (0, 0)
    assert sent_first == 150
    assert set(standin.writes.values()) == {1}
    assert_in_step(standin, store)


def test_a_sync_killed_before_recording_answers_sends_a_batch_once_more_at_most(
    store: Engine,
    store_url: str,
    config: Path,
    standin: StandInState,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_results = sync_module._record_results
    answered: list[int] = []

    def die_at_the_fourth_batch(*args: Any, **kwargs: Any) -> Any:
        answered.append(1)
        if len(answered) == 4:
            raise KeyboardInterrupt  # the process dies; Salesforce has the batch
        return record_results(*args, **kwargs)

    monkeypatch.setattr(sync_module, "_record_results", die_at_the_fourth_batch)
    killed = sync(config, store_url)
    monkeypatch.setattr(sync_module, "_record_results", record_results)

    resumed = sync(config, store_url)

    assert killed.exit_code != 0 and resumed.exit_code == 0
    assert Counter(standin.writes.values()) == {1: 445 - 50, 2: 50}
    assert_in_step(standin, store)
    assert set(Counter(e["Event_Id__c"] for e in standin.events).values()) == {1}


def test_a_stand_in_that_stops_answering_fails_the_sync_and_loses_nothing(
    store: Engine, store_url: str, config: Path, standin: StandInState
) -> None:
    standin.fail_next_503 = 1000

    failed = sync(config, store_url)
    standin.fail_next_503 = 0
    resumed = sync(config, store_url)

    assert failed.exit_code == 1
    assert "failed" in failed.output
    assert resumed.exit_code == 0
    assert set(standin.writes.values()) == {1}
    assert_in_step(standin, store)


def merge(store: Engine, survivor: str, other: str) -> None:
    """Merge two customers with the live path's merge, as an operator would."""
    rule_engine = RuleEngine(load_programme())
    with store.begin() as conn:
        runner_ = Runner(rule_engine, lambda key: customer_history(conn, key))
        customers = schema.customers
        for key in (survivor, other):
            raw = conn.execute(
                select(customers.c.state).where(customers.c.key == key)
            ).scalar_one()
            runner_.add(CustomerState.from_json(orjson.loads(raw)))
        merge_customers(
            conn, survivor, [other], runner_, datetime.now(UTC), "merge:test"
        )


def test_a_merged_customer_is_marked_merged_not_created_again(
    store: Engine, store_url: str, config: Path, standin: StandInState
) -> None:
    sync(config, store_url)
    survivor, other = (row.key for row in buyers(store)[:2])
    merge(store, survivor, other)

    result = sync(config, store_url)

    assert result.exit_code == 0, result.output
    assert len(standin.objects["Contact"]) == 445
    merged = standin.record("Contact", KEY, other)
    assert merged["Tillsight_Merged_Into__c"] == survivor
    assert_in_step(standin, store)


def test_a_customer_merged_before_any_sync_is_never_created(
    store: Engine, store_url: str, config: Path, standin: StandInState
) -> None:
    survivor, other = (row.key for row in buyers(store)[:2])
    merge(store, survivor, other)

    sync(config, store_url)

    assert standin.matches("Contact", KEY, other) == []
    assert len(standin.objects["Contact"]) == 444


def test_status_and_retry_name_what_waits(
    store: Engine, store_url: str, config: Path, standin: StandInState
) -> None:
    with store.begin() as conn:
        conn.execute(update(schema.people).values(email="not-an-email"))
    sync(config, store_url)

    status = runner.invoke(app, ["salesforce", "status", "--db", store_url])
    retried = runner.invoke(
        app, ["salesforce", "retry-dead-letters", "--db", store_url]
    )

    assert status.exit_code == 0 and retried.exit_code == 0
    assert "dead letters" in status.output
    assert "customers queued again" in retried.output


@pytest.mark.postgres
def test_the_sample_arrives_in_step_from_postgresql(
    postgres_url: str, config: Path, standin: StandInState
) -> None:
    replay(postgres_url, SLICE)

    first = sync(config, postgres_url)
    calls = len(standin.calls)
    second = sync(config, postgres_url)

    store = connect(postgres_url)
    try:
        assert (first.exit_code, second.exit_code) == (0, 0), first.output
        assert_in_step(standin, store)
        assert set(standin.writes.values()) == {1}
        assert len(standin.calls) == calls
    finally:
        store.dispose()
