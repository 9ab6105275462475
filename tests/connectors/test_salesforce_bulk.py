"""Full backfill through Bulk API 2.0 ingest jobs on the stand-in."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from salesforce_helpers import NOW, add_customer
from sqlalchemy import Engine, select

from tillsight.connectors.salesforce import run_backfill
from tillsight.connectors.salesforce.bulk import to_csv
from tillsight.connectors.salesforce.config import SalesforceSettings
from tillsight.connectors.salesforce.profiles import Profile, to_record
from tillsight.connectors.salesforce.standin_state import StandInState
from tillsight.connectors.salesforce.tables import dead_letters, pending, synced

KEY_FIELD = "Tillsight_Key__c"


def keys_in(engine: Engine, table: Any) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(table.c.customer_key)).scalars())


def test_backfill_upserts_everyone_and_reports_progress(
    engine: Engine,
    standin: StandInState,
    make_client: Any,
    settings: SalesforceSettings,
) -> None:
    keys = [f"C{n:02d}" for n in range(25)]
    for key in keys:
        add_customer(engine, key, first_name="Zoë")
    client = make_client(settings.model_copy(update={"bulk_chunk_records": 10}))
    seen: list[tuple[int, int]] = []

    report = run_backfill(
        engine, client, poll_interval_s=0, progress=lambda d, t: seen.append((d, t))
    )

    assert (report.status, report.jobs, report.synced) == ("done", 3, 25)
    assert keys_in(engine, synced) == set(keys)
    assert seen == [(0, 25), (10, 25), (20, 25), (25, 25)]
    assert standin.record("Contact", KEY_FIELD, "C07")["FirstName"] == "Zoë"
    assert standin.count("PATCH", "/jobs/ingest/") == 3


def test_backfill_rows_that_fail_are_dead_lettered_and_unprocessed_requeued(
    engine: Engine, standin: StandInState, client: Any
) -> None:
    add_customer(engine, "C1")
    add_customer(engine, "C2", email="c2@@example")
    add_customer(engine, "C3")
    standin.unprocessed_tail = 1

    report = run_backfill(engine, client, poll_interval_s=0)

    assert (report.synced, report.dead_lettered, report.requeued) == (1, 1, 1)
    assert keys_in(engine, dead_letters) == {"C2"}
    assert keys_in(engine, pending) == {"C3"}


def test_backfill_stopped_by_the_limit_resumes_the_job_in_flight(
    engine: Engine,
    standin: StandInState,
    make_client: Any,
    settings: SalesforceSettings,
) -> None:
    for n in range(20):
        add_customer(engine, f"C{n:02d}")
    small = settings.model_copy(update={"bulk_chunk_records": 10})
    standin.daily_limit = 5  # create, upload, close, poll, poll; results are refused

    stopped = run_backfill(
        engine, make_client(small), poll_interval_s=0, clock=lambda: NOW
    )
    standin.daily_limit = 1_000
    later = NOW + timedelta(days=1)
    resumed = run_backfill(
        engine, make_client(small), poll_interval_s=0, clock=lambda: later
    )

    assert (stopped.status, stopped.reason) == ("stopped", "REQUEST_LIMIT_EXCEEDED")
    assert resumed.status == "done"
    assert standin.count("POST", "/jobs/ingest") == 2  # the first job was not redone
    assert max(standin.writes.values()) == 1
    assert len(keys_in(engine, synced)) == 20


def test_bulk_csv_clears_owned_fields_and_leaves_unknown_person_fields(
    settings: SalesforceSettings,
) -> None:
    profile = Profile("C1", lifetime_net_spend=Decimal("1000.10"), last_name="Ødegård")

    text = to_csv([to_record(profile, settings)], settings).decode("utf-8")

    header, row = text.splitlines()
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert cells["Tillsight_Stage__c"] == "#N/A"
    assert cells["Tillsight_Lifetime_Spend__c"] == "1000.10"
    assert cells["Email"] == ""
    assert cells["LastName"] == "Ødegård"
