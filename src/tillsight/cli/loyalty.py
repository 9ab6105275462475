"""``points`` and ``rewards``: balances, adjustments, issue, look-up, import."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Connection, select

from tillsight.cli.options import Database, ProgrammeFile, open_store
from tillsight.cli.terminal import make_console
from tillsight.core.events import Event, EventType, Identity
from tillsight.core.programme import Programme
from tillsight.core.timeconv import from_instant_us
from tillsight.errors import ConfigError, ConflictError
from tillsight.ingest.canonical import POINTS_LIMIT
from tillsight.loyalty import rewards as reward_store
from tillsight.pipeline import CLOCK_SETTING, Replayer
from tillsight.programme_file import load_programme
from tillsight.store import queries, schema

console = make_console()
points_app = typer.Typer(help="Points balances and manual adjustments.")
rewards_app = typer.Typer(help="Issue, look up and import rewards.")


def register(app: typer.Typer) -> None:
    app.add_typer(points_app, name="points")
    app.add_typer(rewards_app, name="rewards")


@points_app.command("adjust")
def adjust(
    customer: Annotated[str, typer.Argument(help="Customer key, POS or loyalty id.")],
    delta: Annotated[int, typer.Argument(help="Points to add (negative: remove).")],
    reason: Annotated[str, typer.Option(help="Why; kept with the entry.")],
    db: Database = None,
    programme_file: ProgrammeFile = None,
) -> None:
    """Add or remove points by hand; the entry names the operator's reason."""
    if not reason.strip():
        raise ConfigError("--reason: say why the balance changes")
    if not -POINTS_LIMIT < delta < POINTS_LIMIT:
        raise ConfigError(f"DELTA: {delta} is beyond any points balance (under 10^12)")
    programme = load_programme(programme_file)
    with open_store(db, reading=True) as store:  # the customer must be there
        with store.connect() as conn:
            key = queries.find_customer_key(conn, customer)
            profile = queries.profile(conn, key)
            when = store_clock(conn)
        if profile.points_balance + delta < 0:
            raise ConflictError(
                "INSUFFICIENT_POINTS",
                f"customer {key} has {profile.points_balance} points; "
                f"cannot take {-delta}",
            )

        event = _adjustment(profile, delta, reason.strip(), when, programme)
        Replayer(store, programme).run([event])
        with store.connect() as conn:
            balance = queries.profile(conn, key).points_balance
    console.print(
        f"customer {key}: {delta:+,} points ({reason.strip()}); balance {balance:,}"
    )


@points_app.command("show")
def show_points(
    customer: Annotated[str, typer.Argument(help="Customer key, POS or loyalty id.")],
    db: Database = None,
) -> None:
    """Print a customer's points ledger, each entry with its rule and event.

    An entry a late event corrected shows what it comes to now, and what it
    was first.
    """
    with open_store(db, reading=True) as store, store.connect() as conn:
        key = queries.find_customer_key(conn, customer)
        entries = queries.ledger(conn, key)
    table = Table(title=f"Points ledger of {key}")
    for name in ("time (UTC)", "points", "reason", "rule", "event", "balance"):
        table.add_column(
            name, justify="right" if name in {"points", "balance"} else "left"
        )
    balance = 0
    for entry in entries:
        balance += entry.delta
        reason = entry.reason
        if entry.corrected:
            reason += f" (first {entry.first_delta:+,}, corrected by a late event)"
        table.add_row(
            entry.at.strftime("%Y-%m-%d %H:%M"),
            f"{entry.delta:+,}",
            reason,
            entry.rule_id,
            entry.event_id,
            f"{balance:,}",
        )
    console.print(table)


@rewards_app.command("issue")
def issue_reward(
    customer: Annotated[str, typer.Argument(help="Customer key, POS or loyalty id.")],
    kind: Annotated[str, typer.Argument(help="A reward kind of the programme.")],
    campaign: Annotated[str | None, typer.Option(help="Campaign name.")] = None,
    store_id: Annotated[str | None, typer.Option("--store", help="Store.")] = None,
    db: Database = None,
    programme_file: ProgrammeFile = None,
) -> None:
    """Issue a reward by hand and print its code."""
    programme = load_programme(programme_file)
    with open_store(db, reading=True) as store, store.begin() as conn:
        key = queries.find_customer_key(conn, customer)
        reward = reward_store.issue(
            conn,
            programme,
            key,
            kind,
            at=datetime.now(UTC),
            campaign=campaign,
            store=store_id,
        )
    console.print(
        f"issued {escape(reward.kind)} to {escape(key)}: code "
        f"[bold]{escape(str(reward.display_code))}[/], expires "
        f"{reward.expires_at.isoformat()}",
        markup=True,
    )


