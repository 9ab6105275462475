"""Bulk API 2.0 ingest jobs in the Salesforce stand-in.

A job is processed when it is closed with ``UploadComplete``; the first poll
after that still says ``InProgress`` and the next ``JobComplete``, so a client
has to poll as it would against Salesforce. ``#N/A`` clears a field and an
empty cell leaves it alone, as documented.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response

from tillsight.connectors.salesforce.standin_state import (
    BulkJob,
    StandInState,
    json_response,
    read_json,
    rows_to_csv,
)

JOB = "/services/data/v{version}/jobs/ingest"


def _job_info(job_id: str, body: dict[str, Any], version: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {
        "id": job_id,
        "operation": body.get("operation", "insert"),
        "object": body.get("object", ""),
        "createdById": "005STANDIN00000AAA",
        "createdDate": now,
        "systemModstamp": now,
        "state": "Open",
        "externalIdFieldName": body.get("externalIdFieldName"),
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": float(version),
        "contentUrl": f"services/data/v{version}/jobs/ingest/{job_id}/batches",
        "lineEnding": body.get("lineEnding", "LF"),
        "columnDelimiter": "COMMA",
    }


def add_routes(app: FastAPI, state: StandInState) -> None:
    """Add the ingest job resources to the stand-in app."""

    @app.post(JOB)
    async def create_job(request: Request, version: str) -> Response:
        body = await read_json(request)
        with state.lock:
            job_id = f"750{len(state.jobs) + 1:012d}AAA"
            state.jobs[job_id] = BulkJob(_job_info(job_id, body, version))
            return json_response(state.jobs[job_id].info)

    @app.put(JOB + "/{job_id}/batches")
    async def upload(request: Request, version: str, job_id: str) -> Response:
        data = (await request.body()).decode("utf-8")
        with state.lock:
            state.jobs[job_id].data += data
        return Response(status_code=201)

    @app.patch(JOB + "/{job_id}")
    async def change_state(request: Request, version: str, job_id: str) -> Response:
        wanted = (await read_json(request)).get("state")
        with state.lock:
            job = state.jobs[job_id]
            job.info["state"] = wanted
            if wanted == "UploadComplete":
                _process(state, job)
            return json_response(job.info)

    @app.get(JOB + "/{job_id}")
    async def job_info(version: str, job_id: str) -> Response:
        with state.lock:
            job = state.jobs[job_id]
            if job.info["state"] == "UploadComplete" or (
                job.info["state"] == "InProgress" and job.polls_left > 0
            ):
                job.polls_left -= 1
                job.info["state"] = "InProgress"
            elif job.info["state"] == "InProgress":
                job.info["state"] = "JobComplete"
            return json_response(job.info)

    @app.get(JOB + "/{job_id}/{kind}")
    async def results(version: str, job_id: str, kind: str) -> Response:
        with state.lock:
            job = state.jobs[job_id]
            text = _results_csv(job, kind)
        return Response(text, media_type="text/csv")


def _process(state: StandInState, job: BulkJob) -> None:
    rows = list(csv.DictReader(io.StringIO(job.data)))
    cut = len(rows) - state.unprocessed_tail if state.unprocessed_tail else len(rows)
    sobject, field_name = job.info["object"], job.info["externalIdFieldName"]
    for row in rows[:cut]:
        value = row[field_name]
        fields = {k: (None if v == "#N/A" else v) for k, v in row.items() if v != ""}
        fields.pop(field_name, None)
        _, error = state.check_record(sobject, field_name, value, fields)
        if error is not None:
            failure = f"{error['statusCode']}:{error['message']}:--"
            job.failed.append({"sf__Id": "", "sf__Error": failure, **row})
            continue
        rid, is_created = state.apply(sobject, field_name, value, fields)
        created = "true" if is_created else "false"
        job.successful.append({"sf__Id": rid, "sf__Created": created, **row})
    job.unprocessed = rows[cut:]
    job.info["numberRecordsProcessed"] = cut
    job.info["numberRecordsFailed"] = len(job.failed)
    job.columns = list(rows[0]) if rows else []


def _results_csv(job: BulkJob, kind: str) -> str:
    columns = job.columns
    if kind == "successfulResults":
        return rows_to_csv(job.successful, ["sf__Id", "sf__Created", *columns])
    if kind == "failedResults":
        return rows_to_csv(job.failed, ["sf__Id", "sf__Error", *columns])
    return rows_to_csv(job.unprocessed, columns)
