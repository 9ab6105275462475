"""``customer``, ``stages`` and ``firings``: what the engine decided."""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, select

from tillsight.cli.options import Database, open_store
from tillsight.cli.spreadsheet import cell
from tillsight.cli.terminal import make_console
from tillsight.store import queries, schema

console = make_console()


def register(app: typer.Typer) -> None:
    app.command()(customer)
    app.command()(stages)
    app.command()(firings)


def customer(
    reference: Annotated[
        str, typer.Argument(metavar="ID", help="Customer key, POS id or loyalty id.")
    ],
    db: Database = None,
    superseded: Annotated[
        bool, typer.Option(help="Also show decisions a late event superseded.")
    ] = False,
) -> None:
    """Show a customer's profile and timeline; each change with its rule and event."""
    show_customer(db, reference, include_superseded=superseded)


def stages(db: Database = None) -> None:
    """Count customers by stage, segment and tier."""
    show_stages(db)


def firings(db: Database = None) -> None:
    """Write every rule firing as CSV: customer, rule, time, event id."""
    with open_store(db, reading=True) as store, store.connect() as conn:
        writer = csv.writer(sys.stdout)
        writer.writerow(["customer", "rule", "time", "event_id"])
        for key, rule, at, event_id in queries.firings(conn):
            writer.writerow([key, cell(rule), at.isoformat(), cell(event_id)])


def show_customer(
    db: str | None, reference: str | None, *, include_superseded: bool = False
) -> None:
    """Print one customer (by default the one with the most firings)."""
    with open_store(db, reading=True) as store, store.connect() as conn:
        key = (
            _busiest_customer(conn)
            if reference is None
            else queries.find_customer_key(conn, reference)
        )
        if key is None:
            console.print("no customers yet")
            return
        profile = queries.profile(conn, key)
        entries = queries.timeline(conn, key, include_superseded=include_superseded)
        merged = (
            reference is not None
            and reference != key
            and queries.survivor(conn, reference) == key
        )
    if merged:
        console.print(f"{reference} was merged into {key}; showing {key}")
    console.print(_profile_table(profile))
    console.print(_timeline_table(profile.key, entries))


def show_stages(db: str | None) -> None:
    """Print customer counts by stage, segment and tier."""
    with open_store(db, reading=True) as store, store.connect() as conn:
        counts = queries.stage_counts(conn)
    table = Table(title="Customers by stage, segment and tier")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("customers", justify="right")
    for kind in ("stage", "segment", "tier"):
        for name, number in sorted(counts[kind].items()):
            table.add_row(kind, name, f"{number:,}")
    console.print(table)


def _busiest_customer(conn: object) -> str | None:
    from sqlalchemy import Connection

    assert isinstance(conn, Connection)
    table = schema.timeline
    row = conn.execute(
        select(table.c.customer_key, func.count().label("n"))
        .where(table.c.kind == "rule_fired")
        .group_by(table.c.customer_key)
        .order_by(func.count().desc(), table.c.customer_key)
        .limit(1)
    ).first()
    return None if row is None else str(row.customer_key)


def _profile_table(profile: queries.Profile) -> Table:
    table = Table(title=f"Customer {profile.key}", show_header=False)
    ids = ", ".join(f"{kind} {value}" for kind, value in profile.identities) or "-"
    table.add_row("known as", ids)
    table.add_row("stage", profile.stage or "-")
    table.add_row("segments", ", ".join(profile.segments) or "-")
    table.add_row("tier", profile.tier or "-")
    table.add_row("purchases (counting)", str(profile.purchase_count))
    table.add_row("lifetime net spend", f"{profile.lifetime_net_spend:,.2f}")
    table.add_row("points", f"{profile.points_balance:,}")
    first = profile.first_purchase_at
    last = profile.last_purchase_at
    table.add_row("first purchase", first.isoformat() if first else "-")
    table.add_row("last purchase", last.isoformat() if last else "-")
    return table


_WHAT = {
    "rule_fired": "rule fired",
    "stage_changed": "stage \u2192 {subject}",
    "segment_entered": "segment + {subject}",
    "segment_left": "segment \u2212 {subject}",
    "tier_entered": "tier \u2192 {subject}",
    "moment": "moment {subject}",
    "action": "asks {subject}",
    "points": "points {subject}",
    "points_shortfall": "points short ({subject})",
}
_MISMATCH = {
    "unknown_sale": (
        "return of {refund} names {sale}, not a sale in this customer's history: "
        "taken as unlinked, takes back {taken_back}"
    ),
    "more_than_the_sale": (
        "return of {refund} is more than the {left_of_sale} left of sale {sale}: "
        "takes back {taken_back}"
    ),
    "lines_do_not_fit": (
        "return of {refund} names lines of sale {sale} that do not fit ({lines}): "
        "takes back {taken_back}"
    ),
}


def _mismatch_fields(detail: dict[str, Any] | None) -> dict[str, Any]:
    """A mismatch's detail, its lines as one phrase, anything missing as '?'."""
    fields: dict[str, Any] = defaultdict(lambda: "?", detail or {})
    lines = fields.get("lines")
    if isinstance(lines, dict):
        fields["lines"] = "; ".join(f"{key}: {why}" for key, why in lines.items())
    return fields


def _timeline_table(key: str, entries: list[queries.TimelineEntry]) -> Table:
    table = Table(title=f"Timeline of {key}")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("what", overflow="fold")
    table.add_column("rule", overflow="fold")
    table.add_column("event", overflow="fold")
    for entry in entries:
        subject = entry.subject
        if entry.kind == "points" and entry.detail:
            subject = f"{entry.detail['delta']:+,} ({subject})"
            if "first_delta" in entry.detail:
                first = entry.detail["first_delta"]
                subject += f" [first {first:+,}, corrected by a late event]"
        if entry.kind == "return_mismatch" and entry.subject in _MISMATCH:
            what = _MISMATCH[entry.subject].format_map(_mismatch_fields(entry.detail))
        else:
            what = _WHAT.get(entry.kind, entry.kind).format(subject=subject)
        if entry.superseded:
            what += " [superseded]"
        when = entry.at.strftime("%Y-%m-%d %H:%M")
        table.add_row(when, what, entry.rule_id, entry.event_id)
    return table
