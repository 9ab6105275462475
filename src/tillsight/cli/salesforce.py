"""``tillsight salesforce ...``: keep customer profiles in step with Salesforce.

``sync`` is the command a scheduler runs: it feeds what changed into the
queue, sends it (or, with ``--all``, every customer through Bulk API 2.0),
then publishes the lifecycle moments. ``standin`` serves a local imitation of
Salesforce so that everything can be tried without an org.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from tillsight.cli.options import Database
from tillsight.cli.terminal import make_console
from tillsight.connectors.salesforce import (
    PublishReport,
    SalesforceSettings,
    load_settings,
    publish_moments,
    queue_status,
    retry_dead_letters,
    run_backfill,
    run_sync,
    write_metadata,
)
from tillsight.connectors.salesforce import connect as connect_salesforce
from tillsight.connectors.salesforce.bulk import BACKFILL, BackfillReport
from tillsight.connectors.salesforce.client import SalesforceClient
from tillsight.connectors.salesforce.feed import FeedReport, run_feed
from tillsight.connectors.salesforce.queue import (
    limit_paused_until,
    load_checkpoint,
    utc_now,
)
from tillsight.connectors.salesforce.sync import SyncReport
from tillsight.errors import ConfigError
from tillsight.store.db import connect

console = make_console()
salesforce_app = typer.Typer(
    help="Keep customer profiles in step with Salesforce.", no_args_is_help=True
)

CONFIG_VARIABLE = "TILLSIGHT_SALESFORCE_CONFIG"
STANDIN_CLIENT_ID = "tillsight-standin"
STANDIN_SECRET = "standin-secret"
PUBLISH_PAGE = 1000

ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar=CONFIG_VARIABLE,
        help="Salesforce mapping file (YAML), e.g. examples/salesforce/standin.yaml.",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``tillsight salesforce`` and its commands to the CLI."""
    app.add_typer(salesforce_app, name="salesforce")


def _settings(config: Path | None) -> SalesforceSettings:
    if config is None:
        raise ConfigError(
            f"no Salesforce mapping file: pass --config FILE or set ${CONFIG_VARIABLE}"
        )
    return load_settings(config)


@salesforce_app.command()
def sync(
    config: ConfigFile = None,
    db: Database = None,
    every: Annotated[
        bool,
        typer.Option(
            "--all", help="Send every customer through Bulk API 2.0 (a backfill)."
        ),
    ] = False,
    max_batches: Annotated[
        int | None,
        typer.Option(help="Stop after this many batches; the rest stays queued."),
    ] = None,
) -> None:
    """Queue what changed, send it, then publish the lifecycle moments."""
    settings = _settings(config)
    store = connect(db)
    try:
        feed = run_feed(store)
        with connect_salesforce(settings) as client:
            backfill = _backfill(store, client) if every else None
            report = run_sync(store, client, max_batches=max_batches)
            moments = _publish(store, client, report.status, backfill)
        _print_sync(feed, backfill, report, moments)
        status = _overall_status(backfill, report, moments)
        _explain(store, status)
    finally:
        store.dispose()
    if status == "failed":
        raise typer.Exit(1)


def _backfill(store: Engine, client: SalesforceClient) -> BackfillReport:
    with _progress_bar("backfill") as progress:
        return run_backfill(store, client, progress=progress)


