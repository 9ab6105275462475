"""Logging in: the JWT bearer assertion and the client credentials flow."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tillsight.connectors.salesforce.auth import ClientCredentials, jwt_assertion
from tillsight.connectors.salesforce.config import SalesforceSettings
from tillsight.connectors.salesforce.standin_state import StandInState
from tillsight.errors import AuthError

NOW = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_jwt_assertion_is_rs256_signed_with_salesforce_claims(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    assertion = jwt_assertion(
        client_id="3MVG9-app",
        username="integration@example.test",
        audience="https://test.salesforce.com",
        private_key=rsa_key,
        now=NOW,
    )

    header, claims, signature = assertion.split(".")
    rsa_key.public_key().verify(
        unb64(signature),
        f"{header}.{claims}".encode("ascii"),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert json.loads(unb64(header)) == {"alg": "RS256"}
    assert json.loads(unb64(claims)) == {
        "iss": "3MVG9-app",
        "sub": "integration@example.test",
        "aud": "https://test.salesforce.com",
        "exp": int(NOW.timestamp()) + 180,
    }
    assert "=" not in assertion


def test_the_client_logs_in_with_a_jwt_the_stand_in_verifies(
    standin: StandInState, client: Any
) -> None:
    client.limits()

    assert len(standin.assertions) == 1
    assert standin.calls[0].status == 200


def test_a_jwt_signed_by_another_key_is_refused(
    standin: StandInState, settings: SalesforceSettings, tmp_path: Any, make_client: Any
) -> None:
    from cryptography.hazmat.primitives import serialization

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = tmp_path / "other.key"
    key_path.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    auth = settings.auth.model_copy(update={"private_key_path": key_path})
    client = make_client(settings.model_copy(update={"auth": auth}))

    with pytest.raises(AuthError, match="invalid_grant"):
        client.limits()

    assert standin.count() == 0


def test_client_credentials_flow_returns_the_instance_url(
    standin: StandInState, settings: SalesforceSettings
) -> None:
    flow = ClientCredentials("3MVG9-tillsight-test", "s3cret", settings.token_url)

    with httpx.Client() as http:
        token = flow.fetch(http)

    assert token.instance_url == standin.instance_url
    assert token.access_token in standin.tokens


def test_client_credentials_with_a_wrong_secret_is_an_auth_error(
    standin: StandInState, settings: SalesforceSettings
) -> None:
    flow = ClientCredentials("3MVG9-tillsight-test", "wrong", settings.token_url)

    with httpx.Client() as http, pytest.raises(AuthError, match="invalid_client"):
        flow.fetch(http)
