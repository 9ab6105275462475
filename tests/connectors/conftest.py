"""Fixtures: the Salesforce stand-in on a loopback port, a real store, settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from salesforce_helpers import Sleeps
from sqlalchemy import Engine, create_engine, text

from tillsight.connectors.salesforce import SalesforceClient, connect
from tillsight.connectors.salesforce.config import JwtBearerAuth, SalesforceSettings
from tillsight.connectors.salesforce.standin import RunningStandIn, serve_in_thread
from tillsight.connectors.salesforce.standin_state import StandInState
from tillsight.store.schema import metadata

PG_URL = os.environ.get(
    "TILLSIGHT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CLIENT_ID = "3MVG9-tillsight-test"


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def server(rsa_key: rsa.RSAPrivateKey) -> Iterator[RunningStandIn]:
    state = StandInState(client_id=CLIENT_ID, client_secret="s3cret")
    state.public_key_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    running = serve_in_thread(state)
    yield running
    running.stop()


@pytest.fixture
def standin(server: RunningStandIn) -> StandInState:
    server.state.reset()
    return server.state


@pytest.fixture
def settings(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, server: RunningStandIn
) -> SalesforceSettings:
    key_path = tmp_path / "salesforce.key"
    key_path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    auth = JwtBearerAuth(
        flow="jwt_bearer",
        client_id=CLIENT_ID,
        username="integration@example.test",
        private_key_path=key_path,
    )
    return SalesforceSettings(
        login_url=server.url, auth=auth, backoff_s=0.0, limit_pause_hours=1.0
    )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sleeps: Sleeps) -> Iterator[Any]:
    made: list[SalesforceClient] = []

    def make(settings: SalesforceSettings) -> SalesforceClient:
        client = connect(settings)
        client._sleep = sleeps
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Any, settings: SalesforceSettings) -> SalesforceClient:
    return make_client(settings)  # type: ignore[no-any-return]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    schema = f"sf_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        pytest.skip(
            f"PostgreSQL at {PG_URL} is not reachable: {exc.__class__.__name__}"
        )
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    metadata.create_all(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
