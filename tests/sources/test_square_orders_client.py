"""SquareOrdersClient against a real HTTP server on 127.0.0.1.

The server answers with Square's documented bodies: the RetrieveOrder and
BatchRetrieveOrders examples from the API specification and the error bodies
from Square's SDK tests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tillsight.errors import NotFoundError, RateLimitedError, RemoteError
from tillsight.sources import SquareOrdersClient, square_to_events

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "square"
TOKEN = "EAAA-test-token-never-logged"
ORDER_ID = "CAISENgvlJ6jLWAzERDzjyHVybY"


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


ERRORS = _load("error_bodies_from_sdk_tests.json")


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclass
class FakeSquare:
    """Routes, and every request seen, of the local stand-in for Square."""

    base_url: str = ""
    routes: dict[tuple[str, str], Reply] = field(default_factory=dict)
    seen: list[dict[str, Any]] = field(default_factory=list)

    def answer(
        self, method: str, path: str, status: int, body: object, **kw: Any
    ) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.routes[(method, path)] = Reply(status, raw, **kw)


def _handler(square: FakeSquare) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def _reply(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            square.seen.append(
                {
                    "method": method,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "json": json.loads(body) if body else None,
                }
            )
            reply = square.routes.get((method, self.path), Reply(404, b""))
            time.sleep(reply.delay_seconds)
            # The client may have given up first, as the timeout test intends.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._write(reply)

        def _write(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def square() -> Iterator[FakeSquare]:
    fake = FakeSquare()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def client(square: FakeSquare) -> Iterator[SquareOrdersClient]:
    with SquareOrdersClient(square.base_url, TOKEN, timeout=2.0) as orders:
        yield orders


def test_retrieve_order_returns_the_documented_body(
    square: FakeSquare, client: SquareOrdersClient
) -> None:
    body = _load("RetrieveOrderResponse.json")
    square.answer("GET", f"/v2/orders/{ORDER_ID}", 200, body)

    answer = client.retrieve_order(ORDER_ID)

    assert answer == body
    (request,) = square.seen
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Square-Version"] == "2024-04-17"


def test_retrieve_order_plugs_into_the_square_adapter(
    square: FakeSquare, client: SquareOrdersClient
) -> None:
    body = _load("RetrieveOrderResponse.json")
    body["order"]["state"] = "COMPLETED"
    square.answer("GET", f"/v2/orders/{ORDER_ID}", 200, body)
    webhook = _load("OrderUpdatedEvent.json")
    webhook["data"]["object"]["order_updated"].update(
        order_id=ORDER_ID, state="COMPLETED"
    )

    (event,) = square_to_events(webhook, fetch_order=client.retrieve_order).events

    assert event.event_id == f"square:order:{ORDER_ID}"
    assert str(event.total) == "5.50"


def test_order_id_is_escaped_in_the_path(
    square: FakeSquare, client: SquareOrdersClient
) -> None:
    square.answer("GET", "/v2/orders/a%2Fb", 200, {"order": {"id": "a/b"}})

    assert client.retrieve_order("a/b") == {"order": {"id": "a/b"}}


def test_batch_retrieve_posts_the_ids_and_returns_the_orders(
    square: FakeSquare, client: SquareOrdersClient
) -> None:
    body = _load("BatchRetrieveOrdersResponse.json")
    square.answer("POST", "/v2/orders/batch-retrieve", 200, body)

    answer = client.batch_retrieve(["CAISEM82RcpmcFBM0TfOyiHV3es"], location_id="L1")

    assert answer == {"orders": body["orders"]}
    assert square.seen[0]["json"] == {
        "order_ids": ["CAISEM82RcpmcFBM0TfOyiHV3es"],
        "location_id": "L1",
    }


def test_batch_retrieve_splits_more_than_100_ids_into_requests(
    square: FakeSquare, client: SquareOrdersClient
) -> None:
    square.answer("POST", "/v2/orders/batch-retrieve", 200, {})
    ids = [f"order-{number}" for number in range(250)]

    answer = client.batch_retrieve(ids)

    assert answer == {"orders": []}
    assert [len(r["json"]["order_ids"]) for r in square.seen] == [100, 100, 50]


def test_batch_retrieve_of_no_ids_sends_nothing(
    square: FakeSquare, client: SquareOrdersClient
) -> None:
    assert client.batch_retrieve([]) == {"orders": []}
    assert square.seen == []


NOT_FOUND = {
    "errors": [
        {
            "category": "INVALID_REQUEST_ERROR",
            "code": "NOT_FOUND",
            "detail": "Order not found",
        }
    ]
}
RATE_LIMITED = {"errors": [{"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED"}]}


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "words"),
    [
        (404, NOT_FOUND, {}, NotFoundError, ["404", "NOT_FOUND", "Order not found"]),
        (
            429,
            RATE_LIMITED,
            {"Retry-After": "7"},
            RateLimitedError,
            ["429", "RATE_LIMITED", "retry after 7 s"],
        ),
        (
            400,
            ERRORS["v2_error_body_status_400"].encode(),
            {},
            RemoteError,
            ["400", "BAD_REQUEST", "Invalid input", "field email"],
        ),
        (
            401,
            ERRORS["v2_multiple_errors"],
            {},
            RemoteError,
            ["BAD_REQUEST", "AUTHENTICATION_ERROR UNAUTHORIZED Not authorized"],
        ),
        (
            400,
            ERRORS["v1_error_body_status_400"].encode(),
            {},
            RemoteError,
            ["INVALID_REQUEST Invalid field value", "field customer_id"],
        ),
        (
            400,
            ERRORS["v1_error_body_without_type"].encode(),
            {},
            RemoteError,
            ["Invalid field value"],
        ),
        (400, b"", {}, RemoteError, ["no JSON error body"]),
        (503, b"<html>busy</html>", {}, RemoteError, ["503"]),
    ],
)
def test_error_answers_become_tillsight_errors(
    square: FakeSquare,
    client: SquareOrdersClient,
    status: int,
    body: object,
    headers: dict[str, str],
    error: type[Exception],
    words: list[str],
) -> None:
    square.answer("GET", f"/v2/orders/{ORDER_ID}", status, body, headers=headers)

    with pytest.raises(error) as caught:
        client.retrieve_order(ORDER_ID)

    message = str(caught.value)
    assert all(word in message for word in words), message
    assert TOKEN not in message
    if isinstance(caught.value, RemoteError):
        assert caught.value.status == status
    if isinstance(caught.value, RateLimitedError):
        assert caught.value.retry_after_s == float(headers["Retry-After"])


def test_success_body_that_is_not_json_is_a_remote_error(
    square: FakeSquare, client: SquareOrdersClient
) -> None:
    square.answer("GET", f"/v2/orders/{ORDER_ID}", 200, b"not json")

    with pytest.raises(RemoteError, match="not JSON"):
        client.retrieve_order(ORDER_ID)


def test_slow_answer_times_out_as_a_remote_error(square: FakeSquare) -> None:
    square.answer("GET", f"/v2/orders/{ORDER_ID}", 200, {}, delay_seconds=0.5)

    slow = SquareOrdersClient(square.base_url, TOKEN, timeout=0.1)

    with slow, pytest.raises(RemoteError, match="timed out"):
        slow.retrieve_order(ORDER_ID)


def test_refused_connection_is_a_remote_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    gone = SquareOrdersClient(f"http://127.0.0.1:{port}", TOKEN, timeout=1.0)

    with gone, pytest.raises(RemoteError, match="ConnectError"):
        gone.retrieve_order(ORDER_ID)
