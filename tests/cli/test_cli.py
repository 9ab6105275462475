"""The command line, as a user runs it."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tillsight.cli import app

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "examples/data/online-retail-customer-slice.csv"
MAPPING = ROOT / "examples/mappings/online-retail.yaml"
LONDON = ZoneInfo("Europe/London")  # the default programme's zone

runner = CliRunner()


def event_line(**changes: object) -> str:
    """One canonical purchase as a JSON line: 12.50 of one item, for C1."""
    event: dict[str, object] = {
        "event_id": "pos:1",
        "type": "purchase",
        "occurred_at": "2025-03-01T10:00:00+00:00",
        "currency": "GBP",
        "lines": [{"sku": "A", "quantity": "1", "unit_price": "12.50"}],
        "customer": {"customer_id": "C1"},
    }
    return json.dumps(event | changes) + "\n"


@pytest.fixture
def replayed(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["replay", str(SAMPLE), "--mapping", str(MAPPING), "--db", sqlite_url]
    )
    assert result.exit_code == 0, result.output
    return sqlite_url


def test_replay_prints_a_summary_and_keeps_bad_rows(
    replayed: str, tmp_path: Path
) -> None:
    (rejects,) = tmp_path.glob(f"{SAMPLE.name}.rejects-*Z.csv")

    with rejects.open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert rows and all(row["_reason"] for row in rows)


def test_customer_shows_profile_and_timeline_with_rules(replayed: str) -> None:
    result = runner.invoke(app, ["customer", "12350", "--db", replayed])

    assert result.exit_code == 0, result.output
    assert "customer 12350" in result.output
    assert "first_purchase" in result.output


def test_firings_is_csv_with_one_row_per_firing(replayed: str) -> None:
    result = runner.invoke(app, ["firings", "--db", replayed])

    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == ["customer", "rule", "time", "event_id"]
    assert {row[1] for row in rows[1:]} >= {"first_purchase", "lapsed", "won_back"}


def test_stages_counts_every_customer(replayed: str) -> None:
    result = runner.invoke(app, ["stages", "--db", replayed])

    assert result.exit_code == 0
    assert "lapsed" in result.output and "returning" in result.output


def test_unknown_customer_is_a_clear_error(replayed: str) -> None:
    result = runner.invoke(app, ["customer", "99999", "--db", replayed])

    assert result.exit_code != 0


def test_a_wrong_programme_file_names_the_line(tmp_path: Path, sqlite_url: str) -> None:
    programme = tmp_path / "bad.yaml"
    programme.write_text(
        "name: x\ncurrency: GBP\ntimezone: Europe/London\nstages: []\n"
        "rules:\n  - id: a\n    on: purchase\n    set_stage: vip\n"
    )

    result = runner.invoke(
        app,
        [
            "replay",
            str(SAMPLE),
            "--mapping",
            str(MAPPING),
            "--db",
            sqlite_url,
            "--programme",
            str(programme),
        ],
    )

    assert result.exit_code != 0
    assert "line 8" in str(result.exception)


def test_event_in_another_currency_is_kept_to_fix_and_replay(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "till.jsonl").write_text(event_line(currency="USD"))

    first = runner.invoke(app, ["replay", "till.jsonl", "--db", sqlite_url])
    (kept,) = tmp_path.glob("till.jsonl.rejected-events-*Z.jsonl")
    fixed = kept.read_text().replace('"USD"', '"GBP"')
    (tmp_path / "fixed.jsonl").write_text(fixed)
    second = runner.invoke(app, ["replay", "fixed.jsonl", "--db", sqlite_url])
    customer = runner.invoke(app, ["customer", "C1", "--db", sqlite_url])

    assert first.exit_code == 0 and "currency" in kept.read_text()
    assert "line" not in json.loads(kept.read_text())["_rejected"]  # not a file line
    assert second.exit_code == 0, second.output
    assert "stage" in customer.output and "new" in customer.output


def test_an_event_with_a_lone_surrogate_is_kept_with_its_escape(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "till.jsonl").write_text(event_line(store="Leeds\ud800"))

    result = runner.invoke(app, ["replay", "till.jsonl", "--db", sqlite_url])
    (kept,) = tmp_path.glob("till.jsonl.rejected-events-*Z.jsonl")

    assert result.exit_code == 0, result.output
    assert "Leeds\\ud800" in kept.read_text() and "surrogate" in kept.read_text()


@pytest.mark.parametrize(
    ("text", "written"),
    [
        (
            '=HYPERLINK("http://evil.example","x")',
            '\'=HYPERLINK("http://evil.example","x")',
        ),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-120", "-120"),
        ("online-retail:536365", "online-retail:536365"),
    ],
)
def test_csv_cells_never_open_as_formulas(text: str, written: str) -> None:
    from tillsight.cli.spreadsheet import cell

    assert cell(text) == written


def test_firings_csv_escapes_an_event_id_that_looks_like_a_formula(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "till.jsonl").write_text(event_line(event_id="=cmd|' /c calc'!A1"))
    runner.invoke(app, ["replay", "till.jsonl", "--db", sqlite_url])

    result = runner.invoke(app, ["firings", "--db", sqlite_url])

    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[1][3] == "'=cmd|' /c calc'!A1"


def test_an_unknown_command_is_a_usage_error_not_a_traceback() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from tillsight.cli import main; main()", "bogus"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "No such command" in done.stderr


def test_quarantine_retry_with_a_missing_body_file_is_a_usage_error(
    tmp_path: Path, sqlite_url: str
) -> None:
    missing = tmp_path / "fixed.json"

    result = runner.invoke(
        app, ["quarantine", "retry", "1", "--body", str(missing), "--db", sqlite_url]
    )

    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert not isinstance(result.exception, FileNotFoundError)


LINE = {"sku": "A", "quantity": "1", "unit_price": "12.50", "line_id": "L1"}


@pytest.mark.parametrize(
    ("sale", "refund", "shown"),
    [
        pytest.param(
            {},
            {"refunds_event_id": "pos:1"},
            "return of 12.50 is more than the 0.00 left of sale pos:1: takes back 0.00",
            id="more than the sale",
        ),
        pytest.param(
            {"lines": [LINE]},
            {"refunds_event_id": "pos:1", "refunded_line_ids": ["L1"],
             "lines": [LINE]},
            "return of 12.50 names lines of sale pos:1 that do not fit "
            "(L1: already refunded): takes back 0.00",
            id="a line refunded twice",
        ),
        pytest.param(
            {},
            {"refunds_event_id": "pos:9"},
            "return of 12.50 names pos:9, not a sale in this customer's history: "
            "taken as unlinked, takes back 12.50",
            id="a sale not in the history",
        ),
        pytest.param(
            {"type": "return"},
            {"refunds_event_id": "pos:1"},
            "return of 12.50 names pos:1, not a sale in this customer's history: "
            "taken as unlinked, takes back 12.50",
            id="a return, not a sale",
        ),
    ],
)  # fmt: skip
def test_a_return_that_does_not_fit_its_sale_shows_on_the_timeline(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sale: dict[str, object],
    refund: dict[str, object],
    shown: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    refund = {"type": "return", "occurred_at": "2025-03-02T10:00:00+00:00", **refund}
    (tmp_path / "till.jsonl").write_text(
        event_line(**sale)
        + event_line(event_id="pos:2", **refund)
        + event_line(event_id="pos:3", **refund)
    )

    replayed = runner.invoke(app, ["replay", "till.jsonl", "--db", sqlite_url])
    customer = runner.invoke(
        app, ["customer", "C1", "--db", sqlite_url], env={"COLUMNS": "200"}
    )

    assert replayed.exit_code == 0, replayed.output
    assert shown in customer.output


def test_control_characters_from_the_data_reach_the_terminal_escaped(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "till.jsonl").write_text(
        event_line(event_id="pos:1\u202e") + event_line(event_id="pos:\x1b[2J2")
    )

    replayed = runner.invoke(app, ["replay", "till.jsonl", "--db", sqlite_url])

    # An id with a control or invisible character is refused, and the
    # refusal shows it escaped.
    assert "rejected pos:1\\u202e: event_id: holds a control" in replayed.output
    assert "rejected pos:\\x1b[2J2: event_id: holds a control" in replayed.output
    assert "\x1b" not in replayed.output and "\u202e" not in replayed.output


def test_emoji_codes_in_the_data_are_printed_as_written(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lines = event_line(event_id="pos-:smile:") + event_line(
        event_id="pos-:thumbs_up:", currency="USD"
    )
    (tmp_path / "till.jsonl").write_text(lines)

    replayed = runner.invoke(app, ["replay", "till.jsonl", "--db", sqlite_url])
    customer = runner.invoke(
        app, ["customer", "C1", "--db", sqlite_url], env={"COLUMNS": "200"}
    )

    assert "rejected pos-:thumbs_up:" in replayed.output  # printed with markup on
    assert "pos-:smile:" in customer.output


@pytest.mark.parametrize(
    "command",
    [
        ["stages"],
        ["customer", "C1"],
        ["firings"],
        ["points", "show", "C1"],
        ["quarantine", "list"],
        ["quarantine", "show", "1"],
        ["keys", "list"],
        ["keys", "revoke", "k1"],
        ["salesforce", "status"],
        ["salesforce", "retry-dead-letters"],
        ["rewards", "issue", "C1", "win_back_incentive"],
        ["points", "adjust", "C1", "--reason", "goodwill", "5"],
        ["quarantine", "retry", "1"],
    ],
)
@pytest.mark.parametrize(
    "spelled",
    ["sqlite:///{}", "sqlite:///file:{}?uri=true", "{}"],
    ids=["url", "sqlite uri", "file path"],
)
def test_a_reading_command_refuses_a_store_that_is_not_there(
    tmp_path: Path, command: list[str], spelled: str
) -> None:
    typo = tmp_path / "tilsight.db"
    url = spelled.format(typo)

    result = runner.invoke(app, [*command, "--db", url])

    assert result.exit_code != 0
    assert f"no store at {typo}" in str(result.exception)
    assert not typo.exists()


def test_a_mapping_given_for_json_lines_is_refused(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "till.jsonl").write_text("{}\n")

    result = runner.invoke(
        app,
        ["replay", "till.jsonl", "--mapping", str(MAPPING), "--db", sqlite_url],
    )

    assert result.exit_code != 0
    assert "takes no --mapping" in str(result.exception)


def until_refusal(until: str, sqlite_url: str) -> str:
    result = runner.invoke(
        app,
        ["replay", str(SAMPLE), "--mapping", str(MAPPING), "--until", until,
         "--db", sqlite_url],
    )  # fmt: skip
    assert result.exit_code != 0
    return str(result.exception)


@pytest.mark.parametrize("ahead", [2, 365 * 900])
def test_until_after_tomorrow_is_refused(sqlite_url: str, ahead: int) -> None:
    day = (datetime.now(LONDON).date() + timedelta(days=ahead)).isoformat()

    assert f"--until '{day}' is after tomorrow" in until_refusal(day, sqlite_url)


@pytest.mark.parametrize(
    "until", ["9999-12-31", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+14:00"]
)
def test_until_at_the_ends_of_the_calendar_is_refused_not_a_crash(
    sqlite_url: str, until: str
) -> None:
    reason = until_refusal(until, sqlite_url)

    assert reason in (
        f"--until {until!r} is out of range",
        f"--until {until!r} is after tomorrow: timers would fire lapses that have "
        "not happened; give a date up to tomorrow",
    )


def test_until_tomorrow_is_taken(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tomorrow = (datetime.now(LONDON).date() + timedelta(days=1)).isoformat()
    (tmp_path / "till.jsonl").write_text(event_line())

    result = runner.invoke(
        app, ["replay", str(tmp_path / "till.jsonl"), "--until", tomorrow,
              "--db", sqlite_url],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert f"{tomorrow}T23:59:59.999999" in result.output


def test_until_written_as_a_compact_date_means_its_end_too(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "till.jsonl").write_text(event_line())

    result = runner.invoke(
        app, ["replay", "till.jsonl", "--until", "20250305", "--db", sqlite_url]
    )

    assert result.exit_code == 0, result.output
    assert "2025-03-05T23:59:59.999999" in result.output


def test_markup_in_the_data_is_printed_not_obeyed(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = event_line(event_id="[/oops] [bold]x", currency="USD")
    (tmp_path / "[red]till.jsonl").write_text(line)

    result = runner.invoke(app, ["replay", "[red]till.jsonl", "--db", sqlite_url])

    assert result.exit_code == 0, result.output
    assert "rejected [/oops] [bold]x: currency" in result.output
    assert "replaying [red]till.jsonl" in result.output
    assert "1 event refused, kept in" in " ".join(result.output.split())
    assert "(fix them and replay that file)" in result.output


def test_a_mapping_in_another_currency_than_the_programme_s_is_refused(
    tmp_path: Path, sqlite_url: str
) -> None:
    text = MAPPING.read_text(encoding="utf-8").replace(
        "currency: {constant: GBP}", "currency: {constant: USD}"
    )
    (tmp_path / "usd.yaml").write_text(text, encoding="utf-8")

    result = runner.invoke(
        app,
        ["replay", str(SAMPLE), "--mapping", str(tmp_path / "usd.yaml"),
         "--db", sqlite_url],
    )  # fmt: skip

    assert result.exit_code != 0
    assert "currency USD is not the programme's currency (GBP)" in str(result.exception)


def test_a_store_may_be_named_by_its_file_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["replay", str(SAMPLE), "--mapping", str(MAPPING), "--db", "my.db"]
    assert runner.invoke(app, args).exit_code == 0

    result = runner.invoke(app, ["stages", "--db", str(tmp_path / "my.db")])

    assert result.exit_code == 0, result.output
    assert "vip" in result.output
    assert not (tmp_path / "tillsight.db").exists()


def test_a_merged_away_key_shows_the_profile_it_was_merged_into(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "one.jsonl").write_text(
        event_line(event_id="pos:1", customer={"email": "ann@example.test"})
        + event_line(event_id="pos:2", customer={"phone": "+447911123456"}),
        encoding="utf-8",
    )
    (tmp_path / "two.jsonl").write_text(
        event_line(
            event_id="pos:3",
            occurred_at="2025-03-02T10:00:00+00:00",
            customer={"email": "ann@example.test", "phone": "+447911123456"},
        ),
        encoding="utf-8",
    )
    for name in ("one.jsonl", "two.jsonl"):
        done = runner.invoke(app, ["replay", name, "--db", sqlite_url])
        assert done.exit_code == 0, done.output
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        gone, kept = conn.execute(
            text("select key, merged_into from customers where merged_into is not null")
        ).one()
    engine.dispose()

    result = runner.invoke(app, ["customer", gone, "--db", sqlite_url])

    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    assert f"{gone} was merged into {kept}; showing {kept}" in shown
    assert "purchases (counting) │ 3" in shown
