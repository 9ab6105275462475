"""An HTTP client for Salesforce's REST API that knows how Salesforce fails.

What it does on each answer:

- 401 ``INVALID_SESSION_ID``: log in once and send the request again; a second
  401 straight after the fresh login raises ``AuthError`` (no login loop).
- 403 ``REQUEST_LIMIT_EXCEEDED``: raise ``RateLimitedError`` at once; neither
  retried nor re-authenticated, because the limit is a daily one.
- 503 or a dropped connection: wait and send again, a bounded number of times.
- any other error status: ``RemoteError`` with Salesforce's code and message.

Every answer's ``Sforce-Limit-Info`` header is read, and a warning is logged the
first time the org's daily usage crosses each configured ratio.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from tillsight.connectors.salesforce.auth import Token, TokenSource
from tillsight.connectors.salesforce.config import SalesforceSettings
from tillsight.connectors.salesforce.profiles import Record, dumps_exact
from tillsight.errors import AuthError, RateLimitedError, RemoteError

log = structlog.get_logger("tillsight.salesforce")

LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class RecordError:
    """One error Salesforce gave for one record."""

    code: str
    message: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What Salesforce did with one record of a request, in request order."""

    is_success: bool
    sf_id: str | None = None
    is_created: bool | None = None
    errors: tuple[RecordError, ...] = ()
    matches: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        """Return the first error code, or an empty string on success."""
        return self.errors[0].code if self.errors else ""


def parse_errors(body: Any) -> tuple[RecordError, ...]:
    """Read Salesforce's error body: a list (or one object) of code and message.

    Top-level errors name the code ``errorCode``; per-record errors inside
    sObject Collections results name it ``statusCode``.
    """
    items = body if isinstance(body, list) else [body]
    return tuple(
        RecordError(
            code=str(item.get("errorCode") or item.get("statusCode") or "UNKNOWN"),
            message=str(item.get("message", "")),
            fields=tuple(item.get("fields") or ()),
        )
        for item in items
        if isinstance(item, dict)
    )


