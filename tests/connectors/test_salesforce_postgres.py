"""The queue and a sync run on PostgreSQL, the production store."""

from __future__ import annotations

from decimal import Decimal

import pytest
from salesforce_helpers import add_customer
from sqlalchemy import Engine, select

from tillsight.connectors.salesforce import enqueue, run_sync
from tillsight.connectors.salesforce.client import SalesforceClient
from tillsight.connectors.salesforce.standin_state import StandInState
from tillsight.connectors.salesforce.tables import pending

pytestmark = pytest.mark.postgres


def test_enqueue_coalesces_to_one_row_per_customer(pg_engine: Engine) -> None:
    add_customer(pg_engine, "C1")

    with pg_engine.begin() as conn:
        enqueue(conn, ["C1", "C1"])
        enqueue(conn, ["C1"])

    with pg_engine.connect() as conn:
        assert [(r.customer_key, r.version) for r in conn.execute(select(pending))] == [
            ("C1", 2)
        ]


def test_sync_on_postgres_sends_exact_money(
    pg_engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    add_customer(pg_engine, "C1", lifetime_net_spend=Decimal("1000.10"))
    add_customer(pg_engine, "C2", last_name="Ødegård")
    with pg_engine.begin() as conn:
        enqueue(conn, ["C1", "C2"])

    report = run_sync(pg_engine, client)

    assert report.status == "success"
    spend = standin.record("Contact", "Tillsight_Key__c", "C1")
    assert spend["Tillsight_Lifetime_Spend__c"] == Decimal("1000.10")
    assert standin.record("Contact", "Tillsight_Key__c", "C2")["LastName"] == "Ødegård"
