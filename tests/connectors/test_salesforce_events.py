"""Lifecycle moments published as Platform Events, once per moment key."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from tillsight.connectors.salesforce import (
    Moment,
    MomentKind,
    enqueue_moment,
    publish_moments,
)
from tillsight.connectors.salesforce.client import SalesforceClient
from tillsight.connectors.salesforce.standin_state import StandInState
from tillsight.connectors.salesforce.tables import moments

VIP = Moment(
    moment_key="tier:C1:vip",
    customer_key="C1",
    kind=MomentKind.VIP_REACHED,
    name="vip",
    occurred_at=datetime(2025, 9, 1, 10, 5, tzinfo=UTC),
    rule_id="vip_tier",
)


def test_a_moment_is_published_with_every_field(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    with engine.begin() as conn:
        enqueue_moment(conn, VIP)

    report = publish_moments(engine, client)

    assert (report.status, report.published, report.calls) == ("success", 1, 1)
    [event] = standin.events
    assert {k: v for k, v in event.items() if k != "Id"} == {
        "type": "Tillsight_Moment__e",
        "Customer_Key__c": "C1",
        "Kind__c": "vip_reached",
        "Name__c": "vip",
        "Occurred_At__c": "2025-09-01T10:05:00.000Z",
        "Rule__c": "vip_tier",
        "Event_Id__c": "tier:C1:vip",
    }


def test_the_same_moment_twice_is_published_once(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    with engine.begin() as conn:
        first = enqueue_moment(conn, VIP)
        again = enqueue_moment(conn, VIP)
    publish_moments(engine, client)
    with engine.begin() as conn:
        late_duplicate = enqueue_moment(conn, VIP)

    second = publish_moments(engine, client)

    assert (first, again, late_duplicate) == (True, False, False)
    assert len(standin.events) == 1
    assert (second.published, second.calls) == (0, 0)
    with engine.connect() as conn:
        row = conn.execute(select(moments)).one()
    assert row.status == "published"
    assert row.sf_event_id == standin.events[0]["Id"]


def test_many_moments_go_in_one_call(
    engine: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    with engine.begin() as conn:
        for n in range(150):
            moment = Moment(
                f"reward:{n}",
                f"C{n}",
                MomentKind.REWARD_ISSUED,
                "surprise",
                VIP.occurred_at,
            )
            enqueue_moment(conn, moment)

    report = publish_moments(engine, client)

    assert (report.published, standin.count("POST", "/composite/sobjects")) == (150, 1)
