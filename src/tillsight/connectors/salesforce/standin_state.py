"""The memory of the Salesforce stand-in: records, sessions, limits, faults, calls.

Kept apart from the HTTP app so that tests can arrange faults and read what
arrived without going through HTTP. Bodies follow Salesforce's documentation and
the fixtures in ``tests/fixtures/salesforce`` (a test holds them equal).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fastapi import Request, Response

EXPIRED_SESSION = [
    {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
]
LIMIT_EXCEEDED = [
    {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
]
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the "
    "request was using AllOrNone header",
    "fields": [],
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_FIELDS = ("Email", "PersonEmail")
ID_PREFIXES = {"Contact": "003", "Account": "001"}


def json_response(body: Any, status: int = 200) -> Response:
    """Answer with JSON as Salesforce does, keeping non-ASCII text as it is."""
    text = json.dumps(body, ensure_ascii=False, default=str)
    return Response(text, status, media_type="application/json;charset=UTF-8")


async def read_json(request: Request) -> Any:
    """Read a JSON body; decimals stay exact, as Salesforce keeps them."""
    return json.loads(await request.body(), parse_float=Decimal)


def rows_to_csv(rows: list[dict[str, str]], columns: list[str]) -> str:
    """Write result rows as CSV with the given header."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class Call:
    """One request the stand-in answered."""

    method: str
    path: str
    status: int
    records: int = 0


@dataclass(slots=True)
class BulkJob:
    """A Bulk API 2.0 ingest job and what became of its rows."""

    info: dict[str, Any]
    data: str = ""
    columns: list[str] = field(default_factory=list)
    polls_left: int = 1
    successful: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    unprocessed: list[dict[str, str]] = field(default_factory=list)


class StandInState:
    """Everything the stand-in remembers; thread-safe behind one lock."""

    def __init__(
        self, *, client_id: str = "test-client", client_secret: str = ""
    ) -> None:
        self.lock = threading.RLock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.public_key_pem: bytes | None = None
        self.instance_url = ""
        self.reset()

    def reset(self) -> None:
        """Forget every record, call, session and fault."""
        with self.lock:
            self.objects: dict[str, dict[str, dict[str, Any]]] = {}
            self.events: list[dict[str, Any]] = []
            self.writes: Counter[str] = Counter()
            self.calls: list[Call] = []
            self.assertions: list[str] = []
            self.tokens: set[str] = set()
            self.jobs: dict[str, BulkJob] = {}
            self.api_used = 0
            self.daily_limit = 15_000
            self.expire_after: int | None = None
            self.is_refusing_sessions = False
            self.fail_next_503 = 0
            self.locked_keys: set[str] = set()
            self.unprocessed_tail = 0
            self._ids = itertools.count(1)

    def new_id(self, sobject: str) -> str:
        """Mint an 18-character record id with the object's key prefix."""
        prefix = ID_PREFIXES.get(sobject, "e00" if sobject.endswith("__e") else "a00")
        return f"{prefix}{next(self._ids):012d}AAA"

    def new_token(self) -> str:
        """Open a session and return its access token."""
        token = "00DSTANDIN!" + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return token

    def expire_session_after(self, calls: int) -> None:
        """Let ``calls`` more API calls through, then expire every open session."""
        self.expire_after = calls

    def count(self, method: str | None = None, contains: str = "") -> int:
        """Count the API calls answered, optionally by method and path fragment."""
        return sum(
            1
            for call in self.calls
            if (method is None or call.method == method) and contains in call.path
        )

    def matches(self, sobject: str, field_name: str, value: str) -> list[str]:
        """Return the ids of the records whose ``field_name`` equals ``value``."""
        rows = self.objects.get(sobject, {})
        return [rid for rid, row in rows.items() if row.get(field_name) == value]

    def record(self, sobject: str, field_name: str, value: str) -> dict[str, Any]:
        """Return the one record with this external id (tests' assertion helper)."""
        ids = self.matches(sobject, field_name, value)
        if len(ids) != 1:
            raise LookupError(f"{len(ids)} {sobject} records have {field_name}={value}")
        return self.objects[sobject][ids[0]]

    def seed(self, sobject: str, fields: dict[str, Any]) -> str:
        """Insert a record directly, as if someone had typed it in the CRM."""
        rid = self.new_id(sobject)
        self.objects.setdefault(sobject, {})[rid] = {"Id": rid, **fields}
        return rid

    def check_record(
        self, sobject: str, field_name: str, value: str, fields: dict[str, Any]
    ) -> tuple[list[str], dict[str, Any] | None]:
        """Return the matching ids and the error Salesforce would give, if any."""
        ids = self.matches(sobject, field_name, value)
        for name in EMAIL_FIELDS:
            email = fields.get(name)
            if email is not None and not EMAIL.match(str(email)):
                return ids, {
                    "statusCode": "INVALID_EMAIL_ADDRESS",
                    "message": f"{name}: invalid email address: {email}",
                    "fields": [name],
                }
        if len(ids) > 1:
            return ids, {
                "statusCode": "DUPLICATE_EXTERNAL_ID",
                "message": f"{field_name}: more than one record found for external "
                f"id field: [{', '.join(ids)}]",
                "fields": [],
            }
        if value in self.locked_keys:
            self.locked_keys.discard(value)
            return ids, {
                "statusCode": "UNABLE_TO_LOCK_ROW",
                "message": "unable to obtain exclusive access to this record",
                "fields": [],
            }
        return ids, None

    def apply(
        self, sobject: str, field_name: str, value: str, fields: dict[str, Any]
    ) -> tuple[str, bool]:
        """Upsert one record by external id; return its id and whether it is new."""
        ids = self.matches(sobject, field_name, value)
        self.writes[value] += 1
        if ids:
            self.objects[sobject][ids[0]].update(fields)
            return ids[0], False
        rid = self.new_id(sobject)
        row = {"Id": rid, field_name: value, **fields}
        self.objects.setdefault(sobject, {})[rid] = row
        return rid, True
