"""``kpi``: the Reward Redemption Rate as a table, CSV, JSON or an HTML page."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table
from sqlalchemy import Connection, func, select

from tillsight.cli import spreadsheet
from tillsight.cli.loyalty import store_clock
from tillsight.cli.options import Database, ProgrammeFile, open_store
from tillsight.cli.terminal import make_console
from tillsight.core.programme import Programme
from tillsight.errors import ConfigError
from tillsight.kpi.redemption import (
    DIMENSIONS,
    RedemptionReport,
    parse_dimensions,
    redemption_report,
)
from tillsight.loyalty.tables import rewards as rewards_table
from tillsight.programme_file import load_programme
from tillsight.store import schema

console = make_console()
kpi_app = typer.Typer(help="Figures: the Reward Redemption Rate.")


def register(app: typer.Typer) -> None:
    app.add_typer(kpi_app, name="kpi")


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
    with open_store(db, reading=True) as store, store.connect() as conn:
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
    rows = [spreadsheet.row(row.to_json()) for row in report.rows] + [total]
    writer = csv.DictWriter(sys.stdout, fieldnames=list(total))
    writer.writeheader()
    writer.writerows(rows)


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
    ledger = schema.points_ledger
    with open_store(db, reading=True) as store, store.connect() as conn:
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
        clock = store_clock(conn)
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
            "fill it; replay a history with redemptions to see real rates.",
            markup=True,
        )
