"""Shared fixtures: a fresh store on SQLite and on PostgreSQL for each test.

PostgreSQL tests use the server at ``$TILLSIGHT_TEST_PG_URL`` (default: the
local server, user postgres, database test) and make a throw-away database per
test. When the server cannot be reached they fail, naming the URL: the suite
means to run against the real thing.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))

PG_URL = os.environ.get(
    "TILLSIGHT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True, scope="session")
def data_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data key for sealed bodies that lives with the test run, not in ~."""
    from tillsight import sealing

    path = tmp_path_factory.mktemp("keys") / "data.key"
    saved = os.environ.get(sealing.KEY_FILE_VARIABLE)
    os.environ[sealing.KEY_FILE_VARIABLE] = str(path)
    os.environ.pop(sealing.KEY_VARIABLE, None)
    sealing.forget_key()
    yield path
    if saved is None:
        os.environ.pop(sealing.KEY_FILE_VARIABLE, None)
    else:
        os.environ[sealing.KEY_FILE_VARIABLE] = saved
    sealing.forget_key()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tillsight.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    name = f"tillsight_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the driver's error types vary; name the URL
        admin.dispose()
        pytest.fail(f"PostgreSQL at {PG_URL} is not usable: {exc}")
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty store URL: once on SQLite, once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url
