"""A sync run: send queued profile changes to Salesforce and record the answers.

Each batch is read in one short transaction, sent in one sObject Collections
call (up to 200 records), and its answers are recorded in a second transaction.
A record leaves the queue only after its own sub-result says it succeeded, so a
run killed half-way sends each record at most once more and loses none.

Every sub-result is checked, whatever the HTTP status:

- success: synced state gets the Salesforce id and the record's hash;
- ``DUPLICATE_EXTERNAL_ID`` (or a 300 on a single upsert): a review item;
- ``UNABLE_TO_LOCK_ROW`` and other passing troubles: retried (bounded) in this
  run, then left queued;
- ``ALL_OR_NONE_OPERATION_ROLLED_BACK``: left queued for the next run;
- any other code (``INVALID_EMAIL_ADDRESS``, ...): a dead letter with
  Salesforce's code and message, queued again once the profile changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy import Connection, Engine

from tillsight.connectors.salesforce import queue
from tillsight.connectors.salesforce.client import RecordResult, SalesforceClient
from tillsight.connectors.salesforce.profiles import (
    Record,
    read_profiles,
    record_hash,
    to_record,
)
from tillsight.connectors.salesforce.queue import PendingRow
from tillsight.errors import AuthError, RateLimitedError, RemoteError

log = structlog.get_logger("tillsight.salesforce")

TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
)
REVIEW_CODES = frozenset({"DUPLICATE_EXTERNAL_ID", "MULTIPLE_MATCHES"})
ROLLED_BACK = "ALL_OR_NONE_OPERATION_ROLLED_BACK"

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class SyncReport:
    """What a run did. ``status`` is success, partial, stopped, failed or paused."""

    status: str = "success"
    batches: int = 0
    calls: int = 0
    synced: int = 0
    unchanged: int = 0
    dead_lettered: int = 0
    review: int = 0
    left_queued: int = 0
    reason: str = ""
    errors: dict[str, int] = field(default_factory=dict)

    def note_error(self, code: str) -> None:
        """Count one record that did not go through, by its code."""
        self.errors[code] = self.errors.get(code, 0) + 1
        if self.status == "success":
            self.status = "partial"


@dataclass(frozen=True, slots=True)
class _Outgoing:
    row: PendingRow
    record: Record
    digest: str


def run_sync(
    engine: Engine,
    client: SalesforceClient,
    *,
    max_batches: int | None = None,
    progress: Progress | None = None,
    clock: Clock = queue.utc_now,
) -> SyncReport:
    """Send queued changes until the queue is empty or a stop condition."""
    report = SyncReport()
    calls_before = client.calls
    if _is_paused(engine, clock(), report):
        return report

    after_key = ""
    while max_batches is None or report.batches < max_batches:
        batch, after_key = _next_batch(engine, client, after_key, report, clock)
        if batch is None:
            break
        if not _send_batch(engine, client, batch, report, clock):
            break
        report.batches += 1
        if progress is not None:
            progress(report.synced, report.synced + _queued(engine))

    report.calls = client.calls - calls_before
    log.info(
        "salesforce_sync_finished",
        status=report.status,
        batches=report.batches,
        calls=report.calls,
        synced=report.synced,
        dead_lettered=report.dead_lettered,
        review=report.review,
    )
    return report


def _queued(engine: Engine) -> int:
    with engine.connect() as conn:
        counts = queue.queue_status(conn)
    return counts["pending"] + counts["failed"]


def _is_paused(engine: Engine, now: datetime, report: SyncReport) -> bool:
    with engine.connect() as conn:
        until = queue.limit_paused_until(conn, now)
    if until is None:
        return False
    report.status, report.reason = "paused", "REQUEST_LIMIT_EXCEEDED"
    log.info("salesforce_sync_paused", until=until.isoformat())
    return True


def _next_batch(
    engine: Engine,
    client: SalesforceClient,
    after_key: str,
    report: SyncReport,
    clock: Clock,
) -> tuple[list[_Outgoing] | None, str]:
    """Read queued rows until there is a batch worth sending, or none is left."""
    settings = client.settings
    while True:
        with engine.begin() as conn:
            rows = queue.pending_page(conn, after_key, settings.batch_size)
            if not rows:
                return None, after_key
            after_key = rows[-1].customer_key
            batch = _build_batch(conn, rows, client, report)
        if batch:
            return batch, after_key


def _build_batch(
    conn: Connection,
    rows: list[PendingRow],
    client: SalesforceClient,
    report: SyncReport,
) -> list[_Outgoing]:
    keys = [row.customer_key for row in rows]
    profiles = read_profiles(conn, keys)
    known = queue.synced_state(conn, keys)
    batch = []
    for row in rows:
        profile = profiles.get(row.customer_key)
        is_merged_away = profile is not None and profile.merged_into is not None
        if profile is None or (is_merged_away and row.customer_key not in known):
            # Nothing to tell: erased, or merged before Salesforce ever saw it.
            queue.drop(conn, row)
            continue
        record = to_record(profile, client.settings)
        digest = record_hash(record)
        if known.get(row.customer_key, ("", ""))[1] == digest:
            queue.drop(conn, row)
            report.unchanged += 1
            continue
        batch.append(_Outgoing(row, record, digest))
    return batch


def _send_batch(
    engine: Engine,
    client: SalesforceClient,
    batch: list[_Outgoing],
    report: SyncReport,
    clock: Clock,
) -> bool:
    """Send a batch, retrying only records with passing troubles; False stops."""
    settings = client.settings
    for round_ in range(settings.record_retry_rounds + 1):
        try:
            results = _upsert(client, batch)
        except RateLimitedError:
            with engine.begin() as conn:
                queue.pause_for_limit(conn, clock(), settings.limit_pause_hours)
            report.status, report.reason = "stopped", "REQUEST_LIMIT_EXCEEDED"
            return False
        except AuthError as exc:
            _fail_batch(engine, batch, "INVALID_SESSION_ID", clock(), report)
            log.error("salesforce_sync_alert", reason="auth", detail=str(exc))
            return False
        except RemoteError as exc:
            _fail_batch(engine, batch, f"HTTP_{exc.status or 'ERROR'}", clock(), report)
            log.error("salesforce_sync_stopped", status=exc.status)
            return False

        is_last_round = round_ == settings.record_retry_rounds
        batch = _record_results(engine, batch, results, report, clock, is_last_round)
        if not batch:
            return True
        client.wait(settings.backoff_s * (2**round_))
    return True


def _upsert(client: SalesforceClient, batch: list[_Outgoing]) -> list[RecordResult]:
    if len(batch) == 1:
        # The single-record upsert answers 300 with the matching records' URLs,
        # which is what a person needs to resolve an ambiguous external id.
        return [client.upsert_one(batch[0].record)]
    results = client.upsert_collection(
        [item.record for item in batch], all_or_none=client.settings.all_or_none
    )
    if len(results) != len(batch):
        raise RemoteError(
            f"Salesforce answered {len(results)} results for {len(batch)} records"
        )
    return results


def _record_results(
    engine: Engine,
    batch: list[_Outgoing],
    results: list[RecordResult],
    report: SyncReport,
    clock: Clock,
    is_last_round: bool,
) -> list[_Outgoing]:
    """Record every sub-result in one transaction; return the records to retry."""
    now = clock()
    with engine.begin() as conn:
        return [
            item
            for item, result in zip(batch, results, strict=True)
            if _record_one(conn, item, result, report, now, is_last_round)
        ]


def _record_one(
    conn: Connection,
    item: _Outgoing,
    result: RecordResult,
    report: SyncReport,
    now: datetime,
    is_last_round: bool,
) -> bool:
    """Record one sub-result; True if the record should be sent again now."""
    code, key, row = result.code, item.row.customer_key, item.row
    if result.is_success:
        queue.confirm(conn, key, result.sf_id, item.digest, now, dequeue=row)
        report.synced += 1
        return False

    if code in TRANSIENT_CODES and not is_last_round:
        queue.mark_failed(conn, [row], code, now)
        return True

    report.note_error(code)
    if code in REVIEW_CODES:
        detail = {"code": code, "matches": list(result.matches)}
        queue.add_review_item(conn, key, "multiple_matches", detail, now, dequeue=row)
        report.review += 1
    elif code in TRANSIENT_CODES or code == ROLLED_BACK:
        queue.mark_failed(conn, [row], code, now)
        report.left_queued += 1
    else:
        queue.add_dead_letter(
            conn, key, result.errors[0], item.digest, now, dequeue=row
        )
        report.dead_lettered += 1
    return False


def _fail_batch(
    engine: Engine,
    batch: list[_Outgoing],
    error: str,
    now: datetime,
    report: SyncReport,
) -> None:
    with engine.begin() as conn:
        queue.mark_failed(conn, [item.row for item in batch], error, now)
    report.status, report.reason = "failed", error
    report.left_queued += len(batch)
