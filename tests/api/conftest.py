"""Fixtures for API tests: a service on each store and a client with a key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from live.helpers import FixedClock
from live.helpers import service as make_service
from tillsight.api import create_app
from tillsight.live.service import LiveService

#: The API tests' wall clock: a little after the events they send.
NOW = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def service(db_url: str, clock: FixedClock) -> Iterator[LiveService]:
    live = make_service(db_url, clock=clock)
    yield live
    live.close()


@pytest.fixture
def client(service: LiveService) -> Iterator[TestClient]:
    key = service.keys.create("tests", ["admin"], service.ingestor.clock())
    with TestClient(create_app(service)) as http:
        http.headers["Authorization"] = f"Bearer {key}"
        yield http
