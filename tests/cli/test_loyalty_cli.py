"""``points``, ``rewards`` and ``kpi`` as a user runs them, on SQLite and PostgreSQL.

The store holds C1 (sales of 100.00 on 2025-03-01 and 40.00 on 2025-03-05) and
C2 (a sale of 25.00 on 2025-03-02), on the loyalty test programme (1 point per
whole GBP paid). The KPI history is hand-made, as of 2025-06-30:

    reward  customer stage  store  campaign  issued  expires  redeemed  basket
    R1      C1       new    Leeds  A         03-01   03-31    03-05     40.00
    R2      C2       new    Leeds  A         03-01   03-31    -
    R3      C1       active York   B         06-20   07-20    06-25     12.50

Issued 3, redeemed 2 (rate 0.6667); matured R1 and R2 (1 of 2, 0.5000);
days to redeem 4 and 5, median 4.5; revenue 52.50.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from tillsight.cli import app
from tillsight.errors import ConfigError, ConflictError
from tillsight.loyalty.rewards import insert_rewards
from tillsight.loyalty.tables import rewards
from tillsight.pipeline import Replayer
from tillsight.programme_file import load_programme
from tillsight.store import queries, schema
from tillsight.store.db import connect

from factories import reward_row, sale

PROGRAMME = Path(__file__).parents[1] / "loyalty" / "loyalty_programme.yaml"
AS_OF = "2025-06-30T00:00:00+00:00"
SCRIPT = "<script>alert(1)</script>"

runner = CliRunner()


@pytest.fixture
def db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("COLUMNS", "200")  # Rich tables keep codes on one line
    monkeypatch.setenv("TILLSIGHT_PROGRAMME", str(PROGRAMME))
    engine = connect(db_url)
    Replayer(engine, load_programme(PROGRAMME)).run(
        [
            sale("E1", "2025-03-01T10:00:00+00:00", "100.00", customer="C1"),
            sale("E2", "2025-03-02T10:00:00+00:00", "25.00", customer="C2"),
            sale("E3", "2025-03-05T10:00:00+00:00", "40.00", customer="C1"),
        ]
    )
    engine.dispose()
    yield db_url


def run(db: str, *args: str) -> Any:
    """Run a command on the store; ``--db`` goes before a ``--`` (negative points)."""
    end = args.index("--") if "--" in args else len(args)
    return runner.invoke(app, [*args[:end], "--db", db, *args[end:]])


def ledger_sum(db: str, customer: str) -> tuple[int, int]:
    """The sum of the customer's ledger and the balance on their profile."""
    engine = connect(db)
    with engine.connect() as conn:
        key = queries.find_customer_key(conn, customer)
        ledger = schema.points_ledger
        total = conn.execute(
            select(func.coalesce(func.sum(ledger.c.delta), 0)).where(
                ledger.c.customer_key == key
            )
        ).scalar_one()
        balance = queries.profile(conn, key).points_balance
    engine.dispose()
    return int(total), balance


def reward_history(db: str) -> None:
    """Replace the rule-issued rewards with the hand-made history above."""
    history = [
        ("R1", "C1", "new", "Leeds", "A", "03-01", "03-31", "03-05", "40.00"),
        ("R2", "C2", "new", "Leeds", "A", "03-01", "03-31", None, None),
        ("R3", "C1", "active", "York", "B", "06-20", "07-20", "06-25", "12.50"),
    ]
    engine = connect(db)
    with engine.begin() as conn:
        conn.execute(delete(rewards))
        keys = {c: queries.find_customer_key(conn, c) for c in ("C1", "C2")}
        rows = [reward_row(keys, *item) for item in history]
        insert_rewards(conn, rows, datetime.now(UTC))
    engine.dispose()


# -- points ----------------------------------------------------------------


def test_points_show_lists_the_ledger_with_a_running_balance(db: str) -> None:
    result = run(db, "points", "show", "C1")

    assert result.exit_code == 0, result.output
    assert "+100" in result.output and "+40" in result.output
    assert "140" in result.output
    assert "earn" in result.output


def test_points_adjust_needs_a_reason(db: str) -> None:
    result = run(db, "points", "adjust", "C1", "10")

    assert result.exit_code == 2
    assert "--reason" in result.output
    assert ledger_sum(db, "C1") == (140, 140)


def test_points_adjust_refuses_a_blank_reason(db: str) -> None:
    result = run(db, "points", "adjust", "C1", "10", "--reason", "   ")

    assert isinstance(result.exception, ConfigError)
    assert "--reason" in str(result.exception)
    assert ledger_sum(db, "C1") == (140, 140)


