"""Fixtures for points and rewards: the loyalty test programme and its engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tillsight.core.engine import Engine
from tillsight.core.programme import Programme
from tillsight.programme_file import load_programme

PROGRAMME_FILE = Path(__file__).with_name("loyalty_programme.yaml")


@pytest.fixture(scope="session")
def programme() -> Programme:
    return load_programme(PROGRAMME_FILE)


@pytest.fixture(scope="session")
def engine(programme: Programme) -> Engine:
    return Engine(programme)