def parse_results(body: Any) -> list[RecordResult]:
    """Read a list of SaveResult or UpsertResult objects."""
    if not isinstance(body, list):
        raise RemoteError(f"Salesforce answered with an unexpected body: {body!r:.200}")
    return [
        RecordResult(
            is_success=bool(item.get("success")),
            sf_id=item.get("id"),
            is_created=item.get("created"),
            errors=parse_errors(item.get("errors") or []),
        )
        for item in body
    ]


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class SalesforceClient:
    """A logged-in connection to one org; counts the calls it makes."""

    def __init__(
        self,
        settings: SalesforceSettings,
        tokens: TokenSource,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.calls = 0
        self.api_usage: tuple[int, int] | None = None
        self._tokens = tokens
        self._http = http or httpx.Client(timeout=settings.timeout_s)
        self._sleep = sleep
        self._token: Token | None = None
        self._warned: set[float] = set()

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._http.close()

    def login(self) -> Token:
        """Log in now, replacing any session held."""
        self._token = self._tokens.fetch(self._http)
        log.info("salesforce_logged_in")
        return self._token

    def wait(self, delay_s: float) -> None:
        """Wait before a retry, with the sleep given at construction (tests: none)."""
        log.info("salesforce_retry_wait", delay_s=delay_s)
        self._sleep(delay_s)

    def data_path(self, path: str) -> str:
        """Return the versioned REST path of a resource."""
        return f"/services/data/v{self.settings.api_version}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        passthrough: Sequence[int] = (),
    ) -> httpx.Response:
        """Send one REST call, handling session expiry, limits and 503s.

        Statuses in ``passthrough`` come back to the caller instead of raising.
        """
        if body is not None:
            content = dumps_exact(body).encode("utf-8")
        token = self._token or self.login()
        headers = {"Content-Type": content_type, "Accept": accept}
        response = self._send(method, path, token, content, headers)
        if self._is_invalid_session(response):
            log.info("salesforce_session_expired")
            token = self.login()
            response = self._send(method, path, token, content, headers)
            if self._is_invalid_session(response):
                log.error("salesforce_session_refused_after_login", path=path)
                raise AuthError(
                    "Salesforce refused a session straight after a fresh login; "
                    "check the connected app's policies and the user's access"
                )

        self._raise_for_status(response, passthrough)
        return response

    def _send(
        self,
        method: str,
        path: str,
        token: Token,
        content: bytes | None,
        extra_headers: dict[str, str],
    ) -> httpx.Response:
        url = token.instance_url.rstrip("/") + path
        headers = {"Authorization": f"Bearer {token.access_token}", **extra_headers}
        attempts = self.settings.http_retries + 1
        for attempt in range(attempts):
            is_last = attempt == attempts - 1
            try:
                self.calls += 1
                response = self._http.request(
                    method, url, content=content, headers=headers
                )
            except httpx.TransportError as exc:
                if is_last:
                    raise RemoteError(f"{method} {path} failed: {exc}") from exc
                self._back_off(attempt, f"transport:{type(exc).__name__}")
                continue
            self._watch_limits(response)
            if response.status_code not in RETRY_STATUSES or is_last:
                return response
            self._back_off(attempt, f"http_{response.status_code}")
        raise AssertionError("unreachable: the last attempt always returns")

    def _back_off(self, attempt: int, reason: str) -> None:
        delay_s = self.settings.backoff_s * (2**attempt)
        log.warning("salesforce_backing_off", reason=reason, delay_s=delay_s)
        self.wait(delay_s)

    @staticmethod
    def _is_invalid_session(response: httpx.Response) -> bool:
        if response.status_code != 401:
            return False
        codes = {e.code for e in parse_errors(_json_body(response))}
        return not codes or "INVALID_SESSION_ID" in codes

    def _raise_for_status(
        self, response: httpx.Response, passthrough: Sequence[int]
    ) -> None:
        status = response.status_code
        if status < 300 or status in passthrough:
            return
        errors = parse_errors(_json_body(response))
        codes = {e.code for e in errors}
        summary = "; ".join(f"{e.code}: {e.message}" for e in errors) or response.text
        if status == 403 and "REQUEST_LIMIT_EXCEEDED" in codes:
            log.warning("salesforce_request_limit_exceeded", usage=self.api_usage)
            raise RateLimitedError(
                f"Salesforce's daily API request limit is used up ({summary}); "
                "resume after the limit resets",
                status=status,
            )
        raise RemoteError(f"Salesforce answered {status}: {summary}", status=status)

    def _watch_limits(self, response: httpx.Response) -> None:
        match = LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match is None:
            return
        used, limit = int(match[1]), int(match[2])
        self.api_usage = (used, limit)
        for ratio in sorted(self.settings.limit_warn_ratios):
            if limit and used / limit >= ratio and ratio not in self._warned:
                self._warned.add(ratio)
                log.warning(
                    "salesforce_api_usage_high", used=used, limit=limit, ratio=ratio
                )

    def upsert_collection(
        self, records: Sequence[Record], *, all_or_none: bool
    ) -> list[RecordResult]:
        """Upsert up to 200 records by the external id (sObject Collections)."""
        settings = self.settings
        path = self.data_path(
            f"composite/sobjects/{settings.object}/{settings.external_id_field}"
        )
        body = {
            "allOrNone": all_or_none,
            "records": [
                {"attributes": {"type": settings.object}, **record}
                for record in records
            ],
        }
        response = self.request("PATCH", path, body=body)
        return parse_results(_json_body(response))

    def upsert_one(self, record: Record) -> RecordResult:
        """Upsert one record by the external id; a 300 lists the many matches."""
        settings = self.settings
        key = record[settings.external_id_field]
        fields = {k: v for k, v in record.items() if k != settings.external_id_field}
        path = self.data_path(
            f"sobjects/{settings.object}/{settings.external_id_field}/{key}"
        )
        response = self.request("PATCH", path, body=fields, passthrough=(300, 400))
        body = _json_body(response)
        if response.status_code == 300:
            matches = tuple(str(url) for url in body or ())
            error = RecordError("MULTIPLE_MATCHES", "the external id matches records")
            return RecordResult(False, errors=(error,), matches=matches)
        if response.status_code == 400:
            return RecordResult(False, errors=parse_errors(body))
        if response.status_code == 204 or not body:
            return RecordResult(True, is_created=False)
        created = body.get("created", response.status_code == 201)
        return RecordResult(True, sf_id=body.get("id"), is_created=created)

    def create_collection(self, records: Sequence[Record]) -> list[RecordResult]:
        """Create up to 200 records, each carrying its own ``attributes.type``."""
        body = {"allOrNone": False, "records": list(records)}
        response = self.request("POST", self.data_path("composite/sobjects"), body=body)
        return parse_results(_json_body(response))

    def limits(self) -> dict[str, Any]:
        """Return the org's limits (``DailyApiRequests`` and the rest)."""
        body = _json_body(self.request("GET", self.data_path("limits")))
        return body if isinstance(body, dict) else {}
