"""Write a seeded, synthetic till history in the Online Retail CSV format.

The file reads with ``examples/mappings/online-retail.yaml`` (or the benchmark
copy, ``benchmarks/mapping.yaml``, which also tags a screening SKU), so it goes
through the same importer as the real data. Every run with the same arguments
writes the same bytes.

Shape of the history, so that every rule of the default programme has work:

- customers arrive over the first 20 months and buy at their own pace (a
  log-normal rate): quiet customers, regulars and a few heavy buyers who cross
  the VIP tier; bursts of purchases a few days apart (three within 90 days),
  dormant spells of 181 to 320 days (lapse timers and win-backs), and now and
  then a purchase exactly 180 wall-clock days after the last (the timer's
  due time, where the purchase must win);
- about 8% returns (``C`` invoices, negative quantities, never linked to a
  sale), about 10% guest sales, some wholesale lines over £1,000, postage and
  discount lines, a few stock moves that the mapping rejects;
- equal timestamps (minute resolution; guest sales at the same minute; two
  invoices of one customer in the same minute) and night-time sales around
  the clock changes, including the repeated hour in October (written as wall
  clock, which the mapping reads as its first occurrence).

Events come out in time order from a heap of each customer's next visit, so
memory grows with the number of customers, never with the number of events.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from zoneinfo import ZoneInfo

HEADER = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
ZONE = ZoneInfo("Europe/London")
FIRST_DAY = date(2010, 12, 1)
ARRIVAL_DAYS = 600
FIRST_INVOICE = 1_000_000
FIRST_CUSTOMER = 10_000
DATA_DIR = Path(__file__).parent / ".data"
_NAME_WORDS = (
    *("WHITE", "HANGING", "HEART", "LANTERN", "METAL", "VINTAGE", "RED", "BLUE"),
    *("PINK", "JUMBO", "BAG", "CAKE", "CASES", "SET", "OF", "3", "TEA", "CUP"),
    *("SAUCER", "CANDLE", "HOLDER", "RETROSPOT", "GLASS", "DOORMAT", "CHRISTMAS"),
    *("PAPER", "CHAIN", "KIT", "WOODEN", "FRAME", "CERAMIC", "MUG"),
)

Row = list[str]


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    description: str
    price: str


@dataclass(slots=True)
class Visit:
    """A customer's next visit: the instant orders the heap, the rest rides."""

    at_s: int
    customer: int
    local: datetime


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and write one history file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20111209)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    out = args.out or default_path(args.events, args.customers, args.seed)
    started = time.perf_counter()
    written = write_history(out, args.events, args.customers, args.seed)
    seconds = time.perf_counter() - started
    print(f"{out}: {written:,} invoices in {seconds:.1f}s", file=sys.stderr)


def default_path(events: int, customers: int, seed: int) -> Path:
    """Where a history of this size and seed lives under benchmarks/.data."""
    return DATA_DIR / f"synthetic-{events}-{customers}-{seed}.csv"


