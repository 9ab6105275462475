"""Full backfill through Bulk API 2.0 ingest jobs, resumable after a stop.

Customers are sent in key order, one upsert job per chunk: create the job
(``operation: upsert``, ``externalIdFieldName``), upload the CSV, close it with
``UploadComplete``, poll until it ends, then read ``successfulResults``,
``failedResults`` and ``unprocessedrecords``. The checkpoint names the job in
flight and the last key of every finished chunk, so a run that stops (limit,
crash, Ctrl-C) picks up the job it left, or the next chunk, and loses no one:
any customer the job did not account for goes to the incremental queue.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, func, select

from tillsight.connectors.salesforce import queue
from tillsight.connectors.salesforce.client import RecordError, SalesforceClient
from tillsight.connectors.salesforce.config import SalesforceSettings
from tillsight.connectors.salesforce.profiles import (
    Record,
    read_profiles,
    record_hash,
    to_record,
)
from tillsight.connectors.salesforce.queue import Checkpoint
from tillsight.connectors.salesforce.sync import (
    REVIEW_CODES,
    TRANSIENT_CODES,
    Clock,
    Progress,
)
from tillsight.errors import AuthError, RateLimitedError, RemoteError
from tillsight.store.schema import customers

log = structlog.get_logger("tillsight.salesforce")

BACKFILL = "backfill"
FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
NULL = "#N/A"  # Bulk API's way to clear a field; an empty cell leaves it alone.


@dataclass(slots=True)
class BackfillReport:
    """What a backfill run did; ``status`` as for a sync run, plus ``done``."""

    status: str = "done"
    jobs: int = 0
    calls: int = 0
    synced: int = 0
    dead_lettered: int = 0
    review: int = 0
    requeued: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Chunk:
    last_key: str
    records: dict[str, Record]


def csv_columns(settings: SalesforceSettings) -> list[str]:
    """Return the CSV header: the external id, then every mapped field."""
    fields = settings.fields
    columns = [settings.external_id_field, *fields.owned().values()]
    columns += [f for f in (fields.email, fields.first_name, fields.last_name) if f]
    if settings.record_type_id is not None:
        columns.append("RecordTypeId")
    return columns


def _cell(record: Record, column: str, owned: set[str]) -> str:
    if column not in record:
        return ""
    value = record[column]
    if value is None:
        return NULL if column in owned else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def to_csv(records: list[Record], settings: SalesforceSettings) -> bytes:
    """Write records as Bulk API 2.0 CSV (comma, LF, UTF-8)."""
    columns = csv_columns(settings)
    owned = set(settings.fields.owned().values())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record, column, owned) for column in columns])
    return out.getvalue().encode("utf-8")


def run_backfill(
    engine: Engine,
    client: SalesforceClient,
    *,
    progress: Progress | None = None,
    poll_interval_s: float = 2.0,
    max_polls: int = 1800,
    max_jobs: int | None = None,
    clock: Clock = queue.utc_now,
) -> BackfillReport:
    """Upsert every customer through Bulk API 2.0, resuming from the checkpoint."""
    report = BackfillReport()
    calls_before = client.calls
    runner = _Backfill(engine, client, report, clock, poll_interval_s, max_polls)
    try:
        runner.run(progress, max_jobs)
    except RateLimitedError:
        with engine.begin() as conn:
            queue.pause_for_limit(conn, clock(), client.settings.limit_pause_hours)
        report.status, report.reason = "stopped", "REQUEST_LIMIT_EXCEEDED"
    except AuthError:
        log.error("salesforce_backfill_alert", reason="auth")
        report.status, report.reason = "failed", "INVALID_SESSION_ID"
    except RemoteError as exc:
        report.status, report.reason = "failed", f"HTTP_{exc.status or 'ERROR'}"

    report.calls = client.calls - calls_before
    log.info("salesforce_backfill_finished", status=report.status, jobs=report.jobs)
    return report


class _Backfill:
    """The steps of one backfill run; every step saves the checkpoint it reached."""

    def __init__(
        self,
        engine: Engine,
        client: SalesforceClient,
        report: BackfillReport,
        clock: Clock,
        poll_interval_s: float,
        max_polls: int,
    ) -> None:
        self.engine = engine
        self.client = client
        self.settings = client.settings
        self.report = report
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.max_polls = max_polls

    def run(self, progress: Progress | None, max_jobs: int | None) -> None:
        with self.engine.begin() as conn:
            if queue.limit_paused_until(conn, self.clock()) is not None:
                self.report.status, self.report.reason = "paused", "LIMIT"
                return
            checkpoint = queue.load_checkpoint(conn, BACKFILL)
        if checkpoint is None or checkpoint.state == "done":
            checkpoint = Checkpoint(BACKFILL, "running")
        if checkpoint.job_id is not None:
            checkpoint = self._resume(checkpoint)

        while max_jobs is None or self.report.jobs < max_jobs:
            if progress is not None:
                progress(*self._counts(checkpoint.cursor))
            chunk = self._read_chunk(checkpoint.cursor)
            if chunk is None:
                self._save(Checkpoint(BACKFILL, "done"))
                return
            checkpoint = self._send_chunk(checkpoint, chunk)
        self.report.status = "stopped"

    def _counts(self, cursor: str) -> tuple[int, int]:
        active = customers.c.merged_into.is_(None)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).where(active)).scalar_one()
            done = conn.execute(
                select(func.count()).where(active, customers.c.key <= cursor)
            ).scalar_one()
        return int(done), int(total)

    def _read_chunk(self, cursor: str) -> _Chunk | None:
        query = (
            select(customers.c.key)
            .where(customers.c.key > cursor, customers.c.merged_into.is_(None))
            .order_by(customers.c.key)
            .limit(self.settings.bulk_chunk_records)
        )
        with self.engine.connect() as conn:
            keys = list(conn.execute(query).scalars())
            if not keys:
                return None
            profiles = read_profiles(conn, keys)
        records = {k: to_record(p, self.settings) for k, p in profiles.items()}
        return _Chunk(last_key=keys[-1], records=records)

    def _send_chunk(self, checkpoint: Checkpoint, chunk: _Chunk) -> Checkpoint:
        job_id = self._create_job()
        checkpoint = Checkpoint(
            BACKFILL, "open", checkpoint.cursor, job_id, chunk.last_key
        )
        self._save(checkpoint)

        data = to_csv(list(chunk.records.values()), self.settings)
        self.client.request(
            "PUT",
            self._job_path(job_id, "batches"),
            content=data,
            content_type="text/csv",
        )
        self._set_state(job_id, "UploadComplete")
        checkpoint = Checkpoint(
            BACKFILL, "uploaded", checkpoint.cursor, job_id, chunk.last_key
        )
        self._save(checkpoint)
        return self._finish(checkpoint, chunk.records)

    def _resume(self, checkpoint: Checkpoint) -> Checkpoint:
        """Pick up the job a stopped run left behind."""
        assert checkpoint.job_id is not None
        log.info("salesforce_backfill_resuming", state=checkpoint.state)
        if checkpoint.state == "open":
            # Its upload may be incomplete: abort it and send the chunk afresh.
            self._set_state(checkpoint.job_id, "Aborted")
            checkpoint = Checkpoint(BACKFILL, "running", checkpoint.cursor)
            self._save(checkpoint)
            return checkpoint
        chunk = self._read_chunk_until(checkpoint.cursor, checkpoint.job_last_key)
        return self._finish(checkpoint, chunk)

    def _read_chunk_until(self, cursor: str, last_key: str | None) -> dict[str, Record]:
        query = select(customers.c.key).where(
            customers.c.key > cursor,
            customers.c.key <= (last_key or cursor),
            customers.c.merged_into.is_(None),
        )
        with self.engine.connect() as conn:
            profiles = read_profiles(conn, conn.execute(query).scalars())
        return {k: to_record(p, self.settings) for k, p in profiles.items()}

    def _finish(self, checkpoint: Checkpoint, records: dict[str, Record]) -> Checkpoint:
        """Wait for the job, record its results, and move the cursor past it."""
        assert checkpoint.job_id is not None
        job = self._wait(checkpoint.job_id)
        if job.get("state") != "JobComplete":
            log.warning("salesforce_backfill_job_ended", state=job.get("state"))
        outcome = {
            kind: self._results(checkpoint.job_id, kind)
            for kind in ("successfulResults", "failedResults", "unprocessedrecords")
        }
        with self.engine.begin() as conn:
            self._apply(conn, outcome, records)
            done = Checkpoint(BACKFILL, "running", checkpoint.job_last_key or "")
            queue.save_checkpoint(conn, done, self.clock())
        self.report.jobs += 1
        return done

    def _wait(self, job_id: str) -> dict[str, Any]:
        for _ in range(self.max_polls):
            response = self.client.request("GET", self._job_path(job_id))
            job: dict[str, Any] = response.json()
            if job.get("state") in FINAL_STATES:
                return job
            self.client.wait(self.poll_interval_s)
        raise RemoteError(f"Bulk job is still running after {self.max_polls} polls")

    def _results(self, job_id: str, kind: str) -> list[dict[str, str]]:
        response = self.client.request(
            "GET", self._job_path(job_id, kind), accept="text/csv"
        )
        return list(csv.DictReader(io.StringIO(response.text)))

    def _apply(
        self,
        conn: Connection,
        outcome: dict[str, list[dict[str, str]]],
        records: dict[str, Record],
    ) -> None:
        ext, now = self.settings.external_id_field, self.clock()
        unaccounted = set(records)
        for row in outcome["successfulResults"]:
            key = row[ext]
            if key in records:
                digest = record_hash(records[key])
                queue.confirm(conn, key, row.get("sf__Id") or None, digest, now)
                self.report.synced += 1
            unaccounted.discard(key)
        for row in outcome["failedResults"]:
            self._apply_failure(conn, row[ext], row.get("sf__Error", ""), records)
            unaccounted.discard(row[ext])
        # Unprocessed rows and rows missing from every result go to the queue.
        self.report.requeued += queue.enqueue(conn, unaccounted, now=now)

    def _apply_failure(
        self, conn: Connection, key: str, raw: str, records: dict[str, Record]
    ) -> None:
        code, _, message = raw.partition(":")
        error = RecordError(code or "UNKNOWN", message)
        now = self.clock()
        if code in REVIEW_CODES:
            detail = {"code": code, "message": message}
            queue.add_review_item(conn, key, "multiple_matches", detail, now)
            self.report.review += 1
        elif code in TRANSIENT_CODES:
            self.report.requeued += queue.enqueue(conn, [key], now=now)
        else:
            digest = record_hash(records[key]) if key in records else None
            queue.add_dead_letter(conn, key, error, digest, now)
            self.report.dead_lettered += 1

    def _create_job(self) -> str:
        body = {
            "object": self.settings.object,
            "externalIdFieldName": self.settings.external_id_field,
            "contentType": "CSV",
            "operation": "upsert",
            "lineEnding": "LF",
        }
        response = self.client.request("POST", self._job_path(), body=body)
        return str(response.json()["id"])

    def _set_state(self, job_id: str, state: str) -> None:
        self.client.request("PATCH", self._job_path(job_id), body={"state": state})

    def _job_path(self, job_id: str = "", resource: str = "") -> str:
        parts = "/".join(part for part in ("jobs/ingest", job_id, resource) if part)
        return self.client.data_path(parts)

    def _save(self, checkpoint: Checkpoint) -> None:
        with self.engine.begin() as conn:
            queue.save_checkpoint(conn, checkpoint, self.clock())
