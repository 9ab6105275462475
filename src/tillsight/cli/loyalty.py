"""``points``, ``rewards`` and ``kpi``: balances, rewards and the redemption rate."""

from __future__ import annotations

import csv
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, func, select

from tillsight.cli.options import Database, ProgrammeFile
from tillsight.core.events import Event, EventType, Identity
from tillsight.core.programme import Programme
from tillsight.core.timeconv import from_instant_us
from tillsight.errors import ConfigError, ConflictError
from tillsight.kpi.redemption import (
    DIMENSIONS,
    RedemptionReport,
    parse_dimensions,
    redemption_report,
)
from tillsight.loyalty import rewards as reward_store
from tillsight.loyalty.tables import rewards as rewards_table
from tillsight.pipeline import CLOCK_SETTING, Replayer
from tillsight.programme_file import load_programme
from tillsight.store import queries, schema
from tillsight.store.db import connect

console = Console()
points_app = typer.Typer(help="Points balances and manual adjustments.")
rewards_app = typer.Typer(help="Issue, look up and import rewards.")
kpi_app = typer.Typer(help="Figures: the Reward Redemption Rate.")


def register(app: typer.Typer) -> None:
    app.add_typer(points_app, name="points")
    app.add_typer(rewards_app, name="rewards")
    app.add_typer(kpi_app, name="kpi")


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
    programme = load_programme(programme_file)
    store = connect(db)
    with store.connect() as conn:
        key = queries.find_customer_key(conn, customer)
        profile = queries.profile(conn, key)
        when = _store_clock(conn)
    if profile.points_balance + delta < 0:
        raise ConflictError(
            "INSUFFICIENT_POINTS",
            f"customer {key} has {profile.points_balance} points; cannot take {-delta}",
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
    """Print a customer's points ledger, each entry with its rule and event."""
    store = connect(db)
    ledger = schema.points_ledger
    with store.connect() as conn:
        key = queries.find_customer_key(conn, customer)
        rows = conn.execute(
            select(ledger)
            .where(ledger.c.customer_key == key)
            .order_by(ledger.c.at, ledger.c.id)
        ).all()
    table = Table(title=f"Points ledger of {key}")
    for name in ("time (UTC)", "points", "reason", "rule", "event", "balance"):
        table.add_column(
            name, justify="right" if name in {"points", "balance"} else "left"
        )
    balance = 0
    for row in rows:
        balance += row.delta
        table.add_row(
            row.at.strftime("%Y-%m-%d %H:%M"),
            f"{row.delta:+,}",
            row.reason,
            row.rule_id or "",
            row.event_id or "",
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
    store = connect(db)
    with store.begin() as conn:
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
        f"issued {reward.kind} to {key}: code [bold]{reward.display_code}"
        f"[/], expires {reward.expires_at.isoformat()}"
    )


@rewards_app.command("show")
def show_rewards(
    customer: Annotated[str, typer.Argument(help="Customer key, POS or loyalty id.")],
    db: Database = None,
) -> None:
    """List a customer's rewards: kind, campaign, stage at issue, redemption."""
    store = connect(db)
    with store.connect() as conn:
        key = queries.find_customer_key(conn, customer)
        found = reward_store.customer_rewards(conn, key)
    table = Table(title=f"Rewards of {key}")
    for name in ("code", "kind", "campaign", "stage", "issued", "expires", "redeemed"):
        table.add_column(name)
    for reward in found:
        table.add_row(
            reward.display_code or "(held out)",
            reward.kind,
            reward.campaign,
            reward.stage_at_issue or "-",
            f"{reward.issued_at:%Y-%m-%d}",
            f"{reward.expires_at:%Y-%m-%d}",
            f"{reward.redeemed_at:%Y-%m-%d}" if reward.redeemed_at else "-",
        )
    console.print(table)


@rewards_app.command("import")
def import_rewards(
    file: Annotated[Path, typer.Argument(help="CSV of a previous system's rewards.")],
    mapping: Annotated[Path, typer.Option(help="Mapping file naming the columns.")],
    db: Database = None,
    programme_file: ProgrammeFile = None,
) -> None:
    """Import rewards issued (and redeemed) by a previous system."""
    from tillsight.loyalty.importer import import_rewards as run_import
    from tillsight.loyalty.importer import load_reward_mapping

    if not file.exists():
        raise ConfigError(f"{file}: no such file")
    columns = load_reward_mapping(mapping)
    programme = load_programme(programme_file)
    store = connect(db)
    with store.begin() as conn:
        summary = run_import(conn, programme, file, columns, datetime.now(UTC))
    console.print(
        f"{summary.read:,} rows: {summary.imported:,} imported "
        f"({summary.redeemed:,} already redeemed), {summary.already_there:,} "
        f"already there, {len(summary.rejected):,} rejected"
    )
    for error in summary.rejected[:50]:
        console.print(f"[yellow]rejected[/] {error}", highlight=False)


@kpi_app.command("redemption")
def redemption(
    by: Annotated[str, typer.Option(help=f"Group by: {', '.join(DIMENSIONS)}.")] = "",
    output: Annotated[
        str, typer.Option("--format", help="table, csv or json.")
    ] = "table",
    html: Annotated[Path | None, typer.Option(help="Also write an HTML page.")] = None,
    as_of: Annotated[str | None, typer.Option(help="ISO time; default: now.")] = None,
    db: Database = None,
    programme_file: ProgrammeFile = None,
) -> None:
    """Print the Reward Redemption Rate (to date and matured) by group."""
    if output not in {"table", "csv", "json"}:
        raise ConfigError(f"--format {output!r}: choose table, csv or json")
    programme = load_programme(programme_file)
    moment = _as_of(as_of, programme)
    dimensions = parse_dimensions(by)
    store = connect(db)
    with store.connect() as conn:
        report = _report(conn, programme, dimensions, moment)
        if html is not None:
            _write_html(conn, programme, report, html)
    if output == "json":
        sys.stdout.write(
            orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"
        )
    elif output == "csv":
        _write_csv(report)
    else:
        print_report(report)


def print_report(report: RedemptionReport, title: str | None = None) -> None:
    """Print the report's rows, total and control groups as Rich tables."""
    table = Table(
        title=title or f"Reward Redemption Rate, as of {report.as_of:%Y-%m-%d}"
    )
    for name in report.by:
        table.add_column(name)
    for name in (
        "issued",
        "redeemed",
        "rate",
        "matured",
        "matured rate",
        "median days",
        "revenue",
    ):
        table.add_column(name, justify="right")
    for row in [*report.rows, report.total]:
        labels = [row.group.get(name, "all") for name in report.by]
        table.add_row(
            *labels,
            f"{row.issued:,}",
            f"{row.redeemed:,}",
            _pct(row.rate),
            f"{row.matured_redeemed:,}/{row.matured_issued:,}",
            _pct(row.matured_rate),
            "-" if row.median_days is None else str(row.median_days),
            f"{row.revenue:,.2f}",
        )
    console.print(table)
    if report.control:
        console.print(_control_table(report))


def _control_table(report: RedemptionReport) -> Table:
    table = Table(title="Control groups: bought again within the reward's validity")
    for name in ("campaign", "rewarded", "held out", "lift"):
        table.add_column(name, justify="left" if name == "campaign" else "right")
    for group in report.control:
        lift = group.lift
        table.add_row(
            group.campaign,
            _share(group.rewarded_bought_again, group.rewarded, group.rewarded_rate),
            _share(group.held_out_bought_again, group.held_out, group.held_out_rate),
            "-" if lift is None else f"{lift * 100:+.1f} pts",
        )
    return table


def _share(part: int, whole: int, rate: Decimal | None) -> str:
    return f"{part:,}/{whole:,} {_pct(rate)}"


def _report(
    conn: Connection, programme: Programme, by: tuple[str, ...], moment: datetime
) -> RedemptionReport:
    stages = [stage.id for stage in programme.stages]
    return redemption_report(conn, programme.zone, stages, by=by, as_of=moment)


def _write_html(
    conn: Connection, programme: Programme, report: RedemptionReport, path: Path
) -> None:
    from tillsight.kpi.report import render

    slices = {
        name: _report(conn, programme, (name,), report.as_of).rows
        for name in DIMENSIONS
    }
    path.write_text(render(report, slices, "Reward Redemption Rate"), encoding="utf-8")
    console.print(f"wrote {path}", highlight=False)


def _write_csv(report: RedemptionReport) -> None:
    total = {name: "all" for name in report.by} | report.total.to_json()
    rows = [row.to_json() for row in report.rows] + [total]
    writer = csv.DictWriter(sys.stdout, fieldnames=list(total))
    writer.writeheader()
    writer.writerows(rows)


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


def _store_clock(conn: Connection) -> datetime:
    """The store's clock (how far history has run), else now.

    An adjustment is dated there so that it does not also run every timer of
    every customer up to today when the store holds an old history.
    """
    table = schema.settings
    value = conn.execute(
        select(table.c.value).where(table.c.name == CLOCK_SETTING)
    ).scalar_one_or_none()
    return from_instant_us(int(value)) if value else datetime.now(UTC)


def _as_of(text: str | None, programme: Programme) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--as-of {text!r} is not an ISO time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=programme.zone)


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def show_loyalty(db: str | None, programme: Programme) -> None:
    """Print points, rewards issued and redeemed and the rate by stage and store."""
    store = connect(db)
    ledger = schema.points_ledger
    with store.connect() as conn:
        by_reason = conn.execute(
            select(ledger.c.reason, func.count(), func.sum(ledger.c.delta))
            .group_by(ledger.c.reason)
            .order_by(ledger.c.reason)
        ).all()
        kinds = conn.execute(
            select(
                rewards_table.c.kind,
                rewards_table.c.held_out,
                func.count(),
                func.count(rewards_table.c.redeemed_at),
            )
            .group_by(rewards_table.c.kind, rewards_table.c.held_out)
            .order_by(rewards_table.c.kind, rewards_table.c.held_out)
        ).all()
        clock = _store_clock(conn)
        report = _report(conn, programme, ("stage", "location"), clock)
    points = Table(title="Points ledger")
    for name in ("reason", "entries", "points"):
        points.add_column(name, justify="left" if name == "reason" else "right")
    for reason, entries, total in by_reason:
        points.add_row(reason, f"{entries:,}", f"{int(total or 0):+,}")
    console.print(points)
    issued = Table(title="Rewards issued by the programme's rules")
    for name in ("kind", "group", "rewards", "redeemed"):
        issued.add_column(
            name, justify="left" if name in {"kind", "group"} else "right"
        )
    for kind, held_out, count, redeemed in kinds:
        issued.add_row(
            kind, "held out" if held_out else "rewarded", f"{count:,}", f"{redeemed:,}"
        )
    console.print(issued)
    print_report(
        report,
        f"Reward Redemption Rate by stage and location, as of {report.as_of:%Y-%m-%d}",
    )
    if report.total.redeemed == 0:
        console.print(
            "[yellow]No reward was redeemed:[/] the sample's tills never took a "
            "reward code or points, so every rate is 0%. Nothing was made up to "
            "fill it; replay a history with redemptions to see real rates."
        )
