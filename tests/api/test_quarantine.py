"""Nothing lost: each kind of bad input waits in the quarantine, then retries."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.test_events import purchase
from tillsight.live.service import LiveService

BAD_BODIES = {
    "bad_json": b'{"event_id": "E1", ',
    "invalid_event": json.dumps(purchase(type="sale")).encode(),
    "missing_fields": json.dumps({"event_id": "E1"}).encode(),
    "unsupported_currency": json.dumps(purchase(currency="USD")).encode(),
}
REASONS = {
    "bad_json": "bad_json",
    "invalid_event": "invalid_event",
    "missing_fields": "invalid_event",
    "unsupported_currency": "unsupported_currency",
}


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_bad_body_is_kept_then_retried_after_a_fix(
    client: TestClient, service: LiveService, kind: str
) -> None:
    response = client.post("/v1/events", content=BAD_BODIES[kind])
    entry_id = response.json()["quarantine_id"]
    entry = service.quarantine.get(entry_id)

    result = service.receiver.retry(entry_id, json.dumps(purchase()).encode())

    assert response.status_code == 422
    assert (entry.reason, entry.body) == (REASONS[kind], BAD_BODIES[kind])
    assert result.receipts[0].stage == "new"
    assert service.quarantine.get(entry_id).status == "resolved"
    assert service.quarantine.entries() == []


def test_ten_megabyte_body_is_refused_and_kept(
    client: TestClient, service: LiveService
) -> None:
    body = b'{"padding": "' + b"x" * (10 * 1024 * 1024) + b'"}'

    response = client.post("/v1/events", content=body)

    assert response.status_code == 413
    entry = service.quarantine.get(response.json()["quarantine_id"])
    assert (entry.reason, entry.body_bytes, entry.body) == (
        "too_large",
        len(body),
        body,
    )


def test_retry_that_fails_again_keeps_waiting_with_the_new_reason(
    client: TestClient, service: LiveService
) -> None:
    entry_id = client.post("/v1/events", content=b"not json").json()["quarantine_id"]

    with pytest.raises(Exception, match="currency"):
        service.receiver.retry(entry_id, json.dumps(purchase(currency="EUR")).encode())

    entry = service.quarantine.get(entry_id)
    assert (entry.status, entry.reason) == ("waiting", "unsupported_currency")
    assert len(service.quarantine.entries()) == 1


def test_retry_of_a_kept_event_that_arrived_meanwhile_is_duplicate(
    client: TestClient, service: LiveService
) -> None:
    entry_id = client.post("/v1/events", content=b"{").json()["quarantine_id"]
    client.post("/v1/events", json=purchase())

    result = service.receiver.retry(entry_id, json.dumps(purchase()).encode())

    assert result.receipts[0].status == "duplicate"


def test_a_kept_body_is_sealed_in_the_database(
    client: TestClient, service: LiveService
) -> None:
    from sqlalchemy import select

    from tillsight.live.tables import quarantine

    body = json.dumps(
        purchase(currency="USD") | {"customer": {"email": "ann@example.test"}}
    ).encode()

    entry_id = client.post("/v1/events", content=body).json()["quarantine_id"]

    with service.store.read() as conn:
        stored = bytes(
            conn.execute(
                select(quarantine.c.body).where(quarantine.c.id == entry_id)
            ).scalar_one()
        )
    assert b"ann@example.test" not in stored
    assert service.quarantine.get(entry_id).body == body


def test_a_known_event_id_with_other_content_waits_in_quarantine(
    client: TestClient, service: LiveService
) -> None:
    client.post("/v1/events", json=purchase())

    response = client.post(
        "/v1/events",
        json=purchase(
            total="99.00", lines=[{"sku": "A", "quantity": 1, "unit_price": "99.00"}]
        ),
    )
    repeat = client.post("/v1/events", json=purchase())

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["event_id"]
    assert service.quarantine.get(response.json()["quarantine_id"]).body
    assert repeat.status_code == 200 and repeat.json()["status"] == "duplicate"


def test_a_batch_with_a_clash_is_kept_whole_and_stores_none_of_it(
    client: TestClient, service: LiveService
) -> None:
    client.post("/v1/events", json=purchase())
    changed = purchase(total="99.00")
    changed["lines"] = [{"sku": "A", "quantity": 1, "unit_price": "99.00"}]

    response = client.post("/v1/events", json=[purchase("E2"), changed])
    later = client.post("/v1/events", json=purchase("E2"))

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["[1].event_id"]
    assert service.quarantine.get(response.json()["quarantine_id"]).body
    # E2 came in the refused batch, so it was not stored: now it is new.
    assert later.status_code == 202


def test_one_id_twice_in_a_batch_with_other_content_is_refused(
    client: TestClient,
) -> None:
    changed = purchase(total="99.00")
    changed["lines"] = [{"sku": "A", "quantity": 1, "unit_price": "99.00"}]

    response = client.post("/v1/events", json=[purchase(), changed])
    same_twice = client.post("/v1/events", json=[purchase("E3"), purchase("E3")])

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["[1].event_id"]
    assert [e["status"] for e in same_twice.json()["events"]] == [
        "accepted",
        "duplicate",
    ]


def test_an_event_dated_past_tomorrow_waits_in_quarantine(client: TestClient) -> None:
    response = client.post(
        "/v1/events", json=purchase(occurred_at="2101-01-05T10:00:00+00:00")
    )

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["occurred_at"]


def test_quarantine_show_writes_a_hostile_body_escaped(
    client: TestClient, db_url: str
) -> None:
    from typer.testing import CliRunner

    from tillsight.cli import app

    body = b'{"event_id": "\x1b]0;owned\x07\x1b[2J", '
    entry_id = client.post("/v1/events", content=body).json()["quarantine_id"]

    shown = CliRunner().invoke(
        app, ["quarantine", "show", str(entry_id), "--db", db_url]
    )
    raw = CliRunner().invoke(
        app, ["quarantine", "show", str(entry_id), "--body", "--db", db_url]
    )

    assert shown.exit_code == 0, shown.output
    assert "\\x1b]0;owned\\x07\\x1b[2J" in shown.output
    assert "\x1b" not in shown.output
    assert raw.stdout_bytes == body  # --body gives the bytes back to edit


def test_a_delivery_sent_again_refreshes_its_entry_unless_the_body_differs(
    service: LiveService,
) -> None:
    from tillsight.live.quarantine import Origin

    origin = Origin("square", "refund.created", "evt-1")
    now = service.ingestor.clock()

    def keep(body: bytes) -> int:
        return service.quarantine.keep(origin, "invalid_webhook", [], body, now=now)

    first = keep(b'{"type": "refund.created"}')
    retried = keep(b'{"type": "refund.created"}')
    other = keep(b'{"type": "refund.updated"}')

    assert first == retried != other
    assert service.quarantine.get(first).body == b'{"type": "refund.created"}'
    assert service.quarantine.get(other).body == b'{"type": "refund.updated"}'
