"""``serve``, ``quarantine`` and ``keys``: running the live service."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tillsight.cli.options import Database, ProgrammeFile
from tillsight.cli.terminal import make_console
from tillsight.live.keys import SCOPES, Keys
from tillsight.live.quarantine import Quarantine
from tillsight.live.service import LiveService
from tillsight.live.settings import Settings
from tillsight.live.store import LiveStore

console = make_console()
quarantine_app = typer.Typer(help="Requests kept because they could not be read.")
keys_app = typer.Typer(help="API keys with scopes (ingest, read, admin).")


def register(app: typer.Typer) -> None:
    """Add the live commands to the CLI."""
    app.command()(serve)
    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(keys_app, name="keys")


def serve(
    db: Database = None,
    programme: ProgrammeFile = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    json_logs: Annotated[
        bool | None,
        typer.Option("--json-logs/--console-logs", help="(default: JSON off a TTY)"),
    ] = None,
) -> None:
    """Serve the HTTP API and fire timers on time (settings: TILLSIGHT_* env)."""
    import uvicorn

    from tillsight.api import create_app
    from tillsight.logs import configure_logging

    configure_logging(json_output=json_logs)
    service = LiveService.open(db, programme)
    app = create_app(service, close_on_shutdown=True)
    # Everything made so far (modules, the programme, SQLAlchemy's tables)
    # lives as long as the process: keep it out of the garbage collector's
    # full passes, which otherwise stall requests for tens of milliseconds
    # (the paced live benchmark's p99 halves).
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None)


@contextmanager
def _live_store(db: str | None, *, reading: bool = False) -> Iterator[LiveStore]:
    """The store at ``--db`` for one command, its connections closed after.

    A command that only reads (or changes what must already be there)
    refuses a SQLite file that is not there.
    """
    store = LiveStore.open(db, must_exist=reading)
    try:
        yield store
    finally:
        store.dispose()


@quarantine_app.command("list")
def quarantine_list(
    db: Database = None,
    every: Annotated[bool, typer.Option("--all", help="Also resolved ones.")] = False,
) -> None:
    """List waiting entries: id, when, where from, reason, first error."""
    with _live_store(db, reading=True) as store:
        entries = Quarantine(store).entries(status=None if every else "waiting")
    table = Table()
    for name in ("id", "received (UTC)", "from", "reason"):
        table.add_column(name, no_wrap=True, overflow="fold")
    if every:
        table.add_column("status", no_wrap=True)
    table.add_column("first error (quarantine show ID for all)", min_width=24)
    for entry in entries:
        first = f"{entry.errors[0][0]}: {entry.errors[0][1]}" if entry.errors else ""
        row = [
            str(entry.id),
            entry.received_at.strftime("%Y-%m-%d %H:%M"),
            " ".join(filter(None, (entry.source, entry.topic))),
            entry.reason,
            *([entry.status] if every else []),
            first[:120],
        ]
        table.add_row(*row)
    console.print(table)


@quarantine_app.command("show")
def quarantine_show(
    entry_id: Annotated[int, typer.Argument(metavar="ID")],
    db: Database = None,
    body_only: Annotated[
        bool, typer.Option("--body", help="Print only the raw body (to edit it).")
    ] = False,
) -> None:
    """Show one entry: every error, then its raw body."""
    with _live_store(db, reading=True) as store:
        entry = Quarantine(store).get(entry_id)
    if body_only:
        sys.stdout.flush()
        sys.stdout.buffer.write(entry.body)  # byte for byte, to edit and retry
        sys.stdout.buffer.flush()
        return
    console.print(
        f"entry {entry.id}: {' '.join(filter(None, (entry.source, entry.topic)))} "
        f"{entry.reason} "
        f"({entry.status}), {entry.body_bytes} bytes, received "
        f"{entry.received_at.isoformat()}",
        highlight=False,
    )
    for field, reason in entry.errors:
        console.print(f"  {field}: {reason}", highlight=False)
    if entry.resolution:
        console.print(f"resolution: {entry.resolution}", highlight=False)
    body = entry.body[:4096].decode("utf-8", errors="replace")
    console.print(body, markup=False, highlight=False, soft_wrap=True)


@quarantine_app.command("retry")
def quarantine_retry(
    entry_id: Annotated[int, typer.Argument(metavar="ID")],
    db: Database = None,
    programme: ProgrammeFile = None,
    body: Annotated[
        Path | None,
        typer.Option(
            help="A fixed body to use instead of the kept one.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
) -> None:
    """Ingest an entry again, with a fixed body when given."""
    service = LiveService.open(db, programme, Settings.from_env(), must_exist=True)
    try:
        fixed = body.read_bytes() if body is not None else None
        result = service.receiver.retry(entry_id, fixed)
    finally:
        service.close()
    for receipt in result.receipts:
        console.print(
            f"{receipt.event_id}: {receipt.status}, customer {receipt.customer_key}, "
            f"stage {receipt.stage}, {_count(len(receipt.decisions), 'decision')}",
            highlight=False,
        )
    if not result.receipts:
        console.print(f"ignored: {result.ignored_reason}", highlight=False)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    scope: Annotated[
        list[str], typer.Option(help=f"Repeat for several: {', '.join(SCOPES)}.")
    ],
    db: Database = None,
) -> None:
    """Make a key; it is printed once and stored only as a hash."""
    with _live_store(db) as store:
        token = Keys(store).create(name, scope, datetime.now(UTC))
    typer.echo(token)


@keys_app.command("list")
def keys_list(db: Database = None) -> None:
    """List keys (never their secrets)."""
    table = Table("id", "name", "scopes", "created", "revoked")
    with _live_store(db, reading=True) as store:
        keys = Keys(store).list()
    for key in keys:
        revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
        table.add_row(
            key.key_id,
            key.name,
            ",".join(key.scopes),
            key.created_at.isoformat(timespec="seconds"),
            revoked,
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID")], db: Database = None
) -> None:
    """Stop a key from working."""
    with _live_store(db, reading=True) as store:
        Keys(store).revoke(key_id, datetime.now(UTC))
    console.print(f"revoked {key_id}")


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")
