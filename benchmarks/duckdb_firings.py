"""Compute the default programme's rule firings from a till CSV with DuckDB.

An independent implementation of DESIGN.md's rules as one SQL pipeline over
the raw CSV, to check the engine against and to time it against. SQL does the
work; Python only reads the settings (mapping, programme), builds the few
pieces of SQL that come from the mapping's line rules and runs the steps.

What it reproduces of the importer (``tillsight.ingest.csv_source``): a
transaction is the consecutive rows of one InvoiceNo (one that comes back
later is rejected); one bad row rejects its transaction; time and customer
come from the first row, and every row must name the same customer; a
return is an invoice with the mapping's prefix, whose non-discount lines are
all negative or all positive; a sale may not have a negative line; excluded
lines do not count, discount lines lower a sale; a sale whose discounts
exceed its products, or whose lines are all unpriced, is rejected; wall-clock
times are read in the mapping's zone (a repeated hour as its first
occurrence, a skipped one rejected). Money is DECIMAL(18,4), never DOUBLE.

And of the engine (``tillsight.core.engine``, ``Replayer``): customer events
are ordered by (instant, event id); day windows are wall-clock arithmetic;
the lapse timer is due at the last purchase's wall clock plus ``after_days``
and fires if the next purchase is strictly later, or if it is due at or
before the last event of the file; ``won_back`` fires at every purchase made
while the customer is lapsed (see ``WALK_SQL``).
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from tillsight.core.programme import Programme, Trigger
from tillsight.ingest.mapping import LineRule, Mapping, load_mapping
from tillsight.programme_file import load_programme

Firing = tuple[str, str, int, str]
"""customer id (as in the CSV), rule id, time (µs since epoch, UTC), event id"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Settings:
    """The numbers of the default programme that the SQL needs."""

    window_days: int
    at_least: int
    over: Decimal
    lapse_days: int
    vip_spend: Decimal
    screening_tags: tuple[str, ...]


READ_SQL = """
CREATE TEMP TABLE raw AS
SELECT * FROM read_csv(
    $path, header = true, auto_detect = false, delim = ',', quote = '"',
    escape = '"', columns = {
        'InvoiceNo': 'VARCHAR', 'StockCode': 'VARCHAR', 'Description': 'VARCHAR',
        'Quantity': 'VARCHAR', 'InvoiceDate': 'VARCHAR', 'UnitPrice': 'VARCHAR',
        'CustomerID': 'VARCHAR', 'Country': 'VARCHAR'})
"""

# One row per CSV line, in file order (rowid: the table keeps insertion order).
LINES_SQL = """
CREATE TEMP TABLE line AS
WITH typed AS (
    SELECT
        rowid AS line_no,
        trim(coalesce(InvoiceNo, '')) AS txn,
        trim(coalesce(StockCode, '')) AS sku,
        trim(coalesce(Description, '')) AS description,
        TRY_CAST(trim(Quantity) AS DECIMAL(18, 4)) AS quantity,
        TRY_CAST(trim(UnitPrice) AS DECIMAL(18, 4)) AS unit_price,
        TRY_CAST(trim(Quantity) AS DECIMAL(38, 12)) AS quantity_wide,
        TRY_CAST(trim(UnitPrice) AS DECIMAL(38, 12)) AS unit_price_wide,
        try_strptime(trim(InvoiceDate), '%Y-%m-%d %H:%M:%S') AS wall,
        trim(coalesce(CustomerID, '')) AS customer_text
    FROM raw
), zoned AS (
    SELECT *, timezone($zone, wall) AS later_reading FROM typed
), placed AS (
    SELECT
        *,
        -- ICU reads a repeated hour as its second occurrence; the importer
        -- takes the first (fold=0), one hour earlier.
        CASE WHEN timezone($zone, later_reading - INTERVAL 1 HOUR) = wall
             THEN later_reading - INTERVAL 1 HOUR
             ELSE later_reading END AS instant,
        CASE WHEN list_contains($guest_values, customer_text) THEN NULL
             WHEN regexp_matches(customer_text, '[.eE]')
             THEN regexp_extract(customer_text, '^([0-9]+)\\.0$', 1)
             ELSE customer_text END AS customer_raw,
        {role} AS role,
        {screening} AS is_screening
    FROM zoned
)
SELECT
    line_no, txn, sku, quantity, unit_price, wall, instant, role, is_screening,
    nullif(customer_raw, '') AS customer,
    (sku = '' OR wall IS NULL OR timezone($zone, instant) <> wall
     OR quantity IS NULL OR unit_price IS NULL OR quantity = 0
     OR (unit_price < 0 AND role <> 'discount')
     OR coalesce(customer_raw = '', false)) AS is_bad,
    (quantity <> quantity_wide OR unit_price <> unit_price_wide) AS is_rounded
FROM placed
WHERE txn <> ''
"""