@pytest.mark.parametrize("delta", ["99999999999999999999", "-9223372036854775807"])
def test_points_adjust_beyond_any_balance_is_refused_not_a_crash(
    db: str, delta: str
) -> None:
    result = run(db, "points", "adjust", "C1", "--reason", "typo", "--", delta)

    assert isinstance(result.exception, ConfigError), result.output
    assert "beyond any points balance" in str(result.exception)
    assert ledger_sum(db, "C1") == (140, 140)


@pytest.mark.parametrize(
    ("args", "balance"), [(["25"], 165), (["--", "-140"], 0)], ids=["add", "remove"]
)
def test_points_adjust_keeps_the_balance_equal_to_the_ledger(
    db: str, args: list[str], balance: int
) -> None:
    result = run(db, "points", "adjust", "C1", "--reason", "goodwill", *args)

    assert result.exit_code == 0, result.output
    assert f"balance {balance:,}" in result.output
    assert ledger_sum(db, "C1") == (balance, balance)


def test_points_adjust_beyond_the_balance_is_refused(db: str) -> None:
    result = run(db, "points", "adjust", "C2", "--reason", "typo", "--", "-26")

    assert isinstance(result.exception, ConflictError)
    assert result.exception.code == "INSUFFICIENT_POINTS"
    assert ledger_sum(db, "C2") == (25, 25)


def test_the_adjustment_reason_is_kept_on_the_ledger(db: str) -> None:
    run(db, "points", "adjust", "C1", "5", "--reason", "birthday")

    shown = run(db, "points", "show", "C1")

    assert "adjust" in shown.output and "+5" in shown.output


# -- rewards ---------------------------------------------------------------


def test_rewards_issue_prints_a_code_that_rewards_show_lists(db: str) -> None:
    issued = run(db, "rewards", "issue", "C1", "win_back", "--campaign", "spring")
    code = re.search(r"code (\w{4}-\w{4}-\w{4})", issued.output)

    shown = run(db, "rewards", "show", "C1")

    assert issued.exit_code == 0, issued.output
    assert code is not None
    assert code.group(1) in shown.output
    assert "win_back" in shown.output and "spring" in shown.output


def test_rewards_show_says_a_reward_a_late_event_withdrew_is_withdrawn(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'late.db'}"
    engine = connect(url)
    default = resources.files("tillsight.programmes").joinpath("default.yaml")
    no_holdout = tmp_path / "programme.yaml"  # the reward is never held out
    no_holdout.write_text(
        default.read_text(encoding="utf-8").replace(
            "holdout_percent: 10", "holdout_percent: 0"
        ),
        encoding="utf-8",
    )
    programme = load_programme(no_holdout)
    lapse = [
        sale("TL-1", "2025-01-01T10:00:00+00:00", "20.00", customer="TL"),
        sale("TL-3", "2025-10-01T10:00:00+00:00", "30.00", customer="TL"),
    ]
    Replayer(engine, programme).run(lapse)  # lapsed in between: win-back
    late = [sale("TL-2", "2025-05-01T10:00:00+00:00", "25.00", customer="TL")]
    Replayer(engine, programme).run(late)  # so it never lapsed
    engine.dispose()

    shown = runner.invoke(
        app, ["rewards", "show", "TL", "--db", url], env={"COLUMNS": "80"}
    )

    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.output.splitlines() if "win_back" in line)
    assert re.search(r"\w{4}-\w{4}-\w{4}", row), "the code is shown whole"
    assert "withdrawn" in row
    assert "a late event took back the decision" in shown.output


def test_rewards_issue_of_an_unknown_kind_names_the_known_ones(db: str) -> None:
    result = run(db, "rewards", "issue", "C1", "mystery")

    assert result.exception is not None
    assert "mystery" in str(result.exception)
    assert "win_back" in str(result.exception)


# -- rewards import --------------------------------------------------------

OLD_REWARDS = """RewardId,Customer,Type,IssuedAt,Store
1,C1,surprise,2025-03-03T10:00:00+00:00,Leeds
2,C9,surprise,2025-03-03T10:00:00+00:00,York
3,C2,mystery,2025-03-04T10:00:00+00:00,York
"""
REWARD_MAPPING = """columns:
  id: RewardId
  customer: Customer
  kind: Type
  issued_at: IssuedAt
  store: Store
"""