def write_history(path: Path, events: int, customers: int, seed: int) -> int:
    """Write ``events`` invoices over ``customers`` customers; return the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    history = History(events, customers, seed)
    written = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(HEADER)
        for rows in history.invoices():
            writer.writerows(rows)
            written += 1
    return written


class History:
    """Draws customers, visits and invoices from one seeded random stream."""

    def __init__(self, events: int, customers: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.events = events
        self.customers = customers
        self.catalogue = _catalogue(self.rng, 600)
        self.rates = [self.rng.lognormvariate(0.0, 1.1) for _ in range(customers)]
        self.countries = [_country(self.rng) for _ in range(customers)]
        self.has_bought = bytearray(customers)
        # Mean days between ordinary visits, scaled so that the history spans
        # about two years whatever the ratio of events to customers.
        self.mean_gap_days = 80.0 * 9.0 * customers / max(events, 1)
        self.next_invoice = FIRST_INVOICE
        self.shifts = _clock_change_days(FIRST_DAY.year, FIRST_DAY.year + 3)

    def invoices(self) -> Iterator[list[Row]]:
        """Yield the rows of each invoice, in time order, until ``events``."""
        heap = [self._arrival(customer) for customer in range(self.customers)]
        heap = [(visit.at_s, visit.customer, visit) for visit in heap]
        heapq.heapify(heap)
        emitted = 0
        while heap and emitted < self.events:
            _at, _customer, visit = heap[0]
            for rows in self._visit(visit):
                if emitted < self.events:
                    yield rows
                    emitted += 1
            following = self._next_visit(visit)
            heapq.heapreplace(heap, (following.at_s, following.customer, following))

    # -- when -----------------------------------------------------------------

    def _arrival(self, customer: int) -> Visit:
        day = FIRST_DAY + timedelta(days=int(self.rng.random() * ARRIVAL_DAYS))
        return self._visit_on(customer, day)

    def _next_visit(self, visit: Visit) -> Visit:
        draw = self.rng.random()
        if draw < 0.004:
            exact = visit.local + timedelta(days=180)
            if _exists(exact):
                return Visit(_instant_s(exact), visit.customer, exact)
        if draw < 0.012:
            return visit
        if draw < 0.05:
            days = self.rng.uniform(181.0, 320.0)
        elif draw < 0.27:
            days = self.rng.uniform(0.0, 12.0)
        else:
            mean = self.mean_gap_days / self.rates[visit.customer]
            days = self.rng.expovariate(1.0 / mean)
        return self._visit_on(visit.customer, visit.local.date() + _days(days))

    def _visit_on(self, customer: int, day: date) -> Visit:
        while True:
            local = datetime.combine(day, self._time_of_day(day))
            if _exists(local):
                return Visit(_instant_s(local), customer, local)

    def _time_of_day(self, day: date) -> wall_time:
        rng = self.rng
        night = 0.6 if day in self.shifts else 0.02
        if rng.random() < night:
            minute = int(rng.random() * 240)
        else:
            minute = 7 * 60 + int(rng.triangular(0, 13 * 60, 5 * 60))
        return wall_time(minute // 60, minute % 60)

    # -- what ------------------------------------------------------------------

    def _visit(self, visit: Visit) -> Iterator[list[Row]]:
        customer_id = f"{FIRST_CUSTOMER + visit.customer}.0"
        country = self.countries[visit.customer]
        is_return = self.has_bought[visit.customer] and self.rng.random() < 0.1
        if is_return:
            yield self._return(visit.local, customer_id, country)
        else:
            self.has_bought[visit.customer] = 1
            yield self._purchase(visit.local, customer_id, country)
        draw = self.rng.random()
        if draw < 0.11:
            yield self._purchase(visit.local, "", "United Kingdom")
        elif draw < 0.113:
            yield self._stock_move(visit.local)

    def _purchase(self, local: datetime, customer_id: str, country: str) -> list[Row]:
        rng = self.rng
        invoice = self._invoice_no("")
        count = rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
        lines = [self._product_line(rng.random() < 0.02) for _ in range(count)]
        extra = rng.random()
        if extra < 0.06:
            lines.append(("POST", "POSTAGE", str(rng.randint(1, 3)), "18.00"))
        elif extra < 0.066:
            price = f"{rng.uniform(1, 40):.2f}"
            lines.append(("D", "Discount", "1", price))
        elif extra < 0.069:
            lines.append(("SCREEN", "HEALTH SCREENING VOUCHER", "1", "35.00"))
        elif extra < 0.072:
            lines.append(("M", "Manual", "1", f"{rng.uniform(0.5, 30):.2f}"))
        return self._rows(invoice, local, lines, customer_id, country)

    def _return(self, local: datetime, customer_id: str, country: str) -> list[Row]:
        rng = self.rng
        invoice = self._invoice_no("C")
        if rng.random() < 0.1:
            lines = [("D", "Discount", "-1", f"{rng.uniform(1, 60):.2f}")]
        else:
            lines = [
                self._product_line(False, returned=True)
                for _ in range(rng.choices((1, 2), weights=(4, 1))[0])
            ]
        return self._rows(invoice, local, lines, customer_id, country)

    def _stock_move(self, local: datetime) -> list[Row]:
        product = self.rng.choice(self.catalogue)
        line = (product.sku, "", f"-{self.rng.randint(1, 50)}", "0")
        return self._rows(self._invoice_no(""), local, [line], "", "United Kingdom")

    def _product_line(
        self, is_wholesale: bool, *, returned: bool = False
    ) -> tuple[str, str, str, str]:
        product = self.rng.choice(self.catalogue)
        if is_wholesale:
            quantity = self.rng.randint(150, 1500)
        else:
            quantity = min(int(self.rng.paretovariate(1.6)), 48)
        if returned:
            quantity = -min(quantity, 6)
        return product.sku, product.description, str(quantity), product.price

    def _rows(
        self,
        invoice: str,
        local: datetime,
        lines: list[tuple[str, str, str, str]],
        customer_id: str,
        country: str,
    ) -> list[Row]:
        when = local.strftime("%Y-%m-%d %H:%M:%S")
        rows = [
            [invoice, sku, description, quantity, when, price, customer_id, country]
            for sku, description, quantity, price in lines
        ]
        if len(rows) > 1 and self.rng.random() < 0.02:
            # Online Retail's later lines sometimes carry the next minute.
            later = local + timedelta(minutes=1)
            rows[-1][4] = later.strftime("%Y-%m-%d %H:%M:%S")
        return rows

    def _invoice_no(self, prefix: str) -> str:
        number = self.next_invoice
        self.next_invoice += 1
        return f"{prefix}{number}"


def _catalogue(rng: random.Random, size: int) -> list[Product]:
    """Products with Online Retail-like codes, names and prices."""
    words = _NAME_WORDS
    products = []
    for number in range(size):
        suffix = rng.choice(("", "", "", "A", "B", "C"))
        name = " ".join(rng.choice(words) for _ in range(rng.randint(2, 5)))
        if rng.random() < 0.05:
            name = f"{name}, {rng.choice(words)}"
        price = round(math.exp(rng.uniform(math.log(0.29), math.log(16.95))), 2)
        products.append(Product(f"{20000 + number}{suffix}", name, f"{price:.2f}"))
    return products


def _country(rng: random.Random) -> str:
    return rng.choices(
        ("United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands"),
        weights=(88, 3, 3, 3, 1.5, 1.5),
    )[0]


def _clock_change_days(first_year: int, last_year: int) -> set[date]:
    """The days on which UK clocks go forward or back."""
    days = set()
    for year in range(first_year, last_year + 1):
        for month in (3, 10):
            last = date(year, month, 31)
            days.add(last - timedelta(days=(last.weekday() + 1) % 7))
    return days


def _days(days: float) -> timedelta:
    return timedelta(days=int(days))


def _exists(local: datetime) -> bool:
    """Tell whether a wall-clock reading happens in the UK (not skipped)."""
    aware = local.replace(tzinfo=ZONE)
    return aware.astimezone(UTC).astimezone(ZONE).replace(tzinfo=None) == local


def _instant_s(local: datetime) -> int:
    """Seconds since the epoch of a wall-clock reading (first one if repeated)."""
    return int(local.replace(tzinfo=ZONE, fold=0).timestamp())


if __name__ == "__main__":
    main()
