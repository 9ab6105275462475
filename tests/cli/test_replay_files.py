"""What a replay says about its input files, and where it keeps what it refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tillsight.cli import app
from tillsight.errors import InputError

ROOT = Path(__file__).parents[2]
MAPPING = ROOT / "examples/mappings/online-retail.yaml"
HEADER = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
)
GOOD = "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom"
BAD = "536366,85123A,HEART,6,2010-13-01 08:26:00,2.55,17850.0,United Kingdom"

CLI = (sys.executable, "-c", "from tillsight.cli import main; main()")

runner = CliRunner()


def replay(path: Path, db: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(
        app, ["replay", str(path), "--mapping", str(MAPPING), "--db", db]
    )
    return result.exit_code, "".join(result.output.split()), result.exception


def _age(path: Path) -> int:
    return path.stat().st_mtime_ns


def test_rejects_of_two_files_with_one_name_are_both_kept(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.csv").write_text(f"{HEADER}\n{GOOD}\n{BAD}\n")

    first = replay(tmp_path / "a" / "x.csv", sqlite_url)
    second = replay(tmp_path / "b" / "x.csv", sqlite_url)

    kept = sorted(tmp_path.glob("x.csv.rejects-*Z*.csv"), key=_age)
    assert first[0] == second[0] == 0
    assert len(kept) == 2
    assert kept[0].name in first[1] and kept[1].name in second[1]


def test_refused_events_of_two_runs_are_both_kept(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = (
        '{"event_id": "pos:1", "type": "purchase", "currency": "USD", '
        '"occurred_at": "2025-03-01T10:00:00+00:00", "total": "1.00"}\n'
    )
    (tmp_path / "till.jsonl").write_text(line)

    outputs = [
        runner.invoke(app, ["replay", "till.jsonl", "--db", sqlite_url]).output
        for _ in range(2)
    ]

    kept = sorted(tmp_path.glob("till.jsonl.rejected-events-*Z*.jsonl"), key=_age)
    assert len(kept) == 2
    for path, output in zip(kept, outputs, strict=True):
        assert path.name in "".join(output.split())


@pytest.mark.parametrize("text", ["", f"{HEADER}\n"])
def test_a_file_without_rows_says_so_and_shows_no_clock(
    tmp_path: Path, sqlite_url: str, text: str
) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(text)

    code, output, error = replay(path, sqlite_url)

    assert code != 0 and isinstance(error, InputError)
    assert str(error).startswith(f"no events in {path}")
    assert "1969" not in output and "timersrunupto" not in output


def test_a_missing_column_is_printed_once(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "till.csv"
    path.write_text(f"{HEADER.replace('InvoiceNo', 'Invoice')}\n{GOOD}\n")

    done = subprocess.run(
        [*CLI, "replay", "--mapping", str(MAPPING), "--db", sqlite_url, str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )

    assert done.returncode == InputError.exit_code
    assert (done.stdout + done.stderr).count("missing from the header") == 1
    assert "Traceback" not in done.stderr


def test_an_undecodable_row_is_kept_and_the_import_succeeds(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "till.csv"
    path.write_bytes(f"{HEADER}\n{GOOD}\n{BAD[:-7]}Caf\xe9\n".encode("latin-1"))

    code, output, _ = replay(path, sqlite_url)

    (kept,) = tmp_path.glob("till.csv.rejects-*.csv")
    assert code == 0 and f"1badrowkeptin{kept.name}" in output
    kept_bytes = kept.read_bytes()
    assert b"not UTF-8 text (byte 0xe9)" in kept_bytes
    assert b"Caf\xe9\r\n" in kept_bytes  # the row's own bytes, to fix and resend