@rewards_app.command("show")
def show_rewards(
    customer: Annotated[str, typer.Argument(help="Customer key, POS or loyalty id.")],
    db: Database = None,
) -> None:
    """List a customer's rewards: code, kind, campaign, stage at issue, status."""
    with open_store(db, reading=True) as store, store.connect() as conn:
        key = queries.find_customer_key(conn, customer)
        found = reward_store.customer_rewards(conn, key)
    now = datetime.now(UTC)
    campaigns = any(reward.campaign != reward.kind for reward in found)
    table = Table(title=f"Rewards of {key}")
    table.add_column("code", no_wrap=True)  # a cut code is no code
    table.add_column("kind", overflow="fold")
    if campaigns:  # a campaign is the kind unless the rule or import named one
        table.add_column("campaign", overflow="fold")
    table.add_column("stage", overflow="fold")
    for name in ("issued", "expires"):
        table.add_column(name, no_wrap=True)
    table.add_column("status", overflow="fold")
    for reward in found:
        status = reward.status(now)
        if reward.redeemed_at is not None:
            status += f" {reward.redeemed_at:%Y-%m-%d}"
        table.add_row(
            reward.display_code or "-",
            reward.kind,
            *([reward.campaign] if campaigns else []),
            reward.stage_at_issue or "-",
            f"{reward.issued_at:%Y-%m-%d}",
            f"{reward.expires_at:%Y-%m-%d}",
            status,
        )
    console.print(table)
    if any(reward.withdrawn_at is not None for reward in found):
        console.print(
            "withdrawn: a late event took back the decision that issued it; "
            "the code no longer redeems"
        )


@rewards_app.command("import")
def import_rewards(
    file: Annotated[Path, typer.Argument(help="CSV of a previous system's rewards.")],
    mapping: Annotated[Path, typer.Option(help="Mapping file naming the columns.")],
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where refused rows go (default: FILE.rejects.csv)."),
    ] = None,
    db: Database = None,
    programme_file: ProgrammeFile = None,
) -> None:
    """Import rewards issued (and redeemed) by a previous system.

    Refused rows are written, as they were read plus ``_line``, ``_field`` and
    ``_reason``, to a rejects file next to FILE: fix them there and import
    that file again.
    """
    from tillsight.ingest.rejects import RejectsWriter
    from tillsight.loyalty.importer import import_rewards as run_import
    from tillsight.loyalty.importer import load_reward_mapping

    if not file.exists():
        raise ConfigError(f"{file}: no such file")
    columns = load_reward_mapping(mapping)
    programme = load_programme(programme_file)
    with open_store(db) as store, store.begin() as conn:
        summary = run_import(conn, programme, file, columns, datetime.now(UTC))

    rejects_path = rejects or file.with_name(f"{file.name}.rejects.csv")
    with RejectsWriter(rejects_path) as writer:
        for row in summary.rejected:
            writer.write(row)
    console.print(
        f"{summary.read:,} rows: {summary.imported:,} imported "
        f"({summary.redeemed:,} already redeemed), {summary.already_there:,} "
        f"already there, {len(summary.rejected):,} rejected"
    )
    for error in summary.rejected[:50]:
        console.print(
            f"[yellow]rejected[/] {escape(str(error))}", markup=True, highlight=False
        )
    if writer.written:
        console.print(
            f"rejected rows kept in {rejects_path}: fix them there and import "
            "that file again",
            highlight=False,
        )


def _adjustment(
    profile: queries.Profile,
    delta: int,
    reason: str,
    when: datetime,
    programme: Programme,
) -> Event:
    ids = dict(profile.identities)
    identity = Identity(customer_id=ids.get("customer"), loyalty_id=ids.get("loyalty"))
    if identity.is_empty:
        raise ConfigError(f"customer {profile.key} has no POS or loyalty id to adjust")
    return Event(
        event_id=f"adjust-{uuid.uuid4().hex}",
        type=EventType.ADJUSTMENT,
        occurred_at=when,
        total=Decimal(0),
        currency=programme.currency,
        identity=identity,
        source="operator",
        points_delta=delta,
        note=reason,
    )


def store_clock(conn: Connection) -> datetime:
    """The store's clock (how far history has run), else now.

    An adjustment is dated there so that it does not also run every timer of
    every customer up to today when the store holds an old history.
    """
    table = schema.settings
    value = conn.execute(
        select(table.c.value).where(table.c.name == CLOCK_SETTING)
    ).scalar_one_or_none()
    return from_instant_us(int(value)) if value else datetime.now(UTC)