# One row per transaction that the importer accepts.
EVENTS_SQL = """
CREATE TEMP TABLE event AS
WITH runs AS (
    SELECT *, sum(is_start::INTEGER) OVER (ORDER BY line_no) AS run
    FROM (
        SELECT *, txn IS DISTINCT FROM lag(txn) OVER (ORDER BY line_no) AS is_start
        FROM line
    )
), first_runs AS (
    SELECT * FROM runs
    QUALIFY run = min(run) OVER (PARTITION BY txn)
), txns AS (
    SELECT
        txn,
        starts_with(txn, $return_prefix) AS is_return,
        arg_min(instant, line_no) AS instant,
        arg_min(wall, line_no) AS wall,
        arg_min(customer, line_no) AS customer,
        bool_or(is_bad) AS has_bad_line,
        count(DISTINCT coalesce(customer, '')) AS customers,
        count(*) FILTER (role <> 'discount') AS signed_lines,
        count(*) FILTER (role <> 'discount' AND quantity < 0) AS signed_negatives,
        count(*) AS lines,
        count(*) FILTER (quantity < 0) AS negatives,
        bool_and(unit_price = 0) AS is_unpriced,
        bool_or(is_screening) AS is_screening,
        sum(CASE WHEN role = 'excluded' THEN 0
                 WHEN role = 'discount' AND NOT starts_with(txn, $return_prefix)
                 THEN -abs(quantity * unit_price)
                 ELSE abs(quantity * unit_price) END) AS total
    FROM first_runs
    GROUP BY txn
), signs AS (
    SELECT
        *,
        CASE WHEN signed_lines = 0 THEN negatives ELSE signed_negatives END AS neg,
        CASE WHEN signed_lines = 0 THEN lines ELSE signed_lines END AS signed
    FROM txns
)
SELECT
    $source || ':' || txn AS event_id,
    is_return,
    epoch_us(instant) AS at_us,
    wall,
    customer,
    total,
    is_screening
FROM signs
WHERE NOT has_bad_line
  AND customers = 1
  AND NOT (neg > 0 AND neg < signed)
  AND NOT (neg > 0 AND NOT is_return)
  AND total >= 0
  AND NOT (is_unpriced AND $reject_unpriced)
"""

# A customer's purchases, numbered k = 1, 2, ... in (instant, event id) order.
PURCHASES_SQL = """
CREATE TEMP TABLE purchase AS
SELECT
    customer, event_id, at_us, wall, total, is_screening,
    row_number() OVER (PARTITION BY customer ORDER BY at_us, event_id) AS k
FROM event
WHERE customer IS NOT NULL AND NOT is_return
"""

# Purchases within the window of purchase k: those at or after its wall clock
# minus window_days. Later purchases are never before that bound, so the count
# is k minus the purchases strictly before it, found by sorting each bound
# in among the purchases (a bound sorts before a purchase at the same time).
ACTIVE_SQL = """
CREATE TEMP TABLE active AS
WITH marks AS (
    SELECT customer, wall AS at_wall, 1 AS is_purchase, NULL AS k FROM purchase
    UNION ALL
    SELECT customer, wall - to_days($window_days), 0, k FROM purchase
), before_bound AS (
    SELECT customer, k, sum(is_purchase) OVER (
        PARTITION BY customer ORDER BY at_wall, is_purchase
        ROWS UNBOUNDED PRECEDING) AS older
    FROM marks
    QUALIFY is_purchase = 0
), holds AS (
    SELECT customer, k, k - older >= $at_least AS holds FROM before_bound
)
SELECT customer, k, holds AND NOT coalesce(
    lag(holds) OVER (PARTITION BY customer ORDER BY k), false) AS fires
FROM holds
"""

