"""The bundled Online Retail files import with the counts a plain CSV pass finds."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from ingest_helpers import REPO, make_mapping

from tillsight.core.events import Event, EventType
from tillsight.ingest import ImportSummary, read_csv

DATA = REPO / "examples" / "data"
NOT_COUNTED = {"POST", "DOT", "C2", "M", "m", "BANK CHARGES", "AMAZONFEE", "CRUK"}
NOT_COUNTED |= {"S", "PADS", "B"}


@dataclass
class Expected:
    purchases: int
    returns: int
    guests: int
    rejected: int
    totals: dict[str, Decimal]


def expected_from(path: Path) -> Expected:
    """Work out what the mapping should give, straight from the CSV."""
    invoices: dict[str, list[dict[str, str]]] = {}
    with path.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            invoices.setdefault(row["InvoiceNo"], []).append(row)

    kinds: Counter[str] = Counter()
    totals: dict[str, Decimal] = {}
    for number, rows in invoices.items():
        is_return = number.startswith("C")
        negative = any(Decimal(r["Quantity"]) < 0 for r in rows)
        unpriced = all(Decimal(r["UnitPrice"]) == 0 for r in rows)
        if unpriced or (negative and not is_return):
            kinds["rejected"] += 1
            continue
        kinds["return" if is_return else "purchase"] += 1
        kinds["guest"] += not rows[0]["CustomerID"]
        totals[number] = _total(rows, is_return)
    return Expected(
        kinds["purchase"], kinds["return"], kinds["guest"], kinds["rejected"], totals
    )


def _total(rows: list[dict[str, str]], is_return: bool) -> Decimal:
    total = Decimal(0)
    for row in rows:
        amount = abs(Decimal(row["Quantity"]) * Decimal(row["UnitPrice"]))
        if row["StockCode"] == "D" and not is_return:
            total -= amount
        elif row["StockCode"] not in NOT_COUNTED:
            total += amount
    return total


@pytest.mark.parametrize(
    "name", ["online-retail-sample.csv", "online-retail-customer-slice.csv"]
)
def test_the_bundled_file_imports_with_independently_computed_counts(name):
    path = DATA / name
    expected = expected_from(path)
    summary = ImportSummary()
    totals: dict[str, Decimal] = {}

    for item in read_csv(path, make_mapping()):
        summary.add(item)
        if isinstance(item, Event):
            totals[item.event_id.removeprefix("online-retail:")] = item.total

    assert summary.purchases == expected.purchases
    assert summary.returns == expected.returns
    assert summary.guest_transactions == expected.guests
    assert summary.rejected_transactions == expected.rejected
    with path.open(encoding="utf-8") as file:
        assert summary.rows_read == sum(1 for _ in file) - 1
    assert totals == expected.totals


def test_the_sample_holds_the_documented_invoices():
    summary = ImportSummary()

    for item in read_csv(DATA / "online-retail-sample.csv", make_mapping()):
        summary.add(item)

    assert summary.transactions + summary.rejected_transactions == 2490
    assert summary.rows_read == 53581


def test_every_event_of_the_customer_slice_is_a_known_customer_in_pounds():
    events = [
        item
        for item in read_csv(DATA / "online-retail-customer-slice.csv", make_mapping())
        if isinstance(item, Event)
    ]

    assert all(int(e.identity.customer_id or "1") % 10 == 0 for e in events)
    assert {e.currency for e in events} == {"GBP"}
    assert sum(e.type is EventType.RETURN for e in events) <= 300