@contextmanager
def _progress_bar(title: str) -> Iterator[Callable[[int, int], None]]:
    """Show a bar of customers sent; yield the callback that moves it."""
    with Progress(
        TextColumn(title),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("customers"),
        console=console,
    ) as progress:
        task = progress.add_task(title, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def _publish(
    store: Engine,
    client: SalesforceClient,
    sync_status: str,
    backfill: BackfillReport | None,
) -> PublishReport:
    """Publish every waiting moment, a page at a time, unless the sync stopped."""
    total = PublishReport()
    stopped = backfill is not None and backfill.status in ("failed", "stopped")
    if stopped or sync_status in ("failed", "stopped", "paused"):
        total.status, total.reason = "skipped", "the profile sync did not finish"
        return total

    while True:
        page = publish_moments(store, client, limit=PUBLISH_PAGE)
        total.published += page.published
        total.failed += page.failed
        total.calls += page.calls
        if page.status != "success":
            total.status, total.reason = page.status, page.reason
        if page.status in ("failed", "stopped", "paused"):
            return total
        if page.published + page.failed < PUBLISH_PAGE:
            return total


def _overall_status(
    backfill: BackfillReport | None, report: SyncReport, moments: PublishReport
) -> str:
    """Return the worst status of the steps: failed, stopped, paused, partial."""
    statuses = {report.status, moments.status}
    if backfill is not None:
        statuses.add(backfill.status)
    for status in ("failed", "stopped", "paused", "partial"):
        if status in statuses:
            return status
    return "success"


def _print_sync(
    feed: FeedReport,
    backfill: BackfillReport | None,
    report: SyncReport,
    moments: PublishReport,
) -> None:
    table = Table(title="Salesforce sync", show_header=False)
    table.add_row("customers queued (changed)", f"{feed.customers:,}")
    table.add_row("moments queued", f"{feed.moments:,}")
    if backfill is not None:
        table.add_row("backfill", f"{backfill.status} {backfill.reason}".strip())
        table.add_row("  bulk jobs / calls", f"{backfill.jobs:,} / {backfill.calls:,}")
        table.add_row("  customers sent in bulk", f"{backfill.synced:,}")
        table.add_row(
            "  dead letters / review", _pair(backfill.dead_lettered, backfill.review)
        )
    table.add_row("profile sync", f"{report.status} {report.reason}".strip())
    table.add_row("  batches / calls", f"{report.batches:,} / {report.calls:,}")
    table.add_row("  customers sent", f"{report.synced:,}")
    table.add_row("  unchanged, not sent", f"{report.unchanged:,}")
    table.add_row("  dead letters / review", _pair(report.dead_lettered, report.review))
    table.add_row("  left queued", f"{report.left_queued:,}")
    for code, count in sorted(report.errors.items()):
        table.add_row(f"  {code}", f"{count:,}")
    table.add_row("moments", f"{moments.status} {moments.reason}".strip())
    table.add_row("  published / failed", _pair(moments.published, moments.failed))
    console.print(table)


def _pair(first: int, second: int) -> str:
    return f"{first:,} / {second:,}"


def _explain(store: Engine, status: str) -> None:
    """Say what a stop means and what to do next."""
    with store.connect() as conn:
        until = limit_paused_until(conn, utc_now())
    if until is not None:
        console.print(
            "[yellow]Salesforce's daily API request limit is used up: every sync is "
            f"paused until {until.isoformat(timespec='minutes')} (UTC).[/] "
            "Nothing is lost; run the same command after that time.",
            markup=True,
            highlight=False,
        )
    elif status == "failed":
        console.print(
            "[red]The sync failed[/]; the queue is intact. See the reason above, "
            "fix it, and run the same command again.",
            markup=True,
            highlight=False,
        )
    elif status == "partial":
        console.print(
            "Some records were refused; see them with [bold]tillsight salesforce "
            "status[/], fix them in the CRM, then run "
            "[bold]tillsight salesforce retry-dead-letters[/].",
            markup=True,
            highlight=False,
        )


@salesforce_app.command()
def status(config: ConfigFile = None, db: Database = None) -> None:
    """Show the queue, the dead letters, the backfill and (with --config) limits."""
    store = connect(db, must_exist=True)
    try:
        with store.connect() as conn:
            counts = queue_status(conn)
            until = limit_paused_until(conn, utc_now())
            checkpoint = load_checkpoint(conn, BACKFILL)
    finally:
        store.dispose()

    table = Table(title="Salesforce", show_header=False)
    for name, count in counts.items():
        table.add_row(name.replace("_", " "), f"{count:,}")
    table.add_row("backfill", checkpoint.state if checkpoint else "never run")
    table.add_row("paused until", until.isoformat() if until else "-")
    if config is not None:
        with connect_salesforce(_settings(config)) as client:
            daily = client.limits().get("DailyApiRequests", {})
        used = int(daily.get("Max", 0)) - int(daily.get("Remaining", 0))
        table.add_row("API requests today", f"{used:,} of {daily.get('Max', 0):,}")
    console.print(table)


@salesforce_app.command()
def fields(
    out: Annotated[Path, typer.Option(help="Folder to write the metadata into.")],
    config: ConfigFile = None,
) -> None:
    """Write the custom fields, Platform Event and permission set to deploy."""
    written = write_metadata(_settings(config), out)
    console.print(f"wrote {len(written)} files to {out}", highlight=False)
    console.print(
        f"Deploy them: cd {out} && sf project deploy start --manifest package.xml\n"
        "then assign the Tillsight_Integration permission set to the integration "
        "user (see docs/salesforce.md).",
        highlight=False,
    )


@salesforce_app.command("retry-dead-letters")
def retry_dead_letters_command(
    db: Database = None,
    customers: Annotated[
        list[str] | None,
        typer.Option("--customer", help="Only this customer key (repeatable)."),
    ] = None,
) -> None:
    """Queue again the records Salesforce refused, after a fix in the CRM."""
    store = connect(db, must_exist=True)
    try:
        with store.begin() as conn:
            queued = retry_dead_letters(conn, customers or None)
    finally:
        store.dispose()
    console.print(
        f"{queued:,} customers queued again; run tillsight salesforce sync",
        highlight=False,
    )


@salesforce_app.command()
def standin(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
) -> None:
    """Serve a local STAND-IN for Salesforce (in memory) to try tillsight with."""
    import uvicorn

    from tillsight.connectors.salesforce.standin import create_app
    from tillsight.connectors.salesforce.standin_state import StandInState

    state = StandInState(client_id=STANDIN_CLIENT_ID, client_secret=STANDIN_SECRET)
    state.instance_url = f"http://127.0.0.1:{port}"
    console.print(_standin_banner(state.instance_url))
    uvicorn.run(create_app(state), host="127.0.0.1", port=port, log_level="warning")


def _standin_banner(url: str) -> Panel:
    text = (
        f"[bold]This is a STAND-IN, not Salesforce.[/] It listens on {url}, "
        "answers like Salesforce's REST and Bulk APIs, and keeps records in memory "
        "only: they are gone when it stops.\n\n"
        f"  export TILLSIGHT_SALESFORCE_CLIENT_SECRET={STANDIN_SECRET}\n"
        "  tillsight salesforce sync --config examples/salesforce/standin.yaml\n\n"
        "Stop it with Ctrl-C."
    )
    return Panel(
        Text.from_markup(text), title="Salesforce STAND-IN", border_style="bold yellow"
    )