def test_rewards_import_keeps_rejected_rows_to_fix_and_import_again(
    db: str, tmp_path: Path
) -> None:
    source = tmp_path / "old.csv"
    source.write_text(OLD_REWARDS, encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(REWARD_MAPPING, encoding="utf-8")
    rejects = tmp_path / "old.csv.rejects.csv"

    first = run(db, "rewards", "import", str(source), "--mapping", str(mapping))
    with rejects.open(encoding="utf-8", newline="") as handle:
        kept = list(csv.DictReader(handle))
    fixed = rejects.read_text(encoding="utf-8").replace(",C9,", ",C1,")
    rejects.write_text(fixed.replace("mystery", "surprise"), encoding="utf-8")
    second = run(db, "rewards", "import", str(rejects), "--mapping", str(mapping))

    assert first.exit_code == 0, first.output
    assert "1 imported" in first.output and "2 rejected" in first.output
    assert [(row["RewardId"], row["_line"], row["_field"]) for row in kept] == [
        ("2", "3", "Customer"),
        ("3", "4", "Type"),
    ]
    assert "'C9' is not known" in kept[0]["_reason"]
    assert list(kept[0]) == [
        "_line",
        "_field",
        "_reason",
        "RewardId",
        "Customer",
        "Type",
        "IssuedAt",
        "Store",
    ]
    assert second.exit_code == 0, second.output
    assert "2 imported" in second.output and "0 rejected" in second.output
    assert not (tmp_path / "old.csv.rejects.csv.rejects.csv").exists()
    assert imported_ids(db) == ["import:1", "import:2", "import:3"]


def test_a_rejects_file_refused_again_is_noted_once(db: str, tmp_path: Path) -> None:
    source = tmp_path / "old.csv"
    source.write_text(OLD_REWARDS, encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(REWARD_MAPPING, encoding="utf-8")
    run(db, "rewards", "import", str(source), "--mapping", str(mapping))
    rejects = tmp_path / "old.csv.rejects.csv"

    again = run(db, "rewards", "import", str(rejects), "--mapping", str(mapping))

    assert again.exit_code == 0, again.output
    header = (tmp_path / "old.csv.rejects.csv.rejects.csv").read_text().splitlines()[0]
    assert header == "_line,_field,_reason,RewardId,Customer,Type,IssuedAt,Store"


def imported_ids(db: str) -> list[str]:
    engine = connect(db)
    with engine.connect() as conn:
        keys = conn.execute(
            select(rewards.c.issue_key)
            .where(rewards.c.source == "import")
            .order_by(rewards.c.issue_key)
        ).scalars()
        found = list(keys)
    engine.dispose()
    return found


# -- kpi redemption ----------------------------------------------------------


def kpi(db: str, *args: str) -> Any:
    return run(db, "kpi", "redemption", "--as-of", AS_OF, *args)


def test_kpi_json_has_the_hand_worked_figures(db: str) -> None:
    reward_history(db)

    result = kpi(db, "--by", "location", "--format", "json")

    report = json.loads(result.output)
    assert report["as_of"] == AS_OF
    assert report["total"] == {
        "issued": 3,
        "redeemed": 2,
        "rate": "0.6667",
        "matured_issued": 2,
        "matured_redeemed": 1,
        "matured_rate": "0.5000",
        "median_days_to_redeem": "4.5",
        "revenue": "52.50",
    }
    assert [
        (row["location"], row["issued"], row["redeemed"], row["matured_rate"])
        for row in report["rows"]
    ] == [("Leeds", 2, 1, "0.5000"), ("York", 1, 1, None)]


def test_kpi_csv_has_a_row_per_group_and_a_total(db: str) -> None:
    reward_history(db)

    result = kpi(db, "--by", "campaign", "--format", "csv")

    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["campaign"], r["issued"], r["redeemed"], r["rate"]) for r in rows] == [
        ("A", "2", "1", "0.5000"),
        ("B", "1", "1", "1.0000"),
        ("all", "3", "2", "0.6667"),
    ]
    assert rows[-1]["revenue"] == "52.50"


def test_kpi_table_shows_rates_as_percentages(db: str) -> None:
    reward_history(db)

    result = kpi(db, "--by", "stage")

    assert result.exit_code == 0, result.output
    assert "Reward Redemption Rate, as of 2025-06-30" in result.output
    assert "66.7%" in result.output and "1/2" in result.output
    assert "52.50" in result.output


def test_kpi_refuses_an_unknown_format(db: str) -> None:
    result = kpi(db, "--format", "xml")

    assert isinstance(result.exception, ConfigError)
    assert "table, csv or json" in str(result.exception)


def test_kpi_html_is_self_contained_and_escapes_what_users_typed(
    db: str, tmp_path: Path
) -> None:
    run(db, "rewards", "issue", "C1", "win_back", "--campaign", SCRIPT)
    run(db, "rewards", "issue", "C2", "win_back", "--store", SCRIPT)
    page_path = tmp_path / "rate.html"
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    result = run(db, "kpi", "redemption", "--as-of", later, "--html", str(page_path))

    page = page_path.read_text(encoding="utf-8")
    assert result.exit_code == 0, result.output
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)" in page
