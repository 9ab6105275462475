"""A local Salesforce stand-in: a FastAPI app answering with documented bodies.

Run it for a demo with ``uvicorn --factory
tillsight.connectors.salesforce.standin:create_default_app``; tests start it
in a thread with ``serve_in_thread``. It emulates the OAuth token endpoint (JWT
bearer, checked against a public key, and client credentials), sObject
Collections upsert and create, the single-record upsert (201, 204, 300),
``/limits``, and Bulk API 2.0 ingest jobs. It validates emails, counts calls
against a daily limit (``Sforce-Limit-Info`` on every answer) and can expire
sessions, refuse them, answer 503 or lock rows on request. Everything else
(SOQL, triggers, validation rules, field types, Platform Event delivery) is
out of scope.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request, Response

from tillsight.connectors.salesforce import standin_bulk
from tillsight.connectors.salesforce.standin_state import (
    EXPIRED_SESSION,
    LIMIT_EXCEEDED,
    ROLLED_BACK,
    Call,
    StandInState,
)
from tillsight.connectors.salesforce.standin_state import json_response as _json
from tillsight.connectors.salesforce.standin_state import read_json as _body

Handler = Callable[[Request], Awaitable[Response]]
DATA = "/services/data/v{version}"


def create_app(state: StandInState) -> FastAPI:
    """Build the stand-in app around a state object the caller keeps."""
    app = FastAPI(title="Salesforce stand-in", openapi_url=None)
    app.state.standin = state

    @app.middleware("http")
    async def gate(request: Request, call_next: Handler) -> Response:
        if not request.url.path.startswith("/services/data/"):
            return await call_next(request)
        with state.lock:
            refusal = _refuse(state, request)
        response = refusal or await call_next(request)
        with state.lock:
            records = getattr(request.state, "records", 0)
            call = Call(request.method, request.url.path, response.status_code, records)
            state.calls.append(call)
            usage = f"api-usage={state.api_used}/{state.daily_limit}"
        response.headers["Sforce-Limit-Info"] = usage
        return response

    app.post("/services/oauth2/token")(_token_endpoint(state))
    _add_record_routes(app, state)
    standin_bulk.add_routes(app, state)
    return app


def _refuse(state: StandInState, request: Request) -> Response | None:
    """Answer as Salesforce does before a handler runs: 503, 401 or 403."""
    if state.fail_next_503 > 0:
        state.fail_next_503 -= 1
        return Response("Service Unavailable", 503, media_type="text/plain")
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if state.is_refusing_sessions or token not in state.tokens:
        return _json(EXPIRED_SESSION, 401)
    if state.expire_after is not None:
        if state.expire_after == 0:
            state.expire_after = None
            state.tokens.clear()
            return _json(EXPIRED_SESSION, 401)
        state.expire_after -= 1
    if state.api_used >= state.daily_limit:
        return _json(LIMIT_EXCEEDED, 403)
    state.api_used += 1
    return None


def _token_endpoint(state: StandInState) -> Handler:
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        with state.lock:
            error = _check_grant(state, form)
            if error is not None:
                return _json({"error": error[0], "error_description": error[1]}, 400)
            body = {
                "access_token": state.new_token(),
                "signature": "c3RhbmRpbi1zaWduYXR1cmU=",
                "scope": "api",
                "instance_url": state.instance_url,
                "id": "https://login.salesforce.com/id/00DSTANDIN/005STANDIN",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
            }
        return _json(body)

    return token


def _check_grant(state: StandInState, form: dict[str, str]) -> tuple[str, str] | None:
    grant = form.get("grant_type", "")
    if grant == "client_credentials":
        if form.get("client_id") != state.client_id or (
            form.get("client_secret") != state.client_secret
        ):
            return "invalid_client", "invalid client credentials"
        return None
    if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        state.assertions.append(form.get("assertion", ""))
        return _check_assertion(state, form.get("assertion", ""))
    return "unsupported_grant_type", "grant type not supported"


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _check_assertion(state: StandInState, assertion: str) -> tuple[str, str] | None:
    try:
        header, claims, signature = assertion.split(".")
        payload = json.loads(_unb64(claims))
        if state.public_key_pem is not None:
            key = serialization.load_pem_public_key(state.public_key_pem)
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(
                _unb64(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
    except (ValueError, InvalidSignature):
        return "invalid_grant", "invalid assertion"
    if payload.get("iss") != state.client_id:
        return "invalid_client_id", "client identifier invalid"
    if int(payload.get("exp", 0)) < time.time():
        return "invalid_grant", "expired authorization code"
    return None


def _add_record_routes(app: FastAPI, state: StandInState) -> None:
    @app.patch(DATA + "/composite/sobjects/{sobject}/{field_name}")
    async def upsert_collection(
        request: Request, version: str, sobject: str, field_name: str
    ) -> Response:
        body = await _body(request)
        records = body.get("records", [])
        request.state.records = len(records)
        if len(records) > 200:
            message = "record limit reached. cannot submit more than 200 records"
            return _json([{"message": message, "errorCode": "EXCEEDED_ID_LIMIT"}], 400)
        with state.lock:
            results = _upsert_all(
                state, sobject, field_name, records, bool(body.get("allOrNone"))
            )
        return _json(results)

    @app.patch(DATA + "/sobjects/{sobject}/{field_name}/{value}")
    async def upsert_one(
        request: Request, version: str, sobject: str, field_name: str, value: str
    ) -> Response:
        fields = await _body(request)
        request.state.records = 1
        with state.lock:
            ids, error = state.check_record(sobject, field_name, value, fields)
            if len(ids) > 1:
                urls = [
                    f"/services/data/v{version}/sobjects/{sobject}/{i}" for i in ids
                ]
                return _json(urls, 300)
            if error is not None:
                code = error["statusCode"]
                return _json([{**_error(error), "errorCode": code}], 400)
            rid, is_created = state.apply(sobject, field_name, value, fields)
        if not is_created:
            return Response(status_code=204)
        return _json({"id": rid, "errors": [], "success": True}, 201)

    @app.post(DATA + "/composite/sobjects")
    async def create_collection(request: Request, version: str) -> Response:
        records = (await _body(request)).get("records", [])
        request.state.records = len(records)
        with state.lock:
            results = [_create(state, record) for record in records]
        return _json(results)

    @app.get(DATA + "/limits")
    async def limits(version: str) -> Response:
        with state.lock:
            used, limit = state.api_used, state.daily_limit
        return _json({"DailyApiRequests": {"Max": limit, "Remaining": limit - used}})


def _error(error: dict[str, Any]) -> dict[str, Any]:
    return {"message": error["message"], "fields": error["fields"]}


def _upsert_all(
    state: StandInState,
    sobject: str,
    field_name: str,
    records: list[dict[str, Any]],
    all_or_none: bool,
) -> list[dict[str, Any]]:
    checks = []
    for record in records:
        fields = {
            k: v for k, v in record.items() if k not in ("attributes", field_name)
        }
        value = str(record.get(field_name, ""))
        ids, error = state.check_record(sobject, field_name, value, fields)
        checks.append((value, fields, ids, error))

    if all_or_none and any(error for *_, error in checks):
        return [
            {"id": ids[0] if ids else None, "success": False, "errors": [ROLLED_BACK]}
            if error is None
            else {"id": None, "success": False, "errors": [error]}
            for _, _, ids, error in checks
        ]
    results: list[dict[str, Any]] = []
    for value, fields, _, error in checks:
        if error is not None:
            results.append({"id": None, "success": False, "errors": [error]})
            continue
        rid, is_created = state.apply(sobject, field_name, value, fields)
        results.append(
            {"id": rid, "success": True, "errors": [], "created": is_created}
        )
    return results


def _create(state: StandInState, record: dict[str, Any]) -> dict[str, Any]:
    sobject = str(record.get("attributes", {}).get("type", ""))
    fields = {k: v for k, v in record.items() if k != "attributes"}
    rid = state.new_id(sobject)
    if sobject.endswith("__e"):
        state.events.append({"Id": rid, "type": sobject, **fields})
    else:
        state.objects.setdefault(sobject, {})[rid] = {"Id": rid, **fields}
    return {"id": rid, "success": True, "errors": []}


@dataclass
class RunningStandIn:
    """A stand-in served by uvicorn in a background thread."""

    state: StandInState
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Ask uvicorn to shut down and wait for the thread."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(state: StandInState) -> RunningStandIn:
    """Serve the stand-in on a free loopback port; ``state.instance_url`` is set."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    state.instance_url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        create_app(state), log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    return RunningStandIn(state, state.instance_url, server, thread)


def create_default_app() -> FastAPI:
    """Build an app with a fresh state (for ``uvicorn --factory``)."""
    state = StandInState(client_secret="standin-secret")
    state.instance_url = "http://127.0.0.1:8000"
    return create_app(state)
