"""A wrong programme file is refused naming its line, the key and the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tillsight.core.programme import (
    LONGEST_DAYS,
    LONGEST_MONTHS,
    MOST_MONEY,
    MOST_POINTS,
    MOST_POINTS_PER_UNIT,
)
from tillsight.errors import ProgrammeError
from tillsight.loyalty.tables import rewards
from tillsight.pipeline import Replayer
from tillsight.programme_file import load_programme, parse_programme
from tillsight.store import queries, schema
from tillsight.store.db import connect

from factories import sale

# Line numbers in the cases below count from the top of this text.
PROGRAMME = """\
name: test
currency: GBP
timezone: Europe/London
stages:
  - id: new
tiers:
  basis: lifetime_net_spend
  levels:
    - {id: vip, min_spend: 2500}
points:
  per_currency_unit: 1
rewards:
  thanks:
    value: 5.00
    valid_days: 30
rules:
  - id: first
    on: purchase
    set_stage: new
    when:
      total: {over: 10}
      purchases: {within_days: 90, at_least: 1}
    award_points: 200
    actions:
      - {action: reward, name: thanks}
  - id: lapsed
    on: no_purchase
    after_days: 180
"""

FINITE = "must be a finite decimal number, not NaN or infinity"
DAYS = "must be from 1 to 36,525 days (100 years)"
MONTHS = "must be from 1 to 1,200 months (100 years)"
POINTS = "must be from 1 to 1,000,000,000,000 points"
MONEY = "must be from -1,000,000,000,000 to 1,000,000,000,000"


def refusal(old: str, new: str) -> str:
    """The message that refuses the programme with ``old`` changed to ``new``."""
    assert old in PROGRAMME
    with pytest.raises(ProgrammeError) as caught:
        parse_programme(PROGRAMME.replace(old, new, 1), "bad.yaml")
    return str(caught.value)


def test_the_programme_of_these_tests_loads() -> None:
    programme = parse_programme(PROGRAMME)

    assert [rule.id for rule in programme.rules] == ["first", "lapsed"]


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "reason"),
    [
        ("over: 10", "over: .nan", 21, "rules.0.when.total.over", FINITE),
        ("over: 10", "over: .inf", 21, "rules.0.when.total.over", FINITE),
        ("over: 10", "over: -.Inf", 21, "rules.0.when.total.over", FINITE),
        ("over: 10", "over: 1e400", 21, "rules.0.when.total.over", MONEY),
        ("min_spend: 2500", "min_spend: .nan", 9, "tiers.levels.0.min_spend", FINITE),
        (
            "value: 5.00",
            "value: 0.0000001",
            14,
            "rewards.thanks.value",
            "must have at most 6 decimal places",
        ),
        ("after_days: 180", "after_days: 3000000", 28, "rules.1.after_days", DAYS),
        ("after_days: 180", "after_days: 99999999999", 28, "rules.1.after_days", DAYS),
        (
            "valid_days: 30",
            "valid_days: 99999999999",
            15,
            "rewards.thanks.valid_days",
            DAYS,
        ),
        (
            "within_days: 90",
            "within_days: 99999999999",
            22,
            "rules.0.when.purchases.within_days",
            DAYS,
        ),
        (
            "basis: lifetime_net_spend",
            "basis: rolling_net_spend\n  window_days: 99999999999",
            8,
            "tiers.window_days",
            DAYS,
        ),
        (
            "basis: lifetime_net_spend",
            "basis: lifetime_net_spend\n  requalify_after_days: 99999999999",
            8,
            "tiers.requalify_after_days",
            DAYS,
        ),
        (
            "per_currency_unit: 1",
            "expire_after_days: 99999999999",
            11,
            "points.expire_after_days",
            DAYS,
        ),
        (
            "per_currency_unit: 1",
            "expire_after_months: 99999999999",
            11,
            "points.expire_after_months",
            MONTHS,
        ),
        (
            "per_currency_unit: 1",
            "per_currency_unit: .nan",
            11,
            "points.per_currency_unit",
            FINITE,
        ),
        (
            "per_currency_unit: 1",
            "per_currency_unit: 1001",
            11,
            "points.per_currency_unit",
            "must be from 0 to 1,000 points per unit of currency",
        ),
        (
            "per_currency_unit: 1",
            "per_tagged_line: {screening: 99999999999999999999999}",
            11,
            "points.per_tagged_line.screening",
            POINTS,
        ),
        (
            "award_points: 200",
            "award_points: 99999999999999999999999",
            23,
            "rules.0.award_points",
            POINTS,
        ),
        (
            "valid_days: 30",
            "holdout_percent: 200",
            15,
            "rewards.thanks.holdout_percent",
            "must be from 0 to 90 percent",
        ),
        (
            "name: thanks}",
            "name: thanks, params: {discount: 1.5}}",
            25,
            "rules.0.actions.0.params",
            "discount: 1.5 must be text, a whole number, true or false",
        ),
        (
            "name: thanks}",
            "name: thanks, params: {codes: [1, 99999999999999999999999]}}",
            25,
            "rules.0.actions.0.params",
            "codes.1: must be from -9,223,372,036,854,775,808 to",
        ),
    ],
)
def test_a_number_out_of_bounds_is_refused_naming_line_field_and_reason(
    old: str, new: str, line: int, field: str, reason: str
) -> None:
    message = refusal(old, new)

    assert message.startswith(f"line {line}: bad.yaml: {field}: {reason}")


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            "{name: other}",
            "params: name is set by the engine, not by a param; give it another name",
        ),
        (
            "{action: sms, value: 500}",
            "params: action, value are set by the engine, not by a param; give it "
            "another name (a reward's settings belong under rewards:)",
        ),
    ],
)
def test_a_param_may_not_take_a_key_the_engine_writes(params: str, reason: str) -> None:
    message = refusal("name: thanks}", f"name: thanks, params: {params}}}")

    assert message.startswith(f"line 25: bad.yaml: rules.0.actions.0: {reason}")


def test_a_key_given_twice_is_refused_naming_both_lines() -> None:
    message = refusal("currency: GBP\n", "currency: GBP\nname: other\n")

    assert message == (
        "line 3: bad.yaml: not valid YAML: key 'name' is given twice (first on line 1)"
    )


def test_a_key_given_twice_in_a_nested_mapping_is_refused() -> None:
    message = refusal("valid_days: 30", "valid_days: 30\n    valid_days: 60")

    assert message.startswith("line 16: bad.yaml: not valid YAML: key 'valid_days'")


def test_a_file_that_is_not_utf8_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    text = PROGRAMME.replace("name: test\n", "name: test\n# spend over £1,000\n")
    path.write_bytes(text.encode("latin-1"))

    with pytest.raises(ProgrammeError) as caught:
        load_programme(path)

    assert str(caught.value) == (
        f"line 2: {path}: not UTF-8 (byte 0xa3); save the file as UTF-8"
    )


def at_the_bounds(expiry: str, longest: int) -> str:
    """A programme whose every number is as large as a programme may give."""
    return f"""\
