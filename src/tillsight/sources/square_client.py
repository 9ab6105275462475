"""A small client for the two Square Orders calls the webhook adapter needs.

Contract:

- ``retrieve_order(order_id)`` sends ``GET /v2/orders/{order_id}`` and returns
  the RetrieveOrder body, ``{"order": {...}}``, unchanged. It fits
  ``square_to_events(..., fetch_order=client.retrieve_order)``.
- ``batch_retrieve(order_ids)`` sends ``POST /v2/orders/batch-retrieve`` in
  chunks of 100 ids (Square's limit) and returns ``{"orders": [...]}`` with the
  orders of every chunk; Square leaves out ids it does not know.
- Every request carries ``Authorization: Bearer <token>`` and the pinned
  ``Square-Version``. The token never appears in an error or a log.
- Failures become tillsight errors: 404 ``NotFoundError``, 429
  ``RateLimitedError`` (its message gives ``Retry-After`` when Square sends it),
  any other non-2xx, a body that is not JSON, a timeout or a refused connection
  ``RemoteError`` with the HTTP status when there is one. Messages quote
  Square's error codes and details (both the v2 ``errors`` list and the legacy
  v1 ``{type, message}`` body). The client does not retry; the caller decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from tillsight.errors import NotFoundError, RateLimitedError, RemoteError

__all__ = ["DEFAULT_SQUARE_VERSION", "SquareOrdersClient"]

DEFAULT_SQUARE_VERSION = "2024-04-17"
_BATCH_LIMIT = 100


class SquareOrdersClient:
    """Fetch full orders from Square's Orders API."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        timeout: float = 10.0,
        *,
        square_version: str = DEFAULT_SQUARE_VERSION,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {access_token}",
                "Square-Version": square_version,
                "Accept": "application/json",
            },
        )

    def retrieve_order(self, order_id: str) -> dict[str, Any]:
        """Return the RetrieveOrder body for one order."""
        return self._send("GET", f"/v2/orders/{quote(order_id, safe='')}", None)

    def batch_retrieve(
        self, order_ids: Sequence[str], *, location_id: str | None = None
    ) -> dict[str, Any]:
        """Return ``{"orders": [...]}`` for the ids Square knows."""
        orders: list[Any] = []
        for start in range(0, len(order_ids), _BATCH_LIMIT):
            request: dict[str, Any] = {
                "order_ids": list(order_ids[start : start + _BATCH_LIMIT])
            }
            if location_id is not None:
                request["location_id"] = location_id
            body = self._send("POST", "/v2/orders/batch-retrieve", request)
            orders.extend(body.get("orders") or [])
        return {"orders": orders}

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> SquareOrdersClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(
        self, method: str, path: str, request: dict[str, Any] | None
    ) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, json=request)
        except httpx.TimeoutException as exc:
            raise RemoteError(f"Square {method} {path} timed out") from exc
        except httpx.TransportError as exc:
            raise RemoteError(
                f"Square {method} {path} failed: {type(exc).__name__}"
            ) from exc

        if response.is_success:
            return _json_object(response, f"Square {method} {path}")
        raise _error(response, f"Square {method} {path}")


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise RemoteError(
            f"{what} answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
        ) from exc
    if not isinstance(body, dict):
        raise RemoteError(
            f"{what} answered {response.status_code} with JSON that is not an object",
            status=response.status_code,
        )
    return body


def _error(response: httpx.Response, what: str) -> Exception:
    status = response.status_code
    message = f"{what} answered {status}: {_describe(response)}"
    if status == 404:
        return NotFoundError(message)
    if status == 429:
        wait = _retry_after(response)
        hint = f"; retry after {wait:g} s" if wait is not None else ""
        return RateLimitedError(message + hint, status=status, retry_after_s=wait)
    return RemoteError(message, status=status)


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no JSON error body"
    if not isinstance(body, dict):
        return "no JSON error body"

    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(_describe_v2(entry) for entry in errors)
    if "message" in body:
        kind = body.get("type") or "ERROR"
        field = f" (field {body['field']})" if body.get("field") else ""
        return f"{kind} {body['message']}{field}"
    return "no Square error in the body"


def _describe_v2(entry: object) -> str:
    if not isinstance(entry, dict):
        return "unreadable error entry"
    parts = [str(entry.get("category") or "ERROR"), str(entry.get("code") or "")]
    text = " ".join(part for part in parts if part)
    if entry.get("detail"):
        text += f" {entry['detail']}"
    if entry.get("field"):
        text += f" (field {entry['field']})"
    return text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
