"""The access log names routes, never the ids, emails or codes in a path."""

from __future__ import annotations

from fastapi.testclient import TestClient
from structlog.testing import capture_logs


def test_access_log_names_the_route_template_not_the_path(client: TestClient) -> None:
    with capture_logs() as logs:
        client.get("/v1/customers/ann@example.test")
        client.get("/v1/rewards/YMED-PEDW-UTK7")
        client.get("/nothing/here/ann@example.test")

    handled = [entry for entry in logs if entry["event"] == "request_handled"]
    text = repr(logs)
    assert [entry["route"] for entry in handled] == [
        "/v1/customers/{customer_id}",
        "/v1/rewards/{code}",
        "(no route)",
    ]
    assert "ann@example.test" not in text and "YMED" not in text