name: bounds
currency: GBP
timezone: Europe/London
stages:
  - id: new
  - id: lapsed
points:
  per_currency_unit: {MOST_POINTS_PER_UNIT}
  {expiry}: {longest}
rewards:
  thanks:
    value: {MOST_MONEY}
    valid_days: {LONGEST_DAYS}
rules:
  - id: big_spender
    on: purchase
    when:
      total: {{at_most: {MOST_MONEY}}}
      purchases: {{within_days: {LONGEST_DAYS}, at_least: 1}}
    set_stage: new
    award_points: {MOST_POINTS}
    actions:
      - {{action: reward, name: thanks}}
  - id: lapsed
    on: no_purchase
    after_days: {LONGEST_DAYS}
    set_stage: lapsed
"""


@pytest.mark.parametrize(
    ("expiry", "longest"),
    [("expire_after_days", LONGEST_DAYS), ("expire_after_months", LONGEST_MONTHS)],
)
def test_a_programme_at_the_bounds_replays_to_its_last_timer(
    db_url: str, expiry: str, longest: int
) -> None:
    programme = parse_programme(at_the_bounds(expiry, longest))
    # The latest time an import takes: a day past its clock, less a margin.
    latest = datetime.now(UTC) + timedelta(hours=23)
    purchase = sale("E1", latest.isoformat(), "999999999.99")
    store = connect(db_url)

    try:
        Replayer(store, programme).run(
            [purchase], until=latest + timedelta(days=LONGEST_DAYS + 1)
        )
        with store.connect() as conn:
            fired = {rule for _, rule, _, _ in queries.firings(conn)}
            customer = conn.execute(
                select(schema.customers.c.stage, schema.customers.c.points_balance)
            ).one()
            expires_at = conn.execute(select(rewards.c.expires_at)).scalar_one()
    finally:
        store.dispose()

    assert fired == {"big_spender", "lapsed"}
    assert tuple(customer) == ("lapsed", 0)
    assert expires_at.year == latest.year + 100
