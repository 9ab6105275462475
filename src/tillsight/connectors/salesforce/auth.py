"""Logging in to Salesforce: the OAuth 2.0 JWT bearer and client credentials flows.

Both flows post a form to ``/services/oauth2/token`` and get back a JSON body
with ``access_token`` and ``instance_url``; a refusal is a 400 with
``{"error": ..., "error_description": ...}``. Neither flow has a refresh token:
when the session expires the client simply logs in again.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tillsight.connectors.salesforce.config import (
    ClientCredentialsAuth,
    JwtBearerAuth,
    SalesforceSettings,
)
from tillsight.errors import AuthError, ConfigError, RemoteError

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 180


@dataclass(frozen=True, slots=True)
class Token:
    """A Salesforce session: the bearer token and the org's instance URL."""

    access_token: str
    instance_url: str


class TokenSource(Protocol):
    """Something that can log in and hand back a fresh session."""

    def fetch(self, http: httpx.Client) -> Token:
        """Log in and return a new session."""
        ...


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_assertion(
    *,
    client_id: str,
    username: str,
    audience: str,
    private_key: rsa.RSAPrivateKey,
    now: datetime,
) -> str:
    """Build the RS256-signed assertion of the JWT bearer flow."""
    header = {"alg": "RS256"}
    claims = {
        "iss": client_id,
        "sub": username,
        "aud": audience,
        "exp": int(now.timestamp()) + ASSERTION_LIFETIME_S,
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        for part in (header, claims)
    )
    signature = private_key.sign(
        signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{_b64url(signature)}"


def _post_for_token(http: httpx.Client, url: str, form: dict[str, str]) -> Token:
    try:
        response = http.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise RemoteError(f"Salesforce login at {url} failed: {exc}") from exc

    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        error = body.get("error", f"HTTP {response.status_code}")
        description = body.get("error_description", "")
        raise AuthError(f"Salesforce refused the login: {error}: {description}")

    return Token(access_token=body["access_token"], instance_url=body["instance_url"])


class JwtBearer:
    """Log in with a signed assertion, as a connected app's pre-authorised user."""

    def __init__(
        self,
        auth: JwtBearerAuth,
        token_url: str,
        private_key: rsa.RSAPrivateKey,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._auth = auth
        self._token_url = token_url
        self._private_key = private_key
        self._clock = clock

    def fetch(self, http: httpx.Client) -> Token:
        """Post a fresh assertion and return the session it buys."""
        assertion = jwt_assertion(
            client_id=self._auth.client_id,
            username=self._auth.username,
            audience=self._auth.audience,
            private_key=self._private_key,
            now=self._clock(),
        )
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
        return _post_for_token(http, self._token_url, form)


class ClientCredentials:
    """Log in as a connected app's run-as user with its id and secret."""

    def __init__(self, client_id: str, client_secret: str, token_url: str) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._token_url = token_url

    def fetch(self, http: httpx.Client) -> Token:
        """Post the client id and secret and return the session."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        return _post_for_token(http, self._token_url, form)


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Load an unencrypted PEM RSA private key, the connected app's signing key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"the JWT signing key is not a PEM private key: {exc}"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("the JWT signing key must be an RSA key (RS256)")
    return key


def token_source(settings: SalesforceSettings) -> TokenSource:
    """Build the login flow the settings ask for, reading its secret."""
    auth = settings.auth
    if isinstance(auth, ClientCredentialsAuth):
        secret = os.environ.get(auth.client_secret_env)
        if not secret:
            raise ConfigError(
                f"auth.client_secret_env: environment variable "
                f"{auth.client_secret_env} is not set"
            )
        return ClientCredentials(auth.client_id, secret, settings.token_url)

    try:
        pem = auth.private_key_path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"auth.private_key_path '{auth.private_key_path}' cannot be read "
            f"({exc.strerror})"
        ) from exc
    return JwtBearer(auth, settings.token_url, load_private_key(pem))
