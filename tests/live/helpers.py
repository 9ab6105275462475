"""Building live services, programmes and signed requests for tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from tillsight.core.programme import Programme
from tillsight.live.ingest import Clock, wall_clock
from tillsight.live.service import LiveService
from tillsight.live.settings import Settings
from tillsight.live.store import LiveStore
from tillsight.programme_file import parse_programme

SQUARE_KEY = "square-signature-key"
SHOPIFY_SECRET = "shopify-webhook-secret"
SQUARE_EXAMPLES = Path("/work/shared/data/square/examples")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def programme(currency: str = "GBP") -> Programme:
    """The default programme, counting in ``currency``."""
    text = resources.files("tillsight.programmes").joinpath("default.yaml")
    source = text.read_text(encoding="utf-8").replace(
        "currency: GBP", f"currency: {currency}"
    )
    return parse_programme(source)


def settings(**changes: Any) -> Settings:
    """Test settings: both webhook secrets set, timers off unless asked."""
    base = Settings(
        square_signature_key=SQUARE_KEY,
        shopify_secret=SHOPIFY_SECRET,
        run_timers=False,
        max_body_bytes=64 * 1024,
    )
    return replace(base, **changes)


def service(
    url: str, currency: str = "GBP", clock: Clock = wall_clock, **changes: Any
) -> LiveService:
    """A live service on a fresh store."""
    return LiveService(
        LiveStore.open(url), programme(currency), settings(**changes), clock=clock
    )


def square_signature(url: str, body: bytes, key: str = SQUARE_KEY) -> str:
    """Square's header for ``body`` sent to ``url``."""
    digest = hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def shopify_signature(body: bytes, secret: str = SHOPIFY_SECRET) -> str:
    """Shopify's header for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def read_json(path: Path) -> Any:
    """A JSON fixture."""
    return json.loads(path.read_bytes())


def completed_payment(customer_id: str = "SQCUST1") -> dict[str, Any]:
    """Square's documented payment.updated sample, paid by a known customer."""
    payload: dict[str, Any] = read_json(
        FIXTURES / "square" / "PaymentUpdatedEvent.json"
    )
    payload["data"]["object"]["payment"]["customer_id"] = customer_id
    return payload


class FixedClock:
    """A clock a test moves by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def square_orders_server(customer_id: str | None = None) -> Iterator[str]:
    """A local Square Orders API answering Square's documented RetrieveOrder body.

    The order's id is the one asked for, so that any payment sample finds it.
    """
    document = read_json(SQUARE_EXAMPLES / "RetrieveOrderResponse.json")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            order_id = self.path.rsplit("/", 1)[-1]
            order = dict(document["order"], id=order_id)
            if customer_id is not None:
                order["customer_id"] = customer_id
            body = json.dumps({"order": order}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
