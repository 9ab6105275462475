"""Fixtures for the pure core: engines on the default and the cases programme."""

from __future__ import annotations

from pathlib import Path

import pytest

from tillsight.core.engine import Engine
from tillsight.programme_file import load_programme


@pytest.fixture(scope="session")
def default_engine() -> Engine:
    return Engine(load_programme())


@pytest.fixture(scope="session")
def cases_engine() -> Engine:
    return Engine(load_programme(Path(__file__).with_name("cases_programme.yaml")))
