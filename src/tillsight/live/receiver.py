"""From a request body to events, or to the quarantine.

The receiver knows nothing of HTTP: it takes raw bytes and the headers that
matter and either ingests events (answering with receipts) or keeps the body
in the quarantine and raises :class:`QuarantinedError`. Webhook signatures
are checked on the raw bytes before anything is parsed; a bad signature
raises ``AuthError`` and changes nothing (the body is neither kept nor
logged). A retry from the quarantine runs the same path without the
signature check (it passed when the body was kept) and updates its entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

import structlog

from tillsight import jsontext
from tillsight.core.events import Event
from tillsight.errors import (
    BodyTooLargeError,
    ConflictError,
    FetchFailedError,
    InputError,
    QuarantinedError,
    RemoteError,
)
from tillsight.ingest.canonical import parse_canonical, to_event
from tillsight.ingest.sanity import column_size, text_problem
from tillsight.live.ingest import CHANGED, Delivery, Ingestor, Receipt
from tillsight.live.quarantine import WAITING, Origin, Quarantine
from tillsight.live.settings import Settings
from tillsight.live.tables import quarantine, webhook_deliveries
from tillsight.sources import (
    OrderFetcher,
    shopify_to_events,
    square_to_events,
    verify_shopify,
    verify_square,
)
from tillsight.sources._payload import AdapterResult

log = structlog.get_logger("tillsight.live")

T = TypeVar("T")

# Python's JSON reader, and whatever walks what it read, recurse once per
# level and give up near 1,000 levels.
_TOO_DEEP = (
    "(body)",
    "is nested too deeply to read: a POS event is only a few levels deep",
)
_SHOPIFY_HEADERS = ("X-Shopify-Topic", "X-Shopify-Webhook-Id")
# Both the quarantine and the deliveries table keep a webhook's topic and id.
_TOPIC = min(map(column_size, (quarantine.c.topic, webhook_deliveries.c.topic)))
_DELIVERY_ID = min(
    map(column_size, (quarantine.c.delivery_id, webhook_deliveries.c.delivery_id))
)


@dataclass(frozen=True, slots=True)
class Result:
    """What a request became: receipts, or why a valid delivery was ignored."""

    receipts: list[Receipt] = field(default_factory=list)
    is_batch: bool = False
    ignored_reason: str | None = None
    quarantined: QuarantinedError | None = None


class Receiver:
    """Turns canonical bodies and POS webhooks into ingested events."""

    def __init__(
        self,
        ingestor: Ingestor,
        quarantine: Quarantine,
        settings: Settings,
        fetch_order: OrderFetcher | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.quarantine = quarantine
        self.settings = settings
        self._fetch_order = fetch_order
        self._zone = ingestor.programme.zone

    def canonical(self, body: bytes, origin: Origin | None = None) -> Result:
        """Ingest one canonical event (a JSON object) or a batch (a list)."""
        origin = origin or Origin("api")
        data = self._decode(body, origin, parse_float=Decimal)
        is_batch = isinstance(data, list)
        items = data if is_batch else [data]
        receipts = self._guard(
            origin,
            body,
            lambda: self.ingestor.ingest(
                self._canonical(items, is_batch), indexed=is_batch
            ),
        )
        return Result(receipts, is_batch)

    async def canonical_async(self, body: bytes) -> Result:
        """:meth:`canonical` for a coroutine: reads on the loop, writes apart.

        A body that cannot be read is handed to :meth:`canonical` in a
        thread, which reads it again and keeps it in the quarantine (a write
        that must not hold up the event loop).
        """
        try:
            data = jsontext.loads(body, parse_float=Decimal)
            is_batch = isinstance(data, list)
            events = self._canonical(data if is_batch else [data], is_batch)
        except (ValueError, UnicodeDecodeError, RecursionError, InputError):
            return await asyncio.to_thread(self.canonical, body)
        try:
            receipts = await self.ingestor.ingest_async(events, indexed=is_batch)
        except InputError as exc:
            await asyncio.to_thread(
                self._keep,
                Origin("api"),
                body,
                _reason(exc, "invalid_event"),
                exc.errors,
            )
        return Result(receipts, is_batch)

    def square(self, body: bytes, signature: str | None, url: str) -> Result:
        """Verify and ingest a Square webhook delivery."""
        self.verify_square(body, signature, url)
        return self.square_verified(body)

    def verify_square(self, body: bytes, signature: str | None, url: str) -> None:
        """Check a Square signature; ``AuthError`` when it does not match."""
        verify_square(
            body,
            signature,
            notification_url=self.settings.square_notification_url or url,
            signature_key=self.settings.square_signature_key or "",
        )

    def square_verified(self, body: bytes) -> Result:
        """Ingest a checked Square delivery; bad content is kept, not refused.

        A vendor cannot fix a body by sending it again, so a delivery kept in
        the quarantine is answered as received (vendors stop retrying); only a
        failed order fetch is refused, so that Square retries it later.
        """
        return _kept(lambda: self._square(body, Origin("square")))

    def _square(self, body: bytes, origin: Origin) -> Result:
        payload = self._decode_object(body, origin)
        delivery_id = payload.get("event_id")
        origin = replace(
            origin, topic=str(payload.get("type")), delivery_id=_text(delivery_id)
        )
        origin = self._storable(origin, body, ("type", "event_id"))
        mapped = self._guard(
            origin,
            body,
            lambda: square_to_events(payload, fetch_order=self._fetch_order),
            reason="invalid_webhook",
        )
        return self._deliver(origin, body, mapped)

    def shopify(
        self,
        body: bytes,
        signature: str | None,
        topic: str | None,
        webhook_id: str | None,
    ) -> Result:
        """Verify and ingest a Shopify webhook delivery."""
        self.verify_shopify(body, signature)
        origin = Origin("shopify", topic, webhook_id)
        return _kept(lambda: self._shopify(body, origin))

    def verify_shopify(self, body: bytes, signature: str | None) -> None:
        """Check a Shopify signature; ``AuthError`` when it does not match."""
        verify_shopify(body, signature, secret=self.settings.shopify_secret or "")

    def _shopify(self, body: bytes, origin: Origin) -> Result:
        origin = self._storable(origin, body, _SHOPIFY_HEADERS)
        payload = self._decode_object(body, origin)
        mapped = self._guard(
            origin,
            body,
            lambda: shopify_to_events(
                origin.topic or "", payload, webhook_id=origin.delivery_id
            ),
            reason="invalid_webhook",
        )
        return self._deliver(origin, body, mapped)

    def too_large(self, origin: Origin, body: bytes, size: int) -> NoReturn:
        """Keep an over-sized body and refuse it."""
        cap = self.settings.max_body_bytes
        problem = ("(body)", f"is {size} bytes, over the cap of {cap} bytes")
        # Headers no store can keep are left out; the body is what matters.
        origin = replace(
            origin,
            topic=_if_storable(origin.topic, _TOPIC),
            delivery_id=_if_storable(origin.delivery_id, _DELIVERY_ID),
        )
        entry_id = self.quarantine.keep(
            origin, "too_large", [problem], body, body_bytes=size, now=self._now()
        )
        log.info("request_quarantined", source=origin.source, reason="too_large")
        raise BodyTooLargeError("too_large", [problem], entry_id)

    def retry(self, entry_id: int, body: bytes | None = None) -> Result:
        """Run a quarantined request again, with a fixed body when given."""
        entry = self.quarantine.get(entry_id)
        if entry.status != WAITING:
            raise ConflictError(
                "already_resolved", f"quarantine entry {entry_id} is {entry.status}"
            )
        if body is not None:
            self.quarantine.update(entry_id, body=body, now=self._now())
        origin = Origin(entry.source, entry.topic, entry.delivery_id, entry_id)
        fixed = entry.body if body is None else body
        if entry.source == "square":
            result = self._square(fixed, origin)
        elif entry.source == "shopify":
            result = self._shopify(fixed, origin)
        else:
            result = self.canonical(fixed, origin)
        self.quarantine.update(entry_id, resolution=_summary(result), now=self._now())
        return result

    def _deliver(self, origin: Origin, body: bytes, mapped: AdapterResult) -> Result:
        delivery = None
        if origin.delivery_id:
            delivery = Delivery(origin.source, origin.delivery_id, origin.topic or "")
        if not mapped.events:
            log.info(
                "delivery_ignored", source=origin.source, reason=mapped.ignored_reason
            )
        receipts = self._guard(
            origin,
            body,
            lambda: self.ingestor.ingest(
                mapped.events, delivery, same_id_same_content=False
            ),
        )
        changed = [r.event_id for r in receipts if r.status == CHANGED]
        if changed:
            why = (
                "was counted with other content; the vendor changed it since, "
                "and a counted sale is never changed in place: record the change "
                "as a return or a new sale"
            )
            self._keep(origin, body, "changed_order", [(c, why) for c in changed])
        return Result(receipts, len(receipts) > 1, mapped.ignored_reason)

    def _canonical(self, items: list[Any], is_batch: bool) -> list[Event]:
        events: list[Event] = []
        problems: list[tuple[str, str]] = []
        for index, item in enumerate(items):
            prefix = f"[{index}]" if is_batch else ""
            try:
                events.append(to_event(parse_canonical(item), self._zone))
            except InputError as exc:
                problems.extend((_join(prefix, f), why) for f, why in exc.errors)
        if not items:
            problems.append(("(body)", "is an empty list; send at least one event"))
        if problems:
            raise InputError(problems)
        return events

    def _storable(self, origin: Origin, body: bytes, names: tuple[str, str]) -> Origin:
        """``origin``, if its topic and delivery id can be stored as they are.

        Otherwise the body is kept without them, naming (by ``names``) where
        the sender put them: a delivery id that cannot be stored cannot
        guard against a repeat either.
        """
        topic, delivery_id = origin.topic, origin.delivery_id
        problems: list[tuple[str, str]] = []
        if topic is not None and (problem := text_problem(topic, _TOPIC)):
            problems.append((names[0], problem))
            topic = None
        if delivery_id is not None and (
            problem := text_problem(delivery_id, _DELIVERY_ID)
        ):
            problems.append((names[1], problem))
            delivery_id = None

        if problems:
            kept = replace(origin, topic=topic, delivery_id=delivery_id)
            self._keep(kept, body, "invalid_webhook", problems)
        return origin

    def _decode(self, body: bytes, origin: Origin, **options: Any) -> Any:
        try:
            return jsontext.loads(body, **options)
        except (ValueError, UnicodeDecodeError) as exc:
            problem = ("(body)", f"is not JSON: {_where(exc)}")
            self._keep(origin, body, "bad_json", [problem])
        except RecursionError:
            self._keep(origin, body, "bad_json", [_TOO_DEEP])

    def _decode_object(self, body: bytes, origin: Origin) -> dict[str, Any]:
        payload = self._decode(body, origin)
        if not isinstance(payload, dict):
            problem = (
                "(body)",
                f"expected a JSON object, got {type(payload).__name__}",
            )
            self._keep(origin, body, "invalid_webhook", [problem])
        return payload

    def _guard(
        self,
        origin: Origin,
        body: bytes,
        work: Callable[[], T],
        *,
        reason: str = "invalid_event",
    ) -> T:
        """Run ``work``; on bad input keep the body and raise QuarantinedError."""
        try:
            return work()
        except InputError as exc:
            self._keep(origin, body, _reason(exc, reason), exc.errors)
        except RecursionError:
            # A body just shallow enough to decode, too deep to validate.
            self._keep(origin, body, "bad_json", [_TOO_DEEP])
        except RemoteError as exc:
            problem = [("(fetch)", str(exc))]
            self._keep(origin, body, "remote_failure", problem, FetchFailedError)

    def _keep(
        self,
        origin: Origin,
        body: bytes,
        reason: str,
        errors: list[tuple[str, str]],
        error: type[QuarantinedError] = QuarantinedError,
    ) -> NoReturn:
        now = self._now()
        if origin.entry_id is not None:
            failure = error(reason, errors, origin.entry_id)
            self.quarantine.update(origin.entry_id, failure=failure, now=now)
            raise failure
        entry_id = self.quarantine.keep(origin, reason, errors, body, now=now)
        log.info(
            "request_quarantined",
            source=origin.source,
            reason=reason,
            quarantine_id=entry_id,
            fields=[f for f, _ in errors][:10],
        )
        raise QuarantinedError(reason, errors, entry_id)

    def _now(self) -> Any:
        return self.ingestor.clock()


def _if_storable(text: str | None, size: int) -> str | None:
    return text if text is None or text_problem(text, size) is None else None


def _kept(work: Callable[[], Result]) -> Result:
    try:
        return work()
    except (BodyTooLargeError, FetchFailedError):
        raise
    except QuarantinedError as exc:
        return Result(quarantined=exc)


def _reason(exc: InputError, default: str) -> str:
    if any(f.endswith("currency") and "not supported" in r for f, r in exc.errors):
        return "unsupported_currency"
    return default


def _summary(result: Result) -> str:
    statuses = [receipt.status for receipt in result.receipts]
    if not statuses:
        return f"ignored: {result.ignored_reason}"
    return ", ".join(f"{n} {s}" for s, n in sorted(_count(statuses).items()))


def _count(values: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return prefix + ("" if path.startswith("[") else ".") + path


def _where(exc: ValueError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "the bytes are not UTF-8"
    # Else json's complaint, a repeated key or Python's own limits, such as
    # the digits of an integer.
    return jsontext.problem(exc)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