# The lapse timer armed by purchase k, and whether it fired before purchase
# k + 1 (strictly) or, for the last purchase, by the end of the file.
LAPSE_SQL = """
CREATE TEMP TABLE lapse AS
WITH due AS (
    SELECT
        p.*,
        timezone($zone, p.wall + to_days($lapse_days)) AS later_due,
        lead(at_us) OVER (PARTITION BY customer ORDER BY k) AS next_at_us
    FROM purchase p
), due_first AS (
    SELECT *, greatest(at_us, epoch_us(
        CASE WHEN timezone($zone, later_due - INTERVAL 1 HOUR)
                  = wall + to_days($lapse_days)
             THEN later_due - INTERVAL 1 HOUR ELSE later_due END)) AS due_us
    FROM due
)
SELECT customer, k, event_id, due_us,
    CASE WHEN next_at_us IS NULL THEN due_us <= (SELECT max(at_us) FROM event)
         ELSE next_at_us > due_us END AS fired
FROM due_first
"""

# won_back: the stage before purchase k is 'lapsed', which is exactly when the
# lapse timer armed by purchase k - 1 fired. Leaving the stage resets the
# rule's edge, so every such purchase is a customer won back.
WALK_SQL = """
CREATE TEMP TABLE won_back AS
SELECT p.customer, p.event_id, p.at_us
FROM purchase p
JOIN lapse l ON l.customer = p.customer AND l.k = p.k - 1
WHERE l.fired
"""

# Lifetime net spend over all of a customer's events; the tier is entered at
# the first event where it reaches the threshold.
VIP_SQL = """
CREATE TEMP TABLE vip AS
SELECT customer, event_id, at_us FROM (
    SELECT customer, event_id, at_us, sum(
        CASE WHEN is_return THEN -total ELSE total END) OVER (
        PARTITION BY customer ORDER BY at_us, event_id
        ROWS UNBOUNDED PRECEDING) AS net_spend
    FROM event WHERE customer IS NOT NULL
)
WHERE net_spend >= $vip_spend
QUALIFY row_number() OVER (PARTITION BY customer ORDER BY at_us, event_id) = 1
"""

FIRINGS_SQL = """
SELECT customer, 'first_purchase', at_us, event_id FROM purchase WHERE k = 1
UNION ALL
SELECT p.customer, 'active_engaged', p.at_us, p.event_id
FROM purchase p JOIN active a USING (customer, k) WHERE a.fires
UNION ALL
SELECT customer, 'high_value_purchase', at_us, event_id FROM purchase
WHERE total > $over
UNION ALL
SELECT customer, 'return_processed', at_us, event_id FROM event
WHERE is_return AND customer IS NOT NULL
UNION ALL
SELECT customer, 'lapsed', due_us, event_id FROM lapse WHERE fired
UNION ALL
SELECT customer, 'won_back', at_us, event_id FROM won_back
UNION ALL
SELECT customer, 'tier:vip', at_us, event_id FROM vip
UNION ALL
SELECT customer, 'wellness_screening', at_us, event_id FROM purchase
WHERE is_screening
ORDER BY 3, 1, 2, 4
"""


def default_settings(programme: Programme) -> Settings:
    """Read the windows and amounts of the default programme's rules."""
    rules = {rule.id: rule for rule in programme.rules}
    window = rules["active_engaged"].when.purchases
    over = rules["high_value_purchase"].when.total
    lapse = rules["lapsed"]
    assert window is not None and window.within_days and window.at_least
    assert over is not None and over.over is not None
    assert lapse.on is Trigger.NO_PURCHASE and lapse.after_days is not None
    assert programme.tiers.levels and programme.timezone == "Europe/London"
    return Settings(
        window_days=window.within_days,
        at_least=int(window.at_least),
        over=over.over,
        lapse_days=lapse.after_days,
        vip_spend=programme.tiers.levels[0].min_spend,
        screening_tags=rules["wellness_screening"].when.line_tagged,
    )


def compute_firings(
    csv_path: Path, mapping: Mapping, settings: Settings, threads: int = 1
) -> tuple[int, list[Firing]]:
    """Run the whole pipeline in a fresh in-memory DuckDB.

    Return the number of events (accepted transactions) and the firings.
    """
    con = duckdb.connect(config={"threads": threads})
    params = build_tables(con, csv_path, mapping, settings)
    rows = con.execute(FIRINGS_SQL, _used(FIRINGS_SQL, params)).fetchall()
    counted = con.execute("SELECT count(*) FROM event").fetchone()
    con.close()
    events = int(counted[0]) if counted else 0
    return events, [(str(c), str(r), int(at), str(e)) for c, r, at, e in rows]


