"""B25: API request limits — batching, stop on REQUEST_LIMIT_EXCEEDED, resume."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from salesforce_helpers import NOW, add_customer
from sqlalchemy import Engine, func, select
from structlog.testing import capture_logs

from tillsight.connectors.salesforce import enqueue, run_sync
from tillsight.connectors.salesforce.client import SalesforceClient
from tillsight.connectors.salesforce.config import SalesforceSettings
from tillsight.connectors.salesforce.standin_state import StandInState
from tillsight.connectors.salesforce.tables import pending
from tillsight.errors import RateLimitedError

KEYS = [f"C{n}" for n in range(1, 151)]


@pytest.fixture
def changes(engine: Engine) -> Engine:
    for key in KEYS:
        add_customer(engine, key)
    with engine.begin() as conn:
        enqueue(conn, KEYS)
    return engine


def queued(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(pending)).scalar_one())


def test_150_changes_take_one_call_under_a_100_call_limit(
    changes: Engine, standin: StandInState, client: SalesforceClient
) -> None:
    standin.daily_limit = 100

    report = run_sync(changes, client, clock=lambda: NOW)

    assert (report.status, report.synced, report.calls) == ("success", 150, 1)
    assert standin.count() == 1


def test_limit_exceeded_stops_checkpoints_and_resumes_after_the_pause(
    changes: Engine,
    standin: StandInState,
    make_client: Any,
    settings: SalesforceSettings,
) -> None:
    small = settings.model_copy(update={"batch_size": 50})
    standin.daily_limit = 2

    stopped = run_sync(changes, make_client(small), clock=lambda: NOW)
    too_soon = run_sync(changes, make_client(small), clock=lambda: NOW)
    standin.api_used = 0  # the org's limit has reset
    later = NOW + timedelta(hours=1, minutes=1)
    resumed = run_sync(changes, make_client(small), clock=lambda: later)

    assert (stopped.status, stopped.reason) == ("stopped", "REQUEST_LIMIT_EXCEEDED")
    assert stopped.synced == 100
    assert [call.status for call in standin.calls][:3] == [200, 200, 403]
    assert too_soon.status == "paused"
    assert len(standin.assertions) == 2  # first run, resumed run; none for the 403
    assert (resumed.status, resumed.synced) == ("success", 50)
    assert queued(changes) == 0
    assert set(standin.writes) == set(KEYS)
    assert max(standin.writes.values()) == 1


def test_limit_exceeded_is_not_retried_nor_reauthenticated(
    standin: StandInState, client: SalesforceClient
) -> None:
    standin.daily_limit = 0

    with pytest.raises(RateLimitedError):
        client.limits()

    assert standin.count() == 1
    assert len(standin.assertions) == 1


def test_usage_warnings_at_half_and_four_fifths_of_the_limit(
    standin: StandInState, client: SalesforceClient
) -> None:
    standin.daily_limit = 10

    with capture_logs() as logs:
        for _ in range(9):
            client.limits()

    warnings = [e for e in logs if e["event"] == "salesforce_api_usage_high"]
    assert [(e["ratio"], e["used"]) for e in warnings] == [(0.5, 5), (0.8, 8)]
    assert client.api_usage == (9, 10)
