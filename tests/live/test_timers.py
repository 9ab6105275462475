"""Live timers fire on time and exactly once, even with two service processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from live.helpers import FixedClock, service
from tillsight.core.events import Event, EventType, Identity
from tillsight.live.service import LiveService
from tillsight.store import schema

LONDON = ZoneInfo("Europe/London")
SERVE = [sys.executable, "-c", "from tillsight.cli import main; main()", "serve"]


def purchase(event_id: str, at: datetime, customer: str) -> Event:
    from decimal import Decimal

    return Event(
        event_id=event_id,
        type=EventType.PURCHASE,
        occurred_at=at,
        total=Decimal("20.00"),
        currency="GBP",
        identity=Identity(customer_id=customer),
    )


def lapses(live: LiveService) -> int:
    timeline = schema.timeline
    with live.store.read() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    timeline.c.rule_id == "lapsed", timeline.c.kind == "rule_fired"
                )
            ).scalar_one()
        )


def test_lapse_fires_once_when_its_day_comes(db_url: str) -> None:
    clock = FixedClock(datetime(2025, 1, 10, tzinfo=UTC))
    live = service(db_url, clock=clock)
    live.ingestor.ingest([purchase("E1", datetime(2025, 1, 9, tzinfo=UTC), "C1")])

    clock.now += timedelta(days=178)
    early = live.timers.fire_due()
    clock.now += timedelta(days=2)
    first = live.timers.fire_due()
    again = live.timers.fire_due()

    assert (early, first, again) == (0, 1, 0)
    assert lapses(live) == 1
    live.close()


def due_in(seconds: float) -> datetime:
    """A purchase time whose 180-day lapse falls due ``seconds`` from now."""
    local = datetime.now(LONDON).replace(tzinfo=None) + timedelta(seconds=seconds)
    return (local - timedelta(days=180)).replace(tzinfo=LONDON)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _servers(db_url: str) -> Iterator[list[str]]:
    """Two ``tillsight serve`` processes on one store, timers every 0.1 s."""
    env = os.environ | {"TILLSIGHT_TIMER_INTERVAL_S": "0.1"}
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [*SERVE, "--db", db_url, "--port", str(port), "--json-logs"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            _wait_for(url)
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/openapi.json", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not start")


@pytest.mark.slow
def test_two_processes_fire_each_timer_once(db_url: str) -> None:
    live = service(db_url)
    customers = 20
    live.ingestor.ingest(
        [purchase(f"E{n}", due_in(4), f"C{n}") for n in range(customers)]
    )
    key = live.keys.create("smoke", ["ingest", "read"], datetime.now(UTC))

    with _servers(db_url) as urls:
        sent = httpx.post(
            urls[0] + "/v1/events",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "event_id": "SMOKE",
                "type": "purchase",
                "occurred_at": datetime.now(UTC).isoformat(),
                "currency": "GBP",
                "total": "5.00",
                "customer": {"customer_id": "SMOKE"},
            },
        )
        deadline = time.monotonic() + 20
        while lapses(live) < customers and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)

    assert sent.status_code == 202
    assert sent.json()["events"][0]["stage"] == "new"
    assert lapses(live) == customers
    outbox = schema.outbox
    with live.store.read() as conn:
        win_backs = conn.execute(
            select(func.count()).where(outbox.c.name == "win_back")
        ).scalar_one()
    assert win_backs == customers
    live.close()


def test_a_timer_fired_on_the_way_to_a_late_event_is_written(db_url: str) -> None:
    # C2's August sale is late (its September sale is stored), and the clock
    # it brings fires C1's lapse, due 30 June, before C2 is rebuilt.
    clock = FixedClock(datetime(2025, 9, 10, tzinfo=UTC))
    live = service(db_url, clock=clock)
    live.ingestor.ingest([purchase("S2", datetime(2025, 9, 1, tzinfo=UTC), "C2")])
    live.ingestor.ingest(
        [
            purchase("S1", datetime(2025, 1, 1, tzinfo=UTC), "C1"),
            purchase("A2", datetime(2025, 8, 1, tzinfo=UTC), "C2"),
        ]
    )

    with live.store.read() as conn:
        stages = dict(
            conn.execute(
                select(schema.identities.c.value, schema.customers.c.stage).join(
                    schema.customers,
                    schema.customers.c.key == schema.identities.c.customer_key,
                )
            ).all()
        )
    assert lapses(live) == 1
    assert stages == {"C1": "lapsed", "C2": "new"}
    live.close()