def build_tables(
    con: duckdb.DuckDBPyConnection, csv_path: Path, mapping: Mapping, settings: Settings
) -> dict[str, Any]:
    """Create the step tables (line, event, purchase, ...); return the parameters."""
    con.execute("SET TimeZone = 'UTC'")
    params = _parameters(csv_path, mapping, settings)
    lines_sql = LINES_SQL.format(
        role=_role_sql(mapping.line_rules),
        screening=_tag_sql(mapping.line_rules, settings.screening_tags),
    )
    steps = (READ_SQL, lines_sql, EVENTS_SQL, PURCHASES_SQL, ACTIVE_SQL)
    for sql in (*steps, LAPSE_SQL, WALK_SQL, VIP_SQL):
        con.execute(sql, _used(sql, params))
    _check_exact(con)
    return params


def _parameters(path: Path, mapping: Mapping, settings: Settings) -> dict[str, Any]:
    assert mapping.returns.transaction_id_prefix is not None
    assert mapping.customer.customer_id == "CustomerID"
    assert mapping.customer.strip_float_suffix
    return {
        "path": str(path),
        "zone": mapping.time.zone,
        "guest_values": mapping.customer.guest_values,
        "return_prefix": mapping.returns.transaction_id_prefix,
        "reject_unpriced": mapping.reject_unpriced,
        "source": mapping.source,
        "window_days": settings.window_days,
        "at_least": settings.at_least,
        "over": settings.over,
        "lapse_days": settings.lapse_days,
        "vip_spend": settings.vip_spend,
    }


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that a statement names (DuckDB refuses unused ones)."""
    return {name: value for name, value in params.items() if f"${name}" in sql}


def _check_exact(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a file whose amounts do not fit DECIMAL(18,4) exactly."""
    rounded = con.execute("SELECT count(*) FROM line WHERE is_rounded").fetchone()
    if rounded and rounded[0]:
        raise SystemExit(f"{rounded[0]} lines have more than 4 decimal places")


def _role_sql(rules: list[LineRule]) -> str:
    """A CASE giving each line the role of the first line rule that sets one."""
    whens = [
        f"WHEN {_test_sql(rule)} THEN {_literal(rule.role)}"
        for rule in rules
        if rule.role is not None
    ]
    return f"CASE {' '.join(whens)} ELSE 'product' END" if whens else "'product'"


def _tag_sql(rules: list[LineRule], tags: tuple[str, ...]) -> str:
    """A test for a line carrying any of ``tags``."""
    tests = [_test_sql(rule) for rule in rules if set(rule.tags) & set(tags)]
    return f"({' OR '.join(tests)})" if tests else "false"


def _test_sql(rule: LineRule) -> str:
    if rule.skus is not None:
        return f"sku IN ({', '.join(_literal(sku) for sku in rule.skus)})"
    if rule.sku_pattern is not None:
        return f"regexp_matches(sku, {_literal(rule.sku_pattern)})"
    assert rule.description_pattern is not None
    return f"regexp_matches(description, {_literal(rule.description_pattern)})"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def write_firings(path: Path, firings: list[Firing]) -> None:
    """Write firings as CSV: customer, rule, time (ISO, UTC), event id."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["customer_id", "rule_id", "at_utc", "event_id"])
        for customer, rule, at_us, event_id in firings:
            writer.writerow([customer, rule, iso_utc(at_us), event_id])


def iso_utc(at_us: int) -> str:
    """An instant in microseconds as ISO 8601 in UTC."""
    return (_EPOCH + timedelta(microseconds=at_us)).isoformat()


def main(argv: list[str] | None = None) -> None:
    """Compute the firings of one CSV and write them (or just count them)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--mapping", type=Path, required=True)
    parser.add_argument("--programme", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    settings = default_settings(load_programme(args.programme))
    started = time.perf_counter()
    events, firings = compute_firings(
        args.csv, load_mapping(args.mapping), settings, args.threads
    )
    seconds = time.perf_counter() - started
    if args.out is not None:
        write_firings(args.out, firings)
    print(f"{events:,} events, {len(firings):,} firings in {seconds:.2f}s")


if __name__ == "__main__":
    main()
